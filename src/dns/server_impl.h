#pragma once

// The records of one pod's DNS server, shared by server.cc (client sockets: UDP, TCP framing,
// query dispatch) and upstream.cc (forwards and on-demand resolutions: the upstream legs that
// execute an `Exchange`'s steps). Private to src/dns/. Every record that embeds a
// `uring::Completion` is released only once none of its completions is in the kernel.

#include <sys/socket.h>
#include <sys/uio.h>

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "src/dns/server.h"

namespace zt::dns {

struct UdpSocket;
struct TcpClient;

// kTickNs is the resolution of the forwarders' attempt deadlines.
inline constexpr int64_t kTickNs = 25 * kNanosPerMilli;

// kResolutionCacheEntries bounds a server's cache of on-demand resolutions (hickory's default
// cache size, which ztunnel's on-demand resolver keeps); kResolutionTtlMaxNs caps how long an
// entry lives whatever its records' TTL says.
inline constexpr size_t kResolutionCacheEntries = 32;
inline constexpr int64_t kResolutionTtlMaxNs = 300 * kNanosPerSecond;

// CachedResolution is the addresses a hostname resolved to, until `expires_ns`.
struct CachedResolution {
    std::string hostname;  // Lower case.
    std::vector<state::IpAddr> ips;
    int64_t expires_ns = 0;
};

// UdpReply is one answer on its way to a UDP client: the bytes and the address stay put until
// the send completes.
struct UdpReply {
    UdpSocket* socket = nullptr;
    uring::Completion send;
    msghdr message{};
    iovec iov{};
    sockaddr_storage to{};
    std::vector<uint8_t> bytes;
};

// UdpSocket is one bound UDP socket with its receive always armed (while open): a multishot
// receive from the worker's shared buffers, or one receive at a time into `buffer`; and a
// bounded pool of replies in flight.
struct UdpSocket {
    Server::Impl* owner = nullptr;
    UniqueFd fd;
    bool multishot = false;
    uring::Completion recv;
    msghdr message{};  // One-shot: the receive's header. Multishot: the buffers' layout.
    iovec iov{};
    sockaddr_storage peer{};
    std::vector<uint8_t> buffer;                     // One-shot only.
    std::vector<std::unique_ptr<UdpReply>> replies;  // Every reply ever made, reused.
    std::vector<UdpReply*> free_replies;
    uint32_t replies_out = 0;
};

// TcpListener is one listening socket with its multishot accept.
struct TcpListener {
    Server::Impl* owner = nullptr;
    UniqueFd fd;
    uring::Completion accept;
    uring::Timer rearm;  // Re-arms the accept after an error such as EMFILE, without spinning.
};

// TcpClientState is where a DNS-over-TCP client stands.
enum class TcpClientState : uint8_t {
    reading,   // Reading framed queries; answers go out as they are ready.
    draining,  // No more reading (EOF or the request timeout): send what is owed, then close.
    closing,   // Cancelling its operations; freed once they are back and no forward owes it.
};

std::string_view to_string(TcpClientState state);

// TcpClient is one DNS-over-TCP connection: two-byte length framing, several queries per
// connection (answers in the order they are ready), one send in flight at a time.
struct TcpClient {
    Server::Impl* owner = nullptr;
    UniqueFd fd;
    TcpClientState state = TcpClientState::reading;
    uring::Completion recv;
    uring::Completion send;
    uring::Timer idle;  // Fires `tcp_request_timeout_ns` after the last whole query.
    int64_t last_query_ns = 0;
    std::vector<uint8_t> in;  // Received bytes not yet taken as queries.
    size_t in_have = 0;
    std::deque<std::vector<uint8_t>> out;  // Framed answers; the front one is being sent.
    size_t out_offset = 0;
    uint32_t outstanding = 0;  // Forwards whose answer this client is owed.
};

// OriginKind is where a forward's answer goes.
enum class OriginKind : uint8_t { udp, tcp, resolution };

// Origin is the client of one query.
struct Origin {
    OriginKind kind = OriginKind::udp;
    UdpSocket* udp = nullptr;
    sockaddr_storage peer{};
    socklen_t peer_length = 0;
    TcpClient* tcp = nullptr;
    Resolution* resolution = nullptr;
};

// LegState is where a forward's current upstream socket stands.
enum class LegState : uint8_t {
    idle,        // No socket.
    connecting,  // connect() is out, the attempt's timer armed.
    exchanging,  // The query is out and a receive armed.
    closing,     // Cancelled; the socket closes once every operation is back.
};

std::string_view to_string(LegState state);

// FlightState is where one forward stands in the server.
enum class FlightState : uint8_t {
    free,       // In the pool.
    running,    // Its `Exchange` is not done.
    finishing,  // Answered (or abandoned); its leg is closing.
};

std::string_view to_string(FlightState state);

// Flight is one forwarded query or resolution stage: the `Exchange` deciding, and the one
// upstream socket (the "leg") executing its current attempt.
struct Flight {
    Server::Impl* owner = nullptr;
    FlightState state = FlightState::free;
    Exchange exchange;
    Origin origin;
    std::shared_ptr<const state::Snapshot> snapshot;  // Keeps `client` alive.
    const state::Workload* client = nullptr;
    DnsSeries* series = nullptr;  // Null for resolutions (not a client query).
    LegState leg = LegState::idle;
    Transport leg_transport = Transport::udp;
    UniqueFd fd;
    sockaddr_storage upstream{};
    socklen_t upstream_length = 0;
    uring::Completion connect;  // TCP only: a UDP socket connects at once, without the ring.
    uring::Completion send;
    uring::Completion recv;
    std::vector<uint8_t> buffer;  // The upstream's answer (TCP: with its two length bytes).
    size_t have = 0;
    size_t sent = 0;
    std::optional<Step> pending;  // A new attempt to open once the old leg is closed.
};

struct Server::Impl {
    ServerContext context;
    const ServerConfig* config = nullptr;
    bool closing = false;
    uint64_t random_state = 0;
    std::vector<std::unique_ptr<UdpSocket>> udp;
    std::vector<std::unique_ptr<TcpListener>> listeners;
    std::vector<std::unique_ptr<TcpClient>> clients;
    std::vector<std::unique_ptr<Flight>> flights;  // Every flight ever made, reused.
    std::vector<Flight*> free_flights;
    uint32_t in_flight = 0;
    uint64_t queries = 0;
    uint64_t forwarded = 0;
    // Resolutions whose callback is due; one nop on the ring runs them on a later turn, so a
    // callback never runs inside `resolve`.
    std::vector<Resolution*> ready;
    uring::Completion ready_notify;
    // resolutions caches on-demand answers by TTL (at most kResolutionCacheEntries; the one
    // closest to expiry makes room), so every connection to a hostname-only workload does not
    // wait for a query.
    std::vector<CachedResolution> resolutions;
    // tick fires every kTickNs while forwards are out and passes each attempt deadline that is
    // due to its exchange: one timer per server rather than one armed and cancelled per query.
    uring::Timer tick;

