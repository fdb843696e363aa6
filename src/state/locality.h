#pragma once

// The locality scopes load balancing compares (docs/waypoints.md): for each routing
// preference, the value of a workload that two workloads must share to match on it.

#include <string_view>

#include "src/state/types.h"

namespace zt::state {

// scope_of returns `workload`'s value for `preference`: its locality's region, zone or subzone
// (empty when the workload has no `locality`, as ztunnel's default `Locality` is empty strings,
// so two workloads without one match each other), its node, cluster id or network. The view
// lives as long as `workload`.
std::string_view scope_of(RoutingPreference preference, const Workload& workload);

}  // namespace zt::state
