// pods_view.cc decides each pod's `/pods` entry from the workers' views and renders the document
// (pods_view.h). A pod is `up` with `listeners: true` only when every worker listens in it; its
// `sha256` is the config content of the oldest snapshot the workers answered for, so it advances
// only once every worker acknowledged a new snapshot. Pods the workers still hold but the
// applied config no longer lists are `draining` until the workers freed them.

#include "src/config/pods_view.h"

#include <algorithm>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

namespace zt::config {

namespace {

using json = nlohmann::json;

// sha_of returns the sha256 of `generation`'s config, or "" when it is no longer remembered.
std::string sha_of(const PodsInputs& inputs, uint64_t generation) {
    for (const auto& [known, sha] : inputs.generations) {
        if (known == generation) {
            return sha;
        }
    }
    return {};
}

// find returns the live view of `uid` in one worker's list (a removed pod's view, which comes
// after the live one of a pod re-created under the same uid, is skipped), or null.
const PodsWorkerView* find(const std::vector<PodsWorkerView>& views, const std::string& uid) {
    for (const PodsWorkerView& view : views) {
        if (view.uid == uid) {
            return &view;
        }
    }
    return nullptr;
}

json entry(const std::string& uid, const std::string& netns, std::string_view state, bool listeners,
           bool workload_known, const std::string& error, const std::string& sha256) {
    json out = json::object();
    out["uid"] = uid;
    out["netns"] = netns;
    out["state"] = std::string(state);
    out["listeners"] = listeners;
    out["workloadKnown"] = workload_known;
    out["error"] = error;
    out["sha256"] = sha256;
    return out;
}

json applied_pod(const PodsInputs& inputs, const PodsAppliedPod& pod) {
    if (!pod.workload_known && !pod.has_info) {
        return entry(pod.uid, pod.netns, "pending", false, false,
                     "unknown workload: no workload with this uid and no "
                     "name/namespace/serviceAccount in the pod entry",
                     inputs.sha256);
    }
    bool all_listening = !inputs.workers.empty();
    bool all_reported = true;
    bool draining = inputs.draining;
    const PodsWorkerView* failed = nullptr;
    std::string error;
    uint64_t oldest = inputs.generation;
    for (const auto& views : inputs.workers) {
        const PodsWorkerView* view = find(views, pod.uid);
        if (view == nullptr || view->draining) {
            // Not reconciled with a snapshot listing it yet, or an older pod of this uid.
            all_reported = false;
            all_listening = false;
            continue;
        }
        oldest = std::min(oldest, view->generation);
        all_listening = all_listening && view->listening;
        if (view->failed && failed == nullptr) {
            failed = view;
        }
        if (error.empty()) {
            error = view->error;
        }
    }
    std::string sha = sha_of(inputs, oldest);
    if (draining) {
        return entry(pod.uid, pod.netns, "draining", false, pod.workload_known, error, sha);
    }
    if (failed != nullptr) {
        return entry(pod.uid, pod.netns, "failed", false, pod.workload_known, failed->error, sha);
    }
    if (all_listening && all_reported) {
        return entry(pod.uid, pod.netns, "up", true, pod.workload_known, "", sha);
    }
    if (error.empty() && !all_reported) {
        error = "waiting for the workers to apply the config";
    }
    return entry(pod.uid, pod.netns, "pending", false, pod.workload_known, error, sha);
}

}  // namespace

std::string render_pods(const PodsInputs& inputs) {
    json doc = json::object();
    json config = json::object();
    config["sha256"] = inputs.sha256;
    config["generation"] = inputs.generation;
    doc["config"] = std::move(config);
    json pods = json::array();
    std::set<std::string> listed;
    for (const PodsAppliedPod& pod : inputs.pods) {
        pods.push_back(applied_pod(inputs, pod));
        listed.insert(pod.uid);
    }
    // Pods the config no longer lists that some worker still holds: draining until freed.
    for (const auto& views : inputs.workers) {
        for (const PodsWorkerView& view : views) {
            if (listed.count(view.uid) != 0) {
                continue;
            }
            listed.insert(view.uid);
            pods.push_back(entry(view.uid, "", "draining", false, false, view.error,
                                 sha_of(inputs, view.generation)));
        }
    }
    doc["pods"] = std::move(pods);
    return doc.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace) + "\n";
}

}  // namespace zt::config
