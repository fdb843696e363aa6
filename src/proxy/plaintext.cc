// plaintext.cc runs the two plaintext paths over the splice relay and turns a relay's end into
// the connection's close cause.

#include "src/proxy/plaintext.h"

#include "src/proxy/pod.h"
#include "src/proxy/worker_context.h"

namespace zt::proxy {

namespace {

// relay_to connects to `target` from `pod` (from `client_address` when set) and splices
// `client` to it; a failure finishes `connection`.
void relay_to(WorkerContext& context, Pod& pod, UniqueFd client, ProxiedConnection& connection,
              const state::SocketAddr& target, const state::SocketAddr* client_address) {
    auto upstream = context.sockets.upstream(pod.network, target, client_address);
    if (!upstream) {
        finish_connection(context, connection,
                          CloseCause::connect_failed(upstream.error().sys_errno));
        return;
    }
    auto relay = context.relays->connect_and_relay(std::move(client), std::move(upstream->fd),
                                                   reinterpret_cast<sockaddr*>(&upstream->address),
                                                   upstream->length, &connection);
    if (!relay) {
        context.counters.connection_refused(to_string(CloseReason::connection_limit));
        finish_connection(context, connection,
                          CloseCause::of(CloseReason::connection_limit)
                                  .with_flag(telemetry::ResponseFlag::connect));
        return;
    }
    connection.relay = *relay;
}

// relay_end_cause is what a relay's end means for its connection.
CloseCause relay_end_cause(const uring::RelayReport& report) {
    switch (report.end) {
        case uring::RelayEnd::completed:
            return {};
        case uring::RelayEnd::reset:
            // ztunnel does not report resets during the copy as errors.
            return CloseCause::of(CloseReason::reset);
        case uring::RelayEnd::connect_failed:
            return CloseCause::connect_failed(report.sys_errno);
        case uring::RelayEnd::connect_timeout:
            return CloseCause::of(CloseReason::connect_timeout)
                    .with_flag(telemetry::ResponseFlag::connect);
        case uring::RelayEnd::idle_timeout:
            return CloseCause::of(CloseReason::idle_timeout);
        case uring::RelayEnd::aborted:
            return CloseCause::of(CloseReason::aborted);
        case uring::RelayEnd::drained:
            return CloseCause::of(CloseReason::drained);
        case uring::RelayEnd::no_resources:
            return CloseCause::of(CloseReason::out_of_pipes);
    }
    return {};
}

}  // namespace

void relay_outbound_tcp(WorkerContext& context, Pod& pod, UniqueFd client,
                        const state::Workload& source, const Plan& plan,
                        const state::SocketAddr& peer, const state::SocketAddr& destination) {
    state::SocketAddr target = plan.kind == PlanKind::tcp ? plan.connect_to : destination;
    ConnectionParties parties;
    parties.source = &source;
    parties.destination = plan.upstream;
    parties.service = plan.service;
    ProxiedConnection& connection = open_connection(context, pod, ProxyPath::outbound_tcp, parties,
                                                    peer, target, {}, destination.to_string());
    relay_to(context, pod, std::move(client), connection, target, nullptr);
}

void accept_inbound_plaintext(WorkerContext& context, Pod& pod, UniqueFd client) {
    auto captured = admit(context, pod, client.get(), telemetry::Direction::inbound);
    if (!captured) {
        return;
    }
    const state::Snapshot& snapshot = *context.snapshot;
    const state::Workload& workload = *captured->workload;
    ConnectionParties parties;
    parties.source = snapshot.workload_by_ip({workload.network, captured->peer.ip});
    parties.destination = &workload;
    parties.service = guess_inbound_service(snapshot, workload, captured->destination.port);
    ProxiedConnection& connection = open_connection(
            context, pod, ProxyPath::inbound_plaintext, parties, captured->peer,
            captured->destination, {}, parties.service ? parties.service->hostname : "");
    // Tracked before the first check, so a policy swap cannot slip between check and track.
    connection.policy_tracked = true;
    connection.rbac.src = captured->peer;
    connection.rbac.dst = captured->destination;
    RbacDecision decision = evaluate(snapshot.policies_for(workload), connection.rbac);
    if (!decision.allowed) {
        finish_connection(context, connection, CloseCause::policy_rejection(decision.reason));
        return;
    }
    relay_to(context, pod, std::move(client), connection, captured->destination, &captured->peer);
}

void on_relay_done(void* user, const uring::RelayReport& report) {
    WorkerContext& context = *static_cast<WorkerContext*>(user);
    auto& connection = *static_cast<ProxiedConnection*>(report.user);
    // Istio's byte convention: received = client->server, sent = server->client.
    connection.log.request_bytes = report.bytes_source_to_target;
    connection.log.response_bytes = report.bytes_target_to_source;
    // The relay engine may call this from inside `abort` or `drain`, so it frees nothing but the
    // record; the worker settles after every batch of completions.
    finish_connection(context, connection, relay_end_cause(report));
}

}  // namespace zt::proxy
