// pod_listeners.cc runs a pod's listeners: opening them through the sockets seam, the multishot
// accepts and their backoff, handing each accepted socket to its path, and the admission of
// captured connections (original destination, loops, the pod's workload).

#include "src/proxy/pod_listeners.h"

#include <algorithm>
#include <cerrno>

#include "src/proxy/close_cause.h"
#include "src/proxy/inbound.h"
#include "src/proxy/outbound.h"
#include "src/proxy/plaintext.h"
#include "src/proxy/pod.h"
#include "src/proxy/sockaddr.h"
#include "src/proxy/worker_context.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

// kRearmBackoffNs is how long an accept that ended on an error (EMFILE, ...) waits before it is
// armed again: fd exhaustion must not become a busy loop (docs/reliability.md §5). It doubles with
// each failure in a row, up to kRearmBackoffMaxNs.
constexpr int64_t kRearmBackoffNs = 50 * kNanosPerMilli;
constexpr int64_t kRearmBackoffMaxNs = 800 * kNanosPerMilli;

}  // namespace

void dispatch_accepted(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client) {
    switch (kind) {
        case ListenerKind::outbound:
            accept_outbound(context, pod, std::move(client));
            return;
        case ListenerKind::inbound_plaintext:
            accept_inbound_plaintext(context, pod, std::move(client));
            return;
        case ListenerKind::inbound_hbone:
            accept_inbound_hbone(context, pod, std::move(client));
            return;
        case ListenerKind::dns_udp_v4:
        case ListenerKind::dns_tcp_v4:
        case ListenerKind::dns_udp_v6:
        case ListenerKind::dns_tcp_v6:
            // The DNS sockets are served by the pod's DNS server (pod_dns.cc), never accepted
            // here.
            ZT_ASSERT(false);
            return;
    }
}

namespace {

// dispatch hands an accepted socket to the path of its listener, or parks it while the pod's
// workload is not known yet, or (inbound HBONE) its certificate is not published yet
// (workload_wait.h).
void dispatch(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client) {
    if (pod.waiting.must_park(context, pod, kind)) {
        pod.waiting.park(context, pod, kind, std::move(client),
                         /*needs_certificate=*/kind == ListenerKind::inbound_hbone);
        return;
    }
    dispatch_accepted(context, pod, kind, std::move(client));
}

}  // namespace

std::string_view to_string(ListenerState state) {
    switch (state) {
        case ListenerState::closed:
            return "closed";
        case ListenerState::accepting:
            return "accepting";
        case ListenerState::backing_off:
            return "backing_off";
        case ListenerState::closing:
            return "closing";
    }
    return "unknown";
}

void Listener::open(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd fd) {
    ZT_ASSERT(state_ == ListenerState::closed && !busy());
    context_ = &context;
    pod_ = &pod;
    kind_ = kind;
    fd_ = std::move(fd);
    accept_.callback = &on_completion<Listener, &Listener::on_accepted>;
    accept_.context = this;
    rearm_.completion.callback = &on_completion<Listener, &Listener::on_rearm>;
    rearm_.completion.context = this;
    arm();
}

void Listener::arm() {
    state_ = ListenerState::accepting;
    context_->ring.accept_multishot(accept_, fd_.get());
}

void Listener::close() {
    switch (state_) {
        case ListenerState::accepting:
            // The socket closes when the accept's final completion arrives.
            state_ = ListenerState::closing;
            context_->ring.cancel(accept_);
            return;
        case ListenerState::backing_off:
            state_ = ListenerState::closing;
            context_->ring.cancel_timer(rearm_);
            return;
        case ListenerState::closing:
        case ListenerState::closed:
            return;
    }
}

