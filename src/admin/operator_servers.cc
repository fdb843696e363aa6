// operator_servers.cc binds the admin, metrics and readiness servers and fans the control
// thread's poll calls out to them. It adds no behaviour of its own beyond which address serves
// which handler.

#include "src/admin/operator_servers.h"

#include <cerrno>

#include "zt/clock.h"
#include "zt/log.h"

namespace zt::admin {

Result<std::unique_ptr<OperatorServers>> OperatorServers::start(const OperatorOptions& options,
                                                                telemetry::StandardMetrics& metrics,
                                                                Readiness& readiness,
                                                                LogLevels& levels,
                                                                AdminHooks hooks) {
    // The admin server can dump secrets' metadata and shut the node proxy down; it answers on
    // loopback only, as ztunnel's does (reached through `kubectl port-forward`).
    for (const std::string* address : {&options.admin_addr, &options.admin_addr_v6}) {
        if (!address->empty() && !is_loopback_address(*address)) {
            log::error("admin", "admin address must be loopback",
                       {log::Field::display("addr", *address)});
            return fail(Errc::invalid_argument);
        }
    }
    std::unique_ptr<OperatorServers> servers(
            new OperatorServers(std::move(hooks), levels, metrics.registry(), readiness));
    size_t shard = metrics.control_shard();
    auto bind = [&](const std::string& address, const char* name, HttpHandler& handler,
                    std::unique_ptr<HttpServer>& out, bool required) -> Result<void> {
        if (address.empty()) {
            return ok();
        }
        HttpServerOptions server_options = options.limits;
        server_options.name = name;
        if (&handler != &servers->admin_handler_) {
            server_options.max_connections = options.public_max_connections;
            server_options.max_connections_per_source = options.public_max_connections_per_source;
        }
        auto server =
                HttpServer::listen(address, server_options, handler, &metrics.http_refused, shard);
        if (!server) {
            if (!required) {
                return ok();
            }
            log::error("admin", "cannot listen",
                       {log::Field::str("server", name), log::Field::display("addr", address),
                        log::Field::num("errno", uint64_t(server.error().sys_errno))});
            return fail(server.error());
        }
        out = std::move(*server);
        return ok();
    };
    if (auto r = bind(options.admin_addr, "admin", servers->admin_handler_, servers->admin_, true);
        !r) {
        return fail(r.error());
    }
    if (!options.admin_addr_v6.empty() && servers->admin_) {
        // Port 0 (tests) means "the same port as the IPv4 admin listener".
        std::string v6 = options.admin_addr_v6;
        if (v6.size() > 2 && v6.substr(v6.size() - 2) == ":0") {
            v6 = v6.substr(0, v6.size() - 1) + std::to_string(servers->admin_->port());
        }
        // No IPv6 on loopback is normal; the IPv4 listener is enough then.
        (void)bind(v6, "admin", servers->admin_handler_, servers->admin_v6_, false);
    }
    if (auto r = bind(options.metrics_addr, "metrics", servers->metrics_handler_, servers->metrics_,
                      true);
        !r) {
        return fail(r.error());
    }
    if (auto r = bind(options.readiness_addr, "readiness", servers->readiness_handler_,
                      servers->readiness_, true);
        !r) {
        return fail(r.error());
    }
    return servers;
}

std::vector<HttpServer*> OperatorServers::all() const {
    std::vector<HttpServer*> list;
    for (HttpServer* server : {admin_.get(), admin_v6_.get(), metrics_.get(), readiness_.get()}) {
        if (server != nullptr) {
            list.push_back(server);
        }
    }
    return list;
}

void OperatorServers::collect_pollfds(std::vector<pollfd>& fds) const {
    for (HttpServer* server : all()) {
        server->collect_pollfds(fds);
    }
}

void OperatorServers::on_poll(const pollfd& entry) {
    // Most entries of a round have nothing to report; the rest go to the one server that owns
    // the fd now (a number closed and reused by another server within the round reaches that
    // server, which at worst finds nothing to read).
    if (entry.revents == 0) {
        return;
    }
    for (HttpServer* server : all()) {
        if (server->owns(entry.fd)) {
            server->on_poll(entry);
            return;
        }
    }
}

void OperatorServers::expire(int64_t now_ms) {
    for (HttpServer* server : all()) {
        server->expire(now_ms);
    }
}

void OperatorServers::wake_held() {
    for (HttpServer* server : all()) {
        server->wake_held();
    }
}

int OperatorServers::next_timeout_ms(int64_t now_ms) const {
    int best = -1;
    for (HttpServer* server : all()) {
        int wait = server->next_timeout_ms(now_ms);
        if (wait >= 0 && (best < 0 || wait < best)) {
            best = wait;
        }
    }
    return best;
}

Result<void> OperatorServers::poll_once(int timeout_ms) {
    std::vector<pollfd> fds;
    collect_pollfds(fds);
    int64_t now = monotonic_ns() / kNanosPerMilli;
    int wait = next_timeout_ms(now);
    if (wait < 0 || (timeout_ms >= 0 && timeout_ms < wait)) {
        wait = timeout_ms;
    }
    int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
    if (ready < 0) {
        if (errno == EINTR) {
            return ok();
        }
        return fail_errno(errno);
    }
    if (ready > 0) {
        for (const pollfd& entry : fds) {
            on_poll(entry);
        }
    }
    expire(monotonic_ns() / kNanosPerMilli);
    return ok();
}

void OperatorServers::stop_accepting() {
    for (HttpServer* server : {admin_.get(), admin_v6_.get(), metrics_.get()}) {
        if (server != nullptr) {
            server->stop_accepting();
        }
    }
}

}  // namespace zt::admin
