#pragma once

// Tunnel is one CONNECT stream on an HBONE link joined to one application socket: the
// application's client socket (outbound, from 15001) or ztunnel's socket to the application
// (inbound, from 15008). It moves bytes both ways and maps TCP onto HTTP/2: FIN <-> END_STREAM,
// reset <-> RST_STREAM(CONNECT_ERROR). Its life is a `TunnelState` (tunnel_state.h); this class
// performs the steps the state asks for and owns the socket and its three operations.
//
// Socket -> stream: a waiting tunnel holds no buffer; the kernel lends it one of the worker's
// small buffers when bytes arrive, HTTP/2 frames them without a copy, and the buffer goes back
// when HTTP/2 reports them framed. A read that fills its buffer makes the flow bulk: from then on
// it reads 256 KiB at a time into its own buffer; a small read makes it chatty again.
// Stream -> socket: the DATA of one link receive is sent straight from the engine's decrypted
// plaintext (pinned until the send completes) when the socket is idle; otherwise it is copied
// into a queue. The stream's flow-control window is returned only once bytes reach the socket,
// so a slow application slows its peer down (back-pressure end to end).

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "hbone/connect.h"
#include "hbone/link_engine.h"
#include "src/proxy/close_cause.h"
#include "src/proxy/owned_set.h"
#include "src/proxy/pod_sockets.h"
#include "src/proxy/tunnel_state.h"
#include "uring/ring.h"
#include "zt/bytes.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class Link;
class Tunnel;
class WorkerContext;
struct Pod;
struct ProxiedConnection;

// Payload is one DATA frame's bytes for `tunnel`, borrowed from its link engine's decrypted
// plaintext until the link's next receive is fed.
struct Payload {
    Tunnel* tunnel = nullptr;  // Null once taken.
    ByteSpan bytes;
};

// ReadInto is where a tunnel's next socket read lands.
enum class ReadInto : uint8_t {
    lent_buffer,      // Chatty: small reads into buffers the worker lends.
    own_buffer_once,  // Chatty, but no lent buffer was free: the next read uses its own.
    own_bulk_buffer,  // A read filled its buffer: large reads into its own buffer.
};

std::string_view to_string(ReadInto into);

class Tunnel : public OwnedSet<Tunnel>::Member {
public:
    // create_outbound makes `pod`'s tunnel for the application's client socket `client`, carrying
    // `connection`; it sends `request` once a link takes it (`Link::add_tunnel`).
    static Tunnel& create_outbound(WorkerContext& context, Pod& pod, ProxiedConnection& connection,
                                   UniqueFd client, hbone::ConnectRequest request);

    // create_inbound makes `pod`'s tunnel for stream `stream_id` of `link`, carrying
    // `connection`, and connects `upstream` to the application; the answer (200 or 503) follows
    // the connect. `preamble` (an application tunnel's PROXY header, or empty) is written to the
    // application first, before any payload.
    static Tunnel& create_inbound(WorkerContext& context, Pod& pod, ProxiedConnection& connection,
                                  Link& link, int32_t stream_id, UpstreamSocket upstream,
                                  std::vector<uint8_t> preamble = {});

    Tunnel(const Tunnel&) = delete;
    Tunnel& operator=(const Tunnel&) = delete;
    ~Tunnel();

    // Events from its link (outbound ones are attached by `Link::add_tunnel`).
    void joined(Link& link);
    void stream_opened(int32_t stream_id);
    void on_response(uint16_t status);
    void on_end_stream();
    void on_reset(uint32_t error_code);
    void on_framed();
    // on_stream_closed: the stream ended with HTTP/2 `error_code`, after the link got a GOAWAY
    // when `after_goaway`.
    void on_stream_closed(uint32_t error_code, bool after_goaway);
    void on_link_lost(const CloseCause& link_cause);
    // take_payloads takes this tunnel's entries of `payloads` from index `first` on: one send
    // straight from the engine's plaintext when its socket is idle, else a copy into its queue.
    void take_payloads(std::vector<Payload>& payloads, size_t first);