void Listener::on_accepted(int32_t res, uint32_t flags) {
    if (res >= 0) {
        UniqueFd client(res);
        accept_failures_ = 0;
        if (context_->limits.fd_in_reserve(client.get())) {
            // Closed at once: the descriptors above it are the listeners' and operators'.
        } else if (state_ != ListenerState::accepting || !pod_->accepting() || context_->draining) {
            // Accepted while the listener was being cancelled: refused (closed).
            context_->counters.connection_refused("draining");
        } else if (context_->limits.sheds_new_work()) {
            // Memory is near the cgroup's limit: closed before reading or allocating anything
            // (on 15008 before any TLS byte), so the connections already open keep their memory.
        } else {
            dispatch(*context_, *pod_, kind_, std::move(client));
        }
    }
    if ((flags & IORING_CQE_F_MORE) != 0) {
        return;
    }
    // The multishot accept ended: cancelled, or an error such as EMFILE ended it.
    if (state_ != ListenerState::accepting) {
        state_ = ListenerState::closed;
        fd_.reset();
        return;
    }
    if (res < 0 && res != -ECANCELED) {
        // Counted each time, logged once per run of failures; the backoff doubles meanwhile.
        context_->counters.accept_failed(-res);
        if (accept_failures_++ == 0) {
            log::warn("proxy", "accept failed; backing off",
                      {log::Field::num("port", listener_port(kind_)),
                       log::Field::str("error", errno_text(-res))});
        }
        int64_t backoff = kRearmBackoffNs << std::min<uint32_t>(accept_failures_ - 1, 4);
        state_ = ListenerState::backing_off;
        context_->ring.arm_timer(rearm_, std::min(backoff, kRearmBackoffMaxNs));
        return;
    }
    arm();
}

void Listener::on_rearm(int32_t, uint32_t) {
    if (state_ == ListenerState::backing_off) {
        arm();
        return;
    }
    state_ = ListenerState::closed;
    fd_.reset();
}

Result<void> PodListeners::open(WorkerContext& context, Pod& pod, std::string& error) {
    UniqueFd fds[kListenerCount];
    for (size_t i = 0; i < kListenerCount; ++i) {
        ListenerKind kind = kListenerKinds[i];
        auto fd = context.sockets.listen(pod.network, kind, context.options.listen_backlog);
        if (!fd) {
            error = "listen on port " + std::to_string(listener_port(kind)) + ": " +
                    errno_text(fd.error().sys_errno);
            return fail(fd.error());
        }
        fds[i] = std::move(*fd);
    }
    if (auto dns = dns_.open(context, pod, error); !dns) {
        return fail(dns.error());
    }
    for (size_t i = 0; i < kListenerCount; ++i) {
        listeners_[i].open(context, pod, kListenerKinds[i], std::move(fds[i]));
    }
    return ok();
}

void PodListeners::close() {
    for (Listener& listener : listeners_) {
        listener.close();
    }
    dns_.close();
}

bool PodListeners::listening() const {
    for (const Listener& listener : listeners_) {
        if (listener.state() != ListenerState::accepting &&
            listener.state() != ListenerState::backing_off) {
            return false;
        }
    }
    return true;
}

bool PodListeners::busy() const {
    if (dns_.busy()) {
        return true;
    }
    for (const Listener& listener : listeners_) {
        if (listener.busy()) {
            return true;
        }
    }
    return false;
}

std::optional<Captured> admit(WorkerContext& context, Pod& pod, int fd,
                              telemetry::Direction direction) {
    Captured captured;
    captured.peer = peer_address(fd);
    auto destination = context.sockets.original_destination(pod.network, fd);
    if (!destination) {
        return std::nullopt;
    }
    captured.destination = *destination;
    // Loops: outbound to loopback on a ztunnel port, inbound to any ztunnel port.
    bool outbound = direction == telemetry::Direction::outbound;
    if (is_ztunnel_port(captured.destination.port) &&
        (!outbound || captured.destination.ip.is_loopback())) {
        refuse_connection(context, captured.peer, captured.destination, direction,
                          CloseCause::of(CloseReason::self_call));
        return std::nullopt;
    }
    captured.workload = context.snapshot ? context.snapshot->workload_by_uid(pod.uid()) : nullptr;
    if (captured.workload == nullptr) {
        refuse_connection(context, captured.peer, captured.destination, direction,
                          CloseCause::of(outbound ? CloseReason::unknown_source_workload
                                                  : CloseReason::unknown_destination_workload,
                                         pod.uid()));
        return std::nullopt;
    }
    // TCP_NODELAY and keepalive came with the socket from its listener.
    return captured;
}

}  // namespace zt::proxy
