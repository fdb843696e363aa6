#pragma once

// Process-level lifecycle pieces for `ztunnel run` (issue 7 §5, docs/ztunnel-reference.md §10.2):
// SIGPIPE ignored, RLIMIT_NOFILE raised to the hard limit, SIGTERM/SIGINT delivered through a
// signalfd the control thread polls (first signal: graceful drain; a second SIGINT: exit now),
// SIGHUP a config reload (the daemon convention, never the default "terminate" that skipped the
// drain), SIGUSR1 ignored, and systemd's readiness notification without linking libsystemd.

#include <sys/resource.h>

#include <cstdint>
#include <string_view>
#include <utility>

#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::lifecycle {

// ignore_sigpipe makes writes to a closed socket return EPIPE instead of killing the process.
void ignore_sigpipe();

// raise_nofile_limit sets the soft RLIMIT_NOFILE to the hard limit and returns the new soft
// limit. Fails with `Errc::sys` if getrlimit/setrlimit refuse.
Result<uint64_t> raise_nofile_limit();

// ShutdownRequest is what a signal asks for.
enum class ShutdownRequest : uint8_t {
    none,       // nothing (yet)
    graceful,   // first SIGTERM or SIGINT: drain up to the deadline, then exit 0
    immediate,  // SIGINT while already draining: exit 0 at once
};

// ShutdownSignals blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 in the calling thread (and every
// thread it creates afterwards; create it before the workers) and receives them through a
// signalfd, so none of them can end the process without its drain.
class ShutdownSignals {
public:
    // open blocks the signals and creates the signalfd. Fails with `Errc::sys`.
    static Result<ShutdownSignals> open();

    // fd is the descriptor to poll for POLLIN.
    int fd() const { return fd_.get(); }

    // on_readable reads pending signals and says what they ask for, given everything seen so
    // far. A second SIGTERM while draining changes nothing, as in ztunnel. A SIGHUP is kept for
    // `take_reload`; a SIGUSR1 is read and dropped.
    ShutdownRequest on_readable();

    // take_reload says whether a SIGHUP arrived since the last call, and clears it.
    bool take_reload() { return std::exchange(reload_, false); }

    // draining says whether a graceful shutdown was already requested.
    bool draining() const { return draining_; }

private:
    explicit ShutdownSignals(UniqueFd fd) : fd_(std::move(fd)) {}

    UniqueFd fd_;
    bool draining_ = false;
    bool reload_ = false;
};

// notify_systemd sends `state` (`READY=1`, `STOPPING=1`) to `$NOTIFY_SOCKET` when systemd set
// it. Returns false when there is no socket or the send failed; never blocks.
bool notify_systemd(std::string_view state);

}  // namespace zt::lifecycle
