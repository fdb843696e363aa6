// Loopback tests of the admin, metrics and readiness servers over real sockets (port 0): status
// codes and bodies as ztunnel answers them, content negotiation and gzip, and every limit
// (connections, header size, request time) refused and counted.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

namespace {

// connect_from opens a non-blocking connection from `source` (a 127.x.y.z address) to
// 127.0.0.1:`port` and leaves it idle. Returns an invalid fd when the socket cannot be made.
zt::UniqueFd connect_from(const char* source, uint16_t port) {
    zt::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return fd;
    }
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        return zt::UniqueFd();
    }
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof remote);
    return fd;
}

// exchange_from sends `request` from `source` to 127.0.0.1:`port` and returns the reply.
Reply exchange_from(const char* source, uint16_t port, const std::string& request) {
    zt::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0);
    REQUIRE(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
            ssize_t(request.size()));
    std::string raw = read_to_eof(fd.get());
    if (raw.empty()) {
        return Reply{};  // status 0: closed without an answer
    }
    return parse_reply(raw);
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
    auto wait_for_count = [&](size_t want) {
        for (int i = 0; i < 400 && (*server)->connection_count() != want; ++i) {
            usleep(5000);
        }
        return (*server)->connection_count() == want;
    };
    {
        ServerThread thread(**server);
        // One idle connection fills the server; a newcomer evicts it (the oldest connection
        // still waiting for its request) and is answered. The idle one gets no answer.
        zt::UniqueFd idle = connect_to(port);
        REQUIRE(wait_for_count(1));
        Reply answered = http_exchange(port, get("/healthz/ready"));
        CHECK(answered.status == 200);
        CHECK(read_to_eof(idle.get()).empty());
        REQUIRE(wait_for_count(0));
        // A connection that never sends its request is closed at the deadline, unanswered.
        zt::UniqueFd silent = connect_to(port);
        CHECK(read_to_eof(silent.get()).empty());
        REQUIRE(wait_for_count(0));
        // A client that read its answer but keeps the socket open holds the only slot while the
        // server lingers; nothing is evictable then, and a newcomer is told 503.
        zt::UniqueFd keeper = connect_to(port);
        std::string request = get("/healthz/ready");
        REQUIRE(::send(keeper.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
                ssize_t(request.size()));
        CHECK(parse_reply(read_to_eof(keeper.get())).status == 200);
        Reply busy = http_exchange(port, get("/healthz/ready"));
        CHECK(busy.status == 503);
        keeper.reset();
        REQUIRE(wait_for_count(0));
        // A head over the limit gets 431.
        Reply big = http_exchange(
                port, get("/healthz/ready", "X-Big: " + std::string(400, 'a') + "\r\n"));
        CHECK(big.status == 431);
        REQUIRE(wait_for_count(0));
        // A request that arrives in pieces still works.
        zt::UniqueFd slow = connect_to(port);
        for (char c : request) {
            REQUIRE(::send(slow.get(), &c, 1, MSG_NOSIGNAL) == 1);
        }
        CHECK(parse_reply(read_to_eof(slow.get())).status == 200);
    }
    const HttpServerStats& stats = (*server)->stats();
    CHECK(stats.evicted == 1);
    CHECK(stats.refused_connection_limit == 1);
    CHECK(stats.timeouts == 1);
    CHECK(stats.bad_requests == 1);
    CHECK(metrics.http_refused.value({"readiness", "evicted"}) == 1);
    CHECK(metrics.http_refused.value({"readiness", "connection_limit"}) == 1);
    CHECK(metrics.http_refused.value({"readiness", "timeout"}) == 1);
    CHECK(metrics.http_refused.value({"readiness", "request_too_large"}) == 1);
}

