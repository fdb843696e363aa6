// app.cc is the control thread of `ztunnel run`: start-up in a fixed order (signals, logs,
// metrics, config, workers, operator servers), one poll() loop that serves the operator ports,
// drives the config watcher, flushes the log queue and keeps readiness current, and the shutdown
// sequence (stop accepting, drain up to the deadline, force-close, exit 0). It never touches a
// data-path connection: workers own those.

#include "src/app.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "certs/issue.h"
#include "certs/store.h"
#include "hbone/h2_session.h"
#include "hbone/tls_session.h"
#include "src/admin/logging.h"
#include "src/admin/operator_servers.h"
#include "src/admin/pods_wait.h"
#include "src/admin/readiness.h"
#include "src/config/dump.h"
#include "src/config/load.h"
#include "src/config/pods_view.h"
#include "src/config/watcher.h"
#include "src/dns/settings.h"
#include "src/dns/telemetry.h"
#include "src/lifecycle/control_loop.h"
#include "src/lifecycle/process.h"
#include "src/proxy/memory_pressure.h"
#include "src/proxy/pod_sockets.h"
#include "src/proxy/tls_store.h"
#include "src/proxy/worker.h"
#include "src/state/store.h"
#include "src/telemetry/log_queue.h"
#include "src/telemetry/standard_metrics.h"
#include "uring/ring.h"
#include "zt/clock.h"
#include "zt/log.h"
#include "zt/unique_fd.h"

namespace zt {

namespace {

// PodReadiness keeps the readiness tracker's `pod ...` entries equal to a computed set.
class PendingSet {
public:
    explicit PendingSet(admin::Readiness& readiness) : readiness_(readiness) {}

    void update(const std::set<std::string>& wanted) {
        for (const std::string& name : current_) {
            if (wanted.count(name) == 0) {
                readiness_.release(name);
            }
        }
        for (const std::string& name : wanted) {
            if (current_.count(name) == 0) {
                readiness_.block(name);
            }
        }
        current_ = wanted;
    }

private:
    admin::Readiness& readiness_;
    std::set<std::string> current_;
};

struct App {
    explicit App(const RunOptions& run_options) : options(run_options) {}

    const RunOptions& options;
    std::unique_ptr<telemetry::LogQueue> log_queue;
    std::unique_ptr<telemetry::StandardMetrics> metrics;
    admin::Readiness readiness;
    std::unique_ptr<PendingSet> pending;
    state::SnapshotStore snapshots;
    std::shared_ptr<const state::Snapshot> published;

    // AppliedConfig is one published snapshot with its file's sha256 and its generation (the
    // count of snapshots applied); `/pods` maps a worker's view to the content it answers for.
    struct AppliedConfig {
        std::shared_ptr<const state::Snapshot> snapshot;
        std::string sha256;
        uint64_t generation = 0;
    };

    std::deque<AppliedConfig> applied;  // The last few, newest last.
    std::unique_ptr<config::Watcher> watcher;
    uint64_t reloads_success_seen = 0;
    uint64_t reloads_failure_seen = 0;
    std::unique_ptr<certs::CertStore> cert_store;
    certs::StoreStats cert_stats_exported;
    proxy::TlsStore tls_store;
    std::vector<certs::Identity> local_identities;
    std::unique_ptr<proxy::PodSockets> pod_sockets;    // Outlives the workers (declared before).
    proxy::ShedSignal shed_signal;                     // Outlives the workers (declared before).
    std::unique_ptr<proxy::MemoryWatch> memory_watch;  // Null: --memory-shed-ratio 0.
    dns::ServerSettings dns_settings;                  // Every pod's DNS config (outlives them).
    dns::DnsMetrics* dns_metrics = nullptr;            // Owned by `metrics`' registry.
    // status_fd is the eventfd the workers bump after publishing their pods' status, so a
    // waiting `GET /pods` ends as soon as the status it waits for exists (outlives the workers).
    UniqueFd status_fd;
    std::vector<std::unique_ptr<proxy::Worker>> workers;
    std::unique_ptr<admin::LogLevels> log_levels;
    std::unique_ptr<admin::OperatorServers> servers;
    std::unique_ptr<lifecycle::ControlLoop> loop;
    // held_stale says a waiting `GET /pods` may be over (a worker published, a reload ended).
    bool held_stale = false;

