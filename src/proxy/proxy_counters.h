#pragma once

// ProxyCounters counts the proxy's protections into the worker's own shard of the families
// README.md names (src/telemetry/standard_metrics.h), each where its event happens:
//   ztunnel_connections_refused_total{reason}      a connection refused before it was proxied
//                                                  (`connection failed`), or at a limit;
//   ztunnel_tls_handshake_failures_total{reason}   a link whose TLS handshake failed;
//   ztunnel_certificate_refusals_total{reason}     a peer's certificate refused in a handshake
//                                                  (the control thread adds the store's own);
//   ztunnel_h2_glitches_total{kind}                HTTP/2 misbehaviour by a peer, by kind;
//   ztunnel_workload_waits_total{result}           a connection that waited for its pod's
//                                                  workload or certificate: found, timed_out,
//                                                  or certificate_timed_out;
//   ztunnel_accept_failures_total{error}           a listener's accept that failed;
//   ztunnel_uring_sq_waits_total                   the ring's submission queue was full;
//   ztunnel_read_buffers_exhausted_total           a read found no lent buffer free.
// Without metrics (some tests) it counts nothing.

#include <cstdint>
#include <string_view>

#include "hbone/h2_session.h"
#include "src/proxy/close_cause.h"
#include "zt/errc.h"

namespace zt::telemetry {
class StandardMetrics;
}

namespace zt::proxy {

// H2Misbehaviour is the part of a session's counters that says how its peer misbehaved, one
// field per `ztunnel_h2_glitches_total` kind.
struct H2Misbehaviour {
    uint64_t empty_data_frames = 0;
    uint64_t priority_frames = 0;
    uint64_t extra_settings = 0;  // SETTINGS frames after the first.
    uint64_t invalid_frames = 0;
    uint64_t header_lists_too_large = 0;
    uint64_t bad_requests = 0;
    uint64_t streams_reset_by_codec = 0;
    uint64_t reset_floods = 0;
    uint64_t continuation_floods = 0;
    uint64_t ack_floods = 0;
    uint64_t budgets_spent = 0;

    // of extracts the misbehaviour from `counters`.
    static H2Misbehaviour of(const hbone::H2Counters& counters);

    // total is the sum of every kind (0 for a well-behaved peer).
    uint64_t total() const;
};

class ProxyCounters {
public:
    ProxyCounters(telemetry::StandardMetrics* metrics, size_t shard)
        : metrics_(metrics), shard_(shard) {}

    // connection_refused counts one connection refused for `reason` (a `CloseReason` name, or
    // "draining" for one accepted while its listener closed).
    void connection_refused(std::string_view reason);

    // workload_wait counts one connection that waited for its pod's workload or certificate, by
    // `result` (`found`, `timed_out` or `certificate_timed_out`).
    void workload_wait(std::string_view result);

    // handshake_failed counts a TLS handshake ended by `cause`, and a certificate refusal when
    // the cause is the peer's certificate.
    void handshake_failed(const CloseCause& cause);

    // h2_misbehaved counts what `now` adds to `before`, kind by kind.
    void h2_misbehaved(const H2Misbehaviour& before, const H2Misbehaviour& now);

    // accept_failed counts a listener's accept that failed with errno `err`.
    void accept_failed(int err);

    // sq_waits adds `waits` times the worker's submission queue was full.
    void sq_waits(uint64_t waits);

    // read_buffers_exhausted counts a read that found every lent buffer in use.
    void read_buffers_exhausted();

private:
    telemetry::StandardMetrics* metrics_;
    size_t shard_;
};

// handshake_failure_reason is the `reason` label of a handshake that ended by `cause`: the TLS
// error (`tls_handshake`, `tls_alpn`, `cert_unknown_ca`, ...), `timed_out`, `eof` or `io_error`.
std::string_view handshake_failure_reason(const CloseCause& cause);

// is_certificate_refusal says whether `code` is a refusal of a peer's certificate.
bool is_certificate_refusal(Errc code);

}  // namespace zt::proxy
