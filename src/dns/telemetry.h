#pragma once

// The DNS proxy's metrics and log, with ztunnel's names, labels, buckets and fields
// (docs/ztunnel-reference.md §6.1, its src/dns/metrics.rs and the `dns` access log of its
// server.rs):
//
//   istio_dns_requests_total                       every query, answered here or forwarded
//   istio_dns_upstream_requests_total              forwarded queries
//   istio_dns_upstream_failures_total              forwards that ended without a usable answer
//   istio_dns_upstream_request_duration_seconds    forward time, buckets 0.5 ms .. 5 s
//     labels: request_query_type (lower case: a, aaaa, ...), request_protocol (udp, tcp),
//             source_canonical_service, source_canonical_revision
//   istio_on_demand_dns_total                      hostname-only workloads resolved at connect
//     labels: source_workload, source_canonical_service, source_canonical_revision,
//             source_workload_namespace, source_principal, source_app, source_version,
//             source_cluster, hostname
//   ztunnel_dns_requests_refused_total{reason}     ours: limits hit, malformed messages
//
// Counting follows the traffic metrics' rule: one shard per worker, a series looked up once per
// query, plain per-shard stores (src/telemetry/metrics.h). The log target is `dns`, at debug.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/dns/forwarder.h"
#include "src/dns/message.h"
#include "src/state/types.h"
#include "src/telemetry/metrics.h"

namespace zt::dns {

// kDurationBucketsSeconds are ztunnel's upper bounds for the upstream request duration.
inline constexpr double kDurationBucketsSeconds[] = {0.0005, 0.001, 0.01, 0.1, 1, 5};
inline constexpr size_t kDurationBucketCount = std::size(kDurationBucketsSeconds);

// DnsSeries holds the counters of one DnsLabels set in one shard; only the shard's owner thread
// writes them.
struct alignas(64) DnsSeries {
    std::vector<std::string> label_values;
    telemetry::Cell requests;
    telemetry::Cell upstream_requests;
    telemetry::Cell upstream_failures;
    // duration_buckets[i] counts durations in (bound[i-1], bound[i]]; longer ones only count.
    telemetry::Cell duration_buckets[kDurationBucketCount];
    telemetry::Cell duration_count;
    telemetry::Cell duration_sum_ns;

    // observe_upstream records one forward's duration.
    void observe_upstream(int64_t duration_ns);
};

// OnDemandSeries is one `istio_on_demand_dns_total` series in one shard.
struct alignas(64) OnDemandSeries {
    std::vector<std::string> label_values;
    telemetry::Cell count;
};

// Refusal is why the proxy refused or dropped a query (`ztunnel_dns_requests_refused_total`).
enum class Refusal : uint8_t {
    in_flight_limit,   // The pod's bound on forwarded queries in flight: answered SERVFAIL.
    malformed,         // Shorter than a DNS header: dropped (nothing to answer to).
    oversized,         // A UDP query larger than the receive buffer: dropped.
    tcp_connections,   // The pod's bound on DNS-over-TCP connections: closed at once.
    tcp_idle_timeout,  // A TCP connection sent no whole query within the request timeout.
    reply_queue_full,  // UDP replies waiting to be sent hit their bound: the reply is dropped.
};

inline constexpr size_t kRefusalCount = 6;

std::string_view to_string(Refusal refusal);

// DnsMetrics is the family group above. Register it with `telemetry::Registry::add`.
class DnsMetrics final : public telemetry::Family {
public:
    // DnsMetrics creates the group for `shard_count` shards with at most `max_series` label
    // sets per family and shard (past it, counts go to a discard series).
    DnsMetrics(size_t shard_count, size_t max_series);

    // series returns the counters for a query of `type` that arrived over `transport` from
    // `client` (null when unknown) in `shard`; stable for the life of this object. Only
    // `shard`'s owning thread may call it and write through the result.
    DnsSeries* series(size_t shard, uint16_t type, Transport transport,
                      const state::Workload* client);

    // count_on_demand counts one on-demand resolution of `hostname` for a connection from
    // `source`, whose SPIFFE identity is `source_principal`.
    void count_on_demand(size_t shard, const state::Workload& source,
                         std::string_view source_principal, std::string_view hostname);

    // count_refusal counts one refusal in `shard` (owner thread only).
    void count_refusal(size_t shard, Refusal refusal);

    // Totals for tests and the control thread: sums over shards and series.
    struct Totals {
        uint64_t requests = 0, upstream_requests = 0, upstream_failures = 0, duration_count = 0;
    };

    Totals totals() const;

    uint64_t refusals(Refusal refusal) const;

    uint64_t on_demand_total() const;

    void render(std::string& out, telemetry::Format format) const override;

private:
    void render_on_demand(std::string& out, telemetry::Format format) const;
    void render_refusals(std::string& out, telemetry::Format format) const;

    struct alignas(64) RefusalShard {
        telemetry::Cell counts[kRefusalCount];
    };

    telemetry::SeriesShards<DnsSeries> series_;
    telemetry::SeriesShards<OnDemandSeries> on_demand_;
    std::vector<RefusalShard> refusals_;
};

// log_query writes the `dns` log record ztunnel writes for a query, at debug:
// `src.workload`, `src.namespace` (`unknown` without a client), `query` (the type, `A`),
// `domain` (the asked name with its trailing dot), `result` (`success`, `no records`,
// `forwarded`, `forwarding failed (...)`, ...) and `endpoints` (A/AAAA records returned).
// It formats nothing when the `dns` target is not enabled at debug.
void log_query(const state::Workload* client, const Query& query, std::string_view result,
               uint16_t endpoints);

}  // namespace zt::dns
