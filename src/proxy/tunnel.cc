// tunnel.cc moves one tunnel's bytes between its application socket and its HTTP/2 stream and
// performs the steps its `TunnelState` calls for. Every event goes through `handle` (or, where
// the cause depends on the steps, `state_.on` then `advance`); nothing here flushes a link or
// frees anything directly: it asks the worker to, at the end of the completion
// (`WorkerContext`).

#include "src/proxy/tunnel.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "src/proxy/link.h"
#include "src/proxy/pod.h"
#include "src/proxy/proxied_connection.h"
#include "src/proxy/worker_context.h"
#include "uring/buffer_ring.h"

namespace zt::proxy {

namespace {

// kBulkReadBytes is one socket read handed to HTTP/2 on a bulk flow: sixteen full DATA frames,
// sixteen TLS records (256 KiB, the size ztunnel's copy buffers grow to). A tunnel starts with
// kLentReadBytes and grows to this once a read fills it. Against 64 KiB (interleaved A/B,
// PARTS=iperf RUNS=3 DURATION=3, 2 rounds, medians of 6): client ztunnel 1.27 -> 1.23 CPU s/GB
// and 5.55 -> 5.86 Gbit/s at 1 stream, 1.29 -> 1.10 and 5.62 -> 6.27 at 8 streams; the client
// reads and sends a quarter as often per GB.
constexpr size_t kBulkReadBytes = 16 * (16384 - 9);

}  // namespace

std::string_view to_string(ReadInto into) {
    switch (into) {
        case ReadInto::lent_buffer:
            return "lent_buffer";
        case ReadInto::own_buffer_once:
            return "own_buffer_once";
        case ReadInto::own_bulk_buffer:
            return "own_bulk_buffer";
    }
    return "unknown";
}

Tunnel::Tunnel(WorkerContext& context, Pod& pod, ProxiedConnection& connection, TunnelSide side,
               UniqueFd socket)
    : context_(context)
    , pod_(pod)
    , connection_(&connection)
    , state_(side)
    , socket_(std::move(socket))
    , connect_op_(&on_completion<Tunnel, &Tunnel::on_connected>, this)
    , read_op_(&on_completion<Tunnel, &Tunnel::on_read>, this)
    , write_op_(&on_completion<Tunnel, &Tunnel::on_written>, this) {
    connection.tunnel = this;
}

Tunnel::~Tunnel() {
    ZT_ASSERT(!in_kernel());
}

Tunnel& Tunnel::create_outbound(WorkerContext& context, Pod& pod, ProxiedConnection& connection,
                                UniqueFd client, hbone::ConnectRequest request) {
    Tunnel& tunnel = pod.tunnels.adopt(std::unique_ptr<Tunnel>(
            new Tunnel(context, pod, connection, TunnelSide::outbound, std::move(client))));
    tunnel.request_ = std::move(request);
    return tunnel;
}

Tunnel& Tunnel::create_inbound(WorkerContext& context, Pod& pod, ProxiedConnection& connection,
                               Link& link, int32_t stream_id, UpstreamSocket upstream,
                               std::vector<uint8_t> preamble) {
    Tunnel& tunnel = pod.tunnels.adopt(std::unique_ptr<Tunnel>(
            new Tunnel(context, pod, connection, TunnelSide::inbound, std::move(upstream.fd))));
    // Queued before any payload can be, and sent only once the tunnel opens (after the connect,
    // with the 200): the PROXY header reaches the application ahead of the client's bytes.
    tunnel.preamble_unsent_ = preamble.size();
    tunnel.queued_ = std::move(preamble);
    tunnel.link_ = &link;
    tunnel.stream_id_ = stream_id;
    link.adopt_stream(tunnel, stream_id);
    tunnel.upstream_address_ = upstream.address;
    tunnel.upstream_length_ = upstream.length;
    tunnel.connect_started_ns_ = monotonic_ns();
    context.ring.connect(tunnel.connect_op_, tunnel.socket_.get(),
                         reinterpret_cast<sockaddr*>(&tunnel.upstream_address_),
                         tunnel.upstream_length_);
    return tunnel;
}

// --- events from the link -----------------------------------------------------------------------

void Tunnel::joined(Link& link) {
    link_ = &link;
}

void Tunnel::stream_opened(int32_t stream_id) {
    stream_id_ = stream_id;
    // nghttp2 copied the header fields: the tunnel need not keep ~400 bytes of them while idle.
    request_ = {};
    handle(TunnelEvent::stream_opened);
}

void Tunnel::on_response(uint16_t status) {
    if (status == hbone::kStatusOk) {
        link_->answered();
        handle(TunnelEvent::answered);
        return;
    }
    // The server refused: the application's connection is closed (not reset) and the status is
    // the error, as ztunnel reports `http status: 401`.
    end_with(CloseCause::http_refusal(status));
    handle(TunnelEvent::refused);
}

void Tunnel::on_end_stream() {
    handle(TunnelEvent::end_stream);
}

void Tunnel::on_reset(uint32_t error_code) {
    if (state_.phase() == TunnelPhase::awaiting_response) {
        // The peer reset the CONNECT before answering it: a failure to connect, logged with
        // ztunnel's text and counted with flag CONNECT; the application's connection is closed,
        // as on a refusal by status.
        end_with(CloseCause::h2_refusal(error_code, false));
        handle(TunnelEvent::refused);
        return;
    }
    bool end_stream_received = state_.writing() != SocketWriting::open;
    if (!hbone::reset_aborts_socket(error_code, end_stream_received)) {
        handle(TunnelEvent::stream_reset);
        return;
    }
    end_with(CloseCause::of(CloseReason::reset));
    handle(TunnelEvent::stream_aborted);
}

void Tunnel::on_framed() {
    if (state_.reading() != SocketReading::framing) {
        return;  // The END_STREAM's empty write, not a read's bytes.
    }
    return_lent_buffer();
    handle(TunnelEvent::framed);
}

void Tunnel::on_stream_closed(uint32_t error_code, bool after_goaway) {
    if (state_.phase() == TunnelPhase::awaiting_response) {
        // Closed unanswered without a reset of its own: a GOAWAY whose last stream is below this
        // one (nghttp2 closes such streams with REFUSED_STREAM), or a session that ended.
        end_with(CloseCause::h2_refusal(error_code, after_goaway));
        handle(TunnelEvent::refused);
        return;
    }
    handle(TunnelEvent::stream_closed);
}

void Tunnel::on_link_lost(const CloseCause& link_cause) {
    bool was_open = state_.phase() == TunnelPhase::open;
    TunnelSteps steps = state_.on(TunnelEvent::link_lost);
    if (steps.close) {
        // A tunnel that was not open yet failed to connect (ztunnel's CONNECT flag).
        end_with(link_cause.with_flag(was_open ? telemetry::ResponseFlag::none
                                               : telemetry::ResponseFlag::connect));
    }
    advance(steps);
}

void Tunnel::fail(const CloseCause& cause) {
    end_with(cause);
    handle(TunnelEvent::failed);
}

void Tunnel::impose(const CloseCause& cause) {
    if (connection_ != nullptr && !connection_->imposed.is_error()) {
        connection_->imposed = cause;
    }
}

void Tunnel::check_connect_deadline(int64_t now_ns) {
    if (state_.phase() != TunnelPhase::connecting || !connect_op_.in_kernel || connect_timed_out_ ||
        now_ns - connect_started_ns_ <= context_.options.connect_timeout_ns) {
        return;
    }
    // A blackholed application (SYNs dropped) would otherwise hold the stream for the kernel's
    // SYN retries (~2 min). The cancelled connect completes with -ECANCELED: `on_connected`.
    connect_timed_out_ = true;
    context_.ring.cancel(connect_op_);
}

void Tunnel::take_payloads(std::vector<Payload>& payloads, size_t first) {
    // An idle socket sends the payloads straight from the engine's plaintext (no copy); a busy
    // or not yet open one gets them appended to its queue.
    bool direct = state_.phase() == TunnelPhase::open && !write_op_.in_kernel &&
                  inflight_offset_ == inflight_.size() && queued_.empty();
    size_t pieces = 0;
    size_t bytes = 0;
    ByteSpan one;
    for (size_t i = first; i < payloads.size(); i++) {
        Payload& payload = payloads[i];
        if (payload.tunnel != this) {
            continue;
        }
        payload.tunnel = nullptr;
        ByteSpan span = payload.bytes;
        if (!direct) {
            queued_.insert(queued_.end(), span.begin(), span.end());
            continue;
        }
        if (++pieces == 1) {
            one = span;
        } else {
            if (pieces == 2) {
                if (gather_ == nullptr) {
                    gather_ = std::make_unique<GatherSend>();
                }
                gather_->pieces.clear();
                gather_->pieces.push_back({const_cast<uint8_t*>(one.data()), one.size()});
            }
            gather_->pieces.push_back({const_cast<uint8_t*>(span.data()), span.size()});
        }
        bytes += span.size();
    }
    if (!direct) {
        TunnelSteps steps;
        steps.write = true;
        advance(steps);
        return;
    }
    if (bytes == 0) {
        return;
    }
    direct_pin_ = link_->plaintext_owner();
    direct_bytes_ = bytes;
    if (pieces == 1) {
        // One frame (a chatty flow): a plain send, and no gather state for an idle tunnel.
        direct_data_ = one.data();
        context_.ring.send(write_op_, socket_.get(), one, MSG_NOSIGNAL);
        return;
    }
    direct_data_ = nullptr;
    gather_->message = {};
    gather_->message.msg_iov = gather_->pieces.data();
    gather_->message.msg_iovlen = gather_->pieces.size();
    context_.ring.sendmsg(write_op_, socket_.get(), gather_->message, MSG_NOSIGNAL);
}

// --- completions --------------------------------------------------------------------------------

void Tunnel::on_connected(int32_t res, uint32_t) {
    if (state_.phase() == TunnelPhase::closed) {
        context_.free_later(*this);
        return;
    }
    Link& link = *link_;
    if (res < 0) {
        (void)link.h2().respond(stream_id_, hbone::kStatusServiceUnavailable);
        end_with(connect_timed_out_ && res == -ECANCELED
                         ? CloseCause::of(CloseReason::connect_timeout)
                                   .with_flag(telemetry::ResponseFlag::connect)
                         : CloseCause::connect_failed(-res));
        handle(TunnelEvent::upstream_failed);
        link.flush_later();
        return;
    }
    // TCP_NODELAY and keepalive were set before the connect (`PodSockets::upstream`). 200 only
    // once the application accepted the connection (docs/ztunnel-reference.md §2.4); opening sends
    // the queued PROXY header, if any, before any payload.
    (void)link.h2().respond(stream_id_, hbone::kStatusOk);
    handle(TunnelEvent::answered);
    link.flush_later();
}

void Tunnel::on_read(int32_t res, uint32_t flags) {
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        ZT_ASSERT(lent_id_ < 0);
        lent_id_ = uring::BufferRing::buffer_id(flags);
    }
    if (state_.phase() == TunnelPhase::closed) {
        return_lent_buffer();
        context_.free_later(*this);
        return;
    }
    if (res == -ENOBUFS && read_into_ != ReadInto::own_bulk_buffer) {
        // Every small buffer is lent out: read this once into the tunnel's own buffer.
        context_.read_buffers_exhausted();
        read_into_ = ReadInto::own_buffer_once;
        handle(TunnelEvent::read_no_buffer);
        return;
    }
    Link& link = *link_;
    if (res > 0) {
        bool lent = lent_id_ >= 0;
        ByteSpan data = lent ? ByteSpan(context_.read_buffers->buffer(uint16_t(lent_id_)).data(),
                                        size_t(res))
                             : ByteSpan(read_buffer_.data(), size_t(res));
        size_t capacity = lent ? size_t(context_.read_buffers->size_bytes()) : read_buffer_.size();
        bytes_read_ += uint64_t(res);
        // A read that fills its buffer makes the flow bulk; a small read on a bulk flow makes it
        // chatty again, so that it waits on a lent buffer and gives its own one back.
        bool bulk = size_t(res) == capacity ||
                    (read_into_ == ReadInto::own_bulk_buffer && size_t(res) > kLentReadBytes);
        read_into_ = bulk ? ReadInto::own_bulk_buffer : ReadInto::lent_buffer;
        auto framed = link.h2().write_data(stream_id_, data, false);
        if (!framed) {
            return_lent_buffer();
            fail(CloseCause::of(CloseReason::stream_refused_data));
        } else {
            handle(TunnelEvent::read_data);
        }
    } else if (res == 0) {
        handle(TunnelEvent::read_eof);
    } else {
        // A reset from the application becomes RST_STREAM(CONNECT_ERROR) (RFC 9113 §8.5).
        end_with(CloseCause::of(CloseReason::reset));
        handle(TunnelEvent::socket_reset);
    }
    link.flush_later();
}

