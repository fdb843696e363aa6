#pragma once

// `GET /pods` on the admin server: per captured pod, whether every worker has its listeners open
// and for which config content, so the agent acks a ZDS add only once they are (README.md "Admin
// endpoints" has the contract). The control thread gathers the inputs (the applied snapshot, its
// file's sha256 and generation, each worker's last published view of its pods); deciding each
// pod's state and rendering the JSON is this pure function.

#include <cstdint>
#include <string>
#include <vector>

namespace zt::config {

// PodsWorkerView is one worker's view of one pod, as it last published it.
struct PodsWorkerView {
    std::string uid;
    uint64_t generation = 0;  // Of the snapshot the worker answered for; 0: unknown (too old).
    bool listening = false;
    bool failed = false;
    bool draining = false;
    std::string error;
};

// PodsAppliedPod is one pod of the applied snapshot.
struct PodsAppliedPod {
    std::string uid;
    std::string netns;
    bool workload_known = false;  // Its uid is among the snapshot's `workloads`.
    bool has_info = false;        // The entry carries name, namespace and serviceAccount.
};

// PodsInputs is everything `/pods` shows. `generations` maps a generation to its config's sha256
// (the last few applied); `workers` holds one list per worker.
struct PodsInputs {
    std::string sha256;       // Of the file bytes of the applied snapshot; empty: none yet.
    uint64_t generation = 0;  // Applied snapshots so far.
    bool draining = false;    // ztunnel is shutting down.
    std::vector<PodsAppliedPod> pods;
    std::vector<std::vector<PodsWorkerView>> workers;
    std::vector<std::pair<uint64_t, std::string>> generations;
};

// render_pods renders the `/pods` document.
std::string render_pods(const PodsInputs& inputs);

}  // namespace zt::config
