// hbone_paths.cc is the HBONE half of a worker: outbound tunnels from 15001 over pooled client
// connections (ztunnel's WorkloadHBONEPool: one dial per key at a time, others wait for it, at most
// 100 streams per connection, a connection that got GOAWAY takes no new stream, 5 minutes idle
// release), and the 15008 server (per CONNECT stream: authority checks, RBAC, a connect to the
// application from the client's address, then 200 and the relay). Engines are hbone/'s sans-I/O
// `Connection`s; this file moves their bytes with the ring and maps TCP events onto HTTP/2 ones:
// FIN ↔ END_STREAM, RST ↔ RST_STREAM(CONNECT_ERROR).
//
// Every record here owns completions: it is freed only by the `*_maybe_free` functions, and only
// when none of its completions is in the kernel.

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "hbone/connect.h"
#include "src/proxy/conn_info.h"
#include "src/proxy/inbound_plan.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/sockopt.h"
#include "src/proxy/worker_impl.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

constexpr size_t kHboneRecvBytes = 128 * 1024;
// kTunnelReadBytes is one socket read handed to HTTP/2 on a bulk flow: sixteen full DATA frames,
// sixteen TLS records (256 KiB, the size ztunnel's copy buffers grow to). A tunnel starts with
// kTunnelFirstReadBytes (worker_impl.h) and grows to this once a read fills it. Against 64 KiB
// (interleaved A/B, PARTS=iperf RUNS=3 DURATION=3, 2 rounds, medians of 6): client ztunnel
// 1.27 -> 1.23 CPU s/GB and 5.55 -> 5.86 Gbit/s at 1 stream, 1.29 -> 1.10 and 5.62 -> 6.27 at
// 8 streams; the client reads and sends a quarter as often per GB.
constexpr size_t kTunnelReadBytes = 16 * (16384 - 9);
constexpr int64_t kDialTimeoutNs = 10 * kNanosPerSecond;

void hc_connect_cb(uring::Completion& c, int32_t res, uint32_t) {
    auto* link = static_cast<Link*>(c.context);
    link->owner->hbone_on_connect(*link, res);
}

void hc_recv_cb(uring::Completion& c, int32_t res, uint32_t flags) {
    auto* link = static_cast<Link*>(c.context);
    link->owner->hbone_on_recv(*link, res, flags);
}

void hc_send_cb(uring::Completion& c, int32_t res, uint32_t) {
    auto* link = static_cast<Link*>(c.context);
    link->owner->hbone_on_send(*link, res);
}

void t_connect_cb(uring::Completion& c, int32_t res, uint32_t) {
    auto* t = static_cast<Tunnel*>(c.context);
    t->owner->tunnel_on_connect(*t, res);
}

void t_recv_cb(uring::Completion& c, int32_t res, uint32_t flags) {
    auto* t = static_cast<Tunnel*>(c.context);
    t->owner->tunnel_on_recv(*t, res, flags);
}

void t_send_cb(uring::Completion& c, int32_t res, uint32_t) {
    auto* t = static_cast<Tunnel*>(c.context);
    t->owner->tunnel_on_send(*t, res);
}

std::unique_ptr<Link> new_hbone_conn(Worker::Impl* owner, Pod& pod, hbone::Role role) {
    auto link = std::make_unique<Link>();
    link->owner = owner;
    link->pod = &pod;
    link->role = role;
    link->connect_c.callback = &hc_connect_cb;
    link->connect_c.context = link.get();
    link->recv_c.callback = &hc_recv_cb;
    link->recv_c.context = link.get();
    link->send_c.callback = &hc_send_cb;
    link->send_c.context = link.get();
    link->last_active_ns = monotonic_ns();
    return link;
}

Tunnel* new_tunnel(Worker::Impl* owner, bool outbound, UniqueFd sock, ProxiedConnection* record) {
    auto* t = new Tunnel();
    t->owner = owner;
    t->outbound = outbound;
    t->sock = std::move(sock);
    t->record = record;
    t->sock_connect.callback = &t_connect_cb;
    t->sock_connect.context = t;
    t->sock_recv.callback = &t_recv_cb;
    t->sock_recv.context = t;
    t->sock_send.callback = &t_send_cb;
    t->sock_send.context = t;
    record->tunnel = t;
    return t;
}

std::string baggage_of(const state::Workload& w) {
    hbone::BaggageFields fields;
    fields.cluster = w.cluster_id;
    fields.namespace_name = w.namespace_;
    fields.workload_type = w.workload_type;
    fields.workload_name = w.workload_name;
    fields.service_name = w.canonical_name;
    fields.service_version = w.canonical_revision;
    if (w.locality) {
        fields.region = w.locality->region;
        fields.zone = w.locality->zone;
    }
    return hbone::build_baggage(fields);
}

}  // namespace

// --- outbound -------------------------------------------------------------------------------

