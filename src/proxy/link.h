#pragma once

// Link is one HBONE link: a TCP socket carrying mutual TLS 1.3 and HTTP/2 between two ztunnels,
// driven through its `hbone::LinkEngine`. A client link is dialled from a pod's outbound side and
// shared through the pod's pool by up to `streams_per_link` tunnels; a server link is accepted on
// a pod's 15008 and takes CONNECT streams (inbound.cc decides each). Its life is a `LinkState`
// (link_state.h); this class performs the steps and owns the socket and its three operations.
//
// One receive and one send at most are in the kernel. What the engines produce is swapped into
// the send buffer (no copy), so the engines own none of the bytes the kernel reads. Output is
// sent only when the worker settles a completion (`WorkerContext::flush_later`), so whatever one
// event produced on a link leaves in one send, and no handler flushes from inside another's
// event handling. A link that carries no stream gives its buffers back (`release_idle`): it then
// receives into a small buffer the worker lends. So does a link whose handshake is not done: a
// peer that sends a ClientHello and stalls holds no receive buffer (src/proxy/limits.h caps how
// many such handshakes a worker keeps).

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hbone/byte_buffer.h"
#include "hbone/h2_session.h"
#include "hbone/link_engine.h"
#include "src/proxy/close_cause.h"
#include "src/proxy/limits.h"
#include "src/proxy/link_state.h"
#include "src/proxy/owned_set.h"
#include "src/proxy/pod_sockets.h"
#include "src/proxy/pool.h"
#include "src/proxy/proxy_counters.h"
#include "src/proxy/tunnel.h"
#include "src/state/net.h"
#include "uring/ring.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

class Link : public OwnedSet<Link>::Member {
public:
    // dial makes `pod`'s client link to `peer` over `socket` (not connected yet) and starts the
    // TCP connect. The link joins the pod's pool under `key` at once, so other tunnels of the key
    // wait for its handshake instead of dialling.
    static Link& dial(WorkerContext& context, Pod& pod, std::unique_ptr<hbone::LinkEngine> engine,
                      UpstreamSocket socket, const state::SocketAddr& peer, const PoolKey& key);

    // accept makes `pod`'s server link over accepted socket `fd` and starts receiving.
    static Link& accept(WorkerContext& context, Pod& pod, std::unique_ptr<hbone::LinkEngine> engine,
                        UniqueFd fd, const state::SocketAddr& peer, const state::SocketAddr& local);

    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;
    ~Link();

    // --- tunnels (client) ---------------------------------------------------------------------
    // add_tunnel gives `tunnel` a stream: at once when open, else once the handshake is done.
    void add_tunnel(Tunnel& tunnel);
    // answered tells the link that `tunnel` got its 200 (the first one shapes the next send).
    void answered();

    // --- tunnels (both) -----------------------------------------------------------------------
    // adopt_stream records inbound `tunnel` on `stream_id` (its CONNECT arrived here).
    void adopt_stream(Tunnel& tunnel, int32_t stream_id);
    // detach forgets `tunnel`, which is closing or finishing without the link; `undelivered`
    // received bytes that will never reach its socket give their flow-control window back.
    void detach(Tunnel& tunnel, size_t undelivered);
    // forget_payloads drops `tunnel`'s borrowed DATA and returns how many bytes it held.
    size_t forget_payloads(const Tunnel& tunnel);

    hbone::H2Session& h2() { return engine_->h2(); }

    // plaintext_owner pins the plaintext the current DATA payloads borrow (see LinkEngine).
    std::shared_ptr<const hbone::LinkEngine::PlaintextBuffer> plaintext_owner() const {
        return engine_->plaintext_owner();
    }

    // flush_later asks for this link's output to be sent when the completion is settled.
    void flush_later();

    // --- the worker ---------------------------------------------------------------------------
    // flush sends what the engines produced, then hands the events framing produced to the
    // tunnels. Only `WorkerContext::settle` calls it.
    void flush();
    // fail ends the link with `cause`: every tunnel on it ends, the last bytes are flushed.
    void fail(const CloseCause& cause);
    // drain sends GOAWAY; the link takes no new stream and closes after its last.
    void drain();
    // tick passes time: the dial timeout, the engines' deadlines and keepalive, the pool's idle
    // release, and buffers given back by a link that carries no stream.
    void tick(int64_t now_ns);
    // abort_streams sets `cause` as the imposed end of every connection it carries, then fails.
    void abort_streams(const CloseCause& cause);

    // pool_view is what the pool needs to know of this client link.
    PoolView pool_view() const;

    // in_kernel says whether one of its socket operations is still in the kernel.
    bool in_kernel() const {
        return dial_op_.in_kernel || receive_op_.in_kernel || send_op_.in_kernel;
    }

