// workload_wait.cc parks the sockets a pod accepted before its workload was known, hands them to
// their paths when a snapshot brings the workload, and closes those that waited 5 s in vain, as
// ztunnel's `wait_for_workload` does (workload_wait.h).

#include "src/proxy/workload_wait.h"

#include <string>

#include "src/proxy/pod.h"
#include "src/proxy/pod_listeners.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/worker_context.h"
#include "zt/assert.h"

namespace zt::proxy {

namespace {

// workload_info_text is how ztunnel prints a `WorkloadInfo` in its errors: `sa.ns (name)`.
std::string workload_info_text(const WorkerContext& context, const Pod& pod) {
    const state::Pod* entry = context.snapshot ? context.snapshot->pod_by_uid(pod.uid()) : nullptr;
    if (entry == nullptr || !entry->has_info()) {
        return pod.uid();
    }
    return entry->service_account + "." + entry->namespace_ + " (" + entry->name + ")";
}

}  // namespace

std::string_view to_string(WorkloadWaitState state) {
    switch (state) {
        case WorkloadWaitState::idle:
            return "idle";
        case WorkloadWaitState::timing:
            return "timing";
        case WorkloadWaitState::closing:
            return "closing";
        case WorkloadWaitState::closed:
            return "closed";
    }
    return "unknown";
}

bool WorkloadWait::must_park(const WorkerContext& context, const Pod& pod) const {
    if (!parked_.empty()) {
        return true;
    }
    return context.snapshot != nullptr && context.snapshot->workload_by_uid(pod.uid()) == nullptr;
}

void WorkloadWait::park(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client) {
    ZT_ASSERT(state_ == WorkloadWaitState::idle || state_ == WorkloadWaitState::timing);
    context_ = &context;
    pod_ = &pod;
    int64_t now = monotonic_ns();
    parked_.push_back(Parked{kind, std::move(client), now + kWorkloadWaitNs});
    arm(now);
}

void WorkloadWait::arm(int64_t now_ns) {
    if (state_ != WorkloadWaitState::idle || parked_.empty()) {
        return;
    }
    timer_.completion.callback = &on_completion<WorkloadWait, &WorkloadWait::on_timer>;
    timer_.completion.context = this;
    state_ = WorkloadWaitState::timing;
    // A millisecond late rather than early: the timer then always finds the oldest expired.
    context_->ring.arm_timer(timer_, parked_.front().deadline_ns - now_ns + kNanosPerMilli);
}

void WorkloadWait::resume() {
    if (parked_.empty() || context_ == nullptr ||
        context_->snapshot->workload_by_uid(pod_->uid()) == nullptr) {
        return;
    }
    // The timer stays armed: it finds nothing due and stops. Each socket goes to its path in
    // arrival order; the deque is emptied first so that nothing parks behind them.
    std::deque<Parked> ready = std::move(parked_);
    parked_.clear();
    for (Parked& parked : ready) {
        context_->counters.workload_wait("found");
        dispatch_accepted(*context_, *pod_, parked.kind, std::move(parked.client));
    }
}

void WorkloadWait::on_timer(int32_t, uint32_t) {
    if (state_ == WorkloadWaitState::closing) {
        state_ = WorkloadWaitState::closed;
        return;
    }
    state_ = WorkloadWaitState::idle;
    int64_t now = monotonic_ns();
    CloseCause cause = CloseCause::of(CloseReason::local_workload_timeout,
                                      workload_info_text(*context_, *pod_));
    while (!parked_.empty() && parked_.front().deadline_ns <= now) {
        context_->counters.workload_wait("timed_out");
        refuse(parked_.front(), cause);
        parked_.pop_front();
    }
    arm(now);
}

void WorkloadWait::close(const CloseCause& cause) {
    for (Parked& parked : parked_) {
        refuse(parked, cause);
    }
    parked_.clear();
    if (state_ == WorkloadWaitState::closing || state_ == WorkloadWaitState::closed) {
        return;
    }
    if (state_ == WorkloadWaitState::timing) {
        state_ = WorkloadWaitState::closing;
        context_->ring.cancel_timer(timer_);
        return;
    }
    state_ = WorkloadWaitState::closed;
}

void WorkloadWait::refuse(Parked& parked, const CloseCause& cause) {
    int fd = parked.client.get();
    state::SocketAddr peer = peer_address(fd);
    state::SocketAddr destination = local_address(fd);
    if (captures(parked.kind)) {
        if (auto original = context_->sockets.original_destination(pod_->network, fd)) {
            destination = *original;
        }
    }
    auto direction = parked.kind == ListenerKind::outbound ? telemetry::Direction::outbound
                                                           : telemetry::Direction::inbound;
    refuse_connection(*context_, peer, destination, direction, cause);
    parked.client.reset();
}

}  // namespace zt::proxy