TEST_CASE("admin: one source address is capped; others are not") {
    zt::telemetry::StandardMetrics metrics({1, "", {}});
    Readiness readiness;
    ReadinessHandler handler(readiness);
    HttpServerOptions options;
    options.name = "readiness";
    options.max_connections = 8;
    options.max_connections_per_source = 2;
    auto server = HttpServer::listen("127.0.0.1:0", options, handler, &metrics.http_refused,
                                     metrics.control_shard());
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    ServerThread thread(**server);
    zt::UniqueFd first = connect_from("127.0.0.2", port);
    zt::UniqueFd second = connect_from("127.0.0.2", port);
    for (int i = 0; i < 400 && (*server)->connection_count() != 2; ++i) {
        usleep(5000);
    }
    REQUIRE((*server)->connection_count() == 2);
    // A third from the same address is refused at once; one from another address is served.
    Reply third = exchange_from("127.0.0.2", port, get("/healthz/ready"));
    CHECK(third.status == 503);
    Reply other = exchange_from("127.0.0.3", port, get("/healthz/ready"));
    CHECK(other.status == 200);
    CHECK(metrics.http_refused.value({"readiness", "per_source_limit"}) == 1);
    CHECK((*server)->stats().refused_per_source == 1);
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

TEST_CASE("admin: 1,000 idle sockets from one source starve neither a probe nor a scrape") {
    // Each attacking socket costs two descriptors here (both ends live in this process).
    rlimit limit{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_max < 8192) {
        MESSAGE("skipped: RLIMIT_NOFILE hard limit below 8192");
        return;
    }
    rlimit raised = limit;
    raised.rlim_cur = std::max<rlim_t>(limit.rlim_cur, 8192);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &raised) == 0);

    zt::telemetry::StandardMetrics metrics({1, "", {}});
    Readiness readiness;
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    OperatorOptions options;
    options.admin_addr = "127.0.0.1:0";
    options.admin_addr_v6.clear();
    options.metrics_addr = "127.0.0.1:0";
    options.readiness_addr = "127.0.0.1:0";
    auto servers = OperatorServers::start(options, metrics, readiness, levels, {});
    REQUIRE(servers.has_value());
    OperatorServers& ops = **servers;
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop.load()) {
            (void)ops.poll_once(10);
        }
    });

    // A pod (127.0.0.2) opens 1,000 idle sockets to each of readiness and metrics.
    std::vector<zt::UniqueFd> idle;
    for (int i = 0; i < 1000; ++i) {
        for (uint16_t port : {ops.readiness_port(), ops.metrics_port()}) {
            zt::UniqueFd fd = connect_from("127.0.0.2", port);
            REQUIRE(fd.valid());
            idle.push_back(std::move(fd));
        }
    }
    usleep(200 * 1000);  // let the server take what it will of them

    // The kubelet (127.0.0.3) probes and Prometheus (127.0.0.4) scrapes: both are answered.
    Reply probe = exchange_from("127.0.0.3", ops.readiness_port(), get("/healthz/ready"));
    Reply scrape = exchange_from("127.0.0.4", ops.metrics_port(), get("/metrics"));
    CHECK(probe.status == 200);
    CHECK(scrape.status == 200);

    // The idle sockets are dropped at the 2 s header deadline, and every refusal is counted.
    for (int i = 0; i < 100 && (ops.readiness_connections() > 0 || ops.metrics_connections() > 0);
         ++i) {
        usleep(50 * 1000);
    }
    CHECK(ops.readiness_connections() == 0);
    CHECK(ops.metrics_connections() == 0);
    stop.store(true);
    loop.join();
    uint64_t refused = 0;
    for (const char* server : {"readiness", "metrics"}) {
        for (const char* reason : {"per_source_limit", "timeout", "connection_limit"}) {
            refused += metrics.http_refused.value({server, reason});
        }
    }
    CHECK(refused >= 2000 - 2 * 64);  // all but the few each server let in before its cap
    CHECK(metrics.http_refused.value({"readiness", "timeout"}) > 0);
    idle.clear();
    REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
}

