#pragma once

// H2Session: the HTTP/2 side of HBONE as a sans-I/O engine over nghttp2's `mem_recv`/`mem_send`
// (docs/style.md §3.6, nghttpx `downstream_read`/`downstream_write`). Bytes go in through `feed`,
// bytes come out through `pending_output`/`consume_output`, and everything that happened is queued
// as `H2Event`s that the caller drains; nothing calls back into the caller. Time is passed in
// (`tick`), so PING keepalive, deadlines and the glitch budget are testable without a clock.

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hbone/byte_buffer.h"
#include "hbone/connect.h"
#include "zt/bytes.h"
#include "zt/result.h"

struct nghttp2_session;

namespace zt::hbone {

// Role is which end of the HBONE connection a session plays.
enum class Role : uint8_t {
    client,  // Outbound pool side: sends CONNECT, reads the status.
    server,  // Inbound :15008 side: receives CONNECT, answers it.
};

// H2Limits are the per-connection settings and protections (docs/contract.md §5,
// docs/reliability.md §2). The defaults are ztunnel's; `header_list_bytes_max` of 0 means the role
// default (64 KiB server, 16 KiB client).
struct H2Limits {
    uint32_t stream_window_bytes = 4u << 20;
    uint32_t connection_window_bytes = 16u << 20;
    uint32_t max_frame_bytes = 1u << 20;
    // max_concurrent_streams is what a server advertises, and what a client assumes of its peer
    // until the peer's SETTINGS arrive (the pool's 100 streams per connection).
    uint32_t max_concurrent_streams = 200;
    size_t header_list_bytes_max = 0;
    uint32_t header_fields_max = 100;
    // data_frame_payload_bytes makes one DATA frame (9-byte header + payload) fill one 16 KiB TLS
    // record exactly.
    uint32_t data_frame_payload_bytes = 16384 - 9;
    uint64_t ping_interval_ns = 10'000'000'000;
    uint64_t ping_timeout_ns = 20'000'000'000;
    // first_request_timeout_ns bounds, on a server, the time from creation (or `restart_clocks`,
    // which the TLS+H2 stack calls when the handshake completes) to the first HEADERS;
    // 0 disables it.
    uint64_t first_request_timeout_ns = 10'000'000'000;
    // The glitch budget is a token bucket: `glitch_burst` tokens, `glitch_refill_per_s` back per
    // second of `tick` time. An empty bucket ends the connection with GOAWAY ENHANCE_YOUR_CALM.
    uint32_t glitch_burst = 1000;
    uint32_t glitch_refill_per_s = 100;
    // Received RST_STREAM token bucket handed to nghttp2 (CVE-2023-44487), when it has the option.
    uint64_t reset_burst = 1000;
    uint64_t reset_rate_per_s = 33;
    // CONTINUATION frames allowed per header block, when nghttp2 has the option (CVE-2024-28182).
    size_t max_continuations = 8;
    // Pending ACK-requiring frames nghttp2 may queue before it reports FLOODED.
    size_t max_outbound_ack = 1000;
    // Frames in nghttp2's outbound queue above which the connection is closed (the option itself
    // is not in Debian's 1.52, so the session checks after each `feed`).
    size_t outbound_queue_max = 5000;
    // output_chunk_bytes is how much `pending_output` gathers before handing it out.
    size_t output_chunk_bytes = 64 * 1024;
    // first_stream_id (client, odd) is the id of the first stream it opens. Only tests move it,
    // near 2^31, to run a connection out of stream ids.
    int32_t first_stream_id = 1;
};

// default_limits returns ztunnel's settings for `role`: the client assumes 100 concurrent streams
// (the pool's streams per connection) until the peer's SETTINGS say otherwise.
H2Limits default_limits(Role role);

// h2_has_reset_rate_limit and h2_has_max_continuations say whether the nghttp2 linked into this
// binary has those protections (Debian backports them without changing the version number).
bool h2_has_reset_rate_limit();
bool h2_has_max_continuations();

// H2Counters count every protection that fired and every notable event, for metrics. Plain data;
// the caller reads it whenever it likes.
struct H2Counters {
    uint64_t streams_opened = 0;
    uint64_t glitches = 0;
    uint64_t glitch_goaways = 0;
    uint64_t resets_sent_by_codec = 0;  // RST_STREAM nghttp2 sent on its own (peer errors).
    uint64_t resets_sent_by_app = 0;
    uint64_t resets_received = 0;
    uint64_t refused_streams = 0;
    uint64_t window_update_zero = 0;
    uint64_t data_after_end_stream = 0;
    uint64_t empty_data_frames = 0;
    uint64_t priority_frames = 0;
    uint64_t settings_frames = 0;
    uint64_t invalid_frames = 0;
    uint64_t header_list_too_large = 0;
    uint64_t bad_requests = 0;
    uint64_t streams_dropped_unseen =
            0;  // Opened and closed before the caller saw the request.  // Answered 400 by the
                // session itself (method or authority).
    uint64_t reset_rate_limited = 0;
    uint64_t continuation_limit = 0;
    uint64_t flooded = 0;
    uint64_t outbound_queue_overflow = 0;
    uint64_t ping_timeouts = 0;
    uint64_t first_request_timeouts = 0;
    uint64_t goaways_received = 0;
    uint64_t goaways_sent = 0;
    uint32_t last_goaway_sent_code = 0;
    uint32_t last_goaway_received_code = 0;
};

// H2EventKind says what an `H2Event` reports.
enum class H2EventKind : uint8_t {
    request,     // Server: a valid CONNECT arrived (`authority`, `baggage`, ...). Answer with
                 // `respond`.
    response,    // Client: the CONNECT was answered (`status`, `baggage`).
    data,        // Payload bytes in `data`; hand them on, then `consume` them.
    end_stream,  // The peer sent END_STREAM: its write side is done (FIN).
    reset,       // The peer sent RST_STREAM with `error_code`.
    send_done,   // The span given to `write_data` is fully framed; the caller may reuse it.
    closed,      // nghttp2 closed the stream (`error_code` as nghttp2 reports it); forget the id.
    goaway,      // The peer sent GOAWAY (`error_code`, `stream_id` = last stream it will process).
    trailers,    // Client, generic stream: the trailing header block (`fields`), e.g. gRPC's
                 // `grpc-status`; an `end_stream` follows when it ended the stream.
};

// to_string returns a stable lowercase name for `kind`, for logs.
std::string_view to_string(H2EventKind kind);

// H2Field is one header field of a generic stream (`H2Session::submit_request`), name in lower
// case, pseudo-headers (`:status`) included.
struct H2Field {
    std::string name;
    std::string value;
};

// H2Event is one queued happening. `data` is borrowed: it points into the buffer passed to the
// `feed` call that produced it and is valid only until that buffer is reused. The strings are
// filled only for `request`/`response`; `fields` only for the `response` and `trailers` of a
// generic stream.
struct H2Event {
    H2EventKind kind = H2EventKind::data;
    int32_t stream_id = 0;
    uint32_t error_code = 0;
    uint16_t status = 0;
    ByteSpan data;
    Authority authority;
    std::string baggage;
    std::string forwarded;
    std::string traceparent;
    std::vector<H2Field> fields;
};

// H2State is the connection's life cycle.
enum class H2State : uint8_t {
    open,      // Streams may be opened.
    draining,  // We sent (or are sending) a graceful GOAWAY; existing streams finish.
    closing,   // A fatal condition: a final GOAWAY is queued, flush output then close.
    closed,    // Nothing more to read or write.
};

// to_string returns a stable lowercase name for `state`, for logs.
std::string_view to_string(H2State state);

// kNoError, kProtocolError, ... are the HTTP/2 error codes callers pass to `reset_stream`.
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kFlowControlError = 0x3;
inline constexpr uint32_t kStreamClosed = 0x5;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kCompressionError = 0x9;
inline constexpr uint32_t kConnectError = 0xa;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;

// reset_aborts_socket is the RST mapping of docs/reliability.md §5: a received RST_STREAM aborts
// the tunnelled TCP socket (SO_LINGER 0) unless it is NO_ERROR after the peer's END_STREAM, which
// is an ordinary close. ztunnel treats CANCEL as EOF too; we do not, because a cancelled stream may
// have lost bytes and the application must see that.
bool reset_aborts_socket(uint32_t error_code, bool end_stream_received);

// H2Session is one HTTP/2 connection. Not thread-safe; one per connection, owned by the caller.
// Destroying it frees nghttp2's state; no callback outlives it.
class H2Session {
public:
    // create makes a session for `role`. `now_ns` starts the PING and first-request clocks. The
    // initial SETTINGS (and the client preface) are queued at once. Fails with `Errc::no_capacity`
    // if nghttp2 cannot allocate.
    static Result<std::unique_ptr<H2Session>> create(Role role, const H2Limits& limits,
                                                     uint64_t now_ns);

