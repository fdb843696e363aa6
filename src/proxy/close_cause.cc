// close_cause.cc names close reasons and renders them as ztunnel's error strings. This is the
// only place those strings are spelled; everything else passes the enum around.

#include "src/proxy/close_cause.h"

#include <cstring>
#include <iterator>

namespace zt::proxy {

std::string_view to_string(CloseReason reason) {
    switch (reason) {
        case CloseReason::none:
            return "none";
        case CloseReason::reset:
            return "reset";
        case CloseReason::self_call:
            return "self_call";
        case CloseReason::unknown_source_workload:
            return "unknown_source_workload";
        case CloseReason::unknown_destination_workload:
            return "unknown_destination_workload";
        case CloseReason::unknown_workload:
            return "unknown_workload";
        case CloseReason::local_workload_timeout:
            return "local_workload_timeout";
        case CloseReason::no_healthy_upstream:
            return "no_healthy_upstream";
        case CloseReason::route_refused:
            return "route_refused";
        case CloseReason::unknown_service:
            return "unknown_service";
        case CloseReason::ip_mismatch:
            return "ip_mismatch";
        case CloseReason::no_certificate:
            return "no_certificate";
        case CloseReason::os_error:
            return "os_error";
        case CloseReason::connect_timeout:
            return "connect_timeout";
        case CloseReason::connection_limit:
            return "connection_limit";
        case CloseReason::engine_setup_failed:
            return "engine_setup_failed";
        case CloseReason::stream_open_failed:
            return "stream_open_failed";
        case CloseReason::stream_refused:
            return "stream_refused";
        case CloseReason::http_status:
            return "http_status";
        case CloseReason::policy_rejection:
            return "policy_rejection";
        case CloseReason::dial_timeout:
            return "dial_timeout";
        case CloseReason::tls_start_failed:
            return "tls_start_failed";
        case CloseReason::engine_failed:
            return "engine_failed";
        case CloseReason::peer_closed:
            return "peer_closed";
        case CloseReason::keepalive_timeout:
            return "keepalive_timeout";
        case CloseReason::protocol_error:
            return "protocol_error";
        case CloseReason::link_closed:
            return "link_closed";
        case CloseReason::link_lost:
            return "link_lost";
        case CloseReason::link_idle:
            return "link_idle";
        case CloseReason::stream_refused_data:
            return "stream_refused_data";
        case CloseReason::policy_change:
            return "policy_change";
        case CloseReason::pod_removed:
            return "pod_removed";
        case CloseReason::shutting_down:
            return "shutting_down";
        case CloseReason::drained:
            return "drained";
        case CloseReason::idle_timeout:
            return "idle_timeout";
        case CloseReason::aborted:
            return "aborted";
        case CloseReason::out_of_pipes:
            return "out_of_pipes";
    }
    return "unknown";
}

CloseCause CloseCause::with_flag(telemetry::ResponseFlag value) const {
    CloseCause copy = *this;
    copy.flag = value;
    return copy;
}

CloseCause CloseCause::of(CloseReason reason, std::string detail) {
    CloseCause cause;
    cause.reason = reason;
    cause.detail = std::move(detail);
    if (reason == CloseReason::policy_rejection || reason == CloseReason::policy_change) {
        cause.flag = telemetry::ResponseFlag::deny;
    }
    return cause;
}

CloseCause CloseCause::connect_failed(int err) {
    CloseCause cause = io_error(err);
    cause.flag = telemetry::ResponseFlag::connect;
    return cause;
}

CloseCause CloseCause::io_error(int err) {
    CloseCause cause;
    cause.reason = CloseReason::os_error;
    cause.code = err;
    return cause;
}

CloseCause CloseCause::refused_by_route(RefuseReason reason, std::string destination,
                                        std::string error) {
    switch (reason) {
        case RefuseReason::self_call:
            return of(CloseReason::self_call);
        case RefuseReason::no_healthy_upstream:
            return of(CloseReason::no_healthy_upstream, std::move(destination));
        default:
            break;
    }
    CloseCause cause = of(CloseReason::route_refused, std::move(error));
    cause.code = int32_t(reason);
    return cause;
}

CloseCause CloseCause::http_refusal(uint16_t status) {
    CloseCause cause = of(CloseReason::http_status);
    cause.code = status;
    cause.flag = telemetry::ResponseFlag::connect;
    return cause;
}

CloseCause CloseCause::h2_refusal(uint32_t error_code, bool goaway) {
    CloseCause cause = of(CloseReason::stream_refused, goaway ? "goaway" : "");
    cause.code = int32_t(error_code);
    cause.flag = telemetry::ResponseFlag::connect;
    return cause;
}

CloseCause CloseCause::policy_rejection(std::string rbac_reason) {
    return of(CloseReason::policy_rejection, std::move(rbac_reason));
}

CloseCause CloseCause::no_certificate(std::string identity) {
    CloseCause cause = of(CloseReason::no_certificate, std::move(identity));
    cause.flag = telemetry::ResponseFlag::identity_error;
    return cause;
}

CloseCause CloseCause::engine_failure(Errc code, std::string_view tls_reason) {
    CloseCause cause = of(CloseReason::engine_failed, std::string(tls_reason));
    cause.code = int32_t(code);
    return cause;
}

CloseCause CloseCause::tls_start_failure(Errc code) {
    CloseCause cause = of(CloseReason::tls_start_failed);
    cause.code = int32_t(code);
    return cause;
}

namespace {

// h2_reason_text is an HTTP/2 error code as ztunnel's HTTP/2 library (h2) describes it.
std::string h2_reason_text(uint32_t code) {
    static constexpr std::string_view kReasons[] = {
            "not a result of an error",
            "unspecific protocol error detected",
            "unexpected internal error encountered",
            "flow-control protocol violated",
            "settings ACK not received in timely manner",
            "received frame when stream half-closed",
            "frame with invalid size",
            "refused stream before processing any application logic",
            "stream no longer needed",
            "unable to maintain the header compression context",
            "connection established in response to a CONNECT request was reset or abnormally "
            "closed",
            "detected excessive load generating behavior",
            "security properties do not meet minimum requirements",
            "endpoint requires HTTP/1.1",
    };
    if (code < std::size(kReasons)) {
        return std::string(kReasons[code]);
    }
    return "unknown reason code: " + std::to_string(code);
}

}  // namespace

std::string errno_text(int err) {
    return std::string(std::strerror(err)) + " (os error " + std::to_string(err) + ")";
}

std::string error_text(const CloseCause& cause) {
    switch (cause.reason) {
        case CloseReason::none:
        case CloseReason::reset:
            return {};
        case CloseReason::self_call:
            return "attempted recursive call to ourselves";
        case CloseReason::unknown_source_workload:
            return "unknown source workload " + cause.detail;
        case CloseReason::unknown_destination_workload:
            return "unknown destination workload " + cause.detail;
        case CloseReason::unknown_workload:
            return "unknown workload";
        case CloseReason::local_workload_timeout:
            return "failed to fetch information about local workload: " + cause.detail;
        case CloseReason::no_healthy_upstream:
            return "no healthy upstream: " + cause.detail;
        case CloseReason::route_refused:
            return cause.detail.empty() ? std::string(to_string(RefuseReason(cause.code)))
                                        : cause.detail;
        case CloseReason::unknown_service:
            return "unknown service " + cause.detail;
        case CloseReason::ip_mismatch:
            return "ip mismatch: " + cause.detail;
        case CloseReason::no_certificate:
            return "no certificate for identity " + cause.detail;
        case CloseReason::os_error:
            return errno_text(cause.code);
        case CloseReason::connect_timeout:
            return "connection timed out";
        case CloseReason::connection_limit:
            return "connection limit reached";
        case CloseReason::engine_setup_failed:
            return "cannot create HBONE session";
        case CloseReason::stream_open_failed:
            return "cannot open an HBONE stream";
        case CloseReason::http_status:
            return "http status: " + std::to_string(cause.code);
        case CloseReason::stream_refused:
            // ztunnel's `h2 failed: {h2::Error}`: a reset the peer sent, or a GOAWAY it sent.
            return std::string("h2 failed: ") +
                   (cause.detail.empty() ? "stream error received: "
                                         : "connection error received: ") +
                   h2_reason_text(uint32_t(cause.code));
        case CloseReason::policy_rejection:
            return "connection closed due to policy rejection: " + cause.detail;
        case CloseReason::dial_timeout:
            return "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008";
        case CloseReason::tls_start_failed:
            return "TLS: " + std::string(to_string(Errc(cause.code)));
        case CloseReason::engine_failed: {
            std::string text(to_string(Errc(cause.code)));
            return cause.detail.empty() ? text : text + ": " + cause.detail;
        }
        case CloseReason::peer_closed:
            return "connection closed by peer";
        case CloseReason::keepalive_timeout:
            return "HBONE keepalive or handshake timed out";
        case CloseReason::protocol_error:
            return "HBONE protocol error";
        case CloseReason::link_closed:
            return "HBONE connection closed";
        case CloseReason::link_lost:
            return "HBONE connection lost";
        case CloseReason::link_idle:
            return "idle";
        case CloseReason::stream_refused_data:
            return "HBONE stream refused data";
        case CloseReason::policy_change:
            return "connection closed due to policy change";
        case CloseReason::pod_removed:
            return "connection closed: pod removed";
        case CloseReason::shutting_down:
            return "connection closed: ztunnel shutting down";
        case CloseReason::drained:
            return "connection closed due to drain";
        case CloseReason::idle_timeout:
            return "idle timeout";
        case CloseReason::aborted:
            return "connection aborted";
        case CloseReason::out_of_pipes:
            return "out of pipe resources";
    }
    return "unknown";
}

}  // namespace zt::proxy
