// xds_store.cc decodes and translates each pushed resource, keeps the last accepted state per
// resource name, and composes the file from it. A rejection never changes the stored state, and
// nothing here performs I/O; the log lines it writes (dropped parts, IPs taken from a loser) are
// warnings an operator can act on.

#include "src/agent/xds_store.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "zt/log.h"

namespace zt::agent {

namespace ds = envoy::service::discovery::v3;

namespace {

constexpr std::string_view kTarget = "xds";

// resource_payload returns the encoded message inside `resource`, or null with `error` set when
// the resource carries none (ztunnel's "XDS payload without resource").
const std::string* resource_payload(const ds::Resource& resource, std::string& error) {
    if (!resource.has_resource()) {
        error = "XDS payload without resource";
        return nullptr;
    }
    return &resource.resource().value();
}

void log_warnings(std::string_view name, const std::vector<std::string>& warnings) {
    for (const std::string& warning : warnings) {
        log::warn(kTarget, "part of a resource dropped",
                  {log::Field::str("resource", name), log::Field::str("reason", warning)});
    }
}

}  // namespace

XdsStore::XdsStore(TranslateContext context) : context_(std::move(context)) {}

void XdsStore::count_kinds() {
    workload_count_ = 0;
    service_count_ = 0;
    for (const auto& [name, entry] : addresses_) {
        workload_count_ += entry.workload ? 1 : 0;
        service_count_ += entry.service ? 1 : 0;
    }
}

std::vector<Rejection> XdsStore::AddressHandler::apply(
        const google::protobuf::RepeatedPtrField<ds::Resource>& updates,
        const google::protobuf::RepeatedPtrField<std::string>& removed) {
    XdsStore& s = store_;
    std::vector<Rejection> rejections;
    for (const ds::Resource& resource : updates) {
        std::string error;
        const std::string* payload = resource_payload(resource, error);
        istio::workload::Address address;
        if (payload != nullptr && !address.ParseFromString(*payload)) {
            error = "decode: the Address message does not parse";
        }
        AddressOutcome outcome;
        if (error.empty()) {
            outcome = translate_address(address, s.context_);
            error = outcome.error;
        }
        if (!error.empty()) {
            rejections.push_back({resource.name(), error});
            s.rejected_total_++;
            continue;
        }
        log_warnings(resource.name(), outcome.warnings);
        AddressEntry entry;
        entry.workload = std::move(outcome.workload);
        entry.service = std::move(outcome.service);
        auto it = s.addresses_.find(resource.name());
        if (it != s.addresses_.end() && it->second.workload == entry.workload &&
            it->second.service == entry.service) {
            continue;  // Re-sent unchanged (a reconnect): nothing to write.
        }
        entry.sequence = ++s.sequence_;
        s.addresses_[resource.name()] = std::move(entry);
        s.generation_++;
    }
    for (const std::string& name : removed) {
        if (s.addresses_.erase(name) != 0) {
            s.generation_++;
        }
    }
    s.count_kinds();
    return rejections;
}

std::vector<Rejection> XdsStore::AuthorizationHandler::apply(
        const google::protobuf::RepeatedPtrField<ds::Resource>& updates,
        const google::protobuf::RepeatedPtrField<std::string>& removed) {
    XdsStore& s = store_;
    std::vector<Rejection> rejections;
    for (const ds::Resource& resource : updates) {
        std::string error;
        const std::string* payload = resource_payload(resource, error);
        istio::security::Authorization authorization;
        if (payload != nullptr && !authorization.ParseFromString(*payload)) {
            error = "decode: the Authorization message does not parse";
        }
        PolicyOutcome outcome;
        if (error.empty()) {
            outcome = translate_authorization(authorization, s.context_);
            error = outcome.error;
        }
        if (error.empty() && outcome.policy->key() != resource.name()) {
            // Workloads name their selector policies by xDS resource name and the file keys
            // policies by namespace/name; istiod makes the two equal, and only then do the
            // references resolve.
            error = "the resource name is not the policy's namespace/name \"" +
                    outcome.policy->key() + "\"";
        }
        if (!error.empty()) {
            rejections.push_back({resource.name(), error});
            s.rejected_total_++;
            continue;
        }
        log_warnings(resource.name(), outcome.warnings);
        auto it = s.policies_.find(resource.name());
        if (it != s.policies_.end() && it->second.policy == *outcome.policy) {
            continue;
        }
        s.policies_[resource.name()] = PolicyEntry{std::move(*outcome.policy), ++s.sequence_};
        s.generation_++;
    }
    for (const std::string& name : removed) {
        if (s.policies_.erase(name) != 0) {
            s.generation_++;
        }
    }
    return rejections;
}

namespace {

// Candidate is one workload competing for the file, with what ranks it.
struct Candidate {
    state::Workload workload;
    uint64_t sequence = 0;  // Static entries rank above every xDS one.
};

// ip_rank orders workloads sharing an IP as ztunnel's lookup prefers them: a pod speaking HBONE,
// then a pod, then HBONE, then anything; the newest among equals.
std::tuple<bool, bool, bool, uint64_t> ip_rank(const Candidate& c) {
    bool pod = c.workload.is_pod();
    bool hbone = c.workload.protocol == state::Protocol::hbone;
    return {pod && hbone, pod, hbone, c.sequence};
}

}  // namespace

state::Config compose_config(const state::Config& base, const XdsStore& store,
                             std::vector<std::string>* warnings) {
    constexpr uint64_t kStatic = UINT64_MAX;
    state::Config out;

    // Workloads by uid: static first (never replaced), then the store's, newest winning.
    std::map<std::string, Candidate> workloads;
    for (const state::Workload& w : base.workloads) {
        workloads[w.uid] = Candidate{w, kStatic};
    }
    std::map<std::string, std::pair<state::Service, uint64_t>> services;
    for (const state::Service& s : base.services) {
        services[s.key().to_string()] = {s, kStatic};
    }
    for (const auto& [name, entry] : store.address_entries()) {
        if (entry.workload) {
            auto [it, fresh] = workloads.try_emplace(entry.workload->uid,
                                                     Candidate{*entry.workload, entry.sequence});
            if (!fresh && it->second.sequence != kStatic && it->second.sequence < entry.sequence) {
                it->second = Candidate{*entry.workload, entry.sequence};
            }
        } else if (entry.service) {
            std::string key = entry.service->key().to_string();
            auto [it, fresh] = services.try_emplace(key, *entry.service, entry.sequence);
            if (!fresh && it->second.second != kStatic && it->second.second < entry.sequence) {
                it->second = {*entry.service, entry.sequence};
            }
        }
    }

    // One IP on one network belongs to one workload: the best-ranked keeps it.
    std::unordered_map<std::string, std::string> owner;  // "network/ip" → uid
    for (const auto& [uid, candidate] : workloads) {
        if (candidate.workload.network_mode == state::NetworkMode::host_network) {
            continue;  // Never indexed by IP (ztunnel, and the config's own check).
        }
        for (const state::IpAddr& ip : candidate.workload.workload_ips) {
            std::string key = candidate.workload.network + "/" + ip.to_string();
            auto [it, fresh] = owner.try_emplace(key, uid);
            if (!fresh && it->second != uid &&
                ip_rank(candidate) > ip_rank(workloads[it->second])) {
                it->second = uid;
            }
        }
    }
    for (auto& [uid, candidate] : workloads) {
        state::Workload& w = candidate.workload;
        if (w.network_mode != state::NetworkMode::host_network) {
            std::vector<state::IpAddr> kept;
            for (const state::IpAddr& ip : w.workload_ips) {
                std::string key = w.network + "/" + ip.to_string();
                const std::string& holder = owner[key];
                if (holder == uid) {
                    if (std::find(kept.begin(), kept.end(), ip) == kept.end()) {
                        kept.push_back(ip);
                    }
                } else if (warnings != nullptr) {
                    warnings->push_back("workload " + state::quote_text(uid) + ": IP " +
                                        ip.to_string() + " is also an IP of " +
                                        state::quote_text(holder) +
                                        ", which ztunnel prefers; left out of this workload");
                }
            }
            w.workload_ips = std::move(kept);
        }
        out.workloads.push_back(std::move(w));
    }
    for (auto& [key, entry] : services) {
        out.services.push_back(std::move(entry.first));
    }

    std::map<std::string, state::Policy> policies;
    for (const state::Policy& p : base.policies) {
        policies[p.key()] = p;
    }
    for (const auto& [name, entry] : store.policy_entries()) {
        policies.try_emplace(entry.policy.key(), entry.policy);
    }
    for (auto& [key, policy] : policies) {
        out.policies.push_back(std::move(policy));
    }
    out.pods = base.pods;
    std::sort(out.pods.begin(), out.pods.end(),
              [](const state::Pod& a, const state::Pod& b) { return a.uid < b.uid; });
    return out;
}

}  // namespace zt::agent
