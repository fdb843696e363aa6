#pragma once

// A pod's listeners on one worker: one listening socket per `ListenerKind` (ports.h) with a
// multishot accept, each accepted socket handed to its path (outbound.cc, inbound.cc,
// plaintext.cc). An accept that ends on an error (EMFILE, ...) is re-armed after a short backoff
// rather than at once, so fd exhaustion never becomes a busy loop. Closing cancels the accepts;
// the sockets close as their final completions arrive.
//
// To add a listener: a kind in ports.h, how to open it in `PodSockets::listen`, and its handler
// in `dispatch` below. The DNS proxy's UDP and TCP sockets on 127.0.0.1:15053 and [::1]:15053
// are kinds opened the same way, but handed whole to the pod's DNS server (pod_dns.h), which
// receives and accepts on them itself; opening, draining and closing with the pod are shared.

#include <cstdint>
#include <optional>
#include <string>

#include "src/proxy/pod_dns.h"
#include "src/proxy/ports.h"
#include "src/state/net.h"
#include "src/telemetry/access_log.h"
#include "uring/ring.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

// ListenerState is one listener's life.
enum class ListenerState : uint8_t {
    closed,       // No socket (never opened, or closed and every completion arrived).
    accepting,    // The multishot accept is in the kernel.
    backing_off,  // The accept ended on an error; the re-arm timer runs.
    closing,      // Cancelled; the socket closes when the final completion arrives.
};

std::string_view to_string(ListenerState state);

// Listener is one listening socket of one pod.
class Listener {
public:
    Listener() = default;
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // open starts accepting on `fd` for `pod`.
    void open(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd fd);

    // close stops accepting; the socket closes once no completion of it is in the kernel.
    void close();

    ListenerState state() const { return state_; }

    // busy says whether one of its operations is still in the kernel.
    bool busy() const { return accept_.in_kernel || rearm_.completion.in_kernel; }

    WorkerContext& context() { return *context_; }

    void on_accepted(int32_t res, uint32_t flags);
    void on_rearm(int32_t res, uint32_t flags);

private:
    void arm();

    WorkerContext* context_ = nullptr;
    Pod* pod_ = nullptr;
    ListenerKind kind_ = ListenerKind::outbound;
    ListenerState state_ = ListenerState::closed;
    UniqueFd fd_;
    uring::Completion accept_;
    uring::Timer rearm_;
    // accept_failures_ counts the accepts that failed in a row: it lengthens the backoff and
    // keeps a burst to one log line.
    uint32_t accept_failures_ = 0;
};

// PodListeners is every listener of one pod.
class PodListeners {
public:
    // open opens every kind; on a failure it closes those already open and says why.
    Result<void> open(WorkerContext& context, Pod& pod, std::string& error);

    // close stops every listener.
    void close();

    // busy says whether any listener still has an operation in the kernel.
    bool busy() const;

    // listening says whether every listener takes connections (accepting, or backing off
    // after an error).
    bool listening() const;

    // dns is the pod's DNS proxy (idle when DNS capture is off).
    PodDns& dns() { return dns_; }

private:
    Listener listeners_[kListenerCount];
    PodDns dns_;
};

// dispatch_accepted hands socket `client`, accepted on `pod`'s `kind` listener, to its path.
void dispatch_accepted(WorkerContext& context, Pod& pod, ListenerKind kind, UniqueFd client);

// Captured is a connection accepted on a capturing listener, admitted: who, where to, and the
// pod's workload.
struct Captured {
    state::SocketAddr peer;
    state::SocketAddr destination;
    const state::Workload* workload = nullptr;
};

// admit recovers where captured connection `fd` of `pod` was going and refuses loops (a
// destination on one of ztunnel's own ports: loopback ones outbound, any inbound) and unknown
// workloads, reporting each as `connection failed`.
std::optional<Captured> admit(WorkerContext& context, Pod& pod, int fd,
                              telemetry::Direction direction);

}  // namespace zt::proxy
