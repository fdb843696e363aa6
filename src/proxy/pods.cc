// pods.cc keeps one worker's pods equal to the snapshot's, ends what a removed pod owns, and
// re-judges tracked inbound connections after each config change.

#include "src/proxy/pods.h"

#include <algorithm>

#include "src/inpod/netns.h"
#include "src/proxy/worker_context.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

// A pod whose listeners failed to open is retried after 1 s, then 2, 4, 8 and every 16 s: a port
// another process holds in the pod, or a momentary fd shortage, heals without a config change.
constexpr int64_t kListenRetryFirstNs = 1 * kNanosPerSecond;
constexpr int64_t kListenRetryMaxNs = 16 * kNanosPerSecond;

}  // namespace

std::string_view to_string(PodState state) {
    switch (state) {
        case PodState::waiting:
            return "waiting";
        case PodState::failed:
            return "failed";
        case PodState::listening:
            return "listening";
        case PodState::draining:
            return "draining";
        case PodState::closing:
            return "closing";
    }
    return "unknown";
}

bool Pods::namespace_replaced(const Pod& pod, const state::Pod& wanted, bool look_again) const {
    const inpod::Netns& netns = pod.network.netns;
    if (!look_again && wanted.netns == netns.path()) {
        return false;
    }
    // One stat first; only a path that names another inode now is opened and checked (it must
    // be a network namespace to replace the old one).
    if (netns.names_same_namespace(wanted.netns)) {
        return false;
    }
    auto current = inpod::Netns::open(wanted.netns);
    return current && (current->inode() != netns.inode() || current->device() != netns.device());
}

void Pods::reconcile() {
    reconcile(false);
}

void Pods::reconcile(bool look_at_namespaces) {
    const state::Snapshot& snapshot = *context_.snapshot;
    // Pods that left the file (or whose workload vanished) are drained at once, as ztunnel does
    // on a ZDS delete; a pod re-created under the same uid gets a new namespace, so its
    // listeners are replaced. A config change only compares each pod's path (a ZDS add must not
    // cost a look at every pod's namespace); the tick looks at the namespaces themselves.
    std::vector<std::string> gone;
    for (auto& [uid, pod] : pods_) {
        const state::Pod* wanted = snapshot.pod_by_uid(uid);
        if (wanted == nullptr || snapshot.pod_pending(*wanted) ||
            namespace_replaced(*pod, *wanted, look_at_namespaces)) {
            gone.push_back(uid);
        }
    }
    for (const std::string& uid : gone) {
        auto node = pods_.extract(uid);
        close_pod(std::move(node.mapped()), CloseReason::pod_removed);
    }
    if (!context_.draining) {
        for (const state::Pod& wanted : snapshot.pods()) {
            if (snapshot.pod_pending(wanted) || pods_.count(wanted.uid) != 0) {
                continue;
            }
            auto netns = inpod::Netns::open(wanted.netns);
            PodNetwork network{wanted.uid, netns ? std::move(*netns)
                                                 : inpod::Netns(UniqueFd(), 0, 0, wanted.netns)};
            auto pod = std::make_unique<Pod>(std::move(network), context_.pool_policy());
            Pod& ref = *pod;
            pods_.emplace(wanted.uid, std::move(pod));
            if (!netns) {
                // Retried on the next reconcile; reported through the pod's status meanwhile.
                ref.error = "network namespace " + wanted.netns + ": " +
                            errno_text(netns.error().sys_errno);
                log::warn(
                        "proxy", "pod network namespace unavailable",
                        {log::Field::str("pod", wanted.uid), log::Field::str("netns", wanted.netns),
                         log::Field::str("error", errno_text(netns.error().sys_errno))});
                continue;
            }
            open_pod(ref, monotonic_ns());
        }
        for (auto& [uid, pod] : pods_) {
            if (pod->state != PodState::waiting || pod->network.netns.fd() >= 0) {
                continue;
            }
            const state::Pod* wanted = snapshot.pod_by_uid(uid);
            auto netns = wanted ? inpod::Netns::open(wanted->netns)
                                : Result<inpod::Netns>(fail(Errc::not_found));
            if (netns) {
                pod->network.netns = std::move(*netns);
                pod->error.clear();
                open_pod(*pod, monotonic_ns());
            }
        }
    }
    // Connections that waited for their pod's workload go on once this snapshot has it.
    resume_waits();
    recheck_policies();
}

void Pods::resume_waits() {
    for (auto& [uid, pod] : pods_) {
        pod->waiting.resume();
    }
}

bool Pods::open_pod(Pod& pod, int64_t now_ns) {
    if (!pod.listeners.open(context_, pod, pod.error)) {
        pod.state = PodState::failed;
        pod.retry_backoff_ns = pod.retry_backoff_ns == 0
                                       ? kListenRetryFirstNs
                                       : std::min(pod.retry_backoff_ns * 2, kListenRetryMaxNs);
        pod.retry_at_ns = now_ns + pod.retry_backoff_ns;
        log::error(
                "proxy", "cannot open pod listener",
                {log::Field::str("pod", pod.uid()), log::Field::str("error", pod.error),
                 log::Field::num("retry_in_ms", uint64_t(pod.retry_backoff_ns / kNanosPerMilli))});
        return false;
    }
    bool retried = pod.state == PodState::failed;
    pod.state = PodState::listening;
    pod.error.clear();
    pod.retry_backoff_ns = 0;
    if (context_.index == 0 || retried) {
        log::info("proxy", "pod listeners up", {log::Field::str("pod", pod.uid())});
    }
    return true;
}

