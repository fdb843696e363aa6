// grpc_channel.cc drives one gRPC connection on the agent's io_uring: resolve (off-thread for
// names), connect with a deadline, TLS and HTTP/2 through hbone::LinkEngine, then calls as
// generic HTTP/2 streams carrying length-prefixed messages. One `advance` per channel is the only
// code that submits to the ring; completion callbacks record what happened and call it. Memory
// the kernel holds (the receive buffer, the send buffer, timers, the socket) is left alone until
// its completion arrives; closing cancels and waits for those completions before the socket is
// closed. It knows nothing of xDS: callers bring the method, metadata and messages.

#include "src/agent/grpc_channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "certs/pem.h"
#include "certs/verify.h"
#include "zt/log.h"

namespace zt::agent::grpc {

namespace {

constexpr std::string_view kTarget = "grpc";

// kRecvBufferBytes is one receive's worth: large pushes arrive in many of these.
constexpr size_t kRecvBufferBytes = 64 * 1024;

// kCloseFlushNs bounds how long a closing channel keeps trying to send its GOAWAY and
// close_notify before it cancels the send and closes anyway.
constexpr int64_t kCloseFlushNs = 1 * kNanosPerSecond;

std::string errno_text(int err) {
    return std::string(std::strerror(err));
}

// tls_reason explains a handshake failure to an operator.
std::string tls_reason(Errc code, std::string_view server_name) {
    switch (code) {
        case Errc::cert_unknown_ca:
            return "the server's certificate does not verify to the configured root "
                   "certificates (check XDS_ROOT_CA / --xds-root-cert)";
        case Errc::cert_name_mismatch:
            return "the server's certificate is not valid for \"" + std::string(server_name) +
                   "\" (set ALT_XDS_HOSTNAME to the name it carries)";
        case Errc::cert_expired:
            return "the server's certificate has expired";
        case Errc::cert_not_yet_valid:
            return "the server's certificate is not valid yet (clock skew?)";
        case Errc::tls_alpn:
            return "the server does not speak HTTP/2 (no ALPN h2)";
        case Errc::timed_out:
            return "the TLS handshake timed out";
        default:
            return "TLS handshake failed (" + std::string(to_string(code)) + ")";
    }
}

// status_from_reset maps a stream reset by the server to the status gRPC clients report.
StatusCode status_from_reset(uint32_t code) {
    switch (code) {
        case hbone::kCancel:
            return StatusCode::cancelled;
        case hbone::kRefusedStream:
            return StatusCode::unavailable;
        case hbone::kEnhanceYourCalm:
            return StatusCode::resource_exhausted;
        default:
            return StatusCode::internal;
    }
}

}  // namespace

std::string_view to_string(ChannelState state) {
    switch (state) {
        case ChannelState::idle:
            return "idle";
        case ChannelState::resolving:
            return "resolving";
        case ChannelState::connecting:
            return "connecting";
        case ChannelState::handshaking:
            return "handshaking";
        case ChannelState::ready:
            return "ready";
        case ChannelState::draining:
            return "draining";
        case ChannelState::closing:
            return "closing";
        case ChannelState::closed:
            return "closed";
    }
    return "unknown";
}

// --- Call ---------------------------------------------------------------------------------------

Result<void> Call::send(std::string_view message) {
    if (send_closed_ || finished_) {
        return zt::fail(Errc::invalid_argument);
    }
    std::string framed;
    framed.reserve(kMessagePrefixBytes + message.size());
    append_message(framed, message);
    queued_bytes_ += framed.size();
    outgoing_.push_back(std::move(framed));
    channel_.pump_call(*this);
    channel_.advance();
    return ok();
}

void Call::close_send() {
    if (send_closed_ || finished_) {
        return;
    }
    send_closed_ = true;
    channel_.pump_call(*this);
    channel_.advance();
}

void Call::cancel() {
    if (finished_) {
        return;
    }
    channel_.finish_call(*this, CallEnd{Status{StatusCode::cancelled, "cancelled by the agent"},
                                        false, established_});
    channel_.advance();
    channel_.reap();
}

// --- Channel ------------------------------------------------------------------------------------

Channel::Channel(uring::Ring& ring, const Clock& clock, ChannelOptions options,
                 ChannelObserver& observer)
    : ring_(ring), clock_(clock), options_(std::move(options)), observer_(observer) {
    tick_timer_.completion.callback = &Channel::on_tick;
    tick_timer_.completion.context = this;
    connect_timer_.completion.callback = &Channel::on_connect_timer;
    connect_timer_.completion.context = this;
}

Channel::~Channel() {
    ZT_CHECK(state_ == ChannelState::idle || state_ == ChannelState::closed);
}

void Channel::start() {
    ZT_ASSERT(state_ == ChannelState::idle);
    auto pem = certs::read_pem_file(options_.root_cert_file);
    if (!pem) {
        state_ = ChannelState::resolving;  // Leave idle so `fail` runs the closing path.
        fail("cannot read the root certificates " + options_.root_cert_file + ": " +
             std::string(to_string(pem.error().code)) +
             (pem.error().sys_errno != 0 ? " (" + errno_text(pem.error().sys_errno) + ")" : ""));
        return;
    }
    auto roots = certs::TrustBundle::from_pem(*pem, 0);
    if (!roots) {
        state_ = ChannelState::resolving;
        fail("the root certificates in " + options_.root_cert_file +
             " are unusable: " + std::string(to_string(roots.error().code)));
        return;
    }
    std::string name = options_.server_name.empty() ? options_.host : options_.server_name;
    auto context = hbone::TlsContext::create_control_client(std::move(*roots), name);
    if (!context) {
        state_ = ChannelState::resolving;
        fail("cannot make a TLS context: " + std::string(to_string(context.error().code)));
        return;
    }
    tls_context_ = std::move(*context);
    if (auto literal = parse_address_literal(options_.host, options_.port)) {
        addresses_.push_back(*literal);
        begin_connect();
    } else {
        auto resolution = Resolution::start(options_.host, options_.port);
        if (!resolution) {
            state_ = ChannelState::resolving;
            fail("cannot start resolving " + options_.host);
            return;
        }
        resolution_ = std::move(*resolution);
        state_ = ChannelState::resolving;
        ring_.poll(resolve_completion_, resolution_->fd(), POLLIN);
    }
    advance();
}

void Channel::on_resolved(uring::Completion& self, int32_t res, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    if (channel->state_ != ChannelState::resolving) {
        channel->advance();
        return;
    }
    if (res < 0 || !channel->resolution_->done()) {
        channel->fail("resolving " + channel->options_.host + " was interrupted");
    } else if (!channel->resolution_->error().empty()) {
        channel->fail("cannot resolve " + channel->options_.host + ": " +
                      channel->resolution_->error());
    } else {
        channel->addresses_ = channel->resolution_->addresses();
        channel->resolution_.reset();
        channel->begin_connect();
    }
    channel->advance();
}

void Channel::begin_connect() {
    const SocketAddress& address = addresses_[next_address_];
    peer_ = address.to_string();
    state_ = ChannelState::connecting;
    int fd = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("cannot make a socket: " + errno_text(errno));
        return;
    }
    socket_.reset(fd);
    int on = 1;
    // Small requests (ACKs) go out at once; TCP keepalive finds a dead path a PING might not.
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &options_.tcp_keepalive_idle_s, sizeof(int));
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &options_.tcp_keepalive_interval_s,
                       sizeof(int));
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &options_.tcp_keepalive_count, sizeof(int));
    ring_.connect(connect_completion_, fd, address.get(), address.length);
    ring_.arm_timer(connect_timer_, options_.connect_timeout_ns);
}