    int start(lifecycle::ShutdownSignals& signals);
    bool start_certificates();
    void track_identities();
    void certificate_work();
    void export_store_counters();
    void log_nghttp2_protections();
    void start_dns(proxy::WorkerShared& shared);
    std::string config_dump();
    std::string pods_view(const std::vector<std::string>& only);
    admin::PodsProgress pods_progress();
    void after_config_work();
    void update_readiness();
    void tick();
    uint64_t open_connections() const;
    void stop_workers();
};

int App::start(lifecycle::ShutdownSignals& signals) {
    auto filter = log::Filter::parse(options.log_level);
    if (!filter) {
        log::error("app", "invalid log level", {log::Field::str("spec", options.log_level)});
        return 1;
    }
    log::set_filter(*filter);
    telemetry::LogQueueOptions queue_options;
    queue_options.format =
            options.log_json ? telemetry::LogFormat::json : telemetry::LogFormat::plain;
    log_queue = std::make_unique<telemetry::LogQueue>(queue_options);
    telemetry::LogQueue::install(log_queue.get());
    log_levels = std::make_unique<admin::LogLevels>(*filter);

    auto nofile = lifecycle::raise_nofile_limit();
    if (!nofile) {
        log::warn("app", "cannot raise RLIMIT_NOFILE");
    }

    telemetry::StandardMetricsOptions metric_options;
    metric_options.worker_count = size_t(options.workers);
    if (const char* version = ::getenv("ISTIO_META_ISTIO_VERSION")) {
        metric_options.istio_version = version;
    }
    metrics = std::make_unique<telemetry::StandardMetrics>(metric_options);
    log_nghttp2_protections();
    metrics->set_log_dropped_source(log_queue.get(), &telemetry::LogQueue::read_dropped);
    metrics->set_verify_cache_sources(
            [](const void*) { return double(certs::verify_cache_hits_total()); },
            [](const void*) { return double(certs::verify_cache_misses_total()); },
            [](const void*) { return double(certs::verify_cache_evictions_total()); });

    pending = std::make_unique<PendingSet>(readiness);
    readiness.block("state manager");

    config::WatcherOptions watcher_options;
    watcher_options.path = options.config_path;
    auto created = config::Watcher::create(watcher_options, snapshots, system_clock());
    if (!created) {
        log::error("app", "cannot watch the config file",
                   {log::Field::str("path", options.config_path)});
        return 1;
    }
    watcher = std::move(*created);

    if (!start_certificates()) {
        return 1;
    }
    // The config's identities and their certificates before any worker exists: a worker opens a
    // pod's listeners as soon as it sees the snapshot, and a connection accepted before the
    // control thread's first certificate work (file mode reads the files there) failed with
    // "no certificate" right after a restart.
    after_config_work();

    proxy::WorkerOptions worker_options;
    worker_options.trust_domain = options.trust_domain;
    worker_options.pool_streams_max = options.pool_streams_max;
    worker_options.pending_handshakes_max = options.limits.pending_handshakes;
    worker_options.hbone_connections_max = options.limits.hbone_connections;
    worker_options.peer_connections_max = options.limits.peer_connections;
    worker_options.peer_streams_max = options.limits.peer_streams;
    worker_options.fd_reserve = options.limits.fd_reserve;
    auto sockets = proxy::InPodSockets::create(options.packet_mark);
    if (!sockets) {
        log::error("app", "cannot open our own network namespace",
                   {log::Field::display("error", to_string(sockets.error().code))});
        return 1;
    }
    pod_sockets = std::move(*sockets);
    proxy::WorkerShared shared;
    shared.snapshots = &snapshots;
    shared.tls = &tls_store;
    shared.metrics = metrics.get();
    shared.sockets = pod_sockets.get();
    status_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!status_fd) {
        log::error("app", "cannot create an eventfd", {log::Field::num("errno", uint64_t(errno))});
        return 1;
    }
    shared.status_fd = status_fd.get();
    if (options.dns_capture) {
        start_dns(shared);
    }
    if (options.limits.memory_shed_ratio > 0) {
        proxy::PressureThresholds thresholds{options.limits.memory_shed_ratio,
                                             options.limits.memory_resume_ratio};
        memory_watch = std::make_unique<proxy::MemoryWatch>(
                proxy::MemoryWatch::for_this_process(thresholds, shed_signal, metrics.get()));
        shared.shed = &shed_signal;
    }
    for (int i = 0; i < options.workers; ++i) {
        auto worker = std::make_unique<proxy::Worker>(i, worker_options, shared);
        auto started = worker->start();
        if (!started) {
            std::string_view hint = uring::setup_hint(started.error().code);
            log::error("app", "cannot start a data-plane worker",
                       {log::Field::display("error", to_string(started.error().code)),
                        log::Field::str("hint", hint)});
            return 1;
        }
        workers.push_back(std::move(worker));
    }

