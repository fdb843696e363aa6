// ads_session.cc is the delta ADS bookkeeping: the node, the initial requests of a stream, the
// ACK/NACK of each response by nonce, the known resources per type and readiness. It holds no
// socket and no clock of its own (times are passed in), so the whole protocol is tested with
// messages alone.

#include "src/agent/ads_session.h"

#include <google/protobuf/util/json_util.h>

#include <set>

namespace zt::agent {

namespace ds = envoy::service::discovery::v3;

namespace {

constexpr std::string_view kMetaPrefix = "ISTIO_META_";
constexpr std::string_view kMetaJsonPrefix = "ISTIO_METAJSON_";

void set_string(google::protobuf::Struct& s, const std::string& key, const std::string& value) {
    (*s.mutable_fields())[key].set_string_value(value);
}

}  // namespace

NodeIdentity node_identity_from_env(const std::vector<std::pair<std::string, std::string>>& env) {
    NodeIdentity identity;
    for (const auto& [name, value] : env) {
        if (name == "INSTANCE_IP") {
            identity.instance_ip = value;
        } else if (name == "POD_NAME") {
            identity.pod_name = value;
        } else if (name == "POD_NAMESPACE") {
            identity.pod_namespace = value;
        } else if (name == "NODE_NAME") {
            identity.node_name = value;
        } else if (name.rfind(kMetaJsonPrefix, 0) == 0) {
            identity.meta_json.emplace_back(name.substr(kMetaJsonPrefix.size()), value);
        } else if (name.rfind(kMetaPrefix, 0) == 0) {
            identity.meta.emplace_back(name.substr(kMetaPrefix.size()), value);
        }
    }
    return identity;
}

ds::Node build_node(const NodeIdentity& identity, std::vector<std::string>* bad_json) {
    ds::Node node;
    const std::string& ns = identity.pod_namespace;
    node.set_id("ztunnel~" + identity.instance_ip + "~" + identity.pod_name + "." + ns + "~" + ns +
                ".svc.cluster.local");
    google::protobuf::Struct& metadata = *node.mutable_metadata();
    set_string(metadata, "NAME", identity.pod_name);
    set_string(metadata, "NAMESPACE", ns);
    set_string(metadata, "INSTANCE_IPS", identity.instance_ip);
    set_string(metadata, "NODE_NAME", identity.node_name);
    for (const auto& [key, value] : identity.meta) {
        set_string(metadata, key, value);
    }
    for (const auto& [key, json] : identity.meta_json) {
        google::protobuf::Value value;
        if (google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
            (*metadata.mutable_fields())[key] = std::move(value);
        } else if (bad_json != nullptr) {
            bad_json->push_back(std::string(kMetaJsonPrefix) + key);
        }
    }
    return node;
}

AdsSession::AdsSession(ds::Node node, std::vector<std::pair<std::string, ResourceHandler*>> types)
    : node_(std::move(node)) {
    for (auto& [type_url, handler] : types) {
        Watched watched;
        watched.type_url = type_url;
        watched.handler = handler;
        watched.status.type_url = type_url;
        watched_.push_back(std::move(watched));
    }
}

std::vector<ds::DeltaDiscoveryRequest> AdsSession::initial_requests() const {
    std::vector<ds::DeltaDiscoveryRequest> requests;
    for (const Watched& watched : watched_) {
        ds::DeltaDiscoveryRequest request;
        *request.mutable_node() = node_;
        request.set_type_url(watched.type_url);
        // No names: a wildcard subscription to every resource of the type.
        auto& versions = *request.mutable_initial_resource_versions();
        for (const auto& [name, version] : watched.known) {
            versions[name] = version;
        }
        requests.push_back(std::move(request));
    }
    return requests;
}

AdsSession::Watched* AdsSession::find(std::string_view type_url) {
    for (Watched& watched : watched_) {
        if (watched.type_url == type_url) {
            return &watched;
        }
    }
    return nullptr;
}

ResponseOutcome AdsSession::on_response(const ds::DeltaDiscoveryResponse& response,
                                        int64_t now_unix_ns) {
    ResponseOutcome outcome;
    outcome.reply.set_type_url(response.type_url());
    outcome.reply.set_response_nonce(response.nonce());
    outcome.updates = size_t(response.resources_size());
    outcome.removals = size_t(response.removed_resources_size());
    Watched* watched = find(response.type_url());
    if (watched == nullptr) {
        // ztunnel logs "unknown type" and still answers (an ACK); it never subscribed to it.
        outcome.unknown_type = true;
        return outcome;
    }
    watched->status.responses++;
    std::vector<Rejection> rejections =
            watched->handler->apply(response.resources(), response.removed_resources());
    remember(*watched, response, rejections);
    outcome.rejected = rejections.size();
    watched->applied = true;
    if (!synced_ && all_watched([](const Watched& w) { return w.applied; })) {
        synced_ = true;
        outcome.became_synced = true;
    }
    if (!rejections.empty()) {
        std::string error;
        for (const Rejection& r : rejections) {
            error += (error.empty() ? "" : "; ") + r.name + ": " + r.reason;
        }
        outcome.ack = false;
        outcome.error = error;
        outcome.reply.mutable_error_detail()->set_message(error);
        watched->status.nacks++;
        watched->status.last_nack_nonce = response.nonce();
        watched->status.last_nack_error = std::move(error);
        watched->status.last_nack_unix_ns = now_unix_ns;
        return outcome;
    }
    watched->status.acks++;
    watched->status.last_ack_nonce = response.nonce();
    watched->status.last_ack_unix_ns = now_unix_ns;
    watched->acked = true;
    if (!ready_ && all_watched([](const Watched& w) { return w.acked; })) {
        ready_ = true;
        outcome.became_ready = true;
    }
    return outcome;
}

void AdsSession::remember(Watched& watched, const ds::DeltaDiscoveryResponse& response,
                          const std::vector<Rejection>& rejections) {
    std::set<std::string> rejected;
    for (const Rejection& r : rejections) {
        rejected.insert(r.name);
    }
    for (const std::string& name : response.removed_resources()) {
        watched.known.erase(name);
    }
    for (const ds::Resource& resource : response.resources()) {
        if (rejected.count(resource.name()) == 0) {
            watched.known[resource.name()] = resource.version();
        } else {
            // Known by name (ztunnel announces every name it received) with the version of the
            // state it still holds.
            watched.known.try_emplace(resource.name(), "");
        }
    }
    watched.status.resources = watched.known.size();
}

bool AdsSession::ready() const {
    return ready_;
}

const std::map<std::string, std::string>* AdsSession::known(std::string_view type_url) const {
    for (const Watched& watched : watched_) {
        if (watched.type_url == type_url) {
            return &watched.known;
        }
    }
    return nullptr;
}

std::vector<TypeStatus> AdsSession::status() const {
    std::vector<TypeStatus> out;
    for (const Watched& watched : watched_) {
        out.push_back(watched.status);
    }
    return out;
}

}  // namespace zt::agent
