// route.cc is the outbound routing decision (ztunnel's `build_request`, `fetch_upstream`,
// `fetch_waypoint` and `load_balance`), a pure function of the snapshot and the connection's
// addresses. It must not perform I/O, read clocks or draw random numbers: randomness comes in
// through RouteOptions so table tests can pin every branch.

#include "src/proxy/route.h"

#include <algorithm>

#include "src/proxy/waypoint.h"
#include "src/state/locality.h"

namespace zt::proxy {

namespace {

// refuse is a refusal; `upstream` and `waypoint` say what it concerns, for `refuse_error`.
Plan refuse(RefuseReason reason, const state::Workload* upstream = nullptr,
            const state::GatewayAddress* waypoint = nullptr) {
    Plan plan;
    plan.kind = PlanKind::refuse;
    plan.reason = reason;
    plan.upstream = upstream;
    plan.waypoint = waypoint;
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

// preference_matches compares one routing preference of `source` and `candidate`.
bool preference_matches(state::RoutingPreference preference, const state::Workload& source,
                        const state::Workload& candidate) {
    return state::scope_of(preference, source) == state::scope_of(preference, candidate);
}

// Ranked is ztunnel's rank of one candidate; `eligible` is false when `Strict` drops it.
struct Ranked {
    size_t rank = 0;
    bool eligible = true;
};

// rank_candidate counts the routing preferences `candidate` shares with `source` in order,
// stopping at the first mismatch; a leading `Network` is preferred, not required (see
// `load_balance`).
Ranked rank_candidate(const state::LoadBalancer& balancer, const state::Workload& source,
                      const state::Workload& candidate) {
    const auto& preferences = balancer.routing_preferences;
    bool network_preferred =
            !preferences.empty() && preferences[0] == state::RoutingPreference::network;
    Ranked ranked;
    size_t adjust = 0;
    for (state::RoutingPreference preference : preferences) {
        bool matches = preference_matches(preference, source, candidate);
        if (preference == state::RoutingPreference::network && network_preferred) {
            if (!matches) {
                continue;  // Try the other scopes.
            }
            adjust = preferences.size() - 1;
        }
        if (!matches) {
            break;
        }
        ++ranked.rank;
    }
    if (balancer.mode == state::LoadBalancerMode::strict && ranked.rank != preferences.size()) {
        ranked.eligible = false;
    }
    ranked.rank += adjust;
    return ranked;
}

// Upstream is ztunnel's `Upstream` before its IP is chosen: a workload, the port to reach it on,
// and the service it was found through (for SANs and IP families), if any.
struct Upstream {
    const state::Workload* workload = nullptr;
    const state::Service* service = nullptr;
    uint16_t port = 0;
};

// upstream_from_service is ztunnel's `find_upstream_from_service`.
std::optional<Upstream> upstream_from_service(const state::Snapshot& snapshot,
                                              const state::Workload& source,
                                              const state::Service& service, uint16_t service_port,
                                              ResolutionMode mode, const RouteOptions& options) {
    const state::Endpoint* endpoint =
            load_balance(snapshot, source, service, service_port, mode, options);
    if (endpoint == nullptr) {
        return std::nullopt;
    }
    std::optional<uint16_t> port = upstream_port(service, *endpoint, service_port);
    if (!port) {
        return std::nullopt;
    }
    return Upstream{endpoint->workload, &service, *port};
}

// FoundUpstream is what ztunnel's `find_upstream` returns: an upstream, the original destination
// (a Passthrough service), or nothing.
struct FoundUpstream {
    std::optional<Upstream> upstream;
    bool original_destination = false;
};

// find_upstream is ztunnel's `find_upstream`: a service VIP first (seen from the source's
// namespace), then a workload IP, both on `address.network`.
FoundUpstream find_upstream(const state::Snapshot& snapshot, const state::Workload& source,
                            const state::NetworkAddress& address, uint16_t port,
                            ResolutionMode mode, const RouteOptions& options) {
    FoundUpstream found;
    if (const state::Service* service = snapshot.service_by_vip(address, source.namespace_)) {
        if (service->lb_mode() == state::LoadBalancerMode::passthrough) {
            found.original_destination = true;
            return found;
        }
        found.upstream = upstream_from_service(snapshot, source, *service, port, mode, options);
        return found;
    }
    if (const state::Workload* workload = snapshot.workload_by_ip(address)) {
        found.upstream = Upstream{workload, nullptr, port};
    }
    return found;
}

// sample_waypoint is ztunnel's choice of a service's waypoint: a `weightedWaypoints` entry
// proportional to its weight, else (no entries, or every weight 0) the single `waypoint`.
const state::GatewayAddress* sample_waypoint(const state::Service& service, uint64_t random) {
    uint64_t total = 0;
    for (const state::WeightedWaypoint& entry : service.weighted_waypoints) {
        total += entry.weight;
    }
    if (total > 0) {
        uint64_t pick = random % total;
        for (const state::WeightedWaypoint& entry : service.weighted_waypoints) {
            if (pick < entry.weight) {
                return &entry.destination;
            }
            pick -= entry.weight;
        }
    }
    return service.waypoint ? &*service.waypoint : nullptr;
}

// WaypointUpstream is a resolved waypoint: the upstream and the IP to dial, or a refusal.
struct WaypointUpstream {
    RefuseReason reason = RefuseReason::none;
    Upstream upstream;
    state::IpAddr ip;
};

// fetch_waypoint is ztunnel's `fetch_waypoint` (see `plan_outbound`).
WaypointUpstream fetch_waypoint(const state::Snapshot& snapshot, const state::Workload& source,
                                const state::GatewayAddress& gateway,
                                const state::SocketAddr& destination, const RouteOptions& options) {
    WaypointUpstream out;
    std::optional<Upstream> upstream;
    state::IpAddr family_hint = destination.ip;
    if (gateway.address) {
        // Referenced by IP: dial that IP (a service VIP is load balanced to an endpoint).
        FoundUpstream found =
                find_upstream(snapshot, source, *gateway.address, gateway.hbone_mtls_port,
                              ResolutionMode::waypoint, options);
        upstream = found.upstream;
        family_hint = gateway.address->ip;
    } else if (gateway.host) {
        // Referenced by name: the IP family of the original destination is preferred.
        state::AddressMatch match = snapshot.find_hostname(*gateway.host);
        if (match.service != nullptr) {
            upstream =
                    upstream_from_service(snapshot, source, *match.service, gateway.hbone_mtls_port,
                                          ResolutionMode::waypoint, options);
        } else if (match.workload != nullptr) {
            upstream = Upstream{match.workload, nullptr, gateway.hbone_mtls_port};
        }
    }
    if (!upstream) {
        out.reason = RefuseReason::unknown_waypoint;
        return out;
    }
    out.upstream = *upstream;
    const state::IpAddr* ip = select_ip(*upstream->workload, family_hint, upstream->service);
    if (ip == nullptr) {
        out.reason = RefuseReason::no_workload_ip;
        return out;
    }
    out.ip = *ip;
    return out;
}

void add_identity(std::vector<std::string>& identities, const std::string& identity) {
    if (std::find(identities.begin(), identities.end(), identity) == identities.end()) {
        identities.push_back(identity);
    }
}

// expected_identities is ztunnel's `workload_and_services_san`: the workload's identity and the
// subjectAltNames of the service it was found through.
std::vector<std::string> expected_identities(const Upstream& upstream,
                                             const RouteOptions& options) {
    std::vector<std::string> identities;
    identities.push_back(upstream.workload->identity(options.default_trust_domain));
    if (upstream.service != nullptr) {
        for (const std::string& san : upstream.service->subject_alt_names) {
            add_identity(identities, san);
        }
    }
    return identities;
}

// via_waypoint is the plan through the waypoint `gateway`: always HBONE (whatever protocol the
// waypoint workload declares), `:authority` the original destination, untranslated.
Plan via_waypoint(const state::Snapshot& snapshot, const state::Workload& source,
                  const state::SocketAddr& destination, const state::GatewayAddress& gateway,
                  const state::Service* intended_service, const state::Workload* final_destination,
                  const RouteOptions& options) {
    WaypointUpstream waypoint = fetch_waypoint(snapshot, source, gateway, destination, options);
    if (waypoint.reason != RefuseReason::none) {
        return refuse(waypoint.reason, waypoint.upstream.workload, &gateway);
    }
    // A service's waypoint on another network needs double HBONE through its gateway (not
    // implemented); ztunnel checks this for service waypoints only.
    if (intended_service != nullptr && waypoint.upstream.workload->network != source.network) {
        return refuse(RefuseReason::cross_network, waypoint.upstream.workload, &gateway);
    }
    Plan plan;
    plan.kind = PlanKind::hbone;
    plan.connect_to = {waypoint.ip, waypoint.upstream.port};
    plan.authority = destination.to_string();
    plan.expected_identities = expected_identities(waypoint.upstream, options);
    plan.upstream = waypoint.upstream.workload;
    plan.service = intended_service;
    plan.final_destination = final_destination;
    plan.waypoint = &gateway;
    return plan;
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
        case RefuseReason::unknown_waypoint:
            return "unknown_waypoint";
        case RefuseReason::cross_network:
            return "cross_network";
    }
    return "none";
}

std::string refuse_error(const Plan& plan, const state::SocketAddr& destination) {
    auto gateway_text = [&]() -> std::string {
        if (plan.waypoint == nullptr) {
            return "(none)";
        }
        if (plan.waypoint->address) {
            return plan.waypoint->address->to_string();
        }
        return plan.waypoint->host ? plan.waypoint->host->to_string() : std::string("(none)");
    };
    switch (plan.reason) {
        case RefuseReason::none:
            return {};
        case RefuseReason::self_call:
            return "attempted recursive call to ourselves";
        case RefuseReason::no_healthy_upstream:
            return "no healthy upstream: " + destination.to_string();
        case RefuseReason::no_workload_ip:
            if (plan.upstream == nullptr) {
                return "no valid routing destination for workload";
            }
            return "no valid routing destination for workload: Workload{" + plan.upstream->name +
                   " with uid " + plan.upstream->uid + " (" +
                   std::string(state::to_string(plan.upstream->protocol)) + ")}";
        case RefuseReason::unknown_waypoint:
            return "unknown waypoint: waypoint " + gateway_text() + " not found";
        case RefuseReason::cross_network:
            return "unsupported feature: double HBONE to network " +
                   state::quote_text(plan.upstream != nullptr ? plan.upstream->network : "");
    }
    return {};
}

Errc refuse_errc(RefuseReason reason) {
    switch (reason) {
        case RefuseReason::self_call:
            return Errc::self_call;
        case RefuseReason::no_healthy_upstream:
            return Errc::no_healthy_upstream;
        case RefuseReason::unknown_waypoint:
            return Errc::not_found;
        case RefuseReason::none:
        case RefuseReason::no_workload_ip:
        case RefuseReason::cross_network:
            return Errc::unsupported;
    }
    return Errc::unsupported;
}

const state::Endpoint* load_balance(const state::Snapshot& snapshot, const state::Workload& source,
                                    const state::Service& service, uint16_t service_port,
                                    ResolutionMode mode, const RouteOptions& options) {
    std::optional<uint16_t> service_target = state::find_port(service.ports, service_port);
    if (mode == ResolutionMode::standard && !service_target) {
        return nullptr;  // The port does not exist on the service at all.
    }
    auto eligible = [&](const state::Endpoint& endpoint) {
        const state::Workload& workload = *endpoint.workload;
        if (workload.workload_ips.empty() && workload.hostname.empty()) {
            // Reachable only through a network gateway from another network. A hostname-only
            // workload stays: its address comes from on-demand DNS at connect time.
            return workload.network != source.network && workload.network_gateway.has_value();
        }
        if (mode == ResolutionMode::standard) {
            return service_target.value_or(0) != 0 ||
                   state::find_port(endpoint.ports, service_port).has_value();
        }
        return service_target.has_value() || workload.application_tunnel.has_value();
    };
    const state::LoadBalancer* balancer = service.load_balancer ? &*service.load_balancer : nullptr;
    bool ranked = balancer != nullptr && balancer->mode != state::LoadBalancerMode::standard;
    auto rank_of = [&](const state::Endpoint& endpoint) -> std::optional<size_t> {
        if (!eligible(endpoint)) {
            return std::nullopt;
        }
        if (!ranked) {
            return 0;
        }
        Ranked r = rank_candidate(*balancer, source, *endpoint.workload);
        return r.eligible ? std::optional<size_t>(r.rank) : std::nullopt;
    };
    // One pass finds the best rank, a second sums the weights at that rank, a third picks: no
    // allocation per connection.
    std::span<const state::Endpoint> endpoints = snapshot.endpoints(service);
    std::optional<size_t> best;
    for (const state::Endpoint& endpoint : endpoints) {
        if (auto rank = rank_of(endpoint)) {
            best = std::max(best.value_or(0), *rank);
        }
    }
    if (!best) {
        return nullptr;
    }
    uint64_t total = 0;
    for (const state::Endpoint& endpoint : endpoints) {
        if (rank_of(endpoint) == best) {
            total += endpoint.workload->capacity;
        }
    }
    if (total == 0) {
        return nullptr;  // Every weight is 0: ztunnel's weighted choice fails too.
    }
    uint64_t pick = options.random % total;
    for (const state::Endpoint& endpoint : endpoints) {
        if (rank_of(endpoint) != best) {
            continue;
        }
        if (pick < endpoint.workload->capacity) {
            return &endpoint;
        }
        pick -= endpoint.workload->capacity;
    }
    return nullptr;  // Unreachable: `pick` < `total`.
}

std::optional<uint16_t> upstream_port(const state::Service& service,
                                      const state::Endpoint& endpoint, uint16_t service_port) {
    if (auto port = state::find_port(endpoint.ports, service_port)) {
        return *port;
    }
    std::optional<uint16_t> target = state::find_port(service.ports, service_port);
    if (target && *target != 0) {
        return *target;
    }
    // With an application tunnel the port need not be on the service: the workload's ztunnel
    // takes it from the authority.
    const auto& tunnel = endpoint.workload->application_tunnel;
    if (tunnel && tunnel->port) {
        return service_port;
    }
    return std::nullopt;
}

namespace {

// on_demand plans a connection to hostname-only `workload`: everything but its address, which
// the outbound path resolves (ztunnel's on-demand DNS) and fills in with `resolved`.
Plan on_demand(const state::Workload& workload, const Upstream& upstream,
               const RouteOptions& options) {
    Plan plan;
    plan.upstream = &workload;
    plan.final_destination = &workload;
    plan.service = upstream.service;
    plan.resolve_hostname = true;
    plan.resolved_port = upstream.port;
    if (workload.protocol == state::Protocol::tcp) {
        plan.kind = PlanKind::tcp;
        plan.connect_to.port = upstream.port;
        return plan;
    }
    plan.kind = PlanKind::hbone;
    plan.connect_to.port = kHbonePort;
    plan.expected_identities = expected_identities(upstream, options);
    return plan;
}

}  // namespace

void resolved(Plan& plan, const state::IpAddr& ip) {
    plan.connect_to.ip = ip;
    if (plan.kind == PlanKind::hbone) {
        plan.authority = state::SocketAddr{ip, plan.resolved_port}.to_string();
    }
}

Plan plan_outbound(const state::Snapshot& snapshot, const state::Workload& source,
                   const state::SocketAddr& destination, const RouteOptions& options) {
    if (destination.ip.is_loopback() &&
        std::find(std::begin(kZtunnelPorts), std::end(kZtunnelPorts), destination.port) !=
                std::end(kZtunnelPorts)) {
        return refuse(RefuseReason::self_call);
    }
    state::NetworkAddress key{source.network, destination.ip};
    // The service the client addressed, if the address is one (a workload IP wins).
    const state::Service* addressed = snapshot.find_address(key, source.namespace_).service;
    if (addressed != nullptr && addressed->has_waypoint()) {
        if (const state::GatewayAddress* waypoint =
                    sample_waypoint(*addressed, options.waypoint_random)) {
            return via_waypoint(snapshot, source, destination, *waypoint, addressed, nullptr,
                                options);
        }
        // Only zero-weight entries and no `waypoint`: no waypoint, as in ztunnel.
    }

    FoundUpstream found = find_upstream(snapshot, source, key, destination.port,
                                        ResolutionMode::standard, options);
    if (!found.upstream) {
        if (addressed != nullptr && addressed->lb_mode() != state::LoadBalancerMode::passthrough) {
            return refuse(RefuseReason::no_healthy_upstream);
        }
        // Unknown destination, or a Passthrough service: the original destination, in plain text.
        Plan plan;
        plan.kind = PlanKind::passthrough;
        plan.connect_to = destination;
        plan.service = addressed;
        return plan;
    }
    const Upstream& upstream = *found.upstream;
    const state::Workload& workload = *upstream.workload;
    const state::IpAddr* ip = select_ip(workload, destination.ip, upstream.service);
    bool via_gateway = workload.network != source.network && workload.network_gateway;
    bool hostname_only = workload.workload_ips.empty() && !workload.hostname.empty();
    if (hostname_only && workload.network == source.network) {
        return on_demand(workload, upstream, options);
    }
    if (ip == nullptr && !via_gateway) {
        return refuse(RefuseReason::no_workload_ip, &workload);
    }
    if (workload.network != source.network) {
        return refuse(RefuseReason::cross_network, &workload);
    }
    // A workload addressed by IP goes through its own waypoint, unless that waypoint is the
    // source (it sends traffic on after its own processing).
    if (addressed == nullptr && workload.waypoint) {
        if (!source_is_waypoint(snapshot, workload, source.identity(options.default_trust_domain),
                                options.source_ip, options.default_trust_domain)) {
            return via_waypoint(snapshot, source, destination, *workload.waypoint, upstream.service,
                                &workload, options);
        }
    }

    Plan plan;
    plan.upstream = &workload;
    plan.final_destination = &workload;
    plan.service = upstream.service;
    state::SocketAddr target{*ip, upstream.port};
    if (workload.protocol == state::Protocol::tcp) {
        plan.kind = PlanKind::tcp;
        plan.connect_to = target;
        return plan;
    }
    plan.kind = PlanKind::hbone;
    plan.connect_to = state::SocketAddr{*ip, kHbonePort};
    plan.authority = target.to_string();
    plan.expected_identities = expected_identities(upstream, options);
    return plan;
}

}  // namespace zt::proxy