void Channel::on_connect_timer(uring::Completion& self, int32_t res, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    if (res == -ETIME && channel->state_ == ChannelState::connecting &&
        channel->connect_completion_.in_kernel) {
        // The connect's own completion (-ECANCELED) reports the timeout.
        channel->ring_.cancel(channel->connect_completion_);
    }
    channel->advance();
}

void Channel::on_connected(uring::Completion& self, int32_t res, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    if (channel->connect_timer_.completion.in_kernel) {
        channel->ring_.cancel_timer(channel->connect_timer_);
    }
    if (channel->state_ != ChannelState::connecting) {
        channel->advance();
        return;
    }
    if (res < 0) {
        std::string why = res == -ECANCELED ? "connect timed out" : errno_text(-res);
        log::debug(kTarget, "connect failed",
                   {log::Field::display("addr", channel->peer_), log::Field::str("error", why)});
        channel->socket_.reset();
        if (channel->next_address_ + 1 < channel->addresses_.size()) {
            channel->next_address_++;
            channel->begin_connect();
        } else {
            channel->fail("cannot connect to " + channel->peer_ + ": " + why);
        }
        channel->advance();
        return;
    }
    channel->connected();
    channel->advance();
}

void Channel::connected() {
    hbone::TlsLimits tls_limits;
    tls_limits.handshake_timeout_ns = uint64_t(options_.handshake_timeout_ns);
    hbone::H2Limits h2 = hbone::default_limits(hbone::Role::client);
    h2.ping_interval_ns = uint64_t(options_.keepalive_interval_ns);
    h2.ping_timeout_ns = uint64_t(options_.keepalive_timeout_ns);
    // A response header block may carry a long grpc-message (a NACK echo, an error list).
    h2.header_list_bytes_max = 64 * 1024;
    auto connection =
            hbone::LinkEngine::create(tls_context_, {}, tls_limits, h2,
                                      uint64_t(clock_.monotonic_ns()), clock_.unix_seconds());
    if (!connection) {
        fail("cannot start TLS: " + std::string(to_string(connection.error().code)));
        return;
    }
    connection_ = std::move(*connection);
    recv_buffer_.resize(kRecvBufferBytes);
    state_ = ChannelState::handshaking;
}

