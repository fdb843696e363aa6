// link.cc moves one HBONE link's bytes with the ring, feeds them through its engines, and hands
// what HTTP/2 reports to the link's tunnels (or, for a CONNECT request, to inbound.cc). It
// performs the steps its `LinkState` calls for; its output leaves when the worker settles a
// completion (`flush`), never from inside an event handler.

#include "src/proxy/link.h"

#include <algorithm>
#include <cerrno>

#include "src/proxy/inbound.h"
#include "src/proxy/pod.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/sockopt.h"
#include "src/proxy/worker_context.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

// kReceiveBytes is a link's own receive buffer: up to eight full TLS records per receive.
constexpr size_t kReceiveBytes = 128 * 1024;
// kHandshakeReceiveBytes is the own buffer of a link still in its handshake, used only when
// every lent buffer is taken: one full TLS record. The 128 KiB buffer waits for the handshake,
// so a flood of stalled handshakes does not hold 128 KiB each.
constexpr size_t kHandshakeReceiveBytes = 16 * 1024 + 256;
// kDialTimeoutNs bounds a client link's TCP connect (ztunnel's connect timeout).
constexpr int64_t kDialTimeoutNs = 10 * kNanosPerSecond;

}  // namespace

Link::Link(WorkerContext& context, Pod& pod, LinkRole role,
           std::unique_ptr<hbone::LinkEngine> engine, UniqueFd fd, const state::SocketAddr& peer)
    : context_(context)
    , pod_(pod)
    , state_(role)
    , engine_(std::move(engine))
    , last_active_ns_(monotonic_ns())
    , peer_(peer)
    , fd_(std::move(fd))
    , dial_op_(&on_completion<Link, &Link::on_dialed>, this)
    , receive_op_(&on_completion<Link, &Link::on_received>, this)
    , send_op_(&on_completion<Link, &Link::on_sent>, this) {
    // ACKs ride on the answer: a new link's first flights carry one segment fewer.
    (void)set_delayed_ack(fd_.get());
    context_.limits.link_opened();
    if (role == LinkRole::server) {
        handshake_counted_ = true;
        context_.limits.handshake_started();
    }
}

Link::~Link() {
    ZT_ASSERT(!in_kernel() && !carries_streams());
    if (handshake_counted_) {
        context_.limits.handshake_ended();
    }
    if (peer_usage_ != nullptr) {
        context_.limits.release_peer(peer_identity_, *peer_usage_);
    }
    context_.limits.link_closed();
}

Link& Link::dial(WorkerContext& context, Pod& pod, std::unique_ptr<hbone::LinkEngine> engine,
                 UpstreamSocket socket, const state::SocketAddr& peer, const PoolKey& key) {
    Link& link = pod.links.adopt(std::unique_ptr<Link>(new Link(
            context, pod, LinkRole::client, std::move(engine), std::move(socket.fd), peer)));
    link.dial_address_ = std::move(socket);
    pod.pool.add(key, link);
    context.ring.connect(link.dial_op_, link.fd_.get(),
                         reinterpret_cast<sockaddr*>(&link.dial_address_.address),
                         link.dial_address_.length);
    return link;
}

Link& Link::accept(WorkerContext& context, Pod& pod, std::unique_ptr<hbone::LinkEngine> engine,
                   UniqueFd fd, const state::SocketAddr& peer, const state::SocketAddr& local) {
    (void)set_nodelay(fd.get());  // 15008's listener passes no options on, unlike 15001's.
    Link& link = pod.links.adopt(std::unique_ptr<Link>(
            new Link(context, pod, LinkRole::server, std::move(engine), std::move(fd), peer)));
    link.local_ = local;
    link.arm_receive(false);
    return link;
}

// --- tunnels ------------------------------------------------------------------------------------

void Link::add_tunnel(Tunnel& tunnel) {
    tunnel.joined(*this);
    if (state_.phase() == LinkPhase::open) {
        open_stream(tunnel);
        flush_later();
        return;
    }
    waiting_.push_back(&tunnel);
}

void Link::open_stream(Tunnel& tunnel) {
    auto stream = h2().submit_connect(tunnel.request());
    if (!stream) {
        // A link that cannot open a stream (ids spent, GOAWAY, closing) would fail every tunnel
        // the pool gives it: it leaves the pool now, and the failure does not count as use
        // (`detach` keeps the idle clock for a tunnel that never had a stream).
        pod_.pool.remove(*this);
        tunnel.fail(CloseCause::of(CloseReason::stream_open_failed)
                            .with_flag(telemetry::ResponseFlag::connect));
        return;
    }
    streams_[*stream] = &tunnel;
    last_active_ns_ = monotonic_ns();
    tunnel.stream_opened(*stream);
    // Full: it keeps serving its streams but leaves the pool, as ztunnel's pool does. So does a
    // link that just used its last stream id.
    pod_.pool.opened_stream(*this, streams_.size());
    if (h2().stream_ids_exhausted()) {
        pod_.pool.remove(*this);
    }
}