void Worker::Impl::start_outbound_hbone(Pod& pod, UniqueFd client, const state::Workload& source,
                                        const Plan& plan, const state::SocketAddr& peer,
                                        const state::SocketAddr& destination) {
    std::string identity = source.identity(options.trust_domain);
    ConnectionParties parties;
    parties.source = &source;
    parties.destination = plan.upstream;
    parties.service = plan.service;
    parties.mutual_tls = true;
    if (auto parsed = certs::Identity::parse(identity)) {
        parties.tls_source_identity = *parsed;
    }
    ProxiedConnection* record = open_conn(pod, ProxyPath::outbound_hbone, parties, peer,
                                          plan.connect_to, plan.authority, destination.to_string());

    std::shared_ptr<const TlsContexts> tls = shared.tls ? shared.tls->load() : nullptr;
    const IdentityTls* entry = tls ? tls->find(identity) : nullptr;
    if (entry == nullptr) {
        finish_conn(*record, CloseCause::no_certificate(identity));
        delete record;
        return;
    }
    track(*record);
    Tunnel* t = new_tunnel(this, true, std::move(client), record);
    t->request.authority = plan.authority;
    t->request.baggage = baggage_of(source);
    t->request.forwarded =
            hbone::build_forwarded(peer.to_string(), plan.service ? plan.service->hostname : "");
    std::array<uint8_t, 16> trace_id;
    std::array<uint8_t, 8> parent_id;
    uint64_t r1 = random(), r2 = random(), r3 = random();
    std::memcpy(trace_id.data(), &r1, 8);
    std::memcpy(trace_id.data() + 8, &r2, 8);
    std::memcpy(parent_id.data(), &r3, 8);
    t->request.traceparent = hbone::build_traceparent(trace_id, parent_id);

    // Reuse a pooled link with room, or join one that is still being dialled: only one dial per
    // key at a time.
    PoolKey key = PoolKey::make(identity, plan.expected_identities, plan.connect_to, peer.ip);
    auto [pooled, choice] = pod.pool.checkout(key);
    if (choice == PoolChoice::use) {
        start_stream(*pooled, *t);
        hbone_flush(*pooled);
        return;
    }
    if (choice == PoolChoice::wait) {
        t->link = pooled;
        pooled->waiting.push_back(t);
        return;
    }

    std::vector<certs::Identity> expected;
    for (const std::string& text : plan.expected_identities) {
        if (auto id = certs::Identity::parse(text)) {
            expected.push_back(*id);
        }
    }
    auto engine = hbone::LinkEngine::create(entry->client, expected, hbone::TlsLimits{},
                                            hbone::default_limits(hbone::Role::client),
                                            uint64_t(monotonic_ns()), unix_ns() / kNanosPerSecond);
    auto sock = make_upstream_socket(pod, plan.connect_to);
    if (!engine || !sock) {
        tunnel_abort(*t, sock ? CloseCause::of(CloseReason::engine_setup_failed)
                                         .with_flag(telemetry::ResponseFlag::connect)
                              : CloseCause::connect_failed(sock.error().sys_errno));
        return;
    }
    (void)set_delayed_ack(sock->get());
    auto owned = new_hbone_conn(this, pod, hbone::Role::client);
    Link& link = *owned;
    link.engine = std::move(*engine);
    link.fd = std::move(*sock);
    link.peer = plan.connect_to;
    link.local_identity = identity;
    link.state = LinkPhase::dialing;
    link.connect_len = to_sockaddr(plan.connect_to, link.connect_addr);
    t->link = &link;
    link.waiting.push_back(t);
    pod.pool.add(key, link);
    pod.hbone_conns.insert(owned.release());
    ring->connect(link.connect_c, link.fd.get(), reinterpret_cast<sockaddr*>(&link.connect_addr),
                  link.connect_len);
}

void Worker::Impl::hbone_on_connect(Link& link, int32_t res) {
    if (link.state != LinkPhase::dialing) {
        hbone_maybe_free(link);
        return;
    }
    if (res < 0) {
        hbone_fail(link, res == -ECANCELED ? CloseCause::of(CloseReason::dial_timeout)
                                           : CloseCause::connect_failed(-res));
        return;
    }
    link.local = local_address(link.fd.get());
    link.state = LinkPhase::handshaking;
    // The client speaks first: the first flight is produced by feeding nothing.
    auto started = link.engine->feed({});
    if (!started) {
        hbone_fail(link, CloseCause::tls_start_failure(started.error().code));
        return;
    }
    hbone_arm_recv(link);
    hbone_flush(link);
}

void Worker::Impl::start_stream(Link& link, Tunnel& t) {
    t.link = &link;
    auto stream = link.engine->h2().submit_connect(t.request);
    if (!stream) {
        tunnel_abort(t, CloseCause::of(CloseReason::stream_open_failed)
                                .with_flag(telemetry::ResponseFlag::connect));
        return;
    }
    t.stream_id = *stream;
    // nghttp2 copied the header fields: the tunnel need not keep ~400 bytes of them while idle.
    t.request = {};
    t.state = TunnelState::awaiting_response;
    link.streams[t.stream_id] = &t;
    link.last_active_ns = monotonic_ns();
    // Full: it keeps serving its streams but leaves the pool, as ztunnel's pool does.
    link.pod->pool.opened_stream(link, link.streams.size());
}

void Worker::Impl::hbone_opened(Link& link) {
    std::vector<Tunnel*> waiting;
    waiting.swap(link.waiting);
    for (Tunnel* t : waiting) {
        start_stream(link, *t);
    }
}

void Worker::Impl::on_response(Tunnel& t, uint16_t http_status) {
    if (http_status == hbone::kStatusOk) {
        t.link->answered = true;
        tunnel_open(t);
        return;
    }
    // The server refused: the application's connection is closed (not reset) and the status
    // is the error, as ztunnel reports `http status: 401`.
    t.stream_closed = true;
    tunnel_abort(t, CloseCause::http_refusal(http_status));
}

// --- inbound --------------------------------------------------------------------------------

void Worker::Impl::on_inbound_hbone(Pod& pod, UniqueFd client) {
    state::SocketAddr peer = peer_address(client.get());
    state::SocketAddr local = local_address(client.get());
    const state::Workload* workload = snapshot ? snapshot->workload_by_uid(pod.uid) : nullptr;
    if (workload == nullptr) {
        telemetry::log_connection_failed(peer.to_string(), local.to_string(),
                                         telemetry::Direction::inbound,
                                         error_text(CloseCause::of(CloseReason::unknown_workload)));
        return;
    }
    std::string identity = workload->identity(options.trust_domain);
    std::shared_ptr<const TlsContexts> tls = shared.tls ? shared.tls->load() : nullptr;
    const IdentityTls* entry = tls ? tls->find(identity) : nullptr;
    if (entry == nullptr) {
        telemetry::log_connection_failed(peer.to_string(), local.to_string(),
                                         telemetry::Direction::inbound,
                                         error_text(CloseCause::no_certificate(identity)));
        return;
    }
    auto engine = hbone::LinkEngine::create(entry->server, {}, hbone::TlsLimits{},
                                            hbone::default_limits(hbone::Role::server),
                                            uint64_t(monotonic_ns()), unix_ns() / kNanosPerSecond);
    if (!engine) {
        return;
    }
    (void)set_nodelay(client.get());
    (void)set_delayed_ack(client.get());
    auto owned = new_hbone_conn(this, pod, hbone::Role::server);
    Link& link = *owned;
    link.engine = std::move(*engine);
    link.fd = std::move(client);
    link.peer = peer;
    link.local = local;
    link.local_identity = identity;
    link.state = LinkPhase::handshaking;
    pod.hbone_conns.insert(owned.release());
    hbone_arm_recv(link);
}

