// ops_server runs the operations components the way `ztunnel run` will wire them, without the
// proxy: the log queue as the sink (LOG_FORMAT, RUST_LOG), the standard metrics with scripted
// traffic counted from two worker threads (and their access-log lines), the three operator
// servers on loopback, readiness, and the drain on SIGTERM, SIGINT or POST /quitquitquit. Script
// tests drive it with curl and promtool. It is also the reference control loop for the lead.
//
// Usage: ops_server --port-file FILE --ready-file FILE [--drain-ms N] [--inflight-ms N]
// The port file gets `admin metrics readiness` ports once listening. Readiness stays pending
// (`state manager`) until the ready file exists. A simulated transfer in flight at shutdown ends
// `--inflight-ms` after the drain starts (default: never); the process exits 0 when it ends or
// at the drain deadline, whichever comes first.

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/admin/logging.h"
#include "src/admin/operator_servers.h"
#include "src/admin/readiness.h"
#include "src/config/dump.h"
#include "src/lifecycle/control_loop.h"
#include "src/lifecycle/process.h"
#include "src/run_options.h"
#include "src/telemetry/access_log.h"
#include "src/telemetry/connection_result.h"
#include "src/telemetry/log_queue.h"
#include "src/telemetry/standard_metrics.h"
#include "zt/clock.h"
#include "zt/log.h"

using namespace zt;

namespace {

// run_worker plays one data-plane worker: it counts connections into its own shard and writes
// their access-log lines, as the proxy will.
void run_worker(telemetry::StandardMetrics& metrics, size_t shard) {
    telemetry::TrafficLabels labels;
    labels.reporter = telemetry::Reporter::source;
    labels.source_workload = "curl";
    labels.source_workload_namespace = "default";
    labels.source_principal = "spiffe://cluster.local/ns/default/sa/curl";
    labels.destination_service = "echo.default.svc.cluster.local";
    labels.destination_workload = "echo";
    labels.destination_workload_namespace = "default";
    labels.destination_principal = "spiffe://cluster.local/ns/default/sa/echo";
    labels.connection_security_policy = telemetry::SecurityPolicy::mutual_tls;
    // What only the proxy knows; namespaces, identities, service and direction come from the
    // labels, as in ztunnel.
    telemetry::ConnectionLog log;
    log.src_addr = "198.18.1.2:40000";
    log.src_workload = "curl-1";
    log.dst_addr = "198.18.2.3:15008";
    log.dst_hbone_addr = "198.18.2.3:8080";
    log.dst_workload = "echo-1";
    // Worker 0: two good connections of 1000 request / 2000 response bytes, 3 ms each.
    // Worker 1: one good connection, one denied by policy.
    FakeClock clock;
    int good = shard == 0 ? 2 : 1;
    for (int i = 0; i < good; ++i) {
        telemetry::ConnectionResult conn(metrics.traffic, shard, labels, log, clock);
        conn.add_request_bytes(1000);
        conn.add_response_bytes(2000);
        clock.advance_ns(3 * kNanosPerMilli);
        conn.record();
    }
    if (shard == 1) {
        telemetry::ConnectionResult conn(metrics.traffic, shard, labels, log, clock);
        conn.record(telemetry::ResponseFlag::deny,
                    "connection closed due to policy rejection: allow policies exist, but none "
                    "allowed");
    }
}

std::string config_dump() {
    // The real renderer over empty inputs: the document a ztunnel shows before its first config.
    config::DumpInputs inputs;
    inputs.version = ZT_VERSION;
    inputs.git_revision = ZT_GIT_REVISION;
    inputs.status.path = "/etc/ztunnel/config.json";
    return config::render_config_dump(inputs);
}

}  // namespace