void Link::answered() {
    if (!state_.answered()) {
        handle(LinkEvent::first_answer);
    }
}

void Link::adopt_stream(Tunnel& tunnel, int32_t stream_id) {
    streams_[stream_id] = &tunnel;
    if (peer_usage_ != nullptr) {
        ++peer_usage_->streams;
    }
}

void Link::detach(Tunnel& tunnel, size_t undelivered) {
    int32_t id = tunnel.stream_id();
    if (id >= 0) {
        if (undelivered > 0) {
            h2().consume(id, undelivered);
        }
        auto found = streams_.find(id);
        if (found != streams_.end() && found->second == &tunnel) {
            streams_.erase(found);
            if (peer_usage_ != nullptr) {
                --peer_usage_->streams;
            }
        }
    }
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &tunnel), waiting_.end());
    if (id >= 0) {
        last_active_ns_ = monotonic_ns();  // Only a stream that was carried is use.
    }
    retire_if_unused();
}

size_t Link::forget_payloads(const Tunnel& tunnel) {
    size_t bytes = 0;
    for (Payload& payload : payloads_) {
        if (payload.tunnel == &tunnel) {
            payload.tunnel = nullptr;
            bytes += payload.bytes.size();
        }
    }
    return bytes;
}

void Link::flush_later() {
    context_.flush_later(*this);
}

bool Link::upstream_connecting() const {
    for (const auto& [id, tunnel] : streams_) {
        if (tunnel->state().phase() == TunnelPhase::connecting) {
            return true;
        }
    }
    return false;
}

PoolView Link::pool_view() const {
    bool open = state_.phase() == LinkPhase::open;
    return {open, streams_.size() + waiting_.size(), open ? engine_->h2().streams_available() : 0};
}

// --- completions --------------------------------------------------------------------------------

void Link::on_dialed(int32_t res, uint32_t) {
    if (state_.phase() != LinkPhase::dialing) {
        context_.free_later(*this);  // It failed while the connect was in the kernel.
        return;
    }
    if (res < 0) {
        // The tick cancels a connect that takes too long: reported as ztunnel's timeout.
        fail(res == -ECANCELED ? CloseCause::of(CloseReason::dial_timeout)
                               : CloseCause::connect_failed(-res));
        return;
    }
    local_ = local_address(fd_.get());
    handle(LinkEvent::dialed);
}

void Link::on_received(int32_t res, uint32_t flags) {
    const uint8_t* data = receive_buffer_.get();
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        lent_id_ = uring::BufferRing::buffer_id(flags);
        data = context_.read_buffers->buffer(uint16_t(lent_id_)).data();
    }
    bool giving_back = state_.receiving() == LinkReceiving::giving_back;
    handle(LinkEvent::received);
    if (state_.ending()) {
        return_lent_buffer();
        context_.free_later(*this);
        return;
    }
    if ((res == -ECANCELED && giving_back) || res == -ENOBUFS) {
        if (giving_back && state_.phase() == LinkPhase::open && !carries_streams()) {
            receive_buffer_.reset();
        }
        if (res == -ENOBUFS) {
            context_.read_buffers_exhausted();
        }
        arm_receive(res == -ENOBUFS);
        return;
    }
    if (res <= 0) {
        fail(res == 0 ? CloseCause::of(CloseReason::peer_closed) : CloseCause::io_error(-res));
        return;
    }
    last_active_ns_ = monotonic_ns();
    bool was_handshaking = engine_->state() == hbone::LinkEngineState::handshaking;
    bool was_answered = state_.answered();
    // `feed` keeps no reference to its input (a trailing partial record is copied), so a lent
    // buffer goes back right after it.
    auto fed = engine_->feed(ByteSpan(data, size_t(res)));
    return_lent_buffer();
    bool finished_handshake = was_handshaking && engine_->state() == hbone::LinkEngineState::open;
    if (finished_handshake) {
        handle(LinkEvent::handshake_done);
        if (!admit_peer()) {
            fail(CloseCause::of(CloseReason::connection_limit));
            return;
        }
    }
    dispatch();
    if (!fed) {
        fail(CloseCause::engine_failure(fed.error().code, engine_->tls().error_reason()));
        return;
    }
    arm_receive(false);
    bool first_answer = !was_answered && state_.answered();
    bool connecting =
            state_.role() == LinkRole::server && finished_handshake && upstream_connecting();
    if (!hold_output(state_.role(), finished_handshake, first_answer, connecting)) {
        flush_later();
    }
}

