// h2_session.cc drives nghttp2 for HBONE with no I/O: mem_recv in, mem_send out, events queued.
// It owns every nghttp2 callback (static functions here) and turns them into `H2Event`s and
// counters; it enforces what nghttp2 1.52 only advertises (header list size) and what it lacks
// (the glitch budget, the outbound-queue cap). It must not make syscalls, read clocks or know
// workloads: time comes from `tick`, policy from the caller.

#include "hbone/h2_session.h"

#include <algorithm>
#include <cstring>

#include <nghttp2/nghttp2.h>

// Optional nghttp2 functions, detected by symbol rather than by version: Debian backports them
// into a library that still calls itself 1.52.0 (docs/reliability.md §2). A weak declaration
// resolves to null when the linked library lacks the symbol, so one binary does the right thing on
// a vanilla 1.52 (no protection, counted as unavailable) and on Debian's (protection on). This
// keeps the shared Makefile free of probes. Declared here again, weak, after <nghttp2/nghttp2.h>.
extern "C" {
__attribute__((weak)) void nghttp2_option_set_stream_reset_rate_limit(nghttp2_option* option,
                                                                      uint64_t burst,
                                                                      uint64_t rate);
__attribute__((weak)) void nghttp2_option_set_max_continuations(nghttp2_option* option, size_t val);
}

