#pragma once

// The agent's gRPC client on the project's own stack: one `Channel` is one TCP connection to a
// control-plane server (istiod's xDS port, the Istio CA), carrying TLS from hbone/'s TlsSession
// in control-plane client mode (server verified against a root file and a name, no client
// certificate, ALPN h2) and HTTP/2 from hbone/'s H2Session (generic client streams), driven by
// the agent's io_uring (`uring::Ring`) on the agent thread. A `Call` is one RPC on a channel:
// unary (send one message, half-close, read one) or bidirectional streaming (ADS).
//
// Why not libgrpc: Debian's libgrpc links OpenSSL, and a FIPS deployment must not run a second
// TLS library beside BoringSSL; the agent's TLS is the same BoringSSL as ztunnel's.
//
// Channel life:
//
//   idle ─start→ resolving ─→ connecting ─→ handshaking ─→ ready ─GOAWAY→ draining
//                    └──────────────┴─────────────┴──────────┴────────┴──→ closing ─→ closed
//
// A channel is used once: when it fails or is shut down it cancels what is in the kernel, ends
// every call (observers hear `on_call_closed`), and reaches `closed`; its owner then drops it
// (never from inside one of its callbacks: hand it to `Loop::retire`) and makes a new one to
// reconnect. Root certificates are read from their file at `start`, so a rotated root is used
// from the next connection on.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hbone/byte_buffer.h"
#include "hbone/link_engine.h"
#include "src/agent/grpc_frame.h"
#include "src/agent/resolver.h"
#include "uring/ring.h"
#include "zt/clock.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::agent::grpc {

class Call;
class Channel;

// ChannelOptions says where to connect and how. Every timeout is ztunnel's.
struct ChannelOptions {
    std::string host;  // DNS name or address literal (no brackets).
    uint16_t port = 15012;
    // server_name is the name istiod's certificate must prove: ALT_XDS_HOSTNAME when set, else
    // `host`.
    std::string server_name;
    std::string root_cert_file;  // PEM roots the server's chain must verify to.
    int64_t connect_timeout_ns = 5 * kNanosPerSecond;
    int64_t handshake_timeout_ns = 10 * kNanosPerSecond;
    // HTTP/2 PING keepalive: a PING after this much time, the connection fails when its ACK
    // takes longer than the timeout.
    int64_t keepalive_interval_ns = 30 * kNanosPerSecond;
    int64_t keepalive_timeout_ns = 10 * kNanosPerSecond;
    // TCP keepalive as ztunnel's control-plane connector (300 s idle, 75 s interval, 9 probes).
    int tcp_keepalive_idle_s = 300;
    int tcp_keepalive_interval_s = 75;
    int tcp_keepalive_count = 9;
    size_t max_message_bytes = kMaxMessageBytes;
    // tick_ns is how often deadlines and keepalive are looked at.
    int64_t tick_ns = 250 * kNanosPerMilli;
};

// ChannelState is a channel's life-cycle state.
enum class ChannelState : uint8_t {
    idle,         // Made, not started.
    resolving,    // The host name is being looked up (a thread of its own).
    connecting,   // TCP connect in the kernel, bounded by `connect_timeout_ns`.
    handshaking,  // TLS in progress (the server's certificate is checked here).
    ready,        // HTTP/2 running: calls are sent.
    draining,     // The server sent GOAWAY: calls in flight finish, new ones are refused.
    closing,      // Failed or shut down: operations in the kernel are being cancelled.
    closed,       // Nothing in the kernel; the owner may drop the channel.
};

// to_string returns a stable lowercase name for `state`, for logs and /debug.
std::string_view to_string(ChannelState state);

// CallEnd is how a call ended. `status` is the server's when `from_server`, else ours (the
// transport failed or was lost, a deadline passed, the call was cancelled, or the response was
// malformed). `established` says whether the server's response headers had arrived, which is
// what separates "could not open the stream" from "the stream broke" in ztunnel's reconnect
// policy.
struct CallEnd {
    Status status;
    bool from_server = false;
    bool established = false;
};

