#pragma once

// In-process ztunnel "nodes" for tests of the proxy (tests/proxy_inprocess_test.cc): each
// `ProxyNode` is what `ztunnel run` assembles around one data-plane worker (a snapshot store fed
// from JSON, the TLS contexts of its pods' identities, Istio's metrics) with its sockets made by
// a shared `LoopbackSockets`, so a client node and a server node talk HBONE on loopback in one
// process, without root. `ProxyPki` is the run-time CA they trust (tests/support/test_ca.h).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/store.h"
#include "src/dns/server.h"
#include "src/proxy/memory_pressure.h"
#include "src/proxy/tls_store.h"
#include "src/proxy/worker.h"
#include "src/state/store.h"
#include "src/telemetry/standard_metrics.h"
#include "tests/support/loopback_sockets.h"
#include "tests/support/test_ca.h"

namespace zt::test {

// ProxyPki is a run-time CA with a certificate store that issues for any identity it is asked
// for, as ztunnel's local-CA mode does.
class ProxyPki {
public:
    explicit ProxyPki(std::string_view trust_domain = "cluster.local");

    // publish issues certificates for `identities` (SPIFFE URIs) and publishes their TLS
    // contexts in `store`.
    void publish(proxy::TlsStore& store, const std::vector<std::string>& identities);

    // client_context is a client TLS context presenting `identity` (a SPIFFE URI).
    std::shared_ptr<const hbone::TlsContext> client_context(const std::string& identity);

    const testing::TestCa& ca() const { return ca_; }

private:
    testing::TestCa ca_;
    std::unique_ptr<certs::CertStore> certs_;
};

// ProxyNode is one node: a worker with its own config, certificates and metrics.
class ProxyNode {
public:
    // With `dns` set, every pod gets the DNS proxy with that config (DNS capture on), its
    // metrics in `metrics()`.
    ProxyNode(LoopbackSockets& sockets, ProxyPki& pki, proxy::WorkerOptions options = {},
              const dns::ServerConfig* dns = nullptr);
    ~ProxyNode();
    ProxyNode(const ProxyNode&) = delete;
    ProxyNode& operator=(const ProxyNode&) = delete;

    // apply loads `config` (ztunnel's JSON), publishes it and its pods' certificates, and waits
    // until the worker reconciled it. False (with the errors in `errors`) when it is invalid or
    // the worker does not take it within 5 s. Without `with_certificates` the TLS contexts stay
    // as they were (a pod whose agent has not written its certificate yet).
    bool apply(std::string_view config, std::string* errors = nullptr,
               bool with_certificates = true);

    // publish_certificates publishes TLS contexts with the certificates of `identities` (SPIFFE
    // URIs; only those) and wakes the worker, as the control thread does when its certificate
    // store loaded a new certificate.
    void publish_certificates(const std::vector<std::string>& identities);

    // wait_listening waits until pod `uid` has its listeners (or `timeout_ms` passed).
    bool wait_listening(const std::string& uid, int timeout_ms = 5000);

    // wait_idle waits until the worker has no open connection (or `timeout_ms` passed).
    bool wait_idle(int timeout_ms = 5000);

    // metrics renders the node's `/metrics` body (Prometheus text).
    std::string metrics() const;

    proxy::Worker& worker() { return *worker_; }

    // shed is the node's memory-pressure signal (src/proxy/memory_pressure.h), which a test
    // raises as the control thread would under pressure.
    proxy::ShedSignal& shed() { return shed_; }

private:
    ProxyPki& pki_;
    proxy::ShedSignal shed_;  // Outlives the worker (declared before).
    state::SnapshotStore snapshots_;
    proxy::TlsStore tls_;
    std::unique_ptr<telemetry::StandardMetrics> metrics_;
    std::unique_ptr<proxy::Worker> worker_;
};

// metric_sum adds up the samples of family `name` (e.g. `istio_tcp_connections_opened_total`)
// in a rendered scrape, over the series whose labels contain every one of `labels` (each
// `key="value"`).
uint64_t metric_sum(std::string_view scrape, std::string_view name,
                    std::initializer_list<std::string_view> labels = {});

}  // namespace zt::test