void Channel::on_received(uring::Completion& self, int32_t res, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    if (channel->state_ == ChannelState::closing || channel->state_ == ChannelState::closed) {
        channel->advance();
        return;
    }
    if (res <= 0) {
        std::string why = res == 0 ? "the server closed the connection" : errno_text(-res);
        channel->fail(why);
    } else {
        channel->counters_.bytes_received += uint64_t(res);
        channel->feed(ByteSpan(channel->recv_buffer_.data(), size_t(res)));
    }
    channel->advance();
    channel->reap();
}

void Channel::feed(ByteSpan bytes) {
    bool was_handshaking = state_ == ChannelState::handshaking;
    Result<void> fed = connection_->feed(bytes);
    if (was_handshaking && connection_->tls().is_done()) {
        state_ = ChannelState::ready;
        log::debug(kTarget, "connection ready", {log::Field::display("addr", peer_)});
        observer_.on_channel_ready(*this);
        submit_waiting();
    }
    // Every event of this feed is handled before the next one (data borrows its bytes).
    in_dispatch_ = true;
    hbone::H2Event event;
    while (connection_->h2().poll_event(event)) {
        dispatch(event);
    }
    in_dispatch_ = false;
    if (!fed) {
        if (was_handshaking && !connection_->tls().is_done()) {
            fail(tls_reason(fed.error().code, tls_context_->server_name()));
        } else if (fed.error().code == Errc::eof) {
            fail("the server closed the TLS session");
        } else {
            fail("connection error: " + std::string(to_string(fed.error().code)));
        }
    }
}

Call* Channel::find_call(int32_t stream_id) {
    auto it = by_stream_.find(stream_id);
    return it == by_stream_.end() ? nullptr : it->second;
}