int main(int argc, char** argv) {
    const char* port_file = nullptr;
    const char* ready_file = nullptr;
    int64_t drain_ns = -1;
    int64_t inflight_ns = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--port-file") == 0) {
            port_file = argv[i + 1];
        } else if (std::strcmp(argv[i], "--ready-file") == 0) {
            ready_file = argv[i + 1];
        } else if (std::strcmp(argv[i], "--drain-ms") == 0) {
            drain_ns = std::atoll(argv[i + 1]) * kNanosPerMilli;
        } else if (std::strcmp(argv[i], "--inflight-ms") == 0) {
            inflight_ns = std::atoll(argv[i + 1]) * kNanosPerMilli;
        }
    }
    if (port_file == nullptr || ready_file == nullptr) {
        std::fprintf(stderr, "usage: ops_server --port-file F --ready-file F [--drain-ms N]\n");
        return 2;
    }

    // Process setup, in the order `ztunnel run` needs it: signals blocked before any thread.
    lifecycle::ignore_sigpipe();
    (void)lifecycle::raise_nofile_limit();
    auto signals = lifecycle::ShutdownSignals::open();
    if (!signals) {
        std::fprintf(stderr, "ops_server: signalfd failed\n");
        return 1;
    }
    if (drain_ns < 0) {
        Environment env;
        for (const char* name :
             {"CONNECTION_TERMINATION_DEADLINE", "TERMINATION_GRACE_PERIOD_SECONDS"}) {
            if (const char* value = std::getenv(name)) {
                env.emplace_back(name, value);
            }
        }
        RunOptionsError error;
        auto from_env = default_drain_timeout_ns(env, error);
        if (!from_env) {
            std::fprintf(stderr,
                         "ops_server: bad CONNECTION_TERMINATION_DEADLINE or "
                         "TERMINATION_GRACE_PERIOD_SECONDS\n");
            return 1;
        }
        drain_ns = *from_env;
    }

    // Logging: RUST_LOG filter, LOG_FORMAT, queued sink.
    const char* rust_log = std::getenv("RUST_LOG");
    auto filter = log::Filter::parse(rust_log != nullptr ? rust_log : "info");
    if (!filter) {
        std::fprintf(stderr, "ops_server: bad RUST_LOG\n");
        return 1;
    }
    log::set_filter(*filter);
    const char* log_format = std::getenv("LOG_FORMAT");
    telemetry::LogQueueOptions queue_options;
    queue_options.format = telemetry::log_format_from_env(log_format ? log_format : "");
    telemetry::LogQueue queue(queue_options);
    telemetry::LogQueue::install(&queue);

    const char* istio_version = std::getenv("ISTIO_META_ISTIO_VERSION");
    telemetry::StandardMetrics metrics({2, istio_version ? istio_version : "", {}});
    metrics.set_log_dropped_source(&queue, &telemetry::LogQueue::read_dropped);
    admin::Readiness readiness;
    readiness.block("state manager");
    admin::LogLevels levels(*filter);

    // The data plane as the loop sees it: one transfer in flight when the drain starts.
    int64_t drain_started_ns = -1;
    lifecycle::ControlHooks control_hooks;
    control_hooks.start_drain = [&drain_started_ns] {
        drain_started_ns = monotonic_ns();
    };
    control_hooks.drained = [&drain_started_ns, inflight_ns] {
        return inflight_ns >= 0 && monotonic_ns() - drain_started_ns >= inflight_ns;
    };
    control_hooks.force_close = [] {
        log::warn("ops_server", "closing the transfer still in flight");
    };
    bool ready_released = false;
    control_hooks.tick = [&] {
        if (!ready_released && ::access(ready_file, F_OK) == 0) {
            readiness.release("state manager");
            ready_released = true;
        }
    };
    lifecycle::ControlLoop loop({drain_ns, 20}, *signals, readiness, std::move(control_hooks));
    loop.set_log_queue(&queue);

    admin::AdminHooks hooks;
    hooks.config_dump = config_dump;
    hooks.shutdown = [&loop] {
        loop.request_shutdown();
    };
    admin::OperatorOptions options;
    options.admin_addr = "127.0.0.1:0";
    options.admin_addr_v6 = "[::1]:0";
    options.metrics_addr = "127.0.0.1:0";
    options.readiness_addr = "127.0.0.1:0";
    auto servers = admin::OperatorServers::start(options, metrics, readiness, levels, hooks);
    if (!servers) {
        std::fprintf(stderr, "ops_server: cannot listen\n");
        return 1;
    }
    loop.set_servers(servers->get());

    std::vector<std::thread> workers;
    for (size_t w = 0; w < 2; ++w) {
        workers.emplace_back(run_worker, std::ref(metrics), w);
    }
    for (auto& worker : workers) {
        worker.join();
    }
    metrics.record_config_reload(true, double(unix_ns()) / double(kNanosPerSecond));
    metrics.set_pods(0, 2);

    {
        std::string tmp = std::string(port_file) + ".tmp";
        FILE* f = std::fopen(tmp.c_str(), "w");
        if (f == nullptr) {
            return 1;
        }
        std::fprintf(f, "%u %u %u\n", (*servers)->admin_port(), (*servers)->metrics_port(),
                     (*servers)->readiness_port());
        std::fclose(f);
        std::rename(tmp.c_str(), port_file);  // the script never sees a half-written file
    }
    log::info("ops_server", "listening");

    int rc = loop.run();
    telemetry::LogQueue::uninstall();
    return rc;
}
