#pragma once

// The plaintext paths: outbound plain TCP (a TCP workload, or passthrough to an address outside
// the mesh) from 15001, and inbound plaintext from 15006 (RBAC without a peer identity, then the
// pod's application from the client's own address). Both splice through the worker's relay
// engine (uring/splice_relay.h); this file records their connections and reports their end.

#include "src/proxy/route.h"
#include "src/state/net.h"
#include "uring/splice_relay.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

// relay_outbound_tcp relays `client` to `plan`'s TCP target (or its original `destination` for
// passthrough).
void relay_outbound_tcp(WorkerContext& context, Pod& pod, UniqueFd client,
                        const state::Workload& source, const Plan& plan,
                        const state::SocketAddr& peer, const state::SocketAddr& destination);

// accept_inbound_plaintext takes connection `client`, accepted on `pod`'s 15006.
void accept_inbound_plaintext(WorkerContext& context, Pod& pod, UniqueFd client);

// on_relay_done reports a finished relay's connection (the relay engine's callback).
void on_relay_done(void* context, const uring::RelayReport& report);

}  // namespace zt::proxy