void Channel::dispatch(hbone::H2Event& event) {
    using hbone::H2EventKind;
    if (event.kind == H2EventKind::goaway) {
        if (state_ == ChannelState::ready) {
            state_ = ChannelState::draining;
        }
        log::debug(kTarget, "server sent GOAWAY",
                   {log::Field::display("addr", peer_), log::Field::num("code", event.error_code)});
        // Calls the server will not process end now; the others run to completion.
        for (auto& owned : calls_) {
            Call& call = *owned;
            if (!call.finished_ && call.stream_id_ > event.stream_id) {
                finish_call(call, CallEnd{Status{StatusCode::unavailable,
                                                 "the server refused the stream (GOAWAY)"},
                                          false, call.established_});
            }
        }
        return;
    }
    Call* call = find_call(event.stream_id);
    if (call == nullptr || call->finished_) {
        if (event.kind == H2EventKind::data) {
            connection_->h2().consume(event.stream_id, event.data.size());
        }
        if (event.kind == H2EventKind::closed) {
            by_stream_.erase(event.stream_id);
        }
        return;
    }
    switch (event.kind) {
        case H2EventKind::response:
            on_response_headers(*call, event);
            break;
        case H2EventKind::data:
            on_data(*call, event);
            break;
        case H2EventKind::trailers: {
            Status status = status_from_fields(event.fields);
            if (status.ok() && call->reader_.partial()) {
                status = Status{StatusCode::internal, "the stream ended inside a message"};
            }
            finish_call(*call, CallEnd{std::move(status), true, call->established_});
            break;
        }
        case H2EventKind::end_stream: {
            if (!call->finished_) {
                // END_STREAM without trailers: a trailers-only response (status in the
                // response headers) or a broken server.
                bool trailers_only = !find_field(call->response_fields_, "grpc-status").empty();
                Status status = trailers_only
                                        ? status_from_fields(call->response_fields_)
                                        : Status{StatusCode::internal,
                                                 "the server ended the stream without a status"};
                finish_call(*call, CallEnd{std::move(status), trailers_only, call->established_});
            }
            break;
        }
        case H2EventKind::reset:
            finish_call(*call, CallEnd{Status{status_from_reset(event.error_code),
                                              "the server reset the stream (HTTP/2 error " +
                                                      std::to_string(event.error_code) + ")"},
                                       false, call->established_});
            break;
        case H2EventKind::send_done:
            call->writing_ = false;
            if (!call->outgoing_.empty()) {
                call->queued_bytes_ -= call->outgoing_.front().size();
                call->outgoing_.pop_front();
                counters_.messages_sent++;
            }
            pump_call(*call);
            break;
        case H2EventKind::closed:
            by_stream_.erase(event.stream_id);
            if (!call->finished_) {
                finish_call(*call, CallEnd{Status{StatusCode::internal,
                                                  "the stream closed without a status"},
                                           false, call->established_});
            }
            break;
        default:
            break;
    }
}

// on_response_headers checks the response's HTTP status and content type: a call answered by
// something that is not a gRPC server ends here; a trailers-only answer waits for END_STREAM.
void Channel::on_response_headers(Call& call, hbone::H2Event& event) {
    call.http_status_ = event.status;
    call.response_fields_ = std::move(event.fields);
    std::string_view type = find_field(call.response_fields_, "content-type");
    if (event.status != 200) {
        // A proxy or a server that is not gRPC answered; its status says what happened.
        finish_call(call, CallEnd{Status{status_from_http(event.status),
                                         "HTTP status " + std::to_string(event.status)},
                                  false, false});
    } else if (!is_grpc_content_type(type) &&
               find_field(call.response_fields_, "grpc-status").empty()) {
        finish_call(call, CallEnd{Status{StatusCode::unknown,
                                         "the response is not gRPC (content-type \"" +
                                                 std::string(type) + "\")"},
                                  false, false});
    } else if (find_field(call.response_fields_, "grpc-status").empty()) {
        call.established_ = true;
        call.observer_.on_call_established(call);
    }
}

