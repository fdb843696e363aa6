// xds_store.cc decodes and translates each pushed resource, keeps the last accepted state per
// resource name, and composes the file from it. A rejection never changes the stored state, and
// nothing here performs I/O; the log lines it writes (dropped parts, IPs taken from a loser) are
// warnings an operator can act on.

#include "src/agent/xds_store.h"

#include <algorithm>
#include <deque>
#include <tuple>
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
        s.changed_addresses_.insert(resource.name());
        s.generation_++;
    }
    for (const std::string& name : removed) {
        if (s.addresses_.erase(name) != 0) {
            s.changed_addresses_.insert(name);
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
        s.changed_policies_.insert(resource.name());
        s.generation_++;
    }
    for (const std::string& name : removed) {
        if (s.policies_.erase(name) != 0) {
            s.changed_policies_.insert(name);
            s.generation_++;
        }
    }
    return rejections;
}

XdsStore::Changes XdsStore::take_changes() {
    Changes changes;
    changes.addresses.assign(changed_addresses_.begin(), changed_addresses_.end());
    changes.policies.assign(changed_policies_.begin(), changed_policies_.end());
    changed_addresses_.clear();
    changed_policies_.clear();
    return changes;
}

IpRank ip_rank(const state::Workload& workload, uint64_t sequence) {
    bool pod = workload.is_pod();
    bool hbone = workload.protocol == state::Protocol::hbone;
    return {pod && hbone, pod, hbone, sequence};
}

std::string ip_taken_warning(const state::Workload& loser, const state::IpAddr& ip,
                             std::string_view holder_uid) {
    return "workload " + state::quote_text(loser.uid) + ": IP " + ip.to_string() +
           " is also an IP of " + state::quote_text(holder_uid) +
           ", which ztunnel prefers; left out of this workload";
}

namespace {

// Candidate is one workload competing for the file (borrowed from the static config or the
// store), with what ranks it.
struct Candidate {
    const state::Workload* workload = nullptr;
    uint64_t sequence = 0;  // Static entries rank above every xDS one.
};

IpRank rank_of(const Candidate& c) {
    return ip_rank(*c.workload, c.sequence);
}

// pick keeps, per key, the static entry or else the newest store entry.
template <class T>
void pick(std::unordered_map<std::string_view, std::pair<const T*, uint64_t>>& chosen,
          std::string_view key, const T* value, uint64_t sequence) {
    auto [it, fresh] = chosen.try_emplace(key, value, sequence);
    if (!fresh && it->second.second < sequence) {
        it->second = {value, sequence};
    }
}

template <class T>
std::vector<std::pair<std::string_view, const T*>> sorted(
        const std::unordered_map<std::string_view, std::pair<const T*, uint64_t>>& chosen) {
    std::vector<std::pair<std::string_view, const T*>> out;
    out.reserve(chosen.size());
    for (const auto& [key, entry] : chosen) {
        out.emplace_back(key, entry.first);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

// assign_ips copies the chosen workloads (in `ordered`, by uid) into the file's list, leaving an
// IP that several share on one network only with the one ztunnel would pick.
std::vector<state::Workload> assign_ips(
        const std::vector<std::pair<std::string_view, const state::Workload*>>& ordered,
        std::unordered_map<std::string_view, std::pair<const state::Workload*, uint64_t>>& chosen,
        std::vector<std::string>* warnings) {
    std::vector<Candidate> candidates;
    candidates.reserve(ordered.size());
    for (const auto& [uid, workload] : ordered) {
        candidates.push_back({workload, chosen[uid].second});
    }
    std::unordered_map<state::NetworkAddress, size_t, state::NetworkAddressHash> owner;
    owner.reserve(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
        const state::Workload& w = *candidates[i].workload;
        if (w.network_mode == state::NetworkMode::host_network) {
            continue;  // Never indexed by IP (ztunnel, and the config's own check).
        }
        for (const state::IpAddr& ip : w.workload_ips) {
            auto [it, fresh] = owner.try_emplace(state::NetworkAddress{w.network, ip}, i);
            if (!fresh && it->second != i &&
                rank_of(candidates[i]) > rank_of(candidates[it->second])) {
                it->second = i;
            }
        }
    }
    std::vector<state::Workload> out;
    out.reserve(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
        out.push_back(*candidates[i].workload);
        state::Workload& w = out.back();
        if (w.network_mode == state::NetworkMode::host_network || w.workload_ips.empty()) {
            continue;
        }
        std::vector<state::IpAddr> kept;
        kept.reserve(w.workload_ips.size());
        for (const state::IpAddr& ip : w.workload_ips) {
            size_t holder = owner.find(state::NetworkAddress{w.network, ip})->second;
            if (holder == i) {
                if (std::find(kept.begin(), kept.end(), ip) == kept.end()) {
                    kept.push_back(ip);
                }
            } else if (warnings != nullptr) {
                warnings->push_back(ip_taken_warning(w, ip, candidates[holder].workload->uid));
            }
        }
        w.workload_ips = std::move(kept);
    }
    return out;
}

}  // namespace

// compose_config works on pointers into `base` and the store and copies each chosen object once,
// into the result: a 10,000-workload mesh is composed for every write, so no intermediate copies
// and no text keys.
state::Config compose_config(const state::Config& base, const XdsStore& store,
                             std::vector<std::string>* warnings) {
    constexpr uint64_t kStatic = UINT64_MAX;
    state::Config out;

    // Workloads by uid: static first (never replaced), then the store's, newest winning.
    std::unordered_map<std::string_view, std::pair<const state::Workload*, uint64_t>> workloads;
    workloads.reserve(base.workloads.size() + store.workload_count());
    std::unordered_map<std::string_view, std::pair<const state::Service*, uint64_t>> services;
    std::deque<std::string> service_keys;  // Owns the keys `services` points into (stable).
    for (const state::Workload& w : base.workloads) {
        pick(workloads, w.uid, &w, kStatic);
    }
    for (const state::Service& svc : base.services) {
        service_keys.push_back(svc.key().to_string());
        pick(services, service_keys.back(), &svc, kStatic);
    }
    for (const auto& [name, entry] : store.address_entries()) {
        if (entry.workload) {
            pick(workloads, entry.workload->uid, &*entry.workload, entry.sequence);
        } else if (entry.service) {
            service_keys.push_back(entry.service->key().to_string());
            pick(services, service_keys.back(), &*entry.service, entry.sequence);
        }
    }

    out.workloads = assign_ips(sorted(workloads), workloads, warnings);
    for (const auto& [key, svc] : sorted(services)) {
        out.services.push_back(*svc);
    }

    std::unordered_map<std::string_view, std::pair<const state::Policy*, uint64_t>> policies;
    std::deque<std::string> policy_keys;
    for (const state::Policy& p : base.policies) {
        policy_keys.push_back(p.key());
        pick(policies, policy_keys.back(), &p, kStatic);
    }
    for (const auto& [name, entry] : store.policy_entries()) {
        // The store keys policies by their namespace/name (checked when they were applied).
        pick(policies, std::string_view(name), &entry.policy, entry.sequence);
    }
    for (const auto& [key, policy] : sorted(policies)) {
        out.policies.push_back(*policy);
    }
    out.pods = base.pods;
    std::sort(out.pods.begin(), out.pods.end(),
              [](const state::Pod& a, const state::Pod& b) { return a.uid < b.uid; });
    return out;
}

}  // namespace zt::agent
