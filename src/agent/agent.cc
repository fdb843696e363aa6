// agent.cc wires `ztunnel-agent` together and runs its two threads. Start-up order: signals
// (blocked before any thread exists), logs, metrics, the --static file, the admin server, then
// the agent thread, which makes its own io_uring (a ring belongs to the thread that made it)
// and reports back whether it could. Shutdown: the main thread fails readiness, asks the agent
// thread to stop (it closes the ADS stream and writes a pending change), waits for it within a
// deadline, flushes the logs and exits 0.

#include "src/agent/agent.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "src/admin/handlers.h"
#include "src/admin/http_server.h"
#include "src/admin/logging.h"
#include "src/admin/readiness.h"
#include "src/agent/ads_client.h"
#include "src/agent/ads_session.h"
#include "src/agent/agent_metrics.h"
#include "src/agent/ca_client.h"
#include "src/agent/config_writer.h"
#include "src/agent/loop.h"
#include "src/agent/status.h"
#include "src/agent/xds_store.h"
#include "src/agent/zds_client.h"
#include "src/config/load.h"
#include "src/lifecycle/process.h"
#include "src/telemetry/log_queue.h"
#include "zt/clock.h"
#include "zt/log.h"

extern char** environ;

namespace zt::agent {

namespace {

constexpr std::string_view kTarget = "agent";

// Readiness task names (`/ready` lists those still pending).
constexpr std::string_view kReadyXds = "xds";
constexpr std::string_view kReadyFile = "config file";
constexpr std::string_view kReadyCerts = "certificates";
constexpr std::string_view kReadyZds = "zds snapshot";

// kStopDeadlineNs bounds the agent thread's shutdown (closing the stream, a last write).
constexpr int64_t kStopDeadlineNs = 5 * kNanosPerSecond;

// kStaticPollNs is how often the --static file is looked at for changes.
constexpr int64_t kStaticPollNs = 1 * kNanosPerSecond;

std::vector<std::pair<std::string, std::string>> process_environment() {
    std::vector<std::pair<std::string, std::string>> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string text(*entry);
        size_t eq = text.find('=');
        if (eq != std::string::npos) {
            env.emplace_back(text.substr(0, eq), text.substr(eq + 1));
        }
    }
    return env;
}

// StaticFile is the --static file: loaded (and validated as a whole file) at start, and again
// whenever its size, mtime or inode change.
class StaticFile {
public:
    explicit StaticFile(std::string path) : path_(std::move(path)) {}

    // load reads and validates the file; on failure the previous content is kept and `error`
    // says why.
    bool load() {
        config::LoadResult loaded = config::load_file(path_);
        if (!loaded.errors.empty()) {
            error_ = loaded.errors.front();
            for (const std::string& e : loaded.errors) {
                log::error(kTarget, "the --static file is invalid; keeping its last good content",
                           {log::Field::str("path", path_), log::Field::str("error", e)});
            }
            return false;
        }
        config_ = loaded.snapshot->config();
        error_.clear();
        stamp_ = stat_stamp();
        return true;
    }

    // changed says whether the file looks different from when it was last loaded.
    bool changed() const { return stat_stamp() != stamp_; }

    const state::Config& config() const { return config_; }

    const std::string& path() const { return path_; }

    const std::string& error() const { return error_; }

private:
    std::string stat_stamp() const {
        struct stat st;
        if (::stat(path_.c_str(), &st) != 0) {
            return "missing";
        }
        return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
               std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    }

    std::string path_;
    state::Config config_;
    std::string error_;
    std::string stamp_;
};

// Shared is what both threads see.
struct Shared {
    Shared(const AgentOptions& options_in, AgentMetrics& metrics_in, admin::Readiness& readiness_in,
           StatusBoard& board_in, StopRequest& stop_in, std::optional<StaticFile>& static_in)
        : options(options_in)
        , metrics(metrics_in)
        , readiness(readiness_in)
        , board(board_in)
        , stop(stop_in)
        , static_file(static_in) {}

