#pragma once

// The records of one worker thread, shared by worker.cc (listeners, plain-TCP paths, control
// requests) and hbone_paths.cc (HBONE client and server). Private to src/proxy/: nothing outside
// the worker may include it. Every record that embeds a `uring::Completion` is freed only once
// none of its completions is in the kernel.

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hbone/link_engine.h"
#include "src/inpod/netns.h"
#include "src/proxy/close_cause.h"
#include "src/proxy/conn_info.h"
#include "src/proxy/pool.h"
#include "src/proxy/ports.h"
#include "src/proxy/rbac.h"
#include "src/proxy/route.h"
#include "src/proxy/tls_store.h"
#include "src/proxy/worker.h"
#include "src/telemetry/access_log.h"
#include "src/telemetry/traffic_metrics.h"
#include "uring/buffer_ring.h"
#include "uring/ring.h"
#include "uring/splice_relay.h"

namespace zt::proxy {

enum class ListenerKind : uint8_t { outbound, inbound_plain, inbound_hbone };
inline constexpr int kListenerCount = 3;
// kTunnelFirstReadBytes is a tunnel's read size until a read fills it (chatty and idle flows,
// the common case); also the size of the buffers a worker lends to tunnel reads.
inline constexpr size_t kTunnelFirstReadBytes = 4096;

struct Pod;
struct Link;
struct Tunnel;

// Listener is one listening socket of one pod with its multishot accept.
struct Listener {
    Worker::Impl* owner = nullptr;
    Pod* pod = nullptr;
    ListenerKind kind = ListenerKind::outbound;
    UniqueFd fd;
    uring::Completion accept;
    uring::Timer rearm;  // Re-arms the accept after an error such as EMFILE, without spinning.
};

// ProxyPath is which path a connection took.
enum class ProxyPath : uint8_t { outbound_tcp, inbound_plaintext, outbound_hbone, inbound_hbone };

// ProxiedConnection is what every proxied connection records for the access log, the metrics and,
// for inbound ones, the RBAC re-check after every snapshot swap. Plain-TCP connections are owned by
// the splice relay (this record rides along as its `user`); HBONE ones by their `Tunnel`.
struct ProxiedConnection {
    Pod* pod = nullptr;
    ProxyPath kind = ProxyPath::outbound_tcp;
    uring::RelayId relay = 0;  // Plain TCP only.
    Tunnel* tunnel = nullptr;  // HBONE only.
    int64_t start_ns = 0;
    std::string original_dst;      // For the dump: see `ConnectionSummary`.
    bool inbound_tracked = false;  // Checked again by RBAC after each snapshot swap.
    RbacConnection rbac;
    telemetry::ConnectionLog log;
    telemetry::ConnectionMetrics metrics;
    // imposed is set when we end it on purpose (policy change, pod removed): it wins over
    // whatever the transport reports as the connection goes.
    CloseCause imposed;
};

// Pod is one captured pod on this worker: its namespace, its listeners, its connections and its
// HBONE connections (client pool and accepted). A removed pod waits in `closing_pods` until every
// completion of its listeners arrived and every connection reported done.
struct Pod {
    std::string uid;
    inpod::Netns netns;
    Listener listeners[kListenerCount];
    std::unordered_set<ProxiedConnection*> conns;
    std::unordered_set<Link*> hbone_conns;
    // pool: the client links that may take more streams (ztunnel's WorkloadHBONEPool).
    LinkPool<Link> pool;
    bool closing = false;
    bool listening = false;
    std::string error;