// on_data feeds a DATA payload to the call's message reader and hands out complete messages.
void Channel::on_data(Call& call, const hbone::H2Event& event) {
    size_t n = event.data.size();
    Result<void> fed = call.reader_.feed(event.data);
    // The message is copied out; the window goes back at once (the reader bounds what
    // one stream may hold: one message of at most the cap).
    connection_->h2().consume(event.stream_id, n);
    if (!fed) {
        Status status =
                fed.error().code == Errc::no_capacity
                        ? Status{StatusCode::resource_exhausted,
                                 "a response message is larger than " +
                                         std::to_string(options_.max_message_bytes) + " bytes"}
                        : Status{StatusCode::internal, "the server sent a compressed message"};
        finish_call(call, CallEnd{status, false, call.established_});
        return;
    }
    std::string message;
    while (!call.finished_ && call.reader_.next(message)) {
        counters_.messages_received++;
        call.observer_.on_call_message(call, std::move(message));
    }
}

Result<Call*> Channel::start_call(std::string method, std::vector<hbone::H2Field> metadata,
                                  int64_t deadline_ns, CallObserver& observer) {
    if (state_ == ChannelState::draining || state_ == ChannelState::closing ||
        state_ == ChannelState::closed) {
        return zt::fail(Errc::h2_refused);
    }
    calls_.push_back(
            std::unique_ptr<Call>(new Call(*this, std::move(method), std::move(metadata),
                                           deadline_ns, observer, options_.max_message_bytes)));
    Call* call = calls_.back().get();
    if (state_ == ChannelState::ready) {
        submit(*call);
        advance();
    }
    return call;
}

void Channel::submit_waiting() {
    for (size_t i = 0; i < calls_.size(); ++i) {
        Call& call = *calls_[i];
        if (!call.finished_ && call.stream_id_ == 0) {
            submit(call);
        }
    }
}

void Channel::submit(Call& call) {
    std::string authority = options_.host.find(':') != std::string::npos
                                    ? "[" + options_.host + "]:" + std::to_string(options_.port)
                                    : options_.host + ":" + std::to_string(options_.port);
    std::vector<hbone::H2Field> fields = {
            {":method", "POST"},
            {":scheme", "https"},
            {":path", call.method_},
            {":authority", std::move(authority)},
            {"content-type", "application/grpc"},
            {"te", "trailers"},
            {"user-agent", "ztunnel-agent/" ZT_VERSION},
    };
    if (call.deadline_ns_ != 0) {
        int64_t left = call.deadline_ns_ - clock_.monotonic_ns();
        fields.push_back({"grpc-timeout", encode_timeout(std::max<int64_t>(left, 1))});
    }
    for (hbone::H2Field& field : call.metadata_) {
        fields.push_back(std::move(field));
    }
    call.metadata_.clear();
    auto id = connection_->h2().submit_request(fields);
    if (!id) {
        finish_call(call,
                    CallEnd{Status{StatusCode::unavailable, "the connection refused a new stream"},
                            false, false});
        return;
    }
    call.stream_id_ = *id;
    by_stream_[*id] = &call;
    pump_call(call);
}

void Channel::pump_call(Call& call) {
    if (call.stream_id_ == 0 || call.finished_ || call.writing_ || call.end_sent_ ||
        connection_ == nullptr) {
        return;
    }
    if (!call.outgoing_.empty()) {
        const std::string& next = call.outgoing_.front();
        bool last = call.send_closed_ && call.outgoing_.size() == 1;
        Result<void> written = connection_->h2().write_data(
                call.stream_id_,
                ByteSpan(reinterpret_cast<const uint8_t*>(next.data()), next.size()), last);
        if (written) {
            call.writing_ = true;
            call.end_sent_ = last;
        }
        return;
    }
    if (call.send_closed_) {
        if (connection_->h2().write_data(call.stream_id_, {}, true)) {
            call.end_sent_ = true;
        }
    }
}

