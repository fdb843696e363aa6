// control_loop.cc runs the control thread: poll over signals, operator servers and watched fds,
// a periodic tick for the log queue, and the drain state machine. It never touches a data-plane
// socket; the data plane is reached only through `ControlHooks`.

#include "src/lifecycle/control_loop.h"

#include <cerrno>

#include "zt/clock.h"
#include "zt/log.h"

namespace zt::lifecycle {

namespace {

constexpr std::string_view kTarget = "lifecycle";

}  // namespace

void ControlLoop::watch_fd(int fd, short events, std::function<void(short)> on_ready) {
    watches_.push_back({fd, events, std::move(on_ready)});
}

void ControlLoop::enter_draining() {
    phase_ = Phase::draining;
    drain_deadline_ns_ = monotonic_ns() + options_.drain_timeout_ns;
    readiness_.start_draining();
    (void)notify_systemd("STOPPING=1");
    log::info(kTarget, "shutting down gracefully",
              {log::Field::num("drain_ms", uint64_t(options_.drain_timeout_ns / kNanosPerMilli))});
    if (hooks_.start_drain) {
        hooks_.start_drain();
    }
}

void ControlLoop::step() {
    std::vector<pollfd> fds;
    fds.push_back({signals_.fd(), POLLIN, 0});
    for (const Watch& watch : watches_) {
        fds.push_back({watch.fd, watch.events, 0});
    }
    size_t server_first = fds.size();
    if (servers_ != nullptr) {
        servers_->collect_pollfds(fds);
    }
    int64_t now_ms = monotonic_ns() / kNanosPerMilli;
    int wait = servers_ != nullptr ? servers_->next_timeout_ms(now_ms) : -1;
    if (wait < 0 || wait > options_.tick_ms) {
        wait = options_.tick_ms;
    }
    int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
    if (ready < 0 && errno != EINTR) {
        log::warn(kTarget, "poll failed", {log::Field::num("errno", uint64_t(errno))});
    }
    if (ready > 0) {
        if (fds[0].revents != 0) {
            ShutdownRequest request = signals_.on_readable();
            if (request == ShutdownRequest::immediate) {
                log::warn(kTarget, "second interrupt, exiting now");
                phase_ = Phase::done;
                return;
            }
            if (request == ShutdownRequest::graceful) {
                shutdown_requested_ = true;
            }
            if (signals_.take_reload()) {
                log::info(kTarget, "SIGHUP: reloading the config file");
                if (hooks_.reload) {
                    hooks_.reload();
                }
            }
        }
        for (size_t i = 0; i < watches_.size(); ++i) {
            if (fds[1 + i].revents != 0) {
                watches_[i].on_ready(fds[1 + i].revents);
            }
        }
        if (servers_ != nullptr) {
            for (size_t i = server_first; i < fds.size(); ++i) {
                servers_->on_poll(fds[i]);
            }
        }
    }
    if (servers_ != nullptr) {
        servers_->expire(monotonic_ns() / kNanosPerMilli);
    }
    if (hooks_.tick) {
        hooks_.tick();
    }
    if (!notified_ready_ && phase_ == Phase::running && readiness_.ready()) {
        notified_ready_ = true;
        (void)notify_systemd("READY=1");
    }
    if (shutdown_requested_ && phase_ == Phase::running) {
        enter_draining();
    }
    if (phase_ == Phase::draining) {
        if (hooks_.drained && hooks_.drained()) {
            log::info(kTarget, "drain complete");
            phase_ = Phase::done;
        } else if (monotonic_ns() >= drain_deadline_ns_) {
            log::warn(kTarget, "drain deadline reached, closing remaining connections");
            if (hooks_.force_close) {
                hooks_.force_close();
            }
            phase_ = Phase::done;
        }
    }
    if (queue_ != nullptr) {
        queue_->flush();
    }
}

int ControlLoop::run() {
    while (phase_ != Phase::done) {
        step();
    }
    log::info(kTarget, "shutdown complete");
    if (queue_ != nullptr) {
        queue_->flush();
    }
    return 0;
}

}  // namespace zt::lifecycle