    const AgentOptions& options;
    AgentMetrics& metrics;
    admin::Readiness& readiness;
    StatusBoard& board;
    StopRequest& stop;
    std::optional<StaticFile>& static_file;
    int64_t started_unix_ns = 0;

    // Start-up handshake: the agent thread reports whether its ring came up.
    std::mutex mutex;
    std::condition_variable cv;
    bool started = false;
    bool start_ok = false;
    std::atomic<bool> finished{false};
};

// AgentThread is everything on the agent thread.
class AgentThread final : public ZdsObserver {
public:
    explicit AgentThread(Shared& shared) : shared_(shared) {
        static_timer_.completion.callback = &AgentThread::on_static_timer;
        static_timer_.completion.context = this;
    }

    void run();

private:
    static void on_static_timer(uring::Completion& self, int32_t res, uint32_t flags);
    // start_xds makes the ADS session and client and connects.
    void start_xds();
    // start_ca makes the CA client (when --cert-dir is set and the CA is not turned off).
    void start_ca();
    // refresh_identities tells the CA client which identities this node's pods have.
    void refresh_identities();
    // start_zds makes the ZDS client (when --netns-dir is set and INPOD_UDS is not off).
    void start_zds();
    // compose_base is the --static file with the ZDS pods added.
    state::Config compose_base() const;
    void on_pods_changed() override;

    std::string current_sha256() override { return writer_->status().sha256; }

    // stop ends everything on the ring and waits for the kernel (bounded).
    void stop();
    void on_response(const ResponseOutcome& outcome);
    void after_write();
    void publish();
    void report_start(bool ok);

