#pragma once

// Why a proxied connection, a tunnel or an HBONE link ended, as a value. Code decides on the
// `CloseReason` enum; ztunnel's exact error strings (which operators and the e2e scenarios grep
// for) are produced only by `error_text`, where the access log and the metrics are written
// (proxied_connection.cc and the one debug line of a failed inbound link). A cause also carries
// ztunnel's `response_flags` value, chosen where the failure happens, as ztunnel does.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/proxy/route.h"
#include "src/telemetry/traffic_metrics.h"
#include "zt/errc.h"

namespace zt::proxy {

// CloseReason is what ended something. The groups follow the life of a connection.
enum class CloseReason : uint8_t {
    none,   // Ended cleanly: both sides finished.
    reset,  // A reset from the application or the peer: not an error in ztunnel's log.

    // Refused before anything was connected (`connection failed`, counted as refused).
    self_call,                     // A destination on one of ztunnel's own ports.
    unknown_source_workload,       // `detail`: the pod's uid.
    unknown_destination_workload,  // `detail`: the pod's uid.
    unknown_workload,              // The pod's workload is not (or no longer) in the config.
    local_workload_timeout,        // The pod's workload did not arrive within 5 s; `detail`:
                                   // the pod as ztunnel shows a WorkloadInfo, `sa.ns (name)`.
    no_healthy_upstream,           // `detail`: the destination.
    route_refused,                 // Another refusal of the route; `code`: a `RefuseReason`,
                                   // `detail`: its text (`refuse_error`), when given.
    unknown_service,               // Inbound: no port for a hostname authority; `detail` it.
    ip_mismatch,                   // Inbound: `detail` is "authority IP != local IP".
    no_certificate,                // `detail`: the identity without a certificate.

    // Failures while connecting.
    os_error,             // A socket call failed; `code`: the errno.
    connect_timeout,      // The plaintext relay's connect did not finish in time.
    connection_limit,     // The worker's relay slots are all taken.
    engine_setup_failed,  // The HBONE engines could not be created.
    stream_open_failed,   // The link refused a new CONNECT stream.
    http_status,          // The peer answered the CONNECT with `code`, not 200.
    stream_refused,       // The peer ended the CONNECT before any answer: RST_STREAM (`detail`
                          // empty) or GOAWAY (`detail` "goaway"); `code`: the HTTP/2 error code.
    policy_rejection,     // RBAC denied a new connection; `detail`: the decision's reason.

    // HBONE link failures.
    dial_timeout,         // The link's TCP connect timed out.
    tls_start_failed,     // The first TLS flight could not be made; `code`: an `Errc`.
    engine_failed,        // TLS or HTTP/2 failed; `code`: an `Errc`, `detail`: TLS's reason.
    peer_closed,          // The peer closed the link's socket.
    keepalive_timeout,    // A handshake, PING or first-request deadline passed.
    protocol_error,       // The engines failed on a tick for another reason.
    link_closed,          // The engines ended the link (GOAWAY done, nothing left).
    link_lost,            // An inbound tunnel's link failed under it.
    link_idle,            // A pooled link went unused for the pool's idle timeout.
    stream_refused_data,  // HTTP/2 would not take a tunnel's bytes.

    // Ends ztunnel imposes on open connections.
    policy_change,  // A new config denies an open inbound connection.
    pod_removed,    // The pod left the config.
    shutting_down,  // ztunnel stops.
    drained,        // The drain deadline passed.
    idle_timeout,   // The plaintext relay saw no byte for its idle timeout.
    aborted,        // The plaintext relay was aborted.
    out_of_pipes,   // The plaintext relay could not get a kernel pipe.
};

// to_string names `reason` in lowercase, for metric labels (`ztunnel_connections_refused_total`)
// and debug logs; never ztunnel's error text (see `error_text`).
std::string_view to_string(CloseReason reason);

// CloseCause is one end with what its error text needs. Make one with the factories below; a
// default one is a clean end.
struct CloseCause {
    CloseReason reason = CloseReason::none;
    telemetry::ResponseFlag flag = telemetry::ResponseFlag::none;
    int32_t code = 0;    // An errno, an HTTP status, an `Errc` or a `RefuseReason`, by `reason`.
    std::string detail;  // A uid, an identity, an address, a policy or TLS reason, by `reason`.

    // is_error says whether the end is reported as an error (with `error="..."`).
    bool is_error() const { return reason != CloseReason::none && reason != CloseReason::reset; }

    // with_flag returns this cause with ztunnel's response flag `value`.
    CloseCause with_flag(telemetry::ResponseFlag value) const;

    // of is `reason` with `detail`; the policy reasons get flag DENY.
    static CloseCause of(CloseReason reason, std::string detail = {});
    // connect_failed is a failed connect (or socket for it) with `err`: flag CONNECT.
    static CloseCause connect_failed(int err);
    // io_error is a failed send or receive with `err` on something already connected.
    static CloseCause io_error(int err);
    // refused_by_route is the route's refusal `reason` for `destination`; `error` is the access
    // log's text for it (`refuse_error`), which reasons without their own text carry.
    static CloseCause refused_by_route(RefuseReason reason, std::string destination,
                                       std::string error = {});
    static CloseCause http_refusal(uint16_t status);
    // h2_refusal is a CONNECT the peer ended before answering, by RST_STREAM or (`goaway`) by a
    // GOAWAY that left it unprocessed, with HTTP/2 `error_code`: flag CONNECT.
    static CloseCause h2_refusal(uint32_t error_code, bool goaway);
    static CloseCause policy_rejection(std::string rbac_reason);
    static CloseCause no_certificate(std::string identity);
    static CloseCause engine_failure(Errc code, std::string_view tls_reason);
    static CloseCause tls_start_failure(Errc code);
};

// error_text renders `cause` as ztunnel's error string for the access log, byte for byte what
// ztunnel writes (`Connection refused (os error 111)`, `http status: 401`, ...), or "" for a
// clean end or a reset.
std::string error_text(const CloseCause& cause);

// errno_text renders an errno as ztunnel's io errors read: `Connection refused (os error 111)`.
std::string errno_text(int err);

}  // namespace zt::proxy
