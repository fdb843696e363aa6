// Unit tests for the metrics registry, the traffic counters and the exposition formats: exact
// output lines (names, label order, escaping), sums over shards counted from real threads,
// lifecycle rules of ConnectionMetrics, series limits, and gzip round trips through zlib.

#include "src/telemetry/metrics.h"

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "src/telemetry/exposition.h"
#include "src/telemetry/standard_metrics.h"
#include "src/telemetry/traffic_metrics.h"
#include "tests/support/gunzip.h"
#include "zt/unique_fd.h"

using namespace zt::telemetry;

namespace {

bool contains_line(const std::string& body, const std::string& line) {
    return body.find(line + "\n") != std::string::npos &&
           (body.rfind(line + "\n", 0) == 0 || body.find("\n" + line + "\n") != std::string::npos);
}

TrafficLabels outbound_labels() {
    TrafficLabels labels;
    labels.reporter = Reporter::source;
    labels.source_workload = "curl";
    labels.source_canonical_service = "curl";
    labels.source_canonical_revision = "v1";
    labels.source_workload_namespace = "default";
    labels.source_principal = "spiffe://cluster.local/ns/default/sa/curl";
    labels.source_app = "curl";
    labels.source_version = "v1";
    labels.source_cluster = "Kubernetes";
    labels.destination_service = "echo.default.svc.cluster.local";
    labels.destination_service_namespace = "default";
    labels.destination_service_name = "echo";
    labels.destination_workload = "echo";
    labels.destination_workload_namespace = "default";
    labels.destination_principal = "spiffe://cluster.local/ns/default/sa/echo";
    labels.connection_security_policy = SecurityPolicy::mutual_tls;
    return labels;
}

}  // namespace

TEST_CASE("metrics: classic text puts _total on HELP and TYPE, OpenMetrics on samples only") {
    Registry registry(1);
    auto& counter =
            registry.counter({"demo_events_total", "Demo events", {"kind"}, Stability::unstable});
    counter.cell(0, {"a"})->add(3);
    std::string text = registry.render(Format::prometheus_text);
    CHECK(contains_line(text, "# HELP demo_events_total Demo events (unstable)."));
    CHECK(contains_line(text, "# TYPE demo_events_total counter"));
    CHECK(contains_line(text, "demo_events_total{kind=\"a\"} 3"));
    CHECK(text.find("# EOF") == std::string::npos);

    std::string om = registry.render(Format::openmetrics);
    CHECK(contains_line(om, "# HELP demo_events Demo events (unstable)."));
    CHECK(contains_line(om, "# TYPE demo_events counter"));
    CHECK(contains_line(om, "demo_events_total{kind=\"a\"} 3"));
    CHECK(om.size() >= 6);
    CHECK(om.substr(om.size() - 6) == "# EOF\n");
}

TEST_CASE("metrics: label values and HELP are escaped") {
    Registry registry(1);
    auto& counter = registry.counter({"esc", "Back\\slash\nnewline", {"v"}, Stability::stable});
    counter.cell(0, {"a\"b\\c\nd"})->increment();
    std::string text = registry.render(Format::prometheus_text);
    CHECK(contains_line(text, "# HELP esc_total Back\\\\slash\\nnewline."));
    CHECK(contains_line(text, "esc_total{v=\"a\\\"b\\\\c\\nd\"} 1"));
}

