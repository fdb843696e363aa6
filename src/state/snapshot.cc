// snapshot.cc builds the immutable `Snapshot` indexes from a parsed `Config` and answers lookups
// with ztunnel's ranking rules. It runs the cross-object checks (duplicates, one IP in two
// workloads) and reports every problem with the JSON path of the object concerned. It must never
// mutate a snapshot after `build` returns: workers read it without locks.

#include "src/state/snapshot.h"

#include <algorithm>
#include <utility>

#include "zt/assert.h"

namespace zt::state {

namespace {

std::string at(std::string_view list, size_t index) {
    return std::string(list) + "[" + std::to_string(index) + "]";
}

// set_key sets `key` to `namespace_/hostname`, the services map's key.
void set_key(std::string& key, std::string_view namespace_, std::string_view hostname) {
    key.clear();
    key.append(namespace_);
    key.push_back('/');
    key.append(hostname);
}

// ClientNamespace is the namespace a lookup is made for; std::nullopt is ztunnel's `ns: None`
// (no visibility filter, no namespace preference), used to resolve waypoint references.
using ClientNamespace = std::optional<std::string_view>;

bool visible(const Service& service, ClientNamespace client_namespace) {
    return !client_namespace || service.visibility != Visibility::namespace_ ||
           service.namespace_ == *client_namespace;
}

bool in_namespace(const Service& service, ClientNamespace client_namespace) {
    return client_namespace && service.namespace_ == *client_namespace;
}

// better_service is the ztunnel ranking for services sharing a VIP or hostname: a service in the
// client's namespace beats one that is not, then a canonical one beats one that is not. Equal
// ranks keep file order (the caller keeps the first).
bool better_service(const Service& a, const Service& b, ClientNamespace client_namespace) {
    bool a_local = in_namespace(a, client_namespace);
    bool b_local = in_namespace(b, client_namespace);
    if (a_local != b_local) {
        return a_local;
    }
    return a.canonical && !b.canonical;
}

const Service* best_of(const std::vector<const Service*>& candidates,
                       ClientNamespace client_namespace) {
    const Service* best = nullptr;
    for (const Service* service : candidates) {
        if (!visible(*service, client_namespace)) {
            continue;
        }
        if (best == nullptr || better_service(*service, *best, client_namespace)) {
            best = service;
        }
    }
    return best;
}

}  // namespace

BuildResult Snapshot::build(Config config) {
    BuildResult result;
    std::shared_ptr<Snapshot> snapshot(new Snapshot(std::move(config)));
    snapshot->index(result);
    if (result.errors.empty()) {
        result.snapshot = std::move(snapshot);
    }
    return result;
}

void Snapshot::index(BuildResult& result) {
    std::vector<bool> indexed(config_.workloads.size());
    index_workloads(result.errors, indexed);
    index_services(result.errors);
    index_endpoints(result.warnings, indexed);
    index_policies(result.errors, result.warnings);
    index_pods(result.errors);
}

// The index steps below run on every reload, over the whole mesh: each lookup map is filled once
// (a duplicate finds the position of the first holder from its pointer, so no second map of
// positions is kept) and sized up front, and lookups by a key made of two strings reuse one
// buffer.

void Snapshot::index_workloads(std::vector<std::string>& errors, std::vector<bool>& indexed) {
    const Workload* first = config_.workloads.data();
    workloads_by_uid_.reserve(config_.workloads.size());
    workloads_by_ip_.reserve(config_.workloads.size());
    for (size_t i = 0; i < config_.workloads.size(); ++i) {
        const Workload& workload = config_.workloads[i];
        if (workload.uid.empty()) {
            continue;  // Only in a file that already failed to parse; never a second error.
        }
        auto [it, fresh] = workloads_by_uid_.emplace(workload.uid, &workload);
        if (!fresh) {
            errors.push_back(at("workloads", i) + ".uid: duplicate uid " +
                             quote_text(workload.uid) + " (first at " +
                             at("workloads", size_t(it->second - first)) + ")");
            continue;
        }
        indexed[i] = true;
        if (workload.network_mode == NetworkMode::host_network) {
            continue;  // ztunnel never finds host-network workloads by IP.
        }
        for (size_t k = 0; k < workload.workload_ips.size(); ++k) {
            NetworkAddress key{workload.network, workload.workload_ips[k]};
            auto [ip_it, ip_fresh] = workloads_by_ip_.try_emplace(key, &workload);
            if (!ip_fresh && ip_it->second != &workload) {
                errors.push_back(at("workloads", i) + ".workloadIps[" + std::to_string(k) +
                                 "]: " + key.ip.to_string() + " on network " +
                                 quote_text(key.network) + " is also an IP of " +
                                 at("workloads", size_t(ip_it->second - first)) + " (uid " +
                                 quote_text(ip_it->second->uid) + ")");
            }
        }
    }
}

void Snapshot::index_services(std::vector<std::string>& errors) {
    const Service* first = config_.services.data();
    endpoints_.resize(config_.services.size());
    services_by_key_.reserve(config_.services.size());
    std::string key;
    for (size_t i = 0; i < config_.services.size(); ++i) {
        const Service& service = config_.services[i];
        set_key(key, service.namespace_, service.hostname);
        auto [it, fresh] = services_by_key_.try_emplace(key, &service);
        if (!fresh) {
            errors.push_back(at("services", i) + ": duplicate service " + quote_text(key) +
                             " (first at " + at("services", size_t(it->second - first)) + ")");
            continue;
        }
        services_by_host_[service.hostname].push_back(&service);
        for (const NetworkAddress& vip : service.vips) {
            services_by_vip_[vip].push_back(&service);
        }
        for (const NetworkCidr& cidr : service.cidr_vips) {
            cidr_vips_.push_back({cidr.network, cidr.cidr, &service});
        }
    }
}

void Snapshot::index_endpoints(std::vector<std::string>& warnings,
                               const std::vector<bool>& indexed) {
    // Endpoints, keyed by workload uid within a service (a later entry for the same uid wins,
    // as ztunnel's endpoint map does), health-filtered when stored. In the workloads' pass a
    // uid can come again only within one workload's own list, so only the service's last
    // endpoint can hold it; the services' explicit endpoints (rare) get a map of uids.
    auto stored = [](const Service& service, HealthStatus status) {
        return status == HealthStatus::healthy ||
               service.health_policy() == HealthPolicy::allow_all;
    };
    std::string key;
    for (size_t i = 0; i < config_.workloads.size(); ++i) {
        const Workload& workload = config_.workloads[i];
        if (!indexed[i]) {
            continue;  // A duplicate uid; already an error.
        }
        for (const WorkloadService& ws : workload.services) {
            set_key(key, ws.service.namespace_, ws.service.hostname);
            auto it = services_by_key_.find(key);
            if (it == services_by_key_.end()) {
                warnings.push_back(at("workloads", i) + ".services: service " + quote_text(key) +
                                   " is not defined; the endpoint is ignored");
                continue;
            }
            const Service& service = *it->second;
            if (!stored(service, workload.status)) {
                continue;
            }
            std::vector<Endpoint>& list = endpoints_[size_t(&service - config_.services.data())];
            Endpoint endpoint{&workload, ws.ports, workload.status};
            if (!list.empty() && list.back().workload == &workload) {
                list.back() = std::move(endpoint);
            } else {
                list.push_back(std::move(endpoint));
            }
        }
    }
    for (size_t i = 0; i < config_.services.size(); ++i) {
        const Service& service = config_.services[i];
        if (service.endpoints.empty()) {
            continue;
        }
        std::vector<Endpoint>& list = endpoints_[i];
        std::unordered_map<std::string_view, size_t> slot;
        for (size_t e = 0; e < list.size(); ++e) {
            slot.emplace(list[e].workload->uid, e);
        }
        for (const ExplicitEndpoint& explicit_endpoint : service.endpoints) {
            const Workload* workload = workload_by_uid(explicit_endpoint.workload_uid);
            if (workload == nullptr) {
                warnings.push_back(at("services", i) + ".endpoints: workload " +
                                   quote_text(explicit_endpoint.workload_uid) +
                                   " is not defined; the endpoint is ignored");
                continue;
            }
            if (!stored(service, explicit_endpoint.status)) {
                continue;
            }
            Endpoint endpoint{workload, explicit_endpoint.ports, explicit_endpoint.status};
            auto [at_slot, fresh] = slot.emplace(workload->uid, list.size());
            if (fresh) {
                list.push_back(std::move(endpoint));
            } else {
                list[at_slot->second] = std::move(endpoint);
            }
        }
    }
}

void Snapshot::index_policies(std::vector<std::string>& errors,
                              std::vector<std::string>& warnings) {
    const Policy* first = config_.policies.data();
    policies_by_key_.reserve(config_.policies.size());
    for (size_t i = 0; i < config_.policies.size(); ++i) {
        const Policy& policy = config_.policies[i];
        auto [it, fresh] = policies_by_key_.try_emplace(policy.key(), &policy);
        if (!fresh) {
            errors.push_back(at("policies", i) + ": duplicate policy " + quote_text(policy.key()));
            continue;
        }
        if (policy.scope == PolicyScope::global) {
            global_policies_.push_back(&policy);
        } else if (policy.scope == PolicyScope::namespace_) {
            namespace_policies_[policy.namespace_].push_back(&policy);
        }
    }
    std::vector<bool> selected(config_.policies.size());
    for (size_t i = 0; i < config_.workloads.size(); ++i) {
        const auto& keys = config_.workloads[i].authorization_policies;
        for (size_t k = 0; k < keys.size(); ++k) {
            const Policy* policy = policy_by_key(keys[k]);
            if (policy == nullptr) {
                warnings.push_back(at("workloads", i) + ".authorizationPolicies[" +
                                   std::to_string(k) + "]: policy " + quote_text(keys[k]) +
                                   " is not defined; skipped");
                continue;
            }
            selected[size_t(policy - first)] = true;
        }
    }
    for (size_t i = 0; i < config_.policies.size(); ++i) {
        const Policy& policy = config_.policies[i];
        if (policy.scope == PolicyScope::workload_selector && !selected[i]) {
            warnings.push_back(at("policies", i) + ": WorkloadSelector policy " +
                               quote_text(policy.key()) +
                               " is listed by no workload; it selects nothing");
        }
    }
}

void Snapshot::index_pods(std::vector<std::string>& errors) {
    for (size_t i = 0; i < config_.pods.size(); ++i) {
        const Pod& pod = config_.pods[i];
        auto [it, fresh] = pods_by_uid_.emplace(pod.uid, &pod);
        if (!fresh && !pod.uid.empty()) {
            errors.push_back(at("pods", i) + ".uid: duplicate pod uid " + quote_text(pod.uid));
        }
    }
}

const Workload* Snapshot::workload_by_uid(std::string_view uid) const {
    auto it = workloads_by_uid_.find(uid);
    return it == workloads_by_uid_.end() ? nullptr : it->second;
}

const Workload* Snapshot::workload_by_ip(const NetworkAddress& address) const {
    auto it = workloads_by_ip_.find(address);
    return it == workloads_by_ip_.end() ? nullptr : it->second;
}

const Service* Snapshot::service_by_vip(const NetworkAddress& address,
                                        std::string_view client_namespace) const {
    return best_service_by_vip(address, client_namespace);
}

const Service* Snapshot::service_by_vip_unscoped(const NetworkAddress& address) const {
    return best_service_by_vip(address, std::nullopt);
}

const Service* Snapshot::best_service_by_vip(
        const NetworkAddress& address, std::optional<std::string_view> client_namespace) const {
    auto it = services_by_vip_.find(address);
    if (it != services_by_vip_.end()) {
        if (const Service* best = best_of(it->second, client_namespace)) {
            return best;
        }
    }
    const CidrVip* best = nullptr;
    for (const CidrVip& entry : cidr_vips_) {
        if (entry.network != address.network || !entry.cidr.contains(address.ip) ||
            !visible(*entry.service, client_namespace)) {
            continue;
        }
        if (best == nullptr) {
            best = &entry;
            continue;
        }
        bool local = in_namespace(*entry.service, client_namespace);
        bool best_local = in_namespace(*best->service, client_namespace);
        if (local != best_local) {
            if (local) {
                best = &entry;
            }
            continue;
        }
        if (entry.cidr.prefix_len != best->cidr.prefix_len) {
            if (entry.cidr.prefix_len > best->cidr.prefix_len) {
                best = &entry;
            }
            continue;
        }
        if (entry.service->canonical && !best->service->canonical) {
            best = &entry;
        }
    }
    return best == nullptr ? nullptr : best->service;
}

AddressMatch Snapshot::find_address(const NetworkAddress& address,
                                    std::string_view client_namespace) const {
    if (const Workload* workload = workload_by_ip(address)) {
        return {workload, nullptr};
    }
    return {nullptr, service_by_vip(address, client_namespace)};
}

AddressMatch Snapshot::find_address_unscoped(const NetworkAddress& address) const {
    if (const Workload* workload = workload_by_ip(address)) {
        return {workload, nullptr};
    }
    return {nullptr, service_by_vip_unscoped(address)};
}

AddressMatch Snapshot::find_hostname(const NamespacedHostname& name) const {
    if (const Service* service = service_by_key(name.namespace_, name.hostname)) {
        return {nullptr, service};
    }
    for (const Workload& workload : config_.workloads) {
        if (workload.hostname == name.hostname && workload.namespace_ == name.namespace_ &&
            workload_by_uid(workload.uid) == &workload) {
            return {&workload, nullptr};
        }
    }
    return {};
}

AddressMatch Snapshot::find_gateway(const GatewayAddress& gateway) const {
    if (gateway.address) {
        return find_address_unscoped(*gateway.address);
    }
    if (gateway.host) {
        return find_hostname(*gateway.host);
    }
    return {};
}

const Service* Snapshot::service_by_key(std::string_view namespace_,
                                        std::string_view hostname) const {
    std::string key;
    key.reserve(namespace_.size() + 1 + hostname.size());
    key.append(namespace_);
    key.push_back('/');
    key.append(hostname);
    auto it = services_by_key_.find(key);
    return it == services_by_key_.end() ? nullptr : it->second;
}

const Service* Snapshot::best_service_by_host(std::string_view hostname,
                                              std::string_view client_namespace) const {
    auto it = services_by_host_.find(hostname);
    return it == services_by_host_.end() ? nullptr : best_of(it->second, client_namespace);
}

std::span<const Service* const> Snapshot::services_by_host(std::string_view hostname) const {
    auto it = services_by_host_.find(hostname);
    if (it == services_by_host_.end()) {
        return {};
    }
    return it->second;
}

std::span<const Endpoint> Snapshot::endpoints(const Service& service) const {
    ZT_ASSERT(&service >= config_.services.data() &&
              &service < config_.services.data() + config_.services.size());
    return endpoints_[size_t(&service - config_.services.data())];
}

std::optional<uint16_t> Snapshot::target_port(const Service& service, const Endpoint& endpoint,
                                              uint16_t service_port) {
    if (auto port = find_port(endpoint.ports, service_port)) {
        return *port;
    }
    auto port = find_port(service.ports, service_port);
    if (port && *port != 0) {
        return *port;
    }
    return std::nullopt;
}

const Policy* Snapshot::policy_by_key(std::string_view key) const {
    auto it = policies_by_key_.find(key);
    return it == policies_by_key_.end() ? nullptr : it->second;
}

std::span<const Policy* const> Snapshot::namespace_policies(std::string_view namespace_) const {
    auto it = namespace_policies_.find(namespace_);
    if (it == namespace_policies_.end()) {
        return {};
    }
    return it->second;
}

std::vector<const Policy*> Snapshot::policies_for(const Workload& workload) const {
    std::vector<const Policy*> out;
    auto local = namespace_policies(workload.namespace_);
    out.insert(out.end(), local.begin(), local.end());
    out.insert(out.end(), global_policies_.begin(), global_policies_.end());
    for (const std::string& key : workload.authorization_policies) {
        const Policy* policy = policy_by_key(key);
        if (policy != nullptr && std::find(out.begin(), out.end(), policy) == out.end()) {
            out.push_back(policy);
        }
    }
    return out;
}

const Pod* Snapshot::pod_by_uid(std::string_view uid) const {
    auto it = pods_by_uid_.find(uid);
    return it == pods_by_uid_.end() ? nullptr : it->second;
}

std::string Snapshot::pod_identity(const Pod& pod, std::string_view trust_domain) const {
    if (const Workload* workload = workload_by_uid(pod.uid)) {
        return workload->identity(trust_domain);
    }
    return pod.has_info() ? pod.identity(trust_domain) : std::string();
}

}  // namespace zt::state
