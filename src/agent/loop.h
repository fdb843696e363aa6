#pragma once

// Loop is the agent thread's event loop: one io_uring (`uring::Ring`) that carries every
// control-plane connection (xDS now; the CA client and ZDS later), the timers of the agent's
// components, and a wake-up eventfd through which other threads ask it to stop. Objects that
// must not be destroyed inside one of their own callbacks (a channel that just closed) are handed
// to `retire` and destroyed after the current batch of completions.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "uring/ring.h"
#include "zt/clock.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::agent {

// StopRequest is how another thread (the main thread, on SIGTERM) asks the agent thread to stop:
// a flag plus an eventfd the agent's ring polls, so the request ends a wait at once. Made
// before the agent thread starts; thread-safe.
class StopRequest {
public:
    // create makes the eventfd. Fails with `Errc::sys`.
    static Result<std::unique_ptr<StopRequest>> create();

    // request sets the flag and wakes the loop (any thread).
    void request();

    bool requested() const { return requested_.load(std::memory_order_acquire); }

    int fd() const { return fd_.get(); }

private:
    StopRequest() = default;

    UniqueFd fd_;
    std::atomic<bool> requested_{false};
};

class Loop {
public:
    // create makes the ring, which belongs to the calling thread from then on (call it on the
    // agent thread), and polls `stop`'s fd, which must outlive the loop. Fails with the ring's
    // setup errors (io_uring refused by a sysctl or seccomp, see `uring::Ring::create`).
    static Result<std::unique_ptr<Loop>> create(const Clock& clock, StopRequest& stop);

    ~Loop();

    uring::Ring& ring() { return *ring_; }

    const Clock& clock() const { return clock_; }

    // retire keeps `object` alive until the current batch of completions has been dispatched.
    void retire(std::shared_ptr<void> object) { retired_.push_back(std::move(object)); }

    // run_once waits up to `timeout_ns` for completions, dispatches them, then destroys what was
    // retired. Returns the number of completions dispatched.
    uint32_t run_once(int64_t timeout_ns);

    // stop_requested says whether another thread asked the agent to stop.
    bool stop_requested() const { return stop_.requested(); }

private:
    Loop(const Clock& clock, StopRequest& stop) : clock_(clock), stop_(stop) {}

    static void on_wake(uring::Completion& self, int32_t res, uint32_t flags);

    const Clock& clock_;
    StopRequest& stop_;
    std::unique_ptr<uring::Ring> ring_;
    uring::Completion wake_completion_{&Loop::on_wake, this};
    std::vector<std::shared_ptr<void>> retired_;
};

}  // namespace zt::agent
