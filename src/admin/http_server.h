#pragma once

// HttpServer is a poll()-driven HTTP/1.1 server for the control thread: one listening socket,
// a bounded set of connections, one request per connection (answered with `Connection: close`).
// The control thread either calls `poll_once(timeout)` or folds `collect_pollfds` into its own
// poll set and hands readiness back through `on_poll`. Every limit (connections in all and per
// source address, header and body size, request and response time) is configured and counted
// when hit.
//
// Each connection is a small state machine: reading → (held →) writing → lingering → closed.
// A handler may hold a request it cannot answer yet (a long poll, `HttpResponse::hold`): the
// connection then waits in `held`, costing no work until `wake_held` asks the handler again or
// its hold time ends; at most `max_held` requests are held at once (past it a request is
// answered at once, counted as `wait_limit`), so held requests never take every slot. After the
// response is written the server shuts down its write side and reads until the client closes
// (bounded), so that unread request bytes never turn the close into a RST that would destroy
// the response in flight.
//
// Idle sockets cannot starve it (the readiness and metrics ports are open to every pod): the
// request must arrive within `request_timeout_ms` (2 s, ztunnel's header-read deadline), one
// source address holds at most `max_connections_per_source` connections (more are refused at
// once), and when every slot is taken a new connection evicts the oldest one still waiting for
// its request from the source holding the most, so a client from another address (the kubelet,
// Prometheus) always gets in. A spare descriptor is kept so that one connection can still be
// accepted when the process runs out of descriptors; past that, accepting pauses briefly
// instead of spinning on a listener it cannot serve.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/admin/http.h"
#include "src/telemetry/metrics.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::admin {

// HttpHandler answers one complete request. It runs on the control thread and must not block
// for long: every other admin connection waits behind it. To wait for something it returns
// `HttpResponse::hold` and is asked again later (http.h).
class HttpHandler {
public:
    virtual ~HttpHandler() = default;
    virtual HttpResponse handle(const HttpRequest& request) = 0;
};

// HttpServerOptions configures one server.
struct HttpServerOptions {
    std::string name = "admin";  // the `server` label of refusal counters
    // max_connections bounds open connections; past it a new one evicts the oldest connection
    // still reading its request (from the source with the most), or is refused with 503.
    size_t max_connections = 32;
    // max_connections_per_source bounds the connections of one client IP address (0: no cap);
    // past it new ones from that address are refused with 503.
    size_t max_connections_per_source = 0;
    HttpLimits limits;
    int64_t request_timeout_ms = 2000;    // the whole request must arrive within this
    int64_t response_timeout_ms = 10000;  // the client must take the response within this
    int64_t linger_timeout_ms = 1000;     // wait for the client's close after responding
    size_t max_response_bytes = 64 << 20;
    int listen_backlog = 1024;      // a burst of connects must not overflow the queue
    int accepts_per_wakeup = 256;   // bounded, so one flood cannot monopolise a wakeup
    int64_t accept_pause_ms = 100;  // after EMFILE/ENFILE with the spare descriptor used
    size_t max_held = 8;            // requests held by their handler at once
    int64_t max_hold_ms = 30000;    // the longest a request is held, whatever the handler asks
};

// HttpServerStats counts what the server refused or gave up on. Control thread only.
struct HttpServerStats {
    uint64_t accepted = 0;
    uint64_t requests = 0;
    uint64_t refused_connection_limit = 0;
    uint64_t refused_per_source = 0;
    uint64_t evicted = 0;       // idle connections closed to make room for a new one
    uint64_t fd_exhausted = 0;  // accepts failed for want of fds or memory (accepting paused)
    uint64_t bad_requests = 0;  // 4xx/5xx produced by the parser
    uint64_t timeouts = 0;
    uint64_t io_errors = 0;
    uint64_t held = 0;             // requests a handler held (long polls)
    uint64_t held_over_limit = 0;  // answered at once because `max_held` were held
};

