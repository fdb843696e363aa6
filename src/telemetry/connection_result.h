#pragma once

// ConnectionResult is ztunnel's ConnectionResult for one proxied connection: the metric side
// (`ConnectionMetrics`) and the access-log side (`connection opened` / `connection complete`)
// driven together, so they cannot disagree. Built when the connection context is known
// (outbound after the route decision, inbound after the CONNECT is parsed, before RBAC), it logs
// `connection opened` and counts opened; bytes go to both; `record` closes exactly once, logging
// `connection complete` (info, or error with `error="..."`) with the duration. Dropping it
// unrecorded records "connection closed due to connection drain", as ztunnel does.
//
// The log fields ztunnel takes from the traffic labels are filled from them when the
// `ConnectionLog` leaves them empty: src.namespace, src.identity, dst.service, dst.namespace,
// dst.identity, the clusters, the workloads' canonical-service fallback, mTLS and direction.
//
// It lives on the worker that owns the connection and must not change thread.

#include <cstdint>
#include <string_view>

#include "src/telemetry/access_log.h"
#include "src/telemetry/traffic_metrics.h"
#include "zt/clock.h"

namespace zt::telemetry {

class ConnectionResult {
public:
    ConnectionResult() = default;

    // ConnectionResult counts and logs the connection opened. `clock` (tests pass a FakeClock)
    // must outlive this object; the duration is measured from now.
    ConnectionResult(TrafficMetrics& metrics, size_t shard, const TrafficLabels& labels,
                     ConnectionLog log, const Clock& clock = system_clock());

    ConnectionResult(ConnectionResult&& other) noexcept = default;
    ConnectionResult& operator=(ConnectionResult&& other) noexcept;
    ConnectionResult(const ConnectionResult&) = delete;
    ConnectionResult& operator=(const ConnectionResult&) = delete;

    // ~ConnectionResult records an unrecorded connection as closed by drain.
    ~ConnectionResult();

    // add_request_bytes counts client→server bytes (metric `received_bytes`).
    void add_request_bytes(uint64_t n) {
        metrics_.add_request_bytes(n);
        log_.request_bytes += n;
    }

    // add_response_bytes counts server→client bytes (metric `sent_bytes`).
    void add_response_bytes(uint64_t n) {
        metrics_.add_response_bytes(n);
        log_.response_bytes += n;
    }

    // record closes the connection: counts closed (and failed when `flag` is not none) and logs
    // `connection complete`, at error with `error` when `error` is not empty. Later calls do
    // nothing.
    void record(ResponseFlag flag = ResponseFlag::none, std::string_view error = {});

    bool recorded() const { return !metrics_.open(); }

    const ConnectionLog& log() const { return log_; }

private:
    ConnectionMetrics metrics_;
    ConnectionLog log_;
    const Clock* clock_ = nullptr;
    int64_t start_ns_ = 0;
};

// kClosedFromDrain is ztunnel's text for a connection dropped without a result.
inline constexpr std::string_view kClosedFromDrain = "connection closed due to connection drain";

}  // namespace zt::telemetry