void Worker::Impl::reject_stream(Link& link, int32_t stream_id, uint16_t http_status,
                                 ProxiedConnection* record, const CloseCause& cause) {
    (void)link.engine->h2().respond(stream_id, http_status);
    if (record != nullptr) {
        finish_conn(*record, cause);
        delete record;
    } else {
        telemetry::log_connection_failed(link.peer.to_string(), link.local.to_string(),
                                         telemetry::Direction::inbound, error_text(cause));
    }
}

void Worker::Impl::on_request(Link& link, const hbone::H2Event& event) {
    Pod& pod = *link.pod;
    if (snapshot == nullptr) {  // Pods exist only once a snapshot does; kept for safety.
        reject_stream(link, event.stream_id, hbone::kStatusServiceUnavailable, nullptr,
                      CloseCause::of(CloseReason::unknown_workload));
        return;
    }
    InboundRequest request;
    request.workload = snapshot ? snapshot->workload_by_uid(pod.uid) : nullptr;
    request.accepting = !pod.closing && !draining;
    request.authority = event.authority;
    request.local = link.local;
    request.peer = link.peer;
    request.peer_identity = link.engine->tls().peer_identity();
    InboundDecision decision = plan_inbound(*snapshot, request);
    if (decision.action == InboundAction::refuse) {
        reject_stream(link, event.stream_id, decision.status, nullptr, decision.cause);
        return;
    }
    ConnectionParties parties;
    parties.source = decision.source;
    parties.destination = decision.destination;
    parties.service = decision.service;
    parties.mutual_tls = true;
    parties.tls_source_identity = request.peer_identity;
    ProxiedConnection* record = open_conn(pod, ProxyPath::inbound_hbone, parties, link.peer,
                                          decision.target, hbone::format_authority(event.authority),
                                          parties.service ? parties.service->hostname : "");
    record->inbound_tracked = true;
    record->rbac = decision.rbac;
    if (decision.action == InboundAction::deny) {
        reject_stream(link, event.stream_id, decision.status, record, decision.cause);
        return;
    }
    const state::SocketAddr& target = decision.target;
    auto upstream = make_upstream_socket(pod, target);
    if (!upstream) {
        reject_stream(link, event.stream_id, hbone::kStatusServiceUnavailable, record,
                      CloseCause::connect_failed(upstream.error().sys_errno));
        return;
    }
    (void)spoof_source(upstream->get(), link.peer, target);
    track(*record);
    Tunnel* t = new_tunnel(this, false, std::move(*upstream), record);
    t->link = &link;
    t->stream_id = event.stream_id;
    t->state = TunnelState::connecting;
    link.streams[t->stream_id] = t;
    t->upstream_len = to_sockaddr(target, t->upstream_addr);
    ring->connect(t->sock_connect, t->sock.get(), reinterpret_cast<sockaddr*>(&t->upstream_addr),
                  t->upstream_len);
}

void Worker::Impl::tunnel_on_connect(Tunnel& t, int32_t res) {
    if (t.state == TunnelState::closing) {
        tunnel_maybe_free(t);
        return;
    }
    Link& link = *t.link;
    if (res < 0) {
        (void)link.engine->h2().respond(t.stream_id, hbone::kStatusServiceUnavailable);
        t.stream_closed = true;
        tunnel_abort(t, CloseCause::connect_failed(-res));
        hbone_flush(link);
        return;
    }
    // TCP_NODELAY and keepalive were set before the connect (make_upstream_socket).
    // 200 only once the application accepted the connection (ztunnel-behaviour §2.4).
    (void)link.engine->h2().respond(t.stream_id, hbone::kStatusOk);
    tunnel_open(t);
    hbone_flush(link);
}

// --- tunnels --------------------------------------------------------------------------------

void Worker::Impl::tunnel_open(Tunnel& t) {
    t.state = TunnelState::open;
    tunnel_arm_recv(t);
    tunnel_pump_down(t);
}

void Worker::Impl::tunnel_arm_recv(Tunnel& t) {
    if (t.state != TunnelState::open || t.up_outstanding || t.sock_eof || t.sock_recv.in_kernel) {
        return;
    }
    // Neither the kernel nor HTTP/2 holds `up_buf` here, so it may be resized or freed.
    if (t.up_bulk || t.up_heap_once || tunnel_buffers == nullptr) {
        t.up_heap_once = false;
        t.up_buf.resize(t.up_bulk ? kTunnelReadBytes : kTunnelFirstReadBytes);
        ring->recv(t.sock_recv, t.sock.get(), t.up_buf);
        return;
    }
    // A chatty or idle tunnel waits without a buffer: the kernel lends one of the worker's
    // small buffers when bytes arrive, and it goes back once HTTP/2 has framed them.
    if (!t.up_buf.empty()) {
        std::vector<uint8_t>().swap(t.up_buf);
    }
    ring->recv_select(t.sock_recv, t.sock.get(), tunnel_buffers->group());
}

