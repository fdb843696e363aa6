#pragma once

// Pods is one worker's set of captured pods, kept equal to the snapshot's `pods` (ztunnel's ZDS
// state): `reconcile` opens listeners for new pods (retrying those whose namespace was not there
// yet), drains removed ones at once (and a pod re-created under the same uid, which comes back
// with a new namespace), and judges every tracked inbound connection against the new policies
// (late rejection). Closed pods wait here until everything they owned is gone.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/proxy/close_cause.h"
#include "src/proxy/pod.h"
#include "src/proxy/worker.h"

namespace zt::proxy {

class WorkerContext;

class Pods {
public:
    explicit Pods(WorkerContext& context) : context_(context) {}

    Pods(const Pods&) = delete;
    Pods& operator=(const Pods&) = delete;

    // reconcile brings the pods in line with `context.snapshot` (which just changed).
    void reconcile();

    // resume_waits hands on the connections that waited for their pod's workload or
    // certificate and need wait no longer (workload_wait.h): after a new snapshot (`reconcile`
    // calls it) and whenever the control thread published new TLS contexts.
    void resume_waits();

    // drain stops accepting: every listener closes and every link sends GOAWAY; open
    // connections go on.
    void drain();

    // end_all ends every connection now with `cause` (the drain deadline passed).
    void end_all(const CloseCause& cause);

    // close_all removes every pod (ztunnel stops).
    void close_all();

    // tick passes time to every link and retries the listeners of failed pods whose backoff
    // passed; true when a pod's state changed (its status is worth publishing).
    bool tick(int64_t now_ns);

    // release_closed frees removed pods that own nothing any more.
    void release_closed();

    // status is every pod's view for readiness and `/config_dump`, with each open connection
    // when `with_connections`.
    std::vector<PodStatus> status(bool with_connections) const;

    // closing_count is how many removed pods still end what they owned.
    size_t closing_count() const { return closing_.size(); }

    // empty says whether no pod is left, open or closing.
    bool empty() const { return pods_.empty() && closing_.empty(); }

private:
    // reconcile with `look_at_namespaces` also replaces a pod whose path now names another
    // network namespace (the tick's check); without it only a changed path is looked at.
    void reconcile(bool look_at_namespaces);

    // namespace_replaced says whether `wanted`'s netns path names another network namespace
    // than the one `pod`'s listeners live in: only when the path changed, unless `look_again`.
    bool namespace_replaced(const Pod& pod, const state::Pod& wanted, bool look_again) const;

    // open_pod opens the listeners of `pod`; on failure (EADDRINUSE, EMFILE, ...) the pod is
    // `failed` and retried from `tick` after a backoff (kListenRetryFirstNs, doubling up to
    // kListenRetryMaxNs). True when it listens.
    bool open_pod(Pod& pod, int64_t now_ns);
    // close_pod ends everything `pod` owns with `reason` and keeps it until all of it is gone.
    void close_pod(std::unique_ptr<Pod> pod, CloseReason reason);
    // recheck_policies ends the tracked inbound connections the new policies deny.
    void recheck_policies();

    WorkerContext& context_;
    std::unordered_map<std::string, std::unique_ptr<Pod>> pods_;
    std::vector<std::unique_ptr<Pod>> closing_;
};

}  // namespace zt::proxy