void Pods::close_pod(std::unique_ptr<Pod> pod, CloseReason reason) {
    pod->state = PodState::closing;
    pod->listeners.close();
    pod->waiting.close(CloseCause::of(reason));
    CloseCause why = CloseCause::of(reason);
    for (ProxiedConnection* connection : pod->connections.members()) {
        if (connection->relay != 0) {
            connection->imposed = why;
            context_.relays->abort(connection->relay);
        }
    }
    for (Link* link : pod->links.members()) {
        link->abort_streams(why);
    }
    closing_.push_back(std::move(pod));
}

void Pods::release_closed() {
    for (size_t i = 0; i < closing_.size();) {
        Pod& pod = *closing_[i];
        if (pod.listeners.busy() || pod.waiting.busy() || !pod.connections.empty() ||
            !pod.links.empty() || !pod.tunnels.empty() || !pod.resolutions.empty()) {
            ++i;
            continue;
        }
        closing_.erase(closing_.begin() + long(i));
    }
}

void Pods::recheck_policies() {
    const state::Snapshot& snapshot = *context_.snapshot;
    for (auto& [uid, pod] : pods_) {
        // A pod with nothing open has nothing to re-judge: skipping it keeps a config change
        // (a ZDS add, say) from costing a policy lookup for every idle pod of the node.
        if (pod->connections.empty()) {
            continue;
        }
        const state::Workload* workload = snapshot.workload_by_uid(uid);
        if (workload == nullptr) {
            continue;
        }
        std::vector<const state::Policy*> policies = snapshot.policies_for(*workload);
        std::vector<ProxiedConnection*> denied;
        pod->connections.for_each([&](const ProxiedConnection& connection) {
            if (connection.policy_tracked && !connection.imposed.is_error() &&
                !evaluate(policies, connection.rbac).allowed) {
                denied.push_back(const_cast<ProxiedConnection*>(&connection));
            }
        });
        for (ProxiedConnection* connection : denied) {
            connection->imposed = CloseCause::of(CloseReason::policy_change);
            if (connection->relay != 0) {
                context_.relays->abort(connection->relay);
            } else if (connection->tunnel != nullptr) {
                connection->tunnel->fail(connection->imposed);
            }
        }
    }
}

void Pods::drain() {
    for (auto& [uid, pod] : pods_) {
        if (pod->state == PodState::listening) {
            pod->state = PodState::draining;
        }
        pod->listeners.close();
        pod->waiting.close(CloseCause::of(CloseReason::drained));
        for (Link* link : pod->links.members()) {
            link->drain();
        }
    }
}

void Pods::end_all(const CloseCause& cause) {
    context_.relays->drain();
    for (auto& [uid, pod] : pods_) {
        for (Link* link : pod->links.members()) {
            link->abort_streams(cause);
        }
    }
}

void Pods::close_all() {
    std::vector<std::string> uids;
    for (auto& [uid, pod] : pods_) {
        uids.push_back(uid);
    }
    for (const std::string& uid : uids) {
        auto node = pods_.extract(uid);
        close_pod(std::move(node.mapped()), CloseReason::shutting_down);
    }
}

bool Pods::tick(int64_t now_ns) {
    auto tick_links = [now_ns](Pod& pod) {
        for (Link* link : pod.links.members()) {
            link->tick(now_ns);
        }
    };
    bool changed = false;
    // A namespace recreated under the same path (a file-mode pod whose sandbox came back) is
    // noticed here, within a tick, whether or not the config changes.
    if (context_.snapshot != nullptr && !context_.draining) {
        const state::Snapshot& snapshot = *context_.snapshot;
        for (auto& [uid, pod] : pods_) {
            const state::Pod* wanted = snapshot.pod_by_uid(uid);
            if (pod->network.netns.fd() >= 0 && wanted != nullptr &&
                namespace_replaced(*pod, *wanted, true)) {
                reconcile(true);
                changed = true;
                break;
            }
        }
    }
    for (auto& [uid, pod] : pods_) {
        tick_links(*pod);
        if (pod->state == PodState::failed && !context_.draining && now_ns >= pod->retry_at_ns) {
            changed = open_pod(*pod, now_ns) || changed;
        }
    }
    for (auto& pod : closing_) {
        tick_links(*pod);
    }
    return changed;
}

std::vector<PodStatus> Pods::status(bool with_connections) const {
    std::vector<PodStatus> out;
    for (const auto& [uid, pod] : pods_) {
        PodStatus& entry = out.emplace_back();
        entry.uid = uid;
        entry.snapshot = context_.snapshot.get();
        entry.listening = pod->listeners.listening();
        entry.failed = pod->state == PodState::failed;
        entry.draining = pod->state == PodState::draining;
        entry.error = pod->error;
        entry.connections = uint32_t(pod->connections.size());
        entry.waiting = uint32_t(pod->waiting.size());
        if (!with_connections) {
            continue;
        }
        pod->connections.for_each([&entry](const ProxiedConnection& connection) {
            ConnectionSummary& summary = entry.connection_list.emplace_back();
            summary.inbound = connection.inbound();
            summary.src = connection.log.src_addr;
            summary.original_dst = connection.original_dst;
            summary.actual_dst = connection.log.dst_addr;
            summary.protocol = connection.hbone() ? "HBONE" : "TCP";
        });
    }
    // Removed pods still ending their connections come last (a pod re-created under the same
    // uid is found first), listed until they are freed.
    for (const auto& pod : closing_) {
        PodStatus& entry = out.emplace_back();
        entry.uid = pod->uid();
        entry.snapshot = context_.snapshot.get();
        entry.draining = true;
        entry.connections = uint32_t(pod->connections.size());
    }
    return out;
}

}  // namespace zt::proxy