TEST_CASE("admin: out of descriptors, the spare one still lets a probe in; then accepting pauses") {
    zt::telemetry::StandardMetrics metrics({1, "", {}});
    Readiness readiness;
    ReadinessHandler handler(readiness);
    HttpServerOptions options;
    options.name = "readiness";
    options.accept_pause_ms = 50;
    auto server = HttpServer::listen("127.0.0.1:0", options, handler, &metrics.http_refused,
                                     metrics.control_shard());
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    rlimit limit{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
    std::vector<zt::UniqueFd> fillers;
    std::string request = get("/healthz/ready");
    {
        ServerThread thread(**server);
        // Take every descriptor this process may open (a low soft limit keeps it quick), then
        // free exactly one for each client socket this test opens.
        rlimit low = limit;
        low.rlim_cur = std::min<rlim_t>(limit.rlim_cur, 4096);
        REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
        for (;;) {
            zt::UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (!fd.valid()) {
                break;
            }
            fillers.push_back(std::move(fd));
        }
        fillers.pop_back();
        zt::UniqueFd first = connect_to(port);
        REQUIRE(::send(first.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
                ssize_t(request.size()));
        // Answered through the spare descriptor, although accept4 hit EMFILE.
        CHECK(parse_reply(read_to_eof(first.get())).status == 200);
        // Keep that one open (the server lingers on it, holding the spare's number); a second
        // client cannot be accepted now: the server pauses accepting instead of spinning.
        fillers.pop_back();
        zt::UniqueFd second = connect_to(port);
        REQUIRE(::send(second.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
                ssize_t(request.size()));
        for (int i = 0; i < 200 && (*server)->stats().fd_exhausted == 0; ++i) {
            usleep(5000);
        }
        CHECK((*server)->stats().fd_exhausted > 0);
        // Descriptors come back: the waiting client is accepted and answered.
        fillers.clear();
        CHECK(parse_reply(read_to_eof(second.get())).status == 200);
    }
    REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
    CHECK(metrics.http_refused.value({"readiness", "fd_limit"}) > 0);
    // A pause is short and bounded: far fewer refusals than a spinning accept loop would count.
    CHECK((*server)->stats().fd_exhausted < 200);
}

TEST_CASE("admin: /pods answers GET with the provider's JSON, 405 otherwise, 503 without one") {
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    AdminHooks hooks;
    hooks.pods = [](const std::vector<std::string>& only) {
        std::string listed;
        for (const std::string& uid : only) {
            listed += (listed.empty() ? "\"" : ",\"") + uid + "\"";
        }
        return "{\"config\":{\"generation\":1,\"sha256\":\"ab\"},\"pods\":[" + listed + "]}\n";
    };
    AdminHandler handler(std::move(hooks), levels);
    auto server = HttpServer::listen("127.0.0.1:0", {}, handler);
    REQUIRE(server.has_value());
    {
        ServerThread thread(**server);
        Reply pods = http_exchange((*server)->port(), get("/pods"));
        CHECK(pods.status == 200);
        CHECK(pods.header("content-type") == "application/json");
        CHECK(pods.body == "{\"config\":{\"generation\":1,\"sha256\":\"ab\"},\"pods\":[]}\n");
        // `pod=` keys reach the provider decoded; a bad one is refused before it is asked.
        CHECK(http_exchange((*server)->port(), get("/pods?pod=c1%2F%2FPod%2Fns%2Fa&pod=b")).body ==
              "{\"config\":{\"generation\":1,\"sha256\":\"ab\"},\"pods\":[\"c1//Pod/ns/a\","
              "\"b\"]}\n");
        CHECK(http_exchange((*server)->port(), get("/pods?pod=")).status == 400);
        CHECK(http_exchange((*server)->port(), post("/pods")).status == 405);
        CHECK(http_exchange((*server)->port(), get("/")).body.find("/pods") != std::string::npos);
    }
    AdminHandler without({}, levels);
    auto bare = HttpServer::listen("127.0.0.1:0", {}, without);
    REQUIRE(bare.has_value());
    ServerThread thread(**bare);
    CHECK(http_exchange((*bare)->port(), get("/pods")).status == 503);
}

namespace {

// WakingServerThread is `ServerThread` that also calls `wake_held` when asked, from its own
// thread (the server is single-threaded, as on the control thread).
class WakingServerThread {
public:
    explicit WakingServerThread(HttpServer& server)
        : server_(server), thread_([this] {
            while (!stop_.load()) {
                (void)server_.poll_once(5);
                if (wake_.exchange(false)) {
                    server_.wake_held();
                }
                held_.store(server_.held_count());
            }
        }) {}

    ~WakingServerThread() {
        stop_.store(true);
        thread_.join();
    }

    void wake() { wake_.store(true); }

    // wait_held waits (bounded) until `count` requests are held.
    bool wait_held(size_t count) {
        for (int i = 0; i < 1000; ++i) {
            if (held_.load() == count) {
                return true;
            }
            usleep(2000);
        }
        return false;
    }

private:
    HttpServer& server_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> wake_{false};
    std::atomic<size_t> held_{0};
    std::thread thread_;
};

// send_request opens a connection and sends `request` without reading the answer.
zt::UniqueFd send_request(uint16_t port, const std::string& request) {
    zt::UniqueFd fd = connect_to(port);
    REQUIRE(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
            ssize_t(request.size()));
    return fd;
}

// answered says whether the server has written anything on `fd` within `ms`.
bool answered(int fd, int ms) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, ms) == 1;
}

}  // namespace

TEST_CASE("admin: GET /pods?wait= is held until the workers answered for that content") {
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    const std::string sha_a(64, 'a');
    const std::string sha_b(64, 'b');
    const std::string sha_c(64, 'c');
    std::mutex mutex;  // `progress` is set here and read on the server's thread.
    PodsProgress progress;
    progress.generations = {{1, sha_a}};
    progress.published = 1;
    progress.reload_attempts = 1;
    AdminHooks hooks;
    hooks.pods = [&](const std::vector<std::string>&) {
        std::lock_guard lock(mutex);
        return "{\"generation\":" + std::to_string(progress.generations.back().first) + "}";
    };
    hooks.pods_progress = [&] {
        std::lock_guard lock(mutex);
        return progress;
    };
    AdminHandler handler(std::move(hooks), levels);
    HttpServerOptions options;
    options.max_held = 2;
    auto server = HttpServer::listen("127.0.0.1:0", options, handler);
    REQUIRE(server.has_value());
    uint16_t port = (*server)->port();
    WakingServerThread thread(**server);

    // Content already answered for: at once.
    Reply now = http_exchange(port, get("/pods?wait=" + sha_a + "&timeout_ms=5000"));
    CHECK(now.status == 200);
    CHECK(now.body == "{\"generation\":1}");
    // A bad query is refused.
    CHECK(http_exchange(port, get("/pods?wait=nothex")).status == 400);
    CHECK(http_exchange(port, get("/pods?wait=" + sha_a + "&timeout_ms=99999")).status == 400);

    // Content not applied yet: held, while other requests are answered.
    zt::UniqueFd waiting = send_request(port, get("/pods?wait=" + sha_b + "&timeout_ms=20000"));
    REQUIRE(thread.wait_held(1));
    CHECK(http_exchange(port, get("/pods")).status == 200);
    CHECK(http_exchange(port, get("/")).status == 200);
    CHECK_FALSE(answered(waiting.get(), 50));
    // Applied, but a worker has not published for it: still held.
    {
        std::lock_guard lock(mutex);
        progress.generations.emplace_back(2, sha_b);
        progress.reload_attempts = 2;
    }
    thread.wake();
    CHECK_FALSE(answered(waiting.get(), 50));
    CHECK(thread.wait_held(1));
    // Every worker published: answered with the state of that moment.
    {
        std::lock_guard lock(mutex);
        progress.published = 2;
    }
    thread.wake();
    Reply woken = parse_reply(read_to_eof(waiting.get()));
    CHECK(woken.status == 200);
    CHECK(woken.body == "{\"generation\":2}");
    CHECK(thread.wait_held(0));

    // A content that never comes (replaced before it was read): the next reload settles it.
    zt::UniqueFd skipped = send_request(port, get("/pods?wait=" + sha_c));
    REQUIRE(thread.wait_held(1));
    {
        std::lock_guard lock(mutex);
        progress.generations.emplace_back(3, sha_a);
        progress.reload_attempts = 3;
        progress.published = 3;
    }
    thread.wake();
    Reply settled = parse_reply(read_to_eof(skipped.get()));
    CHECK(settled.status == 200);
    CHECK(settled.body == "{\"generation\":3}");

    // The hold time ends with the state of that moment.
    Reply late = http_exchange(port, get("/pods?wait=" + sha_c + "&timeout_ms=30"));
    CHECK(late.status == 200);
    CHECK(late.body == "{\"generation\":3}");
    CHECK((*server)->stats().timeouts == 0);  // An answer, not a timeout.

    // At most `max_held`: past it a wait is answered at once and counted; a client that gives
    // up frees its slot.
    zt::UniqueFd first = send_request(port, get("/pods?wait=" + sha_c));
    zt::UniqueFd second = send_request(port, get("/pods?wait=" + sha_c));
    REQUIRE(thread.wait_held(2));
    Reply over = http_exchange(port, get("/pods?wait=" + sha_c));
    CHECK(over.status == 200);
    CHECK(over.body == "{\"generation\":3}");
    CHECK((*server)->stats().held_over_limit == 1);
    CHECK_FALSE(answered(first.get(), 20));
    first.reset();
    CHECK(thread.wait_held(1));
    second.reset();
    CHECK(thread.wait_held(0));
}