// is_loopback_address says whether `address` (`host:port` as `HttpServer::listen` takes it)
// names a loopback host: 127.0.0.0/8 or ::1. False for anything unparsable.
bool is_loopback_address(std::string_view address);

class HttpServer {
public:
    // listen binds `address` (`127.0.0.1:15000`, `[::]:15020`, `[::1]:0`, `0.0.0.0:0`) and
    // returns a server that answers with `handler`, which must outlive it. `[::]` listens
    // dual-stack and falls back to `0.0.0.0` when the kernel has no IPv6. If `refused` is given
    // (a counter family labelled {server, reason}), refusals are also counted there on `shard`.
    static Result<std::unique_ptr<HttpServer>> listen(std::string_view address,
                                                      HttpServerOptions options,
                                                      HttpHandler& handler,
                                                      telemetry::ShardedFamily* refused = nullptr,
                                                      size_t shard = 0);

    ~HttpServer();

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // port is the bound port (useful after binding port 0).
    uint16_t port() const { return port_; }

    // collect_pollfds appends this server's fds with the events it waits for.
    void collect_pollfds(std::vector<pollfd>& fds) const;

    // owns says whether `fd` is this server's listener or one of its connections.
    bool owns(int fd) const;

    // on_poll handles one entry that `collect_pollfds` produced, after poll() returned. Entries
    // for fds this server does not own are ignored.
    void on_poll(const pollfd& entry);

    // expire closes connections whose deadline passed, counting timeouts. `now_ms` is
    // monotonic milliseconds.
    void expire(int64_t now_ms);

    // next_timeout_ms is how long poll() may sleep before `expire` has work (-1: forever).
    int next_timeout_ms(int64_t now_ms) const;

    // wake_held asks the handler again about every held request (something it waits for may
    // have happened) and answers those it now answers.
    void wake_held();

    // held_count is the number of requests held now.
    size_t held_count() const { return held_; }

    // poll_once polls this server alone for up to `timeout_ms` and handles what is ready.
    Result<void> poll_once(int timeout_ms);

    // stop_accepting closes the listening socket (drain); open connections finish.
    void stop_accepting();

    // connection_count is the number of open connections; safe to read from any thread.
    size_t connection_count() const { return connection_count_.load(std::memory_order_relaxed); }

    const HttpServerStats& stats() const { return stats_; }

private:
    struct Connection;

    HttpServer(UniqueFd listener, uint16_t port, HttpServerOptions options, HttpHandler& handler,
               telemetry::ShardedFamily* refused, size_t shard);

    void accept_ready();
    void admit(UniqueFd fd, const sockaddr_storage& peer, bool holds_spare);
    void refuse(UniqueFd fd, std::string_view reason, bool holds_spare);
    bool evict_one();
    void on_readable(Connection& connection);
    void on_writable(Connection& connection);
    // answer asks the handler about `request` and responds, or holds the connection.
    void answer(Connection& connection, HttpRequest request);
    void respond(Connection& connection, const HttpResponse& response, bool head_only);
    void count_refusal(std::string_view reason);
    void close(int fd);
    void restore_spare();

    UniqueFd listener_;
    uint16_t port_;
    HttpServerOptions options_;
    HttpHandler& handler_;
    telemetry::ShardedFamily* refused_;
    size_t shard_;
    // connections_ maps a connection's fd to it; per_source_ counts connections by client
    // address (raw bytes, IPv4-mapped IPv6 folded to IPv4).
    std::unordered_map<int, std::unique_ptr<Connection>> connections_;
    std::unordered_map<std::string, size_t> per_source_;
    std::atomic<size_t> connection_count_{0};
    // spare_ is a descriptor held in reserve: closed to accept one connection at EMFILE, taken
    // back when that connection closes.
    UniqueFd spare_;
    int64_t accept_paused_until_ms_ = 0;
    int64_t last_refusal_log_ms_ = INT64_MIN / 2;
    uint64_t accept_sequence_ = 0;
    size_t held_ = 0;  // connections in `held`
    HttpServerStats stats_;
};

}  // namespace zt::admin
