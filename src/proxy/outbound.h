#pragma once

// The outbound path (15001): a captured connection is admitted, routed by `plan_outbound`
// (route.h), and carried out: refused, relayed as plain TCP (plaintext.h), or tunnelled over
// HBONE on a link from the pod's pool (or a new one). A waypoint hop changes only the plan (where
// to connect, which authority and identities), not this code.

#include "src/proxy/route.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

// accept_outbound takes connection `client`, accepted on `pod`'s 15001.
void accept_outbound(WorkerContext& context, Pod& pod, UniqueFd client);

// carry_outbound carries out `plan` for `client`'s connection from `peer` to `destination`
// (the plan complete: a hostname-only upstream already resolved, on_demand.h).
void carry_outbound(WorkerContext& context, Pod& pod, UniqueFd client,
                    const state::Workload& source, const Plan& plan, const state::SocketAddr& peer,
                    const state::SocketAddr& destination);

}  // namespace zt::proxy
