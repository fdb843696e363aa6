#pragma once

// ControlLoop is the control thread's poll loop for `ztunnel run` (docs/ztunnel-reference.md §10):
// it serves the operator HTTP servers, flushes the log queue, watches extra control-plane fds (the
// config watcher), and runs the shutdown sequence:
//
//   running ──SIGTERM/SIGINT/quitquitquit──▶ draining ──drained() or deadline──▶ done (exit 0)
//                                               │ second SIGINT ──────────────────▶ done (exit 0)
//
// On entering `draining` it fails readiness at once, tells systemd `STOPPING=1`, and calls
// `start_drain` (the data plane stops accepting and sends GOAWAY). It leaves `draining` when
// `drained()` says no connection is left, or at the drain deadline after `force_close`. It sends
// `READY=1` to systemd the first time readiness is ready. A SIGHUP calls `reload` in any phase
// and changes nothing else. Everything runs on the calling thread.

#include <poll.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "src/admin/operator_servers.h"
#include "src/admin/readiness.h"
#include "src/lifecycle/process.h"
#include "src/telemetry/log_queue.h"

namespace zt::lifecycle {

// ControlHooks connect the loop to the data plane. Any may be empty.
struct ControlHooks {
    std::function<void()> start_drain;  // stop accepting, GOAWAY on HBONE; once, at drain start
    std::function<bool()> drained;      // true when no connection is left; empty: wait deadline
    std::function<void()> force_close;  // the deadline passed: close what is left
    std::function<void()> tick;         // every tick, for periodic control-plane work
    std::function<void()> reload;       // SIGHUP: re-read the config file now
};

struct ControlLoopOptions {
    int64_t drain_timeout_ns = 5'000'000'000;
    int tick_ms = 20;  // the longest a queued log line waits before it is written
};

class ControlLoop {
public:
    // Phase is where the shutdown sequence is.
    enum class Phase : uint8_t {
        running,   // serving
        draining,  // readiness fails, connections finish until drained or the deadline
        done,      // run() returns
    };

    // ControlLoop borrows everything; all must outlive it. `servers` and `queue` may be null.
    ControlLoop(ControlLoopOptions options, ShutdownSignals& signals, admin::Readiness& readiness,
                ControlHooks hooks)
        : options_(options), signals_(signals), readiness_(readiness), hooks_(std::move(hooks)) {}

    // set_servers attaches the operator servers (created after the loop so that their
    // `/quitquitquit` hook can call `request_shutdown`).
    void set_servers(admin::OperatorServers* servers) { servers_ = servers; }

    // set_log_queue makes the loop flush `queue` every tick and once more before returning.
    void set_log_queue(telemetry::LogQueue* queue) { queue_ = queue; }

    // watch_fd polls `fd` for `events` and calls `on_ready(revents)` on the control thread.
    void watch_fd(int fd, short events, std::function<void(short)> on_ready);

    // request_shutdown starts the graceful drain, as SIGTERM does. Control thread only (the
    // admin handler runs there).
    void request_shutdown() { shutdown_requested_ = true; }

    // run loops until the shutdown sequence is done and returns the exit code (0).
    int run();

    Phase phase() const { return phase_; }

private:
    struct Watch {
        int fd;
        short events;
        std::function<void(short)> on_ready;
    };

    void step();
    void enter_draining();

    ControlLoopOptions options_;
    ShutdownSignals& signals_;
    admin::Readiness& readiness_;
    ControlHooks hooks_;
    admin::OperatorServers* servers_ = nullptr;
    telemetry::LogQueue* queue_ = nullptr;
    std::vector<Watch> watches_;
    Phase phase_ = Phase::running;
    bool shutdown_requested_ = false;
    bool notified_ready_ = false;
    int64_t drain_deadline_ns_ = 0;
};

}  // namespace zt::lifecycle