    WorkerContext& context() { return context_; }

    Pod& pod() { return pod_; }

    const LinkState& state() const { return state_; }

    // peer and local are the socket's addresses.
    const state::SocketAddr& peer() const { return peer_; }

    const state::SocketAddr& local() const { return local_; }

    hbone::LinkEngine& engine() { return *engine_; }

    // peer_usage is what the peer identity of this server link holds on the worker (null before
    // the handshake, and on a client link).
    const PeerUsage* peer_usage() const { return peer_usage_; }

    // Completion handlers (see `on_completion`).
    void on_dialed(int32_t res, uint32_t flags);
    void on_received(int32_t res, uint32_t flags);
    void on_sent(int32_t res, uint32_t flags);

private:
    Link(WorkerContext& context, Pod& pod, LinkRole role, std::unique_ptr<hbone::LinkEngine> engine,
         UniqueFd fd, const state::SocketAddr& peer);

    // handle feeds `event` to the state and performs the steps it returns.
    void handle(LinkEvent event);
    // arm_receive submits the next receive: into a lent buffer when the link is idle and has
    // given its own back (and `own_buffer` is false), else into its own buffer.
    void arm_receive(bool own_buffer);
    // open_stream submits `tunnel`'s CONNECT.
    void open_stream(Tunnel& tunnel);
    // dispatch hands every queued HTTP/2 event to its tunnel (or, for a request, to inbound.cc).
    void dispatch();
    // hand_over_payloads gives the DATA borrowed so far to their tunnels (`only` one, or all).
    void hand_over_payloads(Tunnel* only);

    // carries_streams says whether any tunnel uses the link (streaming or waiting).
    bool carries_streams() const { return !streams_.empty() || !waiting_.empty(); }

    // release_idle drops the buffers of a link that carries no stream.
    void release_idle();
    // retire_if_unused closes a client link that left the pool and carries no stream (GOAWAY,
    // then the socket once it is written), as ztunnel's pool lets such a connection go.
    void retire_if_unused();
    // return_lent_buffer gives the last receive's lent buffer back.
    void return_lent_buffer();
    // upstream_connecting says whether an inbound tunnel waits for its application connect.
    bool upstream_connecting() const;
    // count_misbehaviour counts what the peer did wrong since the last count (tick and end).
    void count_misbehaviour();
    // admit_peer records a server link's verified peer with the worker's per-peer cap; false
    // when the peer is at its cap (the link must fail).
    bool admit_peer();

    WorkerContext& context_;
    Pod& pod_;
    LinkState state_;
    std::unique_ptr<hbone::LinkEngine> engine_;
    CloseCause cause_;  // Why it is closing.
    int64_t last_active_ns_ = 0;
    state::SocketAddr peer_;
    state::SocketAddr local_;

    UniqueFd fd_;
    UpstreamSocket dial_address_;  // Client: the address the connect reads until it completes.
    uring::Completion dial_op_;
    uring::Completion receive_op_;
    uring::Completion send_op_;
    // receive_buffer_ is not zero-filled (only the pages the kernel writes become resident) and
    // exists only while the link carries streams or has not been idle through a tick.
    std::unique_ptr<uint8_t[]> receive_buffer_;
    size_t receive_bytes_ = 0;         // The size of receive_buffer_.
    bool handshake_counted_ = false;   // Counted as a pending inbound handshake (WorkerLimits).
    PeerUsage* peer_usage_ = nullptr;  // Server: its peer's usage, once admitted.
    std::string peer_identity_;        // Server: the peer identity `peer_usage_` is kept under.
    int32_t lent_id_ = -1;             // The lent buffer the last receive landed in, or -1.
    hbone::ByteBuffer send_buffer_;    // The send in flight: the engines' former output buffer.
    size_t send_offset_ = 0;

    std::unordered_map<int32_t, Tunnel*> streams_;
    std::vector<Tunnel*> waiting_;  // Client: tunnels waiting for the handshake.
    // payloads_ holds the DATA of the events being dispatched, in arrival order, still in the
    // engine's plaintext: handed to their tunnels before the next receive is fed.
    std::vector<Payload> payloads_;
    bool flush_queued_ = false;  // In the worker's flush list (WorkerContext::flush_later).
    // goaway_received_: the peer sent GOAWAY (with `goaway_code_`), so a stream closed
    // unanswered after it was refused by that GOAWAY.
    bool goaway_received_ = false;
    uint32_t goaway_code_ = 0;
    // misbehaviour_counted_ is the peer's misbehaviour counted so far; made only for a peer
    // that misbehaved, so a well-behaved link carries no more than the pointer.
    std::unique_ptr<H2Misbehaviour> misbehaviour_counted_;

    friend class WorkerContext;
};

}  // namespace zt::proxy
