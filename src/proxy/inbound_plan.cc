// inbound_plan.cc is `plan_inbound`: the checks of one CONNECT request in ztunnel's order
// (workload, authority, target port, loops, RBAC), each ending in the status ztunnel answers.

#include "src/proxy/inbound_plan.h"

#include <optional>

#include "src/proxy/connection_labels.h"
#include "src/proxy/ports.h"

namespace zt::proxy {

namespace {

InboundDecision refuse(uint16_t status, CloseCause cause) {
    InboundDecision decision;
    decision.action = InboundAction::refuse;
    decision.status = status;
    decision.cause = std::move(cause);
    return decision;
}

// service_target_port resolves a hostname authority's port for `workload`: the workload's own
// map for that service first (ztunnel's endpoint port map), else the service's target port.
// std::nullopt (or 0) means the service has no port for it.
std::optional<uint16_t> service_target_port(const state::Workload& workload,
                                            const state::Service& service, uint16_t port) {
    std::optional<uint16_t> target;
    for (const state::WorkloadService& entry : workload.services) {
        if (entry.service.hostname == service.hostname &&
            entry.service.namespace_ == service.namespace_) {
            target = state::find_port(entry.ports, port);
        }
    }
    if (!target || *target == 0) {
        std::optional<uint16_t> fallback = state::find_port(service.ports, port);
        if (fallback && *fallback != 0) {
            target = fallback;
        }
    }
    return target;
}

}  // namespace

std::string_view to_string(InboundAction action) {
    switch (action) {
        case InboundAction::connect:
            return "connect";
        case InboundAction::deny:
            return "deny";
        case InboundAction::refuse:
            return "refuse";
    }
    return "unknown";
}

InboundDecision plan_inbound(const state::Snapshot& snapshot, const InboundRequest& request) {
    const state::Workload* workload = request.workload;
    if (workload == nullptr || !request.accepting) {
        return refuse(hbone::kStatusServiceUnavailable,
                      CloseCause::of(CloseReason::unknown_workload));
    }
    // The target is always this pod's own address; only the port comes from the authority.
    const hbone::Authority& authority = request.authority;
    InboundTargetDecision accepted =
            check_inbound_target(snapshot, *workload, request.local.ip, authority);
    if (!accepted.accepted()) {
        return refuse(hbone::kStatusBadRequest,
                      CloseCause::of(CloseReason::ip_mismatch,
                                     authority_address(authority)->ip.to_string() +
                                             " != " + request.local.ip.to_string()));
    }
    state::SocketAddr target;
    target.ip = request.local.ip;
    // tunnel_target is the destination a PROXY header names: the authority's address, or for a
    // hostname one of its service's VIPs (PROXY carries no names).
    std::optional<state::SocketAddr> tunnel_target = authority_address(authority);
    const state::Service* service = nullptr;
    if (authority.kind == hbone::AuthorityKind::hostname) {
        // A service hostname: the pod's target port for that service port.
        service = snapshot.best_service_by_host(authority.host, workload->namespace_);
        std::optional<uint16_t> port;
        if (service != nullptr) {
            port = service_target_port(*workload, *service, authority.port);
        }
        if (!port || *port == 0) {
            return refuse(hbone::kStatusServiceUnavailable,
                          CloseCause::of(CloseReason::unknown_service,
                                         hbone::format_authority(authority)));
        }
        target.port = *port;
        tunnel_target = hostname_tunnel_target(*service, workload->network, authority.port);
    } else {
        target.port = authority.port;
        if (accepted.check == InboundTargetCheck::waypoint) {
            // A waypoint receiving traffic for a service it fronts reports that service.
            service =
                    snapshot.find_address_unscoped({workload->network, tunnel_target->ip}).service;
        }
    }
    if (is_ztunnel_port(target.port)) {
        return refuse(hbone::kStatusServiceUnavailable, CloseCause::of(CloseReason::self_call));
    }
    AppTunnelDecision tunnel = decide_app_tunnel(*workload, target, tunnel_target.value_or(target),
                                                 request.localhost_app_tunnel);
    if (tunnel.send_proxy_header && !tunnel_target) {
        // ztunnel's NoIPForService: a hostname whose service has no VIP to name in the header.
        return refuse(
                hbone::kStatusServiceUnavailable,
                CloseCause::of(CloseReason::unknown_service, hbone::format_authority(authority)));
    }

    InboundDecision decision;
    decision.target = tunnel.upstream;
    decision.tunnel = tunnel;
    decision.check = accepted.check;
    decision.destination = workload;
    decision.source = snapshot.workload_by_ip({workload->network, request.peer.ip});
    decision.service =
            service != nullptr ? service : guess_inbound_service(snapshot, *workload, target.port);
    // RBAC as ztunnel evaluates it, also for what a waypoint sends on: the TCP peer and its
    // verified identity (the waypoint's, not the original client's), and the pod's address on
    // the port the bytes go to (after the tunnel's override; never 15008, never loopback).
    decision.rbac.src = request.peer;
    decision.rbac.dst = tunnel.upstream;
    decision.rbac.src_identity = request.peer_identity;
    RbacDecision verdict = evaluate(snapshot.policies_for(*workload), decision.rbac);
    if (!verdict.allowed) {
        decision.action = InboundAction::deny;
        decision.status = hbone::kStatusUnauthorized;
        decision.cause = CloseCause::policy_rejection(verdict.reason);
        return decision;
    }
    decision.action = InboundAction::connect;
    decision.status = hbone::kStatusOk;
    return decision;
}

}  // namespace zt::proxy
