#pragma once

// ztunnel's own ports: the three listeners every captured pod gets (SPEC.md §3) and the test
// for "one of ztunnel's own ports", which refuses loops on both paths.

#include <cstdint>

#include "src/proxy/route.h"

namespace zt::proxy {

// The in-pod listener ports.
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlainPort = 15006;
inline constexpr uint16_t kInboundHbonePort = 15008;

// is_ztunnel_port says whether `port` is one of ztunnel's own ports (`kZtunnelPorts`): a
// loopback destination on one (outbound) or any destination on one (inbound) is a loop.
constexpr bool is_ztunnel_port(uint16_t port) {
    for (uint16_t own : kZtunnelPorts) {
        if (own == port) {
            return true;
        }
    }
    return false;
}

}  // namespace zt::proxy