namespace zt::hbone {

bool h2_has_reset_rate_limit() {
    return nghttp2_option_set_stream_reset_rate_limit != nullptr;
}

bool h2_has_max_continuations() {
    return nghttp2_option_set_max_continuations != nullptr;
}

H2Limits default_limits(Role role) {
    H2Limits limits;
    if (role == Role::client) {
        limits.max_concurrent_streams = 100;
    }
    return limits;
}

std::string_view to_string(H2EventKind kind) {
    switch (kind) {
        case H2EventKind::request:
            return "request";
        case H2EventKind::response:
            return "response";
        case H2EventKind::data:
            return "data";
        case H2EventKind::end_stream:
            return "end_stream";
        case H2EventKind::reset:
            return "reset";
        case H2EventKind::send_done:
            return "send_done";
        case H2EventKind::closed:
            return "closed";
        case H2EventKind::goaway:
            return "goaway";
        case H2EventKind::trailers:
            return "trailers";
    }
    return "unknown";
}

std::string_view to_string(H2State state) {
    switch (state) {
        case H2State::open:
            return "open";
        case H2State::draining:
            return "draining";
        case H2State::closing:
            return "closing";
        case H2State::closed:
            return "closed";
    }
    return "unknown";
}

bool reset_aborts_socket(uint32_t error_code, bool end_stream_received) {
    return !(error_code == kNoError && end_stream_received);
}

// Stream is the session's view of one HTTP/2 stream. Owned by `streams_`; its address is the
// nghttp2 data source pointer, so it must not move while nghttp2 knows the stream.
struct H2Session::Stream {
    int32_t id = 0;
    bool local = false;      // We opened it (client).
    bool announced = false;  // The caller has heard of it (request event, or submit_connect).
    bool rejected = false;   // The session answered 400 itself; its data is dropped.
    bool end_stream_received = false;
    size_t header_bytes = 0;
    uint32_t header_fields = 0;
    std::string method;
    std::string authority;
    std::string baggage;
    std::string forwarded;
    std::string traceparent;
    uint16_t status = 0;
    // Outgoing payload, borrowed from the caller until `send_done`.
    ByteSpan out;
    size_t out_offset = 0;
    bool out_active = false;
    bool end_pending = false;
    bool end_sent = false;
    bool deferred = false;
    bool reset_by_app = false;
    bool request_polled = false;        // The caller has taken the `request` event.
    bool reset_after_response = false;  // Send RST_STREAM(NO_ERROR) once the error response is out.
    // A generic client stream (`submit_request`): every response field is kept, and a trailing
    // header block is allowed.
    bool generic = false;
    std::vector<H2Field> fields;
};

namespace {

// kFeedSliceBytes is how much input one `mem_recv` call sees (see `feed`).
constexpr size_t kFeedSliceBytes = 16 * 1024;

H2Session* self(void* user_data) {
    return static_cast<H2Session*>(user_data);
}

std::string_view view(const uint8_t* data, size_t len) {
    return {reinterpret_cast<const char*>(data), len};
}

H2Event event_of(H2EventKind kind, int32_t stream_id, uint32_t error_code = 0, ByteSpan data = {}) {
    H2Event event;
    event.kind = kind;
    event.stream_id = stream_id;
    event.error_code = error_code;
    event.data = data;
    return event;
}

nghttp2_nv make_nv(std::string_view name, std::string_view value,
                   uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
    nghttp2_nv nv;
    nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
    nv.namelen = name.size();
    nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
    nv.valuelen = value.size();
    nv.flags = flags;
    return nv;
}

}  // namespace

// Callbacks holds the static nghttp2 callbacks; a nested struct so they may touch private state.
struct H2Session::Callbacks {
    static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
        H2Session* s = self(user_data);
        if (frame->hd.type != NGHTTP2_HEADERS) {
            return 0;
        }
        int32_t id = frame->hd.stream_id;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            auto stream = std::make_unique<Stream>();
            stream->id = id;
            s->streams_[id] = std::move(stream);
            s->counters_.streams_opened++;
            s->any_request_ = true;
            return 0;
        }
        Stream* stream = s->find(id);
        if (stream == nullptr) {
            return 0;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && !stream->generic) {
            // Trailers or a second header block on a tunnel: RFC 9113 §8.5 allows only DATA,
            // RST_STREAM, WINDOW_UPDATE and PRIORITY there. Reset the stream (a glitch).
            s->counters_.invalid_frames++;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        stream->header_bytes = 0;
        stream->header_fields = 0;
        stream->fields.clear();
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user_data) {
        H2Session* s = self(user_data);
        Stream* stream = s->find(frame->hd.stream_id);
        if (stream == nullptr) {
            return 0;
        }
        // RFC 9113 §6.5.2: each field costs name + value + 32. nghttp2 only advertises
        // SETTINGS_MAX_HEADER_LIST_SIZE; this is where it is enforced.
        stream->header_bytes += namelen + valuelen + 32;
        stream->header_fields++;
        if (stream->header_bytes > s->header_list_limit() ||
            stream->header_fields > s->limits_.header_fields_max) {
            s->counters_.header_list_too_large++;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        std::string_view n = view(name, namelen);
        std::string_view v = view(value, valuelen);
        if (stream->generic) {
            stream->fields.push_back({std::string(n), std::string(v)});
        }
        if (n == ":method") {
            stream->method.assign(v);
        } else if (n == ":authority") {
            stream->authority.assign(v);
        } else if (n == ":status") {
            uint16_t status = 0;
            for (char c : v) {
                status = static_cast<uint16_t>(status * 10 +
                                               (c - '0'));  // nghttp2 checked 3 digits.
            }
            stream->status = status;
        } else if (n == "baggage") {
            stream->baggage.assign(v);
        } else if (n == "forwarded") {
            stream->forwarded.assign(v);
        } else if (n == "traceparent") {
            stream->traceparent.assign(v);
        }
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
        H2Session* s = self(user_data);
        int32_t id = frame->hd.stream_id;
        bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        switch (frame->hd.type) {
            case NGHTTP2_HEADERS: {
                Stream* stream = s->find(id);
                if (stream == nullptr) {
                    return 0;
                }
                if (end_stream) {
                    stream->end_stream_received = true;
                }
                if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
                    s->on_request(*stream);
                } else if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
                    H2Event event;
                    event.kind = H2EventKind::response;
                    event.stream_id = id;
                    event.status = stream->status;
                    event.baggage = std::move(stream->baggage);
                    event.fields = std::move(stream->fields);
                    s->push(std::move(event));
                } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && stream->generic) {
                    H2Event event;
                    event.kind = H2EventKind::trailers;
                    event.stream_id = id;
                    event.fields = std::move(stream->fields);
                    s->push(std::move(event));
                }
                if (end_stream && !stream->rejected) {
                    s->push(event_of(H2EventKind::end_stream, id));
                }
                return 0;
            }
            case NGHTTP2_DATA: {
                if (frame->hd.length == 0 && !end_stream) {
                    // CVE-2019-9518: empty DATA costs us a frame parse and the peer nothing.
                    s->counters_.empty_data_frames++;
                    if (!s->charge_glitch()) {
                        return NGHTTP2_ERR_CALLBACK_FAILURE;  // Stop parsing: bounded cost.
                    }
                }
                Stream* stream = s->find(id);
                if (end_stream && stream != nullptr && !stream->rejected) {
                    stream->end_stream_received = true;
                    s->push(event_of(H2EventKind::end_stream, id));
                }
                return 0;
            }
            case NGHTTP2_RST_STREAM: {
                s->counters_.resets_received++;
                Stream* stream = s->find(id);
                if (stream != nullptr && stream->announced) {
                    s->push(event_of(H2EventKind::reset, id, frame->rst_stream.error_code));
                }
                return 0;
            }
            case NGHTTP2_SETTINGS:
                if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
                    s->counters_.settings_frames++;
                    // The first SETTINGS is the preface; each later one costs a token.
                    if (s->settings_received_++ > 0 && !s->charge_glitch()) {
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                    }
                }
                return 0;
            case NGHTTP2_PING:
                if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
                    s->ping_outstanding_ = false;
                    s->finish_drain();
                }
                return 0;
            case NGHTTP2_GOAWAY: {
                s->counters_.goaways_received++;
                s->counters_.last_goaway_received_code = frame->goaway.error_code;
                if (s->state_ == H2State::open) {
                    s->state_ = H2State::draining;
                }
                s->push(event_of(H2EventKind::goaway, frame->goaway.last_stream_id,
                                 frame->goaway.error_code));
                return 0;
            }
            default:
                return 0;
        }
    }

    static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user_data) {
        // With NO_RFC7540_PRIORITIES sent, nghttp2 skips PRIORITY frames without a callback;
        // a flood of them is still a peer wasting our cycles, so count and charge them here.
        H2Session* s = self(user_data);
        if (hd->type == NGHTTP2_PRIORITY) {
            s->counters_.priority_frames++;
            if (!s->charge_glitch()) {
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
        }
        return 0;
    }

    static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                     void* user_data) {
        // Counted by kind here. A stream error makes nghttp2 send RST_STREAM, which is what costs a
        // glitch token (`on_frame_send`), so one bad frame is charged once; a connection error
        // ends the connection anyway.
        H2Session* s = self(user_data);
        s->counters_.invalid_frames++;
        if (frame->hd.type == NGHTTP2_WINDOW_UPDATE &&
            frame->window_update.window_size_increment == 0) {
            s->counters_.window_update_zero++;
        } else if (frame->hd.type == NGHTTP2_DATA && lib_error == NGHTTP2_ERR_STREAM_CLOSED) {
            s->counters_.data_after_end_stream++;
        }
        return 0;
    }

    static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                  size_t len, void* user_data) {
        H2Session* s = self(user_data);
        Stream* stream = s->find(stream_id);
        if (stream == nullptr || stream->rejected || !stream->announced) {
            // Nobody will hand these bytes on; give the window back after this `feed`.
            s->auto_consume_.push_back({stream_id, len});
            return 0;
        }
        s->push(event_of(H2EventKind::data, stream_id, 0, ByteSpan(data, len)));
        return 0;
    }

    static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                               void* user_data) {
        // Never return a fatal error here (CVE-2023-35945 leak in 1.52).
        H2Session* s = self(user_data);
        auto it = s->streams_.find(stream_id);
        if (it != s->streams_.end()) {
            if (it->second->local) {
                s->open_local_streams_--;
            }
            if (it->second->announced) {
                if (!it->second->local && !it->second->request_polled) {
                    // Opened and closed before the caller saw the request (Rapid Reset): the
                    // caller never hears of it, so it never starts upstream work for it.
                    s->unseen_closed_.insert(stream_id);
                }
                s->push(event_of(H2EventKind::closed, stream_id, error_code));
            }
            s->streams_.erase(it);
        }
        s->app_resets_.erase(stream_id);
        return 0;
    }

    static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame,
                             void* user_data) {
        H2Session* s = self(user_data);
        if (frame->hd.type == NGHTTP2_HEADERS) {
            Stream* stream = s->find(frame->hd.stream_id);
            if (stream != nullptr && stream->reset_after_response && !stream->end_stream_received) {
                stream->reset_after_response = false;
                s->app_resets_.insert(stream->id);
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR);
            }
        } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
            if (s->app_resets_.erase(frame->hd.stream_id) != 0) {
                s->counters_.resets_sent_by_app++;
                return 0;
            }
            s->counters_.resets_sent_by_codec++;
            if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
                s->counters_.refused_streams++;
            }
            // MadeYouReset (CVE-2025-8671): a peer that makes us reset streams pays for it.
            // (Inside mem_send: an empty budget queues GOAWAY; nothing to stop here.)
            s->charge_glitch();
        } else if (frame->hd.type == NGHTTP2_GOAWAY) {
            s->counters_.goaways_sent++;
            s->counters_.last_goaway_sent_code = frame->goaway.error_code;
            if (!s->goaway_ours_ && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
                // nghttp2 ended the connection on its own: a connection error by the peer. Its
                // received-RST limiter (CVE-2023-44487) reports INTERNAL_ERROR; tell it apart by
                // the count of resets received.
                bool rate_limited = frame->goaway.error_code == NGHTTP2_INTERNAL_ERROR &&
                                    s->counters_.resets_received >= s->limits_.reset_burst;
                if (rate_limited) {
                    s->counters_.reset_rate_limited++;
                }
                s->fail(rate_limited ? Errc::h2_glitches : Errc::h2_protocol, 0);
            }
        }
        return 0;
    }

    static ssize_t data_source_read(nghttp2_session*, int32_t, uint8_t*, size_t length,
                                    uint32_t* data_flags, nghttp2_data_source* source,
                                    void* user_data) {
        H2Session* s = self(user_data);
        auto* stream = static_cast<Stream*>(source->ptr);
        if (stream->reset_by_app) {
            return NGHTTP2_ERR_DEFERRED;
        }
        size_t left = stream->out_active ? stream->out.size() - stream->out_offset : 0;
        if (left == 0 && !stream->end_pending) {
            stream->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        size_t n =
                std::min({left, length, static_cast<size_t>(s->limits_.data_frame_payload_bytes)});
        *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (n == left && stream->end_pending) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        }
        return static_cast<ssize_t>(n);
    }

    static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                         size_t length, nghttp2_data_source* source, void* user_data) {
        H2Session* s = self(user_data);
        auto* stream = static_cast<Stream*>(source->ptr);
        // The one copy of the payload: from the caller's buffer straight into the output that
        // TLS encrypts from. We never pad, so the frame is header + payload.
        ZT_ASSERT(frame->data.padlen == 0);
        s->out_.append(framehd, 9);
        if (length > 0) {
            s->out_.append(stream->out.data() + stream->out_offset, length);
            stream->out_offset += length;
        }
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            stream->end_pending = false;
            stream->end_sent = true;
        }
        if (stream->out_active && stream->out_offset == stream->out.size()) {
            stream->out_active = false;
            stream->out = {};
            stream->out_offset = 0;
            s->push(event_of(H2EventKind::send_done, stream->id));
        }
        // nghttp2 keeps framing no-copy DATA inside one mem_send call until a non-DATA frame is
        // due; pause it once the output chunk is full so the buffer stays bounded.
        if (s->out_.size() - s->out_offset_ >= s->limits_.output_chunk_bytes) {
            return NGHTTP2_ERR_PAUSE;
        }
        return 0;
    }
};

