#pragma once

// `Snapshot` is the immutable mesh state built from one valid config: the parsed `Config` plus
// every index the data path and the admin dump need (docs/ztunnel-reference.md §3.5, §3.7, §4.3).
// The control thread builds it; workers share it through `std::shared_ptr<const Snapshot>` and load
// it once per new connection, so nothing in here ever changes after `build` returns and every
// lookup is safe from any thread without locks.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/state/net.h"
#include "src/state/types.h"

namespace zt::state {

class Snapshot;

// Endpoint is one workload behind one service, with its per-endpoint port overrides. `workload`
// points into the owning Snapshot and lives as long as it does.
struct Endpoint {
    const Workload* workload = nullptr;
    PortMap ports;
    HealthStatus status = HealthStatus::healthy;
};

// BuildResult is what `Snapshot::build` returns: a snapshot when `errors` is empty, else null.
// Every error and warning starts with the JSON path of the object it concerns.
struct BuildResult {
    std::shared_ptr<const Snapshot> snapshot;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};

// AddressMatch is the result of `Snapshot::find_address`: a workload, or a service, or neither.
struct AddressMatch {
    const Workload* workload = nullptr;
    const Service* service = nullptr;
};

class Snapshot {
public:
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    // build indexes `config` and runs the checks that need more than one object: duplicate
    // workload uids, service keys, policy keys and pod uids, and one IP in two workloads of the
    // same network. That last one is REJECTED (docs/contract.md §2), rather than resolved with
    // ztunnel's (Pod+HBONE, Pod, HBONE, any) preference: an IP must name exactly one identity for
    // the proxy and for policy. HostNetwork workloads are never indexed by IP, so they may share
    // one. Every problem is reported; nothing is built unless there are none.
    static BuildResult build(Config config);

    const Config& config() const { return config_; }

    std::span<const Workload> workloads() const { return config_.workloads; }

    std::span<const Service> services() const { return config_.services; }

    std::span<const Policy> policies() const { return config_.policies; }

    std::span<const Pod> pods() const { return config_.pods; }

    // workload_by_uid returns the workload with this uid, or null.
    const Workload* workload_by_uid(std::string_view uid) const;

    // workload_by_ip returns the (Standard network mode) workload that owns this address, or
    // null.
    const Workload* workload_by_ip(const NetworkAddress& address) const;

    // service_by_vip returns the service a client in `client_namespace` reaches at `address`:
    // exact VIPs first, ranked (same namespace as the client, canonical, file order), then CIDR
    // VIPs ranked (same namespace, longest prefix, canonical). Services of `Namespace`
    // visibility are invisible to clients of other namespaces. Null when none.
    const Service* service_by_vip(const NetworkAddress& address,
                                  std::string_view client_namespace) const;

    // find_address is ztunnel's `find_address`: the workload at `address` if any, else the
    // service `service_by_vip` picks.
    AddressMatch find_address(const NetworkAddress& address,
                              std::string_view client_namespace) const;

    // service_by_vip_unscoped and find_address_unscoped are the same lookups made for no client
    // (ztunnel's `ns: None`): every service is visible and none wins for its namespace. ztunnel
    // resolves waypoint references and the inbound "sandwich" check this way.
    const Service* service_by_vip_unscoped(const NetworkAddress& address) const;
    AddressMatch find_address_unscoped(const NetworkAddress& address) const;

    // find_hostname is ztunnel's `ProxyState::find_hostname`: the service `namespace/hostname`,
    // else the first workload (in file order) of that namespace whose `hostname` is that name
    // (an O(n) scan, as in ztunnel: workloads addressed by hostname are rare).
    AddressMatch find_hostname(const NamespacedHostname& name) const;

    // find_gateway resolves a waypoint or gateway reference as ztunnel's `find_destination(dest,
    // None)` does: `network/ip` through `find_address_unscoped`, `namespace/hostname` through
    // `find_hostname`.
    AddressMatch find_gateway(const GatewayAddress& gateway) const;

    // service_by_key returns the service `namespace/hostname`, or null.
    const Service* service_by_key(std::string_view namespace_, std::string_view hostname) const;

    // services_by_host returns every service whose hostname is exactly `hostname`, in file
    // order, visible or not (the DNS proxy applies its own filters and ranking).
    std::span<const Service* const> services_by_host(std::string_view hostname) const;