    ~H2Session();
    H2Session(const H2Session&) = delete;
    H2Session& operator=(const H2Session&) = delete;

    // feed hands received bytes to nghttp2 and serialises the frames they provoked. Events are
    // queued; `data` events borrow `bytes`. Returns an error when the connection must end:
    // `Errc::h2_protocol` (bad framing, a connection error nghttp2 answered with GOAWAY, flood,
    // CONTINUATION limit), `Errc::h2_glitches` (glitch budget or received-reset rate spent),
    // `Errc::no_capacity` (outbound queue over its cap). Even then, `pending_output` still yields
    // the final GOAWAY to flush, until `state()` is `closed`.
    Result<void> feed(ByteSpan bytes);

    // pending_output serialises queued frames into the session's output buffer and returns what
    // is not yet consumed (empty when nothing is due). The span stays valid until the next
    // `pending_output`, `consume_output` or `feed`.
    ByteSpan pending_output();

    // consume_output marks the first `n` bytes of `pending_output` as handed to the transport.
    void consume_output(size_t n);

    // release_idle_buffers frees the frame output buffer once everything in it was consumed,
    // for a connection that has gone idle. Never fails.
    void release_idle_buffers();

    // buffer_bytes is the storage the frame output buffer holds.
    size_t buffer_bytes() const { return out_.capacity(); }

