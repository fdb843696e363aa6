// telemetry.cc counts and renders the DNS proxy's metrics with ztunnel's names, labels, HELP
// texts and buckets, and writes its `dns` log records. It decides nothing about a query: the
// server says what happened and when.

#include "src/dns/telemetry.h"

#include <array>
#include <charconv>
#include <map>

#include "src/telemetry/exposition.h"
#include "zt/assert.h"
#include "zt/log.h"

namespace zt::dns {

namespace {

constexpr std::string_view kDnsLabelNames[] = {"request_query_type", "request_protocol",
                                               "source_canonical_service",
                                               "source_canonical_revision"};
constexpr std::string_view kOnDemandLabelNames[] = {"source_workload",
                                                    "source_canonical_service",
                                                    "source_canonical_revision",
                                                    "source_workload_namespace",
                                                    "source_principal",
                                                    "source_app",
                                                    "source_version",
                                                    "source_cluster",
                                                    "hostname"};

std::string_view or_unknown(std::string_view value) {
    return value.empty() ? std::string_view("unknown") : value;
}

std::string lower(std::string text) {
    for (char& c : text) {
        if (c >= 'A' && c <= 'Z') {
            c = char(c - 'A' + 'a');
        }
    }
    return text;
}

// kBucketLabels spell the bounds as ztunnel's prometheus-client does (`1.0`, not `1`).
constexpr std::string_view kBucketLabels[kDurationBucketCount] = {"0.0005", "0.001", "0.01",
                                                                  "0.1",    "1.0",   "5.0"};

// format_seconds renders a duration sum in plain decimal notation (`0.0007`, never `7e-04`).
std::string format_seconds(uint64_t nanos) {
    char buf[64];
    auto [end, ec] =
            std::to_chars(buf, buf + sizeof buf, double(nanos) / 1e9, std::chars_format::fixed);
    return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

}  // namespace

std::string_view to_string(Refusal refusal) {
    switch (refusal) {
        case Refusal::in_flight_limit:
            return "in_flight_limit";
        case Refusal::malformed:
            return "malformed";
        case Refusal::oversized:
            return "oversized";
        case Refusal::tcp_connections:
            return "tcp_connections";
        case Refusal::tcp_idle_timeout:
            return "tcp_idle_timeout";
        case Refusal::reply_queue_full:
            return "reply_queue_full";
    }
    return "malformed";
}

void DnsSeries::observe_upstream(int64_t duration_ns) {
    if (duration_ns < 0) {
        duration_ns = 0;
    }
    double seconds = double(duration_ns) / double(kNanosPerSecond);
    for (size_t i = 0; i < kDurationBucketCount; ++i) {
        if (seconds <= kDurationBucketsSeconds[i]) {
            duration_buckets[i].increment();
            break;
        }
    }
    duration_count.increment();
    duration_sum_ns.add(uint64_t(duration_ns));
}

DnsMetrics::DnsMetrics(size_t shard_count, size_t max_series)
    : series_(shard_count, max_series)
    , on_demand_(shard_count, max_series)
    , refusals_(shard_count) {
    ZT_CHECK(shard_count > 0);
}

DnsSeries* DnsMetrics::series(size_t shard, uint16_t type, Transport transport,
                              const state::Workload* client) {
    std::string query_type = lower(type_name(type));
    std::array<std::string_view, 4> values = {
            query_type, to_string(transport),
            or_unknown(client != nullptr ? std::string_view(client->canonical_name) : ""),
            or_unknown(client != nullptr ? std::string_view(client->canonical_revision) : "")};
    return series_.get(shard, values);
}

void DnsMetrics::count_on_demand(size_t shard, const state::Workload& source,
                                 std::string_view source_principal, std::string_view hostname) {
    std::array<std::string_view, 9> values = {or_unknown(source.workload_name),
                                              or_unknown(source.canonical_name),
                                              or_unknown(source.canonical_revision),
                                              or_unknown(source.namespace_),
                                              or_unknown(source_principal),
                                              or_unknown(source.canonical_name),
                                              or_unknown(source.canonical_revision),
                                              or_unknown(source.cluster_id),
                                              or_unknown(hostname)};
    on_demand_.get(shard, values)->count.increment();
}

void DnsMetrics::count_refusal(size_t shard, Refusal refusal) {
    ZT_ASSERT(shard < refusals_.size());
    refusals_[shard].counts[size_t(refusal)].increment();
}

DnsMetrics::Totals DnsMetrics::totals() const {
    Totals totals;
    series_.for_each([&](const DnsSeries& series) {
        totals.requests += series.requests.load();
        totals.upstream_requests += series.upstream_requests.load();
        totals.upstream_failures += series.upstream_failures.load();
        totals.duration_count += series.duration_count.load();
    });
    return totals;
}

uint64_t DnsMetrics::refusals(Refusal refusal) const {
    uint64_t total = 0;
    for (const RefusalShard& shard : refusals_) {
        total += shard.counts[size_t(refusal)].load();
    }
    return total;
}

uint64_t DnsMetrics::on_demand_total() const {
    uint64_t total = 0;
    on_demand_.for_each([&](const OnDemandSeries& series) { total += series.count.load(); });
    return total;
}

namespace {

// DnsSum is one label set's counts summed over shards.
struct DnsSum {
    uint64_t requests = 0, upstream_requests = 0, upstream_failures = 0;
    uint64_t buckets[kDurationBucketCount] = {};
    uint64_t count = 0, sum_ns = 0;
};

using DnsSums = std::map<std::vector<std::string>, DnsSum>;

void render_counters(std::string& out, telemetry::Format format, const DnsSums& merged) {
    struct Counter {
        std::string_view name;
        std::string_view help;
        uint64_t DnsSum::*value;
    };

    // HELP texts are ztunnel's; every DNS family is unstable there.
    constexpr Counter kCounters[] = {
            {"istio_dns_requests", "Total number of DNS requests (unstable)", &DnsSum::requests},
            {"istio_dns_upstream_requests",
             "Total number of DNS requests forwarded to upstream (unstable)",
             &DnsSum::upstream_requests},
            {"istio_dns_upstream_failures",
             "Total number of DNS requests that failed to forward upstream (unstable)",
             &DnsSum::upstream_failures},
    };
    for (const Counter& counter : kCounters) {
        telemetry::append_family_header(out, format, counter.name, counter.help,
                                        telemetry::MetricType::counter);
        std::string sample = std::string(counter.name) + "_total";
        for (const auto& [values, sum] : merged) {
            // Like ztunnel, a series exists in a family once something was counted into it.
            if (sum.*counter.value > 0) {
                telemetry::append_sample(out, sample, kDnsLabelNames, values,
                                         std::to_string(sum.*counter.value));
            }
        }
    }
}

void render_duration(std::string& out, telemetry::Format format, const DnsSums& merged) {
    constexpr std::string_view kDuration = "istio_dns_upstream_request_duration_seconds";
    telemetry::append_family_header(
            out, format, kDuration,
            "Total time in seconds Istio takes to get DNS response from upstream (unstable)",
            telemetry::MetricType::histogram);
    if (format == telemetry::Format::openmetrics) {
        out += "# UNIT ";
        out += kDuration;
        out += " seconds\n";
    }
    std::vector<std::string_view> bucket_names(std::begin(kDnsLabelNames),
                                               std::end(kDnsLabelNames));
    bucket_names.push_back("le");
    for (const auto& [values, sum] : merged) {
        if (sum.count == 0) {
            continue;
        }
        telemetry::append_sample(out, std::string(kDuration) + "_sum", kDnsLabelNames, values,
                                 format_seconds(sum.sum_ns));
        telemetry::append_sample(out, std::string(kDuration) + "_count", kDnsLabelNames, values,
                                 std::to_string(sum.count));
        std::vector<std::string> bucket_values = values;
        bucket_values.emplace_back();
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= kDurationBucketCount; ++i) {
            if (i < kDurationBucketCount) {
                cumulative += sum.buckets[i];
                bucket_values.back() = kBucketLabels[i];
            } else {
                cumulative = sum.count;
                bucket_values.back() = "+Inf";
            }
            telemetry::append_sample(out, std::string(kDuration) + "_bucket", bucket_names,
                                     bucket_values, std::to_string(cumulative));
        }
    }
}

}  // namespace

void DnsMetrics::render(std::string& out, telemetry::Format format) const {
    DnsSums merged;
    series_.for_each([&](const DnsSeries& series) {
        DnsSum& sum = merged[series.label_values];
        sum.requests += series.requests.load();
        sum.upstream_requests += series.upstream_requests.load();
        sum.upstream_failures += series.upstream_failures.load();
        for (size_t i = 0; i < kDurationBucketCount; ++i) {
            sum.buckets[i] += series.duration_buckets[i].load();
        }
        sum.count += series.duration_count.load();
        sum.sum_ns += series.duration_sum_ns.load();
    });
    render_counters(out, format, merged);
    render_duration(out, format, merged);
    render_on_demand(out, format);
    render_refusals(out, format);
}

void DnsMetrics::render_on_demand(std::string& out, telemetry::Format format) const {
    std::map<std::vector<std::string>, uint64_t> on_demand;
    on_demand_.for_each([&](const OnDemandSeries& series) {
        on_demand[series.label_values] += series.count.load();
    });
    telemetry::append_family_header(
            out, format, "istio_on_demand_dns",
            "The total number of requests that used on-demand DNS (unstable)",
            telemetry::MetricType::counter);
    for (const auto& [values, count] : on_demand) {
        if (count > 0) {
            telemetry::append_sample(out, "istio_on_demand_dns_total", kOnDemandLabelNames, values,
                                     std::to_string(count));
        }
    }
}

void DnsMetrics::render_refusals(std::string& out, telemetry::Format format) const {
    telemetry::append_family_header(out, format, "ztunnel_dns_requests_refused",
                                    "DNS requests refused at a limit or dropped as malformed, by "
                                    "reason (unstable)",
                                    telemetry::MetricType::counter);
    constexpr std::string_view kReason[] = {"reason"};
    for (size_t i = 0; i < kRefusalCount; ++i) {
        uint64_t count = refusals(Refusal(i));
        if (count > 0) {
            std::string value(to_string(Refusal(i)));
            telemetry::append_sample(out, "ztunnel_dns_requests_refused_total", kReason,
                                     std::span<const std::string>(&value, 1),
                                     std::to_string(count));
        }
    }
    uint64_t overflow = series_.overflow_count() + on_demand_.overflow_count();
    if (overflow > 0) {
        telemetry::append_family_header(out, format, "ztunnel_dns_series_overflow",
                                        "DNS queries not counted because the DNS metrics reached "
                                        "their series limit (unstable)",
                                        telemetry::MetricType::counter);
        telemetry::append_sample(out, "ztunnel_dns_series_overflow_total", {}, {},
                                 std::to_string(overflow));
    }
}

void log_query(const state::Workload* client, const Query& query, std::string_view result,
               uint16_t endpoints) {
    if (!log::enabled(log::Level::debug, "dns")) {
        return;
    }
    std::string type = type_name(query.type);
    std::string domain = query.name.to_fqdn();
    std::string_view workload = "unknown";
    std::string_view namespace_ = "unknown";
    if (client != nullptr) {
        workload = or_unknown(client->name);
        namespace_ = or_unknown(client->namespace_);
    }
    log::debug("dns", "",
               {log::Field::str("src.workload", workload),
                log::Field::str("src.namespace", namespace_), log::Field::str("query", type),
                log::Field::str("domain", domain), log::Field::str("result", result),
                log::Field::num("endpoints", endpoints)});
}

}  // namespace zt::dns
