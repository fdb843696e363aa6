#pragma once

// WorkloadWait holds the connections a pod accepted while its workload was not in the snapshot
// yet. A pod entry that says who the pod is (name, namespace, service account: what istio-cni
// sends over ZDS before istiod knows the workload) gets its listeners at once; as ztunnel's
// `wait_for_workload`, each of its connections then waits up to 5 s for the workload. Waiting
// never blocks the worker: the accepted socket is parked here, untouched, with its deadline. A
// new snapshot (`Pods::reconcile` calls `resume`) hands every parked socket to its path, in
// arrival order, once the workload is known; one timer, armed for the oldest deadline, closes
// those whose 5 s passed with ztunnel's error ("failed to fetch information about local
// workload: ..."), each reported as `connection failed` and counted in
// `ztunnel_workload_waits_total{result="timed_out"}`.

#include <cstdint>
#include <deque>
#include <string_view>

#include "src/proxy/close_cause.h"
#include "src/proxy/ports.h"
#include "uring/ring.h"
#include "zt/clock.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

// kWorkloadWaitNs is how long a connection waits for its pod's workload (ztunnel's 5 s).
constexpr int64_t kWorkloadWaitNs = 5 * kNanosPerSecond;

// WorkloadWaitState is the wait's timer.
enum class WorkloadWaitState : uint8_t {
    idle,     // No timer in the kernel.
    timing,   // The timer for the oldest deadline is in the kernel.
    closing,  // The pod closed: the timer was cancelled; its completion is still due.
    closed,   // The pod closed and nothing of the wait is in the kernel.
};

std::string_view to_string(WorkloadWaitState state);

class WorkloadWait {
public:
    WorkloadWait() = default;
    WorkloadWait(const WorkloadWait&) = delete;
    WorkloadWait& operator=(const WorkloadWait&) = delete;

    // must_park says whether a socket `pod` just accepted waits here: its workload is unknown
    // in the worker's snapshot, or earlier sockets still wait (arrival order is kept).
    bool must_park(const WorkerContext& context, const Pod& pod) const;

    // park keeps `client`, accepted on `pod`'s `kind` listener, for up to kWorkloadWaitNs.
    void park(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client);

    // resume hands every parked socket to its path when the pod's workload is now known (call
    // after each new snapshot).
    void resume();

    // close refuses every parked socket with `cause` (reported as `connection failed`) and stops
    // the timer; the pod may be freed once `busy` is false.
    void close(const CloseCause& cause);

    // busy says whether the timer is still in the kernel.
    bool busy() const { return timer_.completion.in_kernel; }

    size_t size() const { return parked_.size(); }

    WorkloadWaitState state() const { return state_; }

    WorkerContext& context() { return *context_; }

    void on_timer(int32_t res, uint32_t flags);

private:
    struct Parked {
        ListenerKind kind;
        UniqueFd client;
        int64_t deadline_ns;
    };

    // arm starts the timer for the oldest deadline unless it already runs.
    void arm(int64_t now_ns);
    // refuse reports `parked` as `connection failed` with `cause` and closes it.
    void refuse(Parked& parked, const CloseCause& cause);

    WorkerContext* context_ = nullptr;
    Pod* pod_ = nullptr;
    WorkloadWaitState state_ = WorkloadWaitState::idle;
    std::deque<Parked> parked_;
    uring::Timer timer_;
};

}  // namespace zt::proxy