    Shared& shared_;
    std::unique_ptr<Loop> loop_;
    std::unique_ptr<XdsStore> store_;
    std::unique_ptr<AdsSession> session_;
    std::unique_ptr<AdsClient> client_;
    std::unique_ptr<ConfigWriter> writer_;
    std::unique_ptr<CaClient> ca_;
    std::unique_ptr<ZdsClient> zds_;
    uring::Timer static_timer_;
    uint64_t generation_written_ = 0;
    bool file_ready_released_ = false;
    bool certs_ready_released_ = false;
    bool zds_ready_released_ = false;
    bool stopping_ = false;
};

void AgentThread::report_start(bool ok) {
    std::lock_guard lock(shared_.mutex);
    shared_.started = true;
    shared_.start_ok = ok;
    shared_.cv.notify_all();
}

void AgentThread::run() {
    const AgentOptions& options = shared_.options;
    auto loop = Loop::create(system_clock(), shared_.stop);
    if (!loop) {
        log::error(kTarget, "cannot create the agent's io_uring",
                   {log::Field::display("error", to_string(loop.error().code)),
                    log::Field::str("hint", uring::setup_hint(loop.error().code))});
        report_start(false);
        shared_.finished = true;
        return;
    }
    loop_ = std::move(*loop);
    store_ = std::make_unique<XdsStore>(TranslateContext{});
    WriterOptions writer_options;
    writer_options.path = options.config_out;
    writer_options.cost_factor = options.write_cost_factor;
    writer_options.min_interval_ns = options.write_min_interval_ns;
    writer_ = std::make_unique<ConfigWriter>(
            *loop_, writer_options,
            [this](FileComposer& file, std::vector<std::string>& warnings) {
                file.update(compose_base(), store_.get(), warnings);
            },
            shared_.metrics);
    writer_->init();
    report_start(true);

    start_zds();
    start_ca();
    if (options.xds_enabled) {
        start_xds();
    } else {
        // No xDS: the file is the --static file alone, written now.
        shared_.readiness.release(kReadyXds);
        (void)writer_->write_now();
        after_write();
    }
    if (shared_.static_file) {
        loop_->ring().arm_timer(static_timer_, kStaticPollNs);
    }
    publish();
    while (!loop_->stop_requested()) {
        loop_->run_once(-1);
        after_write();
        publish();
    }
    stop();
    shared_.finished = true;
}

void AgentThread::start_xds() {
    const AgentOptions& options = shared_.options;
    std::vector<std::string> bad_json;
    NodeIdentity identity = node_identity_from_env(process_environment());
    envoy::service::discovery::v3::Node node = build_node(identity, &bad_json);
    for (const std::string& name : bad_json) {
        log::error(kTarget, "failed to parse node metadata; left out",
                   {log::Field::str("variable", name)});
    }
    session_ = std::make_unique<AdsSession>(
            node, std::vector<std::pair<std::string, ResourceHandler*>>{
                          {std::string(kAddressTypeUrl), &store_->addresses()},
                          {std::string(kAuthorizationTypeUrl), &store_->authorizations()}});
    AdsClientOptions client_options;
    client_options.channel.host = options.xds_address.host;
    client_options.channel.port = options.xds_address.port;
    client_options.channel.server_name = options.alt_xds_hostname;
    client_options.channel.root_cert_file = options.xds_root_cert;
    client_options.token_file = options.token_file;
    client_options.cluster_id = options.cluster_id;
    for (const auto& [name, value] : options.xds_headers) {
        client_options.extra_metadata.push_back({name, value});
    }
    client_ = std::make_unique<AdsClient>(
            *loop_, std::move(client_options), *session_, shared_.metrics,
            [this](const ResponseOutcome& outcome) { on_response(outcome); });
    log::info("xds", "connecting to istiod",
              {log::Field::display("address", options.xds_address.host + ":" +
                                                      std::to_string(options.xds_address.port)),
               log::Field::str("node", node.id())});
    client_->start();
}

void AgentThread::start_ca() {
    const AgentOptions& options = shared_.options;
    if (!options.ca_enabled || options.cert_dir.empty()) {
        shared_.readiness.release(kReadyCerts);
        return;
    }
    CaClientOptions ca_options;
    ca_options.channel.host = options.ca_address.host;
    ca_options.channel.port = options.ca_address.port;
    ca_options.channel.server_name = options.alt_ca_hostname;
    ca_options.channel.root_cert_file = options.ca_root_cert;
    ca_options.token_file = options.token_file;
    ca_options.cluster_id = options.cluster_id;
    ca_options.cert_dir = options.cert_dir;
    ca_options.secret_ttl_s = std::max<int64_t>(1, options.secret_ttl_ns / kNanosPerSecond);
    ca_ = std::make_unique<CaClient>(*loop_, std::move(ca_options), shared_.metrics);
    log::info("ca", "certificates from the Istio CA",
              {log::Field::display("address", options.ca_address.host + ":" +
                                                      std::to_string(options.ca_address.port)),
               log::Field::str("cert_dir", options.cert_dir)});
    refresh_identities();
    ca_->start();
}

state::Config AgentThread::compose_base() const {
    state::Config base = shared_.static_file ? shared_.static_file->config() : state::Config{};
    if (zds_ != nullptr) {
        for (const auto& [uid, zds_pod] : zds_->pods()) {
            state::Pod pod;
            pod.uid = zds_pod.workload_uid;
            pod.netns = zds_pod.netns;
            // The CNI's WorkloadInfo, so ztunnel opens the pod's listeners at once with this
            // identity, before istiod's workload reaches the file (ztunnel waits for it per
            // connection).
            pod.name = zds_pod.name;
            pod.namespace_ = zds_pod.namespace_;
            pod.service_account = zds_pod.service_account;
            base.pods.push_back(std::move(pod));
        }
    }
    return base;
}

void AgentThread::start_zds() {
    const AgentOptions& options = shared_.options;
    if (!options.inpod_enabled || options.netns_dir.empty()) {
        shared_.readiness.release(kReadyZds);
        return;
    }
    ZdsClientOptions zds_options;
    zds_options.socket_path = options.inpod_uds;
    zds_options.netns_dir = options.netns_dir;
    zds_options.cluster_id = options.cluster_id;
    auto admin = parse_server_address(options.ztunnel_admin);
    std::optional<SocketAddress> address =
            admin ? parse_address_literal(admin->host, admin->port) : std::nullopt;
    if (!address) {
        log::error("zds", "--ztunnel-admin must be an address literal with a port; ZDS is off",
                   {log::Field::str("value", options.ztunnel_admin)});
        return;  // Readiness stays blocked: the agent cannot ack any pod.
    }
    zds_options.ztunnel_admin = *address;
    zds_ = std::make_unique<ZdsClient>(*loop_, std::move(zds_options), shared_.metrics, *this);
    // Pods the previous run wrote stay in the file until the CNI's snapshot decides.
    auto previous = config::load_file(options.config_out);
    if (previous.errors.empty() && previous.snapshot) {
        std::vector<std::pair<std::string, std::string>> entries;
        for (const state::Pod& pod : previous.snapshot->config().pods) {
            entries.emplace_back(pod.uid, pod.netns);
        }
        zds_->recover(entries);
    }
    log::info("zds", "pods from istio-cni",
              {log::Field::str("uds", options.inpod_uds),
               log::Field::str("netns_dir", options.netns_dir)});
    zds_->start();
}

void AgentThread::on_pods_changed() {
    if (session_ == nullptr || session_->synced()) {
        (void)writer_->write_now();
    }
    refresh_identities();
}

void AgentThread::refresh_identities() {
    if (ca_ == nullptr) {
        return;
    }
    // The pods of this node are the --static file's (ZDS adds its own); each pod's identity
    // comes from its workload, in the static file or from xDS, with the run's trust domain
    // where the workload names none.
    static const state::Config kEmpty;
    const state::Config& base = shared_.static_file ? shared_.static_file->config() : kEmpty;
    std::set<certs::Identity> wanted;
    bool all_known = true;
    for (const state::Pod& pod : base.pods) {
        const state::Workload* workload = nullptr;
        for (const state::Workload& w : base.workloads) {
            if (w.uid == pod.uid) {
                workload = &w;
            }
        }
        if (workload == nullptr && store_ != nullptr) {
            auto it = store_->address_entries().find(pod.uid);
            if (it != store_->address_entries().end() && it->second.workload) {
                workload = &*it->second.workload;
            }
        }
        if (workload == nullptr) {
            all_known = false;
            continue;
        }
        auto id = certs::Identity::parse(workload->identity(shared_.options.trust_domain));
        if (id) {
            wanted.insert(std::move(*id));
        }
    }
    // ZDS pods: the identity from the CNI's WorkloadInfo, before istiod knows the workload.
    if (zds_ != nullptr) {
        for (const auto& [uid, pod] : zds_->pods()) {
            if (pod.service_account.empty()) {
                all_known = false;  // Recovered from the file; the snapshot's add will say.
                continue;
            }
            auto id = certs::Identity::from_parts(shared_.options.trust_domain, pod.namespace_,
                                                  pod.service_account);
            if (id) {
                wanted.insert(std::move(*id));
            }
        }
        // A deleted pod keeps its certificate until ztunnel drained it.
        for (const auto& [ns, sa] : zds_->draining_identities()) {
            auto id = certs::Identity::from_parts(shared_.options.trust_domain, ns, sa);
            if (id) {
                wanted.insert(std::move(*id));
            }
        }
        all_known = all_known && zds_->snapshot_acked();
    }
    bool complete = all_known && (session_ == nullptr || session_->synced());
    ca_->set_identities(wanted, complete);
}

void AgentThread::stop() {
    // Close the stream, keep a change that waited for its batch, then wait for the kernel to
    // give back everything of ours (bounded).
    stopping_ = true;
    if (client_ != nullptr) {
        client_->shutdown();
    }
    if (ca_ != nullptr) {
        ca_->shutdown();
    }
    if (zds_ != nullptr) {
        zds_->shutdown();
    }
    if (writer_->status().pending && (session_ == nullptr || session_->synced())) {
        (void)writer_->write_now();
    }
    writer_->shutdown();
    if (static_timer_.completion.in_kernel) {
        loop_->ring().cancel_timer(static_timer_);
    }
    int64_t deadline = monotonic_ns() + kStopDeadlineNs;
    auto busy = [this] {
        return (client_ != nullptr && !client_->stopped()) || (ca_ != nullptr && !ca_->stopped()) ||
               (zds_ != nullptr && !zds_->stopped()) || !writer_->idle() ||
               static_timer_.completion.in_kernel;
    };
    while (busy() && monotonic_ns() < deadline) {
        loop_->run_once(100 * kNanosPerMilli);
    }
    if (busy()) {
        log::warn(kTarget, "the agent thread did not stop cleanly in time");
        // Its ring still holds operations: leave the objects to the process exit.
        (void)client_.release();
        (void)ca_.release();
        (void)zds_.release();
        (void)writer_.release();
        (void)loop_.release();
        return;
    }
    publish();
    client_.reset();
    ca_.reset();
    zds_.reset();
    writer_.reset();
    loop_.reset();
}

void AgentThread::on_response(const ResponseOutcome& outcome) {
    if (outcome.became_ready) {
        // ztunnel's readiness: every watched type ACKed once.
        shared_.readiness.release(kReadyXds);
    }
    if (!session_->synced()) {
        return;  // Nothing is written before every type had its first response (a partial mesh).
    }
    if (outcome.became_synced) {
        // The first complete state goes out at once: ztunnel is waiting for it.
        generation_written_ = store_->generation();
        (void)writer_->write_now();
        refresh_identities();
        return;
    }
    if (store_->generation() != generation_written_) {
        generation_written_ = store_->generation();
        writer_->changed();
        refresh_identities();
    }
}

void AgentThread::after_write() {
    if (!file_ready_released_ && writer_->status().current &&
        (session_ == nullptr || session_->synced())) {
        file_ready_released_ = true;
        shared_.readiness.release(kReadyFile);
    }
    if (!certs_ready_released_ && ca_ != nullptr && ca_->all_available() &&
        (session_ == nullptr || session_->synced())) {
        certs_ready_released_ = true;
        shared_.readiness.release(kReadyCerts);
    }
    if (zds_ != nullptr && zds_->snapshot_acked() && !zds_ready_released_) {
        zds_ready_released_ = true;
        shared_.readiness.release(kReadyZds);
    }
}

void AgentThread::on_static_timer(uring::Completion& self, int32_t res, uint32_t) {
    auto* agent = static_cast<AgentThread*>(self.context);
    if (res != -ETIME || agent->stopping_) {
        return;
    }
    StaticFile& file = *agent->shared_.static_file;
    if (file.changed() && file.load()) {
        log::info(kTarget, "the --static file changed", {log::Field::str("path", file.path())});
        if (agent->session_ == nullptr || agent->session_->synced()) {
            agent->writer_->changed();
        }
        agent->refresh_identities();
    }
    agent->loop_->ring().arm_timer(agent->static_timer_, kStaticPollNs);
}

void AgentThread::publish() {
    AgentSnapshot s;
    s.started_unix_ns = shared_.started_unix_ns;
    s.xds_enabled = shared_.options.xds_enabled;
    if (client_ != nullptr) {
        s.xds = client_->status();
        s.xds_ready = session_->ready();
        s.xds_synced = session_->synced();
        s.types = session_->status();
    }
    s.workloads = store_->workload_count();
    s.services = store_->service_count();
    s.policies = store_->policy_count();
    s.rejected_total = store_->rejected_total();
    if (shared_.static_file) {
        s.static_file = shared_.static_file->path();
        s.static_error = shared_.static_file->error();
    }
    s.writer = writer_->status();
    s.ca_enabled = ca_ != nullptr;
    if (ca_ != nullptr) {
        s.certificates = ca_->status();
    }
    if (zds_ != nullptr) {
        s.zds_enabled = true;
        s.zds = zds_->status();
    }
    shared_.board.publish(std::move(s));
}

// AgentAdmin answers the agent's admin port: /ready, /debug, /metrics (and /stats/prometheus),
// /logging, /quitquitquit, and an index at /.
class AgentAdmin final : public admin::HttpHandler {
public:
    AgentAdmin(Shared& shared, admin::LogLevels& levels, std::atomic<bool>& quit)
        : shared_(shared), levels_(levels), metrics_(shared.metrics.registry()), quit_(quit) {}