    // The loop comes first so `/quitquitquit` can ask it for the same graceful drain as SIGTERM.
    lifecycle::ControlLoopOptions loop_options;
    loop_options.drain_timeout_ns = options.drain_timeout_ns;
    lifecycle::ControlHooks control;
    control.start_drain = [this] {
        log::info("app", "shutting down: draining connections",
                  {log::Field::num("deadline_ms",
                                   uint64_t(options.drain_timeout_ns / kNanosPerMilli))});
        for (auto& worker : workers) {
            worker->begin_drain();
        }
    };
    control.drained = [this] {
        return open_connections() == 0;
    };
    control.force_close = [this] {
        log::warn("app", "drain deadline passed; closing remaining connections",
                  {log::Field::num("connections", open_connections())});
        for (auto& worker : workers) {
            worker->force_close();
        }
    };
    control.tick = [this] {
        tick();
    };
    control.reload = [this] {
        // Forced: even unchanged bytes are parsed and applied again, as a daemon's SIGHUP does.
        (void)watcher->reload_now();
        after_config_work();
    };
    loop = std::make_unique<lifecycle::ControlLoop>(loop_options, signals, readiness,
                                                    std::move(control));
    loop->set_log_queue(log_queue.get());
    if (watcher->fd() >= 0) {
        loop->watch_fd(watcher->fd(), POLLIN, [this](short) { watcher->process(); });
    }
    loop->watch_fd(status_fd.get(), POLLIN, [this](short) {
        uint64_t count;
        while (::read(status_fd.get(), &count, sizeof count) == sizeof count) {
        }
        held_stale = true;
    });

