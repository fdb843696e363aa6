#pragma once

// The outbound routing decision as a pure function, ztunnel's `build_request`
// (ztunnel-behaviour §3.6): given the snapshot, the source workload and the original destination,
// say what to do. Separate code executes the plan; nothing here touches a socket, a clock or a
// random source, so every case is one row of a table test.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/state/net.h"
#include "src/state/snapshot.h"
#include "zt/errc.h"

namespace zt::proxy {

// kHbonePort is where every HBONE workload's ztunnel listens (SPEC.md §3).
inline constexpr uint16_t kHbonePort = 15008;

// kZtunnelPorts are ztunnel's own listeners; a loopback destination on one of them is a loop.
inline constexpr uint16_t kZtunnelPorts[] = {15000, 15001, 15006, 15008,
                                             15020, 15021, 15053, 15080};

enum class PlanKind : uint8_t {
    hbone,        // mTLS + HTTP/2 CONNECT to `connect_to` (ip:15008) with `authority`.
    tcp,          // Plain TCP to `connect_to` (a TCP workload's ip:targetPort).
    passthrough,  // Plain TCP to the original destination (not a mesh address).
    refuse,       // Close the client connection; `reason` says why.
};

enum class RefuseReason : uint8_t {
    none,
    self_call,             // Loopback destination on a ztunnel port.
    no_healthy_upstream,   // A service with no endpoint that can take this port.
    no_workload_ip,        // The chosen workload has no usable IP (hostname-only: no DNS yet).
    waypoint_unsupported,  // The service or workload has a waypoint; not implemented, fail closed.
    cross_network,         // The upstream is on another network (double HBONE not implemented).
};

std::string_view to_string(PlanKind kind);
std::string_view to_string(RefuseReason reason);

// refuse_errc maps a refusal to the project error code the proxy logs and counts.
Errc refuse_errc(RefuseReason reason);

// Plan is what to do with one outbound connection. The pointers refer into the snapshot the
// plan was made from and live as long as it does.
struct Plan {
    PlanKind kind = PlanKind::refuse;
    RefuseReason reason = RefuseReason::none;
    state::SocketAddr connect_to;
    std::string authority;                         // HBONE only: `ip:targetPort`.
    std::vector<std::string> expected_identities;  // HBONE only: SPIFFE IDs the peer may have.
    const state::Workload* upstream = nullptr;
    const state::Service* service = nullptr;
};

// RouteOptions are the inputs that are not part of the snapshot.
struct RouteOptions {
    std::string_view default_trust_domain = "cluster.local";  // For workloads without one.
    uint64_t random = 0;  // Uniform random value for the weighted endpoint choice.
};

// plan_outbound decides the route from `source` to `destination`:
// - loopback destination on a ztunnel port: refuse (self_call);
// - a service VIP (seen from the source's network and namespace): a healthy endpoint weighted by
//   capacity, the port translated through the endpoint's map, else the service's non-zero
//   target; none: refuse (no_healthy_upstream); Passthrough load balancing: passthrough;
// - a workload IP: that workload on the same port;
// - anything else: passthrough.
// An HBONE upstream gets HBONE to `ip:15008` with `:authority` `ip:targetPort` and the workload
// identity plus the service's subjectAltNames as expected identities; a TCP upstream gets plain
// TCP to `ip:targetPort`.
Plan plan_outbound(const state::Snapshot& snapshot, const state::Workload& source,
                   const state::SocketAddr& destination, const RouteOptions& options = {});

}  // namespace zt::proxy
