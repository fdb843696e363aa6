#pragma once

// `Server` is one pod's DNS proxy on a worker's io_uring (ztunnel's `dns::Server` for one pod):
// it serves the UDP and TCP sockets the pod opened on 127.0.0.1:15053 and [::1]:15053 inside its
// network namespace, answers mesh names with `decide`, forwards everything else through
// `Exchange`s whose upstream sockets come from the pod's `UpstreamSockets`, and resolves
// hostname-only workloads on demand through the same forwarder. It runs entirely on the ring's
// thread: no thread of its own, no blocking call, every operation a ring completion it owns.
//
// What a pod gives it (`ServerContext`): the ring, the snapshot store and its workload uid (the
// client of every query; looked up in the current snapshot per query, SERVFAIL while unknown),
// the socket maker for upstream sockets, the metrics shard, and the run's `ServerConfig`. What
// it gives back: `close()` and `closed()` for the pod's drain, `resolve()` for the outbound path.

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/dns/answer.h"
#include "src/dns/forwarder.h"
#include "src/dns/telemetry.h"
#include "src/state/store.h"
#include "uring/buffer_ring.h"
#include "uring/ring.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::dns {

// kDnsPort is where a pod's DNS proxy listens (docs/contract.md §3); Istio CNI redirects port 53
// there.
inline constexpr uint16_t kDnsPort = 15053;

// UpstreamSockets is the seam through which a server gets its sockets towards upstream
// resolvers. A pod makes them inside its network namespace with its packet mark (ztunnel's
// `SocketFactory`); tests make plain loopback sockets.
class UpstreamSockets {
public:
    // open returns a new non-blocking, close-on-exec, unconnected socket of `transport`
    // (SOCK_DGRAM or SOCK_STREAM) of `upstream`'s address family, or the failure (errno). It is
    // called on the ring's thread and must not block.
    virtual Result<UniqueFd> open(Transport transport, const state::SocketAddr& upstream) = 0;

protected:
    ~UpstreamSockets() = default;
};

// ServerConfig is the run's DNS settings, shared by every pod's server (immutable once the
// workers run).
struct ServerConfig {
    AnswerOptions answer;
    ForwarderOptions forwarder;
    // max_in_flight bounds a pod's forwarded queries and on-demand resolutions in flight; a
    // query past it is answered SERVFAIL and counted (`in_flight_limit`).
    uint32_t max_in_flight = 256;
    // max_tcp_connections bounds a pod's DNS-over-TCP clients; past it a connection is closed at
    // once and counted (`tcp_connections`).
    uint32_t max_tcp_connections = 64;
    // tcp_request_timeout_ns closes a TCP client that sends no whole query for this long
    // (hickory-server's 5 s, as ztunnel).
    int64_t tcp_request_timeout_ns = 5 * kNanosPerSecond;
    // udp_query_bytes_max is the largest query accepted over UDP; larger ones are dropped and
    // counted (`oversized`). Queries are small; EDNS raises the answer size, not the query's.
    uint32_t udp_query_bytes_max = 4096;
    // udp_replies_max bounds a UDP socket's replies waiting for their send to complete; past it
    // a reply is dropped and counted (`reply_queue_full`), as a datagram lost.
    uint32_t udp_replies_max = 128;
};

// ServerContext is what the owning pod provides. Every pointer must outlive the server.
struct ServerContext {
    uring::Ring* ring = nullptr;
    const state::SnapshotStore* snapshots = nullptr;
    std::string client_uid;  // The pod's workload uid: the client of every query.
    UpstreamSockets* sockets = nullptr;
    DnsMetrics* metrics = nullptr;
    size_t metrics_shard = 0;  // The worker's shard.
    const ServerConfig* config = nullptr;
    uint64_t shuffle_seed = 0;  // Seeds the answer shuffle (upstream ids come from RAND_bytes).
    // udp_buffers, optional, is a provided-buffer group the worker shares among its pods' UDP
    // sockets (each buffer at least `udp_buffer_bytes(config)`). With it a UDP socket holds no
    // buffer of its own and takes every waiting datagram in one batch (multishot recvmsg,
    // Linux 6.0); without it, or where the kernel refuses that, each socket keeps one receive
    // with its own buffer armed.
    uring::BufferRing* udp_buffers = nullptr;
};