H2Session::H2Session(Role role, const H2Limits& limits, uint64_t now_ns)
    : role_(role)
    , limits_(limits)
    , now_ns_(now_ns)
    , created_ns_(now_ns)
    , last_ping_ns_(now_ns)
    , glitch_tokens_milli_(uint64_t{limits.glitch_burst} * 1000)
    , glitch_refill_ns_(now_ns) {}

H2Session::~H2Session() {
    if (session_ != nullptr) {
        nghttp2_session_del(session_);
    }
}

Result<std::unique_ptr<H2Session>> H2Session::create(Role role, const H2Limits& limits,
                                                     uint64_t now_ns) {
    std::unique_ptr<H2Session> session(new H2Session(role, limits, now_ns));
    Result<void> init = session->init();
    if (!init) {
        return zt::fail(init.error());
    }
    return session;
}

Result<void> H2Session::init() {
    nghttp2_session_callbacks* callbacks = nullptr;
    if (nghttp2_session_callbacks_new(&callbacks) != 0) {
        return zt::fail(Errc::no_capacity);
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::on_frame_recv);
    nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, Callbacks::on_begin_frame);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks,
                                                                 Callbacks::on_invalid_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                              Callbacks::on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, Callbacks::on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, Callbacks::send_data);

    nghttp2_option* option = nullptr;
    if (nghttp2_option_new(&option) != 0) {
        nghttp2_session_callbacks_del(callbacks);
        return zt::fail(Errc::no_capacity);
    }
    // Back-pressure: the receive window is returned only by `consume`.
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_option_set_max_outbound_ack(option, limits_.max_outbound_ack);
    nghttp2_option_set_max_settings(option, 32);
    if (role_ == Role::client) {
        nghttp2_option_set_peer_max_concurrent_streams(option, limits_.max_concurrent_streams);
    }
    if (h2_has_reset_rate_limit()) {
        nghttp2_option_set_stream_reset_rate_limit(option, limits_.reset_burst,
                                                   limits_.reset_rate_per_s);
    }
    if (h2_has_max_continuations()) {
        nghttp2_option_set_max_continuations(option, limits_.max_continuations);
    }
    int rv = role_ == Role::client
                     ? nghttp2_session_client_new2(&session_, callbacks, this, option)
                     : nghttp2_session_server_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) {
        session_ = nullptr;
        return zt::fail(Errc::no_capacity);
    }

    nghttp2_settings_entry settings[6];
    size_t n = 0;
    settings[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window_bytes};
    settings[n++] = {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, limits_.max_frame_bytes};
    settings[n++] = {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                     static_cast<uint32_t>(header_list_limit())};
    settings[n++] = {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
    if (role_ == Role::server) {
        settings[n++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams};
    } else {
        settings[n++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    }
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, n) != 0) {
        return zt::fail(Errc::no_capacity);
    }
    if (nghttp2_session_set_local_window_size(
                session_, NGHTTP2_FLAG_NONE, 0,
                static_cast<int32_t>(limits_.connection_window_bytes)) != 0) {
        return zt::fail(Errc::no_capacity);
    }
    if (role_ == Role::client && limits_.first_stream_id > 1 &&
        nghttp2_session_set_next_stream_id(session_, limits_.first_stream_id) != 0) {
        return zt::fail(Errc::invalid_argument);  // Even, or beyond 2^31-1.
    }
    return ok();
}