    // poll_event pops the oldest queued event into `out`; false when the queue is empty.
    bool poll_event(H2Event& out);

    // tick advances time: sends PINGs, enforces the PING and first-request deadlines and refills
    // the glitch budget. Fails with `Errc::timed_out` when a deadline passed (a GOAWAY is queued).
    Result<void> tick(uint64_t now_ns);

    // restart_clocks restarts the PING and first-request clocks at `now_ns`: the stack calls it
    // when TLS completes, so the first-request deadline counts from the handshake, not the accept.
    void restart_clocks(uint64_t now_ns);

    // submit_connect (client) opens a stream carrying `request`. Returns the stream id, or
    // `Errc::h2_refused` when the session no longer opens streams (GOAWAY, closing) and
    // `Errc::invalid_argument` when called on a server or with an unparsable authority.
    Result<int32_t> submit_connect(const ConnectRequest& request);

    // submit_request (client) opens a generic stream (not a CONNECT tunnel: gRPC's POST) with
    // the header block `fields`, pseudo-headers first (`:method`, `:scheme`, `:path`,
    // `:authority`). Its body goes out through `write_data`, as a tunnel's does; its response
    // arrives as a `response` event carrying every field in `fields`, then `data` events, and
    // its trailing header block as a `trailers` event. Fails like `submit_connect`
    // (`Errc::invalid_argument` on a server or with no fields).
    Result<int32_t> submit_request(std::span<const H2Field> fields);

    // respond (server) answers stream `stream_id`: 200 opens the tunnel, any other HBONE status
    // ends the stream with END_STREAM on the HEADERS, followed by RST_STREAM(NO_ERROR) when the
    // client has not finished its side (RFC 9113 §8.1), so the stream slot is freed at once.
    // `baggage` is sent when not empty.
    Result<void> respond(int32_t stream_id, uint16_t status, std::string_view baggage = {});

    // write_data queues `bytes` on an open tunnel and, with `end_stream`, the FIN after them. The
    // bytes are not copied now: they are framed straight from `bytes` into the output buffer, so
    // `bytes` must stay valid and unchanged until the `send_done` event for this stream. Only one
    // span may be outstanding per stream (`Errc::would_block` otherwise).
    Result<void> write_data(int32_t stream_id, ByteSpan bytes, bool end_stream);

    // consume returns `n` received bytes of `stream_id` to the flow-control windows: call it once
    // the bytes were handed on. Until then the peer's window shrinks and it must stop sending.
    void consume(int32_t stream_id, size_t n);