TEST_CASE("metrics: per-worker shards sum exactly at scrape time") {
    constexpr size_t kWorkers = 4;
    constexpr uint64_t kPerWorker = 200000;
    Registry registry(kWorkers);
    auto& counter = registry.counter({"work", "Work done", {"kind"}, Stability::unstable});
    std::vector<std::thread> threads;
    for (size_t w = 0; w < kWorkers; ++w) {
        threads.emplace_back([&counter, w] {
            Cell* cell = counter.cell(w, {"x"});
            for (uint64_t i = 0; i < kPerWorker; ++i) {
                cell->increment();
            }
            counter.cell(w, {w % 2 == 0 ? "even" : "odd"})->add(w + 1);
        });
    }
    // Scrape while counting: must neither crash nor block the workers for long.
    for (int i = 0; i < 20; ++i) {
        (void)registry.render(Format::prometheus_text);
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(counter.value({"x"}) == kWorkers * kPerWorker);
    CHECK(counter.value({"even"}) == 1 + 3);
    CHECK(counter.value({"odd"}) == 2 + 4);
    std::string text = registry.render(Format::prometheus_text);
    CHECK(contains_line(text, "work_total{kind=\"x\"} 800000"));
    // Sorted by label values.
    CHECK(text.find("kind=\"even\"") < text.find("kind=\"odd\""));
    CHECK(text.find("kind=\"odd\"") < text.find("kind=\"x\""));
}

TEST_CASE("metrics: a family's series limit discards and counts instead of growing") {
    Registry registry(1, RegistryLimits{2});
    auto& counter = registry.counter({"bounded", "Bounded", {"id"}, Stability::unstable});
    counter.cell(0, {"1"})->increment();
    counter.cell(0, {"2"})->increment();
    counter.cell(0, {"3"})->increment();
    counter.cell(0, {"4"})->increment();
    counter.cell(0, {"1"})->increment();
    CHECK(counter.overflow_count() == 2);
    CHECK(counter.value({"1"}) == 2);
    CHECK(counter.value({"3"}) == 0);
    std::string text = registry.render(Format::prometheus_text);
    CHECK(text.find("id=\"3\"") == std::string::npos);
    CHECK(contains_line(text, "ztunnel_metric_series_overflow_total{metric=\"bounded\"} 2"));
}

TEST_CASE("metrics: up-down gauges sum signed deltas across shards") {
    Registry registry(2);
    auto& gauge = registry.up_down_gauge({"open_things", "Open things", {}, Stability::unstable});
    gauge.cell(0, {})->add(5);
    gauge.cell(1, {})->add(uint64_t(-2));
    std::string text = registry.render(Format::prometheus_text);
    CHECK(contains_line(text, "# TYPE open_things gauge"));
    CHECK(contains_line(text, "open_things 3"));
}

TEST_CASE("metrics: traffic labels come out in ztunnel's order with unknown for missing") {
    TrafficMetrics traffic(1, 100);
    TrafficLabels labels = outbound_labels();
    {
        ConnectionMetrics conn(traffic, 0, labels);
        conn.add_request_bytes(100);
        conn.add_response_bytes(7);
        conn.close();
    }
    std::string out;
    traffic.render(out, Format::prometheus_text);
    const std::string expected_labels =
            "{reporter=\"source\",source_workload=\"curl\",source_canonical_service=\"curl\","
            "source_canonical_revision=\"v1\",source_workload_namespace=\"default\","
            "source_principal=\"spiffe://cluster.local/ns/default/sa/curl\",source_app=\"curl\","
            "source_version=\"v1\",source_cluster=\"Kubernetes\","
            "destination_service=\"echo.default.svc.cluster.local\","
            "destination_service_namespace=\"default\",destination_service_name=\"echo\","
            "destination_workload=\"echo\",destination_canonical_service=\"unknown\","
            "destination_canonical_revision=\"unknown\",destination_workload_namespace=\"default\","
            "destination_principal=\"spiffe://cluster.local/ns/default/sa/echo\","
            "destination_app=\"unknown\",destination_version=\"unknown\","
            "destination_cluster=\"unknown\",request_protocol=\"tcp\",response_flags=\"-\","
            "connection_security_policy=\"mutual_tls\"}";
    CHECK(contains_line(out, "istio_tcp_connections_opened_total" + expected_labels + " 1"));
    CHECK(contains_line(out, "istio_tcp_connections_closed_total" + expected_labels + " 1"));
    CHECK(contains_line(out, "istio_tcp_received_bytes_total" + expected_labels + " 100"));
    CHECK(contains_line(out, "istio_tcp_sent_bytes_total" + expected_labels + " 7"));
    CHECK(out.find("istio_tcp_connections_failed_total{") == std::string::npos);
    CHECK(contains_line(out, "# TYPE istio_tcp_connections_failed_total counter"));
}

TEST_CASE("metrics: locality labels follow the common labels when a workload was found") {
    TrafficMetrics traffic(1, 100);
    TrafficLabels labels;
    labels.reporter = Reporter::destination;
    labels.with_locality = true;
    labels.source_region = "eu";
    ConnectionMetrics conn(traffic, 0, labels);
    std::string out;
    traffic.render(out, Format::prometheus_text);
    CHECK(out.find("connection_security_policy=\"unknown\",source_region=\"eu\","
                   "source_zone=\"unknown\",destination_region=\"unknown\","
                   "destination_zone=\"unknown\"} 1") != std::string::npos);
    CHECK(out.find("{reporter=\"destination\",") != std::string::npos);
}

TEST_CASE("metrics: a connection closes exactly once and failures carry their flag") {
    TrafficMetrics traffic(2, 100);
    TrafficLabels labels = outbound_labels();
    {
        ConnectionMetrics ok(traffic, 1, labels);
        ConnectionMetrics denied(traffic, 1, labels);
        denied.add_request_bytes(10);
        denied.close(ResponseFlag::deny);
        denied.close(ResponseFlag::deny);  // ignored: closed once
        ConnectionMetrics dropped(traffic, 0, labels);
        ConnectionMetrics moved = std::move(dropped);  // still one connection
        CHECK(!dropped.open());
        CHECK(moved.open());
        ok.close();
    }  // `moved` closes on destruction like ztunnel's ClosedFromDrain
    auto all = traffic.totals();
    CHECK(all.opened == 3);
    CHECK(all.closed == 3);
    CHECK(all.failed == 1);
    auto deny = traffic.totals("response_flags", "DENY");
    CHECK(deny.closed == 1);
    CHECK(deny.failed == 1);
    CHECK(deny.opened == 0);
    // Bytes stay on the series opened with "-".
    CHECK(traffic.totals("response_flags", "-").received_bytes == 10);
    std::string out;
    traffic.render(out, Format::prometheus_text);
    CHECK(out.find("istio_tcp_connections_failed_total{") != std::string::npos);
    CHECK(out.find("response_flags=\"DENY\",connection_security_policy=\"mutual_tls\"} 1") !=
          std::string::npos);
    // The DENY label set was never opened, so it has no opened or byte series, as in ztunnel.
    CHECK(out.find("response_flags=\"DENY\",connection_security_policy=\"mutual_tls\"} 0") ==
          std::string::npos);
}

TEST_CASE("metrics: an open connection has opened and byte series but no closed series yet") {
    TrafficMetrics traffic(1, 100);
    ConnectionMetrics conn(traffic, 0, outbound_labels());
    std::string out;
    traffic.render(out, Format::prometheus_text);
    CHECK(out.find("istio_tcp_connections_opened_total{") != std::string::npos);
    CHECK(out.find("istio_tcp_sent_bytes_total{") != std::string::npos);
    CHECK(out.find("istio_tcp_connections_closed_total{") == std::string::npos);
}

TEST_CASE("metrics: the traffic series limit discards new label sets and counts them") {
    TrafficMetrics traffic(1, 1);
    TrafficLabels a = outbound_labels();
    TrafficLabels b = outbound_labels();
    b.destination_workload = "other";
    ConnectionMetrics first(traffic, 0, a);
    ConnectionMetrics second(traffic, 0, b);
    second.close(ResponseFlag::connect);
    CHECK(traffic.totals().opened == 1);
    CHECK(traffic.overflow_count() == 1);
    std::string out;
    traffic.render(out, Format::prometheus_text);
    CHECK(contains_line(out, "ztunnel_traffic_series_overflow_total 1"));
}

TEST_CASE("metrics: Accept and Accept-Encoding negotiation") {
    CHECK(negotiate_format("") == Format::prometheus_text);
    CHECK(negotiate_format("text/plain") == Format::prometheus_text);
    CHECK(negotiate_format("application/openmetrics-text;version=1.0.0,"
                           "application/openmetrics-text;version=0.0.1;q=0.75,"
                           "text/plain;version=0.0.4;q=0.5,*/*;q=0.1") == Format::openmetrics);
    CHECK(negotiate_format("application/openmetrics-text; q=0") == Format::prometheus_text);
    CHECK(content_type(Format::openmetrics).substr(0, 28) == "application/openmetrics-text");
    CHECK(accepts_gzip("gzip"));
    CHECK(accepts_gzip("br, GZIP;q=0.5"));
    CHECK(accepts_gzip("*"));
    CHECK_FALSE(accepts_gzip("gzip;q=0"));
    CHECK_FALSE(accepts_gzip("deflate, br"));
    CHECK_FALSE(accepts_gzip(""));
}

TEST_CASE("metrics: gzip output inflates back to the scrape") {
    Registry registry(1);
    auto& counter = registry.counter({"zipped", "Zipped", {"n"}, Stability::unstable});
    for (int i = 0; i < 200; ++i) {
        counter.cell(0, {std::to_string(i)})->add(uint64_t(i));
    }
    std::string body = registry.render(Format::prometheus_text);
    auto zipped = gzip_compress(body);
    REQUIRE(zipped.has_value());
    CHECK(zipped->size() < body.size() / 2);
    CHECK(uint8_t((*zipped)[0]) == 0x1f);
    CHECK(uint8_t((*zipped)[1]) == 0x8b);
    CHECK(zt::test::gunzip(*zipped) == body);
    CHECK_FALSE(zt::test::gunzip(zipped->substr(0, zipped->size() / 2)).has_value());
}

TEST_CASE("metrics: standard families carry build, process and config values") {
    StandardMetrics metrics({2, "1.24.0", {}});
    CHECK(metrics.control_shard() == 2);
    metrics.record_config_reload(true, 1700000000);
    metrics.record_config_reload(false, 0);
    metrics.record_config_reload(true, 1700000005);
    metrics.set_pods(1, 3);
    metrics.tls_handshake_failures.cell(0, {"timeout"})->increment();
    std::string text = metrics.render(Format::prometheus_text);
    CHECK(contains_line(text, "istio_build{component=\"ztunnel\",tag=\"1.24.0\"} 1"));
    CHECK(contains_line(text, "ztunnel_config_reloads_total{result=\"success\"} 2"));
    CHECK(contains_line(text, "ztunnel_config_reloads_total{result=\"failure\"} 1"));
    CHECK(contains_line(text, "ztunnel_config_last_success_timestamp_seconds 1700000005"));
    CHECK(contains_line(text, "ztunnel_pods{state=\"pending\"} 1"));
    CHECK(contains_line(text, "ztunnel_pods{state=\"up\"} 3"));
    CHECK(contains_line(text, "ztunnel_tls_handshake_failures_total{reason=\"timeout\"} 1"));
    CHECK(contains_line(text, "# HELP ztunnel_pods Local pods by state (unstable)."));
    CHECK(contains_line(text, "# HELP istio_build Istio component build info."));
    // process_open_fds moves with the descriptors we hold.
    int64_t before = count_open_fds();
    zt::UniqueFd a(dup(0)), b(dup(0));
    CHECK(count_open_fds() == before + 2);
    CHECK(max_fds() > 0);
    CHECK(text.find("\nprocess_open_fds ") != std::string::npos);
    CHECK(text.find("\nprocess_max_fds ") != std::string::npos);
}
