#pragma once

// ztunnel's own ports: the listeners every captured pod gets (SPEC.md §3), and the test for "one
// of ztunnel's own ports", which refuses loops on both paths. A listener kind is the one place a
// new in-pod listener is declared (a DNS proxy adds its UDP and TCP kinds on 15053 here).

#include <cstdint>
#include <string_view>

#include "src/proxy/route.h"

namespace zt::proxy {

// The in-pod listener ports.
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlainPort = 15006;
inline constexpr uint16_t kInboundHbonePort = 15008;

// ListenerKind is one of a pod's listeners.
enum class ListenerKind : uint8_t {
    outbound,           // 15001: captured outbound TCP.
    inbound_plaintext,  // 15006: captured inbound TCP that is not HBONE.
    inbound_hbone,      // 15008: HBONE from other ztunnels.
};

// kListenerKinds lists every kind, in the order a pod opens them.
inline constexpr ListenerKind kListenerKinds[] = {
        ListenerKind::outbound, ListenerKind::inbound_plaintext, ListenerKind::inbound_hbone};
inline constexpr size_t kListenerCount = sizeof kListenerKinds / sizeof kListenerKinds[0];

// listener_port is the port `kind` listens on.
constexpr uint16_t listener_port(ListenerKind kind) {
    switch (kind) {
        case ListenerKind::outbound:
            return kOutboundPort;
        case ListenerKind::inbound_plaintext:
            return kInboundPlainPort;
        case ListenerKind::inbound_hbone:
            return kInboundHbonePort;
    }
    return 0;
}

// captures says whether `kind` takes redirected (captured) connections, whose original
// destination must be recovered; 15008 is connected to directly.
constexpr bool captures(ListenerKind kind) {
    return kind != ListenerKind::inbound_hbone;
}

constexpr std::string_view to_string(ListenerKind kind) {
    switch (kind) {
        case ListenerKind::outbound:
            return "outbound";
        case ListenerKind::inbound_plaintext:
            return "inbound_plaintext";
        case ListenerKind::inbound_hbone:
            return "inbound_hbone";
    }
    return "unknown";
}

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