void Link::on_sent(int32_t res, uint32_t) {
    if (res < 0) {
        if (state_.ending()) {
            handle(LinkEvent::output_done);  // Nothing more will leave.
            context_.free_later(*this);
            return;
        }
        fail(CloseCause::io_error(-res));
        return;
    }
    send_offset_ += size_t(res);
    if (send_offset_ < send_buffer_.size()) {
        context_.ring.send(
                send_op_, fd_.get(),
                ByteSpan(send_buffer_.data() + send_offset_, send_buffer_.size() - send_offset_),
                MSG_NOSIGNAL);
        return;
    }
    if (!state_.ending() && engine_->state() == hbone::LinkEngineState::closed) {
        fail(CloseCause::of(CloseReason::link_closed));
        return;
    }
    flush_later();
    if (state_.ending()) {
        context_.free_later(*this);
    }
}

// --- the worker ---------------------------------------------------------------------------------

void Link::flush() {
    if (send_op_.in_kernel || state_.phase() == LinkPhase::dialing ||
        state_.phase() == LinkPhase::closed) {
        return;
    }
    if (engine_->pending_output().empty()) {
        if (state_.phase() == LinkPhase::closing) {
            handle(LinkEvent::output_done);
        }
        return;
    }
    // Take the engines' output buffer itself (a swap, no copy): they keep our previous, drained
    // buffer, so nothing they do while the kernel reads this one can move or overwrite it.
    send_buffer_.clear();
    engine_->take_output(send_buffer_);
    send_offset_ = 0;
    context_.ring.send(send_op_, fd_.get(), ByteSpan(send_buffer_.data(), send_buffer_.size()),
                       MSG_NOSIGNAL);
    // Framing produced events (`send_done` for lent socket buffers): hand them on now, or a
    // tunnel would wait for the peer's next frame to read its socket again.
    dispatch();
}

void Link::fail(const CloseCause& cause) {
    if (state_.ending()) {
        return;
    }
    cause_ = cause;
    pod_.pool.remove(*this);
    if (state_.phase() == LinkPhase::handshaking) {
        context_.counters.handshake_failed(cause);
    }
    count_misbehaviour();
    if (state_.role() == LinkRole::server && cause.reason != CloseReason::peer_closed) {
        log::debug("proxy", "inbound HBONE connection failed",
                   {log::Field::display("src.addr", peer_.to_string()),
                    log::Field::str("error", error_text(cause))});
    }
    bool never_connected = state_.phase() == LinkPhase::dialing;
    handle(LinkEvent::failed);
    if (never_connected) {
        // Nothing may be sent on a socket whose connect failed or was cancelled: a send there
        // waits in the kernel for the connect, which a blackholed peer keeps in SYN-SENT for the
        // kernel's SYN retries (~2 min), holding the link and its socket that long.
        handle(LinkEvent::output_done);
    }
    context_.free_later(*this);
}

void Link::drain() {
    pod_.pool.remove(*this);
    if (state_.phase() == LinkPhase::open) {
        h2().drain();
        flush_later();
    }
}

void Link::abort_streams(const CloseCause& cause) {
    for (const auto& [id, tunnel] : streams_) {
        tunnel->impose(cause);
    }
    fail(cause);
}

void Link::tick(int64_t now_ns) {
    if (state_.ending()) {
        return;
    }
    if (state_.phase() == LinkPhase::dialing) {
        if (now_ns - last_active_ns_ > kDialTimeoutNs) {
            // Cancelling the connect ends it with -ECANCELED: reported as the timeout.
            context_.ring.cancel(dial_op_);
        }
        return;
    }
    if (state_.role() == LinkRole::server) {
        for (const auto& [id, tunnel] : streams_) {
            tunnel->check_connect_deadline(now_ns);
        }
    }
    auto ticked = engine_->tick(uint64_t(now_ns));
    count_misbehaviour();
    if (!ticked) {
        fail(CloseCause::of(ticked.error().code == Errc::timed_out ? CloseReason::keepalive_timeout
                                                                   : CloseReason::protocol_error));
        return;
    }
    // A client link out of the pool (it was full, or got GOAWAY) can take no new stream: it went
    // with its last stream (`retire_if_unused`, which also catches any left here); a pooled one
    // goes after the pool's idle timeout. After a burst this returns ~75 KB per link at each end.
    if (state_.role() == LinkRole::client && !carries_streams()) {
        if (!pod_.pool.contains(*this)) {
            retire_if_unused();
        } else if (pod_.pool.idle_expired(now_ns - last_active_ns_)) {
            pod_.pool.remove(*this);
            h2().drain();
            fail(CloseCause::of(CloseReason::link_idle));
            return;
        }
    }
    // What the tick produced (a PING) leaves with this completion; an idle link with nothing to
    // send gives its buffers back. Here, outside any event handling, no event still points into
    // the engine's buffers.
    if (state_.phase() == LinkPhase::open && !carries_streams() && !send_op_.in_kernel &&
        engine_->pending_output().empty()) {
        release_idle();
    }
    flush_later();
}

