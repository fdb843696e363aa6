#pragma once

// The graceful-drain deadline, derived as ztunnel derives it (ztunnel-behaviour.md §10.2):
// `CONNECTION_TERMINATION_DEADLINE` (a duration such as `20s`) wins when set; otherwise from
// `TERMINATION_GRACE_PERIOD_SECONDS` = G: G−5 s when G > 10, else G−1 s, never below 1 s; with
// neither set, 5 s. Stopping before the kubelet's grace period ends lets ztunnel close
// connections cleanly instead of being SIGKILLed mid-transfer. `--drain-timeout` on the command
// line beats both; that is the caller's precedence to apply.

#include <cstdint>
#include <string_view>

#include "zt/result.h"

namespace zt::lifecycle {

// kDefaultDrainTimeoutNs is the deadline with neither variable set.
inline constexpr int64_t kDefaultDrainTimeoutNs = 5'000'000'000;

// drain_timeout_ns computes the deadline from the two variables' values; a null pointer or an
// empty string means unset. Fails with `Errc::parse` when a set value does not parse (a
// duration without unit, a non-integer or negative grace period).
Result<int64_t> drain_timeout_ns(const char* termination_grace_period_seconds,
                                 const char* connection_termination_deadline);

// drain_timeout_from_env reads both variables from the environment.
Result<int64_t> drain_timeout_from_env();

}  // namespace zt::lifecycle
