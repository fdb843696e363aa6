// dump.cc renders `/config_dump` in the shape ztunnel's serde output has (docs/ecosystem.md §1.3),
// because `istioctl ztunnel-config` and people's scripts parse it: the same camelCase names,
// the same "skip when empty or default" rules, the same encodings (`network/ip` strings, port
// maps with string keys, externally tagged string matches). It is a pure function of
// `DumpInputs`: it must not read files, clocks or any shared state, and it never fails. It uses
// only nlohmann's non-throwing calls (building, `parse(..., false)`, `dump` with replacement of
// invalid UTF-8), so nothing a peer or a file put into a string can abort the process.

#include "src/config/dump.h"

#include <algorithm>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "certs/pem.h"

namespace zt::config {

namespace {

// nlohmann's default object type is a std::map with std::less<>, so every object's keys come
// out sorted bytewise, as serde_json's BTreeMap-backed `Value` sorts them in ztunnel.
using json = nlohmann::json;

// --- Small encodings ----------------------------------------------------------------------------

// port_map renders a PortMap as ztunnel's `HashMap<u16, u16>`: `{"80": 8080}`.
json port_map(const state::PortMap& ports) {
    json out = json::object();
    for (const auto& [service_port, target_port] : ports) {
        out[std::to_string(service_port)] = target_port;
    }
    return out;
}

json string_list(const std::vector<std::string>& values) {
    json out = json::array();
    for (const auto& value : values) {
        out.push_back(value);
    }
    return out;
}

// gateway renders a GatewayAddress: `destination` is untagged in ztunnel, so it is the
// `network/ip` text when the gateway is an address, else `namespace/hostname`.
json gateway(const state::GatewayAddress& address) {
    json out = json::object();
    if (address.address) {
        out["destination"] = address.address->to_string();
    } else if (address.host) {
        out["destination"] = address.host->to_string();
    } else {
        out["destination"] = "";
    }
    out["hboneMtlsPort"] = address.hbone_mtls_port;
    return out;
}

// rfc3339_or_null is RFC 3339 UTC at seconds precision, or null for "never" (0).
json rfc3339_or_null(int64_t unix_ns) {
    if (unix_ns == 0) {
        return nullptr;
    }
    return certs::format_rfc3339(unix_ns / 1'000'000'000);
}

std::string_view network_mode_name(state::NetworkMode mode) {
    return mode == state::NetworkMode::host_network ? "HostNetwork" : "Standard";
}

std::string_view lb_mode_name(state::LoadBalancerMode mode) {
    switch (mode) {
        case state::LoadBalancerMode::standard:
            return "Standard";
        case state::LoadBalancerMode::strict:
            return "Strict";
        case state::LoadBalancerMode::failover:
            return "Failover";
        case state::LoadBalancerMode::passthrough:
            return "Passthrough";
    }
    return "Standard";
}

std::string_view routing_preference_name(state::RoutingPreference preference) {
    switch (preference) {
        case state::RoutingPreference::region:
            return "Region";
        case state::RoutingPreference::zone:
            return "Zone";
        case state::RoutingPreference::subzone:
            return "Subzone";
        case state::RoutingPreference::node:
            return "Node";
        case state::RoutingPreference::cluster:
            return "Cluster";
        case state::RoutingPreference::network:
            return "Network";
    }
    return "Region";
}

// --- Workloads ----------------------------------------------------------------------------------

// WorkloadServices says how a workload's `services` is rendered: as ztunnel's runtime
// `Workload` (a list of `ns/hostname`, skipped when empty) or as its `LocalWorkload` in
// `staticConfig` (the file's map of `ns/hostname` to port maps, always present).
enum class WorkloadServices : uint8_t { key_list, port_maps };

// workload renders one workload with ztunnel's `skip_serializing_if = "is_default"` rules: the
// fields serde always writes are always here, the others only when set.
json workload(const state::Workload& w, WorkloadServices services_form) {
    json out = json::object();
    json ips = json::array();
    for (const auto& ip : w.workload_ips) {
        ips.push_back(ip.to_string());
    }
    out["workloadIps"] = std::move(ips);
    if (w.waypoint) {
        out["waypoint"] = gateway(*w.waypoint);
    }
    if (w.network_gateway) {
        out["networkGateway"] = gateway(*w.network_gateway);
    }
    out["protocol"] = std::string(state::to_string(w.protocol));
    out["networkMode"] = std::string(network_mode_name(w.network_mode));
    auto optional_string = [&out](const char* key, const std::string& value) {
        if (!value.empty()) {
            out[key] = value;
        }
    };
    optional_string("uid", w.uid);
    out["name"] = w.name;
    out["namespace"] = w.namespace_;
    optional_string("trustDomain", w.trust_domain);
    optional_string("serviceAccount", w.service_account);
    optional_string("network", w.network);
    optional_string("workloadName", w.workload_name);
    optional_string("workloadType", w.workload_type);
    optional_string("canonicalName", w.canonical_name);
    optional_string("canonicalRevision", w.canonical_revision);
    optional_string("hostname", w.hostname);
    optional_string("node", w.node);
    if (w.native_tunnel) {
        out["nativeTunnel"] = true;
    }
    if (w.application_tunnel) {
        json tunnel = json::object();
        tunnel["protocol"] =
                w.application_tunnel->protocol == state::ApplicationTunnel::Protocol::proxy
                        ? "PROXY"
                        : "NONE";
        // ztunnel's `port: Option<u16>` has no skip attribute: serde writes null.
        if (w.application_tunnel->port) {
            tunnel["port"] = *w.application_tunnel->port;
        } else {
            tunnel["port"] = nullptr;
        }
        out["applicationTunnel"] = std::move(tunnel);
    }
    if (!w.authorization_policies.empty()) {
        out["authorizationPolicies"] = string_list(w.authorization_policies);
    }
    out["status"] = std::string(state::to_string(w.status));
    out["clusterId"] = w.cluster_id;
    // ztunnel's Locality is not optional; an all-empty one is its default and skipped.
    if (w.locality &&
        !(w.locality->region.empty() && w.locality->zone.empty() && w.locality->subzone.empty())) {
        json locality = json::object();
        locality["region"] = w.locality->region;
        locality["zone"] = w.locality->zone;
        locality["subzone"] = w.locality->subzone;
        out["locality"] = std::move(locality);
    }
    if (services_form == WorkloadServices::port_maps) {
        json services = json::object();
        for (const auto& entry : w.services) {
            services[entry.service.to_string()] = port_map(entry.ports);
        }
        out["services"] = std::move(services);
    } else if (!w.services.empty()) {
        // Shown as ztunnel's xDS path fills it (its local-file path leaves it empty). Sorted:
        // ztunnel's order comes from a HashMap, so any order is faithful, and a stable one
        // lets people diff two dumps.
        std::vector<std::string> keys;
        keys.reserve(w.services.size());
        for (const auto& entry : w.services) {
            keys.push_back(entry.service.to_string());
        }
        std::sort(keys.begin(), keys.end());
        out["services"] = string_list(keys);
    }
    out["capacity"] = w.capacity;
    return out;
}

// --- Services -----------------------------------------------------------------------------------

json endpoint(const std::string& workload_uid, const state::PortMap& ports,
              state::HealthStatus status) {
    json out = json::object();
    out["workloadUid"] = workload_uid;
    out["port"] = port_map(ports);
    out["status"] = std::string(state::to_string(status));
    return out;
}

// service renders one service. `endpoints` is the resolved set from the snapshot (runtime
// `services`), or none for `staticConfig`, which shows the file's own `endpoints` map.
json service(const state::Service& s, std::optional<std::span<const state::Endpoint>> endpoints) {
    json out = json::object();
    out["name"] = s.name;
    out["namespace"] = s.namespace_;
    out["hostname"] = s.hostname;
    json vips = json::array();
    for (const auto& vip : s.vips) {
        vips.push_back(vip.to_string());
    }
    out["vips"] = std::move(vips);
    if (!s.cidr_vips.empty()) {
        json cidrs = json::array();
        for (const auto& cidr : s.cidr_vips) {
            json entry = json::object();
            entry["network"] = cidr.network;
            entry["cidr"] = cidr.cidr.to_string();
            cidrs.push_back(std::move(entry));
        }
        out["cidrVips"] = std::move(cidrs);
    }
    out["ports"] = port_map(s.ports);
    json endpoint_map = json::object();
    if (endpoints) {
        for (const auto& e : *endpoints) {
            if (e.workload != nullptr) {
                endpoint_map[e.workload->uid] = endpoint(e.workload->uid, e.ports, e.status);
            }
        }
    } else {
        for (const auto& e : s.endpoints) {
            endpoint_map[e.workload_uid] = endpoint(e.workload_uid, e.ports, e.status);
        }
    }
    out["endpoints"] = std::move(endpoint_map);
    out["subjectAltNames"] = string_list(s.subject_alt_names);
    if (s.waypoint) {
        out["waypoint"] = gateway(*s.waypoint);
    }
    if (!s.weighted_waypoints.empty()) {
        json weighted = json::array();
        for (const auto& w : s.weighted_waypoints) {
            json entry = json::object();
            entry["destination"] = gateway(w.destination);
            entry["weight"] = w.weight;
            weighted.push_back(std::move(entry));
        }
        out["weightedWaypoints"] = std::move(weighted);
    }
    if (s.load_balancer) {
        json lb = json::object();
        json preferences = json::array();
        for (auto preference : s.load_balancer->routing_preferences) {
            preferences.push_back(std::string(routing_preference_name(preference)));
        }
        lb["routingPreferences"] = std::move(preferences);
        lb["mode"] = std::string(lb_mode_name(s.load_balancer->mode));
        lb["healthPolicy"] = s.load_balancer->health_policy == state::HealthPolicy::allow_all
                                     ? "AllowAll"
                                     : "OnlyHealthy";
        out["loadBalancer"] = std::move(lb);
    }
    switch (s.ip_families) {
        case state::IpFamilies::any:
            break;  // ztunnel's None: skipped.
        case state::IpFamilies::dual:
            out["ipFamilies"] = "Dual";
            break;
        case state::IpFamilies::ipv4:
            out["ipFamilies"] = "IPv4";
            break;
        case state::IpFamilies::ipv6:
            out["ipFamilies"] = "IPv6";
            break;
    }
    out["canonical"] = s.canonical;
    out["visibility"] = s.visibility == state::Visibility::namespace_ ? "Namespace" : "Public";
    return out;
}

// --- Policies -----------------------------------------------------------------------------------

// string_match renders ztunnel's externally tagged `StringMatch`. `Presence()` is a tuple
// variant with no fields, which serde_json writes as an empty array: `{"Presence": []}`.
json string_match(const state::StringMatch& match) {
    json out = json::object();
    switch (match.kind) {
        case state::StringMatch::Kind::exact:
            out["Exact"] = match.value;
            break;
        case state::StringMatch::Kind::prefix:
            out["Prefix"] = match.value;
            break;
        case state::StringMatch::Kind::suffix:
            out["Suffix"] = match.value;
            break;
        case state::StringMatch::Kind::presence:
            out["Presence"] = json::array();
            break;
    }
    return out;
}

void put_string_matches(json& out, const char* key, const std::vector<state::StringMatch>& list) {
    if (list.empty()) {
        return;
    }
    json values = json::array();
    for (const auto& match : list) {
        values.push_back(string_match(match));
    }
    out[key] = std::move(values);
}

void put_sa_matches(json& out, const char* key,
                    const std::vector<state::ServiceAccountMatch>& list) {
    if (list.empty()) {
        return;
    }
    json values = json::array();
    for (const auto& match : list) {
        json entry = json::object();
        entry["namespace"] = match.namespace_;
        entry["serviceAccount"] = match.service_account;
        values.push_back(std::move(entry));
    }
    out[key] = std::move(values);
}

void put_cidrs(json& out, const char* key, const std::vector<state::Cidr>& list) {
    if (list.empty()) {
        return;
    }
    json values = json::array();
    for (const auto& cidr : list) {
        values.push_back(cidr.to_string());
    }
    out[key] = std::move(values);
}

void put_ports(json& out, const char* key, const std::vector<uint16_t>& list) {
    if (list.empty()) {
        return;
    }
    json values = json::array();
    for (uint16_t port : list) {
        values.push_back(port);
    }
    out[key] = std::move(values);
}

// rbac_match renders one match; every field is `skip_serializing_if = "Vec::is_empty"`, so an
// empty match is `{}`, as in ztunnel.
json rbac_match(const state::RbacMatch& m) {
    json out = json::object();
    put_string_matches(out, "namespaces", m.namespaces);
    put_string_matches(out, "notNamespaces", m.not_namespaces);
    put_sa_matches(out, "serviceAccounts", m.service_accounts);
    put_sa_matches(out, "notServiceAccounts", m.not_service_accounts);
    put_string_matches(out, "principals", m.principals);
    put_string_matches(out, "notPrincipals", m.not_principals);
    put_cidrs(out, "sourceIps", m.source_ips);
    put_cidrs(out, "notSourceIps", m.not_source_ips);
    put_cidrs(out, "destinationIps", m.destination_ips);
    put_cidrs(out, "notDestinationIps", m.not_destination_ips);
    put_ports(out, "destinationPorts", m.destination_ports);
    put_ports(out, "notDestinationPorts", m.not_destination_ports);
    return out;
}

json policy(const state::Policy& p) {
    json out = json::object();
    out["name"] = p.name;
    out["namespace"] = p.namespace_;
    out["scope"] = std::string(state::to_string(p.scope));
    out["action"] = std::string(state::to_string(p.action));
    out["dryRun"] = p.dry_run;
    json rules = json::array();
    for (const auto& rule : p.rules) {
        json clauses = json::array();
        for (const auto& clause : rule) {
            json matches = json::array();
            for (const auto& match : clause) {
                matches.push_back(rbac_match(match));
            }
            clauses.push_back(std::move(matches));
        }
        rules.push_back(std::move(clauses));
    }
    out["rules"] = std::move(rules);
    return out;
}

// --- Sections -----------------------------------------------------------------------------------

// MeshSections are the three lists of one config: `workloads`, `services`, `policies`.
struct MeshSections {
    json workloads = json::array();
    json services = json::array();
    json policies = json::array();
};

// runtime_sections renders the applied snapshot the way ztunnel's `DemandProxyState` dumps:
// workloads sorted by uid, services by hostname (then namespace, so that equal hostnames of
// different namespaces still come out in one stable order), policies by `namespace/name`.
MeshSections runtime_sections(const state::Snapshot& snapshot) {
    MeshSections out;
    std::vector<const state::Workload*> workloads;
    for (const auto& w : snapshot.workloads()) {
        workloads.push_back(&w);
    }
    std::sort(workloads.begin(), workloads.end(),
              [](const auto* a, const auto* b) { return a->uid < b->uid; });
    for (const auto* w : workloads) {
        out.workloads.push_back(workload(*w, WorkloadServices::key_list));
    }

    std::vector<const state::Service*> services;
    for (const auto& s : snapshot.services()) {
        services.push_back(&s);
    }
    std::sort(services.begin(), services.end(), [](const auto* a, const auto* b) {
        return std::tie(a->hostname, a->namespace_) < std::tie(b->hostname, b->namespace_);
    });
    for (const auto* s : services) {
        out.services.push_back(service(*s, snapshot.endpoints(*s)));
    }

    std::vector<const state::Policy*> policies;
    for (const auto& p : snapshot.policies()) {
        policies.push_back(&p);
    }
    std::sort(policies.begin(), policies.end(), [](const auto* a, const auto* b) {
        return std::tie(a->namespace_, a->name) < std::tie(b->namespace_, b->name);
    });
    for (const auto* p : policies) {
        out.policies.push_back(policy(*p));
    }
    return out;
}

// static_sections renders the file as ztunnel's `LocalConfig`: file order, workloads with
// their `services` port maps, services with their own `endpoints` only.
MeshSections static_sections(const state::Snapshot& snapshot) {
    MeshSections out;
    for (const auto& w : snapshot.workloads()) {
        out.workloads.push_back(workload(w, WorkloadServices::port_maps));
    }
    for (const auto& s : snapshot.services()) {
        out.services.push_back(service(s, std::nullopt));
    }
    for (const auto& p : snapshot.policies()) {
        out.policies.push_back(policy(p));
    }
    return out;
}

json cert(const certs::CertDump& c) {
    json out = json::object();
    out["pem"] = c.pem;
    out["serialNumber"] = c.serial_number;
    out["validFrom"] = c.valid_from;
    out["expirationTime"] = c.expiration_time;
    return out;
}

json certificates(const std::vector<certs::CertificateDump>& list) {
    std::vector<const certs::CertificateDump*> sorted;
    for (const auto& entry : list) {
        sorted.push_back(&entry);
    }
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto* a, const auto* b) { return a->identity < b->identity; });
    json out = json::array();
    for (const auto* entry : sorted) {
        json item = json::object();
        item["identity"] = entry->identity;
        item["state"] = entry->state;
        json chain = json::array();
        for (const auto& c : entry->cert_chain) {
            chain.push_back(cert(c));
        }
        item["certChain"] = std::move(chain);
        json roots = json::array();
        for (const auto& c : entry->root_certs) {
            roots.push_back(cert(c));
        }
        item["rootCerts"] = std::move(roots);
        out.push_back(std::move(item));
    }
    return out;
}

// settings renders `config`. Each value arrives already JSON-encoded by its owner; one that does
// not parse (a bug of the caller, never of a peer) is shown as its text rather than dropped, so
// the dump stays valid and the mistake stays visible.
json settings(const std::vector<DumpSetting>& list) {
    json out = json::object();
    for (const auto& setting : list) {
        json value = json::parse(setting.json_value, nullptr, /*allow_exceptions=*/false);
        if (value.is_discarded()) {
            out[setting.key] = setting.json_value;
        } else {
            out[setting.key] = std::move(value);
        }
    }
    return out;
}

json connections(const std::vector<DumpConnection>& list) {
    json out = json::array();
    for (const auto& c : list) {
        json entry = json::object();
        entry["src"] = c.src;
        if (c.original_dst.empty()) {
            entry["originalDst"] = nullptr;
        } else {
            entry["originalDst"] = c.original_dst;
        }
        entry["actualDst"] = c.actual_dst;
        entry["protocol"] = c.protocol;
        out.push_back(std::move(entry));
    }
    return out;
}

json workload_state(const std::vector<DumpPod>& pods) {
    json out = json::object();
    for (const auto& pod : pods) {
        json info = json::object();
        info["name"] = pod.name;
        info["namespace"] = pod.namespace_name;
        info["serviceAccount"] = pod.service_account;
        json conns = json::object();
        conns["inbound"] = connections(pod.inbound);
        conns["outbound"] = connections(pod.outbound);
        json entry = json::object();
        entry["state"] = pod.up ? "Up" : "Pending";
        entry["info"] = std::move(info);
        entry["connections"] = std::move(conns);
        out[pod.uid] = std::move(entry);
    }
    return out;
}

json config_status(const DumpStatus& status) {
    json out = json::object();
    out["path"] = status.path;
    out["lastLoaded"] = rfc3339_or_null(status.last_loaded_unix_ns);
    out["appliedSha256"] = status.applied_sha256;
    out["reloadsSuccess"] = status.reloads_success_total;
    out["reloadsFailure"] = status.reloads_failure_total;
    out["lastFailure"] = rfc3339_or_null(status.last_failure_unix_ns);
    if (status.last_errors.empty()) {
        out["lastError"] = nullptr;
    } else {
        std::string joined;
        for (const auto& error : status.last_errors) {
            if (!joined.empty()) {
                joined += '\n';
            }
            joined += error;
        }
        out["lastError"] = std::move(joined);
    }
    out["lastErrors"] = string_list(status.last_errors);
    out["warnings"] = string_list(status.warnings);
    return out;
}

json version(const DumpInputs& inputs) {
    json out = json::object();
    out["version"] = inputs.version;
    out["gitRevision"] = inputs.git_revision;
    out["buildProfile"] = "release";
    out["buildStatus"] = "Clean";
    out["rustVersion"] = "n/a (C++20)";
    out["istioVersion"] = inputs.istio_version;
    out["cryptoProvider"] = inputs.crypto_provider;
    return out;
}

}  // namespace