// --- steps --------------------------------------------------------------------------------------

void Link::handle(LinkEvent event) {
    LinkSteps steps = state_.on(event);
    if (handshake_counted_ && state_.phase() != LinkPhase::handshaking) {
        handshake_counted_ = false;  // Done, or failed: no longer a pending handshake.
        context_.limits.handshake_ended();
    }
    if (steps.start_tls) {
        // The client speaks first: the first flight is produced by feeding nothing.
        auto started = engine_->feed({});
        if (!started) {
            fail(CloseCause::tls_start_failure(started.error().code));
            return;
        }
    }
    if (steps.cancel_dial) {
        context_.ring.cancel(dial_op_);
    }
    if (steps.cancel_receive) {
        context_.ring.cancel(receive_op_);
    }
    if (steps.end_tunnels) {
        // A client's tunnels end with the link's cause; a server's with "connection lost".
        CloseCause lost =
                state_.role() == LinkRole::client ? cause_ : CloseCause::of(CloseReason::link_lost);
        std::vector<Tunnel*> tunnels(waiting_.begin(), waiting_.end());
        for (const auto& [id, tunnel] : streams_) {
            tunnels.push_back(tunnel);
        }
        for (Tunnel* tunnel : tunnels) {
            tunnel->on_link_lost(lost);
        }
    }
    if (steps.open_streams) {
        std::vector<Tunnel*> waiting;
        waiting.swap(waiting_);
        for (Tunnel* tunnel : waiting) {
            open_stream(*tunnel);
        }
    }
    if (steps.receive) {
        arm_receive(false);
    }
    if (steps.flush) {
        flush_later();
    }
}

void Link::arm_receive(bool own_buffer) {
    if (receive_op_.in_kernel || state_.ending()) {
        return;
    }
    // Only a link whose buffers the tick released receives into lent ones: one that is idle
    // between two tunnels keeps its own (no allocation per tunnel). A link in its handshake
    // has no buffer of its own yet and receives into lent ones too.
    bool handshaking = state_.phase() == LinkPhase::handshaking;
    bool idle = state_.phase() == LinkPhase::open && !carries_streams();
    if (!own_buffer && receive_buffer_ == nullptr && (idle || handshaking) &&
        context_.read_buffers != nullptr) {
        context_.ring.recv_select(receive_op_, fd_.get(), context_.read_buffers->group());
        handle(LinkEvent::receiving_lent);
        return;
    }
    size_t wanted = handshaking ? kHandshakeReceiveBytes : kReceiveBytes;
    if (receive_buffer_ != nullptr && receive_bytes_ < wanted) {
        receive_buffer_.reset();  // The handshake's small buffer: nothing is in the kernel.
    }
    if (receive_buffer_ == nullptr) {
        receive_buffer_ = std::make_unique_for_overwrite<uint8_t[]>(wanted);
        receive_bytes_ = wanted;
    }
    context_.ring.recv(receive_op_, fd_.get(), std::span(receive_buffer_.get(), receive_bytes_));
    handle(LinkEvent::receiving_own);
}

bool Link::admit_peer() {
    if (state_.role() != LinkRole::server || peer_usage_ != nullptr) {
        return true;
    }
    peer_identity_ = engine_->tls().peer_identity().to_string();
    peer_usage_ = context_.limits.add_peer_link(peer_identity_);
    return peer_usage_ != nullptr;
}

void Link::count_misbehaviour() {
    H2Misbehaviour now = H2Misbehaviour::of(h2().counters());
    uint64_t counted = misbehaviour_counted_ ? misbehaviour_counted_->total() : 0;
    if (now.total() == counted) {
        return;
    }
    if (misbehaviour_counted_ == nullptr) {
        misbehaviour_counted_ = std::make_unique<H2Misbehaviour>();
    }
    context_.counters.h2_misbehaved(*misbehaviour_counted_, now);
    *misbehaviour_counted_ = now;
}

