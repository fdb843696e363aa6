// Table tests for plan_outbound, ztunnel's `build_request_*` cases: service VIP to endpoint with
// port translation (including named ports), workload IP, HBONE vs TCP workloads, passthrough,
// refusals (no healthy endpoint, self call, cross-network), IP family selection, locality-aware
// load balancing, on-demand DNS. One row per case. Waypoints: route_waypoint_test.cc.

#include "src/proxy/route.h"

#include <map>
#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::proxy::PlanKind;
using zt::proxy::RefuseReason;

constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/default/client", "namespace": "default", "serviceAccount": "client",
     "workloadIps": ["198.18.1.2"], "protocol": "HBONE", "services": {}},
    {"uid": "c//Pod/default/server", "namespace": "default", "serviceAccount": "server",
     "workloadIps": ["198.18.1.10"], "protocol": "HBONE",
     "services": {"default/server.default.svc": {}, "default/dual.default.svc": {}}},
    {"uid": "c//Pod/default/legacy", "namespace": "default", "serviceAccount": "legacy",
     "trustDomain": "td.example", "workloadIps": ["198.18.1.20"], "protocol": "TCP",
     "services": {"default/legacy.default.svc": {"80": 9090}}},
    {"uid": "c//Pod/default/sick", "namespace": "default", "workloadIps": ["198.18.1.30"],
     "status": "Unhealthy", "services": {"default/sick.default.svc": {}}},
    {"uid": "c//Pod/default/far", "namespace": "default", "network": "n2",
     "workloadIps": ["198.18.1.50"], "protocol": "HBONE",
     "services": {"default/xnet.default.svc": {}}},
    {"uid": "c//Pod/default/behind-wp", "namespace": "default", "workloadIps": ["198.18.1.60"],
     "protocol": "HBONE", "waypoint": {"destination": "/198.18.1.99", "hboneMtlsPort": 15008},
     "services": {}},
    {"uid": "c//Pod/default/dual", "namespace": "default", "serviceAccount": "dual",
     "workloadIps": ["198.18.1.70", "2001:db8::70"], "protocol": "HBONE",
     "services": {"default/dual.default.svc": {}, "default/v4only.default.svc": {}}},
    {"uid": "c//Pod/default/dns-only", "namespace": "default", "workloadIps": [],
     "hostname": "dns-only.example", "services": {"default/dns.default.svc": {"80": 80}}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc",
     "vips": ["/198.19.0.10"], "ports": {"80": 8080},
     "subjectAltNames": ["spiffe://cluster.local/ns/default/sa/server-extra"]},
    {"name": "legacy", "namespace": "default", "hostname": "legacy.default.svc",
     "vips": ["/198.19.0.20"], "ports": {"80": 0}},
    {"name": "empty", "namespace": "default", "hostname": "empty.default.svc",
     "vips": ["/198.19.0.30"], "ports": {"80": 8080}},
    {"name": "sick", "namespace": "default", "hostname": "sick.default.svc",
     "vips": ["/198.19.0.31"], "ports": {"80": 8080}},
    {"name": "pt", "namespace": "default", "hostname": "pt.default.svc",
     "vips": ["/198.19.0.40"], "ports": {"80": 8080},
     "loadBalancer": {"mode": "Passthrough", "healthPolicy": "OnlyHealthy", "routingPreferences": []}},
    {"name": "wp", "namespace": "default", "hostname": "wp.default.svc",
     "vips": ["/198.19.0.45"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.18.1.99", "hboneMtlsPort": 15008}},
    {"name": "xnet", "namespace": "default", "hostname": "xnet.default.svc",
     "vips": ["/198.19.0.50"], "ports": {"80": 8080}},
    {"name": "dual", "namespace": "default", "hostname": "dual.default.svc",
     "vips": ["/2001:db8:ffff::70"], "ports": {"80": 8080}},
    {"name": "v4only", "namespace": "default", "hostname": "v4only.default.svc",
     "vips": ["/2001:db8:ffff::71"], "ports": {"80": 8080}, "ipFamilies": "IPv4"},
    {"name": "private", "namespace": "other", "hostname": "private.other.svc",
     "vips": ["/198.19.0.80"], "ports": {"80": 8080}, "visibility": "Namespace"},
    {"name": "dns", "namespace": "default", "hostname": "dns.default.svc",
     "vips": ["/198.19.0.90"], "ports": {"80": 80}}
  ]
})";

