#pragma once

// WorkloadWait is a pod's start wait: it holds the connections a pod accepted before the worker
// could serve them, because the pod's workload was not in the snapshot yet, or its certificate
// was not published yet. A pod entry that says who the pod is (name, namespace, service
// account: what istio-cni sends over ZDS before istiod knows the workload) gets its listeners at
// once; as ztunnel's `wait_for_workload`, each of its connections then waits up to 5 s for the
// workload. A connection that needs the pod's certificate (inbound HBONE on 15008; outbound
// whose route is HBONE) also waits for it within the same 5 s, as ztunnel's connection path
// awaits the secret manager's fetch: with an agent the certificate reaches ztunnel only when the
// CA answered and the cert folder was read again, often after the pod's first connection.
//
// Waiting never blocks the worker: the accepted socket is parked here, untouched, with its
// deadline. `resume` (called by `Pods::reconcile` after a new snapshot, and on every wake-up of
// the worker, which the control thread sends when it publishes new TLS contexts) hands each
// parked socket whose wait is over to its path, in arrival order. One timer, armed for the
// oldest deadline, ends those whose 5 s passed: one still without its workload is closed with
// ztunnel's error ("failed to fetch information about local workload: ..."), reported as
// `connection failed` and counted in `ztunnel_workload_waits_total{result="timed_out"}`; one
// whose workload is known but whose certificate never came goes to its path once more, which
// fails it as without a wait ("no certificate for identity ..."), counted as
// `result="certificate_timed_out"`. Every socket handed on in time is counted as `found`.

#include <cstdint>
#include <deque>
#include <string_view>

#include "src/proxy/close_cause.h"
#include "src/proxy/ports.h"
#include "uring/ring.h"
#include "zt/clock.h"
#include "zt/unique_fd.h"

namespace zt::state {
struct Workload;
}

namespace zt::proxy {

class WorkerContext;
struct Pod;

// kWorkloadWaitNs is how long a connection waits for its pod's workload and certificate
// (ztunnel's 5 s).
constexpr int64_t kWorkloadWaitNs = 5 * kNanosPerSecond;

// WorkloadWaitState is the wait's timer.
enum class WorkloadWaitState : uint8_t {
    idle,     // No timer in the kernel.
    timing,   // The timer for the oldest deadline is in the kernel.
    closing,  // The pod closed: the timer was cancelled; its completion is still due.
    closed,   // The pod closed and nothing of the wait is in the kernel.
};

std::string_view to_string(WorkloadWaitState state);

// certificate_published says whether the TLS contexts the control thread published hold
// `workload`'s certificate (true when the worker has no TLS store at all: nothing would come).
bool certificate_published(const WorkerContext& context, const state::Workload& workload);

class WorkloadWait {
public:
    WorkloadWait() = default;
    WorkloadWait(const WorkloadWait&) = delete;
    WorkloadWait& operator=(const WorkloadWait&) = delete;

    // must_park says whether a socket `pod` just accepted on its `kind` listener waits here: the
    // pod's workload is unknown in the worker's snapshot, or the socket is inbound HBONE and the
    // pod's certificate is not published. (An outbound socket learns whether it needs the
    // certificate only from its route: `accept_outbound` asks `must_wait_for_certificate`.)
    bool must_park(const WorkerContext& context, const Pod& pod, ListenerKind kind) const;

    // must_wait_for_certificate says whether an outbound socket of the pod whose route is HBONE
    // waits here for `source`'s certificate: it is not published, and the socket's wait is not
    // over (a socket the timer hands on is not parked again).
    bool must_wait_for_certificate(const WorkerContext& context,
                                   const state::Workload& source) const;

    // park keeps `client`, accepted on `pod`'s `kind` listener, for up to kWorkloadWaitNs
    // (`WorkerOptions::workload_wait_ns`) from its arrival; `needs_certificate` says it goes on
    // only once the pod's certificate is published too (inbound HBONE always; outbound once its
    // route was found to be HBONE).
    void park(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client,
              bool needs_certificate);

    // resume hands every parked socket whose wait is over (the pod's workload known, and its
    // certificate published when it needs one) to its path, in arrival order. Call after each
    // new snapshot and each new publication of TLS contexts.
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
        bool needs_certificate;
    };

    // ready says whether `parked`'s wait is over.
    bool ready(const Parked& parked) const;
    // hand_over gives `parked` to its path; a path that parks it again (an outbound socket
    // whose route needs the missing certificate) keeps its deadline. Returns whether it was
    // parked again.
    bool hand_over(Parked& parked);
    // arm starts the timer for the oldest deadline unless it already runs.
    void arm(int64_t now_ns);
    // refuse reports `parked` as `connection failed` with `cause` and closes it.
    void refuse(Parked& parked, const CloseCause& cause);

    WorkerContext* context_ = nullptr;
    Pod* pod_ = nullptr;
    WorkloadWaitState state_ = WorkloadWaitState::idle;
    // parked_ is in arrival order, which is also deadline order: a socket parked again while
    // handed on keeps its earlier deadline, and is appended during `resume`, which handles every
    // socket in order and before any newer one arrives.
    std::deque<Parked> parked_;
    // The deadline of the socket `hand_over` is giving to its path (0: none), and whether that
    // path parked it again.
    int64_t handover_deadline_ns_ = 0;
    bool handover_parked_ = false;
    uring::Timer timer_;
};

}  // namespace zt::proxy