    admin::HttpResponse handle(const admin::HttpRequest& request) override {
        const std::string& path = request.path;
        if (path == "/ready") {
            if (request.method != "GET" && request.method != "HEAD") {
                return status_only(405);
            }
            int status = 200;
            std::string body = shared_.readiness.probe_body(status);
            return admin::text_response(status, std::move(body));
        }
        if (path == "/debug") {
            if (request.method != "GET" && request.method != "HEAD") {
                return status_only(405);
            }
            admin::HttpResponse response;
            response.content_type = "application/json";
            response.body = render_debug_json(shared_.board.read(), shared_.readiness.pending());
            return response;
        }
        if (path == "/metrics" || path == "/stats/prometheus") {
            return metrics_.handle(request);
        }
        if (path == "/logging") {
            return levels_.handle(request);
        }
        if (path == "/quitquitquit") {
            if (request.method != "POST") {
                return status_only(405);
            }
            quit_ = true;
            return admin::text_response(200, "shutdown now\n");
        }
        if (path == "/") {
            return admin::text_response(
                    200,
                    "ztunnel-agent admin\n\n"
                    "/ready          200 once xDS is synced and the config file written\n"
                    "/debug          the agent's state (JSON): xDS stream, last ACK/NACK per "
                    "type,\n"
                    "                resources, the config file\n"
                    "/metrics        Prometheus metrics\n"
                    "/logging        POST: show or change log levels (?level=<spec>, ?reset)\n"
                    "/quitquitquit   POST: shut down\n");
        }
        return status_only(404);
    }

private:
    static admin::HttpResponse status_only(int status) {
        admin::HttpResponse response;
        response.status = status;
        response.content_type.clear();
        return response;
    }