void Channel::finish_call(Call& call, CallEnd end) {
    if (call.finished_) {
        return;
    }
    call.finished_ = true;
    if (call.stream_id_ != 0 && connection_ != nullptr) {
        // Close our side too, so the stream does not linger half-open: NO_ERROR after the
        // server's status, CANCEL when we are the one giving up. A no-op on a stream HTTP/2
        // already closed; it also releases a message lent to HTTP/2.
        connection_->h2().reset_stream(call.stream_id_,
                                       end.from_server ? hbone::kNoError : hbone::kCancel);
        call.writing_ = false;
    }
    call.observer_.on_call_closed(call, end);
}

void Channel::reap() {
    if (in_dispatch_) {
        return;
    }
    // A finished call has no message lent to HTTP/2 any more (`finish_call` reset its stream).
    auto gone = [this](const std::unique_ptr<Call>& call) {
        if (!call->finished_) {
            return false;
        }
        ZT_ASSERT(!call->writing_);
        if (call->stream_id_ != 0) {
            by_stream_.erase(call->stream_id_);
        }
        return true;
    };
    calls_.erase(std::remove_if(calls_.begin(), calls_.end(), gone), calls_.end());
}

void Channel::shutdown() {
    if (state_ == ChannelState::idle) {
        state_ = ChannelState::closed;
        return;
    }
    if (state_ == ChannelState::closing || state_ == ChannelState::closed) {
        return;
    }
    // Closing first: an observer that reacts to its call's end by shutting down again, or by
    // starting a call, finds the channel closing.
    state_ = ChannelState::closing;
    failure_.clear();
    closing_since_ns_ = clock_.monotonic_ns();
    for (size_t i = 0; i < calls_.size(); ++i) {
        Call& call = *calls_[i];
        if (!call.finished_) {
            finish_call(call, CallEnd{Status{StatusCode::cancelled, "the agent is shutting down"},
                                      false, call.established_});
        }
    }
    if (connection_ != nullptr && connection_->tls().is_done()) {
        connection_->h2().drain();
        connection_->tls().close_notify();
    }
    advance();
    reap();
}

void Channel::fail(std::string reason) {
    if (state_ == ChannelState::closing || state_ == ChannelState::closed) {
        return;
    }
    failure_ = std::move(reason);
    state_ = ChannelState::closing;
    closing_since_ns_ = clock_.monotonic_ns();
    for (size_t i = 0; i < calls_.size(); ++i) {
        Call& call = *calls_[i];
        if (!call.finished_) {
            finish_call(call, CallEnd{Status{StatusCode::unavailable, failure_}, false,
                                      call.established_});
        }
    }
}

void Channel::on_sent(uring::Completion& self, int32_t res, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    if (res < 0) {
        channel->send_buffer_.clear();
        channel->send_offset_ = 0;
        if (res != -ECANCELED) {
            channel->fail("send failed: " + errno_text(-res));
        }
    } else {
        channel->counters_.bytes_sent += uint64_t(res);
        channel->send_offset_ += size_t(res);
        if (channel->send_offset_ >= channel->send_buffer_.size()) {
            channel->send_buffer_.clear();
            channel->send_offset_ = 0;
        }
    }
    channel->advance();
    channel->reap();
}

void Channel::on_tick(uring::Completion& self, int32_t, uint32_t) {
    auto* channel = static_cast<Channel*>(self.context);
    channel->tick();
    channel->advance();
    channel->reap();
}

void Channel::tick() {
    int64_t now = clock_.monotonic_ns();
    if (state_ == ChannelState::closing || state_ == ChannelState::closed) {
        return;
    }
    for (size_t i = 0; i < calls_.size(); ++i) {
        Call& call = *calls_[i];
        if (!call.finished_ && call.deadline_ns_ != 0 && now >= call.deadline_ns_) {
            finish_call(call, CallEnd{Status{StatusCode::deadline_exceeded, "deadline exceeded"},
                                      false, call.established_});
        }
    }
    if (connection_ != nullptr) {
        Result<void> ticked = connection_->tick(uint64_t(now));
        if (!ticked) {
            if (state_ == ChannelState::handshaking) {
                fail(tls_reason(ticked.error().code, tls_context_->server_name()));
            } else if (ticked.error().code == Errc::timed_out) {
                fail("the server did not answer a keepalive PING in time");
            } else {
                fail("connection error: " + std::string(to_string(ticked.error().code)));
            }
        }
    }
}