    // fail ends the tunnel with `cause` (a policy change, the pod removed, refused data, ...).
    void fail(const CloseCause& cause);
    // impose makes `cause` the end its connection reports, whatever ends the tunnel next (the
    // first imposed cause wins).
    void impose(const CloseCause& cause);
    // check_connect_deadline (inbound, from its link's tick) cancels the connect to the
    // application once it took longer than the worker's `connect_timeout_ns` (ztunnel's 10 s):
    // the CONNECT is answered 503 and the end logged as `connection timed out`.
    void check_connect_deadline(int64_t now_ns);

    // Completion handlers (see `on_completion`).
    void on_connected(int32_t res, uint32_t flags);
    void on_read(int32_t res, uint32_t flags);
    void on_written(int32_t res, uint32_t flags);

    // in_kernel says whether one of its socket operations is still in the kernel.
    bool in_kernel() const {
        return connect_op_.in_kernel || read_op_.in_kernel || write_op_.in_kernel;
    }

    WorkerContext& context() { return context_; }

    Pod& pod() { return pod_; }

    const TunnelState& state() const { return state_; }

    int32_t stream_id() const { return stream_id_; }

    const hbone::ConnectRequest& request() const { return request_; }

private:
    Tunnel(WorkerContext& context, Pod& pod, ProxiedConnection& connection, TunnelSide side,
           UniqueFd socket);

    // handle feeds `event` to the state and performs the steps it returns.
    void handle(TunnelEvent event);
    // advance performs `steps`, in order; pushing writes may end a direction, whose steps follow.
    void advance(TunnelSteps steps);
    // end_with records why the tunnel ends (the first cause wins).
    void end_with(const CloseCause& cause);
    // arm_read submits the next socket read, where `read_into_` says.
    void arm_read();
    // return_lent_buffer gives the last read's lent buffer back.
    void return_lent_buffer();
    // push_writes sends what is queued for the socket; false when nothing is left or in flight.
    bool push_writes();
    // written accounts a completed socket send of `n` bytes.
    void written(size_t n);
    // close detaches from the link and the connection (reporting it), resets the socket when the
    // state says so, cancels what is in the kernel and asks to be freed.
    void close();

    WorkerContext& context_;
    Pod& pod_;
    Link* link_ = nullptr;
    ProxiedConnection* connection_;  // Null once reported.
    TunnelState state_;
    int32_t stream_id_ = -1;
    CloseCause cause_;
    hbone::ConnectRequest request_;  // Outbound: sent when a link takes the tunnel.
    uint64_t bytes_read_ = 0;        // Socket -> stream.
    uint64_t bytes_written_ = 0;     // Stream -> socket.

    UniqueFd socket_;
    sockaddr_storage upstream_address_{};  // Inbound: read by the connect until it completes.
    socklen_t upstream_length_ = 0;
    int64_t connect_started_ns_ = 0;  // Inbound: when the connect to the application began.
    bool connect_timed_out_ = false;  // Inbound: the deadline cancelled the connect.
    uring::Completion connect_op_;
    uring::Completion read_op_;
    uring::Completion write_op_;

    // Socket -> stream.
    ReadInto read_into_ = ReadInto::lent_buffer;
    std::vector<uint8_t> read_buffer_;  // Bulk reads, or one read when no lent buffer was free.
    int32_t lent_id_ = -1;              // The lent buffer the last read landed in, or -1.

    // Stream -> socket. A direct send holds the engine's plaintext in `direct_pin_` until its
    // completion: `direct_bytes_` in flight, from `direct_data_` when it is one piece, else from
    // the pieces of `gather_` (made on the first such send, kept).
    std::vector<uint8_t> inflight_;  // Owned bytes being sent, from `inflight_offset_`.
    size_t inflight_offset_ = 0;
    std::vector<uint8_t> queued_;  // Owned bytes waiting for the send in flight.
    // preamble_unsent_ counts the bytes at the front of the owned bytes that are ours (the PROXY
    // header), not the stream's: they return no flow-control window and are not the
    // connection's bytes.
    size_t preamble_unsent_ = 0;
    std::shared_ptr<const hbone::LinkEngine::PlaintextBuffer> direct_pin_;
    size_t direct_bytes_ = 0;
    const uint8_t* direct_data_ = nullptr;

    struct GatherSend {
        std::vector<iovec> pieces;
        msghdr message{};
    };

    std::unique_ptr<GatherSend> gather_;
};

}  // namespace zt::proxy