    Pod(inpod::Netns ns, const PoolPolicy& pool_policy) : netns(std::move(ns)), pool(pool_policy) {}
};

// LinkPhase is an HBONE connection's life.
enum class LinkPhase : uint8_t {
    dialing,      // Client: TCP connect in flight.
    handshaking,  // TLS handshake running.
    open,         // HTTP/2 running.
    closing,      // Flushing final bytes, or waiting for completions before the close.
    closed,       // Socket closed; freed once no completion is in flight.
};

// Link is one TCP connection carrying TLS 1.3 + HTTP/2: a pooled client connection from a
// pod's outbound side, or one accepted on a pod's 15008. One receive and one send at most are in
// the kernel; what the engines produce is swapped into `send_buf` (`Connection::take_output`, no
// copy), so the engines own none of the bytes the kernel reads and may go on producing output.
struct Link {
    Worker::Impl* owner = nullptr;
    Pod* pod = nullptr;
    hbone::Role role = hbone::Role::client;
    LinkPhase state = LinkPhase::dialing;
    UniqueFd fd;
    std::unique_ptr<hbone::LinkEngine> engine;
    uring::Completion connect_c;
    uring::Completion recv_c;
    uring::Completion send_c;
    // recv_buf is not zero-filled (only the pages the kernel writes become resident) and exists
    // only while the connection carries streams: an idle one receives into a buffer lent by the
    // worker's `tunnel_buffers` (`recv_lent`), as an idle tunnel does.
    std::unique_ptr<uint8_t[]> recv_buf;
    int32_t recv_lent = -1;         // The `tunnel_buffers` id the last receive landed in, or -1.
    bool recv_heap_once = false;    // No lent buffer was free (ENOBUFS): next receive into our own.
    bool recv_idle_cancel = false;  // The receive into `recv_buf` was cancelled to go idle.
    hbone::ByteBuffer send_buf;     // The send in flight; the engine's former output buffer.
    size_t send_offset = 0;
    size_t send_len = 0;
    std::unordered_map<int32_t, Tunnel*> streams;
    // borrowed holds the DATA payloads of the events being drained, in arrival order, still in
    // the engine's plaintext buffer: `hbone_settle` sends or copies them before the next feed.
    std::vector<std::pair<Tunnel*, ByteSpan>> borrowed;
    std::vector<Tunnel*> waiting;  // Client: tunnels waiting for the handshake.
    bool failing = false;          // Inside `hbone_fail`: not to be freed yet.
    bool answered = false;  // Client: a 200 arrived on this connection (its first tunnel opened).
    int64_t last_active_ns = 0;
    state::SocketAddr peer;
    state::SocketAddr local;
    sockaddr_storage connect_addr{};
    socklen_t connect_len = 0;
    std::string local_identity;  // Our SPIFFE URI on this connection.
    CloseCause cause;            // Why it is closing.

    // pool_view is what the pod's pool needs to know of this client link.
    PoolView pool_view() const {
        bool open = state == LinkPhase::open;
        return {open, streams.size() + waiting.size(), open ? engine->h2().streams_available() : 0};
    }
};

// TunnelState is one HBONE stream's life.
enum class TunnelState : uint8_t {
    waiting_link,       // Client: waiting for the pooled connection's handshake.
    awaiting_response,  // Client: CONNECT sent, no status yet.
    connecting,         // Server: connecting to the application before answering 200.
    open,               // Bytes flow both ways.
    closing,            // Ending: waiting for socket completions before freeing.
};

// GatherSend is the message of a socket send gathering several DATA payloads of one feed
// straight from the HBONE engine's decrypted plaintext (bulk flows).
struct GatherSend {
    std::vector<iovec> pieces;
    msghdr message{};
};

// Tunnel is one CONNECT stream bound to one plain TCP socket: the application's client socket
// (outbound) or the socket to the application (inbound). Socket → stream: a waiting tunnel holds
// no buffer; the kernel lends it one of the worker's `tunnel_buffers` when bytes arrive
// (`up_lent`), HTTP/2 frames them without copying, and the buffer goes back at `send_done`. A
// read that fills it makes the tunnel bulk: from then on it reads into its own 64 KiB `up_buf`.
// Stream → socket: the DATA of one feed is sent straight from the engine's plaintext
// (`down_pin`) when the socket is idle; otherwise it is appended to `down_queued` and sent from
// `down_inflight`. Its flow-control window is returned only once written to the socket
// (back-pressure end to end).
struct Tunnel {
    Worker::Impl* owner = nullptr;
    Link* link = nullptr;
    ProxiedConnection* record = nullptr;
    bool outbound = true;
    TunnelState state = TunnelState::waiting_link;
    int32_t stream_id = -1;
    UniqueFd sock;
    uring::Completion sock_connect;
    uring::Completion sock_recv;
    uring::Completion sock_send;
    std::vector<uint8_t> up_buf;  // Bulk reads, or one read when every lent buffer was out.
    int32_t up_lent = -1;         // The `tunnel_buffers` id the last read landed in, or -1.
    bool up_outstanding = false;  // The last read is lent to HTTP/2 until `send_done`.
    bool up_bulk = false;         // A read filled the small first buffer: read big from now on.
    bool up_heap_once = false;    // No lent buffer was free (ENOBUFS): next read into `up_buf`.
    bool sock_eof = false;        // The socket's peer sent FIN; END_STREAM sent.
    std::vector<uint8_t> down_inflight;
    size_t down_offset = 0;
    std::vector<uint8_t> down_queued;
    // A direct send (from the engine's plaintext, no copy) holds that buffer in `down_pin` until
    // its completion: `down_direct_bytes` in flight (0: none), from `down_direct_data` when it is
    // one piece, else from the pieces of `down_gather` (made on the first such send, kept).
    std::shared_ptr<const hbone::LinkEngine::PlaintextBuffer> down_pin;
    size_t down_direct_bytes = 0;
    const uint8_t* down_direct_data = nullptr;
    std::unique_ptr<GatherSend> down_gather;
    bool peer_fin = false;  // END_STREAM received.
    bool shut_wr = false;   // shutdown(SHUT_WR) done on the socket.
    bool stream_closed = false;
    bool abort_socket = false;  // Close with RST (SO_LINGER 0).
    CloseCause cause;
    uint64_t bytes_up = 0;          // socket → stream
    uint64_t bytes_down = 0;        // stream → socket
    hbone::ConnectRequest request;  // Client: sent when the connection opens.
    sockaddr_storage upstream_addr{};
    socklen_t upstream_len = 0;
};

struct Worker::Impl {
    Impl(int index_, WorkerOptions options_, WorkerShared shared_)
        : index(index_), options(std::move(options_)), shared(shared_) {}

