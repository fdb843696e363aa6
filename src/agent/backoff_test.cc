// Unit tests for ztunnel's xDS reconnect policy: each way a stream can end, the termination
// reason it is counted under and the delay before the next connection.

#include "src/agent/backoff.h"

#include <doctest/doctest.h>

using namespace zt::agent;
using zt::agent::grpc::CallEnd;
using zt::agent::grpc::Status;
using zt::agent::grpc::StatusCode;

namespace {

constexpr int64_t kMs = 1'000'000;

CallEnd not_established() {
    return CallEnd{Status{StatusCode::unavailable, "cannot connect"}, false, false};
}

CallEnd server_status(StatusCode code, std::string message = "") {
    return CallEnd{Status{code, std::move(message)}, true, true};
}

}  // namespace

TEST_CASE("backoff: a connection that cannot be made doubles from 10 ms up to 15 s") {
    XdsBackoff backoff;
    int64_t expected = 20 * kMs;
    for (int i = 0; i < 12; i++) {
        ReconnectPlan plan = backoff.on_stream_end(not_established());
        CHECK(plan.reason == TerminationReason::connection_error);
        CHECK(plan.delay_ns == std::min<int64_t>(expected, 15'000 * kMs));
        expected *= 2;
    }
    CHECK(backoff.current_ns() == 15'000 * kMs);
    // A status before any response headers (trailers-only) is also a connection error.
    ReconnectPlan refused = backoff.on_stream_end(
            CallEnd{Status{StatusCode::unauthenticated, "bad token"}, true, false});
    CHECK(refused.reason == TerminationReason::connection_error);
    CHECK(refused.delay_ns == 15'000 * kMs);
}

TEST_CASE("backoff: benign ends reconnect after 10 ms and reset the backoff") {
    for (auto end : {server_status(StatusCode::unknown), server_status(StatusCode::cancelled),
                     server_status(StatusCode::deadline_exceeded),
                     server_status(StatusCode::unavailable, "transport is closing"),
                     server_status(StatusCode::unavailable, "received prior goaway: x"),
                     // Lost on our side after it was established (server gone, PING timeout).
                     CallEnd{Status{StatusCode::unavailable, "the server closed the connection"},
                             false, true}}) {
        XdsBackoff backoff;
        (void)backoff.on_stream_end(not_established());
        (void)backoff.on_stream_end(not_established());
        ReconnectPlan plan = backoff.on_stream_end(end);
        CHECK(plan.reason == TerminationReason::reconnect);
        CHECK(plan.delay_ns == 10 * kMs);
        CHECK(backoff.current_ns() == 10 * kMs);
    }
}

TEST_CASE("backoff: other statuses back off; a clean end reconnects at once") {
    XdsBackoff backoff;
    ReconnectPlan plan = backoff.on_stream_end(server_status(StatusCode::permission_denied));
    CHECK(plan.reason == TerminationReason::error);
    CHECK(plan.delay_ns == 20 * kMs);
    plan = backoff.on_stream_end(server_status(StatusCode::unavailable, "istiod overloaded"));
    CHECK(plan.reason == TerminationReason::error);
    CHECK(plan.delay_ns == 40 * kMs);
    plan = backoff.on_stream_end(server_status(StatusCode::ok));
    CHECK(plan.reason == TerminationReason::complete);
    CHECK(plan.delay_ns == 0);
    CHECK(backoff.current_ns() == 10 * kMs);
    CHECK(to_string(TerminationReason::connection_error) == "ConnectionError");
    CHECK(to_string(TerminationReason::complete) == "Complete");
}
