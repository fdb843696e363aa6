// outbound.cc is the outbound path: the routing decision for one captured connection and its
// HBONE execution (the CONNECT request's headers, the pool, a new link's engines and socket).

#include "src/proxy/outbound.h"

#include <array>
#include <cerrno>
#include <cstring>

#include "hbone/connect.h"
#include "src/proxy/link.h"
#include "src/proxy/on_demand.h"
#include "src/proxy/plaintext.h"
#include "src/proxy/pod.h"
#include "src/proxy/route.h"
#include "src/proxy/tls_store.h"
#include "src/proxy/tunnel.h"
#include "src/proxy/worker_context.h"

namespace zt::proxy {

namespace {

// baggage_of is the `baggage` header describing `workload` (ztunnel's baggage).
std::string baggage_of(const state::Workload& workload) {
    hbone::BaggageFields fields;
    fields.cluster = workload.cluster_id;
    fields.namespace_name = workload.namespace_;
    fields.workload_type = workload.workload_type;
    fields.workload_name = workload.workload_name;
    fields.service_name = workload.canonical_name;
    fields.service_version = workload.canonical_revision;
    if (workload.locality) {
        fields.region = workload.locality->region;
        fields.zone = workload.locality->zone;
    }
    return hbone::build_baggage(fields);
}

// connect_request builds the CONNECT for `plan`: the authority, our workload's baggage, who the
// client is (`forwarded`), and a fresh trace context.
hbone::ConnectRequest connect_request(WorkerContext& context, const state::Workload& source,
                                      const Plan& plan, const state::SocketAddr& peer) {
    hbone::ConnectRequest request;
    request.authority = plan.authority;
    request.baggage = baggage_of(source);
    request.forwarded =
            hbone::build_forwarded(peer.to_string(), plan.service ? plan.service->hostname : "");
    std::array<uint8_t, 16> trace_id;
    std::array<uint8_t, 8> parent_id;
    uint64_t r1 = context.random(), r2 = context.random(), r3 = context.random();
    std::memcpy(trace_id.data(), &r1, 8);
    std::memcpy(trace_id.data() + 8, &r2, 8);
    std::memcpy(parent_id.data(), &r3, 8);
    request.traceparent = hbone::build_traceparent(trace_id, parent_id);
    return request;
}

// tunnel_outbound carries `client`'s connection over HBONE as `plan` says.
void tunnel_outbound(WorkerContext& context, Pod& pod, UniqueFd client,
                     const state::Workload& source, const Plan& plan, const state::SocketAddr& peer,
                     const state::SocketAddr& destination) {
    std::string identity = source.identity(context.options.trust_domain);
    ConnectionParties parties;
    parties.source = &source;
    parties.destination = plan.upstream;
    parties.service = plan.service;
    parties.mutual_tls = true;
    if (auto parsed = certs::Identity::parse(identity)) {
        parties.tls_source_identity = *parsed;
    }
    ProxiedConnection& connection =
            open_connection(context, pod, ProxyPath::outbound_hbone, parties, peer, plan.connect_to,
                            plan.authority, destination.to_string());
    std::shared_ptr<const TlsContexts> tls =
            context.shared.tls ? context.shared.tls->load() : nullptr;
    const IdentityTls* entry = tls ? tls->find(identity) : nullptr;
    if (entry == nullptr) {
        finish_connection(context, connection, CloseCause::no_certificate(identity));
        return;
    }
    Tunnel& tunnel = Tunnel::create_outbound(context, pod, connection, std::move(client),
                                             connect_request(context, source, plan, peer));

    // Reuse a pooled link with room, or join one that is still being dialled: only one dial per
    // key at a time.
    PoolKey key = PoolKey::make(identity, plan.expected_identities, plan.connect_to, peer.ip);
    if (Link* pooled = pod.pool.checkout(key).first) {
        pooled->add_tunnel(tunnel);
        return;
    }
    std::vector<certs::Identity> expected;
    for (const std::string& text : plan.expected_identities) {
        if (auto id = certs::Identity::parse(text)) {
            expected.push_back(*id);
        }
    }
    hbone::H2Limits h2_limits = hbone::default_limits(hbone::Role::client);
    h2_limits.first_stream_id = context.options.first_stream_id;
    auto engine = hbone::LinkEngine::create(entry->client, expected, hbone::TlsLimits{}, h2_limits,
                                            uint64_t(monotonic_ns()), unix_ns() / kNanosPerSecond);
    if (!context.limits.accepts_link(/*inbound=*/false)) {
        tunnel.fail(CloseCause::of(CloseReason::connection_limit)
                            .with_flag(telemetry::ResponseFlag::connect));
        return;
    }
    auto socket = context.sockets.upstream(pod.network, plan.connect_to, nullptr);
    if (socket && context.limits.fd_in_reserve(socket->fd.get())) {
        tunnel.fail(CloseCause::connect_failed(EMFILE));
        return;
    }
    if (!socket) {
        tunnel.fail(CloseCause::connect_failed(socket.error().sys_errno));
        return;
    }
    if (!engine) {
        tunnel.fail(CloseCause::of(CloseReason::engine_setup_failed)
                            .with_flag(telemetry::ResponseFlag::connect));
        return;
    }
    Link& link =
            Link::dial(context, pod, std::move(*engine), std::move(*socket), plan.connect_to, key);
    link.add_tunnel(tunnel);
}

}  // namespace

void accept_outbound(WorkerContext& context, Pod& pod, UniqueFd client) {
    auto captured = admit(context, pod, client.get(), telemetry::Direction::outbound);
    if (!captured) {
        return;
    }
    const state::SocketAddr& peer = captured->peer;
    const state::SocketAddr& destination = captured->destination;
    RouteOptions route_options;
    route_options.default_trust_domain = context.options.trust_domain;
    route_options.random = context.random();
    route_options.waypoint_random = context.random();
    // The client's own address: with its identity it tells the workload's waypoint sending on
    // (which must not be sent back through itself) from any other pod of that service account.
    route_options.source_ip = peer.ip;
    Plan plan = plan_outbound(*context.snapshot, *captured->workload, destination, route_options);
    // A route over HBONE needs the pod's certificate: while it is not published (a new pod whose
    // agent is still asking the CA) the socket waits for it, as for the workload, up to the same
    // 5 s (workload_wait.h). The route is planned here anyway, so only sockets that need the
    // certificate wait; one handed back after the wait is planned again (the snapshot may have
    // changed). A hostname-only upstream over HBONE waits before its DNS lookup.
    if (plan.kind == PlanKind::hbone &&
        pod.waiting.must_wait_for_certificate(context, *captured->workload)) {
        pod.waiting.park(context, pod, ListenerKind::outbound, std::move(client),
                         /*needs_certificate=*/true);
        return;
    }
    if (plan.resolve_hostname) {
        // A hostname-only upstream: its address first (on-demand DNS), then carry_outbound.
        resolve_outbound(context, pod, std::move(client), *captured->workload, plan, peer,
                         destination);
        return;
    }
    carry_outbound(context, pod, std::move(client), *captured->workload, plan, peer, destination);
}

void carry_outbound(WorkerContext& context, Pod& pod, UniqueFd client,
                    const state::Workload& source, const Plan& plan, const state::SocketAddr& peer,
                    const state::SocketAddr& destination) {
    switch (plan.kind) {
        case PlanKind::refuse:
            refuse_connection(context, peer, destination, telemetry::Direction::outbound,
                              CloseCause::refused_by_route(plan.reason, destination.to_string(),
                                                           refuse_error(plan, destination)));
            return;
        case PlanKind::hbone:
            tunnel_outbound(context, pod, std::move(client), source, plan, peer, destination);
            return;
        case PlanKind::tcp:
        case PlanKind::passthrough:
            relay_outbound_tcp(context, pod, std::move(client), source, plan, peer, destination);
            return;
    }
}

}  // namespace zt::proxy
