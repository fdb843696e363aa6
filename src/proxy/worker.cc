// worker.cc runs one data-plane thread: the ring loop, the per-pod listeners and the plain-TCP
// paths (outbound TCP and passthrough from 15001, inbound plaintext on 15006) through the splice
// relay. Control flow: every completion callback records its result and calls into one handler
// of `Worker::Impl`; pods and connections are explicit records whose kernel-held parts
// (listener accepts, relays) are released only after their completions arrived.
//
// Nothing here blocks: sockets are nonblocking, setns+socket are immediate, and cross-thread
// requests arrive as atomics plus an eventfd wake-up.

#include "src/proxy/worker.h"

#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "src/inpod/netns.h"
#include "src/proxy/conn_info.h"
#include "src/proxy/rbac.h"
#include "src/proxy/route.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/sockopt.h"
#include "src/proxy/worker_impl.h"
#include "uring/ring.h"
#include "uring/splice_relay.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

constexpr uint16_t kListenerPorts[] = {kOutboundPort, kInboundPlainPort, kInboundHbonePort};

// kTickNs paces HBONE keepalive, handshake deadlines and pool eviction.
constexpr int64_t kTickNs = kNanosPerSecond;
// kTunnelBufferGroup is the provided-buffer group id of a worker's `tunnel_buffers`.
constexpr uint16_t kTunnelBufferGroup = 1;
// kTrimDropConnections is how far a worker's open connections must fall below their peak before
// it hands freed heap memory back to the kernel: glibc keeps freed chunks in the middle of its
// per-thread arenas (only the top of a heap is trimmed on free), so after a burst of closes the
// process would stay at its peak RSS. One trim walks the free chunks of every arena (measured
// 3.5 ms after 10,000 tunnels closed, 0.3 ms for a follow-up), paid once per large drop, never
// per connection.
constexpr uint32_t kTrimDropConnections = 1024;
// kTrimFollowups is how many ticks after such a drop trim again: what goes after the
// connections (HBONE connections left without streams, closed on the next tick) is freed then.
constexpr uint32_t kTrimFollowups = 2;

}  // namespace

namespace {

void on_accept_cb(uring::Completion& completion, int32_t res, uint32_t flags) {
    auto* listener = static_cast<Listener*>(completion.context);
    listener->owner->on_accept(*listener, res, flags);
}

void on_rearm_cb(uring::Completion& completion, int32_t, uint32_t) {
    auto* listener = static_cast<Listener*>(completion.context);
    if (!listener->pod->closing && !listener->owner->draining && listener->fd) {
        listener->owner->arm_accept(*listener);
    } else {
        listener->owner->maybe_release_closing_pods();
    }
}

void on_wake_cb(uring::Completion& completion, int32_t res, uint32_t flags) {
    auto* impl = static_cast<Worker::Impl*>(completion.context);
    (void)res;
    uint64_t value;
    while (::read(impl->wake_fd.get(), &value, sizeof value) == sizeof value) {
    }
    if (!(flags & IORING_CQE_F_MORE) && !impl->stop_requested.load()) {
        impl->ring->poll_multishot(impl->wake_poll, impl->wake_fd.get(), POLLIN);
    }
    impl->on_wake();
}

void on_relay_done_cb(void* context, const uring::RelayReport& report) {
    static_cast<Worker::Impl*>(context)->on_relay_done(report);
}

void on_tick_cb(uring::Completion& completion, int32_t, uint32_t) {
    static_cast<Worker::Impl*>(completion.context)->on_tick();
}

}  // namespace