struct Row {
    const char* what;
    const char* destination;
    uint64_t random;
    PlanKind kind;
    const char* connect_to;  // "" when refused.
    const char* authority;   // HBONE only.
    const char* identities;  // HBONE only, comma separated.
    RefuseReason reason;
};

std::string join(const std::vector<std::string>& list) {
    std::string out;
    for (const auto& item : list) {
        out += (out.empty() ? "" : ",") + item;
    }
    return out;
}

}  // namespace

TEST_CASE("route: plan_outbound follows ztunnel's build_request") {
    auto loaded = zt::config::load_text(kMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* client = snap.workload_by_uid("c//Pod/default/client");
    REQUIRE(client);

    const Row rows[] = {
            {"service VIP to HBONE endpoint, port translated, service SANs expected",
             "198.19.0.10:80", 0, PlanKind::hbone, "198.18.1.10:15008", "198.18.1.10:8080",
             "spiffe://cluster.local/ns/default/sa/server,"
             "spiffe://cluster.local/ns/default/sa/server-extra",
             RefuseReason::none},
            {"service VIP, named target port resolved by the endpoint's map, TCP workload",
             "198.19.0.20:80", 0, PlanKind::tcp, "198.18.1.20:9090", "", "", RefuseReason::none},
            {"service VIP on a port the service lacks", "198.19.0.10:81", 0, PlanKind::refuse, "",
             "", "", RefuseReason::no_healthy_upstream},
            {"service with no endpoints", "198.19.0.30:80", 0, PlanKind::refuse, "", "", "",
             RefuseReason::no_healthy_upstream},
            {"service whose only endpoint is unhealthy", "198.19.0.31:80", 0, PlanKind::refuse, "",
             "", "", RefuseReason::no_healthy_upstream},
            {"service whose only endpoint is hostname-only: its address left to on-demand DNS",
             "198.19.0.90:80", 0, PlanKind::tcp, "0.0.0.0:80", "", "", RefuseReason::none},
            {"Passthrough load balancing keeps the original destination", "198.19.0.40:80", 0,
             PlanKind::passthrough, "198.19.0.40:80", "", "", RefuseReason::none},
            {"service whose waypoint names nothing is refused, never bypassed", "198.19.0.45:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::unknown_waypoint},
            {"endpoint on another network (double HBONE not implemented)", "198.19.0.50:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::cross_network},
            {"workload IP of an HBONE workload keeps the port", "198.18.1.10:5000", 0,
             PlanKind::hbone, "198.18.1.10:15008", "198.18.1.10:5000",
             "spiffe://cluster.local/ns/default/sa/server", RefuseReason::none},
            {"workload IP of a TCP workload", "198.18.1.20:7000", 0, PlanKind::tcp,
             "198.18.1.20:7000", "", "", RefuseReason::none},
            {"workload IP behind a waypoint that names nothing is refused", "198.18.1.60:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::unknown_waypoint},
            {"unknown address passes through", "198.18.9.9:443", 0, PlanKind::passthrough,
             "198.18.9.9:443", "", "", RefuseReason::none},
            {"unhealthy workload addressed by IP is still that workload", "198.18.1.30:80", 0,
             PlanKind::tcp, "198.18.1.30:80", "", "", RefuseReason::none},
            {"loopback on ztunnel's outbound port is a self call", "127.0.0.1:15001", 0,
             PlanKind::refuse, "", "", "", RefuseReason::self_call},
            {"loopback on the HBONE port is a self call", "[::1]:15008", 0, PlanKind::refuse, "",
             "", "", RefuseReason::self_call},
            {"loopback on an app port passes through", "127.0.0.1:8080", 0, PlanKind::passthrough,
             "127.0.0.1:8080", "", "", RefuseReason::none},
            {"loopback on 15021 is the pod's own application's", "127.0.0.1:15021", 0,
             PlanKind::passthrough, "127.0.0.1:15021", "", "", RefuseReason::none},
            {"IPv6 VIP picks the endpoint's IPv6 address", "[2001:db8:ffff::70]:80", 1,
             PlanKind::hbone, "[2001:db8::70]:15008", "[2001:db8::70]:8080",
             "spiffe://cluster.local/ns/default/sa/dual", RefuseReason::none},
            {"IPv4-only service picks the IPv4 address despite an IPv6 VIP",
             "[2001:db8:ffff::71]:80", 0, PlanKind::hbone, "198.18.1.70:15008", "198.18.1.70:8080",
             "spiffe://cluster.local/ns/default/sa/dual", RefuseReason::none},
            {"workload's own IPv6 address is used as addressed", "[2001:db8::70]:443", 0,
             PlanKind::hbone, "[2001:db8::70]:15008", "[2001:db8::70]:443",
             "spiffe://cluster.local/ns/default/sa/dual", RefuseReason::none},
            {"Namespace-visible service of another namespace is not seen", "198.19.0.80:80", 0,
             PlanKind::passthrough, "198.19.0.80:80", "", "", RefuseReason::none},
    };
    for (const Row& row : rows) {
        std::string what = row.what;
        INFO(what);
        auto dest = zt::state::SocketAddr::parse(row.destination);
        REQUIRE(dest);
        zt::proxy::RouteOptions options;
        options.random = row.random;
        auto plan = zt::proxy::plan_outbound(snap, *client, *dest, options);
        CHECK(zt::proxy::to_string(plan.kind) == zt::proxy::to_string(row.kind));
        CHECK(zt::proxy::to_string(plan.reason) == zt::proxy::to_string(row.reason));
        if (row.kind != PlanKind::refuse) {
            CHECK(plan.connect_to.to_string() == row.connect_to);
        }
        CHECK(plan.authority == row.authority);
        CHECK(join(plan.expected_identities) == row.identities);
    }
}

TEST_CASE("route: the weighted choice spreads a VIP over its endpoints by capacity") {
    auto loaded = zt::config::load_text(R"({
      "workloads": [
        {"uid": "c//Pod/d/client", "namespace": "d", "workloadIps": ["198.18.2.1"], "services": {}},
        {"uid": "c//Pod/d/a", "namespace": "d", "workloadIps": ["198.18.2.10"], "capacity": 1,
         "protocol": "HBONE", "services": {"d/s": {}}},
        {"uid": "c//Pod/d/b", "namespace": "d", "workloadIps": ["198.18.2.11"], "capacity": 2,
         "trustDomain": "td.example", "protocol": "HBONE", "services": {"d/s": {}}}
      ],
      "services": [{"name": "s", "namespace": "d", "hostname": "s", "vips": ["/198.19.2.1"],
                    "ports": {"443": 8443}}]
    })");
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* client = snap.workload_by_uid("c//Pod/d/client");
    int to_b = 0;
    for (uint64_t r = 0; r < 300; ++r) {
        zt::proxy::RouteOptions options;
        options.random = r;
        auto plan = zt::proxy::plan_outbound(
                snap, *client, *zt::state::SocketAddr::parse("198.19.2.1:443"), options);
        REQUIRE(plan.kind == PlanKind::hbone);
        if (plan.connect_to.to_string() == "198.18.2.11:15008") {
            ++to_b;
            CHECK(plan.expected_identities[0] == "spiffe://td.example/ns/d/sa/default");
        } else {
            CHECK(plan.expected_identities[0] == "spiffe://cluster.local/ns/d/sa/default");
        }
    }
    CHECK(to_b == 200);
}

TEST_CASE("route: ztunnel's localhost example routes its VIP to both workloads") {
    auto loaded = zt::config::load_file("tests/fixtures/localhost.json");
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* local = snap.workload_by_uid("cluster1//v1/Pod/default/local");
    REQUIRE(local);
    auto vip = *zt::state::SocketAddr::parse("127.10.0.1:80");
    zt::proxy::RouteOptions options;
    auto hbone = zt::proxy::plan_outbound(snap, *local, vip, options);
    CHECK(hbone.kind == PlanKind::hbone);
    CHECK(hbone.connect_to.to_string() == "127.0.0.1:15008");
    CHECK(hbone.authority == "127.0.0.1:8080");
    CHECK(join(hbone.expected_identities) ==
          "spiffe://cluster.local/ns/default/sa/default,spiffe://cluster.local/ns/default/sa/"
          "local");
    options.random = 1;
    auto tcp = zt::proxy::plan_outbound(snap, *local, vip, options);
    CHECK(tcp.kind == PlanKind::tcp);
    CHECK(tcp.connect_to.to_string() == "127.0.0.2:8080");
    // example2.com's VIP lives on network "remote": from the default network it is unknown.
    auto remote =
            zt::proxy::plan_outbound(snap, *local, *zt::state::SocketAddr::parse("127.10.0.2:80"));
    CHECK(remote.kind == PlanKind::passthrough);
}

// --- locality load balancing (ztunnel's `load_balance`) -------------------------------------

namespace {

// kLocalityWorkloads are a client and the endpoints every locality service shares, spread over
// nodes, zones, regions, clusters and networks so each routing preference separates them.
struct LocalityWorkload {
    const char* name;
    const char* ip;
    const char* node;
    const char* cluster;
    const char* locality;  // "region/zone/subzone", or "" for no `locality` at all.
    const char* network;
    uint32_t capacity;
};

constexpr LocalityWorkload kLocalityWorkloads[] = {
        {"client", "198.18.3.1", "n1", "c1", "r1/z1/s1", "", 1},
        {"nolocal", "198.18.3.2", "n9", "c1", "", "", 1},
        {"a", "198.18.3.10", "n1", "c1", "r1/z1/s1", "", 1},
        {"b", "198.18.3.11", "n2", "c1", "r1/z1/s2", "", 2},
        {"c", "198.18.3.12", "n3", "c1", "r1/z2/s1", "", 1},
        {"d", "198.18.3.13", "n4", "c1", "r2/z1/s1", "", 1},
        {"e", "198.18.3.14", "n6", "c2", "r1/z1/s1", "", 1},
        {"f", "198.18.3.15", "n7", "c1", "r1/z1/s1", "net2", 1},
        {"g", "198.18.3.16", "n5", "c1", "", "", 1},
};

// kLocalityServices: a loadBalancer (`mode` "" for none) and, for services that list their
// endpoints themselves (every one of a..g, each with its own status), the unhealthy ones, so one
// service can lose its local zone while the others keep it.
struct LocalityService {
    const char* name;
    const char* mode;
    const char* preferences;  // JSON array members.
    const char* health;
    const char* unhealthy;  // Endpoint names marked Unhealthy in this service.
};

constexpr LocalityService kLocalityServices[] = {
        {"standard", "", "", "", ""},
        {"standard-prefs", "Standard", R"("Node")", "OnlyHealthy", ""},
        {"strict-node", "Strict", R"("Node")", "OnlyHealthy", ""},
        {"failover-node", "Failover", R"("Node")", "OnlyHealthy", ""},
        {"failover-region-zone", "Failover", R"("Region", "Zone")", "OnlyHealthy", ""},
        {"strict-region-zone", "Strict", R"("Region", "Zone")", "OnlyHealthy", ""},
        {"failover-zone", "Failover", R"("Zone")", "OnlyHealthy", ""},
        {"failover-subzone", "Failover", R"("Region", "Zone", "Subzone")", "OnlyHealthy", ""},
        {"strict-subzone", "Strict", R"("Subzone")", "OnlyHealthy", ""},
        {"strict-cluster", "Strict", R"("Cluster")", "OnlyHealthy", ""},
        {"failover-network", "Failover", R"("Network")", "OnlyHealthy", ""},
        {"strict-network", "Strict", R"("Network")", "OnlyHealthy", ""},
        {"failover-net-region-zone", "Failover", R"("Network", "Region", "Zone")", "OnlyHealthy",
         ""},
        {"failover-net-only-remote", "Failover", R"("Network", "Region", "Zone")", "OnlyHealthy",
         "a,b,c,d,e,g"},
        {"strict-net-region-only-remote", "Strict", R"("Network", "Region")", "OnlyHealthy",
         "a,b,c,d,e,g"},
        {"failover-zone-down", "Failover", R"("Region", "Zone")", "OnlyHealthy", "a,b,e,f"},
        {"allow-all-zone-down", "Failover", R"("Region", "Zone")", "AllowAll", "a,b,e,f"},
        {"strict-zone-down", "Strict", R"("Region", "Zone")", "OnlyHealthy", "a,b,e,f"},
        {"failover-net-zone-other-zone", "Failover", R"("Network", "Zone")", "OnlyHealthy",
         "a,b,d,e,g"},
        {"failover-cluster-region", "Failover", R"("Cluster", "Region")", "OnlyHealthy", ""},
        {"strict-empty", "Strict", "", "OnlyHealthy", ""},
};

constexpr const char* kEndpointNames[] = {"a", "b", "c", "d", "e", "f", "g"};

std::string locality_config() {
    std::string services_map;
    for (const auto& service : kLocalityServices) {
        if (*service.unhealthy != '\0') {
            continue;  // Its endpoints are listed by the service itself, each with a status.
        }
        services_map += std::string(services_map.empty() ? "" : ", ") + "\"d/" + service.name +
                        "\": {\"80\": 8080}";
    }
    std::string text = "{\"workloads\": [";
    bool first = true;
    for (const auto& w : kLocalityWorkloads) {
        bool endpoint = std::string_view(w.name).size() == 1;
        std::string locality;
        if (*w.locality != '\0') {
            std::string parts = w.locality;
            size_t a = parts.find('/'), b = parts.rfind('/');
            locality = ", \"locality\": {\"region\": \"" + parts.substr(0, a) + "\", \"zone\": \"" +
                       parts.substr(a + 1, b - a - 1) + "\", \"subzone\": \"" +
                       parts.substr(b + 1) + "\"}";
        }
        std::string network;
        if (*w.network != '\0') {
            network = std::string(", \"network\": \"") + w.network +
                      "\", \"networkGateway\": {\"destination\": \"" + w.network +
                      "/198.18.3.99\", \"hboneMtlsPort\": 15008}";
        }
        text += std::string(first ? "" : ",\n") + "{\"uid\": \"c//Pod/d/" + w.name +
                "\", \"name\": \"" + w.name + "\", \"namespace\": \"d\", \"workloadIps\": [\"" +
                w.ip + "\"], \"protocol\": \"HBONE\", \"node\": \"" + w.node +
                "\", \"clusterId\": \"" + w.cluster +
                "\", \"capacity\": " + std::to_string(w.capacity) + locality + network +
                ", \"services\": {" + (endpoint ? services_map : "") + "}}";
        first = false;
    }
    text += "], \"services\": [";
    for (size_t i = 0; i < std::size(kLocalityServices); ++i) {
        const auto& service = kLocalityServices[i];
        text += std::string(i ? ",\n" : "") + "{\"name\": \"" + service.name +
                "\", \"namespace\": \"d\", \"hostname\": \"" + service.name +
                "\", \"vips\": [\"/198.19.3." + std::to_string(i + 1) +
                "\"], \"ports\": {\"80\": 8080}";
        if (*service.mode != '\0') {
            text += std::string(", \"loadBalancer\": {\"mode\": \"") + service.mode +
                    "\", \"routingPreferences\": [" + service.preferences +
                    "], \"healthPolicy\": \"" + service.health + "\"}";
        }
        std::string unhealthy = service.unhealthy;
        if (!unhealthy.empty()) {
            text += ", \"endpoints\": {";
            bool first_ep = true;
            for (const char* name : kEndpointNames) {
                bool sick = ("," + unhealthy + ",").find(std::string(",") + name + ",") !=
                            std::string::npos;
                text += std::string(first_ep ? "" : ", ") + "\"c//Pod/d/" + name +
                        "\": {\"workloadUid\": \"c//Pod/d/" + name +
                        "\", \"port\": {\"80\": 8080}, \"status\": \"" +
                        (sick ? "Unhealthy" : "Healthy") + "\"}";
                first_ep = false;
            }
            text += "}";
        }
        text += "}";
    }
    text += "]}";
    return text;
}

struct LbRow {
    const char* what;
    const char* source;
    const char* service;
    const char* chosen;  // Endpoint names that may be chosen, in endpoint order; "" for none.
};

// choices runs `load_balance` for every random value in [0, 840) (840 is divisible by every
// weight total here) and returns the chosen names, each checked to be chosen in proportion to
// its capacity among the chosen.
std::string choices(const zt::state::Snapshot& snap, const zt::state::Workload& source,
                    const zt::state::Service& service) {
    std::map<std::string, uint64_t> counts;
    zt::proxy::RouteOptions options;
    for (uint64_t r = 0; r < 840; ++r) {
        options.random = r;
        const auto* endpoint = zt::proxy::load_balance(
                snap, source, service, 80, zt::proxy::ResolutionMode::standard, options);
        if (endpoint != nullptr) {
            ++counts[endpoint->workload->name];
        }
    }
    uint64_t total_capacity = 0;
    for (const auto& [name, count] : counts) {
        total_capacity += snap.workload_by_uid("c//Pod/d/" + name)->capacity;
    }
    std::string out;
    for (const auto& [name, count] : counts) {
        uint64_t capacity = snap.workload_by_uid("c//Pod/d/" + name)->capacity;
        CHECK_MESSAGE(count * total_capacity == 840 * capacity, name << " chosen " << count);
        out += (out.empty() ? "" : ",") + name;
    }
    return out;
}

}  // namespace

TEST_CASE("route: load_balance ranks endpoints by routing preference as ztunnel does") {
    auto loaded = zt::config::load_text(locality_config());
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const LbRow rows[] = {
            {"no loadBalancer: every endpoint, by capacity", "client", "standard", "a,b,c,d,e,f,g"},
            {"Standard ignores routing preferences", "client", "standard-prefs", "a,b,c,d,e,f,g"},
            {"Strict [Node]: only the source's node", "client", "strict-node", "a"},
            {"Strict [Node] with no endpoint on the source's node: none, no fallback", "nolocal",
             "strict-node", ""},
            {"Failover [Node] with no local endpoint: every endpoint", "nolocal", "failover-node",
             "a,b,c,d,e,f,g"},
            {"Failover [Region, Zone]: the source's zone of its region", "client",
             "failover-region-zone", "a,b,e,f"},
            {"Strict [Region, Zone]: the same", "client", "strict-region-zone", "a,b,e,f"},
            {"Failover [Zone] alone matches a zone name in another region", "client",
             "failover-zone", "a,b,d,e,f"},
            {"Failover [Region, Zone, Subzone]", "client", "failover-subzone", "a,e,f"},
            {"Strict [Subzone]: no locality is the empty subzone, matching no locality", "nolocal",
             "strict-subzone", "g"},
            {"Strict [Cluster]", "client", "strict-cluster", "a,b,c,d,f,g"},
            {"Failover [Network]: the source's network", "client", "failover-network",
             "a,b,c,d,e,g"},
            {"Strict [Network]", "client", "strict-network", "a,b,c,d,e,g"},
            {"Failover [Network, Region, Zone]: network first dominates", "client",
             "failover-net-region-zone", "a,b,e"},
            {"Failover [Network, ...] crosses networks when nothing local is healthy", "client",
             "failover-net-only-remote", "f"},
            {"Strict [Network, Region] never leaves the network", "client",
             "strict-net-region-only-remote", ""},
            {"Failover [Region, Zone] crosses zones only when the zone has no healthy endpoint",
             "client", "failover-zone-down", "c"},
            {"AllowAll keeps unhealthy endpoints, so the zone stays preferred", "client",
             "allow-all-zone-down", "a,b,e,f"},
            {"Strict [Region, Zone] with the zone down: none", "client", "strict-zone-down", ""},
            {"Failover [Network, Zone]: the local network in another zone beats the zone on "
             "another network",
             "client", "failover-net-zone-other-zone", "c"},
            {"Failover [Cluster, Region]: the count stops at the first mismatch", "client",
             "failover-cluster-region", "a,b,c,f"},
            {"Strict with no preferences: every endpoint", "nolocal", "strict-empty",
             "a,b,c,d,e,f,g"},
    };
    for (const LbRow& row : rows) {
        std::string what = row.what;
        INFO(what);
        const auto* source = snap.workload_by_uid(std::string("c//Pod/d/") + row.source);
        const auto* service = snap.service_by_key("d", row.service);
        REQUIRE(source);
        REQUIRE(service);
        CHECK(choices(snap, *source, *service) == row.chosen);
    }
}

// --- waypoints (ztunnel's `build_request_*` waypoint cases, and more) ------------------------

TEST_CASE("route: Strict load balancing with no matching endpoint fails with no healthy upstream") {
    auto loaded = zt::config::load_text(locality_config());
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* nolocal = snap.workload_by_uid("c//Pod/d/nolocal");
    const auto* client = snap.workload_by_uid("c//Pod/d/client");
    REQUIRE(nolocal);
    REQUIRE(client);
    // strict-node is the third service: VIP 198.19.3.3.
    auto vip = *zt::state::SocketAddr::parse("198.19.3.3:80");
    zt::proxy::RouteOptions options;
    for (uint64_t r = 0; r < 16; ++r) {
        options.random = r;
        auto refused = zt::proxy::plan_outbound(snap, *nolocal, vip, options);
        CHECK(refused.kind == PlanKind::refuse);
        CHECK(refused.reason == RefuseReason::no_healthy_upstream);
        // The same service from a source on node n1 always stays on n1.
        auto local = zt::proxy::plan_outbound(snap, *client, vip, options);
        CHECK(local.kind == PlanKind::hbone);
        CHECK(local.connect_to.to_string() == "198.18.3.10:15008");
        CHECK(local.authority == "198.18.3.10:8080");
    }
}

TEST_CASE("route: load_balance weighs by capacity over the endpoints that can take the port") {
    auto loaded = zt::config::load_text(R"({
      "workloads": [
        {"uid": "c//Pod/ns/w1", "namespace": "ns", "workloadIps": ["198.18.0.1"], "capacity": 1,
         "services": {"ns/svc": {"80": 9001}}},
        {"uid": "c//Pod/ns/w2", "namespace": "ns", "workloadIps": ["198.18.0.2"], "capacity": 3,
         "services": {"ns/svc": {}}},
        {"uid": "c//Pod/ns/w4", "namespace": "ns", "workloadIps": [], "hostname": "w4.example",
         "services": {"ns/svc": {"80": 9004}}},
        {"uid": "c//Pod/ns/w5", "namespace": "ns", "workloadIps": ["198.18.0.5"], "capacity": 0,
         "services": {"ns/svc": {"80": 9005}}},
        {"uid": "c//Pod/ns/w6", "namespace": "ns", "workloadIps": ["198.18.0.6"],
         "applicationTunnel": {"protocol": "PROXY", "port": 15088}, "services": {"ns/wp": {}}},
        {"uid": "c//Pod/ns/w7", "namespace": "ns", "workloadIps": ["198.18.0.7"],
         "services": {"ns/wp": {}}}
      ],
      "services": [
        {"name": "svc", "namespace": "ns", "hostname": "svc", "vips": ["/198.19.1.1"],
         "ports": {"80": 0, "443": 8443}},
        {"name": "wp", "namespace": "ns", "hostname": "wp", "vips": ["/198.19.1.2"],
         "ports": {"80": 80}}
      ]
    })");
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* source = snap.workload_by_uid("c//Pod/ns/w1");
    const auto* svc = snap.service_by_key("ns", "svc");
    const auto* wp = snap.service_by_key("ns", "wp");
    REQUIRE(source);
    REQUIRE(svc);
    REQUIRE(wp);
    using zt::proxy::ResolutionMode;
    zt::proxy::RouteOptions options;
    auto pick = [&](const zt::state::Service& service, uint16_t port, ResolutionMode mode,
                    uint64_t r) {
        options.random = r;
        const auto* e = zt::proxy::load_balance(snap, *source, service, port, mode, options);
        return e == nullptr ? std::string("none") : e->workload->uid.substr(10);
    };
    // Port 443: w1 (capacity 1), w2 (3) and w4 (1, hostname-only: resolved on demand when
    // picked); w5 weighs 0.
    std::map<std::string, int> picks;
    for (uint64_t r = 0; r < 500; ++r) {
        picks[pick(*svc, 443, ResolutionMode::standard, r)]++;
    }
    CHECK(picks == std::map<std::string, int>{{"w1", 100}, {"w2", 300}, {"w4", 100}});
    // Port 80 is named (target 0): only endpoints mapping it qualify, w1 and w4 of those with
    // weight.
    picks.clear();
    for (uint64_t r = 0; r < 10; ++r) {
        picks[pick(*svc, 80, ResolutionMode::standard, r)]++;
    }
    CHECK(picks == std::map<std::string, int>{{"w1", 5}, {"w4", 5}});
    CHECK(pick(*svc, 9999, ResolutionMode::standard, 0) == "none");
    // Waypoint resolution: the port need not be on the service for a tunnelled endpoint.
    for (uint64_t r = 0; r < 10; ++r) {
        CHECK(pick(*wp, 15008, ResolutionMode::waypoint, r) == "w6");
    }
    CHECK(pick(*wp, 15008, ResolutionMode::standard, 0) == "none");
    CHECK(pick(*wp, 80, ResolutionMode::waypoint, 1) == "w7");

    auto endpoints = snap.endpoints(*wp);
    REQUIRE(endpoints.size() == 2);
    CHECK(zt::proxy::upstream_port(*wp, endpoints[0], 15008) == 15008);  // Tunnel with a port.
    CHECK_FALSE(zt::proxy::upstream_port(*wp, endpoints[1], 15008).has_value());
    CHECK(zt::proxy::upstream_port(*wp, endpoints[1], 80) == 80);
    auto svc_endpoints = snap.endpoints(*svc);
    CHECK(zt::proxy::upstream_port(*svc, svc_endpoints[0], 80) == 9001);   // The endpoint's map.
    CHECK(zt::proxy::upstream_port(*svc, svc_endpoints[1], 443) == 8443);  // The service's.
    CHECK_FALSE(zt::proxy::upstream_port(*svc, svc_endpoints[1], 80).has_value());
}

TEST_CASE("route: a hostname-only endpoint is planned for on-demand DNS, completed by resolved") {
    auto loaded = zt::config::load_text(R"({
      "workloads": [
        {"uid": "c//Pod/d/client", "namespace": "d", "workloadIps": ["198.18.8.1"], "services": {}},
        {"uid": "c//se/d/db", "name": "db", "namespace": "d", "hostname": "db.example",
         "workloadIps": [], "protocol": "HBONE", "serviceAccount": "db",
         "services": {"d/db.example": {"5432": 15432}}},
        {"uid": "c//se/d/web", "name": "web", "namespace": "d", "hostname": "web.example",
         "workloadIps": [], "protocol": "TCP", "services": {"d/web.example": {"80": 8080}}}
      ],
      "services": [
        {"name": "db", "namespace": "d", "hostname": "db.example", "vips": ["/198.19.8.1"],
         "ports": {"5432": 5432}},
        {"name": "web", "namespace": "d", "hostname": "web.example", "vips": ["/198.19.8.2"],
         "ports": {"80": 80}}
      ]
    })");
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* client = snap.workload_by_uid("c//Pod/d/client");
    REQUIRE(client);
    zt::proxy::RouteOptions options;
    auto hbone = zt::proxy::plan_outbound(
            snap, *client, *zt::state::SocketAddr::parse("198.19.8.1:5432"), options);
    CHECK(hbone.kind == zt::proxy::PlanKind::hbone);
    CHECK(hbone.resolve_hostname);
    REQUIRE(hbone.upstream);
    CHECK(hbone.upstream->hostname == "db.example");
    CHECK(hbone.connect_to.port == 15008);
    CHECK(hbone.authority.empty());
    CHECK(hbone.expected_identities ==
          std::vector<std::string>{"spiffe://cluster.local/ns/d/sa/db"});
    zt::proxy::resolved(hbone, *zt::state::IpAddr::parse("198.18.9.9"));
    CHECK(hbone.connect_to.to_string() == "198.18.9.9:15008");
    CHECK(hbone.authority == "198.18.9.9:15432");

    auto tcp = zt::proxy::plan_outbound(snap, *client,
                                        *zt::state::SocketAddr::parse("198.19.8.2:80"), options);
    CHECK(tcp.kind == zt::proxy::PlanKind::tcp);
    CHECK(tcp.resolve_hostname);
    zt::proxy::resolved(tcp, *zt::state::IpAddr::parse("2001:db8:9::9"));
    CHECK(tcp.connect_to.to_string() == "[2001:db8:9::9]:8080");
    CHECK(tcp.authority.empty());
}
