// Tests for the combination warnings: one config per case, each checked for its exact warning
// (with the JSON path), and configs that work as written checked to produce none.

#include "src/config/lint.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

// kMesh: a client on node n2 (its pod is this node's), a server on n1 behind every service, and
// a waypoint that exists. Rows add one service each.
constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns/client", "namespace": "ns", "node": "n2", "workloadIps": ["198.18.7.1"],
     "services": {}},
    {"uid": "c//Pod/ns/server", "namespace": "ns", "node": "n1", "workloadIps": ["198.18.7.2"],
     "locality": {"region": "r1", "zone": "z1", "subzone": ""}, "protocol": "HBONE",
     "services": {"ns/s.ns.svc": {"80": 8080}}},
    {"uid": "c//Pod/ns/waypoint", "namespace": "ns", "serviceAccount": "waypoint",
     "workloadIps": ["198.18.7.10"], "protocol": "HBONE", "services": {}}
  ],
  "services": [
    {"name": "s", "namespace": "ns", "hostname": "s.ns.svc", "vips": ["/198.19.7.1"],
     "ports": {"80": 8080} SERVICE}
  ],
  "pods": [{"uid": "c//Pod/ns/client", "netns": "/var/run/netns/zt-client"}]
})";

std::string with(std::string_view service_members, std::string_view pods = "") {
    std::string text(kMesh);
    text.replace(text.find(" SERVICE"), 8, service_members);
    if (!pods.empty()) {
        size_t at = text.find("[{\"uid\": \"c//Pod/ns/client\", \"netns\"");
        text.replace(at, text.find("}]", at) + 2 - at, pods);
    }
    return text;
}

std::vector<std::string> warnings_of(const std::string& text) {
    auto result = zt::config::load_text(text);
    for (const auto& e : result.errors) {
        MESSAGE(e);
    }
    REQUIRE(result.snapshot);
    return result.warnings;
}

std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) {
        out += (out.empty() ? "" : "\n") + line;
    }
    return out;
}

}  // namespace

TEST_CASE("lint: combinations that cannot work are warned about with their JSON path") {
    struct Row {
        const char* what;
        std::string text;
        const char* warning;  // The exact warnings, newline separated; "" for none.
    } rows[] = {
            {"a config that works as written", with(""), ""},
            {"Strict [Node] with no endpoint on the client's node",
             with(R"(, "loadBalancer": {"mode": "Strict", "routingPreferences": ["Node"],
                     "healthPolicy": "OnlyHealthy"})"),
             "services[0].loadBalancer: Strict [Node]: no endpoint matches 1 of 1 client "
             "workloads (\"c//Pod/ns/client\"); their connections to it fail with no healthy "
             "upstream"},
            {"Strict [Node] from the endpoint's own node works",
             with(R"(, "loadBalancer": {"mode": "Strict", "routingPreferences": ["Node"],
                     "healthPolicy": "OnlyHealthy"})",
                  R"([{"uid": "c//Pod/ns/server", "netns": "/var/run/netns/zt-server"}])"),
             ""},
            {"without pods every workload is a client",
             with(R"(, "loadBalancer": {"mode": "Strict", "routingPreferences": ["Region", "Zone"],
                     "healthPolicy": "OnlyHealthy"})",
                  "[]"),
             "services[0].loadBalancer: Strict [Region, Zone]: no endpoint matches 2 of 3 client "
             "workloads (\"c//Pod/ns/client\", \"c//Pod/ns/waypoint\"); their connections to it "
             "fail with no healthy upstream"},
            {"Failover falls back, so it is not warned about",
             with(R"(, "loadBalancer": {"mode": "Failover", "routingPreferences": ["Node"],
                     "healthPolicy": "OnlyHealthy"})"),
             ""},
            {"Strict with no preferences is Standard",
             with(R"(, "loadBalancer": {"mode": "Strict", "routingPreferences": [],
                     "healthPolicy": "OnlyHealthy"})"),
             ""},
            {"preferences that Standard ignores",
             with(R"(, "loadBalancer": {"mode": "Standard", "routingPreferences": ["Zone"],
                     "healthPolicy": "OnlyHealthy"})"),
             "services[0].loadBalancer.routingPreferences: ignored in mode Standard"},
            {"a preference twice", with(R"(, "loadBalancer": {"mode": "Failover",
                     "routingPreferences": ["Zone", "Region", "Zone"],
                     "healthPolicy": "AllowAll"})"),
             "services[0].loadBalancer.routingPreferences[2]: Zone appears twice"},
            {"a waypoint that exists",
             with(R"(, "waypoint": {"destination": "/198.18.7.10", "hboneMtlsPort": 15008})"), ""},
            {"a waypoint IP with nothing there",
             with(R"(, "waypoint": {"destination": "/198.18.7.99", "hboneMtlsPort": 15008})"),
             "services[0].waypoint: \"/198.18.7.99\" names no workload or service of this "
             "config; connections that need this waypoint fail (unknown waypoint)"},
            {"a waypoint hostname with nothing by that name, on port 0",
             with(R"(, "waypoint": {"destination": "istio-system/wp.svc", "hboneMtlsPort": 0})"),
             "services[0].waypoint: \"istio-system/wp.svc\" names no workload or service of this "
             "config; connections that need this waypoint fail (unknown waypoint)\n"
             "services[0].waypoint.hboneMtlsPort: 0 is not a port anything listens on"},
            {"weighted waypoints that all weigh 0, with no waypoint",
             with(R"(, "weightedWaypoints": [{"destination": {"destination": "/198.18.7.10",
                     "hboneMtlsPort": 15008}, "weight": 0}])"),
             "services[0].weightedWaypoints: every weight is 0 and there is no waypoint, so "
             "traffic to this service uses no waypoint at all"},
            {"a weighted waypoint naming nothing",
             with(R"(, "waypoint": {"destination": "/198.18.7.10", "hboneMtlsPort": 15008},
                     "weightedWaypoints": [{"destination": {"destination": "ns/gone",
                     "hboneMtlsPort": 15008}, "weight": 1}])"),
             "services[0].weightedWaypoints[0].destination: \"ns/gone\" names no workload or "
             "service of this config; connections that need this waypoint fail (unknown "
             "waypoint)"},
    };

    for (const Row& row : rows) {
        std::string what = row.what;
        INFO(what);
        CHECK(join(warnings_of(row.text)) == row.warning);
    }
}

TEST_CASE("lint: a workload's waypoint is checked too, and the list is bounded") {
    std::string text(kMesh);
    text.replace(text.find(" SERVICE"), 8, "");
    std::string many;
    for (int i = 0; i < 150; ++i) {
        many += ",{\"uid\": \"c//Pod/ns/w" + std::to_string(i) +
                "\", \"namespace\": \"ns\", \"workloadIps\": [], \"services\": {}, \"waypoint\": "
                "{\"destination\": \"ns/missing\", \"hboneMtlsPort\": 15008}}";
    }
    text.replace(text.find("\n  ],\n  \"services\""), 0, many);
    auto warnings = warnings_of(text);
    REQUIRE(warnings.size() == zt::config::kMaxLintWarnings + 1);
    CHECK(warnings[0] ==
          "workloads[3].waypoint: \"ns/missing\" names no workload or service of this config; "
          "connections that need this waypoint fail (unknown waypoint)");
    CHECK(warnings.back() == "(file): 50 more combination warnings not shown");
}