size_t H2Session::header_list_limit() const {
    if (limits_.header_list_bytes_max != 0) {
        return limits_.header_list_bytes_max;
    }
    return role_ == Role::server ? 64 * 1024 : 16 * 1024;
}

H2Session::Stream* H2Session::find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second.get();
}

void H2Session::on_request(Stream& stream) {
    // nghttp2's HTTP messaging already refused CONNECT with :path/:scheme/:protocol or without
    // :authority. What is left to refuse here answers 400 at once: nothing reaches the caller,
    // so nothing is connected upstream.
    Result<Authority> authority = parse_authority(stream.authority);
    if (stream.method != "CONNECT" || !authority) {
        stream.rejected = true;
        counters_.bad_requests++;
        nghttp2_nv nv[] = {make_nv(":status", "400")};
        if (nghttp2_submit_response(session_, stream.id, nv, 1, nullptr) != 0) {
            app_resets_.insert(stream.id);
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id,
                                      NGHTTP2_PROTOCOL_ERROR);
            return;
        }
        end_after_error_response(stream);
        return;
    }
    stream.announced = true;
    H2Event event;
    event.kind = H2EventKind::request;
    event.stream_id = stream.id;
    event.authority = std::move(*authority);
    event.baggage = std::move(stream.baggage);
    event.forwarded = std::move(stream.forwarded);
    event.traceparent = std::move(stream.traceparent);
    push(std::move(event));
}