void Worker::Impl::run(std::promise<Result<void>>& started) {
    auto created = uring::Ring::create();
    if (!created) {
        started.set_value(fail(created.error()));
        return;
    }
    ring = std::move(*created);
    auto own = inpod::Netns::current();
    if (own) {
        own_netns.emplace(std::move(*own));
    }
    uring::RelayOptions relay_options;
    relay_options.relays_max = options.relays_max;
    relay_options.connect_timeout_ns = options.connect_timeout_ns;
    relays = std::make_unique<uring::RelayEngine>(*ring, relay_options, &on_relay_done_cb, this);
    if (options.tunnel_read_buffers != 0) {
        auto buffers =
                uring::BufferRing::create(*ring, kTunnelBufferGroup, options.tunnel_read_buffers,
                                          uint32_t(kTunnelFirstReadBytes));
        if (buffers) {
            tunnel_buffers = std::move(*buffers);
        } else {
            // Tunnels read into their own buffers instead: correct, 4 KiB more per idle tunnel.
            log::warn("proxy", "no provided-buffer ring for tunnel reads",
                      {log::Field::str("error", std::string(to_string(buffers.error().code)))});
        }
    }
    wake_poll.callback = &on_wake_cb;
    wake_poll.context = this;
    ring->poll_multishot(wake_poll, wake_fd.get(), POLLIN);
    tick_timer.completion.callback = &on_tick_cb;
    tick_timer.completion.context = this;
    ring->arm_timer(tick_timer, kTickNs);
    started.set_value(ok());

    on_wake();
    while (!finished()) {
        ring->run(-1);
    }
    // Every operation has completed; the buffers, the relay engine and the ring may go.
    tunnel_buffers.reset();
    relays.reset();
    ring.reset();
}

void Worker::Impl::on_tick() {
    hbone_tick_all(uint64_t(monotonic_ns()));
    maybe_trim();
    if (!stop_requested.load()) {
        ring->arm_timer(tick_timer, kTickNs);
    }
}

void Worker::Impl::maybe_trim() {
    uint32_t open = open_connections.load(std::memory_order_relaxed);
    trim_peak_connections = std::max(trim_peak_connections, open);
    bool dropped = trim_peak_connections - open >= kTrimDropConnections &&
                   open <= trim_peak_connections / 2;
    if (!dropped && trim_followups == 0) {
        return;
    }
    trim_followups = dropped ? kTrimFollowups : trim_followups - 1;
    uint32_t peak = std::exchange(trim_peak_connections, open);
    int64_t start_ns = monotonic_ns();
    ::malloc_trim(0);
    log::debug("proxy", "returned freed memory to the kernel",
               {log::Field::num("connections.peak", peak), log::Field::num("connections", open),
                log::Field::num("duration.us", uint64_t(monotonic_ns() - start_ns) / 1000)});
}

bool Worker::Impl::finished() const {
    return stop_requested.load() && ring->in_flight() == 0;
}

void Worker::Impl::on_wake() {
    if (stop_requested.load()) {
        // Stop implies force: end everything, then let the loop run dry.
        force_requested.store(true);
        drain_requested.store(true);
    }
    if (drain_requested.load() && !draining) {
        draining = true;
        for (auto& [uid, pod] : pods) {
            close_listeners(*pod);
        }
        hbone_drain_all();
    }
    if (force_requested.load() && !forced) {
        forced = true;
        relays->drain();
        for (auto& [uid, pod] : pods) {
            hbone_abort_all(*pod, CloseCause::of(CloseReason::drained));
        }
    }
    if (stop_requested.load()) {
        ring->cancel(wake_poll);
        ring->cancel_timer(tick_timer);
        // Pods without listeners or connections can go at once; the rest follow as their
        // completions arrive.
        std::vector<std::string> uids;
        for (auto& [uid, pod] : pods) {
            uids.push_back(uid);
        }
        for (const std::string& uid : uids) {
            auto node = pods.extract(uid);
            close_pod(std::move(node.mapped()), CloseReason::shutting_down);
        }
        maybe_release_closing_pods();
        return;
    }
    reconcile();
    uint64_t requested = status_requested.load();
    if (status_served.load() != requested) {
        publish_status(true);
        status_served.store(requested);
    }
}

