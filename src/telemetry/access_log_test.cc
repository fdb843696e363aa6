// Unit tests for the access-log records and the log queue: exact ztunnel tokens and order in the
// plain and JSON formats, written through a real LogQueue into a real file; drops counted when
// full; whole lines and per-producer order under concurrent producers.

#include "src/telemetry/access_log.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "src/telemetry/connection_result.h"
#include "src/telemetry/log_queue.h"
#include "zt/log.h"
#include "zt/unique_fd.h"

using namespace zt::telemetry;

namespace {

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        REQUIRE(n >= 0);
        if (n == 0) {
            break;
        }
        out.append(buf, size_t(n));
    }
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        REQUIRE(nl != std::string::npos);  // every line ends with a newline
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

// After the RFC 3339 timestamp and the tab that follows it.
std::string after_time(const std::string& line) {
    size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    CHECK(line.size() > 27);
    CHECK(line[tab - 1] == 'Z');
    return line.substr(tab + 1);
}

// CaptureLogs routes zt::log into a LogQueue over a memfd at `filter` for one test.
struct CaptureLogs {
    zt::UniqueFd fd{memfd_create("zt-log-test", 0)};
    LogQueue queue;

    CaptureLogs(LogFormat format, const char* filter)
        : queue(LogQueueOptions{64, 16384, 64, format, fd.get()}) {
        REQUIRE(fd.valid());
        auto parsed = zt::log::Filter::parse(filter);
        REQUIRE(parsed.has_value());
        zt::log::set_filter(*parsed);
        LogQueue::install(&queue);
    }

    ~CaptureLogs() {
        LogQueue::uninstall();
        zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
    }

    std::vector<std::string> lines() {
        queue.flush();
        return split_lines(read_all(fd.get()));
    }
};

ConnectionLog outbound_log() {
    ConnectionLog log;
    log.direction = Direction::outbound;
    log.src_addr = "198.18.1.2:35520";
    log.src_workload = "curl-1";
    log.src_namespace = "default";
    log.src_identity = "spiffe://cluster.local/ns/default/sa/curl";
    log.src_cluster = "Kubernetes";
    log.dst_addr = "198.18.2.9:15008";
    log.dst_hbone_addr = "198.18.2.9:9080";
    log.dst_service = "reviews.default.svc.cluster.local";
    log.dst_workload = "reviews-1";
    log.dst_namespace = "default";
    log.dst_identity = "spiffe://cluster.local/ns/default/sa/reviews";
    log.dst_cluster = "Kubernetes";
    log.mutual_tls = true;
    log.request_bytes = 84;
    log.response_bytes = 169;
    return log;
}

const char* const kOutboundFields =
        "src.addr=198.18.1.2:35520 src.workload=\"curl-1\" src.namespace=\"default\" "
        "src.identity=\"spiffe://cluster.local/ns/default/sa/curl\" src.cluster=\"Kubernetes\" "
        "dst.addr=198.18.2.9:15008 dst.hbone_addr=198.18.2.9:9080 "
        "dst.service=\"reviews.default.svc.cluster.local\" dst.workload=\"reviews-1\" "
        "dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/reviews\" "
        "dst.cluster=\"Kubernetes\" direction=\"outbound\"";

}  // namespace

TEST_CASE("access: connection complete has ztunnel's tokens in ztunnel's order") {
    CaptureLogs capture(LogFormat::plain, "info");
    log_connection_complete(outbound_log(), 2'600'000);
    auto lines = capture.lines();
    REQUIRE(lines.size() == 1);
    CHECK(after_time(lines[0]) == std::string("info\taccess\tconnection complete\t") +
                                          kOutboundFields +
                                          " bytes_sent=84 bytes_recv=169 duration=\"2ms\"");
}

TEST_CASE("access: a failed connection logs at error with error last") {
    CaptureLogs capture(LogFormat::plain, "info");
    ConnectionLog log = outbound_log();
    log.direction = Direction::inbound;
    log.mutual_tls = false;  // identities only on mTLS
    log_connection_complete(log, 13'000'000,
                            "connection closed due to policy rejection: allow policies exist, "
                            "but none allowed");
    auto lines = capture.lines();
    REQUIRE(lines.size() == 1);
    std::string rest = after_time(lines[0]);
    CHECK(rest.rfind("error\taccess\tconnection complete\tsrc.addr=198.18.1.2:35520 ", 0) == 0);
    CHECK(rest.find("src.identity") == std::string::npos);
    CHECK(rest.find("dst.identity") == std::string::npos);
    // Inbound: bytes_sent is what the local server returned, un-flipped.
    CHECK(rest.find("direction=\"inbound\" bytes_sent=169 bytes_recv=84 duration=\"13ms\" "
                    "error=\"connection closed due to policy rejection: allow policies exist, "
                    "but none allowed\"") != std::string::npos);
}

