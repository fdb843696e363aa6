// waypoint.cc holds the waypoint decisions that are not the outbound plan: recognising the
// waypoint as a connection's source, the inbound "sandwich" acceptance, the application tunnel
// and the inbound RBAC inputs, each as ztunnel decides it
// (istio/ztunnel src/proxy.rs `check_from_waypoint`, src/proxy/inbound.rs `validate_destination`
// and `find_inbound_upstream`). Pure functions: no I/O, no clock, no randomness, and no policy
// evaluation (that is rbac.cc's).

#include "src/proxy/waypoint.h"

#include <algorithm>
#include <cstring>

namespace zt::proxy {

namespace {

// any_member checks `predicate` against the workloads that make up a gateway reference: the
// workload it names, or the stored endpoints of the service it names (ztunnel's
// `check_gateway_address`).
template <class Predicate>
bool any_member(const state::Snapshot& snapshot, const state::GatewayAddress& gateway,
                Predicate predicate) {
    state::AddressMatch match = snapshot.find_gateway(gateway);
    if (match.workload != nullptr) {
        return predicate(*match.workload);
    }
    if (match.service != nullptr) {
        for (const state::Endpoint& endpoint : snapshot.endpoints(*match.service)) {
            if (predicate(*endpoint.workload)) {
                return true;
            }
        }
    }
    return false;
}

bool owns_ip(const state::Workload& workload, const state::IpAddr& ip) {
    const auto& ips = workload.workload_ips;
    return std::find(ips.begin(), ips.end(), ip) != ips.end();
}

}  // namespace

bool source_is_waypoint(const state::Snapshot& snapshot, const state::Workload& upstream,
                        std::string_view source_identity,
                        const std::optional<state::IpAddr>& source_ip,
                        std::string_view default_trust_domain) {
    if (!upstream.waypoint || !source_ip) {
        return false;
    }
    return any_member(snapshot, *upstream.waypoint, [&](const state::Workload& member) {
        return member.identity(default_trust_domain) == source_identity &&
               owns_ip(member, *source_ip);
    });
}

std::optional<state::SocketAddr> authority_address(const hbone::Authority& authority) {
    if (authority.kind == hbone::AuthorityKind::hostname) {
        return std::nullopt;
    }
    state::SocketAddr address;
    address.ip.v6 = authority.kind == hbone::AuthorityKind::ipv6;
    std::memcpy(address.ip.bytes.data(), authority.ip.data(), address.ip.size());
    address.port = authority.port;
    return address;
}

std::string_view to_string(InboundTargetCheck check) {
    switch (check) {
        case InboundTargetCheck::own_ip:
            return "own_ip";
        case InboundTargetCheck::hostname:
            return "hostname";
        case InboundTargetCheck::application_tunnel:
            return "application_tunnel";
        case InboundTargetCheck::waypoint:
            return "waypoint";
        case InboundTargetCheck::ip_mismatch:
            return "ip_mismatch";
    }
    return "ip_mismatch";
}

InboundTargetDecision check_inbound_target(const state::Snapshot& snapshot,
                                           const state::Workload& local,
                                           const state::IpAddr& local_ip,
                                           const hbone::Authority& authority) {
    InboundTargetDecision decision;
    std::optional<state::SocketAddr> target = authority_address(authority);
    if (!target) {
        decision.check = InboundTargetCheck::hostname;
        return decision;
    }
    if (target->ip == local_ip) {
        decision.check = InboundTargetCheck::own_ip;
        return decision;
    }
    if (local.application_tunnel) {
        decision.check = InboundTargetCheck::application_tunnel;
        return decision;
    }
    // The sandwich: is this pod the waypoint of whatever the authority names?
    state::AddressMatch named = snapshot.find_address_unscoped({local.network, target->ip});
    const std::optional<state::GatewayAddress>* waypoint = nullptr;
    if (named.workload != nullptr) {
        waypoint = &named.workload->waypoint;
    } else if (named.service != nullptr) {
        waypoint = &named.service->waypoint;
    }
    if (waypoint != nullptr && waypoint->has_value()) {
        state::AddressMatch resolved = snapshot.find_gateway(**waypoint);
        bool is_us = false;
        if (resolved.service != nullptr) {
            for (const state::Endpoint& endpoint : snapshot.endpoints(*resolved.service)) {
                is_us = is_us || endpoint.workload->uid == local.uid;
            }
        } else if (resolved.workload != nullptr) {
            is_us = owns_ip(*resolved.workload, local_ip);
        }
        if (is_us) {
            decision.check = InboundTargetCheck::waypoint;
            return decision;
        }
    }
    decision.check = InboundTargetCheck::ip_mismatch;
    decision.error = "ip mismatch: " + local_ip.to_string() + " != " + target->ip.to_string();
    return decision;
}

std::optional<state::SocketAddr> hostname_tunnel_target(const state::Service& service,
                                                        std::string_view network, uint16_t port) {
    const state::NetworkAddress* best = nullptr;
    int best_rank = -1;
    for (const state::NetworkAddress& vip : service.vips) {
        int rank = vip.network != network ? 0 : (vip.ip.v6 ? 1 : 2);
        // `>=`: the last of equal ranks wins, as Rust's `Iterator::max_by_key` picks.
        if (rank >= best_rank) {
            best = &vip;
            best_rank = rank;
        }
    }
    if (best == nullptr) {
        return std::nullopt;
    }
    return state::SocketAddr{best->ip, port};
}

AppTunnelDecision decide_app_tunnel(const state::Workload& local, const state::SocketAddr& target,
                                    const state::SocketAddr& tunnel_target,
                                    bool localhost_app_tunnel) {
    AppTunnelDecision decision;
    decision.upstream = target;
    decision.connect_to = target;
    if (!local.application_tunnel) {
        return decision;
    }
    const state::ApplicationTunnel& tunnel = *local.application_tunnel;
    decision.upstream.port = tunnel.port.value_or(target.port);
    decision.connect_to = decision.upstream;
    decision.header_destination = tunnel_target;
    if (tunnel.protocol != state::ApplicationTunnel::Protocol::proxy) {
        return decision;  // NONE: only the port changes; the bytes go unmodified.
    }
    decision.send_proxy_header = true;
    if (localhost_app_tunnel) {
        state::IpAddr loopback = decision.upstream.ip.v6 ? *state::IpAddr::parse("::1")
                                                         : state::IpAddr::v4(127, 0, 0, 1);
        decision.connect_to = {loopback, decision.upstream.port};
        decision.from_loopback = true;
    }
    return decision;
}

namespace {

hbone::ProxyAddress proxy_address(const state::SocketAddr& address) {
    hbone::ProxyAddress out;
    out.v6 = address.ip.v6;
    out.ip = address.ip.bytes;
    out.port = address.port;
    return out;
}

}  // namespace

Result<std::vector<uint8_t>> proxy_header(const state::SocketAddr& client,
                                          const std::optional<certs::Identity>& client_identity,
                                          const AppTunnelDecision& tunnel) {
    return hbone::build_proxy_v2(proxy_address(client), proxy_address(tunnel.header_destination),
                                 client_identity ? client_identity->to_string() : "");
}

RbacConnection inbound_rbac_connection(const state::SocketAddr& peer,
                                       const certs::Identity& peer_identity,
                                       const AppTunnelDecision& tunnel) {
    RbacConnection connection;
    connection.src = peer;
    connection.dst = tunnel.upstream;
    connection.src_identity = peer_identity;
    return connection;
}

}  // namespace zt::proxy