// CallObserver hears what happens to a call, on the ring's thread. A callback may send on the
// call, cancel it, or shut the channel down; after `on_call_closed` the call is gone.
class CallObserver {
public:
    virtual ~CallObserver() = default;

    // on_call_established runs when the server's response headers arrived (gRPC status not yet
    // known).
    virtual void on_call_established(Call& call) { (void)call; }

    // on_call_message hands over one complete response message.
    virtual void on_call_message(Call& call, std::string message) = 0;

    // on_call_closed runs exactly once per call; `call` is destroyed when it returns.
    virtual void on_call_closed(Call& call, const CallEnd& end) = 0;
};

// ChannelObserver hears about the connection itself.
class ChannelObserver {
public:
    virtual ~ChannelObserver() = default;

    // on_channel_ready runs when TLS is done and HTTP/2 is up.
    virtual void on_channel_ready(Channel& channel) { (void)channel; }

    // on_channel_closed runs once, after the last call was closed and nothing is left in the
    // kernel. `reason` is why (empty after a requested shutdown). Do not destroy the channel
    // inside this callback (retire it).
    virtual void on_channel_closed(Channel& channel, std::string_view reason) = 0;
};

// ChannelCounters count what a channel saw, for metrics and /debug.
struct ChannelCounters {
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    uint64_t messages_sent = 0;
    uint64_t messages_received = 0;
};

// Call is one RPC. It is owned by its channel; observers get references.
class Call {
public:
    // send queues one request message (framed and sent as the stream's flow control allows).
    // Fails with `Errc::invalid_argument` after `close_send` or once the call is over.
    Result<void> send(std::string_view message);

    // close_send half-closes the request side after the queued messages.
    void close_send();

    // cancel ends the call now (RST_STREAM CANCEL); the observer hears CANCELLED.
    void cancel();

    // method is the `/package.Service/Method` path.
    const std::string& method() const { return method_; }

    // established says whether the server's response headers arrived.
    bool established() const { return established_; }

    // queued_bytes is how much request data waits to be framed (back-pressure signal).
    size_t queued_bytes() const { return queued_bytes_; }

private:
    friend class Channel;

    Call(Channel& channel, std::string method, std::vector<hbone::H2Field> metadata,
         int64_t deadline_ns, CallObserver& observer, size_t max_message_bytes)
        : channel_(channel)
        , method_(std::move(method))
        , metadata_(std::move(metadata))
        , deadline_ns_(deadline_ns)
        , observer_(observer)
        , reader_(max_message_bytes) {}

    Channel& channel_;
    std::string method_;
    std::vector<hbone::H2Field> metadata_;
    int64_t deadline_ns_;  // Monotonic; 0 = none.
    CallObserver& observer_;
    int32_t stream_id_ = 0;  // 0 until submitted.
    bool established_ = false;
    bool send_closed_ = false;  // `close_send` was called.
    bool end_sent_ = false;     // END_STREAM handed to HTTP/2.
    bool finished_ = false;     // on_call_closed delivered (or about to be).
    bool writing_ = false;      // `outgoing_.front()` is lent to HTTP/2 until send_done.
    std::deque<std::string> outgoing_;
    size_t queued_bytes_ = 0;
    uint16_t http_status_ = 0;
    std::vector<hbone::H2Field> response_fields_;
    MessageReader reader_;
};

class Channel {
public:
    // Channel prepares a connection described by `options` on `ring` (which must outlive it),
    // reporting to `observer`. Nothing happens before `start`.
    Channel(uring::Ring& ring, const Clock& clock, ChannelOptions options,
            ChannelObserver& observer);

    // ~Channel asserts that the channel is idle or closed: nothing of it may be in the kernel.
    ~Channel();

    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    // start reads the root file, builds the TLS context and begins resolving or connecting.
    // Failures here (unreadable roots) are reported like any other, through
    // `on_channel_closed`, so the caller has one path for every failure.
    void start();