TEST_CASE("access: opened is debug only and failed is warn with four fields") {
    {
        CaptureLogs capture(LogFormat::plain, "info");
        log_connection_opened(outbound_log());
        CHECK(capture.lines().empty());
    }
    CaptureLogs capture(LogFormat::plain, "warn,access=debug");
    ConnectionLog log = outbound_log();
    log.dst_service.clear();  // absent values are omitted, not empty
    log_connection_opened(log);
    log_connection_failed("198.18.1.2:1000", "198.18.2.9:15008", Direction::inbound,
                          "ip mismatch: 198.18.2.9 != 198.18.2.10");
    auto lines = capture.lines();
    REQUIRE(lines.size() == 2);
    std::string opened = after_time(lines[0]);
    CHECK(opened.rfind("debug\taccess\tconnection opened\tsrc.addr=", 0) == 0);
    CHECK(opened.find("dst.service") == std::string::npos);
    CHECK(opened.find("bytes_sent") == std::string::npos);
    CHECK(opened.size() > 20);
    CHECK(opened.substr(opened.size() - 20) == "direction=\"outbound\"");
    CHECK(after_time(lines[1]) ==
          "warn\taccess\tconnection failed\tsrc.addr=198.18.1.2:1000 dst.addr=198.18.2.9:15008 "
          "direction=\"inbound\" error=\"ip mismatch: 198.18.2.9 != 198.18.2.10\"");
}

TEST_CASE("access: JSON format has level, time, scope, message, then the fields") {
    CaptureLogs capture(LogFormat::json, "info");
    log_connection_complete(outbound_log(), 1'000'000);
    auto lines = capture.lines();
    REQUIRE(lines.size() == 1);
    const std::string& line = lines[0];
    CHECK(line.rfind("{\"level\":\"info\",\"time\":\"", 0) == 0);
    CHECK(line.find("\",\"scope\":\"access\",\"message\":\"connection complete\","
                    "\"src.addr\":\"198.18.1.2:35520\",\"src.workload\":\"curl-1\"") !=
          std::string::npos);
    CHECK(line.find("\"bytes_sent\":84,\"bytes_recv\":169,\"duration\":\"1ms\"}") !=
          std::string::npos);
}

TEST_CASE("logqueue: a full queue drops and counts instead of blocking") {
    zt::UniqueFd fd(memfd_create("zt-log-test", 0));
    REQUIRE(fd.valid());
    LogQueue queue(LogQueueOptions{4, 16, 64, LogFormat::plain, fd.get()});
    int accepted = 0;
    for (int i = 0; i < 6; ++i) {
        accepted += queue.push("line " + std::to_string(i)) ? 1 : 0;
    }
    CHECK(accepted == 4);
    CHECK(queue.dropped() == 2);
    CHECK(queue.queued() == 4);
    CHECK(queue.flush() == 4);
    CHECK(queue.push(std::string(40, 'x')));  // room again; long lines are cut
    CHECK(queue.flush() == 1);
    auto lines = split_lines(read_all(fd.get()));
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "line 0");
    CHECK(lines[3] == "line 3");
    CHECK(lines[4] == std::string(16, 'x') + "...");
    CHECK(LogQueue::read_dropped(&queue) == 2);
}

TEST_CASE("logqueue: concurrent producers keep lines whole and in per-thread order") {
    constexpr int kThreads = 4;
    constexpr int kLines = 20000;
    zt::UniqueFd fd(memfd_create("zt-log-test", 0));
    REQUIRE(fd.valid());
    LogQueue queue(LogQueueOptions{1024, 16384, 64, LogFormat::plain, fd.get()});
    std::atomic<int> done{0};
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; ++t) {
        producers.emplace_back([&queue, &done, t] {
            for (int i = 0; i < kLines; ++i) {
                (void)queue.push("t" + std::to_string(t) + " " + std::to_string(i) +
                                 " padding-padding-padding");
            }
            done.fetch_add(1);
        });
    }
    size_t written = 0;
    while (done.load() < kThreads) {
        written += queue.flush();
    }
    for (auto& p : producers) {
        p.join();
    }
    written += queue.flush();
    CHECK(written + queue.dropped() == size_t(kThreads) * kLines);
    auto lines = split_lines(read_all(fd.get()));
    CHECK(lines.size() == written);
    std::vector<int> last(kThreads, -1);
    for (const std::string& line : lines) {
        int t = -1, i = -1;
        char pad[64];
        REQUIRE(sscanf(line.c_str(), "t%d %d %63s", &t, &i, pad) == 3);
        REQUIRE(t >= 0);
        REQUIRE(t < kThreads);
        CHECK(std::string(pad) == "padding-padding-padding");
        CHECK(i > last[size_t(t)]);
        last[size_t(t)] = i;
    }
}