void Tunnel::on_written(int32_t res, uint32_t) {
    if (state_.phase() == TunnelPhase::closed) {
        context_.free_later(*this);
        return;
    }
    if (res == -EAGAIN && direct_bytes_ > 0) {
        // Under load a direct send sometimes reported a full socket instead of waiting for room
        // (a gathered one, Linux 6.18, load_ci: ~1 run in 3; a lone full socket does not show
        // it). The owned path's plain send never did. Nothing was sent: the bytes go on as
        // owned ones, by the plain send.
        res = 0;
    }
    Link* link = link_;
    if (res < 0) {
        end_with(CloseCause::of(CloseReason::reset));
        handle(TunnelEvent::socket_reset);
    } else {
        size_t preamble = std::min(preamble_unsent_, size_t(res));
        preamble_unsent_ -= preamble;
        written(size_t(res));
        bytes_written_ -= preamble;
        if (link != nullptr && size_t(res) > preamble) {
            // The window goes back only now that the bytes left for the application:
            // back-pressure end to end.
            link->h2().consume(stream_id_, size_t(res) - preamble);
        }
        TunnelSteps steps;
        steps.write = true;
        advance(steps);
    }
    if (link != nullptr) {
        link->flush_later();
    }
}

void Tunnel::written(size_t n) {
    if (direct_bytes_ > 0) {
        if (n < direct_bytes_) {
            // A short send: the rest becomes owned bytes, so a slow application does not hold
            // the engine's plaintext buffer (and is not sent from it again).
            inflight_.clear();
            inflight_offset_ = 0;
            if (direct_data_ != nullptr) {
                inflight_.assign(direct_data_ + n, direct_data_ + direct_bytes_);
            } else {
                size_t skip = n;
                for (const iovec& piece : gather_->pieces) {
                    auto* base = static_cast<const uint8_t*>(piece.iov_base);
                    size_t from = std::min(skip, piece.iov_len);
                    skip -= from;
                    inflight_.insert(inflight_.end(), base + from, base + piece.iov_len);
                }
            }
        }
        direct_bytes_ = 0;
        direct_data_ = nullptr;
        direct_pin_.reset();
    } else {
        inflight_offset_ += n;
    }
    bytes_written_ += n;
}