void Worker::Impl::reconcile() {
    std::shared_ptr<const state::Snapshot> latest = shared.snapshots->load();
    if (latest == nullptr || latest == snapshot) {
        publish_status();
        return;
    }
    snapshot = std::move(latest);
    // Pods that left the file (or whose workload vanished) are drained at once, as ztunnel does
    // on a ZDS delete.
    std::vector<std::string> gone;
    for (auto& [uid, pod] : pods) {
        const state::Pod* wanted = snapshot->pod_by_uid(uid);
        if (wanted == nullptr || snapshot->pod_pending(*wanted)) {
            gone.push_back(uid);
            continue;
        }
        // A pod re-created under the same uid gets a new namespace: replace its listeners.
        auto current = inpod::Netns::open(wanted->netns);
        if (current &&
            (current->inode() != pod->netns.inode() || current->device() != pod->netns.device())) {
            gone.push_back(uid);
        }
    }
    for (const std::string& uid : gone) {
        auto node = pods.extract(uid);
        close_pod(std::move(node.mapped()), CloseReason::pod_removed);
    }
    if (!draining) {
        for (const state::Pod& wanted : snapshot->pods()) {
            if (snapshot->pod_pending(wanted) || pods.count(wanted.uid) != 0) {
                continue;
            }
            auto netns = inpod::Netns::open(wanted.netns);
            if (!netns) {
                PodStatus failed;
                log::warn(
                        "proxy", "pod network namespace unavailable",
                        {log::Field::str("pod", wanted.uid), log::Field::str("netns", wanted.netns),
                         log::Field::str("error", errno_text(netns.error().sys_errno))});
                // Retried on the next reconcile; reported through pod_status meanwhile.
                auto pod = std::make_unique<Pod>(inpod::Netns(UniqueFd(), 0, 0, wanted.netns),
                                                 pool_policy());
                pod->uid = wanted.uid;
                pod->error = "network namespace " + wanted.netns + ": " +
                             errno_text(netns.error().sys_errno);
                pods.emplace(wanted.uid, std::move(pod));
                continue;
            }
            auto pod = std::make_unique<Pod>(std::move(*netns), pool_policy());
            pod->uid = wanted.uid;
            Pod& ref = *pod;
            pods.emplace(wanted.uid, std::move(pod));
            open_pod(ref);
        }
        // Pods whose namespace was missing are retried.
        for (auto& [uid, pod] : pods) {
            if (!pod->listening && pod->netns.fd() < 0) {
                const state::Pod* wanted = snapshot->pod_by_uid(uid);
                auto netns = wanted ? inpod::Netns::open(wanted->netns)
                                    : Result<inpod::Netns>(fail(Errc::not_found));
                if (netns) {
                    pod->netns = std::move(*netns);
                    pod->error.clear();
                    open_pod(*pod);
                }
            }
        }
    }
    recheck_policies();
    reconciled.store(snapshot.get());
    publish_status();
}

