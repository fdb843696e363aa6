// workload_wait.cc parks the sockets a pod accepted before its workload was known or its
// certificate published, hands them to their paths when a snapshot brings the workload and the
// control thread the certificate, and ends those that waited 5 s in vain, as ztunnel's
// `wait_for_workload` and its wait for the secret manager's fetch do (workload_wait.h).

#include "src/proxy/workload_wait.h"

#include <algorithm>
#include <string>

#include "src/proxy/pod.h"
#include "src/proxy/pod_listeners.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/tls_store.h"
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

bool certificate_published(const WorkerContext& context, const state::Workload& workload) {
    if (context.shared.tls == nullptr) {
        return true;
    }
    std::shared_ptr<const TlsContexts> tls = context.shared.tls->load();
    return tls != nullptr && tls->find(workload.identity(context.options.trust_domain)) != nullptr;
}

bool WorkloadWait::must_park(const WorkerContext& context, const Pod& pod,
                             ListenerKind kind) const {
    if (context.snapshot == nullptr) {
        return false;
    }
    const state::Workload* workload = context.snapshot->workload_by_uid(pod.uid());
    if (workload == nullptr) {
        return true;
    }
    // Sockets that wait for nothing go on even while others wait for the certificate: a pod
    // whose certificate is late (or refused) keeps serving plaintext at once. Those that wait
    // for it keep their arrival order among themselves.
    return kind == ListenerKind::inbound_hbone && !certificate_published(context, *workload);
}

bool WorkloadWait::must_wait_for_certificate(const WorkerContext& context,
                                             const state::Workload& source) const {
    if (state_ == WorkloadWaitState::closing || state_ == WorkloadWaitState::closed) {
        return false;
    }
    if (handover_deadline_ns_ != 0 && handover_deadline_ns_ <= monotonic_ns()) {
        return false;
    }
    return !certificate_published(context, source);
}

void WorkloadWait::park(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client,
                        bool needs_certificate) {
    ZT_ASSERT(state_ == WorkloadWaitState::idle || state_ == WorkloadWaitState::timing);
    context_ = &context;
    pod_ = &pod;
    int64_t now = monotonic_ns();
    int64_t deadline = now + context.options.workload_wait_ns;
    if (handover_deadline_ns_ != 0) {
        // Handed on and parked again (outbound, its route needs the certificate): the wait is
        // one wait of 5 s since the socket arrived.
        deadline = handover_deadline_ns_;
        handover_parked_ = true;
    }
    parked_.push_back(Parked{kind, std::move(client), deadline, needs_certificate});
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
    int64_t wait_ns = std::max<int64_t>(parked_.front().deadline_ns - now_ns, 0);
    context_->ring.arm_timer(timer_, wait_ns + kNanosPerMilli);
}

bool WorkloadWait::ready(const Parked& parked) const {
    const state::Workload* workload = context_->snapshot->workload_by_uid(pod_->uid());
    return workload != nullptr &&
           (!parked.needs_certificate || certificate_published(*context_, *workload));
}

bool WorkloadWait::hand_over(Parked& parked) {
    handover_deadline_ns_ = parked.deadline_ns;
    handover_parked_ = false;
    dispatch_accepted(*context_, *pod_, parked.kind, std::move(parked.client));
    handover_deadline_ns_ = 0;
    return handover_parked_;
}

void WorkloadWait::resume() {
    if (parked_.empty() || context_ == nullptr || context_->snapshot == nullptr) {
        return;
    }
    // The timer stays armed: it finds nothing due, or the next deadline. Every socket is looked
    // at in arrival order; those still waiting go back in that order, and a socket handed on
    // that parks again (its route needs the certificate) is appended in its turn, so the queue
    // stays in arrival (and deadline) order.
    std::deque<Parked> waiting = std::move(parked_);
    parked_.clear();
    for (Parked& parked : waiting) {
        if (!ready(parked)) {
            parked_.push_back(std::move(parked));
            continue;
        }
        if (!hand_over(parked)) {
            context_->counters.workload_wait("found");
        }
    }
}

void WorkloadWait::on_timer(int32_t, uint32_t) {
    if (state_ == WorkloadWaitState::closing) {
        state_ = WorkloadWaitState::closed;
        return;
    }
    state_ = WorkloadWaitState::idle;
    int64_t now = monotonic_ns();
    while (!parked_.empty() && parked_.front().deadline_ns <= now) {
        Parked parked = std::move(parked_.front());
        parked_.pop_front();
        if (context_->snapshot->workload_by_uid(pod_->uid()) == nullptr) {
            context_->counters.workload_wait("timed_out");
            refuse(parked, CloseCause::of(CloseReason::local_workload_timeout,
                                          workload_info_text(*context_, *pod_)));
            continue;
        }
        // The workload is known: the socket goes to its path, which serves it if the
        // certificate came meanwhile and otherwise fails it as without a wait (no certificate
        // for identity ...). Its wait is over, so it is not parked again.
        context_->counters.workload_wait(ready(parked) ? "found" : "certificate_timed_out");
        hand_over(parked);
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