// --- steps --------------------------------------------------------------------------------------

void Tunnel::handle(TunnelEvent event) {
    advance(state_.on(event));
}

void Tunnel::end_with(const CloseCause& cause) {
    if (!cause_.is_error() && cause_.flag == telemetry::ResponseFlag::none) {
        cause_ = cause;
    }
}

void Tunnel::advance(TunnelSteps steps) {
    if (steps.end_stream && link_ != nullptr) {
        (void)link_->h2().write_data(stream_id_, ByteSpan(), true);
    }
    if (steps.reset_stream && link_ != nullptr && stream_id_ >= 0) {
        link_->h2().reset_stream(stream_id_, hbone::kConnectError);
    }
    if (steps.leave_link && link_ != nullptr) {
        std::exchange(link_, nullptr)->detach(*this, 0);
    }
    if (steps.read) {
        arm_read();
    }
    if (steps.write && !push_writes()) {
        TunnelSteps drained = state_.on(TunnelEvent::writes_drained);
        steps.shutdown = steps.shutdown || drained.shutdown;
        steps.close = steps.close || drained.close;
    }
    if (steps.shutdown) {
        // A direct shutdown(2), not the ring's: io_uring always hands SHUTDOWN to an io-wq worker
        // thread, a thread wake-up per tunnel. Inline, the FIN is sent on this thread instead;
        // interleaved A/B (connrate, 6 runs): CPU per new connection -10 % client / -7 % server
        // ztunnel, p50 latency unchanged. On a TCP socket the call never blocks. Errors
        // (ENOTCONN: the application already went away) change nothing: the write side is done
        // either way.
        (void)::shutdown(socket_.get(), SHUT_WR);
    }
    if (steps.close) {
        close();
    }
}