    // best_service_by_host ranks the services with this hostname across namespaces like
    // `service_by_vip` does, for a client in `client_namespace`. Null when none is visible.
    const Service* best_service_by_host(std::string_view hostname,
                                        std::string_view client_namespace) const;

    // endpoints returns the stored endpoints of `service` (which must belong to this snapshot):
    // built from the workloads' `services` maps and the service's own `endpoints`, healthy only
    // unless the service's health policy is AllowAll (filtered when stored, as ztunnel does).
    std::span<const Endpoint> endpoints(const Service& service) const;

    // target_port is the port to reach `endpoint` on for `service_port`: the endpoint's own
    // mapping, else the service's non-zero target; std::nullopt when neither exists.
    static std::optional<uint16_t> target_port(const Service& service, const Endpoint& endpoint,
                                               uint16_t service_port);

    // policy_by_key returns the policy `namespace/name`, or null.
    const Policy* policy_by_key(std::string_view key) const;

    // global_policies and namespace_policies are the policies of those scopes, in file order.
    std::span<const Policy* const> global_policies() const { return global_policies_; }

    std::span<const Policy* const> namespace_policies(std::string_view namespace_) const;

    // policies_for returns every policy that applies to `workload` (docs/ztunnel-reference.md
    // §4.3): its namespace's policies, the global ones, and the selector policies it lists by key
    // (unknown keys are skipped; `build` warned about them).
    std::vector<const Policy*> policies_for(const Workload& workload) const;

    // pod_by_uid returns the node-local pod with this uid, or null.
    const Pod* pod_by_uid(std::string_view uid) const;

    // pod_pending is true when `pod`'s workload is not (yet) in the snapshot and the entry does
    // not say who the pod is either: such a pod gets no listeners. A pod entry with its name,
    // namespace and service account is never pending: its connections wait for the workload.
    bool pod_pending(const Pod& pod) const {
        return !pod.has_info() && workload_by_uid(pod.uid) == nullptr;
    }

    // pod_identity is the SPIFFE identity `pod`'s listeners present: its workload's when known,
    // else the entry's own (`trust_domain` from the command line); empty when neither.
    std::string pod_identity(const Pod& pod, std::string_view trust_domain) const;

private:
    explicit Snapshot(Config config) : config_(std::move(config)) {}

    const Service* best_service_by_vip(const NetworkAddress& address,
                                       std::optional<std::string_view> client_namespace) const;
    void index(BuildResult& result);
    // index_workloads sets `indexed[i]` for each workload it indexed (not a duplicate uid).
    void index_workloads(std::vector<std::string>& errors, std::vector<bool>& indexed);
    void index_services(std::vector<std::string>& errors);
    void index_endpoints(std::vector<std::string>& warnings, const std::vector<bool>& indexed);
    void index_policies(std::vector<std::string>& errors, std::vector<std::string>& warnings);
    void index_pods(std::vector<std::string>& errors);

    // KeyHash lets the maps keyed by std::string be searched with a string_view, without
    // building a string for every lookup.
    struct KeyHash {
        using is_transparent = void;

        size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
    };

    template <class T>
    using ByKey = std::unordered_map<std::string, const T*, KeyHash, std::equal_to<>>;

    Config config_;
    std::unordered_map<std::string_view, const Workload*> workloads_by_uid_;
    std::unordered_map<NetworkAddress, const Workload*, NetworkAddressHash> workloads_by_ip_;
    std::unordered_map<NetworkAddress, std::vector<const Service*>, NetworkAddressHash>
            services_by_vip_;

    struct CidrVip {
        std::string network;
        Cidr cidr;
        const Service* service;
    };

    std::vector<CidrVip> cidr_vips_;
    ByKey<Service> services_by_key_;
    std::unordered_map<std::string_view, std::vector<const Service*>> services_by_host_;
    std::vector<std::vector<Endpoint>> endpoints_;  // Parallel to config_.services.
    ByKey<Policy> policies_by_key_;
    std::vector<const Policy*> global_policies_;
    std::unordered_map<std::string_view, std::vector<const Policy*>> namespace_policies_;
    std::unordered_map<std::string_view, const Pod*> pods_by_uid_;
};

}  // namespace zt::state