    // --- control-thread side -----------------------------------------------------------------
    int index;
    WorkerOptions options;
    WorkerShared shared;
    std::thread thread;
    UniqueFd wake_fd;
    std::atomic<bool> drain_requested{false};
    std::atomic<bool> force_requested{false};
    std::atomic<bool> stop_requested{false};
    std::atomic<uint32_t> open_connections{0};
    std::atomic<const state::Snapshot*> reconciled{nullptr};
    std::atomic<uint64_t> status_requested{0};
    std::atomic<uint64_t> status_served{0};
    mutable std::mutex status_mutex;  // Guards `status`; taken once per reconcile, never per I/O.
    std::vector<PodStatus> status;

    // --- worker-thread side ------------------------------------------------------------------
    std::unique_ptr<uring::Ring> ring;
    std::unique_ptr<uring::RelayEngine> relays;
    // tunnel_buffers lends small buffers to tunnel reads (null when the kernel has no
    // provided-buffer rings: tunnels then read into their own `up_buf`).
    std::unique_ptr<uring::BufferRing> tunnel_buffers;
    uint64_t tunnel_buffers_exhausted = 0;  // Reads that found every buffer lent (ENOBUFS).
    uint32_t trim_peak_connections = 0;     // Most open connections seen since the last trim.
    uint32_t trim_followups = 0;            // Trims still due on the next ticks.
    std::optional<inpod::Netns> own_netns;
    uring::Completion wake_poll;
    uring::Timer tick_timer;
    std::shared_ptr<const state::Snapshot> snapshot;  // The one pods were reconciled with.
    std::unordered_map<std::string, std::unique_ptr<Pod>> pods;
    std::vector<std::unique_ptr<Pod>> closing_pods;
    std::unordered_set<Link*> dead_hbone;      // Closed, waiting for completions.
    std::unordered_set<Tunnel*> dead_tunnels;  // Closing, waiting for completions.
    bool draining = false;
    bool forced = false;
    std::mt19937_64 random{std::random_device{}()};

    // worker.cc
    void run(std::promise<Result<void>>& started);
    void on_wake();
    void on_tick();
    // maybe_trim returns freed heap memory to the kernel once the open connections fell far
    // below their peak since the last trim (glibc keeps it otherwise: see worker.cc).
    void maybe_trim();
    void reconcile();
    void open_pod(Pod& pod);
    Result<UniqueFd> open_listener(Pod& pod, uint16_t port);
    void close_pod(std::unique_ptr<Pod> pod, CloseReason reason);
    void close_listeners(Pod& pod);
    void maybe_release_closing_pods();
    void recheck_policies();
    void publish_status(bool with_connections = false);
    void arm_accept(Listener& listener);
    void on_accept(Listener& listener, int32_t res, uint32_t flags);

    // Captured is a freshly accepted captured connection: who, where to, and the pod's workload.
    struct Captured {
        state::SocketAddr peer;
        state::SocketAddr destination;
        const state::Workload* workload = nullptr;
    };

