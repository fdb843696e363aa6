#pragma once

// Warnings about combinations in a valid config that cannot work as written: each object is
// well formed, but together they route traffic nowhere (a `Strict` service no client can match, a
// waypoint reference that names nothing) or not where the author meant (routing preferences a
// mode ignores, weighted waypoints that all weigh 0). `load_text` adds them to its warnings, so
// `check-config` prints them and the watcher logs them; they never reject a file.

#include <string>
#include <vector>

#include "src/state/snapshot.h"

namespace zt::config {

// kMaxLintWarnings bounds `combination_warnings`; past it one line says how many were left out.
inline constexpr size_t kMaxLintWarnings = 100;

// combination_warnings returns, each starting with the JSON path of the object concerned:
// - a `Strict` service with routing preferences and endpoints, when some client workloads (the
//   workloads of `pods`, this node's clients; all workloads when the file lists no pods) match
//   none of its endpoints on every preference: their connections to it fail (no fallback);
// - a `Strict` or `Failover` service whose preferences repeat one;
// - routing preferences in `Standard` or `Passthrough` mode, which ignore them;
// - a `waypoint` (service or workload) or `weightedWaypoints` destination that names no workload
//   or service of the file, or whose `hboneMtlsPort` is 0: connections that need it fail;
// - `weightedWaypoints` whose weights are all 0 with no `waypoint`: no waypoint is used at all.
std::vector<std::string> combination_warnings(const state::Snapshot& snapshot);

}  // namespace zt::config