void Worker::Impl::count_buffers_exhausted() {
    tunnel_buffers_exhausted++;
    if ((tunnel_buffers_exhausted & (tunnel_buffers_exhausted - 1)) == 0) {
        // Logged at 1, 2, 4, 8, ...: visible without flooding the log in a burst.
        log::debug("proxy", "every lent read buffer is in use; reading into own buffers",
                   {log::Field::num("worker", uint64_t(index)),
                    log::Field::num("tunnel_read_buffers", options.tunnel_read_buffers),
                    log::Field::num("exhausted_total", tunnel_buffers_exhausted)});
    }
}

void Worker::Impl::tunnel_return_buffer(Tunnel& t) {
    if (t.up_lent >= 0) {
        tunnel_buffers->give_back(uint16_t(t.up_lent));
        t.up_lent = -1;
    }
}

void Worker::Impl::tunnel_on_recv(Tunnel& t, int32_t res, uint32_t flags) {
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        ZT_ASSERT(t.up_lent < 0);
        t.up_lent = uring::BufferRing::buffer_id(flags);
    }
    if (t.state == TunnelState::closing) {
        tunnel_return_buffer(t);
        tunnel_maybe_free(t);
        return;
    }
    if (res == -ENOBUFS && !t.up_bulk) {
        // Every small buffer is lent out: read this once into the tunnel's own buffer.
        count_buffers_exhausted();
        t.up_heap_once = true;
        tunnel_arm_recv(t);
        return;
    }
    Link& link = *t.link;
    if (res > 0) {
        ByteSpan data =
                t.up_lent >= 0
                        ? ByteSpan(tunnel_buffers->buffer(uint16_t(t.up_lent)).data(), size_t(res))
                        : ByteSpan(t.up_buf.data(), size_t(res));
        size_t capacity = t.up_lent >= 0 ? size_t(tunnel_buffers->size_bytes()) : t.up_buf.size();
        t.bytes_up += uint64_t(res);
        // A read that fills its buffer makes the flow bulk (reads of kTunnelReadBytes from then
        // on); a small read on a bulk flow makes it chatty again, so that it waits on a lent
        // buffer and gives its own one back.
        t.up_bulk = size_t(res) == capacity || (t.up_bulk && size_t(res) > kTunnelFirstReadBytes);
        auto queued = link.engine->h2().write_data(t.stream_id, data, false);
        if (!queued) {
            tunnel_return_buffer(t);
            tunnel_abort(t, CloseCause::of(CloseReason::stream_refused_data));
        } else {
            t.up_outstanding = true;
        }
    } else if (res == 0) {
        t.sock_eof = true;
        (void)link.engine->h2().write_data(t.stream_id, ByteSpan(), true);
        tunnel_maybe_done(t);
    } else {
        // A reset from the application becomes RST_STREAM(CONNECT_ERROR) (RFC 9113 §8.5).
        t.abort_socket = true;
        tunnel_abort(t, CloseCause::of(CloseReason::reset));
    }
    hbone_flush(link);
}

void Worker::Impl::tunnel_pump_down(Tunnel& t) {
    if (t.state != TunnelState::open || t.sock_send.in_kernel) {
        return;
    }
    if (t.down_offset == t.down_inflight.size()) {
        if (!t.down_queued.empty()) {
            t.down_inflight.swap(t.down_queued);
            t.down_queued.clear();
            t.down_offset = 0;
        } else {
            // Drained after a small send (a chatty or idle flow): keep no capacity, it is
            // allocated again when DATA arrives. A bulk flow keeps its two buffers, so that it
            // does not allocate and regrow them for every send.
            if (t.down_inflight.size() <= kTunnelFirstReadBytes &&
                (t.down_inflight.capacity() != 0 || t.down_queued.capacity() != 0)) {
                std::vector<uint8_t>().swap(t.down_inflight);
                std::vector<uint8_t>().swap(t.down_queued);
                t.down_offset = 0;
            }
            if (t.peer_fin && !t.shut_wr) {
                // A direct shutdown(2), not the ring's: io_uring always hands SHUTDOWN to an
                // io-wq worker thread, a thread wake-up per tunnel. Inline, the FIN is sent on
                // this thread instead; interleaved A/B (connrate, 6 runs): CPU per new
                // connection -10 % client / -7 % server ztunnel, p50 latency unchanged. On a
                // TCP socket the call never blocks. Errors (ENOTCONN: the application already
                // went away) change nothing: the write side is done either way. The caller
                // checks tunnel_maybe_done.
                (void)::shutdown(t.sock.get(), SHUT_WR);
                t.shut_wr = true;
            }
            return;
        }
    }
    ring->send(t.sock_send, t.sock.get(),
               ByteSpan(t.down_inflight.data() + t.down_offset,
                        t.down_inflight.size() - t.down_offset),
               MSG_NOSIGNAL);
}

void Worker::Impl::tunnel_on_send(Tunnel& t, int32_t res) {
    if (t.state == TunnelState::closing) {
        tunnel_maybe_free(t);
        return;
    }
    if (res == -EAGAIN && t.down_direct_bytes > 0) {
        // Under load a direct send sometimes reported a full socket instead of waiting for room
        // (a gathered one, Linux 6.18, load_ci: ~1 run in 3; a lone full socket does not show
        // it). The owned path's plain send never did. Nothing was sent: the bytes go on as
        // owned ones, by the plain send.
        res = 0;
    }
    if (res < 0) {
        Link* link = t.link;
        t.abort_socket = true;
        tunnel_abort(t, CloseCause::of(CloseReason::reset));
        if (link != nullptr) {
            hbone_flush(*link);
        }
        return;
    }
    if (t.down_direct_bytes > 0) {
        if (size_t(res) < t.down_direct_bytes) {
            // A short send: the rest becomes owned bytes, so a slow application does not hold
            // the engine's plaintext buffer (and is not sent from it again).
            t.down_inflight.clear();
            t.down_offset = 0;
            if (t.down_direct_data != nullptr) {
                t.down_inflight.assign(t.down_direct_data + res,
                                       t.down_direct_data + t.down_direct_bytes);
            } else {
                size_t skip = size_t(res);
                for (const iovec& piece : t.down_gather->pieces) {
                    auto* base = static_cast<const uint8_t*>(piece.iov_base);
                    size_t from = std::min(skip, piece.iov_len);
                    skip -= from;
                    t.down_inflight.insert(t.down_inflight.end(), base + from,
                                           base + piece.iov_len);
                }
            }
        }
        t.down_direct_bytes = 0;
        t.down_direct_data = nullptr;
        t.down_pin.reset();
    } else {
        t.down_offset += size_t(res);
    }
    t.bytes_down += uint64_t(res);
    tunnel_pump_down(t);
    Link* link = t.link;
    if (link != nullptr) {
        // The window goes back only now that the bytes left for the application: back-pressure.
        link->engine->h2().consume(t.stream_id, size_t(res));
    }
    // May free `t` (not `link`: a tunnel still attached to a connection means it is not closing).
    tunnel_maybe_done(t);
    if (link != nullptr) {
        hbone_flush(*link);
    }
}

