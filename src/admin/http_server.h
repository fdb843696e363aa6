#pragma once

// HttpServer is a poll()-driven HTTP/1.1 server for the control thread: one listening socket,
// a bounded set of connections, one request per connection (answered with `Connection: close`).
// The control thread either calls `poll_once(timeout)` or folds `collect_pollfds` into its own
// poll set and hands readiness back through `on_poll`. Every limit (connections, header and body
// size, request time) is configured and counted when hit.
//
// Each connection is a small state machine: reading → writing → lingering → closed. After the
// response is written the server shuts down its write side and reads until the client closes
// (bounded), so that unread request bytes never turn the close into a RST that would destroy
// the response in flight.

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/admin/http.h"
#include "src/telemetry/metrics.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::admin {

// HttpHandler answers one complete request. It runs on the control thread and must not block
// for long: every other admin connection waits behind it.
class HttpHandler {
public:
    virtual ~HttpHandler() = default;
    virtual HttpResponse handle(const HttpRequest& request) = 0;
};

// HttpServerOptions configures one server.
struct HttpServerOptions {
    std::string name = "admin";   // the `server` label of refusal counters
    size_t max_connections = 32;  // past it, new connections get 503 and are closed
    HttpLimits limits;
    int64_t request_timeout_ms = 10000;  // whole request must arrive within this
    int64_t linger_timeout_ms = 1000;    // wait for the client's close after responding
    size_t max_response_bytes = 64 << 20;
};

// HttpServerStats counts what the server refused or gave up on. Control thread only.
struct HttpServerStats {
    uint64_t accepted = 0;
    uint64_t requests = 0;
    uint64_t refused_connection_limit = 0;
    uint64_t bad_requests = 0;  // 4xx/5xx produced by the parser
    uint64_t timeouts = 0;
    uint64_t io_errors = 0;
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

    // on_poll handles one entry that `collect_pollfds` produced, after poll() returned. Entries
    // for fds this server does not own are ignored.
    void on_poll(const pollfd& entry);

    // expire closes connections whose deadline passed, counting timeouts. `now_ms` is
    // monotonic milliseconds.
    void expire(int64_t now_ms);

    // next_timeout_ms is how long poll() may sleep before `expire` has work (-1: forever).
    int next_timeout_ms(int64_t now_ms) const;

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
    void on_readable(Connection& connection);
    void on_writable(Connection& connection);
    void respond(Connection& connection, const HttpResponse& response, bool head_only);
    void count_refusal(std::string_view reason);
    void close(size_t index);

    UniqueFd listener_;
    uint16_t port_;
    HttpServerOptions options_;
    HttpHandler& handler_;
    telemetry::ShardedFamily* refused_;
    size_t shard_;
    std::vector<std::unique_ptr<Connection>> connections_;
    std::atomic<size_t> connection_count_{0};
    HttpServerStats stats_;
};

}  // namespace zt::admin
