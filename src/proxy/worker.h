#pragma once

// `Worker` is one data-plane thread: its own io_uring, its own SO_REUSEPORT listeners on 15001,
// 15006 and 15008 inside every captured pod's network namespace, and every connection those
// listeners accept, confined to this thread for life (DESIGN.md "Threads"). The control thread
// publishes snapshots and calls `wake`; the worker then reconciles its pods (listeners for new
// pods, immediate drain of removed ones) and re-checks the policy of every tracked inbound
// connection against the new snapshot (late rejection). docs/architecture.md walks through the
// units a worker runs (pods.h, link.h, tunnel.h, ...).
//
// Everything the control thread may call is thread-safe and never blocks on the data path.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/state/store.h"
#include "zt/clock.h"
#include "zt/result.h"

namespace zt::telemetry {
class StandardMetrics;
}

namespace zt::dns {
struct ServerConfig;
class DnsMetrics;
}  // namespace zt::dns

namespace zt::proxy {

class PodSockets;
class TlsStore;

// WorkerOptions are the settings every worker shares.
struct WorkerOptions {
    std::string trust_domain = "cluster.local";
    uint32_t relays_max = 16384;
    int64_t connect_timeout_ns = 10 * kNanosPerSecond;
    int listen_backlog = 128;
    // pool_streams_max is POOL_MAX_STREAMS_PER_CONNECTION: an outbound HBONE connection carrying
    // this many streams leaves the pool (it keeps serving them and closes after the last).
    size_t pool_streams_max = 100;
    // tunnel_read_buffers is how many 4 KiB buffers each worker lends to HBONE tunnel reads (a
    // power of two up to 32768; 0: every tunnel reads into its own buffer). A read that finds
    // them all lent uses the tunnel's own buffer once.
    uint32_t tunnel_read_buffers = 64;
};

// WorkerShared is what the workers share with the control thread: only immutable data and
// thread-safe publication points. Every pointer must outlive the workers.
struct WorkerShared {
    const state::SnapshotStore* snapshots = nullptr;
    const TlsStore* tls = nullptr;
    // metrics is where the workers count, each into its own shard (null: count nothing).
    telemetry::StandardMetrics* metrics = nullptr;
    // sockets makes every socket the workers make in pods (pod_sockets.h): `InPodSockets` in
    // production, loopback sockets in the in-process tests.
    PodSockets* sockets = nullptr;
    // dns, when set, gives every pod a DNS proxy on 15053 with this config (null: DNS capture
    // off); dns_metrics is where its servers count, shard i for worker i (set with `dns`).
    const dns::ServerConfig* dns = nullptr;
    dns::DnsMetrics* dns_metrics = nullptr;
};

// ConnectionSummary is one open connection as `/config_dump`'s `workloadState` lists it.
struct ConnectionSummary {
    bool inbound = false;
    std::string src;
    std::string original_dst;  // Outbound: where the application connected; inbound: the
                               // destination service hostname, or empty.
    std::string actual_dst;
    std::string protocol;  // "TCP" or "HBONE".
};

// PodStatus is one worker's view of one pod, for readiness and `/config_dump`.
struct PodStatus {
    std::string uid;
    bool listening = false;
    std::string error;  // Why the listeners could not be opened (netns gone, port taken, ...).
    uint32_t connections = 0;
    std::vector<ConnectionSummary> connection_list;  // Filled by `refresh_status` only.
};

class Worker {
public:
    // Worker prepares worker number `index` (also its metrics shard); `start` runs it.
    Worker(int index, WorkerOptions options, WorkerShared shared);

    // ~Worker stops the thread if it still runs (forcefully) and joins it.
    ~Worker();

    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // start creates the thread, which creates its ring; it returns once the ring exists, failing
    // with the ring's error (io_uring refused, ...) so `ztunnel run` can exit with the cause.
    Result<void> start();

    // wake tells the worker that a new snapshot was published.
    void wake();

    // begin_drain stops accepting: every listener closes; open connections continue.
    void begin_drain();

    // force_close ends every open connection now (the drain deadline passed).
    void force_close();

    // stop ends the thread once every connection is gone (use after `force_close` to be quick)
    // and joins it.
    void stop();

    // connections is the number of open connections (approximate; for drain decisions).
    uint32_t connections() const;

    // reconciled_snapshot is the snapshot the worker last reconciled its pods with (null before
    // the first); readiness compares it with the published one.
    const state::Snapshot* reconciled_snapshot() const;

    // pod_status returns the worker's view of every pod it knows, as of its last reconcile or
    // `refresh_status`.
    std::vector<PodStatus> pod_status() const;

    // refresh_status asks the worker to publish its pods' status including every open
    // connection, and waits up to `timeout_ns` for it (for `/config_dump`). Returns false when
    // the worker did not answer in time (the previous status stays).
    bool refresh_status(int64_t timeout_ns);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace zt::proxy
