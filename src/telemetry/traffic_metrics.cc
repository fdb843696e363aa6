// traffic_metrics.cc keeps Istio's five TCP traffic counters per shard and renders them with
// ztunnel's label names and order. It decides nothing about a connection: the proxy supplies the
// labels and the counting points.

#include "src/telemetry/traffic_metrics.h"

#include <array>
#include <map>
#include <utility>

#include "zt/assert.h"

namespace zt::telemetry {

namespace {

// The label names of CommonTrafficLabels, in ztunnel's emission order. The four locality labels
// come last and only for series created `with_locality`.
constexpr std::string_view kLabelNames[] = {
        "reporter",
        "source_workload",
        "source_canonical_service",
        "source_canonical_revision",
        "source_workload_namespace",
        "source_principal",
        "source_app",
        "source_version",
        "source_cluster",
        "destination_service",
        "destination_service_namespace",
        "destination_service_name",
        "destination_workload",
        "destination_canonical_service",
        "destination_canonical_revision",
        "destination_workload_namespace",
        "destination_principal",
        "destination_app",
        "destination_version",
        "destination_cluster",
        "request_protocol",
        "response_flags",
        "connection_security_policy",
        "source_region",
        "source_zone",
        "destination_region",
        "destination_zone",
};
constexpr size_t kLabelCount = sizeof kLabelNames / sizeof kLabelNames[0];
constexpr size_t kLocalityCount = 4;
constexpr size_t kResponseFlagsIndex = 21;

// LabelViews holds one label set as views into a `TrafficLabels` and string constants, so a
// lookup that finds its series allocates nothing but the key.
struct LabelViews {
    std::array<std::string_view, kLabelCount> values;
    size_t size = 0;

