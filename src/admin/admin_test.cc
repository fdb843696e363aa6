// Loopback tests of the admin, metrics and readiness servers over real sockets (port 0): status
// codes and bodies as ztunnel answers them, content negotiation and gzip, and every limit
// (connections, header size, request time) refused and counted.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "src/admin/handlers.h"
#include "src/admin/http_server.h"
#include "src/admin/operator_servers.h"
#include "src/telemetry/standard_metrics.h"
#include "tests/support/gunzip.h"
#include "zt/unique_fd.h"

using namespace zt::admin;

namespace {

// ServerThread runs `server.poll_once` on its own thread until destroyed, like the control
// thread would.
class ServerThread {
public:
    explicit ServerThread(HttpServer& server)
        : server_(server), thread_([this] {
            while (!stop_.load()) {
                (void)server_.poll_once(10);
            }
        }) {}

    ~ServerThread() {
        stop_.store(true);
        thread_.join();
    }

private:
    HttpServer& server_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

zt::UniqueFd connect_to(uint16_t port, bool ipv6 = false) {
    zt::UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc;
    if (ipv6) {
        sockaddr_in6 addr{};
        addr.sin6_family = AF_INET6;
        addr.sin6_port = htons(port);
        addr.sin6_addr = in6addr_loopback;
        rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } else {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    REQUIRE(rc == 0);
    return fd;
}

std::string read_to_eof(int fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, size_t(n));
    }
    return out;
}

struct Reply {
    int status = 0;
    std::string head;
    std::string body;

    std::string header(const std::string& name) const {
        size_t at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos) {
            return {};
        }
        size_t start = at + name.size() + 4;
        return head.substr(start, head.find("\r\n", start) - start);
    }
};

Reply parse_reply(const std::string& raw) {
    Reply reply;
    size_t end = raw.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    reply.head = raw.substr(0, end);
    reply.body = raw.substr(end + 4);
    REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
    reply.status = std::stoi(raw.substr(9, 3));
    CHECK(reply.header("content-length") == std::to_string(reply.body.size()));
    return reply;
}

Reply http_exchange(uint16_t port, const std::string& request, bool ipv6 = false) {
    zt::UniqueFd fd = connect_to(port, ipv6);
    REQUIRE(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
            ssize_t(request.size()));
    return parse_reply(read_to_eof(fd.get()));
}

std::string get(std::string_view path, std::string_view extra_headers = {}) {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n" +
           std::string(extra_headers) + "\r\n";
}

std::string post(std::string_view path) {
    return "POST " + std::string(path) +
           " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
}

}  // namespace

TEST_CASE("admin: endpoints answer as ztunnel's admin server does") {
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
    int shutdowns = 0;
    AdminHooks hooks;
    hooks.config_dump = [] {
        return std::string("{\n  \"workloads\": []\n}");
    };
    hooks.shutdown = [&shutdowns] {
        ++shutdowns;
    };
    AdminHandler handler(std::move(hooks), levels);
    auto server = HttpServer::listen("127.0.0.1:0", {}, handler);
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    REQUIRE(port != 0);
    {
        ServerThread thread(**server);
        Reply index = http_exchange(port, get("/"));
        CHECK(index.status == 200);
        CHECK(index.body.find("/config_dump") != std::string::npos);
        CHECK(index.header("connection") == "close");

        Reply dump = http_exchange(port, get("/config_dump"));
        CHECK(dump.status == 200);
        CHECK(dump.header("content-type") == "application/json");
        CHECK(dump.body == "{\n  \"workloads\": []\n}");

        CHECK(http_exchange(port, get("/quitquitquit")).status == 405);
        CHECK(http_exchange(port, get("/nope")).status == 404);
        CHECK(http_exchange(port, get("/nope")).body.empty());

        Reply logging = http_exchange(port, post("/logging?level=access:debug"));
        CHECK(logging.status == 200);
        CHECK(logging.body == "current log level is info,access=debug\n");
        CHECK(http_exchange(port, get("/logging")).status == 405);

        Reply quit = http_exchange(port, post("/quitquitquit"));
        CHECK(quit.status == 200);
        CHECK(quit.body == "shutdown now\n");
    }
    CHECK(shutdowns == 1);
    CHECK((*server)->stats().requests == 8);
    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
}

TEST_CASE("admin: config_dump without a provider is 503, not a crash") {
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    AdminHandler handler({}, levels);
    auto server = HttpServer::listen("127.0.0.1:0", {}, handler);
    REQUIRE(server.has_value());
    ServerThread thread(**server);
    CHECK(http_exchange((*server)->port(), get("/config_dump")).status == 503);
    CHECK(http_exchange((*server)->port(), post("/quitquitquit")).status == 200);
}

