#pragma once

// AdsSession is the delta ADS protocol state of the agent, with no I/O (ztunnel's
// src/xds/client.rs `AdsClient` minus the transport): which types are watched and in what order,
// the node the agent presents, the resources known per type (name → version) that a reconnect
// announces in `initial_resource_versions`, one ACK or NACK per response by its nonce (a NACK's
// `error_detail` joins "name: reason" of every rejected resource while the others are applied),
// and readiness once every watched type has been ACKed. `AdsClient` (src/agent/ads_client.h)
// moves its messages over a gRPC stream.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xds.pb.h"

namespace zt::agent {

// kAddressTypeUrl and kAuthorizationTypeUrl are the two types ztunnel watches, in this order.
inline constexpr std::string_view kAddressTypeUrl = "type.googleapis.com/istio.workload.Address";
inline constexpr std::string_view kAuthorizationTypeUrl =
        "type.googleapis.com/istio.security.Authorization";

// Rejection is one resource a handler could not accept, and why (it becomes part of a NACK).
struct Rejection {
    std::string name;
    std::string reason;
};

// ResourceHandler applies the changes of one response to one type's state. It must apply every
// resource it can accept and every removal, keep the previous state of a rejected resource, and
// return the rejections.
class ResourceHandler {
public:
    virtual ~ResourceHandler() = default;

    // apply receives `updates` (each with name, version and the encoded resource) and `removed`
    // names of one response.
    virtual std::vector<Rejection> apply(
            const google::protobuf::RepeatedPtrField<envoy::service::discovery::v3::Resource>&
                    updates,
            const google::protobuf::RepeatedPtrField<std::string>& removed) = 0;
};

// NodeIdentity is what the agent tells istiod about itself (ztunnel's `node()`): the id is
// `ztunnel~<instance_ip>~<pod_name>.<pod_namespace>~<pod_namespace>.svc.cluster.local`, the
// metadata NAME, NAMESPACE, INSTANCE_IPS, NODE_NAME, then the ISTIO_META_* values (prefix
// removed) and the ISTIO_METAJSON_* values (prefix removed, JSON-decoded), later ones winning.
struct NodeIdentity {
    std::string instance_ip = "1.1.1.1";
    std::string pod_name;
    std::string pod_namespace;
    std::string node_name;
    std::vector<std::pair<std::string, std::string>> meta;       // ISTIO_META_<K> → (K, value)
    std::vector<std::pair<std::string, std::string>> meta_json;  // ISTIO_METAJSON_<K> → (K, JSON)
};

// node_identity_from_env reads INSTANCE_IP, POD_NAME, POD_NAMESPACE, NODE_NAME, ISTIO_META_* and
// ISTIO_METAJSON_* from `env` (name, value pairs).
NodeIdentity node_identity_from_env(const std::vector<std::pair<std::string, std::string>>& env);

// build_node renders `identity` as the xDS `Node`. A ISTIO_METAJSON_* value that is not JSON is
// left out and named in `bad_json` (ztunnel logs it and goes on).
envoy::service::discovery::v3::Node build_node(const NodeIdentity& identity,
                                               std::vector<std::string>* bad_json = nullptr);

// TypeStatus is what /debug shows per watched type.
struct TypeStatus {
    std::string type_url;
    size_t resources = 0;  // Known names.
    uint64_t responses = 0;
    uint64_t acks = 0;
    uint64_t nacks = 0;
    std::string last_ack_nonce;
    int64_t last_ack_unix_ns = 0;
    std::string last_nack_nonce;
    std::string last_nack_error;
    int64_t last_nack_unix_ns = 0;
};

// ResponseOutcome is what handling one response produced: the request to send back (an ACK or a
// NACK with the same type and nonce), whether it is an ACK, and the joined error of a NACK.
struct ResponseOutcome {
    envoy::service::discovery::v3::DeltaDiscoveryRequest reply;
    bool ack = true;
    bool unknown_type = false;
    std::string error;
    size_t updates = 0;
    size_t removals = 0;
    size_t rejected = 0;  // Resources named in the NACK.
    // became_synced is set on the response that made every watched type have a response applied
    // (ACKed or NACKed: a NACK still applies the resources it did not reject).
    bool became_synced = false;
    // became_ready is set on the response whose ACK made every watched type ACKed for the first
    // time.
    bool became_ready = false;
};

class AdsSession {
public:
    // AdsSession watches `types` (type URL → handler, in subscription order) as `node`. The
    // handlers must outlive the session.
    AdsSession(envoy::service::discovery::v3::Node node,
               std::vector<std::pair<std::string, ResourceHandler*>> types);

    // initial_requests returns the first request of a (re)connected stream for each type, in
    // order: the node, a wildcard subscription (no names), and the known resources with their
    // versions in `initial_resource_versions` (empty on the very first stream).
    std::vector<envoy::service::discovery::v3::DeltaDiscoveryRequest> initial_requests() const;

    // on_response applies `response` through its type's handler and returns the ACK or NACK to
    // send. A response for a type nobody watches is ACKed without being applied, as ztunnel
    // does, and flagged `unknown_type`. Known resources are updated: an accepted resource with
    // its version, a rejected one keeps the version last accepted ("" when none), removals
    // forget the name.
    ResponseOutcome on_response(
            const envoy::service::discovery::v3::DeltaDiscoveryResponse& response,
            int64_t now_unix_ns);

    // ready says whether every watched type has been ACKed at least once (ever: a reconnect does
    // not make the agent unready again, as in ztunnel).
    bool ready() const;

    // synced says whether every watched type has had a response applied, ACKed or not: from
    // then on the state is complete enough to write (a type NACKed for one bad resource still
    // holds every other one).
    bool synced() const { return synced_; }

    // known returns the known resources (name → version) of `type_url`, or null.
    const std::map<std::string, std::string>* known(std::string_view type_url) const;

    // status returns one entry per watched type, in subscription order.
    std::vector<TypeStatus> status() const;

private:
    struct Watched {
        std::string type_url;
        ResourceHandler* handler = nullptr;
        std::map<std::string, std::string> known;
        TypeStatus status;
        bool acked = false;
        bool applied = false;
    };

    Watched* find(std::string_view type_url);
    // remember updates `watched`'s known resources after `response` with `rejections` applied.
    void remember(Watched& watched,
                  const envoy::service::discovery::v3::DeltaDiscoveryResponse& response,
                  const std::vector<Rejection>& rejections);

    // all_watched says whether `predicate` holds for every watched type.
    template <class Predicate>
    bool all_watched(Predicate predicate) const {
        for (const Watched& w : watched_) {
            if (!predicate(w)) {
                return false;
            }
        }
        return true;
    }

    envoy::service::discovery::v3::Node node_;
    std::vector<Watched> watched_;
    bool ready_ = false;
    bool synced_ = false;
};

}  // namespace zt::agent