bool H2Session::charge_glitch() {
    counters_.glitches++;
    if (glitch_tokens_milli_ >= 1000) {
        glitch_tokens_milli_ -= 1000;
        return true;
    }
    if (state_ != H2State::closing && state_ != H2State::closed) {
        counters_.glitch_goaways++;
        fail(Errc::h2_glitches, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return false;
}

void H2Session::fail(Errc code, uint32_t goaway_code) {
    if (state_ == H2State::closing || state_ == H2State::closed) {
        return;
    }
    state_ = H2State::closing;
    error_ = Error{code, 0};
    if (goaway_code != 0 || code == Errc::timed_out) {
        goaway_ours_ = true;
        nghttp2_session_terminate_session(session_, goaway_code);
    }
}

void H2Session::finish_drain() {
    if (!drain_notice_sent_ || drain_final_sent_ || ping_outstanding_) {
        return;
    }
    drain_final_sent_ = true;
    goaway_ours_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
}

Result<void> H2Session::feed(ByteSpan bytes) {
    ZT_ASSERT(queued_data_events_ == 0);  // Their spans point into the previous input.
    if (state_ == H2State::closing || state_ == H2State::closed) {
        return zt::fail(error_.code);
    }
    // Feed in slices and serialise output between them: a GOAWAY nghttp2 queues on its own
    // (connection error, received-RST limiter) only becomes visible when it is sent, and nghttp2
    // keeps parsing the rest of one `mem_recv` call after queueing it. Slicing bounds the work a
    // peer gets after that point to one slice.
    ssize_t rv = 0;
    size_t at = 0;
    while (at < bytes.size()) {
        size_t n = std::min(bytes.size() - at, kFeedSliceBytes);
        rv = nghttp2_session_mem_recv(session_, bytes.data() + at, n);
        if (rv < 0) {
            break;
        }
        at += n;
        if (at < bytes.size()) {
            fill_output();
            if (state_ == H2State::closing || state_ == H2State::closed) {
                break;
            }
        }
    }
    for (const auto& [id, n] : auto_consume_) {
        nghttp2_session_consume(session_, id, n);
    }
    auto_consume_.clear();
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && state_ == H2State::closing) {
        // One of our protections stopped the parse; its GOAWAY is queued for `pending_output`.
        return zt::fail(error_.code);
    }
    if (rv < 0) {
        // A fatal library error: nghttp2 sends nothing more; close the transport.
        Errc code = Errc::h2_protocol;
        if (rv == NGHTTP2_ERR_FLOODED) {
            counters_.flooded++;
        } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
            counters_.continuation_limit++;
        } else if (rv == NGHTTP2_ERR_NOMEM) {
            code = Errc::no_capacity;
        }
        if (state_ != H2State::closing) {
            error_ = Error{code, 0};
        }
        state_ = H2State::closed;
        return zt::fail(error_.code);
    }
    // CVE-2019-9512/9514/9515: a peer that makes us queue frames while not reading its socket.
    // Debian's 1.52 has no max_outbound_queue_size option, so check after every feed.
    if (state_ != H2State::closing &&
        nghttp2_session_get_outbound_queue_size(session_) > limits_.outbound_queue_max) {
        counters_.outbound_queue_overflow++;
        fail(Errc::no_capacity, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    // Serialise what the input provoked now: a GOAWAY nghttp2 queued for a connection error is
    // seen (`on_frame_send`) here rather than whenever the caller next asks for output.
    fill_output();
    if (state_ == H2State::closing || state_ == H2State::closed) {
        return zt::fail(error_.code);
    }
    return ok();
}

void H2Session::fill_output() {
    if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
    } else if (out_offset_ >= limits_.output_chunk_bytes) {
        // Drained a little at a time: move the rest down rather than grow.
        out_.drop_front(out_offset_);
        out_offset_ = 0;
    }
    if (state_ == H2State::closed) {
        return;
    }
    while (out_.size() - out_offset_ < limits_.output_chunk_bytes) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
            if (state_ != H2State::closing) {
                error_ = Error{n == NGHTTP2_ERR_NOMEM ? Errc::no_capacity : Errc::h2_protocol, 0};
            }
            state_ = H2State::closed;
            return;
        }
        if (n == 0) {
            return;
        }
        out_.append(data, static_cast<size_t>(n));
    }
}