Result<UniqueFd> Worker::Impl::open_listener(Pod& pod, uint16_t port) {
    // A dual-stack [::] listener takes IPv4 too; a pod without IPv6 gets 0.0.0.0.
    for (int family : {AF_INET6, AF_INET}) {
        auto sock = inpod::socket_in(pod.netns, *own_netns, family, SOCK_STREAM | SOCK_NONBLOCK, 0,
                                     options.packet_mark);
        if (!sock) {
            if (family == AF_INET6) {
                continue;
            }
            return sock;
        }
        int one = 1;
        int zero = 0;
        ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        // SO_REUSEPORT lets every worker (and an upgrading second ztunnel) bind the same port.
        ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (family == AF_INET6) {
            ::setsockopt(sock->get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        // Best effort, as ztunnel's maybe_set_transparent: lets TPROXY-style captures through.
        (void)set_transparent(sock->get(), family);
        if (port != kInboundHbonePort) {
            // Captured connections get ztunnel's TCP_NODELAY and keepalive by inheriting them
            // from their listener: set once here instead of five calls per new connection.
            (void)set_nodelay(sock->get());
            (void)set_keepalive(sock->get(), {});
        }
        sockaddr_storage addr{};
        socklen_t len;
        if (family == AF_INET6) {
            auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(port);
            v6->sin6_addr = in6addr_any;
            len = sizeof *v6;
        } else {
            auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
            v4->sin_family = AF_INET;
            v4->sin_port = htons(port);
            v4->sin_addr.s_addr = htonl(INADDR_ANY);
            len = sizeof *v4;
        }
        if (::bind(sock->get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            ::listen(sock->get(), options.listen_backlog) != 0) {
            int err = errno;
            if (family == AF_INET6 && (err == EADDRNOTAVAIL || err == EAFNOSUPPORT)) {
                continue;
            }
            return fail_errno(err);
        }
        return std::move(*sock);
    }
    return fail(Errc::unsupported);
}

void Worker::Impl::open_pod(Pod& pod) {
    for (int i = 0; i < kListenerCount; ++i) {
        auto fd = open_listener(pod, kListenerPorts[i]);
        if (!fd) {
            pod.error = "listen on port " + std::to_string(kListenerPorts[i]) + ": " +
                        errno_text(fd.error().sys_errno);
            log::error("proxy", "cannot open pod listener",
                       {log::Field::str("pod", pod.uid), log::Field::str("error", pod.error)});
            close_listeners(pod);
            return;
        }
        Listener& listener = pod.listeners[i];
        listener.owner = this;
        listener.pod = &pod;
        listener.kind = ListenerKind(i);
        listener.fd = std::move(*fd);
        listener.accept.callback = &on_accept_cb;
        listener.accept.context = &listener;
        listener.rearm.completion.callback = &on_rearm_cb;
        listener.rearm.completion.context = &listener;
    }
    for (Listener& listener : pod.listeners) {
        arm_accept(listener);
    }
    pod.listening = true;
    if (index == 0) {
        log::info("proxy", "pod listeners up", {log::Field::str("pod", pod.uid)});
    }
}

void Worker::Impl::arm_accept(Listener& listener) {
    ring->accept_multishot(listener.accept, listener.fd.get());
}

void Worker::Impl::close_listeners(Pod& pod) {
    pod.listening = false;
    for (Listener& listener : pod.listeners) {
        if (!listener.fd) {
            continue;
        }
        if (listener.accept.in_kernel) {
            // The fd closes when the accept's final completion arrives.
            ring->cancel(listener.accept);
        } else if (listener.rearm.completion.in_kernel) {
            ring->cancel_timer(listener.rearm);
        } else {
            listener.fd.reset();
        }
    }
}

void Worker::Impl::close_pod(std::unique_ptr<Pod> pod, CloseReason reason) {
    pod->closing = true;
    close_listeners(*pod);
    CloseCause why = CloseCause::of(reason);
    for (ProxiedConnection* connection : pod->conns) {
        if (connection->relay != 0) {
            connection->imposed = why;
            relays->abort(connection->relay);
        }
    }
    hbone_abort_all(*pod, why);
    closing_pods.push_back(std::move(pod));
    maybe_release_closing_pods();
}

void Worker::Impl::maybe_release_closing_pods() {
    for (size_t i = 0; i < closing_pods.size();) {
        Pod& pod = *closing_pods[i];
        bool busy = !pod.conns.empty() || !pod.hbone_conns.empty();
        for (Listener& listener : pod.listeners) {
            if (listener.accept.in_kernel || listener.rearm.completion.in_kernel) {
                busy = true;
            } else {
                listener.fd.reset();
            }
        }
        if (busy) {
            ++i;
            continue;
        }
        closing_pods.erase(closing_pods.begin() + long(i));
    }
}

void Worker::Impl::recheck_policies() {
    for (auto& [uid, pod] : pods) {
        const state::Workload* workload = snapshot->workload_by_uid(uid);
        if (workload == nullptr) {
            continue;
        }
        std::vector<const state::Policy*> policies = snapshot->policies_for(*workload);
        std::vector<ProxiedConnection*> denied;
        for (ProxiedConnection* connection : pod->conns) {
            if (!connection->inbound_tracked || connection->imposed.is_error()) {
                continue;
            }
            if (!evaluate(policies, connection->rbac).allowed) {
                denied.push_back(connection);
            }
        }
        for (ProxiedConnection* connection : denied) {
            connection->imposed = CloseCause::of(CloseReason::policy_change);
            if (connection->relay != 0) {
                relays->abort(connection->relay);
            } else if (connection->tunnel != nullptr) {
                tunnel_abort(*connection->tunnel, connection->imposed);
            }
        }
    }
}

void Worker::Impl::publish_status(bool with_connections) {
    std::vector<PodStatus> fresh;
    for (auto& [uid, pod] : pods) {
        PodStatus& entry = fresh.emplace_back();
        entry.uid = uid;
        entry.listening = pod->listening;
        entry.error = pod->error;
        entry.connections = uint32_t(pod->conns.size());
        if (!with_connections) {
            continue;
        }
        for (const ProxiedConnection* connection : pod->conns) {
            ConnectionSummary& summary = entry.connection_list.emplace_back();
            summary.inbound = connection->kind == ProxyPath::inbound_plaintext ||
                              connection->kind == ProxyPath::inbound_hbone;
            summary.src = connection->log.src_addr;
            summary.original_dst = connection->original_dst;
            summary.actual_dst = connection->log.dst_addr;
            summary.protocol = connection->kind == ProxyPath::outbound_hbone ||
                                               connection->kind == ProxyPath::inbound_hbone
                                       ? "HBONE"
                                       : "TCP";
        }
    }
    std::lock_guard lock(status_mutex);
    status = std::move(fresh);
}

void Worker::Impl::on_accept(Listener& listener, int32_t res, uint32_t flags) {
    Pod& pod = *listener.pod;
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (res >= 0) {
        UniqueFd client(res);
        if (pod.closing || draining) {
            // Accepted while the listener was being cancelled: refuse it.
            client.reset();
        } else {
            switch (listener.kind) {
                case ListenerKind::outbound:
                    on_outbound(pod, std::move(client));
                    break;
                case ListenerKind::inbound_plain:
                    on_inbound_plain(pod, std::move(client));
                    break;
                case ListenerKind::inbound_hbone:
                    on_inbound_hbone(pod, std::move(client));
                    break;
            }
        }
    }
    if (more) {
        return;
    }
    // The multishot accept ended (cancelled, or an error such as EMFILE ended it).
    if (pod.closing || draining) {
        listener.fd.reset();
        maybe_release_closing_pods();
        return;
    }
    if (res < 0 && res != -ECANCELED) {
        // Back off briefly so fd exhaustion does not become a busy loop (reliability §5).
        ring->arm_timer(listener.rearm, 50 * kNanosPerMilli);
        return;
    }
    arm_accept(listener);
}

Result<UniqueFd> Worker::Impl::make_upstream_socket(Pod& pod, const state::SocketAddr& target) {
    int family = target.ip.v6 ? AF_INET6 : AF_INET;
    auto sock = inpod::socket_in(pod.netns, *own_netns, family, SOCK_STREAM | SOCK_NONBLOCK, 0,
                                 options.packet_mark);
    if (!sock) {
        return sock;
    }
    (void)set_nodelay(sock->get());
    (void)set_keepalive(sock->get(), {});
    return sock;
}

std::optional<Worker::Impl::Captured> Worker::Impl::admit(Pod& pod, int fd,
                                                          telemetry::Direction direction) {
    Captured captured;
    captured.peer = peer_address(fd);
    auto original = original_destination(fd);
    if (!original) {
        return std::nullopt;
    }
    captured.destination = to_socket_addr(*original);
    // Loops: outbound to loopback on a ztunnel port, inbound to any ztunnel port.
    bool outbound = direction == telemetry::Direction::outbound;
    if (is_ztunnel_port(captured.destination.port) &&
        (!outbound || captured.destination.ip.is_loopback())) {
        telemetry::log_connection_failed(captured.peer.to_string(),
                                         captured.destination.to_string(), direction,
                                         error_text(CloseCause::of(CloseReason::self_call)));
        return std::nullopt;
    }
    captured.workload = snapshot ? snapshot->workload_by_uid(pod.uid) : nullptr;
    if (captured.workload == nullptr) {
        CloseCause unknown = CloseCause::of(outbound ? CloseReason::unknown_source_workload
                                                     : CloseReason::unknown_destination_workload,
                                            pod.uid);
        telemetry::log_connection_failed(captured.peer.to_string(),
                                         captured.destination.to_string(), direction,
                                         error_text(unknown));
        return std::nullopt;
    }
    // TCP_NODELAY and keepalive came with the socket from its listener (open_listener).
    return captured;
}

ProxiedConnection* Worker::Impl::open_conn(Pod& pod, ProxyPath kind,
                                           const ConnectionParties& parties,
                                           const state::SocketAddr& src,
                                           const state::SocketAddr& dst,
                                           std::string_view hbone_addr, std::string original_dst) {
    bool outbound = kind == ProxyPath::outbound_tcp || kind == ProxyPath::outbound_hbone;
    auto* connection = new ProxiedConnection();
    connection->pod = &pod;
    connection->kind = kind;
    connection->start_ns = monotonic_ns();
    connection->original_dst = std::move(original_dst);
    connection->log = connection_log(
            outbound ? telemetry::Direction::outbound : telemetry::Direction::inbound, parties, src,
            dst, hbone_addr, options.trust_domain);
    if (shared.traffic != nullptr) {
        // Opened is counted here, after the decision, as ztunnel counts it.
        connection->metrics = telemetry::ConnectionMetrics(
                *shared.traffic, size_t(index),
                traffic_labels(
                        outbound ? telemetry::Reporter::source : telemetry::Reporter::destination,
                        parties, options.trust_domain));
    }
    telemetry::log_connection_opened(connection->log);
    return connection;
}

void Worker::Impl::track(ProxiedConnection& connection) {
    connection.pod->conns.insert(&connection);
    open_connections.fetch_add(1, std::memory_order_relaxed);
}

void Worker::Impl::relay_to(Pod& pod, UniqueFd client, ProxiedConnection* connection,
                            const state::SocketAddr& target, bool spoof) {
    auto upstream = make_upstream_socket(pod, target);
    if (!upstream) {
        finish_conn(*connection, CloseCause::connect_failed(upstream.error().sys_errno));
        delete connection;
        return;
    }
    if (spoof) {
        (void)spoof_source(upstream->get(), connection->rbac.src, target);
    }
    sockaddr_storage addr;
    socklen_t len = to_sockaddr(target, addr);
    auto relay = relays->connect_and_relay(std::move(client), std::move(*upstream),
                                           reinterpret_cast<sockaddr*>(&addr), len, connection);
    if (!relay) {
        finish_conn(*connection, CloseCause::of(CloseReason::connection_limit)
                                         .with_flag(telemetry::ResponseFlag::connect));
        delete connection;
        return;
    }
    connection->relay = *relay;
    track(*connection);
}

void Worker::Impl::on_outbound(Pod& pod, UniqueFd client) {
    auto captured = admit(pod, client.get(), telemetry::Direction::outbound);
    if (!captured) {
        return;
    }
    const state::SocketAddr& peer = captured->peer;
    const state::SocketAddr& destination = captured->destination;
    RouteOptions route_options;
    route_options.default_trust_domain = options.trust_domain;
    route_options.random = random();
    Plan plan = plan_outbound(*snapshot, *captured->workload, destination, route_options);
    if (plan.kind == PlanKind::refuse) {
        telemetry::log_connection_failed(
                peer.to_string(), destination.to_string(), telemetry::Direction::outbound,
                error_text(CloseCause::refused_by_route(plan.reason, destination.to_string())));
        return;
    }
    if (plan.kind == PlanKind::hbone) {
        start_outbound_hbone(pod, std::move(client), *captured->workload, plan, peer, destination);
        return;
    }
    state::SocketAddr target = plan.kind == PlanKind::tcp ? plan.connect_to : destination;
    ConnectionParties parties;
    parties.source = captured->workload;
    parties.destination = plan.upstream;
    parties.service = plan.service;
    ProxiedConnection* connection = open_conn(pod, ProxyPath::outbound_tcp, parties, peer, target,
                                              {}, destination.to_string());
    relay_to(pod, std::move(client), connection, target, false);
}

void Worker::Impl::on_inbound_plain(Pod& pod, UniqueFd client) {
    auto captured = admit(pod, client.get(), telemetry::Direction::inbound);
    if (!captured) {
        return;
    }
    const state::Workload* workload = captured->workload;
    ConnectionParties parties;
    parties.source = snapshot->workload_by_ip({workload->network, captured->peer.ip});
    parties.destination = workload;
    parties.service = guess_inbound_service(*snapshot, *workload, captured->destination.port);
    ProxiedConnection* connection =
            open_conn(pod, ProxyPath::inbound_plaintext, parties, captured->peer,
                      captured->destination, {}, parties.service ? parties.service->hostname : "");
    // Tracked before the first check, so a policy swap cannot slip between check and track.
    connection->inbound_tracked = true;
    connection->rbac.src = captured->peer;
    connection->rbac.dst = captured->destination;
    RbacDecision decision = evaluate(snapshot->policies_for(*workload), connection->rbac);
    if (!decision.allowed) {
        finish_conn(*connection, CloseCause::policy_rejection(decision.reason));
        delete connection;
        return;
    }
    relay_to(pod, std::move(client), connection, captured->destination, true);
}

bool Worker::Impl::spoof_source(int fd, const state::SocketAddr& peer,
                                const state::SocketAddr& target) {
    // Connect from the client's own address so the application sees it (ztunnel's
    // freebind_connect); without CAP_NET_ADMIN fall back to an unspoofed connect, warning once.
    if (peer.ip == target.ip) {
        return true;
    }
    int family = target.ip.v6 ? AF_INET6 : AF_INET;
    if (peer.ip.v6 == target.ip.v6 && set_transparent(fd, family)) {
        // The port is left to connect(2) (see set_bind_address_no_port); best effort.
        (void)set_bind_address_no_port(fd);
        state::SocketAddr from = peer;
        from.port = 0;
        sockaddr_storage bind_addr;
        socklen_t bind_len = to_sockaddr(from, bind_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&bind_addr), bind_len) == 0) {
            return true;
        }
    }
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
        log::warn("proxy",
                  "cannot connect from the original source address; "
                  "the application will see ztunnel's address");
    }
    return false;
}