TEST_CASE("admin: metrics negotiate OpenMetrics and gzip, other paths 404") {
    zt::telemetry::StandardMetrics metrics({1, "1.24.0", {}});
    metrics.record_config_reload(true, 1700000000);
    MetricsHandler handler(metrics.registry());
    auto server = HttpServer::listen("127.0.0.1:0", {}, handler);
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    ServerThread thread(**server);

    Reply text = http_exchange(port, get("/metrics"));
    CHECK(text.status == 200);
    CHECK(text.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(text.body.find("\nztunnel_config_reloads_total{result=\"success\"} 1\n") !=
          std::string::npos);
    CHECK(text.body.find("# EOF") == std::string::npos);

    Reply om = http_exchange(port, get("/stats/prometheus",
                                       "Accept: application/openmetrics-text;version=1.0.0,"
                                       "text/plain;version=0.0.4;q=0.5\r\n"));
    CHECK(om.status == 200);
    CHECK(om.header("content-type").rfind("application/openmetrics-text", 0) == 0);
    CHECK(om.body.size() > 6);
    CHECK(om.body.substr(om.body.size() - 6) == "# EOF\n");

    Reply zipped = http_exchange(port, get("/metrics", "Accept-Encoding: gzip, deflate\r\n"));
    CHECK(zipped.status == 200);
    CHECK(zipped.header("content-encoding") == "gzip");
    auto unzipped = zt::test::gunzip(zipped.body);
    REQUIRE(unzipped.has_value());
    std::string plain = *unzipped;
    CHECK(plain.find("istio_build{component=\"ztunnel\",tag=\"1.24.0\"} 1") != std::string::npos);

    CHECK(http_exchange(port, get("/")).status == 404);
    CHECK(http_exchange(port, get("/healthz/ready")).status == 404);
}

TEST_CASE("admin: readiness reports pending tasks and serves dual-stack on [::]") {
    Readiness readiness;
    readiness.block("state manager");
    readiness.block("proxy");
    ReadinessHandler handler(readiness);
    auto server = HttpServer::listen("[::]:0", {}, handler);
    if (!server && server.error().sys_errno == EAFNOSUPPORT) {
        MESSAGE("no IPv6 here; [::] fell back");
    }
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    ServerThread thread(**server);

    Reply pending = http_exchange(port, get("/healthz/ready"));
    CHECK(pending.status == 500);
    CHECK(pending.body == "not ready, pending: proxy, state manager\n");
    readiness.release("state manager");
    readiness.release("proxy");
    Reply ready = http_exchange(port, get("/healthz/ready"));
    CHECK(ready.status == 200);
    CHECK(ready.body == "ready\n");
    CHECK(http_exchange(port, post("/healthz/ready")).status == 405);
    CHECK(http_exchange(port, get("/ready")).status == 404);
    // Over IPv6 loopback too, when the host has it.
    zt::UniqueFd probe(::socket(AF_INET6, SOCK_STREAM, 0));
    if (probe.valid()) {
        readiness.start_draining();
        Reply draining = http_exchange(port, get("/healthz/ready"), true);
        CHECK(draining.status == 500);
        CHECK(draining.body == "not ready, pending: draining\n");
    }
}

TEST_CASE("admin: connection, header-size and time limits refuse and count") {
    zt::telemetry::StandardMetrics metrics({1, "", {}});
    Readiness readiness;
    ReadinessHandler handler(readiness);
    HttpServerOptions options;
    options.name = "readiness";
    options.max_connections = 1;
    options.request_timeout_ms = 300;
    options.limits.max_header_bytes = 256;
    auto server = HttpServer::listen("127.0.0.1:0", options, handler, &metrics.http_refused,
                                     metrics.control_shard());
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    {
        ServerThread thread(**server);
        // One idle connection fills the server; the next one is told 503.
        zt::UniqueFd idle = connect_to(port);
        for (int i = 0; i < 200 && (*server)->connection_count() == 0; ++i) {
            usleep(5000);
        }
        Reply busy = http_exchange(port, get("/healthz/ready"));
        CHECK(busy.status == 503);
        // The idle one is closed at its deadline without an answer.
        CHECK(read_to_eof(idle.get()).empty());
        // A head over the limit gets 431.
        Reply big = http_exchange(
                port, get("/healthz/ready", "X-Big: " + std::string(400, 'a') + "\r\n"));
        CHECK(big.status == 431);
        // The server lingers until it sees our close; wait for the slot to be free again.
        for (int i = 0; i < 400 && (*server)->connection_count() != 0; ++i) {
            usleep(5000);
        }
        // A request that arrives in pieces still works.
        zt::UniqueFd slow = connect_to(port);
        std::string request = get("/healthz/ready");
        for (char c : request) {
            REQUIRE(::send(slow.get(), &c, 1, MSG_NOSIGNAL) == 1);
        }
        CHECK(parse_reply(read_to_eof(slow.get())).status == 200);
    }
    const HttpServerStats& stats = (*server)->stats();
    CHECK(stats.refused_connection_limit == 1);
    CHECK(stats.timeouts == 1);
    CHECK(stats.bad_requests == 1);
    CHECK(metrics.http_refused.value({"readiness", "connection_limit"}) == 1);
    CHECK(metrics.http_refused.value({"readiness", "timeout"}) == 1);
    CHECK(metrics.http_refused.value({"readiness", "request_too_large"}) == 1);
}

TEST_CASE("admin: stop_accepting closes the listener and keeps serving open connections") {
    Readiness readiness;
    ReadinessHandler handler(readiness);
    auto server = HttpServer::listen("127.0.0.1:0", {}, handler);
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    zt::UniqueFd early = connect_to(port);
    (void)(*server)->poll_once(100);  // accept it
    REQUIRE((*server)->connection_count() == 1);
    (*server)->stop_accepting();
    std::string request = get("/healthz/ready");
    REQUIRE(::send(early.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
            ssize_t(request.size()));
    for (int i = 0; i < 10 && (*server)->connection_count() > 0; ++i) {
        (void)(*server)->poll_once(50);
        if ((*server)->stats().requests == 1) {
            break;
        }
    }
    CHECK(parse_reply(read_to_eof(early.get())).status == 200);
    zt::UniqueFd late(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::connect(late.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0);
}

TEST_CASE("admin: a malformed listen address is refused") {
    Readiness readiness;
    ReadinessHandler handler(readiness);
    CHECK_FALSE(HttpServer::listen("localhost:15000", {}, handler).has_value());
    CHECK_FALSE(HttpServer::listen("127.0.0.1", {}, handler).has_value());
    CHECK_FALSE(HttpServer::listen("[::1:0", {}, handler).has_value());
    CHECK_FALSE(HttpServer::listen("127.0.0.1:99999", {}, handler).has_value());
}

TEST_CASE("admin: the operator servers refuse a non-loopback admin address") {
    CHECK(is_loopback_address("127.0.0.1:15000"));
    CHECK(is_loopback_address("127.5.6.7:0"));
    CHECK(is_loopback_address("[::1]:15000"));
    CHECK_FALSE(is_loopback_address("0.0.0.0:15000"));
    CHECK_FALSE(is_loopback_address("[::]:15000"));
    CHECK_FALSE(is_loopback_address("198.18.0.1:15000"));
    CHECK_FALSE(is_loopback_address("garbage"));

    zt::telemetry::StandardMetrics metrics({1, "", {}});
    Readiness readiness;
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    OperatorOptions options;
    options.admin_addr = "0.0.0.0:0";
    options.admin_addr_v6.clear();
    options.metrics_addr = "127.0.0.1:0";
    options.readiness_addr = "127.0.0.1:0";
    auto refused = OperatorServers::start(options, metrics, readiness, levels, {});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == zt::Errc::invalid_argument);

    options.admin_addr = "127.0.0.1:0";
    options.admin_addr_v6 = "[::1]:0";
    auto servers = OperatorServers::start(options, metrics, readiness, levels, {});
    REQUIRE(servers.has_value());
    CHECK((*servers)->admin_port() != 0);
    CHECK((*servers)->metrics_port() != (*servers)->readiness_port());
    // The control thread's loop, on its own thread; assertions stay on this one.
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop.load()) {
            (void)(*servers)->poll_once(10);
        }
    });
    Reply ready = http_exchange((*servers)->readiness_port(), get("/healthz/ready"));
    Reply index = http_exchange((*servers)->admin_port(), get("/"));
    Reply scrape = http_exchange((*servers)->metrics_port(), get("/metrics"));
    stop.store(true);
    loop.join();
    CHECK(ready.status == 200);
    CHECK(index.status == 200);
    CHECK(scrape.status == 200);
    CHECK(scrape.body.find("# TYPE istio_build gauge") != std::string::npos);
}