ByteSpan H2Session::pending_output() {
    fill_output();
    return out_.span().subspan(out_offset_);
}

void H2Session::release_idle_buffers() {
    if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
        out_.release();
    }
}

void H2Session::consume_output(size_t n) {
    ZT_ASSERT(n <= out_.size() - out_offset_);
    out_offset_ += n;
}

bool H2Session::poll_event(H2Event& out) {
    while (!events_.empty()) {
        out = std::move(events_.front());
        events_.pop_front();
        queued_data_events_ -= out.kind == H2EventKind::data ? 1 : 0;
        if (!unseen_closed_.empty() && unseen_closed_.count(out.stream_id) != 0 &&
            out.kind != H2EventKind::goaway) {
            if (out.kind == H2EventKind::closed) {
                unseen_closed_.erase(out.stream_id);
                counters_.streams_dropped_unseen++;
            }
            continue;
        }
        if (out.kind == H2EventKind::request) {
            if (Stream* stream = find(out.stream_id)) {
                stream->request_polled = true;
            }
        }
        return true;
    }
    return false;
}

Result<void> H2Session::tick(uint64_t now_ns) {
    if (now_ns > now_ns_) {
        now_ns_ = now_ns;
    }
    // Refill the glitch bucket: `glitch_refill_per_s` tokens per second, in thousandths.
    uint64_t elapsed = now_ns_ - glitch_refill_ns_;
    glitch_refill_ns_ = now_ns_;
    uint64_t cap = uint64_t{limits_.glitch_burst} * 1000;
    glitch_tokens_milli_ = std::min(
            cap, glitch_tokens_milli_ + elapsed / 1000 * limits_.glitch_refill_per_s / 1000);
    if (state_ == H2State::closing || state_ == H2State::closed) {
        return ok();
    }
    if (role_ == Role::server && !any_request_ && limits_.first_request_timeout_ns != 0 &&
        now_ns_ - created_ns_ >= limits_.first_request_timeout_ns) {
        counters_.first_request_timeouts++;
        fail(Errc::timed_out, NGHTTP2_NO_ERROR);
        return zt::fail(Errc::timed_out);
    }
    if (ping_outstanding_) {
        if (now_ns_ - ping_sent_ns_ >= limits_.ping_timeout_ns) {
            // ztunnel: on keepalive failure, abrupt shutdown with GOAWAY NO_ERROR.
            counters_.ping_timeouts++;
            fail(Errc::timed_out, NGHTTP2_NO_ERROR);
            return zt::fail(Errc::timed_out);
        }
    } else if (now_ns_ - last_ping_ns_ >= limits_.ping_interval_ns) {
        uint8_t opaque[8] = {};
        if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) == 0) {
            ping_outstanding_ = true;
            ping_sent_ns_ = now_ns_;
            last_ping_ns_ = now_ns_;
        }
    }
    return ok();
}

