#pragma once

// The mesh model as plain values: workloads, services, authorization policies and pods, one
// struct per object of the local config file (docs/contract.md §2, ztunnel's `LocalConfig`). These
// structs hold no JSON type and no index; `config/` fills them, `state::Snapshot` indexes them,
// the proxy and the admin dump read them. Field meanings follow docs/ztunnel-reference.md §3.3–3.4
// and §4.1; defaults follow ztunnel's xDS loader (serviceAccount "default", clusterId "Kubernetes",
// an empty trustDomain meaning "the --trust-domain of the run"). Every struct compares member by
// member (a defaulted `==`), so a config can be checked to survive a render and parse unchanged.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/state/net.h"

namespace zt::state {

// PortMap maps a service port to a target port, sorted by service port, no duplicates. A target
// of 0 means "named port: use the endpoint's own mapping".
using PortMap = std::vector<std::pair<uint16_t, uint16_t>>;

// quote_text quotes `text` for an error or log line: at most 200 bytes, quotes, backslashes
// and control bytes escaped, so a line stays one printable line whatever a file holds (a uid
// with an escaped newline must not forge a second log line).
std::string quote_text(std::string_view text);

// find_port returns the target for `service_port`, or std::nullopt when the map lacks it.
std::optional<uint16_t> find_port(const PortMap& map, uint16_t service_port);

enum class Protocol : uint8_t { tcp, hbone };
enum class NetworkMode : uint8_t { standard, host_network };
enum class HealthStatus : uint8_t { healthy, unhealthy };

// NamespacedHostname is a service key `namespace/hostname`.
struct NamespacedHostname {
    std::string namespace_;
    std::string hostname;

    std::string to_string() const { return namespace_ + "/" + hostname; }

    friend bool operator==(const NamespacedHostname&, const NamespacedHostname&) = default;
};

// GatewayAddress is a waypoint or network gateway: either `network/ip` or `namespace/hostname`
// (ztunnel tries the address form first), plus the port its HBONE listener uses.
struct GatewayAddress {
    std::optional<NetworkAddress> address;
    std::optional<NamespacedHostname> host;
    uint16_t hbone_mtls_port = 15008;

    friend bool operator==(const GatewayAddress&, const GatewayAddress&) = default;
};

struct Locality {
    std::string region;
    std::string zone;
    std::string subzone;

    friend bool operator==(const Locality&, const Locality&) = default;
};

struct ApplicationTunnel {
    enum class Protocol : uint8_t { none, proxy };
    Protocol protocol = Protocol::none;
    std::optional<uint16_t> port;

    friend bool operator==(const ApplicationTunnel&, const ApplicationTunnel&) = default;
};

// WorkloadService is one entry of a workload's `services` map: this workload is an endpoint of
// `service` with per-endpoint port overrides `ports`.
struct WorkloadService {
    NamespacedHostname service;
    PortMap ports;

    friend bool operator==(const WorkloadService&, const WorkloadService&) = default;
};

// Workload is one pod or VM. `uid` is the primary key.
struct Workload {
    std::string uid;
    std::string name;
    std::string namespace_;
    std::string service_account = "default";
    std::string trust_domain;  // Empty: the run's --trust-domain.
    std::vector<IpAddr> workload_ips;
    Protocol protocol = Protocol::tcp;
    NetworkMode network_mode = NetworkMode::standard;
    std::string network;
    std::string node;
    std::string cluster_id = "Kubernetes";
    std::string workload_name;
    std::string workload_type;
    std::string canonical_name;
    std::string canonical_revision;
    std::string hostname;
    HealthStatus status = HealthStatus::healthy;
    uint32_t capacity = 1;
    bool native_tunnel = false;
    std::optional<Locality> locality;
    std::optional<GatewayAddress> waypoint;
    std::optional<GatewayAddress> network_gateway;
    std::optional<ApplicationTunnel> application_tunnel;
    std::vector<std::string> authorization_policies;  // `ns/name` keys of selector policies.
    std::vector<WorkloadService> services;

    // identity is the SPIFFE ID `spiffe://TD/ns/NS/sa/SA`, with `default_trust_domain` when the
    // workload sets none.
    std::string identity(std::string_view default_trust_domain) const;

    // is_pod is ztunnel's "UID contains //Pod/" test.
    bool is_pod() const { return uid.find("//Pod/") != std::string::npos; }

    friend bool operator==(const Workload&, const Workload&) = default;
};

enum class LoadBalancerMode : uint8_t { standard, strict, failover, passthrough };
enum class HealthPolicy : uint8_t { only_healthy, allow_all };
enum class RoutingPreference : uint8_t { region, zone, subzone, node, cluster, network };
enum class IpFamilies : uint8_t { any, dual, ipv4, ipv6 };
enum class Visibility : uint8_t { public_, namespace_ };

struct LoadBalancer {
    std::vector<RoutingPreference> routing_preferences;
    LoadBalancerMode mode = LoadBalancerMode::standard;
    HealthPolicy health_policy = HealthPolicy::only_healthy;

    friend bool operator==(const LoadBalancer&, const LoadBalancer&) = default;
};

struct NetworkCidr {
    std::string network;
    Cidr cidr;

    friend bool operator==(const NetworkCidr&, const NetworkCidr&) = default;
};

struct WeightedWaypoint {
    GatewayAddress destination;
    uint32_t weight = 0;

    friend bool operator==(const WeightedWaypoint&, const WeightedWaypoint&) = default;
};

// ExplicitEndpoint is an entry of a service's own `endpoints` map (rare in files: endpoints
// normally come from the workloads' `services` maps).
struct ExplicitEndpoint {
    std::string workload_uid;
    PortMap ports;
    HealthStatus status = HealthStatus::healthy;

