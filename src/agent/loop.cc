// loop.cc runs the agent thread's ring: a poll on the wake-up eventfd so another thread can end a
// wait at once, batches of completions, and the deferred destruction of retired objects. It
// knows nothing of what the completions belong to.

#include "src/agent/loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace zt::agent {

Result<std::unique_ptr<StopRequest>> StopRequest::create() {
    std::unique_ptr<StopRequest> stop(new StopRequest());
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        return fail(Errc::sys, errno);
    }
    stop->fd_.reset(fd);
    return stop;
}

void StopRequest::request() {
    requested_.store(true, std::memory_order_release);
    uint64_t one = 1;
    (void)!::write(fd_.get(), &one, sizeof one);
}

Result<std::unique_ptr<Loop>> Loop::create(const Clock& clock, StopRequest& stop) {
    std::unique_ptr<Loop> loop(new Loop(clock, stop));
    uring::RingOptions options;
    options.sq_entries = 64;
    auto ring = uring::Ring::create(options);
    if (!ring) {
        return fail(ring.error());
    }
    loop->ring_ = std::move(*ring);
    loop->ring_->poll(loop->wake_completion_, stop.fd(), POLLIN);
    return loop;
}

Loop::~Loop() {
    // The wake-up poll is the loop's own: cancel it and wait for its completion.
    if (wake_completion_.in_kernel) {
        ring_->cancel(wake_completion_);
        while (wake_completion_.in_kernel) {
            ring_->run(-1);
        }
    }
    retired_.clear();
}

void Loop::on_wake(uring::Completion& self, int32_t res, uint32_t) {
    auto* loop = static_cast<Loop*>(self.context);
    if (res == -ECANCELED) {
        return;
    }
    uint64_t value = 0;
    (void)!::read(loop->stop_.fd(), &value, sizeof value);
    // Re-arm: a later request wakes the ring again (stop is sticky; more wakes are harmless).
    loop->ring_->poll(loop->wake_completion_, loop->stop_.fd(), POLLIN);
}

uint32_t Loop::run_once(int64_t timeout_ns) {
    uint32_t n = ring_->run(timeout_ns);
    retired_.clear();
    return n;
}

}  // namespace zt::agent