TEST_CASE("logqueue: LOG_FORMAT selects json only for json") {
    CHECK(log_format_from_env("json") == LogFormat::json);
    CHECK(log_format_from_env("JSON") == LogFormat::json);
    CHECK(log_format_from_env("plain") == LogFormat::plain);
    CHECK(log_format_from_env("") == LogFormat::plain);
    CHECK(log_format_from_env("jsonx") == LogFormat::plain);
}

TEST_CASE("access: ConnectionResult logs and counts one connection like ztunnel") {
    CaptureLogs capture(LogFormat::plain, "info,access=debug");
    zt::FakeClock clock;
    TrafficMetrics traffic(1, 100);
    TrafficLabels labels;
    labels.reporter = Reporter::source;
    labels.source_workload = "curl";
    labels.source_workload_namespace = "default";
    labels.source_principal = "spiffe://cluster.local/ns/default/sa/curl";
    labels.destination_service = "echo.default.svc.cluster.local";
    labels.destination_canonical_service = "echo";
    labels.destination_workload_namespace = "default";
    labels.destination_principal = "spiffe://cluster.local/ns/default/sa/echo";
    labels.connection_security_policy = SecurityPolicy::mutual_tls;
    ConnectionLog log;
    log.src_addr = "198.18.1.2:5000";
    log.src_workload = "curl-7d9";  // the pod name wins over the canonical service
    log.dst_addr = "198.18.2.3:15008";
    log.dst_hbone_addr = "198.18.2.3:8080";
    {
        ConnectionResult result(traffic, 0, labels, log, clock);
        result.add_request_bytes(10);
        result.add_response_bytes(25);
        result.add_request_bytes(5);
        clock.advance_ns(7 * zt::kNanosPerMilli + 900'000);
        result.record();
        result.record();  // once only
        CHECK(result.recorded());
    }
    auto lines = capture.lines();
    REQUIRE(lines.size() == 2);
    const std::string fields =
            "src.addr=198.18.1.2:5000 src.workload=\"curl-7d9\" src.namespace=\"default\" "
            "src.identity=\"spiffe://cluster.local/ns/default/sa/curl\" "
            "dst.addr=198.18.2.3:15008 dst.hbone_addr=198.18.2.3:8080 "
            "dst.service=\"echo.default.svc.cluster.local\" dst.workload=\"echo\" "
            "dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/echo\" "
            "direction=\"outbound\"";
    CHECK(after_time(lines[0]) == "debug\taccess\tconnection opened\t" + fields);
    CHECK(after_time(lines[1]) == "info\taccess\tconnection complete\t" + fields +
                                          " bytes_sent=15 bytes_recv=25 duration=\"7ms\"");
    auto totals = traffic.totals();
    CHECK(totals.opened == 1);
    CHECK(totals.closed == 1);
    CHECK(totals.failed == 0);
    CHECK(totals.received_bytes == 15);
    CHECK(totals.sent_bytes == 25);
}

TEST_CASE("access: ConnectionResult failures and drops carry ztunnel's flag and text") {
    CaptureLogs capture(LogFormat::plain, "info");
    zt::FakeClock clock;
    TrafficMetrics traffic(1, 100);
    TrafficLabels labels;
    labels.reporter = Reporter::destination;
    ConnectionLog log;
    log.src_addr = "198.18.1.2:5000";
    log.dst_addr = "198.18.2.3:15008";
    {
        ConnectionResult denied(traffic, 0, labels, log, clock);
        denied.add_response_bytes(3);
        denied.record(ResponseFlag::deny, "connection closed due to policy rejection");
        ConnectionResult dropped(traffic, 0, labels, log, clock);
        ConnectionResult moved = std::move(dropped);  // still one connection, recorded once
    }
    auto lines = capture.lines();
    REQUIRE(lines.size() == 2);
    std::string denied = after_time(lines[0]);
    CHECK(denied.rfind("error\taccess\tconnection complete\t", 0) == 0);
    // Inbound: bytes_sent is what the local server sent.
    CHECK(denied.find("direction=\"inbound\" bytes_sent=3 bytes_recv=0 duration=\"0ms\" "
                      "error=\"connection closed due to policy rejection\"") != std::string::npos);
    CHECK(denied.find("identity") == std::string::npos);  // not mTLS
    CHECK(after_time(lines[1]).find("error=\"connection closed due to connection drain\"") !=
          std::string::npos);
    CHECK(traffic.totals().opened == 2);
    CHECK(traffic.totals().closed == 2);
    CHECK(traffic.totals("response_flags", "DENY").failed == 1);
    CHECK(traffic.totals("response_flags", "-").closed == 1);
}
