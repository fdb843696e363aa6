#pragma once

// OperatorServers bundles the three operator HTTP servers of `ztunnel run` (docs/contract.md §6,
// §7): admin on loopback (127.0.0.1:15000, plus [::1]:15000 when the host has IPv6, as ztunnel
// binds both), metrics on [::]:15020, readiness on [::]:15021. The control thread owns it and
// drives it through the same poll API as a single `HttpServer`, folding in its own fds (signalfd,
// inotify) or calling `poll_once`. Refusals are counted in
// `ztunnel_http_requests_refused_total{server,reason}` on the control shard (reasons
// `connection_limit`, `per_source_limit`, `evicted`, `fd_limit`, `timeout`, `bad_request`,
// `request_too_large`, `wait_limit`).

#include <memory>
#include <string>
#include <vector>

#include "src/admin/handlers.h"
#include "src/admin/http_server.h"
#include "src/telemetry/standard_metrics.h"

namespace zt::admin {

// OperatorOptions are the listen addresses and per-server limits. An empty address disables
// that server.
struct OperatorOptions {
    std::string admin_addr = "127.0.0.1:15000";
    // admin_addr_v6 is tried in addition; failure to bind it (no IPv6 on lo) is not an error.
    std::string admin_addr_v6 = "[::1]:15000";
    std::string metrics_addr = "[::]:15020";
    std::string readiness_addr = "[::]:15021";
    HttpServerOptions limits;  // `name` is set per server
    // Metrics and readiness answer any pod on the node, so they get more slots and a cap per
    // client address (the admin server is loopback-only and keeps `limits`): 1,000 idle sockets
    // from one pod cannot make the kubelet's probe or a Prometheus scrape fail.
    size_t public_max_connections = 512;
    size_t public_max_connections_per_source = 16;
};

class OperatorServers {
public:
    // start binds every configured server. `metrics`, `readiness` and `levels` must outlive the
    // result. Fails with `Errc::invalid_argument` when an admin address is not loopback, else
    // with the first bind error (address in use, permission).
    static Result<std::unique_ptr<OperatorServers>> start(const OperatorOptions& options,
                                                          telemetry::StandardMetrics& metrics,
                                                          Readiness& readiness, LogLevels& levels,
                                                          AdminHooks hooks);

    // collect_pollfds, on_poll, expire and next_timeout_ms fan out to every server; see
    // `HttpServer`.
    void collect_pollfds(std::vector<pollfd>& fds) const;
    void on_poll(const pollfd& entry);
    void expire(int64_t now_ms);
    int next_timeout_ms(int64_t now_ms) const;

    // wake_held asks again about every held request (a waiting `GET /pods`); call it when a
    // worker published its status or a reload ended.
    void wake_held();

    // poll_once polls all servers (and nothing else) for up to `timeout_ms`.
    Result<void> poll_once(int timeout_ms);

    // stop_accepting closes the admin and metrics listeners at the end of a drain. Readiness
    // keeps answering (500) until the process exits, so the kubelet sees the drain.
    void stop_accepting();

    uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }

    uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }

    uint16_t readiness_port() const { return readiness_ ? readiness_->port() : 0; }

    // metrics_connections and readiness_connections are those servers' open connections.
    size_t metrics_connections() const { return metrics_ ? metrics_->connection_count() : 0; }

    size_t readiness_connections() const { return readiness_ ? readiness_->connection_count() : 0; }

private:
    OperatorServers(AdminHooks hooks, LogLevels& levels, const telemetry::Registry& registry,
                    const Readiness& readiness)
        : admin_handler_(std::move(hooks), levels)
        , metrics_handler_(registry)
        , readiness_handler_(readiness) {}

    std::vector<HttpServer*> all() const;

    AdminHandler admin_handler_;
    MetricsHandler metrics_handler_;
    ReadinessHandler readiness_handler_;
    std::unique_ptr<HttpServer> admin_;
    std::unique_ptr<HttpServer> admin_v6_;
    std::unique_ptr<HttpServer> metrics_;
    std::unique_ptr<HttpServer> readiness_;
};

}  // namespace zt::admin
