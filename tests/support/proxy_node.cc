// proxy_node.cc assembles in-process ztunnel nodes for proxy tests from the same parts
// `ztunnel run` uses: config::load_text, the snapshot and TLS stores, StandardMetrics, a Worker.

#include "tests/support/proxy_node.h"

#include <unistd.h>

#include "src/config/load.h"
#include "src/dns/telemetry.h"
#include "zt/clock.h"

namespace zt::test {

ProxyPki::ProxyPki(std::string_view trust_domain) : ca_(testing::TestCa::root(trust_domain)) {
    auto ca = certs::LocalCa::load(ca_.cert_pem(), ca_.key_pem(), ca_.root_pem());
    ZT_CHECK(ca.has_value());
    certs_ = certs::CertStore::with_issuer(
            std::make_unique<certs::LocalCaIssuer>(std::move(*ca), 24 * 3600), system_clock());
}

void ProxyPki::publish(proxy::TlsStore& store, const std::vector<std::string>& identities) {
    std::vector<certs::Identity> ids;
    for (const std::string& text : identities) {
        auto id = certs::Identity::parse(text);
        ZT_CHECK(id.has_value());
        certs_->want(*id);
        ids.push_back(*id);
    }
    certs_->tick();
    auto contexts = proxy::TlsContexts::rebuild(store.load(), *certs_, ids);
    ZT_CHECK(contexts->size() == ids.size());
    store.store(std::move(contexts));
}

std::shared_ptr<const hbone::TlsContext> ProxyPki::client_context(const std::string& identity) {
    proxy::TlsStore store;
    publish(store, {identity});
    return store.load()->find(identity)->client;
}

ProxyNode::ProxyNode(LoopbackSockets& sockets, ProxyPki& pki, proxy::WorkerOptions options,
                     const dns::ServerConfig* dns)
    : pki_(pki) {
    telemetry::StandardMetricsOptions metric_options;
    metric_options.worker_count = 1;
    metrics_ = std::make_unique<telemetry::StandardMetrics>(metric_options);
    proxy::WorkerShared shared;
    shared.snapshots = &snapshots_;
    shared.tls = &tls_;
    shared.metrics = metrics_.get();
    shared.sockets = &sockets;
    shared.shed = &shed_;
    if (dns != nullptr) {
        shared.dns = dns;
        shared.dns_metrics = &metrics_->registry().add(
                std::make_unique<dns::DnsMetrics>(metrics_->registry().shard_count(), 64));
    }
    worker_ = std::make_unique<proxy::Worker>(0, std::move(options), shared);
    auto started = worker_->start();
    ZT_CHECK(started.has_value());
}

ProxyNode::~ProxyNode() {
    worker_->force_close();
    worker_->stop();
}

bool ProxyNode::apply(std::string_view config, std::string* errors, bool with_certificates) {
    auto loaded = config::load_text(config);
    if (!loaded.snapshot) {
        if (errors != nullptr) {
            for (const std::string& error : loaded.errors) {
                *errors += error + "\n";
            }
        }
        return false;
    }
    std::vector<std::string> identities;
    for (const state::Pod& pod : loaded.snapshot->pods()) {
        // The workload's identity, or the pod entry's before its workload is known.
        std::string identity = loaded.snapshot->pod_identity(pod, "cluster.local");
        if (!identity.empty()) {
            identities.push_back(identity);
        }
    }
    if (with_certificates) {
        pki_.publish(tls_, identities);
    }
    const state::Snapshot* published = loaded.snapshot.get();
    snapshots_.store(loaded.snapshot);
    worker_->wake();
    int64_t deadline = monotonic_ns() + 5 * kNanosPerSecond;
    while (worker_->reconciled_snapshot() != published) {
        if (monotonic_ns() >= deadline) {
            return false;
        }
        ::usleep(1000);
    }
    return true;
}

void ProxyNode::publish_certificates(const std::vector<std::string>& identities) {
    pki_.publish(tls_, identities);
    worker_->wake();
}

bool ProxyNode::wait_listening(const std::string& uid, int timeout_ms) {
    int64_t deadline = monotonic_ns() + int64_t(timeout_ms) * kNanosPerMilli;
    while (monotonic_ns() < deadline) {
        for (const proxy::PodStatus& pod : worker_->pod_status()) {
            if (pod.uid == uid && pod.listening) {
                return true;
            }
        }
        ::usleep(1000);
    }
    return false;
}

bool ProxyNode::wait_idle(int timeout_ms) {
    int64_t deadline = monotonic_ns() + int64_t(timeout_ms) * kNanosPerMilli;
    while (worker_->connections() != 0) {
        if (monotonic_ns() >= deadline) {
            return false;
        }
        ::usleep(1000);
    }
    return true;
}

std::string ProxyNode::metrics() const {
    return metrics_->render(telemetry::Format::prometheus_text);
}

uint64_t metric_sum(std::string_view scrape, std::string_view name,
                    std::initializer_list<std::string_view> labels) {
    uint64_t sum = 0;
    size_t at = 0;
    while (at < scrape.size()) {
        size_t end = scrape.find('\n', at);
        if (end == std::string_view::npos) {
            end = scrape.size();
        }
        std::string_view line = scrape.substr(at, end - at);
        at = end + 1;
        if (line.empty() || line[0] == '#' || line.substr(0, name.size()) != name ||
            (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' ')) {
            continue;
        }
        bool all = true;
        for (std::string_view label : labels) {
            all = all && line.find(label) != std::string_view::npos;
        }
        size_t space = line.rfind(' ');
        if (all && space != std::string_view::npos) {
            sum += std::stoull(std::string(line.substr(space + 1)));
        }
    }
    return sum;
}

}  // namespace zt::test
