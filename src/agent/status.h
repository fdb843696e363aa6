#pragma once

// The agent's state as its admin server shows it (`GET /debug`): the agent thread publishes a
// copy after every batch of events, the main thread renders it on request. A board with a lock
// is all the two threads share (besides readiness and metrics, which are thread-safe).

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "src/agent/ads_client.h"
#include "src/agent/ads_session.h"
#include "src/agent/ca_client.h"
#include "src/agent/config_writer.h"
#include "src/agent/zds_client.h"

namespace zt::agent {

// AgentSnapshot is one published copy of the agent's state.
struct AgentSnapshot {
    int64_t started_unix_ns = 0;
    bool xds_enabled = false;
    bool xds_ready = false;   // Every type ACKed once.
    bool xds_synced = false;  // Every type had a response applied (the file may be written).
    AdsClientStatus xds;
    std::vector<TypeStatus> types;
    size_t workloads = 0;
    size_t services = 0;
    size_t policies = 0;
    uint64_t rejected_total = 0;
    std::string static_file;
    std::string static_error;
    WriterStatus writer;
    bool ca_enabled = false;
    std::vector<CertStatus> certificates;
    bool zds_enabled = false;
    ZdsStatus zds;
};

// StatusBoard holds the latest snapshot. Thread-safe.
class StatusBoard {
public:
    void publish(AgentSnapshot snapshot) {
        std::lock_guard lock(mutex_);
        snapshot_ = std::move(snapshot);
    }

    AgentSnapshot read() const {
        std::lock_guard lock(mutex_);
        return snapshot_;
    }

private:
    mutable std::mutex mutex_;
    AgentSnapshot snapshot_;
};

// render_debug_json renders `snapshot` (and the readiness tasks still `pending`) as the JSON body
// of `GET /debug`: `xds` (connection, per-type last ACK/NACK, resource counts), `configFile`
// (path, writes, last write, sha256, counts, last error), `static`, `ready`, `pending`,
// `certificates` (per identity: state, expiry, renewal, last error), `zds` (connection, acks,
// last NACK) and `pods` (from istio-cni: uid, workload uid, pin, identity parts).
std::string render_debug_json(const AgentSnapshot& snapshot,
                              const std::vector<std::string>& pending);

}  // namespace zt::agent
