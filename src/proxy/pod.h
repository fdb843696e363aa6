#pragma once

// Pod is one captured pod on one worker: its network namespace, its listeners, and everything
// they started and the pod owns: its proxied connections, its HBONE links (client links dialled
// from its outbound side and server links accepted on its 15008), its tunnels, its link pool, and
// its outbound connections waiting for on-demand DNS.
// A removed pod closes its listeners and ends everything it owns, then waits (`Pods`) until every
// one is gone before it is freed.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/proxy/link.h"
#include "src/proxy/on_demand.h"
#include "src/proxy/owned_set.h"
#include "src/proxy/pod_listeners.h"
#include "src/proxy/pod_sockets.h"
#include "src/proxy/pool.h"
#include "src/proxy/proxied_connection.h"
#include "src/proxy/tunnel.h"
#include "src/proxy/workload_wait.h"

namespace zt::proxy {

// PodState is a pod's life on one worker.
enum class PodState : uint8_t {
    waiting,    // No listeners yet: its namespace could not be opened (retried on reconcile).
    failed,     // Its listeners could not be opened (`error` says why); retried with backoff.
    listening,  // Accepting.
    draining,   // ztunnel drains: listeners closed, connections finish.
    closing,    // Removed: listeners closed and everything ended; freed once all is gone.
};

std::string_view to_string(PodState state);

struct Pod {
    Pod(PodNetwork network_, const PoolPolicy& pool_policy)
        : network(std::move(network_)), pool(pool_policy) {}

    Pod(const Pod&) = delete;
    Pod& operator=(const Pod&) = delete;

    const std::string& uid() const { return network.uid; }

    // accepting says whether new connections and streams are taken.
    bool accepting() const { return state == PodState::listening; }

    PodNetwork network;
    PodState state = PodState::waiting;
    std::string error;  // Why the listeners could not be opened.
    // A failed pod's next attempt to open its listeners, and the wait before the one after.
    int64_t retry_at_ns = 0;
    int64_t retry_backoff_ns = 0;
    PodListeners listeners;
    WorkloadWait waiting;  // Connections accepted before the workload was known.
    OwnedSet<ProxiedConnection> connections;
    OwnedSet<Link> links;
    OwnedSet<Tunnel> tunnels;
    LinkPool<Link> pool;  // The client links that may take more streams.
    // resolutions are outbound connections waiting for on-demand DNS (declared after
    // `listeners`, whose DNS server they use, so they go first).
    OwnedSet<OnDemand> resolutions;
};

}  // namespace zt::proxy