// advance_closing lets a final GOAWAY / close_notify out (bounded in time), then cancels
// everything of this channel in the kernel and, once nothing is left there, closes the socket and
// tells the observer.
void Channel::advance_closing() {
    bool flushing = false;
    if (socket_.valid() && connection_ != nullptr &&
        clock_.monotonic_ns() - closing_since_ns_ < kCloseFlushNs) {
        // Let a final GOAWAY / close_notify out, bounded in time.
        if (!send_completion_.in_kernel && send_buffer_.empty()) {
            connection_->take_output(send_buffer_);
            send_offset_ = 0;
        }
        if (!send_buffer_.empty()) {
            flushing = true;
            if (!send_completion_.in_kernel) {
                ring_.send(send_completion_, socket_.get(),
                           send_buffer_.span().subspan(send_offset_), MSG_NOSIGNAL);
            }
            if (!tick_timer_.completion.in_kernel) {
                ring_.arm_timer(tick_timer_, options_.tick_ns);
            }
        }
    }
    if (!flushing) {
        if (resolve_completion_.in_kernel) {
            ring_.cancel(resolve_completion_);
        }
        if (connect_completion_.in_kernel) {
            ring_.cancel(connect_completion_);
        }
        if (recv_completion_.in_kernel) {
            ring_.cancel(recv_completion_);
        }
        if (send_completion_.in_kernel) {
            ring_.cancel(send_completion_);
        }
        if (tick_timer_.completion.in_kernel) {
            ring_.cancel_timer(tick_timer_);
        }
        if (connect_timer_.completion.in_kernel) {
            ring_.cancel_timer(connect_timer_);
        }
    }
    bool busy = resolve_completion_.in_kernel || connect_completion_.in_kernel ||
                recv_completion_.in_kernel || send_completion_.in_kernel ||
                tick_timer_.completion.in_kernel || connect_timer_.completion.in_kernel;
    if (!busy && !flushing) {
        socket_.reset();
        resolution_.reset();
        state_ = ChannelState::closed;
        reap();
        if (!closed_notified_) {
            closed_notified_ = true;
            if (!failure_.empty()) {
                log::debug(
                        kTarget, "connection closed",
                        {log::Field::display("addr", peer_), log::Field::str("reason", failure_)});
            }
            observer_.on_channel_closed(*this, failure_);
        }
    }
}

void Channel::advance() {
    if (state_ == ChannelState::idle || state_ == ChannelState::closed) {
        return;
    }
    if (state_ == ChannelState::closing) {
        advance_closing();
        return;
    }
    if (!tick_timer_.completion.in_kernel) {
        ring_.arm_timer(tick_timer_, options_.tick_ns);
    }
    if (state_ != ChannelState::handshaking && state_ != ChannelState::ready &&
        state_ != ChannelState::draining) {
        return;
    }
    if (!recv_completion_.in_kernel) {
        ring_.recv(recv_completion_, socket_.get(),
                   std::span<uint8_t>(recv_buffer_.data(), recv_buffer_.size()));
    }
    if (!send_completion_.in_kernel) {
        if (send_buffer_.empty()) {
            connection_->take_output(send_buffer_);
            send_offset_ = 0;
        }
        if (!send_buffer_.empty()) {
            ring_.send(send_completion_, socket_.get(), send_buffer_.span().subspan(send_offset_),
                       MSG_NOSIGNAL);
        }
    }
    if (state_ == ChannelState::draining) {
        bool active = false;
        for (const auto& call : calls_) {
            active = active || !call->finished_;
        }
        if (!active) {
            // Every call the server accepted has ended: nothing more will come.
            fail("the server closed the connection (GOAWAY)");
            advance();
        }
    }
}

}  // namespace zt::agent::grpc