    // admit recovers the original destination of an accepted 15001/15006 socket, refuses loops
    // and unknown workloads (logged as `connection failed`, not counted), and sets ztunnel's
    // socket options.
    std::optional<Captured> admit(Pod& pod, int fd, telemetry::Direction direction);
    // open_conn makes a connection's record, counting it opened and logging `connection opened`.
    ProxiedConnection* open_conn(Pod& pod, ProxyPath kind, const ConnectionParties& parties,
                                 const state::SocketAddr& src, const state::SocketAddr& dst,
                                 std::string_view hbone_addr, std::string original_dst);
    // track adds an open connection to its pod and to the worker's count.
    void track(ProxiedConnection& connection);
    // relay_to connects to `target` from the pod (from the client's address when `spoof`) and
    // splices `client` to it; failures finish and free `connection`.
    void relay_to(Pod& pod, UniqueFd client, ProxiedConnection* connection,
                  const state::SocketAddr& target, bool spoof);
    void on_outbound(Pod& pod, UniqueFd client);
    void on_inbound_plain(Pod& pod, UniqueFd client);
    void on_relay_done(const uring::RelayReport& report);
    Result<UniqueFd> make_upstream_socket(Pod& pod, const state::SocketAddr& target);
    bool spoof_source(int fd, const state::SocketAddr& peer, const state::SocketAddr& target);
    void finish_conn(ProxiedConnection& connection, const CloseCause& cause);
    bool finished() const;

    // pool_policy is the policy of every pod's link pool.
    PoolPolicy pool_policy() const {
        PoolPolicy policy;
        policy.streams_per_link = options.pool_streams_max;
        return policy;
    }

    // hbone_paths.cc
    void start_outbound_hbone(Pod& pod, UniqueFd client, const state::Workload& source,
                              const Plan& plan, const state::SocketAddr& peer,
                              const state::SocketAddr& destination);
    void on_inbound_hbone(Pod& pod, UniqueFd client);
    void hbone_on_connect(Link& link, int32_t res);
    void hbone_on_recv(Link& link, int32_t res, uint32_t cqe_flags);
    void hbone_on_send(Link& link, int32_t res);
    void hbone_arm_recv(Link& link);
    // hbone_idle reports whether `link` is open with no stream and none waiting.
    bool hbone_idle(const Link& link) const;
    // hbone_release_idle drops an idle connection's buffers (engines, send, receive).
    void hbone_release_idle(Link& link);
    // hbone_return_recv gives a connection's lent receive buffer back to `tunnel_buffers`.
    void hbone_return_recv(Link& link);
    void hbone_flush(Link& link);
    // hbone_hold_output reports whether the receive that just ended a handshake
    // (`was_handshaking`) or opened the client's first tunnel (`answered` turned true; it was
    // `was_answered` before) may leave its output for a frame that follows shortly.
    bool hbone_hold_output(const Link& link, bool was_handshaking, bool was_answered) const;
    void hbone_drain_events(Link& link);
    void hbone_opened(Link& link);
    void hbone_fail(Link& link, const CloseCause& cause);
    void hbone_maybe_free(Link& link);
    void hbone_tick_all(uint64_t now_ns);
    void hbone_drain_all();
    void hbone_abort_all(Pod& pod, const CloseCause& cause);
    // hbone_retire_if_unused closes a client connection that is out of the pool and has no
    // stream left (GOAWAY, then the socket once it is written).
    void hbone_retire_if_unused(Link& link);
    void start_stream(Link& link, Tunnel& tunnel);
    void on_request(Link& link, const hbone::H2Event& event);
    void on_response(Tunnel& tunnel, uint16_t http_status);
    void tunnel_on_connect(Tunnel& tunnel, int32_t res);
    void tunnel_on_recv(Tunnel& tunnel, int32_t res, uint32_t cqe_flags);
    // count_buffers_exhausted counts (and now and then logs) a receive that found every lent
    // buffer in use.
    void count_buffers_exhausted();
    // tunnel_return_buffer gives a tunnel's lent read buffer back to `tunnel_buffers`.
    void tunnel_return_buffer(Tunnel& tunnel);
    void tunnel_on_send(Tunnel& tunnel, int32_t res);
    void tunnel_open(Tunnel& tunnel);
    void tunnel_arm_recv(Tunnel& tunnel);
    void tunnel_pump_down(Tunnel& tunnel);
    // hbone_settle hands the DATA payloads in `link.borrowed` (those of `only`, or all when null)
    // to their tunnels before the engine's plaintext can change (the next feed).
    void hbone_settle(Link& link, Tunnel* only);
    // tunnel_take_down takes `tunnel`'s payloads from `link.borrowed[first..]`: one send straight
    // from the plaintext when its socket is idle, else a copy into `down_queued`.
    void tunnel_take_down(Tunnel& tunnel, size_t first, Link& link);
    void tunnel_maybe_done(Tunnel& tunnel);
    void tunnel_abort(Tunnel& tunnel, const CloseCause& cause);
    void tunnel_close(Tunnel& tunnel);
    void tunnel_maybe_free(Tunnel& tunnel);
    void reject_stream(Link& link, int32_t stream_id, uint16_t http_status,
                       ProxiedConnection* record, const CloseCause& cause);
};

}  // namespace zt::proxy