    // server.cc: client sockets and dispatch.
    void arm_udp(UdpSocket& socket);
    void on_udp(UdpSocket& socket, int32_t res);
    void on_udp_multishot(UdpSocket& socket, int32_t res, uint32_t flags);
    void take_datagram(UdpSocket& socket, std::span<const uint8_t> payload, bool truncated,
                       std::span<const uint8_t> peer);
    void send_udp_reply(UdpSocket& socket, const sockaddr_storage& to, socklen_t to_length,
                        std::span<const uint8_t> bytes);
    void on_udp_sent(UdpReply& reply);
    void arm_accept(TcpListener& listener);
    void on_accept(TcpListener& listener, int32_t res, uint32_t flags);
    void arm_tcp_recv(TcpClient& client);
    void on_tcp_recv(TcpClient& client, int32_t res);
    void on_tcp_idle(TcpClient& client, int32_t res);
    void queue_tcp_answer(TcpClient& client, std::span<const uint8_t> bytes);
    void pump_tcp_send(TcpClient& client);
    void on_tcp_sent(TcpClient& client, int32_t res);
    void close_client(TcpClient& client);
    void maybe_free_client(TcpClient& client);
    void handle_query(std::span<const uint8_t> message, const Origin& origin, Transport transport);
    void respond(const Origin& origin, std::span<const uint8_t> bytes);
    uint64_t next_random();

    // upstream.cc: forwards and resolutions.
    Flight* acquire_flight(bool bounded);
    void forward(const Origin& origin, const Query& query, std::span<const uint8_t> message,
                 Transport transport, size_t limit, std::shared_ptr<const state::Snapshot> snapshot,
                 const state::Workload* client, DnsSeries* series);
    bool start_resolution_stage(Resolution& resolution, uint16_t type, bool bounded);
    void run(Flight& flight, Step step);
    void open_leg(Flight& flight, Step step);
    bool leg_busy(const Flight& flight) const;
    void close_leg(Flight& flight);
    void maybe_leg_closed(Flight& flight);
    void on_leg_connect(Flight& flight, int32_t res);
    void on_leg_send(Flight& flight, int32_t res);
    void on_leg_recv(Flight& flight, int32_t res);
    void arm_tick();
    void on_tick(int32_t res);
    void arm_leg_recv(Flight& flight);
    void deliver(Flight& flight);
    void finish_resolution(Flight& flight);
    void complete_resolution(Resolution& resolution);
    void choose_address(Resolution& resolution, std::span<const state::IpAddr> ips);
    void cache_resolution(const Resolution& resolution, std::span<const state::IpAddr> ips,
                          uint32_t ttl_seconds);
    const CachedResolution* cached_resolution(std::string_view hostname);
    void run_ready_resolutions();
    void release(Flight& flight);
    void abandon_flights();
};

}  // namespace zt::dns
