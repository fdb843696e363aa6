// Tests for close_cause.cc: every close reason renders as the exact error string ztunnel writes
// (the e2e scenarios and operators grep for them), and carries ztunnel's response flag.

#include "src/proxy/close_cause.h"

#include <cerrno>

#include <doctest/doctest.h>

namespace {

using zt::proxy::CloseCause;
using zt::proxy::CloseReason;
using zt::telemetry::ResponseFlag;

struct Row {
    CloseCause cause;
    const char* text;
    ResponseFlag flag;
};

}  // namespace

TEST_CASE("close_cause: each reason renders ztunnel's error text and response flag") {
    const Row rows[] = {
            {CloseCause{}, "", ResponseFlag::none},
            {CloseCause::of(CloseReason::reset), "", ResponseFlag::none},
            {CloseCause::of(CloseReason::self_call), "attempted recursive call to ourselves",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::unknown_source_workload, "c//Pod/default/x"),
             "unknown source workload c//Pod/default/x", ResponseFlag::none},
            {CloseCause::of(CloseReason::unknown_destination_workload, "c//Pod/default/x"),
             "unknown destination workload c//Pod/default/x", ResponseFlag::none},
            {CloseCause::of(CloseReason::unknown_workload), "unknown workload", ResponseFlag::none},
            {CloseCause::of(CloseReason::local_workload_timeout, "sa.ns (name)"),
             "failed to fetch information about local workload: sa.ns (name)", ResponseFlag::none},
            {CloseCause::refused_by_route(zt::proxy::RefuseReason::no_healthy_upstream,
                                          "198.19.0.10:80"),
             "no healthy upstream: 198.19.0.10:80", ResponseFlag::none},
            {CloseCause::refused_by_route(zt::proxy::RefuseReason::self_call, "127.0.0.1:15001"),
             "attempted recursive call to ourselves", ResponseFlag::none},
            {CloseCause::refused_by_route(zt::proxy::RefuseReason::cross_network, ""),
             "cross_network", ResponseFlag::none},
            {CloseCause::refused_by_route(zt::proxy::RefuseReason::unknown_waypoint,
                                          "198.19.0.10:80",
                                          "unknown waypoint: waypoint ns/wp.ns.svc not found"),
             "unknown waypoint: waypoint ns/wp.ns.svc not found", ResponseFlag::none},
            {CloseCause::of(CloseReason::unknown_service, "svc.ns.svc:80"),
             "unknown service svc.ns.svc:80", ResponseFlag::none},
            {CloseCause::of(CloseReason::ip_mismatch, "198.18.2.9 != 198.18.2.2"),
             "ip mismatch: 198.18.2.9 != 198.18.2.2", ResponseFlag::none},
            {CloseCause::no_certificate("spiffe://cluster.local/ns/a/sa/b"),
             "no certificate for identity spiffe://cluster.local/ns/a/sa/b",
             ResponseFlag::identity_error},
            {CloseCause::connect_failed(ECONNREFUSED), "Connection refused (os error 111)",
             ResponseFlag::connect},
            {CloseCause::io_error(EPIPE), "Broken pipe (os error 32)", ResponseFlag::none},
            {CloseCause::of(CloseReason::connect_timeout), "connection timed out",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::connection_limit), "connection limit reached",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::engine_setup_failed), "cannot create HBONE session",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::stream_open_failed), "cannot open an HBONE stream",
             ResponseFlag::none},
            {CloseCause::http_refusal(401), "http status: 401", ResponseFlag::connect},
            {CloseCause::h2_refusal(7, false),
             "h2 failed: stream error received: refused stream before processing any application "
             "logic",
             ResponseFlag::connect},
            {CloseCause::h2_refusal(0, true),
             "h2 failed: connection error received: not a result of an error",
             ResponseFlag::connect},
            {CloseCause::h2_refusal(99, false),
             "h2 failed: stream error received: unknown reason "
             "code: 99",
             ResponseFlag::connect},
            {CloseCause::policy_rejection("explicitly denied by: default/deny"),
             "connection closed due to policy rejection: explicitly denied by: default/deny",
             ResponseFlag::deny},
            {CloseCause::of(CloseReason::dial_timeout),
             "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008",
             ResponseFlag::none},
            {CloseCause::tls_start_failure(zt::Errc::tls_handshake), "TLS: tls_handshake",
             ResponseFlag::none},
            {CloseCause::engine_failure(zt::Errc::tls_handshake, ""), "tls_handshake",
             ResponseFlag::none},
            {CloseCause::engine_failure(zt::Errc::cert_unknown_ca, "CERTIFICATE_VERIFY_FAILED"),
             "cert_unknown_ca: CERTIFICATE_VERIFY_FAILED", ResponseFlag::none},
            {CloseCause::of(CloseReason::peer_closed), "connection closed by peer",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::keepalive_timeout),
             "HBONE keepalive or handshake timed out", ResponseFlag::none},
            {CloseCause::of(CloseReason::protocol_error), "HBONE protocol error",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::link_closed), "HBONE connection closed",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::link_lost), "HBONE connection lost", ResponseFlag::none},
            {CloseCause::of(CloseReason::link_idle), "idle", ResponseFlag::none},
            {CloseCause::of(CloseReason::stream_refused_data), "HBONE stream refused data",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::policy_change), "connection closed due to policy change",
             ResponseFlag::deny},
            {CloseCause::of(CloseReason::pod_removed), "connection closed: pod removed",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::shutting_down), "connection closed: ztunnel shutting down",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::drained), "connection closed due to drain",
             ResponseFlag::none},
            {CloseCause::of(CloseReason::idle_timeout), "idle timeout", ResponseFlag::none},
            {CloseCause::of(CloseReason::aborted), "connection aborted", ResponseFlag::none},
            {CloseCause::of(CloseReason::out_of_pipes), "out of pipe resources",
             ResponseFlag::none},
    };
    for (const Row& row : rows) {
        CAPTURE(to_string(row.cause.reason));
        CHECK(error_text(row.cause) == row.text);
        CHECK(row.cause.flag == row.flag);
        CHECK(row.cause.is_error() == (std::string_view(row.text) != ""));
    }
}

TEST_CASE("close_cause: with_flag changes only the flag") {
    CloseCause lost = CloseCause::of(CloseReason::link_lost);
    CloseCause before_open = lost.with_flag(ResponseFlag::connect);
    CHECK(before_open.flag == ResponseFlag::connect);
    CHECK(error_text(before_open) == error_text(lost));
    CHECK(to_string(before_open.reason) == "link_lost");
}
