// backoff.cc classifies how an ADS stream ended and picks the reconnect delay exactly as
// ztunnel's xDS client does; it has no clock and no I/O, so each branch is a table test.

#include "src/agent/backoff.h"

#include <algorithm>

namespace zt::agent {

std::string_view to_string(TerminationReason reason) {
    switch (reason) {
        case TerminationReason::connection_error:
            return "ConnectionError";
        case TerminationReason::error:
            return "Error";
        case TerminationReason::reconnect:
            return "Reconnect";
        case TerminationReason::complete:
            return "Complete";
    }
    return "Error";
}

ReconnectPlan XdsBackoff::on_stream_end(const grpc::CallEnd& end) {
    using grpc::StatusCode;
    ReconnectPlan plan;
    if (!end.established) {
        // Could not open the stream (connect, TLS, or a status before any response headers):
        // ztunnel's `Error::Connection`, doubled backoff.
        current_ns_ = std::min(kMaxNs, current_ns_ * 2);
        plan.reason = TerminationReason::connection_error;
        plan.delay_ns = current_ns_;
        return plan;
    }
    if (end.status.ok()) {
        current_ns_ = kInitialNs;
        plan.reason = TerminationReason::complete;
        plan.delay_ns = 0;
        return plan;
    }
    const std::string& message = end.status.message;
    StatusCode code = end.status.code;
    bool benign = code == StatusCode::unknown || code == StatusCode::cancelled ||
                  code == StatusCode::deadline_exceeded ||
                  (code == StatusCode::unavailable &&
                   (message.find("transport is closing") != std::string::npos ||
                    message.find("received prior goaway") != std::string::npos));
    // A stream lost on our side after it was established (the server closed the connection, a
    // keepalive PING went unanswered, GOAWAY) is what tonic reports as a transport error: benign.
    if (benign || !end.from_server) {
        current_ns_ = kInitialNs;
        plan.reason = TerminationReason::reconnect;
        plan.delay_ns = kInitialNs;
        return plan;
    }
    current_ns_ = std::min(kMaxNs, current_ns_ * 2);
    plan.reason = TerminationReason::error;
    plan.delay_ns = current_ns_;
    return plan;
}

}  // namespace zt::agent
