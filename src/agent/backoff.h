#pragma once

// ztunnel's xDS reconnect policy (src/xds/client.rs `run_loop`), as a pure function of how the
// stream ended: a connection that could not be made (or a stream refused before its response
// headers) backs off from 10 ms, doubling up to 15 s; a stream that ended with a benign status
// (Unknown, Cancelled, DeadlineExceeded, "transport is closing", a prior GOAWAY) or was lost
// reconnects after 10 ms; any other status backs off doubling; a clean end reconnects at once.
// Each ending is counted under one of ztunnel's termination reasons.

#include <cstdint>
#include <string_view>

#include "src/agent/grpc_channel.h"

namespace zt::agent {

// TerminationReason is `istio_xds_connection_terminations_total{reason}`.
enum class TerminationReason : uint8_t {
    connection_error,  // The stream could not be established.
    error,             // The stream ended with a non-benign gRPC status.
    reconnect,         // A benign end (server restart, max connection age, transport closing).
    complete,          // The server ended the stream with OK.
};

// to_string returns the metric label value ztunnel uses (`ConnectionError`, `Error`,
// `Reconnect`, `Complete`).
std::string_view to_string(TerminationReason reason);

// ReconnectPlan is what to do after a stream ended.
struct ReconnectPlan {
    TerminationReason reason = TerminationReason::complete;
    int64_t delay_ns = 0;
};

// XdsBackoff holds the current backoff between connections.
class XdsBackoff {
public:
    static constexpr int64_t kInitialNs = 10 * kNanosPerMilli;
    static constexpr int64_t kMaxNs = 15 * kNanosPerSecond;

    // on_stream_end classifies `end` (how the ADS call ended) and returns when to reconnect,
    // updating the backoff.
    ReconnectPlan on_stream_end(const grpc::CallEnd& end);

    int64_t current_ns() const { return current_ns_; }

private:
    int64_t current_ns_ = kInitialNs;
};

}  // namespace zt::agent