    std::span<const std::string_view> span() const { return {values.data(), size}; }
};

std::string_view or_unknown(const std::string& value) {
    return value.empty() ? std::string_view("unknown") : std::string_view(value);
}

LabelViews label_views(const TrafficLabels& l) {
    LabelViews v;
    auto push = [&v](std::string_view value) {
        v.values[v.size++] = value;
    };
    push(to_string(l.reporter));
    for (const std::string* s :
         {&l.source_workload, &l.source_canonical_service, &l.source_canonical_revision,
          &l.source_workload_namespace, &l.source_principal, &l.source_app, &l.source_version,
          &l.source_cluster, &l.destination_service, &l.destination_service_namespace,
          &l.destination_service_name, &l.destination_workload, &l.destination_canonical_service,
          &l.destination_canonical_revision, &l.destination_workload_namespace,
          &l.destination_principal, &l.destination_app, &l.destination_version,
          &l.destination_cluster}) {
        push(or_unknown(*s));
    }
    push("tcp");
    push(to_string(l.response_flags));
    push(to_string(l.connection_security_policy));
    if (l.with_locality) {
        for (const std::string* s :
             {&l.source_region, &l.source_zone, &l.destination_region, &l.destination_zone}) {
            push(or_unknown(*s));
        }
    }
    return v;
}

}  // namespace

std::string_view to_string(Reporter reporter) {
    switch (reporter) {
        case Reporter::source:
            return "source";
        case Reporter::destination:
            return "destination";
    }
    return "unknown";
}

std::string_view to_string(ResponseFlag flag) {
    switch (flag) {
        case ResponseFlag::none:
            return "-";
        case ResponseFlag::deny:
            return "DENY";
        case ResponseFlag::connect:
            return "CONNECT";
        case ResponseFlag::tls_failure:
            return "TLS_FAILURE";
        case ResponseFlag::h2_handshake_failure:
            return "H2_HANDSHAKE_FAILURE";
        case ResponseFlag::network_policy:
            return "NETWORK_POLICY";
        case ResponseFlag::identity_error:
            return "IDENTITY_ERROR";
        case ResponseFlag::cert_revoked:
            return "CERT_REVOKED";
    }
    return "-";
}

std::string_view to_string(SecurityPolicy policy) {
    switch (policy) {
        case SecurityPolicy::unknown:
            return "unknown";
        case SecurityPolicy::mutual_tls:
            return "mutual_tls";
    }
    return "unknown";
}

TrafficMetrics::TrafficMetrics(size_t shard_count, size_t max_series)
    : shards_(shard_count, max_series) {
    ZT_CHECK(shard_count > 0);
}

TrafficSeries* TrafficMetrics::series(size_t shard, const TrafficLabels& labels) {
    ZT_ASSERT(shard < shards_.shard_count());
    LabelViews views = label_views(labels);
    return shards_.get(shard, views.span());
}

TrafficSeries* TrafficMetrics::series_with_flag(size_t shard, const TrafficSeries& base,
                                                ResponseFlag flag) {
    if (base.label_values.size() <= kResponseFlagsIndex) {
        // The discard series has no labels; keep discarding.
        return shards_.discard(shard);
    }
    LabelViews views;
    for (const std::string& value : base.label_values) {
        views.values[views.size++] = value;
    }
    views.values[kResponseFlagsIndex] = to_string(flag);
    return shards_.get(shard, views.span());
}

TrafficMetrics::Totals TrafficMetrics::totals(std::string_view name, std::string_view value) const {
    size_t index = kLabelCount;
    for (size_t i = 0; i < kLabelCount; ++i) {
        if (kLabelNames[i] == name) {
            index = i;
        }
    }
    Totals totals;
    shards_.for_each([&](const TrafficSeries& series) {
        if (!name.empty() &&
            (index >= series.label_values.size() || series.label_values[index] != value)) {
            return;
        }
        totals.opened += series.opened.load();
        totals.closed += series.closed.load();
        totals.failed += series.failed.load();
        totals.received_bytes += series.received_bytes.load();
        totals.sent_bytes += series.sent_bytes.load();
    });
    return totals;
}

void TrafficMetrics::render(std::string& out, Format format) const {
    struct Sum {
        uint64_t values[5] = {};
    };

    std::map<std::vector<std::string>, Sum> merged;
    shards_.for_each([&](const TrafficSeries& series) {
        Sum& sum = merged[series.label_values];
        sum.values[0] += series.opened.load();
        sum.values[1] += series.closed.load();
        sum.values[2] += series.received_bytes.load();
        sum.values[3] += series.sent_bytes.load();
        sum.values[4] += series.failed.load();
    });

    struct FamilyText {
        std::string_view name;
        std::string_view help;
    };

    // HELP texts are Istio's; `failed` is unstable in ztunnel.
    constexpr FamilyText kFamilies[] = {
            {"istio_tcp_connections_opened", "The total number of TCP connections opened"},
            {"istio_tcp_connections_closed", "The total number of TCP connections closed"},
            {"istio_tcp_received_bytes",
             "The size of total bytes received during request in case of a TCP connection"},
            {"istio_tcp_sent_bytes",
             "The size of total bytes sent during response in case of a TCP connection"},
            {"istio_tcp_connections_failed",
             "The total number of TCP connections that failed to establish (unstable)"},
    };
    for (size_t f = 0; f < 5; ++f) {
        append_family_header(out, format, kFamilies[f].name, kFamilies[f].help,
                             MetricType::counter);
        std::string sample = std::string(kFamilies[f].name) + "_total";
        for (const auto& [values, sum] : merged) {
            // ztunnel creates a series in a family only when it counts into it: opened and
            // both byte counters when a connection opens with these labels, closed when one
            // closes with them, failed when one fails with them.
            uint64_t presence = f == 1 ? sum.values[1] : f == 4 ? sum.values[4] : sum.values[0];
            if (presence == 0) {
                continue;
            }
            size_t count =
                    values.size() == kLabelCount ? kLabelCount : kLabelCount - kLocalityCount;
            append_sample(out, sample, std::span<const std::string_view>(kLabelNames, count),
                          values, std::to_string(sum.values[f]));
        }
    }
    uint64_t overflow = overflow_count();
    if (overflow > 0) {
        append_family_header(out, format, "ztunnel_traffic_series_overflow",
                             "Connections not counted because the traffic metrics reached their "
                             "series limit (unstable)",
                             MetricType::counter);
        append_sample(out, "ztunnel_traffic_series_overflow_total", {}, {},
                      std::to_string(overflow));
    }
}

ConnectionMetrics::ConnectionMetrics(TrafficMetrics& metrics, size_t shard,
                                     const TrafficLabels& labels)
    : metrics_(&metrics), series_(metrics.series(shard, labels)), shard_(shard) {
    series_->opened.increment();
}

ConnectionMetrics::ConnectionMetrics(ConnectionMetrics&& other) noexcept
    : metrics_(other.metrics_)
    , series_(std::exchange(other.series_, nullptr))
    , shard_(other.shard_) {}

ConnectionMetrics& ConnectionMetrics::operator=(ConnectionMetrics&& other) noexcept {
    if (this != &other) {
        close();
        metrics_ = other.metrics_;
        series_ = std::exchange(other.series_, nullptr);
        shard_ = other.shard_;
    }
    return *this;
}

ConnectionMetrics::~ConnectionMetrics() {
    close();
}

void ConnectionMetrics::close(ResponseFlag flag) {
    if (series_ == nullptr) {
        return;
    }
    TrafficSeries* target = series_;
    if (flag != ResponseFlag::none) {
        target = metrics_->series_with_flag(shard_, *series_, flag);
        target->failed.increment();
    }
    target->closed.increment();
    series_ = nullptr;
}

}  // namespace zt::telemetry