    admin::OperatorOptions server_options;
    server_options.admin_addr = options.admin_addr;
    server_options.metrics_addr = options.metrics_addr;
    server_options.readiness_addr = options.readiness_addr;
    admin::AdminHooks hooks;
    hooks.shutdown = [this] {
        loop->request_shutdown();
    };
    hooks.config_dump = [this] {
        return config_dump();
    };
    hooks.pods = [this](const std::vector<std::string>& only) {
        return pods_view(only);
    };
    hooks.pods_progress = [this] {
        return pods_progress();
    };
    auto started_servers = admin::OperatorServers::start(server_options, *metrics, readiness,
                                                         *log_levels, std::move(hooks));
    if (!started_servers) {
        log::error("app", "cannot start the admin, metrics and readiness servers",
                   {log::Field::str("admin", options.admin_addr),
                    log::Field::str("metrics", options.metrics_addr),
                    log::Field::str("readiness", options.readiness_addr),
                    log::Field::display("error", to_string(started_servers.error().code))});
        return 1;
    }
    servers = std::move(*started_servers);
    loop->set_servers(servers.get());
    log::info("app", "ztunnel started",
              {log::Field::num("workers", uint64_t(options.workers)),
               log::Field::str("config", options.config_path),
               log::Field::str("node", options.node_name)});
    after_config_work();
    return 0;
}

// start_dns prepares every pod's DNS proxy (DNS capture on): the shared config, with ztunnel's
// resolv.conf read once here and never on a worker, and the DNS metrics, a shard per worker.
void App::start_dns(proxy::WorkerShared& shared) {
    dns_settings = dns::server_settings(options);
    for (const std::string& warning : dns_settings.warnings) {
        log::warn("dns", "DNS proxy", {log::Field::str("warning", warning)});
    }
    std::string upstreams;
    for (const state::SocketAddr& upstream : dns_settings.config.forwarder.upstreams) {
        upstreams += (upstreams.empty() ? "" : ",") + upstream.to_string();
    }
    log::info("dns", "DNS proxy on 15053 in every pod", {log::Field::str("upstreams", upstreams)});
    dns_metrics = &metrics->registry().add(std::make_unique<dns::DnsMetrics>(
            metrics->registry().shard_count(), telemetry::RegistryLimits{}.max_series_per_shard));
    shared.dns = &dns_settings.config;
    shared.dns_metrics = dns_metrics;
}

// log_nghttp2_protections says which of nghttp2's optional protections the linked library has
// (hbone/ detects them by symbol: Debian backports them under an unchanged version number, and
// without them a peer's rapid reset or CONTINUATION flood is bounded only by our own guards).
void App::log_nghttp2_protections() {
    bool reset_rate_limit = hbone::h2_has_reset_rate_limit();
    bool max_continuations = hbone::h2_has_max_continuations();
    metrics->nghttp2_protections.set({"stream_reset_rate_limit"}, reset_rate_limit ? 1 : 0);
    metrics->nghttp2_protections.set({"max_continuations"}, max_continuations ? 1 : 0);
    auto yes_no = [](bool on) {
        return std::string_view(on ? "yes" : "no");
    };
    auto level = reset_rate_limit && max_continuations ? log::Level::info : log::Level::warn;
    log::write(level, "app", "nghttp2 protections",
               {log::Field::display("version", nghttp2_version(0)->version_str),
                log::Field::display("stream_reset_rate_limit", yes_no(reset_rate_limit)),
                log::Field::display("max_continuations", yes_no(max_continuations))});
}

// start_certificates opens the certificate store: local CA mode signs with the CA of
// `ztunnel ca init DIR`, file mode reads what an agent writes into --cert-dir (docs/contract.md
// §4).
bool App::start_certificates() {
    if (!options.cert_dir.empty()) {
        cert_store = certs::CertStore::with_files(options.cert_dir, system_clock());
        return true;
    }
    std::string pems[3];
    const char* names[3] = {"/ca-cert.pem", "/ca-key.pem", "/root-cert.pem"};
    for (int i = 0; i < 3; ++i) {
        auto text = config::read_file(options.ca_dir + names[i], 1 << 20);
        if (!text) {
            log::error("app", "cannot read the local CA (run `ztunnel ca init DIR` first)",
                       {log::Field::str("file", options.ca_dir + names[i])});
            return false;
        }
        pems[i] = std::move(*text);
    }
    auto ca = certs::LocalCa::load(pems[0], pems[1], pems[2]);
    if (!ca) {
        log::error("app", "the local CA does not load",
                   {log::Field::str("dir", options.ca_dir),
                    log::Field::display("error", to_string(ca.error().code))});
        return false;
    }
    auto issuer = std::make_unique<certs::LocalCaIssuer>(std::move(*ca),
                                                         options.cert_ttl_ns / kNanosPerSecond);
    cert_store = certs::CertStore::with_issuer(std::move(issuer), system_clock());
    return true;
}

// track_identities asks the store for a certificate for every identity of a local pod, ahead of
// need, and forgets identities no local pod has any more (ztunnel's cert prefetch and forget).
void App::track_identities() {
    std::vector<certs::Identity> wanted;
    for (const state::Pod& pod : published->pods()) {
        // The workload's identity, or what the pod entry says before the workload is known.
        std::string identity = published->pod_identity(pod, options.trust_domain);
        if (identity.empty()) {
            continue;
        }
        auto id = certs::Identity::parse(identity);
        if (id && std::find(wanted.begin(), wanted.end(), *id) == wanted.end()) {
            wanted.push_back(*id);
        }
    }
    for (const certs::Identity& id : local_identities) {
        if (std::find(wanted.begin(), wanted.end(), id) == wanted.end()) {
            cert_store->forget(id);
        }
    }
    for (const certs::Identity& id : wanted) {
        (void)cert_store->want(id);
    }
    local_identities = std::move(wanted);
}

// certificate_work runs the store's due work and republishes the TLS contexts when a
// certificate appeared, was renewed or rotated, then wakes the workers: a new pod's connections
// may be waiting for its first certificate (src/proxy/workload_wait.h).
void App::certificate_work() {
    if (monotonic_ns() >= cert_store->next_due_mono_ns()) {
        cert_store->tick();
    }
    auto current = tls_store.load();
    auto next = proxy::TlsContexts::rebuild(current, *cert_store, local_identities);
    if (next != current) {
        tls_store.store(std::move(next));
        for (auto& worker : workers) {
            worker->wake();
        }
    }
    export_store_counters();
}

// export_store_counters adds what the certificate store and hbone/ counted since the last call
// to the control shard's counters (they keep totals; the metrics want increments).
void App::export_store_counters() {
    certs::StoreStats now = cert_store->stats();
    certs::StoreStats& seen = cert_stats_exported;
    size_t shard = metrics->control_shard();
    auto event = [&](std::string_view name, uint64_t total, uint64_t& exported) {
        if (total > exported) {
            metrics->certificate_events.cell(shard, {name})->add(total - exported);
            exported = total;
        }
    };
    event("issued", now.issued_total, seen.issued_total);
    event("issue_failed", now.issue_failures_total, seen.issue_failures_total);
    event("loaded", now.files_loaded_total, seen.files_loaded_total);
    event("expired", now.expired_total, seen.expired_total);
    event("roots_mismatch", now.roots_mismatch_total, seen.roots_mismatch_total);
    for (const auto& [code, total] : now.refusals_by_reason) {
        uint64_t& exported = seen.refusals_by_reason[code];
        if (total > exported) {
            metrics->certificate_refusals.cell(shard, {to_string(code)})->add(total - exported);
            exported = total;
        }
    }
}

// after_config_work publishes a new snapshot to the workers when the watcher swapped one in,
// and counts reloads.
void App::after_config_work() {
    const config::ReloadStats& stats = watcher->stats();
    double now_s = double(unix_ns()) / double(kNanosPerSecond);
    if (reloads_success_seen != stats.success_total ||
        reloads_failure_seen != stats.failure_total) {
        held_stale = true;  // A wait for a content this reload replaced or refused may end.
    }
    while (reloads_success_seen < stats.success_total) {
        ++reloads_success_seen;
        metrics->record_config_reload(true, double(stats.last_success_unix_ns) / 1e9);
    }
    while (reloads_failure_seen < stats.failure_total) {
        ++reloads_failure_seen;
        metrics->record_config_reload(false, now_s);
    }
    std::shared_ptr<const state::Snapshot> current = snapshots.load();
    if (current != published) {
        published = current;
        uint64_t generation = applied.empty() ? 1 : applied.back().generation + 1;
        applied.push_back({current, stats.applied_sha256, generation});
        // Enough for workers a few snapshots behind; older views read as "unknown content".
        constexpr size_t kAppliedKept = 16;
        while (applied.size() > kAppliedKept) {
            applied.pop_front();
        }
        // The workers first: they open a new pod's listeners on their own threads while this
        // one issues its certificate, so a ZDS add is acked sooner. A waiting `GET /pods` is
        // answered by this thread, after the certificate work, so no ack overtakes it.
        for (auto& worker : workers) {
            worker->wake();
        }
        track_identities();
        certificate_work();
        readiness.release("state manager");
    }
}

void App::update_readiness() {
    std::set<std::string> wanted;
    uint64_t pods_pending = 0;
    uint64_t pods_up = 0;
    if (published != nullptr) {
        // How many workers listen for each pod: one pass over every worker's view, so a
        // readiness check stays linear in the pods (it runs after every worker's publication).
        std::vector<std::vector<proxy::PodStatus>> per_worker;
        std::unordered_map<std::string_view, size_t> listening_workers;
        bool reconciled = true;
        for (auto& worker : workers) {
            per_worker.push_back(worker->pod_status());
            for (const proxy::PodStatus& status : per_worker.back()) {
                if (status.listening) {
                    ++listening_workers[status.uid];
                }
            }
            if (worker->reconciled_snapshot() != published.get()) {
                reconciled = false;
            }
        }
        if (!reconciled) {
            wanted.insert("proxy");
        }
        for (const state::Pod& pod : published->pods()) {
            if (published->pod_pending(pod)) {
                wanted.insert("pod " + pod.uid + " (unknown workload)");
                ++pods_pending;
                continue;
            }
            bool up = reconciled;
            auto id = certs::Identity::parse(published->pod_identity(pod, options.trust_domain));
            if (id && cert_store->state(*id).first != certs::CertState::available) {
                wanted.insert("certificate " + id->to_string());
                up = false;
            }
            auto listening = listening_workers.find(pod.uid);
            if (listening == listening_workers.end() || listening->second != workers.size()) {
                up = false;
            }
            if (up) {
                ++pods_up;
            } else {
                wanted.insert("pod " + pod.uid);
                ++pods_pending;
            }
        }
    }
    pending->update(wanted);
    metrics->set_pods(pods_pending, pods_up);
}

namespace {

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

std::string json_duration(int64_t ns) {
    return "{\"nanos\":" + std::to_string(ns % kNanosPerSecond) +
           ",\"secs\":" + std::to_string(ns / kNanosPerSecond) + "}";
}

}  // namespace

// pods_view gathers `/pods`'s inputs on the control thread: the applied snapshot with its sha256
// and generation, and each worker's last published view of its pods (published after every
// reconcile, so no wait is needed). With `only` non-empty just those pods are listed.
std::string App::pods_view(const std::vector<std::string>& only) {
    auto wanted = [&only](const std::string& uid) {
        return only.empty() || std::find(only.begin(), only.end(), uid) != only.end();
    };
    config::PodsInputs inputs;
    if (published != nullptr && !applied.empty()) {
        inputs.sha256 = applied.back().sha256;
        inputs.generation = applied.back().generation;
        for (const state::Pod& pod : published->pods()) {
            if (!wanted(pod.uid)) {
                continue;
            }
            config::PodsAppliedPod& entry = inputs.pods.emplace_back();
            entry.uid = pod.uid;
            entry.netns = pod.netns;
            entry.workload_known = published->workload_by_uid(pod.uid) != nullptr;
            entry.has_info = pod.has_info();
        }
    }
    for (const AppliedConfig& config : applied) {
        inputs.generations.emplace_back(config.generation, config.sha256);
    }
    inputs.draining = loop != nullptr && loop->phase() != lifecycle::ControlLoop::Phase::running;
    for (auto& worker : workers) {
        std::vector<config::PodsWorkerView>& views = inputs.workers.emplace_back();
        for (const proxy::PodStatus& status : worker->pod_status()) {
            if (!wanted(status.uid)) {
                continue;
            }
            config::PodsWorkerView& view = views.emplace_back();
            view.uid = status.uid;
            for (const AppliedConfig& config : applied) {
                if (config.snapshot.get() == status.snapshot) {
                    view.generation = config.generation;
                }
            }
            view.listening = status.listening;
            view.failed = status.failed;
            view.draining = status.draining;
            view.error = status.error;
        }
    }
    return config::render_pods(inputs);
}

// pods_progress is what a waiting `GET /pods?wait=` is decided on (src/admin/pods_wait.h): the
// generations still known with their sha256, the newest generation every worker has published
// its status for, and how many reloads ended.
admin::PodsProgress App::pods_progress() {
    admin::PodsProgress progress;
    for (const AppliedConfig& config : applied) {
        progress.generations.emplace_back(config.generation, config.sha256);
    }
    bool first = true;
    for (auto& worker : workers) {
        const state::Snapshot* snapshot = worker->published_snapshot();
        uint64_t generation = 0;
        for (const AppliedConfig& config : applied) {
            if (config.snapshot.get() == snapshot) {
                generation = config.generation;
            }
        }
        progress.published = first ? generation : std::min(progress.published, generation);
        first = false;
    }
    const config::ReloadStats& stats = watcher->stats();
    progress.reload_attempts = stats.success_total + stats.failure_total;
    return progress;
}

// config_dump gathers `/config_dump`'s inputs on the control thread: the published snapshot,
// the file re-read for `staticConfig` (as ztunnel does), the certificates, and each worker's
// pods with their open connections (asked of the workers, bounded wait).
std::string App::config_dump() {
    config::DumpInputs inputs;
    inputs.snapshot = published.get();
    config::LoadResult reread = config::load_file(options.config_path);
    inputs.static_config = reread.snapshot.get();
    inputs.certificates = cert_store->dump();
    std::vector<proxy::PodStatus> statuses;
    for (auto& worker : workers) {
        (void)worker->refresh_status(200 * kNanosPerMilli);
        for (proxy::PodStatus& status : worker->pod_status()) {
            statuses.push_back(std::move(status));
        }
    }
    if (published != nullptr) {
        for (const state::Pod& pod : published->pods()) {
            config::DumpPod& entry = inputs.pods.emplace_back();
            entry.uid = pod.uid;
            if (const state::Workload* workload = published->workload_by_uid(pod.uid)) {
                entry.name = workload->name;
                entry.namespace_name = workload->namespace_;
                entry.service_account = workload->service_account;
            } else if (pod.has_info()) {
                // Listening before its workload is known: who the pod entry says it is.
                entry.name = pod.name;
                entry.namespace_name = pod.namespace_;
                entry.service_account = pod.service_account;
            }
            size_t listening = 0;
            for (const proxy::PodStatus& status : statuses) {
                if (status.uid != pod.uid) {
                    continue;
                }
                listening += status.listening ? 1 : 0;
                for (const proxy::ConnectionSummary& c : status.connection_list) {
                    auto& list = c.inbound ? entry.inbound : entry.outbound;
                    list.push_back({c.src, c.original_dst, c.actual_dst, c.protocol});
                }
            }
            entry.up = listening == workers.size() && !workers.empty();
        }
    }
    inputs.settings = {
            {"adminAddr", json_string(options.admin_addr)},
            {"statsAddr", json_string(options.metrics_addr)},
            {"readinessAddr", json_string(options.readiness_addr)},
            {"localNode", json_string(options.node_name)},
            {"localXdsPath", json_string(options.config_path)},
            {"numWorkerThreads", std::to_string(options.workers)},
            {"packetMark", std::to_string(options.packet_mark)},
            {"trustDomain", json_string(options.trust_domain)},
            {"secretTtl", json_duration(options.cert_ttl_ns)},
            {"selfTerminationDeadline", json_duration(options.drain_timeout_ns)},
            {"caDir", options.ca_dir.empty() ? "null" : json_string(options.ca_dir)},
            {"certDir", options.cert_dir.empty() ? "null" : json_string(options.cert_dir)},
            {"logLevel", json_string(options.log_level)},
    };
    inputs.version = ZT_VERSION;
    inputs.git_revision = ZT_GIT_REVISION;
#ifdef ZT_BSSL_VENDORED
    inputs.crypto_provider = "BoringSSL (vendored build)";
#else
    inputs.crypto_provider = "BoringSSL (Debian android-libboringssl)";
#endif
    if (const char* istio = ::getenv("ISTIO_META_ISTIO_VERSION")) {
        inputs.istio_version = istio;
    }
    const config::ReloadStats& stats = watcher->stats();
    inputs.status.path = options.config_path;
    inputs.status.last_loaded_unix_ns = stats.last_success_unix_ns;
    inputs.status.applied_sha256 = stats.applied_sha256;
    inputs.status.reloads_success_total = stats.success_total;
    inputs.status.reloads_failure_total = stats.failure_total;
    inputs.status.last_failure_unix_ns = stats.last_failure_unix_ns;
    inputs.status.last_errors = stats.last_errors;
    inputs.status.warnings = stats.warnings;
    inputs.unsupported = stats.unsupported;
    return config::render_config_dump(inputs);
}

// tick is the control thread's periodic work: config reloads, certificates, readiness, and
// memory pressure (sampled once a second).
void App::tick() {
    if (monotonic_ns() >= watcher->next_deadline_ns()) {
        watcher->tick();
    }
    if (memory_watch != nullptr) {
        memory_watch->tick(monotonic_ns());
    }
    after_config_work();
    certificate_work();
    update_readiness();
    if (held_stale && servers != nullptr) {
        held_stale = false;
        servers->wake_held();
    }
}

uint64_t App::open_connections() const {
    uint64_t open = 0;
    for (const auto& worker : workers) {
        open += worker->connections();
    }
    return open;
}

void App::stop_workers() {
    for (auto& worker : workers) {
        worker->force_close();
    }
    for (auto& worker : workers) {
        worker->stop();
    }
    workers.clear();
}

}  // namespace

int run_app(const RunOptions& options) {
    lifecycle::ignore_sigpipe();
    // Signals are blocked before any thread exists, so only the control thread sees them.
    auto signals = lifecycle::ShutdownSignals::open();
    if (!signals) {
        log::error("app", "cannot set up signal handling");
        return 1;
    }
    App app(options);
    int failed = app.start(*signals);
    if (failed != 0) {
        app.stop_workers();
        if (app.log_queue) {
            app.log_queue->flush();
            telemetry::LogQueue::uninstall();
        }
        return failed;
    }
    int code = app.loop->run();
    app.stop_workers();
    log::info("app", "ztunnel stopped");
    app.log_queue->flush();
    telemetry::LogQueue::uninstall();
    return code;
}

}  // namespace zt