void Tunnel::arm_read() {
    // Neither the kernel nor HTTP/2 holds `read_buffer_` here, so it may be resized or freed.
    ZT_ASSERT(!read_op_.in_kernel && lent_id_ < 0);
    if (read_into_ != ReadInto::lent_buffer || context_.read_buffers == nullptr) {
        bool bulk = read_into_ == ReadInto::own_bulk_buffer;
        if (read_into_ == ReadInto::own_buffer_once) {
            read_into_ = ReadInto::lent_buffer;
        }
        read_buffer_.resize(bulk ? kBulkReadBytes : kLentReadBytes);
        context_.ring.recv(read_op_, socket_.get(), read_buffer_);
        return;
    }
    // A chatty or idle tunnel waits without a buffer: the kernel lends one of the worker's
    // small buffers when bytes arrive, and it goes back once HTTP/2 has framed them.
    if (!read_buffer_.empty()) {
        std::vector<uint8_t>().swap(read_buffer_);
    }
    context_.ring.recv_select(read_op_, socket_.get(), context_.read_buffers->group());
}

void Tunnel::return_lent_buffer() {
    if (lent_id_ >= 0) {
        context_.read_buffers->give_back(uint16_t(lent_id_));
        lent_id_ = -1;
    }
}

bool Tunnel::push_writes() {
    if (state_.phase() != TunnelPhase::open || write_op_.in_kernel) {
        return true;  // Not yet, or a send is in flight: its completion pushes again.
    }
    if (inflight_offset_ == inflight_.size()) {
        if (queued_.empty()) {
            // Drained after a small send (a chatty or idle flow): keep no capacity, it is
            // allocated again when DATA arrives. A bulk flow keeps its two buffers, so that it
            // does not allocate and regrow them for every send.
            if (inflight_.size() <= kLentReadBytes &&
                (inflight_.capacity() != 0 || queued_.capacity() != 0)) {
                std::vector<uint8_t>().swap(inflight_);
                std::vector<uint8_t>().swap(queued_);
                inflight_offset_ = 0;
            }
            return false;
        }
        inflight_.swap(queued_);
        queued_.clear();
        inflight_offset_ = 0;
    }
    context_.ring.send(
            write_op_, socket_.get(),
            ByteSpan(inflight_.data() + inflight_offset_, inflight_.size() - inflight_offset_),
            MSG_NOSIGNAL);
    return true;
}

