#pragma once

// The outbound routing decision as a pure function, ztunnel's `build_request` (with its
// waypoints and load balancing: docs/waypoints.md): given the snapshot, the source workload and the
// original destination, say what to do. Separate code executes the plan; nothing here touches a
// socket, a clock or a random source, so every case is one row of a table test.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/state/net.h"
#include "src/state/snapshot.h"
#include "zt/errc.h"

namespace zt::proxy {

// kHbonePort is where every HBONE workload's ztunnel listens (docs/contract.md §3).
inline constexpr uint16_t kHbonePort = 15008;

// kZtunnelPorts are ztunnel's `illegal_ports`: the in-pod listeners a connection must never be
// sent to (a loopback destination on one outbound; any destination on one inbound), which would
// loop or nest HBONE in HBONE. Exactly these three, as ztunnel's: 15020 and 15021 listen in the
// node's namespace, not the pod's, so an application may serve them in its own pod, and
// 15000/15053/15080 are not in-pod listeners of ours.
inline constexpr uint16_t kZtunnelPorts[] = {15001, 15006, 15008};

enum class PlanKind : uint8_t {
    hbone,        // mTLS + HTTP/2 CONNECT to `connect_to` (ip:15008) with `authority`.
    tcp,          // Plain TCP to `connect_to` (a TCP workload's ip:targetPort).
    passthrough,  // Plain TCP to the original destination (not a mesh address).
    refuse,       // Close the client connection; `reason` says why.
};

enum class RefuseReason : uint8_t {
    none,
    self_call,            // Loopback destination on a ztunnel port.
    no_healthy_upstream,  // A service with no endpoint that can take this port (ztunnel's
                          // NoHealthyUpstream; also `Strict` load balancing with no match).
    no_workload_ip,       // The chosen workload has no usable IP (or, hostname-only, its name
                          // did not resolve, or the pod has no DNS proxy to resolve it).
    unknown_waypoint,     // The waypoint reference names nothing that can take the connection.
    cross_network,        // The upstream is on another network (double HBONE not implemented).
};

std::string_view to_string(PlanKind kind);
std::string_view to_string(RefuseReason reason);

// refuse_errc maps a refusal to the project error code the proxy logs and counts.
Errc refuse_errc(RefuseReason reason);

struct Plan;

// refuse_error is the access log's `error` for a refused `plan` to `destination`, in ztunnel's
// words where ztunnel has them: `attempted recursive call to ourselves`, `no healthy upstream:
// <destination>` (also `Strict` with no match), `no valid routing destination for workload:
// Workload{<name> with uid <uid> (<protocol>)}`, `unknown waypoint: waypoint <reference> not
// found` (ztunnel prints its Rust debug form for a `network/ip` reference; this prints the
// reference as the config spells it); ours for what is not implemented (`unsupported feature:
// double HBONE to network "<network>"`). Empty when `plan` is not a refusal.
std::string refuse_error(const Plan& plan, const state::SocketAddr& destination);

// Plan is what to do with one outbound connection. The pointers refer into the snapshot the
// plan was made from and live as long as it does.
//
// For logs and metrics (ztunnel's `Request`): `connect_to` is `dst.addr` (the next hop: the
// waypoint's `ip:15008` on a waypoint path), `authority` is `dst.hbone_addr` (the original
// destination `VIP:port` or `ip:port` on a waypoint path), `upstream` gives the `destination_*`
// labels and `dst.workload` (ztunnel reports the waypoint there, not the workload behind it),
// `service` gives `dst.service` (the service the client addressed, never the waypoint's).
struct Plan {
    PlanKind kind = PlanKind::refuse;
    RefuseReason reason = RefuseReason::none;
    state::SocketAddr connect_to;
    std::string authority;                         // HBONE only: the CONNECT `:authority`.
    std::vector<std::string> expected_identities;  // HBONE only: SPIFFE IDs the peer may have.
    const state::Workload* upstream = nullptr;     // The workload `connect_to` belongs to.
    const state::Service* service = nullptr;       // The service the destination addressed.
    // final_destination is the workload the bytes are for when it is known here: `upstream`
    // on a direct path, the workload behind a workload waypoint; null through a service
    // waypoint (the waypoint picks the endpoint) and on passthrough.
    const state::Workload* final_destination = nullptr;
    // waypoint is the reference that was followed (the service's `waypoint`, the sampled
    // `weightedWaypoints` entry, or the workload's `waypoint`); null on other paths. A refusal
    // sets `upstream` and `waypoint` to what it concerns, when anything, for `refuse_error`.
    const state::GatewayAddress* waypoint = nullptr;
    // resolve_hostname: `upstream` is a hostname-only workload (a ServiceEntry with DNS
    // resolution), so `connect_to`'s IP (and the authority's) is left to ztunnel's on-demand DNS
    // at connect time; `resolved_port` is the target port the authority (HBONE) or `connect_to`
    // (TCP) then carries. `resolved` completes the plan with the address found.
    bool resolve_hostname = false;
    uint16_t resolved_port = 0;
};

// resolved completes a `resolve_hostname` plan with `ip`, the address its upstream's hostname
// resolved to.
void resolved(Plan& plan, const state::IpAddr& ip);

// RouteOptions are the inputs that are not part of the snapshot.
struct RouteOptions {
    std::string_view default_trust_domain = "cluster.local";  // For workloads without one.
    uint64_t random = 0;  // Uniform random value for the weighted endpoint choice.
    // source_ip is the client's own address (the accepted socket's peer): ztunnel's
    // `check_from_waypoint` uses it with the source identity to recognise the waypoint sending
    // traffic on to the workload behind it. Unset: the source is never taken for a waypoint.
    std::optional<state::IpAddr> source_ip;
    uint64_t waypoint_random = 0;  // Uniform random value for the `weightedWaypoints` sample.
};

// ResolutionMode is ztunnel's `ServiceResolutionMode`: `waypoint` when the service being load
// balanced is a waypoint's (its endpoints need not carry the port if they run an application
// tunnel, and the port need not exist on the service).
enum class ResolutionMode : uint8_t { standard, waypoint };

// load_balance is ztunnel's `ProxyState::load_balance`: the endpoint of `service` that a
// connection from `source` to `service_port` goes to, or null.
// - Standard resolution needs `service_port` on the service; an endpoint then needs a mapping for
//   it when the service's target is 0 (a named port). Waypoint resolution drops only endpoints
//   without an application tunnel when the service lacks the port.
// - An endpoint whose workload has no IP is kept only when it is on another network and has a
//   network gateway, or when it is hostname-only (resolved on demand at connect time).
// - `Standard` (or no `loadBalancer`): weighted by capacity over all of them. `Strict` and
//   `Failover` rank each endpoint by how many `routingPreferences` match the source in order,
//   stopping at the first mismatch (Region, Zone, Subzone from `locality`, Node, Cluster,
//   Network). When `Network` comes first a network match adds `len-1` and a mismatch is skipped
//   instead of ending the count, so the network dominates without being required. `Strict` drops
//   endpoints that miss any preference. The best rank wins, weighted by capacity:
//   `options.random % total` walks the candidates in endpoint order.
// Null when nothing qualifies or every weight is 0.
const state::Endpoint* load_balance(const state::Snapshot& snapshot, const state::Workload& source,
                                    const state::Service& service, uint16_t service_port,
                                    ResolutionMode mode, const RouteOptions& options);

// upstream_port is the port to reach `endpoint` of `service` on for `service_port` (ztunnel's
// `find_upstream_from_service`): the endpoint's own mapping, else the service's non-zero target,
// else `service_port` itself when the workload has an application tunnel with a port;
// std::nullopt when none applies.
std::optional<uint16_t> upstream_port(const state::Service& service,
                                      const state::Endpoint& endpoint, uint16_t service_port);

// plan_outbound decides the route from `source` to `destination`, in ztunnel's order:
// - loopback destination on a ztunnel port: refuse (self_call);
// - a service VIP (seen from the source's network and namespace) with a waypoint (a
//   `weightedWaypoints` entry sampled by weight with `options.waypoint_random`, else
//   `waypoint`): HBONE to the waypoint with `:authority` = the original destination and the
//   waypoint's identities expected (its workload's plus its service's subjectAltNames);
// - a service VIP: `load_balance`, the port through `upstream_port`; none: refuse
//   (no_healthy_upstream); Passthrough load balancing: passthrough;
// - a workload IP: that workload on the same port;
// - anything else: passthrough.
// Then an upstream on another network is refused (cross_network); a workload addressed by IP
// with a workload waypoint goes through that waypoint unless the source is that waypoint
// (`source_is_waypoint`: its identity and `options.source_ip`). An HBONE upstream gets HBONE to
// `ip:15008` with `:authority` `ip:targetPort` and the workload identity plus the service's
// subjectAltNames as expected identities; a TCP upstream gets plain TCP to `ip:targetPort`.
// Waypoints are resolved as ztunnel's `fetch_waypoint` does: `network/ip` as a service VIP of
// that network (load balanced in waypoint resolution), else the workload at that IP, dialled at
// the IP itself; `namespace/hostname` as that service, else the workload with that `hostname`,
// with the original destination's IP family preferred.
Plan plan_outbound(const state::Snapshot& snapshot, const state::Workload& source,
                   const state::SocketAddr& destination, const RouteOptions& options = {});

}  // namespace zt::proxy
