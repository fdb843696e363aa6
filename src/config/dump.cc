// dump.cc renders the config-owned parts of `/config_dump` with nlohmann-json. The data is our
// own (at most ~8 levels deep), so nlohmann's recursive dump is safe here; nothing from a peer
// or from the file's raw text is embedded except through the validated structs. It must not
// read files or touch the live watcher: callers pass what to show.

#include "src/config/dump.h"

#include <time.h>

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

namespace zt::config {

namespace {

using json = nlohmann::json;
using namespace zt::state;

json port_map(const PortMap& map) {
    json out = json::object();
    for (const auto& [from, to] : map) {
        out[std::to_string(from)] = to;
    }
    return out;
}

json gateway(const GatewayAddress& gw) {
    json out = json::object();
    out["destination"] = gw.address ? gw.address->to_string() : gw.host->to_string();
    out["hboneMtlsPort"] = gw.hbone_mtls_port;
    return out;
}

json rfc3339(int64_t unix_ns) {
    if (unix_ns <= 0) {
        return nullptr;
    }
    time_t seconds = time_t(unix_ns / kNanosPerSecond);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
}

json ips(const std::vector<IpAddr>& list) {
    json out = json::array();
    for (const IpAddr& ip : list) {
        out.push_back(ip.to_string());
    }
    return out;
}

// put sets `key` only when `value` is not empty: ztunnel skips empty optional strings.
void put(json& out, const char* key, const std::string& value) {
    if (!value.empty()) {
        out[key] = value;
    }
}

// workload renders one workload; `file_schema` chooses the config file's shape (services as a
// port-map object) over ztunnel's dump shape (services as a list of keys).
json workload(const Workload& w, bool file_schema) {
    json out = json::object();
    put(out, "uid", w.uid);
    out["name"] = w.name;
    out["namespace"] = w.namespace_;
    put(out, "serviceAccount", w.service_account);
    put(out, "trustDomain", w.trust_domain);
    out["workloadIps"] = ips(w.workload_ips);
    out["protocol"] = to_string(w.protocol);
    out["networkMode"] = to_string(w.network_mode);
    put(out, "network", w.network);
    put(out, "node", w.node);
    out["clusterId"] = w.cluster_id;
    put(out, "workloadName", w.workload_name);
    put(out, "workloadType", w.workload_type);
    put(out, "canonicalName", w.canonical_name);
    put(out, "canonicalRevision", w.canonical_revision);
    put(out, "hostname", w.hostname);
    out["status"] = to_string(w.status);
    out["capacity"] = w.capacity;
    if (w.native_tunnel) {
        out["nativeTunnel"] = true;
    }
    if (w.locality) {
        out["locality"] = {{"region", w.locality->region},
                           {"zone", w.locality->zone},
                           {"subzone", w.locality->subzone}};
    }
    if (w.waypoint) {
        out["waypoint"] = gateway(*w.waypoint);
    }
    if (w.network_gateway) {
        out["networkGateway"] = gateway(*w.network_gateway);
    }
    if (w.application_tunnel) {
        json tunnel = {{"protocol", to_string(w.application_tunnel->protocol)}};
        if (w.application_tunnel->port) {
            tunnel["port"] = *w.application_tunnel->port;
        }
        out["applicationTunnel"] = tunnel;
    }
    if (!w.authorization_policies.empty()) {
        out["authorizationPolicies"] = w.authorization_policies;
    }
    if (file_schema) {
        json services = json::object();
        for (const WorkloadService& ws : w.services) {
            services[ws.service.to_string()] = port_map(ws.ports);
        }
        out["services"] = services;
    } else if (!w.services.empty()) {
        json services = json::array();
        for (const WorkloadService& ws : w.services) {
            services.push_back(ws.service.to_string());
        }
        out["services"] = services;
    }
    return out;
}

json endpoint(const std::string& uid, const PortMap& ports, HealthStatus status) {
    return {{"workloadUid", uid}, {"port", port_map(ports)}, {"status", to_string(status)}};
}

json load_balancer(const LoadBalancer& lb) {
    json preferences = json::array();
    for (RoutingPreference p : lb.routing_preferences) {
        preferences.push_back(to_string(p));
    }
    return {{"routingPreferences", preferences},
            {"mode", to_string(lb.mode)},
            {"healthPolicy", to_string(lb.health_policy)}};
}

// service renders one service; with a snapshot its endpoints are the computed ones (the dump
// shape), without one they are the file's explicit `endpoints` (the file schema).
json service(const Service& s, const Snapshot* snapshot) {
    json out = json::object();
    out["name"] = s.name;
    out["namespace"] = s.namespace_;
    out["hostname"] = s.hostname;
    json vips = json::array();
    for (const NetworkAddress& vip : s.vips) {
        vips.push_back(vip.to_string());
    }
    out["vips"] = vips;
    if (!s.cidr_vips.empty()) {
        json cidrs = json::array();
        for (const NetworkCidr& c : s.cidr_vips) {
            cidrs.push_back({{"network", c.network}, {"cidr", c.cidr.to_string()}});
        }
        out["cidrVips"] = cidrs;
    }
    out["ports"] = port_map(s.ports);
    out["subjectAltNames"] = s.subject_alt_names;
    json endpoints = json::object();
    if (snapshot != nullptr) {
        for (const Endpoint& e : snapshot->endpoints(s)) {
            endpoints[e.workload->uid] = endpoint(e.workload->uid, e.ports, e.status);
        }
        out["endpoints"] = endpoints;
    } else if (!s.endpoints.empty()) {
        for (const ExplicitEndpoint& e : s.endpoints) {
            endpoints[e.workload_uid] = endpoint(e.workload_uid, e.ports, e.status);
        }
        out["endpoints"] = endpoints;
    }
    if (s.waypoint) {
        out["waypoint"] = gateway(*s.waypoint);
    }
    if (!s.weighted_waypoints.empty()) {
        json list = json::array();
        for (const WeightedWaypoint& w : s.weighted_waypoints) {
            list.push_back({{"destination", gateway(w.destination)}, {"weight", w.weight}});
        }
        out["weightedWaypoints"] = list;
    }
    if (s.load_balancer) {
        out["loadBalancer"] = load_balancer(*s.load_balancer);
    }
    if (s.ip_families != IpFamilies::any) {
        out["ipFamilies"] = to_string(s.ip_families);
    }
    out["canonical"] = s.canonical;
    out["visibility"] = to_string(s.visibility);
    return out;
}

json string_matches(const std::vector<StringMatch>& list) {
    static constexpr const char* kKinds[] = {"Exact", "Prefix", "Suffix", "Presence"};
    json out = json::array();
    for (const StringMatch& m : list) {
        if (m.kind == StringMatch::Kind::presence) {
            out.push_back({{"Presence", json::array()}});
        } else {
            out.push_back({{kKinds[size_t(m.kind)], m.value}});
        }
    }
    return out;
}

json rbac_match(const RbacMatch& m) {
    json out = json::object();
    auto strings = [&](const char* key, const std::vector<StringMatch>& list) {
        if (!list.empty()) {
            out[key] = string_matches(list);
        }
    };
    auto accounts = [&](const char* key, const std::vector<ServiceAccountMatch>& list) {
        if (!list.empty()) {
            json arr = json::array();
            for (const auto& sa : list) {
                arr.push_back(
                        {{"namespace", sa.namespace_}, {"serviceAccount", sa.service_account}});
            }
            out[key] = arr;
        }
    };
    auto cidrs = [&](const char* key, const std::vector<Cidr>& list) {
        if (!list.empty()) {
            json arr = json::array();
            for (const auto& c : list) {
                arr.push_back(c.to_string());
            }
            out[key] = arr;
        }
    };
    auto ports = [&](const char* key, const std::vector<uint16_t>& list) {
        if (!list.empty()) {
            out[key] = list;
        }
    };
    strings("namespaces", m.namespaces);
    strings("notNamespaces", m.not_namespaces);
    accounts("serviceAccounts", m.service_accounts);
    accounts("notServiceAccounts", m.not_service_accounts);
    strings("principals", m.principals);
    strings("notPrincipals", m.not_principals);
    cidrs("sourceIps", m.source_ips);
    cidrs("notSourceIps", m.not_source_ips);
    cidrs("destinationIps", m.destination_ips);
    cidrs("notDestinationIps", m.not_destination_ips);
    ports("destinationPorts", m.destination_ports);
    ports("notDestinationPorts", m.not_destination_ports);
    return out;
}

json policy(const Policy& p) {
    json rules = json::array();
    for (const RbacRule& rule : p.rules) {
        json clauses = json::array();
        for (const RbacClause& clause : rule) {
            json matches = json::array();
            for (const RbacMatch& m : clause) {
                matches.push_back(rbac_match(m));
            }
            clauses.push_back(matches);
        }
        rules.push_back(clauses);
    }
    return {{"name", p.name},
            {"namespace", p.namespace_},
            {"scope", to_string(p.scope)},
            {"action", to_string(p.action)},
            {"dryRun", p.dry_run},
            {"rules", rules}};
}

json static_config(const Config& config) {
    json out = json::object();
    json workloads = json::array();
    for (const Workload& w : config.workloads) {
        workloads.push_back(workload(w, /*file_schema=*/true));
    }
    json services = json::array();
    for (const Service& s : config.services) {
        services.push_back(service(s, nullptr));
    }
    json policies = json::array();
    for (const Policy& p : config.policies) {
        policies.push_back(policy(p));
    }
    json pods = json::array();
    for (const Pod& p : config.pods) {
        pods.push_back({{"uid", p.uid}, {"netns", p.netns}});
    }
    out["workloads"] = workloads;
    out["services"] = services;
    out["policies"] = policies;
    out["pods"] = pods;
    return out;
}

json config_status(const ReloadStats& stats, std::string_view path, bool ready) {
    return {{"path", std::string(path)},
            {"ready", ready},
            {"sha256", stats.applied_sha256},
            {"lastSuccessTime", rfc3339(stats.last_success_unix_ns)},
            {"lastFailureTime", rfc3339(stats.last_failure_unix_ns)},
            {"lastErrors", stats.last_errors},
            {"reloads", {{"success", stats.success_total}, {"failure", stats.failure_total}}},
            {"limitsHit",
             {{"fileTooLarge", stats.too_large_total},
              {"nestingTooDeep", stats.too_deep_total},
              {"inotifyOverflow", stats.inotify_overflow_total}}},
            {"unsupported", stats.unsupported},
            {"warnings", stats.warnings}};
}

}  // namespace

// to_text is the one place JSON is printed. Error texts may quote invalid UTF-8 from a bad
// file (or cut a character in two when shortened), and nlohmann's default for that is to throw,
// which is an abort here; `replace` prints U+FFFD instead.
std::string to_text(const json& value) {
    return value.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

std::string static_config_json(const Config& config) {
    return to_text(static_config(config));
}

std::string dump_json(const Snapshot* snapshot, const ReloadStats& stats,
                      std::string_view config_path, std::span<const DumpSection> sections) {
    json out = json::object();
    json workloads = json::array();
    json services = json::array();
    json policies = json::array();
    if (snapshot != nullptr) {
        std::vector<const Workload*> w;
        for (const Workload& item : snapshot->workloads()) {
            w.push_back(&item);
        }
        std::sort(w.begin(), w.end(), [](auto* a, auto* b) { return a->uid < b->uid; });
        for (const Workload* item : w) {
            workloads.push_back(workload(*item, /*file_schema=*/false));
        }
        std::vector<const Service*> s;
        for (const Service& item : snapshot->services()) {
            s.push_back(&item);
        }
        std::stable_sort(s.begin(), s.end(),
                         [](auto* a, auto* b) { return a->hostname < b->hostname; });
        for (const Service* item : s) {
            services.push_back(service(*item, snapshot));
        }
        std::vector<const Policy*> p;
        for (const Policy& item : snapshot->policies()) {
            p.push_back(&item);
        }
        std::sort(p.begin(), p.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
        for (const Policy* item : p) {
            policies.push_back(policy(*item));
        }
        out["staticConfig"] = static_config(snapshot->config());
    } else {
        out["staticConfig"] = static_config(Config{});
    }
    out["workloads"] = workloads;
    out["services"] = services;
    out["policies"] = policies;
    out["stagedServices"] = json::object();
    out["configStatus"] = config_status(stats, config_path, snapshot != nullptr);
    for (const auto& [key, text] : sections) {
        json section = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (section.is_discarded()) {
            section = {{"error", "invalid JSON from " + std::string(key)}};
        }
        out[std::string(key)] = std::move(section);
    }
    return to_text(out);
}

}  // namespace zt::config