// udp_buffer_bytes is the size a shared UDP buffer needs for `config`: the multishot header,
// an IPv6 address and the largest query accepted.
size_t udp_buffer_bytes(const ServerConfig& config);

// ServerListeners are the sockets a pod opened for its DNS proxy: non-blocking UDP sockets
// bound to 127.0.0.1:15053 and [::1]:15053 (or wherever a test binds them) and listening TCP
// sockets on the same addresses. The server owns and closes them.
struct ServerListeners {
    std::vector<UniqueFd> udp;
    std::vector<UniqueFd> tcp;
};

// Resolution is a caller-owned request to resolve a hostname-only workload's `hostname` (ztunnel's
// on-demand DNS): an A query, then AAAA when there is no A record, through the pod's forwarder;
// then one address, at random among those of the family of the connection's original
// destination (`prefer_v6`), else among the others. Answers are cached by their TTL (at most
// 5 minutes, 32 names per pod), as ztunnel's resolver caches them. It must stay alive and
// unmoved until `callback` has run or `Server::cancel` returned.
struct Resolution {
    // Callback runs on the ring's thread once the resolution is over.
    using Callback = void (*)(Resolution& self);

    Callback callback = nullptr;
    void* context = nullptr;  // The owner; the server never reads it.

    // Inputs, set before `Server::resolve`.
    std::string hostname;
    bool prefer_v6 = false;

    // Outputs, valid in `callback`: the address chosen, or why there is none (`failure` is
    // `none` when the name exists but has no A or AAAA record).
    std::optional<state::IpAddr> address;
    Failure failure = Failure::none;
    Rcode rcode = Rcode::noerror;

    // Private to the server.
    bool pending = false;
    uint16_t stage_type = 0;
};

// ServerStats is a server's view of itself, for tests and the pod's status.
struct ServerStats {
    uint32_t in_flight = 0;        // Forwards and resolutions out.
    uint32_t tcp_connections = 0;  // DNS-over-TCP clients connected.
    uint32_t shared_receives = 0;  // UDP sockets receiving from the worker's shared buffers.
    uint64_t queries = 0;          // Queries handled (answered, forwarded or refused).
    uint64_t forwarded = 0;
};

// to_sockaddr fills `storage` with `address` and returns its length (for sockets a pod binds
// for its listeners, and for the server's own connects).
socklen_t to_sockaddr(const state::SocketAddr& address, sockaddr_storage& storage);

class Server {
public:
    // start arms receives on every UDP socket and accepts on every TCP one. `context` must be
    // complete (every pointer set).
    static std::unique_ptr<Server> start(const ServerContext& context, ServerListeners listeners);

    ~Server();

    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // close stops the server: the listeners close, TCP clients are cut, forwards in flight end
    // without an answer and pending resolutions complete with `Failure::socket_error`. The
    // server is `closed()` once every completion it owned has come back; only then may it be
    // destroyed. Idempotent.
    void close();

    // closed says whether nothing of this server is in the kernel any more.
    bool closed() const;

    // resolve starts `resolution` on behalf of a connection from `source` (whose SPIFFE identity
    // is `source_principal`), counting `istio_on_demand_dns_total`. The callback always runs
    // later, never inside this call. Resolutions share the in-flight bound with forwarded
    // queries; past it the callback gets `Failure::socket_error` at once (on the next ring turn).
    void resolve(Resolution& resolution, const state::Workload& source,
                 std::string_view source_principal);

    // cancel withdraws a pending `resolution`; its callback will not run. No-op otherwise.
    void cancel(Resolution& resolution);

    ServerStats stats() const;

    struct Impl;

private:
    explicit Server(std::unique_ptr<Impl> impl);

    std::unique_ptr<Impl> impl_;
};

}  // namespace zt::dns
