// Tests for the DNS proxy's metrics and log, read back the way operators see them: the exact
// exposition lines through a registry (ztunnel's names, label order, `unknown` for a missing
// client, lower-case query types, cumulative histogram buckets with ztunnel's bounds), sums
// over shards, on-demand DNS labels, refusals, and the `dns` log record's fields.

#include "src/dns/telemetry.h"

#include <mutex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/telemetry/metrics.h"
#include "zt/log.h"

namespace {

bool has_line(const std::string& body, const std::string& line) {
    return body.find("\n" + line + "\n") != std::string::npos || body.rfind(line + "\n", 0) == 0;
}

zt::state::Workload client() {
    zt::state::Workload workload;
    workload.uid = "c//Pod/ns1/client-7f9";
    workload.name = "client-7f9";
    workload.namespace_ = "ns1";
    workload.workload_name = "client";
    workload.canonical_name = "client";
    workload.canonical_revision = "v1";
    workload.service_account = "client-sa";
    return workload;
}

std::mutex captured_mutex;
std::vector<std::string> captured;

void capture_sink(const zt::log::Record& record) {
    std::lock_guard lock(captured_mutex);
    captured.push_back(zt::log::format_plain(record));
}

}  // namespace

TEST_CASE("dns telemetry: counters render with ztunnel's names and labels") {
    zt::telemetry::Registry registry(2);
    auto& dns = registry.add(std::make_unique<zt::dns::DnsMetrics>(2, 64));
    auto workload = client();

    // Shard 0 and shard 1 count the same label set: the scrape sums them.
    auto* a = dns.series(0, zt::dns::kTypeA, zt::dns::Transport::udp, &workload);
    a->requests.add(2);
    dns.series(1, zt::dns::kTypeA, zt::dns::Transport::udp, &workload)->requests.increment();
    auto* aaaa = dns.series(1, zt::dns::kTypeAaaa, zt::dns::Transport::tcp, nullptr);
    aaaa->requests.increment();
    aaaa->upstream_requests.increment();
    aaaa->upstream_failures.increment();
    aaaa->observe_upstream(700'000);  // 0.7 ms

    std::string text = registry.render(zt::telemetry::Format::prometheus_text);
    CHECK(has_line(text,
                   "# HELP istio_dns_requests_total Total number of DNS requests "
                   "(unstable)."));
    CHECK(has_line(text, "# TYPE istio_dns_requests_total counter"));
    CHECK(has_line(text,
                   "istio_dns_requests_total{request_query_type=\"a\","
                   "request_protocol=\"udp\",source_canonical_service=\"client\","
                   "source_canonical_revision=\"v1\"} 3"));
    CHECK(has_line(text,
                   "istio_dns_requests_total{request_query_type=\"aaaa\","
                   "request_protocol=\"tcp\",source_canonical_service=\"unknown\","
                   "source_canonical_revision=\"unknown\"} 1"));
    CHECK(has_line(text,
                   "istio_dns_upstream_requests_total{request_query_type=\"aaaa\","
                   "request_protocol=\"tcp\",source_canonical_service=\"unknown\","
                   "source_canonical_revision=\"unknown\"} 1"));
    CHECK(has_line(text,
                   "istio_dns_upstream_failures_total{request_query_type=\"aaaa\","
                   "request_protocol=\"tcp\",source_canonical_service=\"unknown\","
                   "source_canonical_revision=\"unknown\"} 1"));
    // A series appears in a family only once something was counted into it.
    CHECK(text.find("istio_dns_upstream_requests_total{request_query_type=\"a\"") ==
          std::string::npos);

    const std::string labels =
            "request_query_type=\"aaaa\",request_protocol=\"tcp\","
            "source_canonical_service=\"unknown\",source_canonical_revision=\"unknown\"";
    CHECK(has_line(text, "# TYPE istio_dns_upstream_request_duration_seconds histogram"));
    CHECK(has_line(text, "istio_dns_upstream_request_duration_seconds_count{" + labels + "} 1"));
    CHECK(has_line(text, "istio_dns_upstream_request_duration_seconds_sum{" + labels + "} 0.0007"));
    const char* const expected[][2] = {{"0.0005", "0"}, {"0.001", "1"}, {"0.01", "1"}, {"0.1", "1"},
                                       {"1.0", "1"},    {"5.0", "1"},   {"+Inf", "1"}};
    for (const auto& [bound, count] : expected) {
        CAPTURE(bound);
        CHECK(has_line(text, "istio_dns_upstream_request_duration_seconds_bucket{" + labels +
                                     ",le=\"" + bound + "\"} " + count));
    }

    auto totals = dns.totals();
    CHECK(totals.requests == 4);
    CHECK(totals.upstream_requests == 1);
    CHECK(totals.upstream_failures == 1);
    CHECK(totals.duration_count == 1);

    std::string om = registry.render(zt::telemetry::Format::openmetrics);
    CHECK(has_line(om, "# TYPE istio_dns_requests counter"));
    CHECK(has_line(om, "# UNIT istio_dns_upstream_request_duration_seconds seconds"));
}

TEST_CASE("dns telemetry: durations fall in ztunnel's buckets; longer ones only in +Inf") {
    zt::dns::DnsSeries series;
    series.observe_upstream(400'000);        // 0.4 ms
    series.observe_upstream(5'000'000'000);  // exactly 5 s: the last bucket
    series.observe_upstream(6'000'000'000);  // past every bound
    CHECK(series.duration_buckets[0].load() == 1);
    CHECK(series.duration_buckets[5].load() == 1);
    CHECK(series.duration_count.load() == 3);
    CHECK(series.duration_sum_ns.load() == 11'000'400'000);
}

TEST_CASE("dns telemetry: on-demand DNS and refusals") {
    zt::telemetry::Registry registry(1);
    auto& dns = registry.add(std::make_unique<zt::dns::DnsMetrics>(1, 64));
    auto workload = client();
    dns.count_on_demand(0, workload, "spiffe://cluster.local/ns/ns1/sa/client-sa", "db.example");
    dns.count_on_demand(0, workload, "spiffe://cluster.local/ns/ns1/sa/client-sa", "db.example");
    dns.count_refusal(0, zt::dns::Refusal::in_flight_limit);
    std::string text = registry.render(zt::telemetry::Format::prometheus_text);
    CHECK(has_line(text,
                   "istio_on_demand_dns_total{source_workload=\"client\","
                   "source_canonical_service=\"client\",source_canonical_revision=\"v1\","
                   "source_workload_namespace=\"ns1\","
                   "source_principal=\"spiffe://cluster.local/ns/ns1/sa/client-sa\","
                   "source_app=\"client\",source_version=\"v1\","
                   "source_cluster=\"Kubernetes\",hostname=\"db.example\"} 2"));
    CHECK(has_line(text,
                   "# HELP istio_on_demand_dns_total The total number of requests that "
                   "used on-demand DNS (unstable)."));
    CHECK(has_line(text, "ztunnel_dns_requests_refused_total{reason=\"in_flight_limit\"} 1"));
    CHECK(text.find("reason=\"malformed\"") == std::string::npos);
    CHECK(dns.on_demand_total() == 2);
    CHECK(dns.refusals(zt::dns::Refusal::in_flight_limit) == 1);
}

TEST_CASE("dns telemetry: the series bound discards and counts what does not fit") {
    zt::telemetry::Registry registry(1);
    auto& dns = registry.add(std::make_unique<zt::dns::DnsMetrics>(1, 2));
    for (uint16_t type = 1; type <= 5; ++type) {
        dns.series(0, type, zt::dns::Transport::udp, nullptr)->requests.increment();
    }
    std::string text = registry.render(zt::telemetry::Format::prometheus_text);
    CHECK(has_line(text, "ztunnel_dns_series_overflow_total 3"));
    CHECK(dns.totals().requests == 2);
}

TEST_CASE("dns telemetry: the dns log record carries ztunnel's fields at debug") {
    auto parsed = zt::log::Filter::parse("info,dns=debug");
    REQUIRE(parsed);
    zt::log::set_filter(*parsed);
    zt::log::set_sink(&capture_sink);
    {
        std::lock_guard lock(captured_mutex);
        captured.clear();
    }
    auto workload = client();
    zt::dns::Query query;
    query.name = *zt::dns::Name::parse("productpage.ns1");
    query.type = zt::dns::kTypeAaaa;
    zt::dns::log_query(&workload, query, "success", 2);
    zt::dns::log_query(nullptr, query, "forwarding failed (request timed out)", 0);
    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
    zt::dns::log_query(&workload, query, "not logged at info", 0);
    zt::log::set_sink(&zt::log::detail::stderr_sink);

    std::lock_guard lock(captured_mutex);
    REQUIRE(captured.size() == 2);
    auto after_time = [](const std::string& line) {
        return line.substr(line.find('\t') + 1);
    };
    CHECK(after_time(captured[0]) ==
          "debug\tdns\t\tsrc.workload=\"client-7f9\" src.namespace=\"ns1\" query=\"AAAA\" "
          "domain=\"productpage.ns1.\" result=\"success\" endpoints=2");
    CHECK(after_time(captured[1]) ==
          "debug\tdns\t\tsrc.workload=\"unknown\" src.namespace=\"unknown\" query=\"AAAA\" "
          "domain=\"productpage.ns1.\" result=\"forwarding failed (request timed out)\" "
          "endpoints=0");
}
