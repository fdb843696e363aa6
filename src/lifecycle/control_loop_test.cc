// Unit tests for ControlLoop's shutdown state machine: a watched fd requesting shutdown, drain
// ending early when the data plane reports drained, the deadline forcing a close, readiness
// failing at drain start, and a second SIGINT skipping the drain. Real signalfd and eventfd.

#include "src/lifecycle/control_loop.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

#include <doctest/doctest.h>

#include "zt/clock.h"
#include "zt/unique_fd.h"

using namespace zt::lifecycle;

namespace {

// SignalScope opens ShutdownSignals and restores the thread's signal mask afterwards.
struct SignalScope {
    sigset_t old_mask;
    zt::Result<ShutdownSignals> signals = zt::fail(zt::Errc::sys);

    SignalScope() {
        pthread_sigmask(SIG_SETMASK, nullptr, &old_mask);
        signals = ShutdownSignals::open();
    }

    ~SignalScope() { pthread_sigmask(SIG_SETMASK, &old_mask, nullptr); }
};

}  // namespace

TEST_CASE("lifecycle: a shutdown request drains until the data plane reports drained") {
    SignalScope scope;
    REQUIRE(scope.signals.has_value());
    zt::admin::Readiness readiness;
    int start_drain_calls = 0;
    int drained_calls = 0;
    bool forced = false;
    bool ready_during_drain = true;
    ControlHooks hooks;
    hooks.start_drain = [&] {
        ++start_drain_calls;
        ready_during_drain = readiness.ready();
    };
    hooks.drained = [&] {
        return ++drained_calls >= 3;
    };
    hooks.force_close = [&] {
        forced = true;
    };
    ControlLoop loop({10 * zt::kNanosPerSecond, 5}, *scope.signals, readiness, std::move(hooks));
    zt::UniqueFd event(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    REQUIRE(event.valid());
    loop.watch_fd(event.get(), POLLIN, [&](short) {
        uint64_t value;
        CHECK(read(event.get(), &value, sizeof value) == sizeof value);
        loop.request_shutdown();  // as POST /quitquitquit does
    });
    uint64_t one = 1;
    REQUIRE(write(event.get(), &one, sizeof one) == sizeof one);
    int64_t start = zt::monotonic_ns();
    CHECK(loop.run() == 0);
    CHECK(loop.phase() == ControlLoop::Phase::done);
    CHECK(start_drain_calls == 1);
    CHECK(drained_calls == 3);
    CHECK_FALSE(forced);
    CHECK_FALSE(ready_during_drain);  // readiness failed before the data plane was told
    CHECK(readiness.pending() == std::vector<std::string>{"draining"});
    CHECK(zt::monotonic_ns() - start < 2 * zt::kNanosPerSecond);
}

TEST_CASE("lifecycle: the drain deadline forces a close and exits 0") {
    SignalScope scope;
    REQUIRE(scope.signals.has_value());
    zt::admin::Readiness readiness;
    bool forced = false;
    ControlHooks hooks;
    hooks.drained = [] {
        return false;
    };  // a transfer that never ends
    hooks.force_close = [&] {
        forced = true;
    };
    ControlLoop loop({80 * zt::kNanosPerMilli, 5}, *scope.signals, readiness, std::move(hooks));
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0);
    int64_t start = zt::monotonic_ns();
    CHECK(loop.run() == 0);
    int64_t took = zt::monotonic_ns() - start;
    CHECK(forced);
    CHECK(took >= 80 * zt::kNanosPerMilli);
    CHECK(took < 2 * zt::kNanosPerSecond);
}

TEST_CASE("lifecycle: a second SIGINT ends the loop without waiting for the drain") {
    SignalScope scope;
    REQUIRE(scope.signals.has_value());
    zt::admin::Readiness readiness;
    bool forced = false;
    int ticks = 0;
    ControlHooks hooks;
    hooks.drained = [] {
        return false;
    };
    hooks.force_close = [&] {
        forced = true;
    };
    hooks.tick = [&] {
        // The first SIGINT arrives while running, the second once draining.
        if (++ticks == 2 || ticks == 6) {
            pthread_kill(pthread_self(), SIGINT);
        }
    };
    ControlLoop loop({60 * zt::kNanosPerSecond, 5}, *scope.signals, readiness, std::move(hooks));
    int64_t start = zt::monotonic_ns();
    CHECK(loop.run() == 0);
    CHECK_FALSE(forced);
    CHECK(scope.signals->draining());
    CHECK(zt::monotonic_ns() - start < 5 * zt::kNanosPerSecond);
}

TEST_CASE("lifecycle: SIGHUP calls the reload hook and the loop keeps running") {
    SignalScope scope;
    REQUIRE(scope.signals.has_value());
    zt::admin::Readiness readiness;
    int reloads = 0;
    int ticks = 0;
    ControlHooks hooks;
    hooks.reload = [&] {
        ++reloads;
    };
    ControlLoop* self = nullptr;
    hooks.tick = [&] {
        ++ticks;
        if (ticks == 2) {
            pthread_kill(pthread_self(), SIGHUP);
        }
        if (ticks == 4) {
            pthread_kill(pthread_self(), SIGUSR1);
        }
        if (ticks == 8) {
            CHECK(self->phase() == ControlLoop::Phase::running);
            self->request_shutdown();
        }
    };
    hooks.drained = [] {
        return true;
    };
    ControlLoop loop({zt::kNanosPerSecond, 5}, *scope.signals, readiness, std::move(hooks));
    self = &loop;
    CHECK(loop.run() == 0);
    CHECK(reloads == 1);
    CHECK(ticks >= 8);
}
