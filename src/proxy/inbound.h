#pragma once

// The inbound HBONE path (15008): an accepted socket becomes a server link; each CONNECT request
// on it is decided by `plan_inbound` (inbound_plan.h) and carried out here: refused with its
// status, denied (401, recorded), or connected to the pod's application from the client's own
// address, which becomes a tunnel that answers 200 once the application accepted.

#include "hbone/h2_session.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class Link;
class WorkerContext;
struct Pod;

// accept_inbound_hbone takes connection `client`, accepted on `pod`'s 15008.
void accept_inbound_hbone(WorkerContext& context, Pod& pod, UniqueFd client);

// on_connect_request decides and starts the CONNECT `request` that arrived on server `link`.
void on_connect_request(Link& link, const hbone::H2Event& request);

}  // namespace zt::proxy