void Worker::Impl::tunnel_maybe_done(Tunnel& t) {
    if (t.state == TunnelState::closing) {
        return;
    }
    if (t.sock_eof && t.shut_wr && !t.up_outstanding) {
        tunnel_close(t);
    }
}

void Worker::Impl::tunnel_abort(Tunnel& t, const CloseCause& cause) {
    if (t.state == TunnelState::closing) {
        return;
    }
    t.cause = cause;
    if (t.link != nullptr && t.stream_id >= 0 && !t.stream_closed) {
        t.link->engine->h2().reset_stream(t.stream_id, hbone::kConnectError);
        t.stream_closed = true;
    }
    if (t.state == TunnelState::open || t.state == TunnelState::connecting) {
        t.abort_socket =
                t.abort_socket || cause.is_error() || cause.flag != telemetry::ResponseFlag::none;
    }
    tunnel_close(t);
}

void Worker::Impl::tunnel_close(Tunnel& t) {
    t.state = TunnelState::closing;
    // Detach from the HBONE connection now: it may be freed before this tunnel's socket
    // completions arrive, so a closing tunnel never looks at it again.
    Link* link = std::exchange(t.link, nullptr);
    if (t.up_outstanding) {
        // HTTP/2 still borrows the last read (a failing connection closes its streams without
        // RST_STREAM): make it forget the bytes before the buffer goes back, so that it can never
        // frame another tunnel's bytes from a reused buffer.
        if (link != nullptr && t.stream_id >= 0) {
            link->engine->h2().reset_stream(t.stream_id, hbone::kConnectError);
        }
        t.up_outstanding = false;
    }
    tunnel_return_buffer(t);
    if (link != nullptr) {
        // Received bytes that will never reach the socket still hold connection window: give it
        // back, or every aborted stream would shrink the connection's window until the peer
        // cannot send on any stream of it.
        size_t undelivered = t.down_queued.size() + (t.down_inflight.size() - t.down_offset);
        for (auto& [owner, span] : link->borrowed) {
            if (owner == &t) {
                owner = nullptr;
                undelivered += span.size();
            }
        }
        // A direct send in flight: the kernel may still read the pinned plaintext, so the pin
        // stays until the tunnel is freed.
        undelivered += std::exchange(t.down_direct_bytes, 0);
        if (t.stream_id >= 0 && undelivered > 0) {
            link->engine->h2().consume(t.stream_id, undelivered);
            t.down_queued.clear();
            t.down_offset = t.down_inflight.size();
        }
        if (t.stream_id >= 0) {
            auto found = link->streams.find(t.stream_id);
            if (found != link->streams.end() && found->second == &t) {
                link->streams.erase(found);
            }
        }
        link->waiting.erase(std::remove(link->waiting.begin(), link->waiting.end(), &t),
                            link->waiting.end());
        link->last_active_ns = monotonic_ns();
    }
    if (ProxiedConnection* record = t.record) {
        // Bytes from the local workload's side: outbound, the socket is the client; inbound,
        // the stream carries the client's bytes.
        record->log.request_bytes = t.outbound ? t.bytes_up : t.bytes_down;
        record->log.response_bytes = t.outbound ? t.bytes_down : t.bytes_up;
        finish_conn(*record, record->imposed.is_error() ? record->imposed : t.cause);
        record->pod->conns.erase(record);
        open_connections.fetch_sub(1, std::memory_order_relaxed);
        delete record;
        t.record = nullptr;
    }
    if (t.abort_socket && t.sock) {
        linger hard{1, 0};
        ::setsockopt(t.sock.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    for (uring::Completion* c : {&t.sock_connect, &t.sock_recv, &t.sock_send}) {
        if (c->in_kernel) {
            ring->cancel(*c);
        }
    }
    tunnel_maybe_free(t);
    if (link != nullptr && link->state == LinkPhase::closing) {
        hbone_maybe_free(*link);
    } else if (link != nullptr) {
        hbone_retire_if_unused(*link);
    }
}

void Worker::Impl::tunnel_maybe_free(Tunnel& t) {
    if (t.sock_connect.in_kernel || t.sock_recv.in_kernel || t.sock_send.in_kernel) {
        dead_tunnels.insert(&t);
        return;
    }
    dead_tunnels.erase(&t);
    t.sock.reset();
    delete &t;
}

// --- HBONE connections ----------------------------------------------------------------------

bool Worker::Impl::hbone_idle(const Link& link) const {
    return link.state == LinkPhase::open && link.streams.empty() && link.waiting.empty();
}

void Worker::Impl::hbone_arm_recv(Link& link) {
    if (link.recv_c.in_kernel || link.state == LinkPhase::closing ||
        link.state == LinkPhase::closed) {
        return;
    }
    // Only a connection whose buffers the tick released receives into lent ones: one that
    // is idle between two tunnels keeps its own (no allocation per tunnel).
    if (link.recv_buf == nullptr && hbone_idle(link) && tunnel_buffers != nullptr &&
        !link.recv_heap_once) {
        ring->recv_select(link.recv_c, link.fd.get(), tunnel_buffers->group());
        return;
    }
    link.recv_heap_once = false;
    if (link.recv_buf == nullptr) {
        link.recv_buf = std::make_unique_for_overwrite<uint8_t[]>(kHboneRecvBytes);
    }
    ring->recv(link.recv_c, link.fd.get(), std::span(link.recv_buf.get(), kHboneRecvBytes));
}

void Worker::Impl::hbone_release_idle(Link& link) {
    link.engine->release_idle_buffers();
    link.send_buf.clear();
    link.send_buf.release();
    if (link.recv_buf == nullptr || tunnel_buffers == nullptr || link.recv_idle_cancel) {
        return;
    }
    if (!link.recv_c.in_kernel) {
        link.recv_buf.reset();
        return;
    }
    // The receive in flight holds the 128 KiB buffer: swap it for a lent one. Its CQE
    // (-ECANCELED, or bytes if they won the race) frees it and re-arms.
    link.recv_idle_cancel = true;
    ring->cancel(link.recv_c);
}

void Worker::Impl::hbone_on_recv(Link& link, int32_t res, uint32_t flags) {
    const uint8_t* data = link.recv_buf.get();
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        link.recv_lent = uring::BufferRing::buffer_id(flags);
        data = tunnel_buffers->buffer(uint16_t(link.recv_lent)).data();
    }
    bool idle_cancel = std::exchange(link.recv_idle_cancel, false);
    if (link.state == LinkPhase::closing || link.state == LinkPhase::closed) {
        hbone_return_recv(link);
        hbone_maybe_free(link);
        return;
    }
    if ((res == -ECANCELED && idle_cancel) || res == -ENOBUFS) {
        if (idle_cancel && hbone_idle(link)) {
            link.recv_buf.reset();
        }
        link.recv_heap_once = res == -ENOBUFS;
        if (res == -ENOBUFS) {
            count_buffers_exhausted();
        }
        hbone_arm_recv(link);
        return;
    }
    if (res <= 0) {
        hbone_fail(link, res == 0 ? CloseCause::of(CloseReason::peer_closed)
                                  : CloseCause::io_error(-res));
        return;
    }
    link.last_active_ns = monotonic_ns();
    bool was_handshaking = link.engine->state() == hbone::LinkEngineState::handshaking;
    bool was_answered = link.answered;
    // `feed` keeps no reference to its input (a trailing partial record is copied), so a lent
    // buffer goes back right after it.
    auto fed = link.engine->feed(ByteSpan(data, size_t(res)));
    hbone_return_recv(link);
    if (was_handshaking && link.engine->state() == hbone::LinkEngineState::open) {
        link.state = LinkPhase::open;
        hbone_opened(link);
    }
    hbone_drain_events(link);
    if (!fed) {
        hbone_fail(link,
                   CloseCause::engine_failure(fed.error().code, link.engine->tls().error_reason()));
        return;
    }
    hbone_arm_recv(link);
    if (hbone_hold_output(link, was_handshaking, was_answered)) {
        return;
    }
    hbone_flush(link);
}

bool Worker::Impl::hbone_hold_output(const Link& link, bool was_handshaking,
                                     bool was_answered) const {
    // What a new connection's feed leaves to send is only HTTP/2 bookkeeping, and a frame that
    // follows within a ring turn or two carries it in the same send: one flight fewer for this
    // side and one receive fewer for the peer, per new connection (RFC 9113 requires neither
    // SETTINGS nor its ACK at once, only first and eventually). The server holds its SETTINGS,
    // SETTINGS ACK and WINDOW_UPDATE until the first CONNECT's upstream connect ends (its
    // completion sends the 200 or the refusal, `tunnel_on_connect`); the client holds its
    // SETTINGS ACK until the first tunnel's first read (`tunnel_on_recv`). Every other path
    // that produces output flushes, and the tick flushes every connection: held at most 1 s.
    if (link.role == hbone::Role::server) {
        if (!was_handshaking) {
            return false;
        }
        for (const auto& [id, t] : link.streams) {
            if (t->state == TunnelState::connecting) {
                return true;
            }
        }
        return false;
    }
    return !was_answered && link.answered;
}

void Worker::Impl::hbone_return_recv(Link& link) {
    if (link.recv_lent >= 0) {
        tunnel_buffers->give_back(uint16_t(link.recv_lent));
        link.recv_lent = -1;
    }
}

void Worker::Impl::hbone_drain_events(Link& link) {
    hbone::H2Event event;
    while (link.engine->h2().poll_event(event)) {
        if (event.kind == hbone::H2EventKind::request) {
            on_request(link, event);
            continue;
        }
        if (event.kind == hbone::H2EventKind::goaway) {
            link.pod->pool.remove(link);
            continue;
        }
        auto found = link.streams.find(event.stream_id);
        Tunnel* t = found == link.streams.end() ? nullptr : found->second;
        if (t == nullptr) {
            if (event.kind == hbone::H2EventKind::data) {
                link.engine->h2().consume(event.stream_id, event.data.size());
            }
            continue;
        }
        if (event.kind != hbone::H2EventKind::data && !link.borrowed.empty()) {
            // Bytes before a FIN or a reset go first.
            hbone_settle(link, t);
        }
        switch (event.kind) {
            case hbone::H2EventKind::response:
                on_response(*t, event.status);
                break;
            case hbone::H2EventKind::data:
                // The payload borrows the engine's plaintext until the next feed; it is settled
                // when this drain ends, so that one feed's frames leave in one socket send. The
                // window is returned when the bytes reach the socket.
                link.borrowed.emplace_back(t, event.data);
                break;
            case hbone::H2EventKind::end_stream:
                t->peer_fin = true;
                tunnel_pump_down(*t);
                tunnel_maybe_done(*t);
                break;
            case hbone::H2EventKind::reset:
                t->stream_closed = true;
                if (hbone::reset_aborts_socket(event.error_code, t->peer_fin)) {
                    t->abort_socket = true;
                    tunnel_abort(*t, CloseCause::of(CloseReason::reset));
                }
                break;
            case hbone::H2EventKind::send_done:
                t->up_outstanding = false;
                tunnel_return_buffer(*t);
                tunnel_arm_recv(*t);
                tunnel_maybe_done(*t);
                break;
            case hbone::H2EventKind::closed:
                t->stream_closed = true;
                if (!(t->sock_eof && t->peer_fin)) {
                    t->abort_socket = true;
                    tunnel_abort(*t, CloseCause::of(CloseReason::reset));
                }
                break;
            default:
                break;
        }
    }
    hbone_settle(link, nullptr);
}

void Worker::Impl::hbone_settle(Link& link, Tunnel* only) {
    if (link.borrowed.empty()) {
        return;
    }
    for (size_t i = 0; i < link.borrowed.size(); i++) {
        Tunnel* t = link.borrowed[i].first;
        if (t != nullptr && (only == nullptr || t == only)) {
            tunnel_take_down(*t, i, link);
        }
    }
    if (only == nullptr) {
        link.borrowed.clear();
    } else {
        std::erase_if(link.borrowed, [](const auto& entry) { return entry.first == nullptr; });
    }
}

void Worker::Impl::tunnel_take_down(Tunnel& t, size_t first, Link& link) {
    // An idle socket sends the payloads straight from the engine's plaintext (no copy); a busy
    // or not yet open one gets them appended to its queue.
    bool direct = t.state == TunnelState::open && !t.sock_send.in_kernel &&
                  t.down_offset == t.down_inflight.size() && t.down_queued.empty();
    size_t pieces = 0;
    size_t bytes = 0;
    ByteSpan one;
    for (size_t i = first; i < link.borrowed.size(); i++) {
        auto& [owner, span] = link.borrowed[i];
        if (owner != &t) {
            continue;
        }
        owner = nullptr;
        if (!direct) {
            t.down_queued.insert(t.down_queued.end(), span.begin(), span.end());
            continue;
        }
        if (++pieces == 1) {
            one = span;
        } else {
            if (pieces == 2) {
                if (t.down_gather == nullptr) {
                    t.down_gather = std::make_unique<GatherSend>();
                }
                t.down_gather->pieces.clear();
                t.down_gather->pieces.push_back({const_cast<uint8_t*>(one.data()), one.size()});
            }
            t.down_gather->pieces.push_back({const_cast<uint8_t*>(span.data()), span.size()});
        }
        bytes += span.size();
    }
    if (!direct) {
        tunnel_pump_down(t);
        return;
    }
    if (bytes == 0) {
        return;
    }
    t.down_pin = link.engine->plaintext_owner();
    t.down_direct_bytes = bytes;
    if (pieces == 1) {
        // One frame (a chatty flow): a plain send, and no gather state for an idle tunnel.
        t.down_direct_data = one.data();
        ring->send(t.sock_send, t.sock.get(), one, MSG_NOSIGNAL);
        return;
    }
    t.down_direct_data = nullptr;
    GatherSend& g = *t.down_gather;
    g.message = {};
    g.message.msg_iov = g.pieces.data();
    g.message.msg_iovlen = g.pieces.size();
    ring->sendmsg(t.sock_send, t.sock.get(), g.message, MSG_NOSIGNAL);
}

void Worker::Impl::hbone_flush(Link& link) {
    if (link.send_c.in_kernel || link.state == LinkPhase::dialing ||
        link.state == LinkPhase::closed || !link.fd) {
        return;
    }
    if (link.engine->pending_output().empty()) {
        if (link.state == LinkPhase::closing) {
            hbone_maybe_free(link);
        }
        return;
    }
    // Take the engines' output buffer itself (a swap, no copy): they keep our previous, drained
    // buffer, so nothing they do while the kernel reads this one can move or overwrite it.
    link.send_buf.clear();
    link.engine->take_output(link.send_buf);
    size_t n = link.send_buf.size();
    link.send_offset = 0;
    link.send_len = n;
    ring->send(link.send_c, link.fd.get(), ByteSpan(link.send_buf.data(), n), MSG_NOSIGNAL);
    // Framing produced events (`send_done` for lent socket buffers): handle them now, or a tunnel
    // would wait for the peer's next frame to read its socket again.
    hbone_drain_events(link);
}

void Worker::Impl::hbone_on_send(Link& link, int32_t res) {
    if (res < 0) {
        if (link.state != LinkPhase::closing) {
            hbone_fail(link, CloseCause::io_error(-res));
        }
        hbone_maybe_free(link);
        return;
    }
    link.send_offset += size_t(res);
    if (link.send_offset < link.send_len) {
        ring->send(
                link.send_c, link.fd.get(),
                ByteSpan(link.send_buf.data() + link.send_offset, link.send_len - link.send_offset),
                MSG_NOSIGNAL);
        return;
    }
    if (link.state != LinkPhase::closing &&
        link.engine->state() == hbone::LinkEngineState::closed) {
        hbone_fail(link, CloseCause::of(CloseReason::link_closed));
        return;
    }
    hbone_flush(link);
}

void Worker::Impl::hbone_fail(Link& link, const CloseCause& cause) {
    if (link.state == LinkPhase::closing || link.state == LinkPhase::closed) {
        return;
    }
    link.state = LinkPhase::closing;
    // Aborting the tunnels below may empty the connection; it must survive this function.
    link.failing = true;
    link.cause = cause;
    link.pod->pool.remove(link);
    if (link.role == hbone::Role::server && cause.reason != CloseReason::peer_closed) {
        log::debug("proxy", "inbound HBONE connection failed",
                   {log::Field::display("src.addr", link.peer.to_string()),
                    log::Field::str("error", error_text(cause))});
    }
    std::vector<Tunnel*> tunnels(link.waiting.begin(), link.waiting.end());
    for (auto& [id, t] : link.streams) {
        tunnels.push_back(t);
    }
    // A client's tunnels end with the link's cause, a server's with "connection lost"; a tunnel
    // that was not open yet failed to connect.
    CloseCause lost =
            link.role == hbone::Role::client ? cause : CloseCause::of(CloseReason::link_lost);
    for (Tunnel* t : tunnels) {
        t->stream_closed = true;
        if (t->state == TunnelState::open && t->peer_fin && t->sock_eof) {
            // Both directions already ended on the wire: only our socket writes remain. Let the
            // tunnel finish without the connection, or the application would see a reset after
            // every byte arrived (a peer closing right after the last stream, as in a drain).
            link.streams.erase(t->stream_id);
            t->link = nullptr;
            tunnel_pump_down(*t);
            tunnel_maybe_done(*t);
            continue;
        }
        t->abort_socket = link.role == hbone::Role::server || t->state == TunnelState::open;
        tunnel_abort(*t, lost.with_flag(t->state == TunnelState::open
                                                ? telemetry::ResponseFlag::none
                                                : telemetry::ResponseFlag::connect));
    }
    if (link.connect_c.in_kernel) {
        ring->cancel(link.connect_c);
    }
    if (link.recv_c.in_kernel) {
        ring->cancel(link.recv_c);
    }
    // Flush what the engines still have (an alert, a GOAWAY), then close.
    hbone_flush(link);
    link.failing = false;
    hbone_maybe_free(link);
}

void Worker::Impl::hbone_maybe_free(Link& link) {
    if ((link.state != LinkPhase::closing && link.state != LinkPhase::closed) || link.failing) {
        return;
    }
    if (link.connect_c.in_kernel || link.recv_c.in_kernel || link.send_c.in_kernel ||
        !link.streams.empty() || !link.waiting.empty()) {
        return;
    }
    link.state = LinkPhase::closed;
    link.fd.reset();
    Pod* pod = link.pod;
    pod->hbone_conns.erase(&link);
    delete &link;
    if (pod->closing) {
        maybe_release_closing_pods();
    }
}

void Worker::Impl::hbone_retire_if_unused(Link& link) {
    // A client connection that left the pool (full, GOAWAY, drain) closes after its last stream,
    // as ztunnel's does (hyper closes a connection nothing refers to); a pooled one waits for
    // reuse until the idle timeout. With POOL_MAX_STREAMS_PER_CONNECTION=1 this is every
    // connection, so none lingers holding a socket. The GOAWAY lets nghttp2 end the session once
    // written; `hbone_on_send` then closes the socket.
    if (link.role != hbone::Role::client || link.pod->pool.contains(link) ||
        link.state != LinkPhase::open || !link.streams.empty() || !link.waiting.empty()) {
        return;
    }
    if (link.engine->h2().state() == hbone::H2State::open) {
        link.engine->h2().drain();  // Not twice: a drained connection already sent its GOAWAY.
    }
    hbone_flush(link);
}

void Worker::Impl::hbone_tick_all(uint64_t now_ns) {
    std::vector<Link*> all;
    for (auto* pods_list : {&pods}) {
        for (auto& [uid, pod] : *pods_list) {
            all.insert(all.end(), pod->hbone_conns.begin(), pod->hbone_conns.end());
        }
    }
    for (auto& pod : closing_pods) {
        all.insert(all.end(), pod->hbone_conns.begin(), pod->hbone_conns.end());
    }
    for (Link* link : all) {
        if (link->state == LinkPhase::closing || link->state == LinkPhase::closed) {
            continue;
        }
        if (link->state == LinkPhase::dialing) {
            if (int64_t(now_ns) - link->last_active_ns > kDialTimeoutNs) {
                // Cancelling the connect ends it with -ECANCELED: reported as the timeout.
                ring->cancel(link->connect_c);
            }
            continue;
        }
        auto ticked = link->engine->tick(now_ns);
        if (!ticked) {
            hbone_fail(*link, CloseCause::of(ticked.error().code == Errc::timed_out
                                                     ? CloseReason::keepalive_timeout
                                                     : CloseReason::protocol_error));
            continue;
        }
        // A client connection out of the pool (it was full, or got GOAWAY) can take no new
        // stream: it went with its last stream (`hbone_retire_if_unused`, which also catches any
        // left here); a pooled one goes after the pool's idle timeout. After a burst this returns
        // ~75 KB per connection at each end.
        if (link->role == hbone::Role::client && link->streams.empty() && link->waiting.empty()) {
            if (!link->pod->pool.contains(*link)) {
                hbone_retire_if_unused(*link);
            } else if (link->pod->pool.idle_expired(int64_t(now_ns) - link->last_active_ns)) {
                link->pod->pool.remove(*link);
                link->engine->h2().drain();
                hbone_flush(*link);
                hbone_fail(*link, CloseCause::of(CloseReason::link_idle));
                continue;
            }
        }
        hbone_flush(*link);
        if (hbone_idle(*link) && !link->send_c.in_kernel) {
            // Here, outside any event handling, no event still points into the engine's buffers.
            hbone_release_idle(*link);
        }
    }
}

void Worker::Impl::hbone_drain_all() {
    for (auto& [uid, pod] : pods) {
        for (Link* link : pod->hbone_conns) {
            pod->pool.remove(*link);
            if (link->state == LinkPhase::open) {
                link->engine->h2().drain();
                hbone_flush(*link);
            }
        }
    }
}

void Worker::Impl::hbone_abort_all(Pod& pod, const CloseCause& cause) {
    std::vector<Link*> all(pod.hbone_conns.begin(), pod.hbone_conns.end());
    for (Link* link : all) {
        for (auto& [id, t] : link->streams) {
            if (t->record != nullptr && !t->record->imposed.is_error()) {
                t->record->imposed = cause;
            }
        }
        hbone_fail(*link, cause);
    }
}

}  // namespace zt::proxy