void Worker::Impl::finish_conn(ProxiedConnection& connection, const CloseCause& cause) {
    connection.metrics.add_request_bytes(connection.log.request_bytes);
    connection.metrics.add_response_bytes(connection.log.response_bytes);
    connection.metrics.close(cause.flag);
    telemetry::log_connection_complete(connection.log, monotonic_ns() - connection.start_ns,
                                       error_text(cause));
}

void Worker::Impl::on_relay_done(const uring::RelayReport& report) {
    std::unique_ptr<ProxiedConnection> connection(static_cast<ProxiedConnection*>(report.user));
    Pod& pod = *connection->pod;
    pod.conns.erase(connection.get());
    open_connections.fetch_sub(1, std::memory_order_relaxed);
    // Istio's byte convention: received = client→server, sent = server→client.
    connection->log.request_bytes = report.bytes_source_to_target;
    connection->log.response_bytes = report.bytes_target_to_source;

    CloseCause cause = connection->imposed;
    if (!cause.is_error()) {
        switch (report.end) {
            case uring::RelayEnd::completed:
                break;
            case uring::RelayEnd::reset:
                // ztunnel does not report resets during the copy as errors.
                cause = CloseCause::of(CloseReason::reset);
                break;
            case uring::RelayEnd::connect_failed:
                cause = CloseCause::connect_failed(report.sys_errno);
                break;
            case uring::RelayEnd::connect_timeout:
                cause = CloseCause::of(CloseReason::connect_timeout)
                                .with_flag(telemetry::ResponseFlag::connect);
                break;
            case uring::RelayEnd::idle_timeout:
                cause = CloseCause::of(CloseReason::idle_timeout);
                break;
            case uring::RelayEnd::aborted:
                cause = CloseCause::of(CloseReason::aborted);
                break;
            case uring::RelayEnd::drained:
                cause = CloseCause::of(CloseReason::drained);
                break;
            case uring::RelayEnd::no_resources:
                cause = CloseCause::of(CloseReason::out_of_pipes);
                break;
        }
    }
    finish_conn(*connection, cause);
    if (pod.closing) {
        maybe_release_closing_pods();
    }
}