    // start_call opens an RPC to `method` (`/pkg.Service/Method`) with `metadata` (lower-case
    // names, e.g. `authorization`, `clusterid`), ending with DEADLINE_EXCEEDED at `deadline_ns`
    // (monotonic, 0 = none). Before the channel is ready the call waits for it. Fails with
    // `Errc::h2_refused` once the channel is draining, closing or closed.
    Result<Call*> start_call(std::string method, std::vector<hbone::H2Field> metadata,
                             int64_t deadline_ns, CallObserver& observer);

    // shutdown ends the channel: every call is cancelled (CANCELLED), HTTP/2 says GOAWAY and
    // TLS close_notify where it can, and the socket closes once the kernel is done with it.
    void shutdown();

    ChannelState state() const { return state_; }

    const ChannelOptions& options() const { return options_; }

    const ChannelCounters& counters() const { return counters_; }

    // peer is the address connected to (empty before `connecting`).
    const std::string& peer() const { return peer_; }

    // failure is why the channel failed (empty while it has not, or after a clean shutdown).
    const std::string& failure() const { return failure_; }

private:
    friend class Call;

    static void on_resolved(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_connected(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_received(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_sent(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_tick(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_connect_timer(uring::Completion& self, int32_t res, uint32_t flags);

    // begin_connect makes the socket for `addresses_[next_address_]` and submits the connect.
    void begin_connect();
    // connected runs once TCP is up: creates the TLS + HTTP/2 stack.
    void connected();
    // feed processes received ciphertext and dispatches HTTP/2 events.
    void feed(ByteSpan bytes);
    void dispatch(hbone::H2Event& event);
    void on_response_headers(Call& call, hbone::H2Event& event);
    void on_data(Call& call, const hbone::H2Event& event);
    Call* find_call(int32_t stream_id);
    // submit_waiting hands calls that waited for `ready` to HTTP/2.
    void submit_waiting();
    void submit(Call& call);
    // pump_call lends the next queued message of `call` to HTTP/2.
    void pump_call(Call& call);
    // finish_call ends `call` with `end` (once) and schedules its removal.
    void finish_call(Call& call, CallEnd end);
    // fail starts closing with `reason`: every call ends with UNAVAILABLE and the reason.
    void fail(std::string reason);
    // advance is the one place that talks to the ring for this channel: it arms what the state
    // needs (recv, send, timers) or cancels everything when closing.
    void advance();
    void advance_closing();
    // reap destroys finished calls (outside their callbacks).
    void reap();
    void tick();

    uring::Ring& ring_;
    const Clock& clock_;
    ChannelOptions options_;
    ChannelObserver& observer_;
    ChannelState state_ = ChannelState::idle;
    std::string failure_;
    std::string peer_;
    ChannelCounters counters_;

    std::shared_ptr<Resolution> resolution_;
    std::vector<SocketAddress> addresses_;
    size_t next_address_ = 0;
    UniqueFd socket_;
    std::shared_ptr<const hbone::TlsContext> tls_context_;
    std::unique_ptr<hbone::LinkEngine> connection_;

    uring::Completion resolve_completion_{&Channel::on_resolved, this};
    uring::Completion connect_completion_{&Channel::on_connected, this};
    uring::Completion recv_completion_{&Channel::on_received, this};
    uring::Completion send_completion_{&Channel::on_sent, this};
    uring::Timer tick_timer_;
    uring::Timer connect_timer_;
    std::vector<uint8_t> recv_buffer_;
    hbone::ByteBuffer send_buffer_;
    size_t send_offset_ = 0;

    std::map<int32_t, Call*> by_stream_;
    std::vector<std::unique_ptr<Call>> calls_;
    int64_t closing_since_ns_ = 0;
    bool closed_notified_ = false;
    bool in_dispatch_ = false;
};

}  // namespace zt::agent::grpc
