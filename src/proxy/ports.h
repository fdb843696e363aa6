#pragma once

// ztunnel's own ports: the listeners every captured pod gets (docs/contract.md §3), and the test
// for "one of ztunnel's own ports", which refuses loops on both paths. A listener kind is the one
// place a new in-pod listener is declared; the DNS proxy's four sockets on 15053 are kinds too,
// opened with the pod's other listeners but served by its DNS server (pod_dns.h), not by accepts.

#include <cstdint>
#include <string_view>

#include "src/proxy/route.h"

namespace zt::proxy {

// The in-pod listener ports.
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlainPort = 15006;
inline constexpr uint16_t kInboundHbonePort = 15008;
inline constexpr uint16_t kDnsProxyPort = 15053;

// ListenerKind is one of a pod's listeners.
enum class ListenerKind : uint8_t {
    outbound,           // 15001: captured outbound TCP.
    inbound_plaintext,  // 15006: captured inbound TCP that is not HBONE.
    inbound_hbone,      // 15008: HBONE from other ztunnels.
    dns_udp_v4,         // 127.0.0.1:15053 UDP: the pod's DNS, redirected from port 53.
    dns_tcp_v4,         // 127.0.0.1:15053 TCP.
    dns_udp_v6,         // [::1]:15053 UDP (where the pod's loopback has IPv6).
    dns_tcp_v6,         // [::1]:15053 TCP.
};

// kListenerKinds lists every kind, in the order a pod opens them.
inline constexpr ListenerKind kListenerKinds[] = {
        ListenerKind::outbound, ListenerKind::inbound_plaintext, ListenerKind::inbound_hbone};
inline constexpr size_t kListenerCount = sizeof kListenerKinds / sizeof kListenerKinds[0];

// kDnsListenerKinds are the DNS proxy's sockets, opened after the others when DNS capture is on.
inline constexpr ListenerKind kDnsListenerKinds[] = {
        ListenerKind::dns_udp_v4, ListenerKind::dns_tcp_v4, ListenerKind::dns_udp_v6,
        ListenerKind::dns_tcp_v6};

// is_dns says whether `kind` is one of the DNS proxy's sockets; is_udp and is_v6 say which.
constexpr bool is_dns(ListenerKind kind) {
    return kind == ListenerKind::dns_udp_v4 || kind == ListenerKind::dns_tcp_v4 ||
           kind == ListenerKind::dns_udp_v6 || kind == ListenerKind::dns_tcp_v6;
}

constexpr bool is_udp(ListenerKind kind) {
    return kind == ListenerKind::dns_udp_v4 || kind == ListenerKind::dns_udp_v6;
}

constexpr bool is_v6(ListenerKind kind) {
    return kind == ListenerKind::dns_udp_v6 || kind == ListenerKind::dns_tcp_v6;
}

// listener_port is the port `kind` listens on.
constexpr uint16_t listener_port(ListenerKind kind) {
    switch (kind) {
        case ListenerKind::outbound:
            return kOutboundPort;
        case ListenerKind::inbound_plaintext:
            return kInboundPlainPort;
        case ListenerKind::inbound_hbone:
            return kInboundHbonePort;
        case ListenerKind::dns_udp_v4:
        case ListenerKind::dns_tcp_v4:
        case ListenerKind::dns_udp_v6:
        case ListenerKind::dns_tcp_v6:
            return kDnsProxyPort;
    }
    return 0;
}

// captures says whether `kind` takes redirected (captured) connections, whose original
// destination must be recovered; 15008 is connected to directly, and DNS needs none.
constexpr bool captures(ListenerKind kind) {
    return kind == ListenerKind::outbound || kind == ListenerKind::inbound_plaintext;
}

constexpr std::string_view to_string(ListenerKind kind) {
    switch (kind) {
        case ListenerKind::outbound:
            return "outbound";
        case ListenerKind::inbound_plaintext:
            return "inbound_plaintext";
        case ListenerKind::inbound_hbone:
            return "inbound_hbone";
        case ListenerKind::dns_udp_v4:
            return "dns_udp_v4";
        case ListenerKind::dns_tcp_v4:
            return "dns_tcp_v4";
        case ListenerKind::dns_udp_v6:
            return "dns_udp_v6";
        case ListenerKind::dns_tcp_v6:
            return "dns_tcp_v6";
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