void H2Session::restart_clocks(uint64_t now_ns) {
    now_ns_ = std::max(now_ns_, now_ns);
    created_ns_ = now_ns_;
    last_ping_ns_ = now_ns_;
    glitch_refill_ns_ = now_ns_;
}

Result<int32_t> H2Session::submit_connect(const ConnectRequest& request) {
    if (role_ != Role::client || !parse_authority(request.authority)) {
        return zt::fail(Errc::invalid_argument);
    }
    if (state_ != H2State::open) {
        return zt::fail(Errc::h2_refused);
    }
    nghttp2_nv nv[5];
    size_t n = 0;
    nv[n++] = make_nv(":method", "CONNECT");
    nv[n++] = make_nv(":authority", request.authority);
    if (!request.baggage.empty()) {
        nv[n++] = make_nv("baggage", request.baggage);
    }
    if (!request.forwarded.empty()) {
        // Unique per connection (the client's port; a fresh trace id): indexing them would only
        // churn both HPACK tables, evicting useful entries and scattering long-lived
        // allocations through the heap (which then cannot be returned after a burst).
        nv[n++] = make_nv("forwarded", request.forwarded, NGHTTP2_NV_FLAG_NO_INDEX);
    }
    if (!request.traceparent.empty()) {
        nv[n++] = make_nv("traceparent", request.traceparent, NGHTTP2_NV_FLAG_NO_INDEX);
    }
    auto stream = std::make_unique<Stream>();
    nghttp2_data_provider provider;
    provider.source.ptr = stream.get();
    provider.read_callback = Callbacks::data_source_read;
    int32_t id = nghttp2_submit_request(session_, nullptr, nv, n, &provider, nullptr);
    if (id < 0) {
        return zt::fail(id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? Errc::h2_refused
                                                                  : Errc::no_capacity);
    }
    stream->id = id;
    stream->local = true;
    stream->announced = true;
    streams_[id] = std::move(stream);
    open_local_streams_++;
    counters_.streams_opened++;
    return id;
}

Result<int32_t> H2Session::submit_request(std::span<const H2Field> fields) {
    if (role_ != Role::client || fields.empty()) {
        return zt::fail(Errc::invalid_argument);
    }
    if (state_ != H2State::open) {
        return zt::fail(Errc::h2_refused);
    }
    std::vector<nghttp2_nv> nv;
    nv.reserve(fields.size());
    for (const H2Field& field : fields) {
        nv.push_back(make_nv(field.name, field.value));
    }
    auto stream = std::make_unique<Stream>();
    stream->generic = true;
    nghttp2_data_provider provider;
    provider.source.ptr = stream.get();
    provider.read_callback = Callbacks::data_source_read;
    // nghttp2 copies the header block; `fields` may go once this returns.
    int32_t id =
            nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
    if (id < 0) {
        return zt::fail(id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? Errc::h2_refused
                                                                  : Errc::invalid_argument);
    }
    stream->id = id;
    stream->local = true;
    stream->announced = true;
    streams_[id] = std::move(stream);
    open_local_streams_++;
    counters_.streams_opened++;
    return id;
}

