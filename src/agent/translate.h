#pragma once

// translate turns one xDS resource from istiod (`istio.workload.Address`, holding a Workload
// or a Service, and `istio.security.Authorization`) into the plain structs of the config file
// (docs/contract.md §2, `state::Config`), with the meaning Istio's ztunnel gives each field
// (src/state/workload.rs, src/state/service.rs, src/rbac.rs of istio/ztunnel):
//
// - Defaults as ztunnel's xDS loader: an empty `trust_domain` becomes
//   `TranslateContext::trust_domain`, an empty `service_account` "default", an empty
//   `cluster_id` `TranslateContext::cluster_id`, an absent `capacity` 1, `workload_type` its
//   enum name in lower case (an unknown value reads as "deployment", as prost reads it).
// - A resource ztunnel rejects is rejected here with a reason fit for a NACK: an IP of other
//   than 4 or 16 bytes, `LEGACY_ISTIO_MTLS`, an unknown value of an enum ztunnel checks, a
//   gateway address with no destination, a `services` key without '/', a CIDR prefix longer
//   than its address, an Address with neither workload nor service.
// - What ztunnel silently drops is dropped here too, with a warning: in a policy, a string
//   match with no kind set and an IP range with a bad address or prefix (ztunnel filters them
//   out, which can make a match field empty); a port entry whose service port is 0 (no
//   connection ever has destination port 0, so nothing observable is lost).
// - What ztunnel accepts but the config file cannot carry is rejected, with a reason that says
//   so, because a file that does not load would stop every update: a port above 65535 (ztunnel
//   truncates it to 16 bits, which would invent another port), an empty workload uid or
//   namespace, an empty service namespace or hostname, a `namespace/hostname` with an empty
//   part or a second '/', a gateway hostname that reads as `network/ip`, a subject alt name
//   that is not a SPIFFE ID, and a trust domain, namespace and service account that do not
//   form a SPIFFE ID.
// - Not carried because ztunnel ignores them as well: `extensions`, `Port.app_protocol`,
//   `Service.ingress_use_waypoint` (the project's .proto files leave them out).
//
// Lists whose order carries no meaning come out sorted (a workload's `services` by key, port
// maps by service port, later duplicates winning as in ztunnel's maps), so the same resource
// always gives the same structs and the rendered file changes only when content does.
// Everything here is a pure function: no I/O, no state, safe on any thread.
//
// What the per-resource functions cannot see is the agent's to check across resources: two
// workloads with one IP on one network (the config rejects it; ztunnel prefers one), two
// policies with one `namespace/name`, and an Authorization whose xDS resource name is not
// `namespace/name` (ztunnel keys policies by the resource name, the config by
// `namespace/name`, which is what istiod sends).

#include <optional>
#include <string>
#include <vector>

#include "authorization.pb.h"
#include "src/state/types.h"
#include "workload.pb.h"

namespace zt::agent {

// TranslateContext holds the defaults that are not in the resource itself. The defaults are
// ztunnel's: it fills an empty `cluster_id` with "Kubernetes" and an empty `trust_domain` with
// "cluster.local" whatever its own CLUSTER_ID and TRUST_DOMAIN say (istiod elides the trust
// domain only when it is "cluster.local"), so keep them to behave as ztunnel does.
struct TranslateContext {
    std::string cluster_id = "Kubernetes";
    std::string trust_domain = "cluster.local";
};

// AddressOutcome is one translated Address: exactly one of `workload` and `service` is set
// when `error` is empty, neither when it is not. `error` is the NACK reason (one line, no
// resource name: the caller prefixes that). `warnings` lists what was dropped as ztunnel drops
// it; they do not reject the resource.
struct AddressOutcome {
    std::optional<state::Workload> workload;
    std::optional<state::Service> service;
    std::string error;
    std::vector<std::string> warnings;
};

// translate_address translates one Address resource (see the file comment for the rules).
AddressOutcome translate_address(const istio::workload::Address& address,
                                 const TranslateContext& context);

// PolicyOutcome is one translated Authorization: `policy` is set exactly when `error` is empty.
struct PolicyOutcome {
    std::optional<state::Policy> policy;
    std::string error;
    std::vector<std::string> warnings;
};

// translate_authorization translates one Authorization resource. `dry_run` is carried: ztunnel
// logs a dry-run policy's decision and never enforces it.
PolicyOutcome translate_authorization(const istio::security::Authorization& authorization,
                                      const TranslateContext& context);

}  // namespace zt::agent