std::string render_config_dump(const DumpInputs& inputs) {
    json doc = json::object();
    MeshSections runtime;
    if (inputs.snapshot != nullptr) {
        runtime = runtime_sections(*inputs.snapshot);
    }
    doc["workloads"] = std::move(runtime.workloads);
    doc["services"] = std::move(runtime.services);
    doc["policies"] = std::move(runtime.policies);
    // Endpoints never wait for their service here: the whole file is applied at once.
    doc["stagedServices"] = json::object();

    MeshSections file;
    if (inputs.static_config != nullptr) {
        file = static_sections(*inputs.static_config);
    }
    json static_config = json::object();
    static_config["workloads"] = std::move(file.workloads);
    static_config["services"] = std::move(file.services);
    static_config["policies"] = std::move(file.policies);
    doc["staticConfig"] = std::move(static_config);

    doc["certificates"] = certificates(inputs.certificates);
    doc["config"] = settings(inputs.settings);
    doc["version"] = version(inputs);
    doc["workloadState"] = workload_state(inputs.pods);
    doc["configStatus"] = config_status(inputs.status);
    doc["unsupported"] = string_list(inputs.unsupported);

    // Invalid UTF-8 in any string (a certificate field, an error quoting file bytes) is
    // replaced with U+FFFD: nlohmann's default handler would throw, which is an abort here.
    // No trailing newline, like ztunnel's `to_string_pretty`.
    return doc.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

}  // namespace zt::config
