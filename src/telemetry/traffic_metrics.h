#pragma once

// Istio's TCP traffic metrics as ztunnel reports them (docs/ztunnel-reference.md §6.1):
// `istio_tcp_connections_opened_total`, `_closed_total`, `istio_tcp_connections_failed_total`,
// `istio_tcp_received_bytes_total` and `istio_tcp_sent_bytes_total`, all keyed by
// CommonTrafficLabels in ztunnel's order, `unknown` for a missing value.
//
// The proxy fills a plain `TrafficLabels` once per connection, asks for the series of its worker
// shard (`TrafficMetrics::series`, one hash lookup), and then counts through `ConnectionMetrics`
// with plain per-worker stores. The five counters of one label set live side by side, so a
// connection costs one lookup, not five.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/telemetry/metrics.h"

namespace zt::telemetry {

// Reporter is who reports: `source` for outbound (15001), `destination` for inbound
// (15008/15006).
enum class Reporter : uint8_t { source, destination };

// ResponseFlag is ztunnel's `response_flags` label; anything but `none` ("-") counts as failed.
enum class ResponseFlag : uint8_t {
    none,                  // "-"
    deny,                  // "DENY": policy rejected the connection
    connect,               // "CONNECT": the upstream connect failed
    tls_failure,           // "TLS_FAILURE"
    h2_handshake_failure,  // "H2_HANDSHAKE_FAILURE"
    network_policy,        // "NETWORK_POLICY": HBONE connect timed out
    identity_error,        // "IDENTITY_ERROR": no certificate for the identity
    cert_revoked,          // "CERT_REVOKED"
};

// SecurityPolicy is `connection_security_policy`: `mutual_tls` over HBONE, else `unknown`
// (ztunnel never reports `none`).
enum class SecurityPolicy : uint8_t { unknown, mutual_tls };

std::string_view to_string(Reporter reporter);
std::string_view to_string(ResponseFlag flag);
std::string_view to_string(SecurityPolicy policy);

// TrafficLabels is what the proxy knows about a connection, field for field ztunnel's
// CommonTrafficLabels. Leave a string empty when it is unknown; it renders as `unknown`.
// `with_locality` adds the four locality labels, which ztunnel emits whenever a source or
// destination workload was found.
struct TrafficLabels {
    Reporter reporter = Reporter::source;
    std::string source_workload;
    std::string source_canonical_service;
    std::string source_canonical_revision;
    std::string source_workload_namespace;
    std::string source_principal;
    std::string source_app;
    std::string source_version;
    std::string source_cluster;
    std::string destination_service;
    std::string destination_service_namespace;
    std::string destination_service_name;
    std::string destination_workload;
    std::string destination_canonical_service;
    std::string destination_canonical_revision;
    std::string destination_workload_namespace;
    std::string destination_principal;
    std::string destination_app;
    std::string destination_version;
    std::string destination_cluster;
    ResponseFlag response_flags = ResponseFlag::none;
    SecurityPolicy connection_security_policy = SecurityPolicy::unknown;
    bool with_locality = false;
    std::string source_region;
    std::string source_zone;
    std::string destination_region;
    std::string destination_zone;
};

// TrafficSeries holds the five counters of one label set in one shard. Only the shard's owner
// thread writes them. Cache-line aligned so two workers' series never share a line, whichever
// thread allocated them.
struct alignas(64) TrafficSeries {
    // label_values are the rendered values, `unknown` already substituted; 27 with the locality
    // labels, 23 without.
    std::vector<std::string> label_values;
    Cell opened;
    Cell closed;
    Cell failed;
    Cell received_bytes;  // client→server (request direction), Istio's convention
    Cell sent_bytes;      // server→client
};

// TrafficMetrics is the family group of the five traffic counters. Register it with
// `Registry::add`.
class TrafficMetrics final : public Family {
public:
    // TrafficMetrics creates the group for `shard_count` shards with at most `max_series` label
    // sets per shard (past it, counts go to a discard series and are counted in
    // `overflow_count`).
    TrafficMetrics(size_t shard_count, size_t max_series);

    // series returns the counters of `labels` in `shard`; stable for the life of this object.
    // Only `shard`'s owning thread may call it and write through the result.
    TrafficSeries* series(size_t shard, const TrafficLabels& labels);

    // series_with_flag returns the series equal to `base` except for `response_flags`.
    TrafficSeries* series_with_flag(size_t shard, const TrafficSeries& base, ResponseFlag flag);

    // totals sums one counter over all shards and series whose label `name` equals `value`
    // (or all series when `name` is empty). For tests and the control thread.
    struct Totals {
        uint64_t opened = 0, closed = 0, failed = 0, received_bytes = 0, sent_bytes = 0;
    };

    Totals totals(std::string_view name = {}, std::string_view value = {}) const;

    uint64_t overflow_count() const { return shards_.overflow_count(); }

    void render(std::string& out, Format format) const override;

private:
    SeriesShards<TrafficSeries> shards_;
};

// ConnectionMetrics is the metric half of ztunnel's ConnectionResult for one connection: it
// counts `opened` on construction, bytes as they move, and `closed` exactly once in `close`
// (plus `failed` when the flag is not `none`, on the series carrying that flag). It lives on the
// worker that owns the connection and must not be moved to another thread. Bytes stay on the
// series opened with `response_flags="-"`, as in ztunnel.
class ConnectionMetrics {
public:
    ConnectionMetrics() = default;

    // ConnectionMetrics counts the connection opened in `metrics` for `labels` on `shard`.
    ConnectionMetrics(TrafficMetrics& metrics, size_t shard, const TrafficLabels& labels);

    ConnectionMetrics(const ConnectionMetrics&) = delete;
    ConnectionMetrics& operator=(const ConnectionMetrics&) = delete;
    ConnectionMetrics(ConnectionMetrics&& other) noexcept;
    ConnectionMetrics& operator=(ConnectionMetrics&& other) noexcept;

    // ~ConnectionMetrics closes a still-open connection with `ResponseFlag::none`, as ztunnel
    // records `ClosedFromDrain` on drop, so `closed` always matches `opened`.
    ~ConnectionMetrics();

    // add_request_bytes counts bytes the client sent towards the server.
    void add_request_bytes(uint64_t n) {
        if (series_ != nullptr) {
            series_->received_bytes.add(n);
        }
    }

    // add_response_bytes counts bytes the server sent back to the client.
    void add_response_bytes(uint64_t n) {
        if (series_ != nullptr) {
            series_->sent_bytes.add(n);
        }
    }

    // close counts the connection closed with `flag`; later calls do nothing.
    void close(ResponseFlag flag = ResponseFlag::none);

    bool open() const { return series_ != nullptr; }

private:
    TrafficMetrics* metrics_ = nullptr;
    TrafficSeries* series_ = nullptr;
    size_t shard_ = 0;
};

}  // namespace zt::telemetry
