#pragma once

// The inbound decision for one CONNECT request as a pure function, beside `plan_outbound`: given
// the snapshot and what the request says, decide what the 15008 server answers (ztunnel's
// `serve_connect`, docs/ztunnel-reference.md §1.5 and §2.4): the authority checks (400 for an IP
// that is not the pod's, 503 for a hostname with no port or a port of ztunnel's own), the workload
// check (503), the target port (a hostname authority's service port translated through the pod's
// endpoint, else the service's target port), and RBAC with the peer's verified identity (401).
// Separate code (inbound.cc) carries the decision out; nothing here touches a socket, so every
// case is one row of a table test.
//
// The authority check is `check_inbound_target` (waypoint.h): the pod's own IP, a hostname, or
// the waypoint "sandwich" rules; the pod's application tunnel (`decide_app_tunnel`) is part of
// the decision (`InboundDecision::tunnel`). Where a later feature slots in: a workload that is not
// known yet becomes a decision to wait for it rather than to refuse.

#include <cstdint>
#include <optional>

#include "certs/identity.h"
#include "hbone/connect.h"
#include "src/proxy/close_cause.h"
#include "src/proxy/rbac.h"
#include "src/proxy/waypoint.h"
#include "src/state/net.h"
#include "src/state/snapshot.h"

namespace zt::proxy {

// InboundRequest is one CONNECT as the server sees it.
struct InboundRequest {
    const state::Workload* workload = nullptr;  // The pod's workload; null when unknown.
    bool accepting = true;       // False while the pod or the worker drains: refused.
    hbone::Authority authority;  // The CONNECT's `:authority`.
    state::SocketAddr local;     // The link's local address (the pod's IP and 15008).
    state::SocketAddr peer;      // The link's peer (the client's address).
    std::optional<certs::Identity> peer_identity;  // The peer's verified SPIFFE identity.
    // localhost_app_tunnel is ztunnel's `LOCALHOST_APP_TUNNEL` (default true): a PROXY
    // application tunnel is dialled on loopback from loopback.
    bool localhost_app_tunnel = true;
};

// InboundAction is what the server does with the request.
enum class InboundAction : uint8_t {
    connect,  // Connect to `target` from the client's address, then answer 200.
    deny,     // RBAC denied: answer 401; the connection is recorded (opened, then DENY).
    refuse,   // Answer `status` before anything is recorded (`connection failed`).
};

std::string_view to_string(InboundAction action);

// InboundDecision is the answer to one request. The pointers refer into the snapshot.
struct InboundDecision {
    InboundAction action = InboundAction::refuse;
    uint16_t status = 0;       // The HTTP status to answer (200 once connected).
    CloseCause cause;          // Why it was refused or denied.
    state::SocketAddr target;  // The application: the pod's IP and the resolved port (after the
                               // application tunnel's port override: `tunnel.upstream`).
    AppTunnelDecision tunnel;  // Where to dial, from where, and whether a PROXY header goes first.
    InboundTargetCheck check = InboundTargetCheck::ip_mismatch;  // Why the authority was accepted.
    const state::Workload* source = nullptr;       // The peer's workload by IP (labels only).
    const state::Workload* destination = nullptr;  // The pod's workload.
    const state::Service* service = nullptr;       // The authority's service, else guessed.
    RbacConnection rbac;  // What RBAC judged; kept to judge again after a config change.
};

// plan_inbound decides `request` against `snapshot`.
InboundDecision plan_inbound(const state::Snapshot& snapshot, const InboundRequest& request);

}  // namespace zt::proxy
