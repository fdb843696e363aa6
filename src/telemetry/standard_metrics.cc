// standard_metrics.cc registers the families every scrape carries, with Istio's names and HELP
// texts where Istio defines them and `(unstable)` on ours. The process gauges are read from
// /proc and getrlimit at scrape time; nothing here runs on the data path.

#include "src/telemetry/standard_metrics.h"

#include <dirent.h>
#include <sys/resource.h>

namespace zt::telemetry {

namespace {

double read_open_fds(const void*) {
    return double(count_open_fds());
}

double read_max_fds(const void*) {
    return double(max_fds());
}

double read_one(const void*) {
    return 1;
}

}  // namespace

int64_t count_open_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) {
        return -1;
    }
    int64_t count = 0;
    while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] != '.') {
            ++count;
        }
    }
    closedir(dir);
    // The directory stream itself held one descriptor while we counted.
    return count - 1;
}

int64_t max_fds() {
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return -1;
    }
    return limit.rlim_cur == RLIM_INFINITY ? INT64_MAX : int64_t(limit.rlim_cur);
}

StandardMetrics::StandardMetrics(const StandardMetricsOptions& options)
    : control_shard_(options.worker_count)
    , registry_(options.worker_count + 1, options.limits)
    , traffic(registry_.add(std::make_unique<TrafficMetrics>(options.worker_count + 1,
                                                             options.limits.max_series_per_shard)))
    , config_reloads(registry_.counter({"ztunnel_config_reloads",
                                        "Config file loads by result",
                                        {"result"},
                                        Stability::unstable}))
    , config_last_success(registry_.gauge({"ztunnel_config_last_success_timestamp_seconds",
                                           "Unix time of the last successfully applied config",
                                           {},
                                           Stability::unstable}))
    , pods(registry_.gauge({"ztunnel_pods", "Local pods by state", {"state"}, Stability::unstable}))
    , nghttp2_protections(registry_.gauge({"ztunnel_nghttp2_protection",
                                           "Whether the linked nghttp2 has this protection "
                                           "(1) or not (0), detected by symbol at start",
                                           {"protection"},
                                           Stability::unstable}))
    , memory_pressure(registry_.gauge({"ztunnel_memory_pressure",
                                       "1 while new connections are shed because the working "
                                       "set is near the cgroup's memory limit, else 0",
                                       {},
                                       Stability::unstable}))
    , memory_working_set(registry_.gauge({"ztunnel_memory_working_set_bytes",
                                          "The cgroup's memory usage minus inactive page cache",
                                          {},
                                          Stability::unstable}))
    , memory_limit(registry_.gauge({"ztunnel_memory_limit_bytes",
                                    "The cgroup's memory limit (0: none)",
                                    {},
                                    Stability::unstable}))
    , connections_refused(registry_.counter({"ztunnel_connections_refused",
                                             "Connections refused before they were proxied "
                                             "(loops, unknown workloads, routing, a limit), "
                                             "by reason",
                                             {"reason"},
                                             Stability::unstable}))
    , tls_handshake_failures(registry_.counter({"ztunnel_tls_handshake_failures",
                                                "TLS handshakes that failed, by reason",
                                                {"reason"},
                                                Stability::unstable}))
    , h2_glitches(registry_.counter({"ztunnel_h2_glitches",
                                     "HTTP/2 misbehaviour by peers, by kind",
                                     {"kind"},
                                     Stability::unstable}))
    , certificate_refusals(registry_.counter({"ztunnel_certificate_refusals",
                                              "Certificates refused: peers' in TLS handshakes, "
                                              "and local ones not loaded or not issued, by "
                                              "reason",
                                              {"reason"},
                                              Stability::unstable}))
    , certificate_events(registry_.counter({"ztunnel_certificate_events",
                                            "Local certificates issued, loaded, expired or made "
                                            "unavailable, by event",
                                            {"event"},
                                            Stability::unstable}))
    , http_refused(registry_.counter({"ztunnel_http_requests_refused",
                                      "Admin, metrics and readiness requests refused at a limit",
                                      {"server", "reason"},
                                      Stability::unstable}))
    , workload_waits(registry_.counter({"ztunnel_workload_waits",
                                        "Connections of pods whose workload or certificate was "
                                        "not there yet that waited for it (up to 5 s), by "
                                        "result: found, timed_out or certificate_timed_out",
                                        {"result"},
                                        Stability::unstable}))
    , accept_failures(registry_.counter({"ztunnel_accept_failures",
                                         "Accepts on the proxy's listeners that failed "
                                         "(descriptors or memory exhausted), by error",
                                         {"error"},
                                         Stability::unstable}))
    , uring_sq_waits(registry_.counter({"ztunnel_uring_sq_waits",
                                        "Times a worker's io_uring submission queue was full "
                                        "and the worker waited for completions",
                                        {},
                                        Stability::unstable}))
    , read_buffers_exhausted(registry_.counter({"ztunnel_read_buffers_exhausted",
                                                "Reads that found every lent read buffer in use "
                                                "and read into their own buffer instead",
                                                {},
                                                Stability::unstable})) {
    // istio_build is a constant 1 whose labels carry the information, as in ztunnel.
    GaugeFamily& build = registry_.gauge(
            {"istio_build", "Istio component build info", {"component", "tag"}, Stability::stable});
    build.set({"ztunnel", options.istio_version.empty() ? std::string_view("unknown")
                                                        : std::string_view(options.istio_version)},
              read_one(nullptr));
    registry_.callback(
            {"process_open_fds", "Number of open file descriptors", {}, Stability::stable},
            MetricType::gauge, &read_open_fds, nullptr);
    registry_.callback(
            {"process_max_fds", "Maximum number of open file descriptors", {}, Stability::stable},
            MetricType::gauge, &read_max_fds, nullptr);
    set_pods(0, 0);
    memory_pressure.set({}, 0);
}

void StandardMetrics::record_config_reload(bool success, double unix_seconds) {
    config_reloads.cell(control_shard_, {success ? "success" : "failure"})->increment();
    if (success) {
        config_last_success.set({}, unix_seconds);
    }
}

void StandardMetrics::set_pods(uint64_t pending, uint64_t up) {
    pods.set({"pending"}, double(pending));
    pods.set({"up"}, double(up));
}

void StandardMetrics::set_log_dropped_source(const void* queue, CallbackFamily::Read read) {
    registry_.callback({"ztunnel_log_lines_dropped",
                        "Log lines dropped because the log queue "
                        "was full",
                        {},
                        Stability::unstable},
                       MetricType::counter, read, queue);
}

void StandardMetrics::set_verify_cache_sources(CallbackFamily::Read hits,
                                               CallbackFamily::Read misses,
                                               CallbackFamily::Read evictions) {
    registry_.callback({"ztunnel_certificate_verify_cache_hits",
                        "Peer certificate chains judged "
                        "from the verification cache (path validation skipped, time checked)",
                        {},
                        Stability::unstable},
                       MetricType::counter, hits, nullptr);
    registry_.callback({"ztunnel_certificate_verify_cache_misses",
                        "Peer certificate chains "
                        "path-validated in full",
                        {},
                        Stability::unstable},
                       MetricType::counter, misses, nullptr);
    registry_.callback({"ztunnel_certificate_verify_cache_evictions",
                        "Verified chains dropped "
                        "from a full verification cache",
                        {},
                        Stability::unstable},
                       MetricType::counter, evictions, nullptr);
}

}  // namespace zt::telemetry
