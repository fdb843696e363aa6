#pragma once

// StandardMetrics registers every family ztunnel's dashboards and docs/contract.md §7 name, in one
// place, so that names, labels and HELP texts are defined once: the traffic group, `istio_build`,
// `process_open_fds`/`process_max_fds`, our config and pod metrics, and the counters for limits
// and protections (connections refused, TLS handshake failures, HTTP/2 glitches,
// certificate refusals, admin-server refusals). Components get references to the families here
// and count into their own shard.

#include <string>
#include <string_view>

#include "src/telemetry/metrics.h"
#include "src/telemetry/traffic_metrics.h"

namespace zt::telemetry {

// StandardMetricsOptions configures the registry at startup.
struct StandardMetricsOptions {
    size_t worker_count = 1;    // data-plane threads; shard i belongs to worker i
    std::string istio_version;  // `ISTIO_META_ISTIO_VERSION`; empty renders `unknown`
    RegistryLimits limits;      // series bound per family and shard
};

// StandardMetrics owns the registry. Shards `0 .. worker_count-1` belong to the workers;
// `control_shard()` belongs to the control thread (config reloads, admin servers).
class StandardMetrics {
    // Declared first: every family reference below is initialised from `registry_`.
    size_t control_shard_;
    Registry registry_;

public:
    explicit StandardMetrics(const StandardMetricsOptions& options);

    StandardMetrics(const StandardMetrics&) = delete;
    StandardMetrics& operator=(const StandardMetrics&) = delete;

    size_t control_shard() const { return control_shard_; }

    Registry& registry() { return registry_; }

    // render is the body of a scrape in `format`.
    std::string render(Format format) const { return registry_.render(format); }

    // Istio's traffic counters (the proxy counts through `ConnectionMetrics`).
    TrafficMetrics& traffic;

    // ztunnel_config_reloads_total{result="success|failure"}, counted on the control shard.
    ShardedFamily& config_reloads;
    // ztunnel_config_last_success_timestamp_seconds: Unix time of the last applied config.
    GaugeFamily& config_last_success;
    // ztunnel_pods{state="pending|up"}.
    GaugeFamily& pods;
    // ztunnel_nghttp2_protection{protection}: 1 when the linked nghttp2 has that protection
    // (detected by symbol at start), 0 when not.
    GaugeFamily& nghttp2_protections;
    // Memory pressure (src/proxy/memory_pressure.h), set by the control thread each second:
    // ztunnel_memory_pressure is 1 while new work is shed; ztunnel_memory_working_set_bytes and
    // ztunnel_memory_limit_bytes are its cgroup's working set and limit (0: no limit).
    GaugeFamily& memory_pressure;
    GaugeFamily& memory_working_set;
    GaugeFamily& memory_limit;

    // Limits and protections, each counted where it is hit, by `reason` (or `kind`); the
    // workers count through src/proxy/proxy_counters.h.
    // ztunnel_connections_refused_total{reason}: e.g. `self_call`, `ip_mismatch`,
    // `connection_limit`, `draining`.
    ShardedFamily& connections_refused;
    // ztunnel_tls_handshake_failures_total{reason}: e.g. `tls_handshake`, `timed_out`, `eof`.
    ShardedFamily& tls_handshake_failures;
    // ztunnel_h2_glitches_total{kind}: HTTP/2 misbehaviour by peers, e.g. `priority_frame`.
    ShardedFamily& h2_glitches;
    // ztunnel_certificate_refusals_total{reason}: peers' certificates refused in handshakes
    // (workers), local ones the store refused or could not get (control thread).
    ShardedFamily& certificate_refusals;
    // ztunnel_certificate_events_total{event}: the local certificates' life, counted on the
    // control shard: `issued`, `issue_failed`, `loaded` (file mode), `expired` (unreplaced),
    // `roots_mismatch` (a new root bundle no longer verifies an identity's leaf).
    ShardedFamily& certificate_events;
    // ztunnel_http_requests_refused_total{server,reason}: admin/metrics/readiness refusals.
    ShardedFamily& http_refused;
    // ztunnel_workload_waits_total{result}: connections of a pod whose workload was not known
    // yet, or whose certificate was not published yet, that waited for it (up to 5 s): `found`
    // (it arrived, the connection went on), `timed_out` (closed with ztunnel's "failed to fetch
    // information about local workload") or `certificate_timed_out` (the workload came, the
    // certificate did not: closed with "no certificate for identity ...").
    ShardedFamily& workload_waits;
    // ztunnel_accept_failures_total{error}: a listener's accept that failed (`EMFILE`, `ENFILE`,
    // `ENOMEM`, `ENOBUFS`, `other`); the listener backs off before accepting again.
    ShardedFamily& accept_failures;
    // ztunnel_uring_sq_waits_total: a worker found its submission queue full and waited for
    // completions before submitting (uring::Ring::sq_waits_total), added up each tick.
    ShardedFamily& uring_sq_waits;
    // ztunnel_read_buffers_exhausted_total: a read found every lent buffer of its worker in use
    // (-ENOBUFS) and was re-armed into the reader's own buffer.
    ShardedFamily& read_buffers_exhausted;

    // record_config_reload counts one reload result from the control thread and, on success,
    // sets the last-success timestamp to `unix_seconds`.
    void record_config_reload(bool success, double unix_seconds);

    // set_pods sets `ztunnel_pods` for both states.
    void set_pods(uint64_t pending, uint64_t up);

    // set_log_dropped_source makes `ztunnel_log_lines_dropped_total` read `*counter` at scrape
    // time (the log queue's drop counter). Call once at startup.
    void set_log_dropped_source(const void* queue, CallbackFamily::Read read);

    // set_verify_cache_sources makes `ztunnel_certificate_verify_cache_{hits,misses,evictions}
    // _total` call `hits`, `misses` and `evictions` at scrape time (certs/'s process-wide
    // verification-cache totals; evictions are the cache's limit being hit). Call once.
    void set_verify_cache_sources(CallbackFamily::Read hits, CallbackFamily::Read misses,
                                  CallbackFamily::Read evictions);
};

// count_open_fds counts this process's open descriptors (`/proc/self/fd`), or -1 if unreadable.
int64_t count_open_fds();

// max_fds returns the soft RLIMIT_NOFILE, or -1 if unreadable.
int64_t max_fds();

}  // namespace zt::telemetry