    Shared& shared_;
    admin::LogLevels& levels_;
    admin::MetricsHandler metrics_;
    std::atomic<bool>& quit_;
};

// serve is the main thread's loop until the agent thread has stopped: signals, the admin
// server, the log writer, systemd's notifications, and the shutdown sequence (readiness fails at
// once, the agent thread is asked to stop and waited for within a deadline; a second SIGINT or
// the deadline exits at once).
void serve(Shared& shared, lifecycle::ShutdownSignals& signals, admin::HttpServer& server,
           telemetry::LogQueue& log_queue, std::atomic<bool>& quit) {
    bool stopping = false;
    int64_t stop_deadline = 0;
    bool notified_ready = false;
    while (true) {
        std::vector<pollfd> fds;
        fds.push_back({signals.fd(), POLLIN, 0});
        server.collect_pollfds(fds);
        int64_t now_ms = monotonic_ns() / kNanosPerMilli;
        int wait = server.next_timeout_ms(now_ms);
        if (wait < 0 || wait > 20) {
            wait = 20;  // The longest a queued log line waits.
        }
        int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
        if (ready > 0) {
            if (fds[0].revents != 0) {
                lifecycle::ShutdownRequest request = signals.on_readable();
                if (request == lifecycle::ShutdownRequest::immediate) {
                    log::warn(kTarget, "second interrupt, exiting now");
                    log_queue.flush();
                    std::_Exit(0);
                }
                if (request == lifecycle::ShutdownRequest::graceful) {
                    quit = true;
                }
            }
            for (size_t i = 1; i < fds.size(); ++i) {
                server.on_poll(fds[i]);
            }
        }
        server.expire(monotonic_ns() / kNanosPerMilli);
        if (!notified_ready && !stopping && shared.readiness.ready()) {
            notified_ready = true;
            (void)lifecycle::notify_systemd("READY=1");
        }
        if (quit && !stopping) {
            stopping = true;
            stop_deadline = monotonic_ns() + kStopDeadlineNs + kNanosPerSecond;
            shared.readiness.start_draining();
            (void)lifecycle::notify_systemd("STOPPING=1");
            log::info(kTarget, "shutting down");
            shared.stop.request();
        }
        if (stopping && shared.finished) {
            break;
        }
        if (stopping && monotonic_ns() >= stop_deadline) {
            log::warn(kTarget, "the agent thread did not stop in time; exiting");
            log_queue.flush();
            std::_Exit(0);
        }
        log_queue.flush(256);
    }
}

// run_started runs the agent once logging is set up: metrics, the --static file, the admin
// server, the agent thread, then the main thread's loop until shutdown.
int run_started(const AgentOptions& options, lifecycle::ShutdownSignals& signals,
                admin::LogLevels& levels, telemetry::LogQueue& log_queue) {
    AgentMetrics metrics;
    admin::Readiness readiness;
    StatusBoard board;
    auto stop = StopRequest::create();
    if (!stop) {
        log::error(kTarget, "cannot make the stop eventfd");
        return 1;
    }
    std::optional<StaticFile> static_file;
    if (!options.static_file.empty()) {
        static_file.emplace(options.static_file);
        if (!static_file->load()) {
            return 1;
        }
    }
    Shared shared(options, metrics, readiness, board, **stop, static_file);
    shared.started_unix_ns = unix_ns();
    readiness.block(kReadyXds);
    readiness.block(kReadyFile);
    readiness.block(kReadyCerts);
    readiness.block(kReadyZds);

    std::atomic<bool> quit{false};
    AgentAdmin handler(shared, levels, quit);
    admin::HttpServerOptions server_options;
    server_options.name = "agent-admin";
    auto server = admin::HttpServer::listen(options.admin_addr, server_options, handler);
    if (!server) {
        log::error(kTarget, "cannot listen on the admin address",
                   {log::Field::str("address", options.admin_addr),
                    log::Field::display("error", to_string(server.error().code))});
        return 1;
    }
    std::string admin_bound = options.admin_addr.substr(0, options.admin_addr.rfind(':') + 1) +
                              std::to_string((*server)->port());
    log::info(kTarget, "ztunnel-agent started",
              {log::Field::str("config_out", options.config_out),
               log::Field::str("static", options.static_file),
               log::Field::display("admin", admin_bound), log::Field::str("version", ZT_VERSION)});

    std::thread agent_thread([&shared] {
        AgentThread agent(shared);
        agent.run();
    });
    {
        std::unique_lock lock(shared.mutex);
        shared.cv.wait(lock, [&shared] { return shared.started; });
    }
    if (!shared.start_ok) {
        agent_thread.join();
        return 1;
    }
    serve(shared, signals, **server, log_queue, quit);
    agent_thread.join();
    log::info(kTarget, "ztunnel-agent stopped");
    return 0;
}

}  // namespace

int run_agent(const AgentOptions& options) {
    lifecycle::ignore_sigpipe();
    auto signals = lifecycle::ShutdownSignals::open();
    if (!signals) {
        std::fprintf(stderr, "ztunnel-agent: cannot set up signal handling\n");
        return 1;
    }
    auto filter = log::Filter::parse(options.log_level);
    if (!filter) {
        std::fprintf(stderr, "ztunnel-agent: invalid log level \"%s\"\n",
                     options.log_level.c_str());
        return 2;
    }
    log::set_filter(*filter);
    telemetry::LogQueueOptions queue_options;
    queue_options.format =
            options.log_json ? telemetry::LogFormat::json : telemetry::LogFormat::plain;
    telemetry::LogQueue log_queue(queue_options);
    telemetry::LogQueue::install(&log_queue);
    admin::LogLevels levels(*filter);
    int code = run_started(options, *signals, levels, log_queue);
    log_queue.flush();
    telemetry::LogQueue::uninstall();
    return code;
}

}  // namespace zt::agent