Result<void> H2Session::respond(int32_t stream_id, uint16_t status, std::string_view baggage) {
    Stream* stream = find(stream_id);
    if (role_ != Role::server || stream == nullptr || !stream->announced ||
        !is_hbone_status(status)) {
        return zt::fail(Errc::invalid_argument);
    }
    char code[4] = {static_cast<char>('0' + status / 100),
                    static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10),
                    0};
    nghttp2_nv nv[2];
    size_t n = 0;
    nv[n++] = make_nv(":status", std::string_view(code, 3));
    if (!baggage.empty()) {
        nv[n++] = make_nv("baggage", baggage);
    }
    nghttp2_data_provider provider;
    provider.source.ptr = stream;
    provider.read_callback = Callbacks::data_source_read;
    int rv = nghttp2_submit_response(session_, stream_id, nv, n,
                                     status == kStatusOk ? &provider : nullptr);
    if (rv != 0) {
        return zt::fail(Errc::invalid_argument);
    }
    if (status != kStatusOk) {
        end_after_error_response(*stream);
    }
    return ok();
}

void H2Session::end_after_error_response(Stream& stream) {
    // RFC 9113 §8.1: after a complete response the server may ask the client to stop sending
    // the request with RST_STREAM(NO_ERROR). Without it a refused tunnel whose client never
    // sends END_STREAM would hold one of the stream slots for as long as the connection lives.
    // nghttp2 sends a queued RST_STREAM before the stream's HEADERS and then drops them, so the
    // reset is submitted from `on_frame_send` once the response is out.
    stream.reset_after_response = !stream.end_stream_received;
}

Result<void> H2Session::write_data(int32_t stream_id, ByteSpan bytes, bool end_stream) {
    Stream* stream = find(stream_id);
    if (stream == nullptr || stream->reset_by_app) {
        return zt::fail(Errc::h2_reset);
    }
    if (stream->end_sent || stream->end_pending) {
        return zt::fail(Errc::invalid_argument);
    }
    if (stream->out_active) {
        return zt::fail(Errc::would_block);
    }
    if (!bytes.empty()) {
        stream->out = bytes;
        stream->out_offset = 0;
        stream->out_active = true;
    }
    stream->end_pending = end_stream;
    if (stream->deferred) {
        stream->deferred = false;
        nghttp2_session_resume_data(session_, stream_id);
    }
    return ok();
}

void H2Session::consume(int32_t stream_id, size_t n) {
    // On a closed stream nghttp2 still credits the connection window.
    nghttp2_session_consume(session_, stream_id, n);
}

void H2Session::reset_stream(int32_t stream_id, uint32_t error_code) {
    Stream* stream = find(stream_id);
    if (stream == nullptr || stream->reset_by_app) {
        return;
    }
    stream->reset_by_app = true;
    stream->out_active = false;
    stream->out = {};
    app_resets_.insert(stream_id);
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

void H2Session::drain() {
    if (state_ != H2State::open && state_ != H2State::draining) {
        return;
    }
    state_ = H2State::draining;
    goaway_ours_ = true;
    if (role_ == Role::client) {
        nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
        return;
    }
    if (drain_notice_sent_) {
        return;
    }
    // RFC 9113 §6.8: announce, let requests already in flight arrive (one PING round trip),
    // then name the last stream we will process.
    drain_notice_sent_ = true;
    nghttp2_submit_shutdown_notice(session_);
    uint8_t opaque[8] = {'d', 'r', 'a', 'i', 'n', 0, 0, 0};
    if (!ping_outstanding_ && nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) == 0) {
        ping_outstanding_ = true;
        ping_sent_ns_ = now_ns_;
    }
}

uint32_t H2Session::streams_available() const {
    uint32_t remote =
            nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    uint32_t cap = std::min(remote, limits_.max_concurrent_streams);
    if (state_ != H2State::open || open_local_streams_ >= cap) {
        return 0;
    }
    // Client ids are odd and end at 2^31-1: the ids left bound the streams left.
    uint32_t next = nghttp2_session_get_next_stream_id(session_);
    uint32_t ids_left = next > uint32_t(INT32_MAX) ? 0 : (uint32_t(INT32_MAX) - next) / 2 + 1;
    return std::min(cap - open_local_streams_, ids_left);
}

bool H2Session::stream_ids_exhausted() const {
    return role_ == Role::client &&
           nghttp2_session_get_next_stream_id(session_) > uint32_t(INT32_MAX);
}

H2State H2Session::state() {
    if (state_ != H2State::closed && nghttp2_session_want_read(session_) == 0 &&
        nghttp2_session_want_write(session_) == 0 && out_offset_ == out_.size()) {
        state_ = H2State::closed;
    }
    return state_;
}

}  // namespace zt::hbone