void Link::return_lent_buffer() {
    if (lent_id_ >= 0) {
        context_.read_buffers->give_back(uint16_t(lent_id_));
        lent_id_ = -1;
    }
}

void Link::dispatch() {
    hbone::H2Event event;
    while (h2().poll_event(event)) {
        if (event.kind == hbone::H2EventKind::request) {
            // A failed link starts nothing. Its peer's requests can be decoded in the very read
            // that failed it (a link over its identity's cap sends CONNECT with its Finished)
            // and reach here when its last bytes are flushed; a tunnel started then would be
            // left on a link that is being freed.
            if (!state_.ending()) {
                on_connect_request(*this, event);
            }
            continue;
        }
        if (event.kind == hbone::H2EventKind::goaway) {
            pod_.pool.remove(*this);  // It takes no new stream; its streams go on.
            goaway_received_ = true;
            goaway_code_ = event.error_code;
            continue;
        }
        auto found = streams_.find(event.stream_id);
        Tunnel* tunnel = found == streams_.end() ? nullptr : found->second;
        if (tunnel == nullptr) {
            if (event.kind == hbone::H2EventKind::data) {
                h2().consume(event.stream_id, event.data.size());
            }
            continue;
        }
        if (event.kind != hbone::H2EventKind::data && !payloads_.empty()) {
            hand_over_payloads(tunnel);  // Bytes before a FIN or a reset go first.
        }
        switch (event.kind) {
            case hbone::H2EventKind::response:
                tunnel->on_response(event.status);
                break;
            case hbone::H2EventKind::data:
                // The payload borrows the engine's plaintext until the next feed; it is handed
                // over when this dispatch ends, so that one feed's frames leave in one socket
                // send. The window is returned when the bytes reach the socket.
                payloads_.push_back({tunnel, event.data});
                break;
            case hbone::H2EventKind::end_stream:
                tunnel->on_end_stream();
                break;
            case hbone::H2EventKind::reset:
                tunnel->on_reset(event.error_code);
                break;
            case hbone::H2EventKind::send_done:
                tunnel->on_framed();
                break;
            case hbone::H2EventKind::closed:
                // A stream the GOAWAY left unprocessed is reported with the GOAWAY's code, as
                // ztunnel's HTTP/2 library reports it.
                tunnel->on_stream_closed(goaway_received_ ? goaway_code_ : event.error_code,
                                         goaway_received_);
                break;
            default:
                break;
        }
    }
    hand_over_payloads(nullptr);
}

void Link::hand_over_payloads(Tunnel* only) {
    if (payloads_.empty()) {
        return;
    }
    for (size_t i = 0; i < payloads_.size(); i++) {
        Tunnel* tunnel = payloads_[i].tunnel;
        if (tunnel != nullptr && (only == nullptr || tunnel == only)) {
            tunnel->take_payloads(payloads_, i);
        }
    }
    if (only == nullptr) {
        payloads_.clear();
    } else {
        std::erase_if(payloads_, [](const Payload& payload) { return payload.tunnel == nullptr; });
    }
}

void Link::release_idle() {
    engine_->release_idle_buffers();
    send_buffer_.clear();
    send_buffer_.release();
    if (receive_buffer_ == nullptr || context_.read_buffers == nullptr ||
        state_.receiving() == LinkReceiving::giving_back) {
        return;
    }
    if (!receive_op_.in_kernel) {
        receive_buffer_.reset();
        return;
    }
    // The receive in flight holds the 128 KiB buffer: swap it for a lent one. Its CQE
    // (-ECANCELED, or bytes if they won the race) frees it and re-arms.
    handle(LinkEvent::idle_release);
}

void Link::retire_if_unused() {
    // A client link that left the pool (full, GOAWAY, drain) closes after its last stream, as
    // ztunnel's does (hyper closes a connection nothing refers to); a pooled one waits for reuse
    // until the idle timeout. With POOL_MAX_STREAMS_PER_CONNECTION=1 this is every link, so none
    // lingers holding a socket. The GOAWAY lets nghttp2 end the session once written; `on_sent`
    // then ends the link.
    if (state_.role() != LinkRole::client || pod_.pool.contains(*this) ||
        state_.phase() != LinkPhase::open || carries_streams()) {
        return;
    }
    if (h2().state() == hbone::H2State::open) {
        h2().drain();  // Not twice: a drained link already sent its GOAWAY.
    }
    flush_later();
}

}  // namespace zt::proxy
