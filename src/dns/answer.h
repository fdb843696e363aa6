#pragma once

// The DNS proxy's answer logic as a pure function, ztunnel's `Store::lookup` and its handler's
// checks (`src/dns/server.rs`, `src/dns/handler.rs`): given the snapshot, the client pod's
// workload and a parsed query, say whether to answer from the mesh (and with which records), to
// forward upstream, or to answer an error. Separate code sends the bytes; nothing here touches a
// socket, a clock or a random source (the shuffle's randomness comes in as a value), so every
// rule is one row of a table test (answer_test.cc).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/dns/message.h"
#include "src/dns/names.h"
#include "src/state/snapshot.h"

namespace zt::dns {

// AnswerOptions are the run's settings the answers depend on.
struct AnswerOptions {
    // cluster_domain is CLUSTER_DOMAIN: the suffix of Kubernetes service names.
    Name cluster_domain = Name{{"cluster", "local"}};
    // ipv6_enabled is IPV6_ENABLED: when false, AAAA questions for mesh names get no records.
    bool ipv6_enabled = true;
    // preferred_namespace is PREFERED_SERVICE_NAMESPACE: among services sharing a hostname, one in
    // this namespace wins over one that is merely first (but not over the client's own
    // namespace or a canonical one). Empty: none.
    std::string preferred_namespace;
};

// Verdict is what to do with one query.
enum class Verdict : uint8_t {
    answer,    // Answer from the mesh: authoritative NOERROR with `records` (maybe none).
    forward,   // Not a mesh name (or not A/AAAA): forward it upstream as it is.
    servfail,  // The client pod's workload is unknown: SERVFAIL, as ztunnel.
    notimp,    // An opcode other than QUERY: NOTIMP.
    formerr,   // A response sent as a query, or not exactly one question: FORMERR.
};

std::string_view to_string(Verdict verdict);

// Decision is the outcome of `decide`. `service` points into the snapshot the decision was
// made from.
struct Decision {
    Verdict verdict = Verdict::forward;
    std::vector<Record> records;  // A CNAME first when one is due, then the A/AAAA records.
    const state::Service* service = nullptr;
    // result is the `dns` log's `result` for a mesh answer: `success`, `no records` or `service
    // does not support this record type`.
    std::string_view result;
    uint16_t endpoints = 0;  // A/AAAA records in `records`.
};

// decide applies ztunnel's rules to `query` from `client` (null when the pod's workload is not
// in `snapshot`, or there is no snapshot yet):
// - a response: FORMERR; an opcode other than QUERY: NOTIMP; not exactly one question: FORMERR;
// - no client workload: SERVFAIL;
// - not A or AAAA (or not class IN, or a name that cannot be a hostname): forward;
// - each alias of the name (`aliases`: the name, its Kubernetes expansions from the client's
//   namespace, the name with a search domain stripped and that name's expansions) and each of
//   its `wildcards`, in order: the services with that hostname, keeping those with VIPs or under
//   `svc.<cluster domain>` (headless Kubernetes services) and visible to the client's
//   namespace, ranked (client's namespace, then canonical, then the preferred namespace, then
//   the first); the first alias that finds one wins, else forward;
// - the service's `ipFamilies` (or IPV6_ENABLED=false) exclude the type: no records;
// - otherwise its VIPs on the client's network of the asked family, or for a service without
//   VIPs the first IP of that family of each endpoint, shuffled with `random`; none: no records;
// - found through a stripped search domain (not through a wildcard): a CNAME from the asked
//   name to the stripped one first, and the addresses under the stripped name.
Decision decide(const state::Snapshot* snapshot, const state::Workload* client, const Query& query,
                const AnswerOptions& options, uint64_t random);

// encode_decision renders a decision that is not `forward` as the answer to `query`, at most
// `limit` bytes (TC set when records had to be left out).
std::vector<uint8_t> encode_decision(const Query& query, const Decision& decision, size_t limit);

}  // namespace zt::dns
