// route.cc is the outbound routing decision (ztunnel's `build_request`), a pure function of the
// snapshot and the connection's addresses. It must not perform I/O, read clocks or draw random
// numbers: randomness comes in through RouteOptions so table tests can pin every branch.

#include "src/proxy/route.h"

#include <algorithm>

namespace zt::proxy {

namespace {

Plan refuse(RefuseReason reason) {
    Plan plan;
    plan.kind = PlanKind::refuse;
    plan.reason = reason;
    return plan;
}

bool family_allowed(const state::IpAddr& ip, state::IpFamilies families) {
    switch (families) {
        case state::IpFamilies::ipv4:
            return !ip.v6;
        case state::IpFamilies::ipv6:
            return ip.v6;
        case state::IpFamilies::any:
        case state::IpFamilies::dual:
            return true;
    }
    return true;
}

// select_ip is ztunnel's IP choice: the destination itself when it is one of the workload's IPs,
// else the first IP allowed by the service's families, preferring the destination's family.
const state::IpAddr* select_ip(const state::Workload& upstream, const state::IpAddr& destination,
                               const state::Service* service) {
    const auto& ips = upstream.workload_ips;
    auto it = std::find(ips.begin(), ips.end(), destination);
    if (it != ips.end()) {
        return &*it;
    }
    state::IpFamilies families = service != nullptr ? service->ip_families : state::IpFamilies::any;
    const state::IpAddr* fallback = nullptr;
    for (const state::IpAddr& ip : ips) {
        if (!family_allowed(ip, families)) {
            continue;
        }
        if (ip.v6 == destination.v6) {
            return &ip;
        }
        if (fallback == nullptr) {
            fallback = &ip;
        }
    }
    return fallback;
}

}  // namespace

std::string_view to_string(PlanKind kind) {
    switch (kind) {
        case PlanKind::hbone:
            return "hbone";
        case PlanKind::tcp:
            return "tcp";
        case PlanKind::passthrough:
            return "passthrough";
        case PlanKind::refuse:
            return "refuse";
    }
    return "refuse";
}

std::string_view to_string(RefuseReason reason) {
    switch (reason) {
        case RefuseReason::none:
            return "none";
        case RefuseReason::self_call:
            return "self_call";
        case RefuseReason::no_healthy_upstream:
            return "no_healthy_upstream";
        case RefuseReason::no_workload_ip:
            return "no_workload_ip";
        case RefuseReason::waypoint_unsupported:
            return "waypoint_unsupported";
        case RefuseReason::cross_network:
            return "cross_network";
    }
    return "none";
}

Errc refuse_errc(RefuseReason reason) {
    switch (reason) {
        case RefuseReason::self_call:
            return Errc::self_call;
        case RefuseReason::no_healthy_upstream:
            return Errc::no_healthy_upstream;
        case RefuseReason::none:
        case RefuseReason::no_workload_ip:
        case RefuseReason::waypoint_unsupported:
        case RefuseReason::cross_network:
            return Errc::unsupported;
    }
    return Errc::unsupported;
}

Plan plan_outbound(const state::Snapshot& snapshot, const state::Workload& source,
                   const state::SocketAddr& destination, const RouteOptions& options) {
    if (destination.ip.is_loopback() &&
        std::find(std::begin(kZtunnelPorts), std::end(kZtunnelPorts), destination.port) !=
                std::end(kZtunnelPorts)) {
        return refuse(RefuseReason::self_call);
    }
    state::NetworkAddress key{source.network, destination.ip};
    state::AddressMatch match = snapshot.find_address(key, source.namespace_);

    const state::Workload* upstream = nullptr;
    uint16_t target_port = destination.port;
    if (match.service != nullptr) {
        const state::Service& service = *match.service;
        if (service.has_waypoint()) {
            return refuse(RefuseReason::waypoint_unsupported);
        }
        if (service.lb_mode() != state::LoadBalancerMode::passthrough) {
            const state::Endpoint* endpoint =
                    snapshot.choose_endpoint(service, destination.port, options.random);
            if (endpoint == nullptr) {
                return refuse(RefuseReason::no_healthy_upstream);
            }
            upstream = endpoint->workload;
            target_port = *state::Snapshot::target_port(service, *endpoint, destination.port);
        }
    } else {
        upstream = match.workload;
    }

    Plan plan;
    plan.service = match.service;
    if (upstream == nullptr) {
        // Unknown destination, or a Passthrough service: the original destination, in plain text.
        plan.kind = PlanKind::passthrough;
        plan.connect_to = destination;
        return plan;
    }
    plan.upstream = upstream;
    if (upstream->network != source.network) {
        return refuse(RefuseReason::cross_network);
    }
    if (match.service == nullptr && upstream->waypoint) {
        return refuse(RefuseReason::waypoint_unsupported);
    }
    const state::IpAddr* ip = select_ip(*upstream, destination.ip, match.service);
    if (ip == nullptr) {
        return refuse(RefuseReason::no_workload_ip);
    }
    state::SocketAddr target{*ip, target_port};
    if (upstream->protocol == state::Protocol::tcp) {
        plan.kind = PlanKind::tcp;
        plan.connect_to = target;
        return plan;
    }
    plan.kind = PlanKind::hbone;
    plan.connect_to = state::SocketAddr{*ip, kHbonePort};
    plan.authority = target.to_string();
    plan.expected_identities.push_back(upstream->identity(options.default_trust_domain));
    if (match.service != nullptr) {
        for (const std::string& san : match.service->subject_alt_names) {
            if (std::find(plan.expected_identities.begin(), plan.expected_identities.end(), san) ==
                plan.expected_identities.end()) {
                plan.expected_identities.push_back(san);
            }
        }
    }
    return plan;
}

}  // namespace zt::proxy
