#pragma once

// `Worker` is one data-plane thread: its own io_uring, its own SO_REUSEPORT listeners on 15001,
// 15006 and 15008 inside every captured pod's network namespace, and every connection those
// listeners accept, confined to this thread for life (docs/design.md "Threads"). The control thread
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
struct ShedSignal;

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
    // The caps of src/proxy/limits.h, per worker; 0 disables one. Each refusal is counted as
    // `ztunnel_connections_refused_total{reason}` (README "Limits").
    // pending_handshakes_max: inbound TLS handshakes not yet finished (a peer that stalls after
    // its ClientHello holds one until the 10 s handshake deadline).
    uint32_t pending_handshakes_max = 1024;
    // hbone_connections_max: HBONE links, client and server.
    uint32_t hbone_connections_max = 16384;
    // peer_connections_max / peer_streams_max: server links and inbound streams of one peer
    // identity.
    uint32_t peer_connections_max = 1024;
    uint32_t peer_streams_max = 4096;
    // fd_reserve: descriptors kept for listeners and the operator servers; a data-path socket
    // numbered at or above the soft RLIMIT_NOFILE minus this (at most half the limit) is closed.
    uint32_t fd_reserve = 64;
    // ring_entries sizes the worker's io_uring submission queue; ring_refused_submits_for_testing
    // makes its first N submits for room fail (uring::RingOptions), for tests of the full-queue
    // path and its metric.
    uint32_t ring_entries = 256;
    uint32_t ring_refused_submits_for_testing = 0;
    // first_stream_id is the id of a new outbound link's first HTTP/2 stream (odd). Only tests
    // change it: near 2^31 a link runs out of stream ids after a few tunnels.
    int32_t first_stream_id = 1;
    // workload_wait_ns is how long a pod's connection waits for the pod's workload and
    // certificate (workload_wait.h: kWorkloadWaitNs, ztunnel's 5 s). Only tests change it: a
    // long wait tells a connection the worker's wake-up handed on from one the timer did.
    int64_t workload_wait_ns = 5 * kNanosPerSecond;
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
    // shed, when set, tells the workers to refuse new work under memory pressure and collects
    // their count of refusals (memory_pressure.h); null: never shed.
    ShedSignal* shed = nullptr;
    // status_fd, when >= 0, is an eventfd each worker adds 1 to after it published its pods'
    // status, so the control thread answers a waiting `GET /pods` at once instead of polling.
    int status_fd = -1;
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

// PodStatus is one worker's view of one pod, for readiness, `/config_dump` and `/pods`.
struct PodStatus {
    std::string uid;
    // snapshot is the snapshot this view answers for (the worker's, when it published it); only
    // compared, never dereferenced, by the control thread.
    const state::Snapshot* snapshot = nullptr;
    bool listening = false;
    bool failed = false;    // Its listeners could not be opened.
    bool draining = false;  // ztunnel drains, or the pod left the config and its connections end.
    std::string error;      // Why the listeners could not be opened (netns gone, port taken, ...).
    uint32_t connections = 0;
    uint32_t waiting = 0;  // Connections waiting for the pod's workload or certificate.
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

    // wake tells the worker that a new snapshot or new TLS contexts were published.
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

    // published_snapshot is the snapshot the last published `pod_status` answers for (null
    // before the first); only compared, never dereferenced.
    const state::Snapshot* published_snapshot() const;

    // refresh_status asks the worker to publish its pods' status including every open
    // connection, and waits up to `timeout_ns` for it (for `/config_dump`). Returns false when
    // the worker did not answer in time (the previous status stays).
    bool refresh_status(int64_t timeout_ns);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace zt::proxy
