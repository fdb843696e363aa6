#pragma once

// Clocks. Timers and deadlines use the monotonic clock; certificate validity uses wall time
// (docs/reliability.md §3.4). Code that must be testable against time takes a `Clock&` so tests can
// pass a `FakeClock`.

#include <time.h>

#include <cstdint>

namespace zt {

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr int64_t kNanosPerMilli = 1'000'000;

// monotonic_ns returns CLOCK_MONOTONIC in nanoseconds.
inline int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

// unix_ns returns the wall clock (CLOCK_REALTIME) in nanoseconds since the Unix epoch.
inline int64_t unix_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

// Clock is the injectable source of time for logic that tests must drive (renewal, backoff).
class Clock {
public:
    virtual ~Clock() = default;
    virtual int64_t monotonic_ns() const = 0;
    virtual int64_t unix_ns() const = 0;

    int64_t unix_seconds() const { return unix_ns() / kNanosPerSecond; }
};

// SystemClock reads the real clocks.
class SystemClock final : public Clock {
public:
    int64_t monotonic_ns() const override { return zt::monotonic_ns(); }

    int64_t unix_ns() const override { return zt::unix_ns(); }
};

// system_clock returns the process-wide `SystemClock`.
inline const Clock& system_clock() {
    static const SystemClock clock;
    return clock;
}

// FakeClock is a clock that moves only when a test says so. Both readings advance together.
class FakeClock final : public Clock {
public:
    explicit FakeClock(int64_t unix_ns_start = 1'700'000'000 * kNanosPerSecond)
        : unix_ns_(unix_ns_start) {}

    int64_t monotonic_ns() const override { return monotonic_ns_; }

    int64_t unix_ns() const override { return unix_ns_; }

    void advance_ns(int64_t delta) {
        monotonic_ns_ += delta;
        unix_ns_ += delta;
    }

    void advance_seconds(int64_t delta) { advance_ns(delta * kNanosPerSecond); }

private:
    int64_t monotonic_ns_ = 1;
    int64_t unix_ns_;
};

}  // namespace zt