// --- Worker (control-thread API) ----------------------------------------------------------------

Worker::Worker(int index, WorkerOptions options, WorkerShared shared)
    : impl_(std::make_unique<Impl>(index, std::move(options), shared)) {}

Worker::~Worker() {
    if (impl_->thread.joinable()) {
        stop();
    }
}

Result<void> Worker::start() {
    impl_->wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!impl_->wake_fd) {
        return fail_errno(errno);
    }
    std::promise<Result<void>> started;
    auto result = started.get_future();
    impl_->thread = std::thread([this, &started] { impl_->run(started); });
    Result<void> outcome = result.get();
    if (!outcome) {
        impl_->thread.join();
    }
    return outcome;
}

void Worker::wake() {
    uint64_t one = 1;
    (void)!::write(impl_->wake_fd.get(), &one, sizeof one);
}

void Worker::begin_drain() {
    impl_->drain_requested.store(true);
    wake();
}

void Worker::force_close() {
    impl_->force_requested.store(true);
    wake();
}

void Worker::stop() {
    impl_->stop_requested.store(true);
    wake();
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

uint32_t Worker::connections() const {
    return impl_->open_connections.load(std::memory_order_relaxed);
}

const state::Snapshot* Worker::reconciled_snapshot() const {
    return impl_->reconciled.load();
}

bool Worker::refresh_status(int64_t timeout_ns) {
    uint64_t ticket = impl_->status_requested.fetch_add(1) + 1;
    wake();
    int64_t deadline = monotonic_ns() + timeout_ns;
    while (impl_->status_served.load() < ticket) {
        if (monotonic_ns() >= deadline) {
            return false;
        }
        ::usleep(500);
    }
    return true;
}

std::vector<PodStatus> Worker::pod_status() const {
    std::lock_guard lock(impl_->status_mutex);
    return impl_->status;
}

}  // namespace zt::proxy
