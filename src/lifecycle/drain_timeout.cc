// drain_timeout.cc turns the two Kubernetes-facing environment variables into the drain
// deadline. Pure arithmetic plus getenv; it starts no timer.

#include "src/lifecycle/drain_timeout.h"

#include <charconv>
#include <cstdlib>

#include "zt/clock.h"
#include "zt/duration.h"

namespace zt::lifecycle {

Result<int64_t> drain_timeout_ns(const char* termination_grace_period_seconds,
                                 const char* connection_termination_deadline) {
    if (connection_termination_deadline != nullptr && connection_termination_deadline[0] != '\0') {
        return parse_duration_ns(connection_termination_deadline);
    }
    if (termination_grace_period_seconds == nullptr ||
        termination_grace_period_seconds[0] == '\0') {
        return kDefaultDrainTimeoutNs;
    }
    std::string_view text(termination_grace_period_seconds);
    uint64_t grace = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), grace);
    // A grace period beyond a century is not a grace period; refusing it also rules out overflow.
    if (ec != std::errc() || end != text.data() + text.size() || grace > 100ull * 365 * 86400) {
        return fail(Errc::parse);
    }
    int64_t seconds = grace > 10 ? int64_t(grace) - 5 : int64_t(grace) - 1;
    if (seconds < 1) {
        seconds = 1;
    }
    return seconds * kNanosPerSecond;
}

Result<int64_t> drain_timeout_from_env() {
    return drain_timeout_ns(std::getenv("TERMINATION_GRACE_PERIOD_SECONDS"),
                            std::getenv("CONNECTION_TERMINATION_DEADLINE"));
}

}  // namespace zt::lifecycle
