// connection_result.cc ties one connection's metrics and access-log records together with
// ztunnel's semantics. It formats nothing itself (access_log.cc does) and never blocks.

#include "src/telemetry/connection_result.h"

#include <utility>

namespace zt::telemetry {

namespace {

void fill(std::string& field, const std::string& from) {
    if (field.empty()) {
        field = from;
    }
}

}  // namespace

ConnectionResult::ConnectionResult(TrafficMetrics& metrics, size_t shard,
                                   const TrafficLabels& labels, ConnectionLog log,
                                   const Clock& clock)
    : metrics_(metrics, shard, labels)
    , log_(std::move(log))
    , clock_(&clock)
    , start_ns_(clock.monotonic_ns()) {
    log_.direction = labels.reporter == Reporter::source ? Direction::outbound : Direction::inbound;
    log_.mutual_tls = labels.connection_security_policy == SecurityPolicy::mutual_tls;
    // ztunnel logs the pod name, falling back to the canonical service.
    fill(log_.src_workload, labels.source_canonical_service);
    fill(log_.dst_workload, labels.destination_canonical_service);
    fill(log_.src_namespace, labels.source_workload_namespace);
    fill(log_.src_identity, labels.source_principal);
    fill(log_.src_cluster, labels.source_cluster);
    fill(log_.dst_service, labels.destination_service);
    fill(log_.dst_namespace, labels.destination_workload_namespace);
    fill(log_.dst_identity, labels.destination_principal);
    fill(log_.dst_cluster, labels.destination_cluster);
    log_.request_bytes = 0;
    log_.response_bytes = 0;
    log_connection_opened(log_);
}

ConnectionResult& ConnectionResult::operator=(ConnectionResult&& other) noexcept {
    if (this != &other) {
        if (!recorded()) {
            record(ResponseFlag::none, kClosedFromDrain);
        }
        metrics_ = std::move(other.metrics_);
        log_ = std::move(other.log_);
        clock_ = other.clock_;
        start_ns_ = other.start_ns_;
    }
    return *this;
}

ConnectionResult::~ConnectionResult() {
    if (!recorded()) {
        record(ResponseFlag::none, kClosedFromDrain);
    }
}

void ConnectionResult::record(ResponseFlag flag, std::string_view error) {
    if (recorded()) {
        return;
    }
    metrics_.close(flag);
    log_connection_complete(log_, clock_->monotonic_ns() - start_ns_, error);
}

}  // namespace zt::telemetry
