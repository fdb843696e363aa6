#pragma once

// RBAC: ztunnel's L4 authorization semantics as a pure function over policies and one
// connection's attributes (docs/ztunnel-reference.md §4; istio/ztunnel src/rbac.rs and
// DemandProxyState::assert_rbac). No I/O, no clock, no locks: the proxy calls it once per new
// inbound connection and again for every tracked connection after each config swap.

#include <optional>
#include <span>
#include <string>

#include "certs/identity.h"
#include "src/state/net.h"
#include "src/state/types.h"

namespace zt::proxy {

// RbacConnection is what a policy may look at. On inbound HBONE `dst` is the resolved target
// (pod IP and application port, not 15008) and `src_identity` the verified TLS peer; on 15006
// there is no identity.
struct RbacConnection {
    state::SocketAddr src;
    state::SocketAddr dst;
    std::optional<certs::Identity> src_identity;
};

// policy_matches reports whether `policy` matches `connection`, with ztunnel's structural edge
// cases: a policy with no rules never matches; a rule is the AND of its clauses and a rule with
// no clauses is true; a clause is the OR of its matches and a clause with no matches is true; a
// match with every field empty is skipped (never matches); within a field values are ORed and a
// `not*` field must match none of its values. Principals are matched without `spiffe://`;
// without an identity no principal, namespace or service account matches (so `notPrincipals`
// matches plaintext).
bool policy_matches(const state::Policy& policy, const RbacConnection& connection);

// RbacDecision is the outcome of `evaluate`. `reason` is ztunnel's error text for a denial
// (`explicitly denied by: ns/name` or `allow policies exist, but none allowed`), empty when
// allowed.
struct RbacDecision {
    bool allowed = true;
    std::string reason;
};

// evaluate applies Istio's decision order to the candidate `policies` (the destination
// workload's namespace policies, global policies and its selector policies): dry-run policies
// are only logged; any matching DENY denies; no ALLOW policy allows; a matching ALLOW allows;
// otherwise deny.
RbacDecision evaluate(std::span<const state::Policy* const> policies,
                      const RbacConnection& connection);

}  // namespace zt::proxy
