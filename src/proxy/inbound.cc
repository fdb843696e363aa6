// inbound.cc is the inbound HBONE path: server links for a pod's 15008 and the execution of
// `plan_inbound`'s decision for each CONNECT stream.

#include "src/proxy/inbound.h"

#include <cerrno>

#include "src/proxy/inbound_plan.h"
#include "src/proxy/link.h"
#include "src/proxy/pod.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/tls_store.h"
#include "src/proxy/tunnel.h"
#include "src/proxy/worker_context.h"

namespace zt::proxy {

namespace {

// answer_refusal ends stream `stream_id` with `status` and reports why: as a finished
// connection when it was recorded, else as `connection failed`.
void answer_refusal(Link& link, int32_t stream_id, uint16_t status, ProxiedConnection* connection,
                    const CloseCause& cause) {
    (void)link.h2().respond(stream_id, status);
    if (connection != nullptr) {
        finish_connection(link.context(), *connection, cause);
    } else {
        refuse_connection(link.context(), link.peer(), link.local(), telemetry::Direction::inbound,
                          cause);
    }
}

}  // namespace

void accept_inbound_hbone(WorkerContext& context, Pod& pod, UniqueFd client) {
    // At a cap the socket just closes (counted, logged once per burst): a flood must cost no
    // more than the accept.
    if (!context.limits.accepts_link(/*inbound=*/true)) {
        return;
    }
    state::SocketAddr peer = peer_address(client.get());
    state::SocketAddr local = local_address(client.get());
    const state::Workload* workload =
            context.snapshot ? context.snapshot->workload_by_uid(pod.uid()) : nullptr;
    if (workload == nullptr) {
        refuse_connection(context, peer, local, telemetry::Direction::inbound,
                          CloseCause::of(CloseReason::unknown_workload));
        return;
    }
    // The pod's listener presents the pod's own identity.
    std::string identity = workload->identity(context.options.trust_domain);
    std::shared_ptr<const TlsContexts> tls =
            context.shared.tls ? context.shared.tls->load() : nullptr;
    const IdentityTls* entry = tls ? tls->find(identity) : nullptr;
    if (entry == nullptr) {
        refuse_connection(context, peer, local, telemetry::Direction::inbound,
                          CloseCause::no_certificate(identity));
        return;
    }
    auto engine = hbone::LinkEngine::create(entry->server, {}, hbone::TlsLimits{},
                                            hbone::default_limits(hbone::Role::server),
                                            uint64_t(monotonic_ns()), unix_ns() / kNanosPerSecond);
    if (!engine) {
        return;
    }
    Link::accept(context, pod, std::move(*engine), std::move(client), peer, local);
}

void on_connect_request(Link& link, const hbone::H2Event& event) {
    WorkerContext& context = link.context();
    Pod& pod = link.pod();
    if (context.snapshot == nullptr) {  // Pods exist only once a snapshot does.
        answer_refusal(link, event.stream_id, hbone::kStatusServiceUnavailable, nullptr,
                       CloseCause::of(CloseReason::unknown_workload));
        return;
    }
    if (const PeerUsage* usage = link.peer_usage();
        usage != nullptr && !context.limits.accepts_stream(*usage)) {
        (void)link.h2().respond(event.stream_id, hbone::kStatusServiceUnavailable);
        return;
    }
    // Under memory pressure a new stream is refused as ztunnel refuses overload; the link and
    // its other streams go on.
    if (context.limits.sheds_new_work()) {
        (void)link.h2().respond(event.stream_id, hbone::kStatusServiceUnavailable);
        return;
    }
    InboundRequest request;
    request.workload = context.snapshot->workload_by_uid(pod.uid());
    request.accepting = pod.accepting() && !context.draining;
    request.authority = event.authority;
    request.local = link.local();
    request.peer = link.peer();
    request.peer_identity = link.engine().tls().peer_identity();
    InboundDecision decision = plan_inbound(*context.snapshot, request);
    if (decision.action == InboundAction::refuse) {
        answer_refusal(link, event.stream_id, decision.status, nullptr, decision.cause);
        return;
    }
    ConnectionParties parties;
    parties.source = decision.source;
    parties.destination = decision.destination;
    parties.service = decision.service;
    parties.mutual_tls = true;
    parties.tls_source_identity = request.peer_identity;
    // As ztunnel logs every inbound HBONE connection: `dst.addr` the pod's HBONE address the
    // client connected to, `dst.hbone_addr` the CONNECT target.
    ProxiedConnection& connection =
            open_connection(context, pod, ProxyPath::inbound_hbone, parties, link.peer(),
                            link.local(), hbone::format_authority(event.authority),
                            parties.service ? parties.service->hostname : "");
    connection.policy_tracked = true;
    connection.rbac = decision.rbac;
    if (decision.action == InboundAction::deny) {
        answer_refusal(link, event.stream_id, decision.status, &connection, decision.cause);
        return;
    }
    std::vector<uint8_t> preamble;
    if (decision.tunnel.send_proxy_header) {
        // The verified client identity travels in TLV 0xD0; without one (not on an mTLS link)
        // the header carries the addresses alone.
        auto header = proxy_header(request.peer, request.peer_identity, decision.tunnel);
        if (!header) {
            answer_refusal(link, event.stream_id, hbone::kStatusServiceUnavailable, &connection,
                           CloseCause::of(CloseReason::engine_setup_failed));
            return;
        }
        preamble = std::move(*header);
    }
    // The application sees the client's own address, except behind a loopback application
    // tunnel: there the client is named by the PROXY header and the dial comes from loopback.
    state::SocketAddr client = link.peer();
    auto upstream = context.sockets.upstream(pod.network, decision.tunnel.connect_to,
                                             decision.tunnel.from_loopback ? nullptr : &client);
    if (upstream && context.limits.fd_in_reserve(upstream->fd.get())) {
        answer_refusal(link, event.stream_id, hbone::kStatusServiceUnavailable, &connection,
                       CloseCause::connect_failed(EMFILE));
        return;
    }
    if (!upstream) {
        answer_refusal(link, event.stream_id, hbone::kStatusServiceUnavailable, &connection,
                       CloseCause::connect_failed(upstream.error().sys_errno));
        return;
    }
    Tunnel::create_inbound(context, pod, connection, link, event.stream_id, std::move(*upstream),
                           std::move(preamble));
}

}  // namespace zt::proxy
