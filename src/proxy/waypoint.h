#pragma once

// Waypoint decisions other than the outbound plan, as pure functions over the snapshot
// (docs/waypoints.md, "Inbound"): recognising a waypoint sending traffic on to the
// workload behind it (`check_from_waypoint`), accepting an inbound HBONE request whose authority is
// not the pod's own IP (the "sandwich" rules of `validate_destination`), the application tunnel
// (which port to dial, whether to write a PROXY header and with which addresses), and the RBAC
// inputs of an inbound HBONE stream. The inbound path (`plan_inbound`) calls these; nothing here
// touches a socket.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certs/identity.h"
#include "hbone/connect.h"
#include "hbone/proxy_protocol.h"
#include "src/proxy/rbac.h"
#include "src/state/net.h"
#include "src/state/snapshot.h"

namespace zt::proxy {

// source_is_waypoint is ztunnel's `check_from_waypoint`: true when `upstream` has a workload
// waypoint and one of the workloads that make it up (the workload it names, or a stored
// endpoint of the service it names) has identity `source_identity` AND owns `source_ip`. Both
// must hold, so a workload that merely shares the waypoint's service account cannot skip the
// waypoint. False without a waypoint or without `source_ip`.
bool source_is_waypoint(const state::Snapshot& snapshot, const state::Workload& upstream,
                        std::string_view source_identity,
                        const std::optional<state::IpAddr>& source_ip,
                        std::string_view default_trust_domain);

// authority_address returns the `ip:port` of an address authority; std::nullopt for a hostname.
std::optional<state::SocketAddr> authority_address(const hbone::Authority& authority);

// InboundTargetCheck is why an inbound HBONE request's authority was accepted for this pod, or
// that it was not (ztunnel's `validate_destination`).
enum class InboundTargetCheck : uint8_t {
    own_ip,              // The authority's IP is the address the connection arrived on.
    hostname,            // A service hostname: its port is resolved (or refused) later.
    application_tunnel,  // The pod runs an application tunnel: the authority travels in the
                         // PROXY header and the application decides (a waypoint using PROXY).
    waypoint,            // The pod is the waypoint of the authority's service or workload (the
                         // "sandwich": a captured waypoint receiving traffic for others).
    ip_mismatch,         // None of these: 400 with `InboundTargetDecision::error`.
};

std::string_view to_string(InboundTargetCheck check);

// InboundTargetDecision is `check_inbound_target`'s verdict.
struct InboundTargetDecision {
    InboundTargetCheck check = InboundTargetCheck::ip_mismatch;
    std::string error;  // ztunnel's text when refused: `ip mismatch: <local ip> != <authority ip>`.

    bool accepted() const { return check != InboundTargetCheck::ip_mismatch; }
};

// check_inbound_target decides, as ztunnel's `validate_destination`, whether the HBONE request
// with `authority`, arriving on `local_ip` of the pod running `local`, may proceed:
// - the authority's IP is `local_ip`, or the authority is a hostname: yes;
// - `local` has an `applicationTunnel` (either protocol): yes;
// - the authority's address, looked up on `local`'s network for no client namespace, is a
//   workload or service whose `waypoint` (the single field; ztunnel does not consult
//   `weightedWaypoints` here) resolves to a service with `local` among its stored endpoints, or
//   to a workload that owns `local_ip`: yes (the sandwich);
// - otherwise no (400).
InboundTargetDecision check_inbound_target(const state::Snapshot& snapshot,
                                           const state::Workload& local,
                                           const state::IpAddr& local_ip,
                                           const hbone::Authority& authority);

// hostname_tunnel_target is the address ztunnel writes as the destination of a PROXY header when
// the authority was a service hostname (PROXY carries no names): a VIP of `service` on
// `network`, IPv4 before IPv6, the last of equals (Rust's `max_by_key`), with `port`; when no
// VIP is on `network`, the last VIP of any network. std::nullopt when the service has no VIP
// (ztunnel's `NoIPForService`, answered 503).
std::optional<state::SocketAddr> hostname_tunnel_target(const state::Service& service,
                                                        std::string_view network, uint16_t port);

// AppTunnelDecision is where an inbound HBONE stream's bytes go and how (ztunnel's
// `find_inbound_upstream` tail and `serve_connect`).
struct AppTunnelDecision {
    // upstream is the pod's address and the port after the tunnel's override: what RBAC sees as
    // the destination and what the access log's target is.
    state::SocketAddr upstream;
    // connect_to is what the inbound side dials: `upstream`, or loopback of `upstream`'s family
    // on its port for a PROXY tunnel with `localhost_app_tunnel` (the application then binds only
    // to localhost, and cannot be reached without ztunnel).
    state::SocketAddr connect_to;
    // from_loopback: bind the dialling socket to that loopback address instead of spoofing the
    // client's, or RPF, iptables and routing would drop the reply; the client's address travels
    // in the PROXY header instead.
    bool from_loopback = false;
    // send_proxy_header: after the 200 and before any payload, write
    // `build_proxy_v2(client, header_destination, client identity)` to the application.
    bool send_proxy_header = false;
    state::SocketAddr header_destination;  // The authority's address (or `hostname_tunnel_target`).
};

// decide_app_tunnel applies `local`'s `applicationTunnel` to `target` (the pod's IP and the port
// resolved from the authority): none: dial `target` unchanged; `NONE` with a port: only the port
// changes, bytes go unmodified; `PROXY`: the port changes if one is set, the PROXY header is sent
// with `tunnel_target` as destination, and with `localhost_app_tunnel` (ztunnel's
// `LOCALHOST_APP_TUNNEL`, default true) the dial goes to loopback from loopback.
AppTunnelDecision decide_app_tunnel(const state::Workload& local, const state::SocketAddr& target,
                                    const state::SocketAddr& tunnel_target,
                                    bool localhost_app_tunnel);

// proxy_header returns the PROXY v2 header to write to the application when
// `tunnel.send_proxy_header` (ztunnel's `write_proxy_protocol`): the client's address `client`
// (the TCP peer of the HBONE connection), `tunnel.header_destination`, and TLV 0xD0 with
// `client_identity` (the verified TLS peer; no TLV without one). Cannot fail for an identity
// `certs::Identity` accepts (they are far shorter than `hbone::kProxyV2IdentityMax`); the result
// stays a Result so a caller handles the bound rather than assumes it.
Result<std::vector<uint8_t>> proxy_header(const state::SocketAddr& client,
                                          const std::optional<certs::Identity>& client_identity,
                                          const AppTunnelDecision& tunnel);

// inbound_rbac_connection builds the RBAC inputs of an inbound HBONE stream exactly as ztunnel
// does, also for traffic a waypoint sends on: `src` is the TCP peer (the waypoint's address, not
// the original client's), `src_identity` the verified TLS peer (the waypoint's identity), and
// `dst` the tunnel decision's `upstream` (pod IP and application or tunnel port, never 15008 and
// never the loopback address). The policies are those of the local workload, whatever the
// authority named.
RbacConnection inbound_rbac_connection(const state::SocketAddr& peer,
                                       const certs::Identity& peer_identity,
                                       const AppTunnelDecision& tunnel);

}  // namespace zt::proxy