    friend bool operator==(const ExplicitEndpoint&, const ExplicitEndpoint&) = default;
};

// Service is one service; key `namespace/hostname`.
struct Service {
    std::string name;
    std::string namespace_;
    std::string hostname;
    std::vector<NetworkAddress> vips;
    std::vector<NetworkCidr> cidr_vips;
    PortMap ports;
    std::vector<std::string> subject_alt_names;  // Full SPIFFE IDs.
    std::vector<ExplicitEndpoint> endpoints;
    std::optional<GatewayAddress> waypoint;
    std::vector<WeightedWaypoint> weighted_waypoints;
    std::optional<LoadBalancer> load_balancer;
    IpFamilies ip_families = IpFamilies::any;
    bool canonical = false;
    Visibility visibility = Visibility::public_;

    NamespacedHostname key() const { return {namespace_, hostname}; }

    HealthPolicy health_policy() const {
        return load_balancer ? load_balancer->health_policy : HealthPolicy::only_healthy;
    }

    LoadBalancerMode lb_mode() const {
        return load_balancer ? load_balancer->mode : LoadBalancerMode::standard;
    }

    bool has_waypoint() const { return waypoint.has_value() || !weighted_waypoints.empty(); }

    friend bool operator==(const Service&, const Service&) = default;
};

// StringMatch is ztunnel's string matcher; `presence` matches any non-empty value.
struct StringMatch {
    enum class Kind : uint8_t { exact, prefix, suffix, presence };
    Kind kind = Kind::exact;
    std::string value;

    bool matches(std::string_view text) const;

    friend bool operator==(const StringMatch&, const StringMatch&) = default;
};

struct ServiceAccountMatch {
    std::string namespace_;
    std::string service_account;

    friend bool operator==(const ServiceAccountMatch&, const ServiceAccountMatch&) = default;
};

// RbacMatch is one `Match` of a clause: fields are ANDed, values inside a field are ORed, and a
// match with every field empty never matches (docs/ztunnel-reference.md §4.2). Evaluation lives in
// the RBAC module; this struct only keeps every field.
struct RbacMatch {
    std::vector<StringMatch> namespaces;
    std::vector<StringMatch> not_namespaces;
    std::vector<ServiceAccountMatch> service_accounts;
    std::vector<ServiceAccountMatch> not_service_accounts;
    std::vector<StringMatch> principals;
    std::vector<StringMatch> not_principals;
    std::vector<Cidr> source_ips;
    std::vector<Cidr> not_source_ips;
    std::vector<Cidr> destination_ips;
    std::vector<Cidr> not_destination_ips;
    std::vector<uint16_t> destination_ports;
    std::vector<uint16_t> not_destination_ports;

    friend bool operator==(const RbacMatch&, const RbacMatch&) = default;
};

// RbacClause is a list of matches, ORed; a clause with none is true.
using RbacClause = std::vector<RbacMatch>;
// RbacRule is a list of clauses, ANDed; a rule with none is true.
using RbacRule = std::vector<RbacClause>;

enum class PolicyScope : uint8_t { global, namespace_, workload_selector };
enum class PolicyAction : uint8_t { allow, deny };

// Policy is one `Authorization`; its rules are ORed, and a policy with no rules never matches.
struct Policy {
    std::string name;
    std::string namespace_;
    PolicyScope scope = PolicyScope::namespace_;
    PolicyAction action = PolicyAction::allow;
    bool dry_run = false;
    std::vector<RbacRule> rules;

    std::string key() const { return namespace_ + "/" + name; }

    friend bool operator==(const Policy&, const Policy&) = default;
};

// Pod is one node-local captured pod: the workload `uid` it runs as and its netns path, and,
// when the CNI said it (ZDS `WorkloadInfo`), the pod's name, namespace and service account: with
// these the pod gets its listeners and certificate before its workload is known.
struct Pod {
    std::string uid;
    std::string netns;
    std::string name;
    std::string namespace_;
    std::string service_account;

    // has_info says whether the entry carries the pod's name, namespace and service account.
    bool has_info() const { return !service_account.empty(); }

    // identity is `spiffe://<trust_domain>/ns/<namespace>/sa/<serviceAccount>` (has_info only).
    std::string identity(std::string_view trust_domain) const;

    friend bool operator==(const Pod&, const Pod&) = default;
};

// Config is a whole parsed file, in file order. `unsupported` lists, once each, the keys
// ztunnel knows that this project accepts but does not act on yet (e.g. `workloads[].waypoint`).
struct Config {
    std::vector<Workload> workloads;
    std::vector<Service> services;
    std::vector<Policy> policies;
    std::vector<Pod> pods;
    std::vector<std::string> unsupported;

    friend bool operator==(const Config&, const Config&) = default;
};

// to_string spells each enum value exactly as the config file does (`HBONE`, `HostNetwork`,
// `OnlyHealthy`, ...); the parser and the dump both use these, so there is one table.
// `IpFamilies::any` (the key absent) has no spelling and returns "".
std::string_view to_string(Protocol value);
std::string_view to_string(NetworkMode value);
std::string_view to_string(HealthStatus value);
std::string_view to_string(ApplicationTunnel::Protocol value);
std::string_view to_string(LoadBalancerMode value);
std::string_view to_string(HealthPolicy value);
std::string_view to_string(RoutingPreference value);
std::string_view to_string(IpFamilies value);
std::string_view to_string(Visibility value);
std::string_view to_string(PolicyScope value);
std::string_view to_string(PolicyAction value);

}  // namespace zt::state