    // reset_stream sends RST_STREAM with `error_code` (e.g. `kConnectError` when the upstream TCP
    // connection was reset). The stream's outstanding span is released without `send_done`.
    void reset_stream(int32_t stream_id, uint32_t error_code);

    // drain starts a graceful shutdown: the server announces GOAWAY, waits one PING round trip
    // for requests in flight, then sends the final GOAWAY with the last stream it processed; a
    // client sends GOAWAY at once. Existing streams run to completion.
    void drain();

    // streams_available (client) is how many more streams the peer currently allows and the
    // stream ids left can number: 0 once the ids are spent (`stream_ids_exhausted`).
    uint32_t streams_available() const;

    // stream_ids_exhausted (client) says that no stream id is left: the connection can open no
    // stream ever again (RFC 9113 §5.1.1), so it must leave a pool.
    bool stream_ids_exhausted() const;

    // state is the connection's life-cycle state; `closed` once nothing more is to be sent or read.
    H2State state();

    // counters returns every count kept by this session.
    const H2Counters& counters() const { return counters_; }

    // error is why the session is `closing`/`closed` with a failure (valid only then).
    Error error() const { return error_; }

private:
    struct Stream;
    struct Callbacks;

    H2Session(Role role, const H2Limits& limits, uint64_t now_ns);
    // init creates the nghttp2 session with our options, callbacks and SETTINGS.
    Result<void> init();
    // find returns the stream `stream_id` (borrowed) or null when it is not open.
    Stream* find(int32_t stream_id);

    // push queues `event` for `poll_event`.
    void push(H2Event event) {
        queued_data_events_ += event.kind == H2EventKind::data ? 1 : 0;
        events_.push_back(std::move(event));
    }

    // charge_glitch spends one token; false when the budget is spent and the session now closes.
    bool charge_glitch();
    // fail moves to `closing` with `code`, queueing GOAWAY `goaway_code` when it is not 0 or the
    // failure is a timeout (GOAWAY NO_ERROR, as ztunnel's keepalive does).
    void fail(Errc code, uint32_t goaway_code);
    // on_request validates a complete request header block and queues `request` or answers 400.
    void on_request(Stream& stream);
    // fill_output runs `mem_send` into `out_` until it holds `output_chunk_bytes` or nothing is
    // due.
    void fill_output();
    // end_after_error_response frees the slot of a stream answered non-200 whose request side is
    // still open (RST_STREAM NO_ERROR after the response).
    void end_after_error_response(Stream& stream);
    // finish_drain sends the final GOAWAY once the drain PING came back.
    void finish_drain();
    // header_list_limit is the enforced header list size (RFC 9113 §6.5.2 accounting).
    size_t header_list_limit() const;

    Role role_;
    H2Limits limits_;
    nghttp2_session* session_ = nullptr;
    H2State state_ = H2State::open;
    Error error_{};
    H2Counters counters_;
    std::deque<H2Event> events_;
    // queued_data_events_ counts `data` events not yet polled: they borrow the last `feed` input,
    // so feeding again before they are drained is a caller bug (asserted).
    size_t queued_data_events_ = 0;
    std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
    // app_resets_ holds streams we reset on purpose, so their RST_STREAM is not a codec glitch.
    std::unordered_set<int32_t> app_resets_;
    ByteBuffer out_;
    size_t out_offset_ = 0;
    uint64_t now_ns_ = 0;
    uint64_t created_ns_ = 0;
    uint64_t last_ping_ns_ = 0;
    uint64_t ping_sent_ns_ = 0;
    bool ping_outstanding_ = false;
    bool any_request_ = false;
    bool drain_notice_sent_ = false;
    bool drain_final_sent_ = false;
    uint64_t glitch_tokens_milli_ = 0;
    uint64_t glitch_refill_ns_ = 0;
    uint64_t settings_received_ = 0;
    uint32_t open_local_streams_ = 0;
    // goaway_ours_ tells a GOAWAY we asked for apart from one nghttp2 sent on its own.
    bool goaway_ours_ = false;
    // auto_consume_ holds window to return after `mem_recv` for bytes nobody will hand on.
    std::vector<std::pair<int32_t, size_t>> auto_consume_;
    // unseen_closed_ holds streams closed before the caller polled their `request` event; their
    // queued events are dropped by `poll_event`.
    std::unordered_set<int32_t> unseen_closed_;
};

}  // namespace zt::hbone