void Tunnel::close() {
    Link* link = std::exchange(link_, nullptr);
    return_lent_buffer();
    if (link != nullptr) {
        // Received bytes that will never reach the socket still hold the link's window: give it
        // back, or every aborted stream would shrink the link's window until the peer cannot
        // send on any stream of it. A direct send in flight counts too; its pin stays until the
        // tunnel is freed, since the kernel may still read the pinned plaintext.
        size_t undelivered = queued_.size() + (inflight_.size() - inflight_offset_) +
                             link->forget_payloads(*this) + std::exchange(direct_bytes_, 0) -
                             std::exchange(preamble_unsent_, 0);
        queued_.clear();
        inflight_offset_ = inflight_.size();
        link->detach(*this, undelivered);
    }
    if (ProxiedConnection* connection = std::exchange(connection_, nullptr)) {
        // Bytes from the local workload's side: outbound, the socket is the client; inbound,
        // the stream carries the client's bytes.
        bool outbound = state_.side() == TunnelSide::outbound;
        connection->tunnel = nullptr;
        connection->log.request_bytes = outbound ? bytes_read_ : bytes_written_;
        connection->log.response_bytes = outbound ? bytes_written_ : bytes_read_;
        finish_connection(context_, *connection, cause_);
    }
    if (state_.ending() == SocketEnding::reset && socket_) {
        linger hard{1, 0};
        ::setsockopt(socket_.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
    for (uring::Completion* op : {&connect_op_, &read_op_, &write_op_}) {
        if (op->in_kernel) {
            context_.ring.cancel(*op);
        }
    }
    context_.free_later(*this);
}

}  // namespace zt::proxy
