// Unit tests for the snapshot's lookups: VIP ranking (namespace, canonical, file order) and the
// CIDR fallback, visibility, hostname ranking, unscoped lookups and waypoint references, endpoint
// health filtering and named ports, policy scopes and pods.

#include "src/state/snapshot.h"

#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::state::IpAddr;
using zt::state::NetworkAddress;

NetworkAddress addr(const char* network, const char* ip) {
    return {network, *IpAddr::parse(ip)};
}

std::shared_ptr<const zt::state::Snapshot> build(std::string_view text) {
    auto result = zt::config::load_text(text);
    for (const auto& e : result.errors) {
        MESSAGE(e);
    }
    REQUIRE(result.snapshot);
    return result.snapshot;
}

// kServices: several services sharing VIPs and hostnames across namespaces.
constexpr std::string_view kServices = R"({
  "services": [
    {"name": "a", "namespace": "ns1", "hostname": "shared.example", "vips": ["/198.19.0.1"], "ports": {}},
    {"name": "b", "namespace": "ns2", "hostname": "shared.example", "vips": ["/198.19.0.1"], "ports": {},
     "canonical": true},
    {"name": "c", "namespace": "ns3", "hostname": "shared.example", "vips": ["/198.19.0.1"], "ports": {}},
    {"name": "priv", "namespace": "ns4", "hostname": "priv.example", "vips": ["/198.19.0.2"], "ports": {},
     "visibility": "Namespace"},
    {"name": "wide", "namespace": "ns1", "hostname": "wide.example", "vips": [], "ports": {},
     "cidrVips": [{"network": "", "cidr": "198.19.0.0/16"}]},
    {"name": "narrow", "namespace": "ns2", "hostname": "narrow.example", "vips": [], "ports": {},
     "cidrVips": [{"network": "", "cidr": "198.19.128.0/24"}]},
    {"name": "other-net", "namespace": "ns1", "hostname": "on.example", "vips": ["n2/198.19.0.1"], "ports": {}}
  ]
})";

}  // namespace

TEST_CASE("state: services sharing a VIP rank client namespace, then canonical, then file order") {
    auto snap = build(kServices);
    auto vip = addr("", "198.19.0.1");
    CHECK(snap->service_by_vip(vip, "ns3")->name == "c");  // Same namespace beats canonical.
    CHECK(snap->service_by_vip(vip, "ns1")->name == "a");
    CHECK(snap->service_by_vip(vip, "other")->name == "b");  // Canonical.
    CHECK(snap->service_by_vip(addr("n2", "198.19.0.1"), "other")->name == "other-net");
    CHECK(snap->best_service_by_host("shared.example", "ns1")->name == "a");
    CHECK(snap->best_service_by_host("shared.example", "zzz")->name == "b");
    CHECK(snap->best_service_by_host("missing.example", "ns1") == nullptr);
    CHECK(snap->service_by_key("ns2", "shared.example")->name == "b");
    CHECK(snap->service_by_key("ns9", "shared.example") == nullptr);
}

TEST_CASE("state: Namespace-visibility services are invisible to other namespaces") {
    auto snap = build(kServices);
    CHECK(snap->service_by_vip(addr("", "198.19.0.2"), "ns4")->name == "priv");
    // From elsewhere the exact VIP is invisible, so the CIDR fallback answers.
    CHECK(snap->service_by_vip(addr("", "198.19.0.2"), "ns9")->name == "wide");
    CHECK(snap->best_service_by_host("priv.example", "ns9") == nullptr);
}

TEST_CASE(
        "state: unscoped lookups (for waypoint references) see every service, rank by canonical") {
    auto snap = build(kServices);
    // No client namespace: a Namespace-visibility service is found, and canonical wins.
    CHECK(snap->service_by_vip_unscoped(addr("", "198.19.0.2"))->name == "priv");
    CHECK(snap->service_by_vip_unscoped(addr("", "198.19.0.1"))->name == "b");
    CHECK(snap->service_by_vip_unscoped(addr("", "198.19.128.7"))->name == "narrow");
    CHECK(snap->find_address_unscoped(addr("", "198.19.0.2")).service->name == "priv");
}

TEST_CASE("state: find_hostname and find_gateway resolve waypoint references as ztunnel does") {
    auto snap = build(R"({
      "workloads": [
        {"uid": "c//Pod/ns/wp", "name": "wp", "namespace": "ns", "hostname": "wp.example",
         "workloadIps": ["198.18.6.1"], "services": {}},
        {"uid": "c//Pod/other/wp", "name": "wp-other", "namespace": "other",
         "hostname": "wp.example", "workloadIps": [], "services": {}}
      ],
      "services": [
        {"name": "wps", "namespace": "ns", "hostname": "wps.ns.svc", "vips": ["net2/198.19.6.1"],
         "ports": {}, "visibility": "Namespace"}
      ]
    })");
    using zt::state::GatewayAddress;
    using zt::state::NamespacedHostname;
    CHECK(snap->find_hostname(NamespacedHostname{"ns", "wps.ns.svc"}).service->name == "wps");
    CHECK(snap->find_hostname(NamespacedHostname{"ns", "wp.example"}).workload->name == "wp");
    CHECK(snap->find_hostname(NamespacedHostname{"other", "wp.example"}).workload->name ==
          "wp-other");
    auto none = snap->find_hostname(NamespacedHostname{"ns", "nothing"});
    CHECK((none.workload == nullptr && none.service == nullptr));

    GatewayAddress by_ip;
    by_ip.address = addr("", "198.18.6.1");
    CHECK(snap->find_gateway(by_ip).workload->name == "wp");
    GatewayAddress by_vip;
    by_vip.address = addr("net2", "198.19.6.1");  // The gateway's own network is used.
    CHECK(snap->find_gateway(by_vip).service->name == "wps");
    by_vip.address = addr("", "198.19.6.1");
    CHECK(snap->find_gateway(by_vip).service == nullptr);
    GatewayAddress by_host;
    by_host.host = NamespacedHostname{"ns", "wps.ns.svc"};
    CHECK(snap->find_gateway(by_host).service->name == "wps");
}

TEST_CASE("state: CIDR VIPs are a fallback ranked by namespace, then longest prefix") {
    auto snap = build(kServices);
    CHECK(snap->service_by_vip(addr("", "198.19.128.7"), "ns9")->name == "narrow");
    CHECK(snap->service_by_vip(addr("", "198.19.128.7"), "ns1")->name == "wide");
    CHECK(snap->service_by_vip(addr("", "198.19.3.3"), "ns9")->name == "wide");
    CHECK(snap->service_by_vip(addr("", "198.20.0.1"), "ns9") == nullptr);
    CHECK(snap->service_by_vip(addr("n2", "198.19.3.3"), "ns9") == nullptr);
    auto match = snap->find_address(addr("", "198.19.0.1"), "ns1");
    CHECK(match.workload == nullptr);
    CHECK(match.service->name == "a");
}

namespace {

constexpr std::string_view kEndpoints = R"({
  "workloads": [
    {"uid": "c//Pod/ns/w1", "namespace": "ns", "workloadIps": ["198.18.0.1"], "capacity": 1,
     "services": {"ns/svc": {"80": 9001}, "ns/all": {}}},
    {"uid": "c//Pod/ns/w2", "namespace": "ns", "workloadIps": ["198.18.0.2"], "capacity": 3,
     "services": {"ns/svc": {}, "ns/all": {}}},
    {"uid": "c//Pod/ns/w3", "namespace": "ns", "workloadIps": ["198.18.0.3"], "status": "Unhealthy",
     "services": {"ns/svc": {"80": 9003}, "ns/all": {}}},
    {"uid": "c//Pod/ns/w4", "namespace": "ns", "workloadIps": [], "hostname": "w4.example",
     "services": {"ns/svc": {"80": 9004}}},
    {"uid": "c//Pod/ns/w5", "namespace": "ns", "workloadIps": ["198.18.0.5"], "capacity": 0,
     "services": {"ns/svc": {"80": 9005}}}
  ],
  "services": [
    {"name": "svc", "namespace": "ns", "hostname": "svc", "vips": ["/198.19.1.1"],
     "ports": {"80": 0, "443": 8443}},
    {"name": "all", "namespace": "ns", "hostname": "all", "vips": ["/198.19.1.2"],
     "ports": {"80": 8080}, "loadBalancer": {"healthPolicy": "AllowAll", "mode": "Standard",
                                          "routingPreferences": []}}
  ]
})";

}  // namespace

TEST_CASE("state: endpoints come from workloads' services maps, healthy only unless AllowAll") {
    auto snap = build(kEndpoints);
    const auto* svc = snap->service_by_key("ns", "svc");
    const auto* all = snap->service_by_key("ns", "all");
    auto uids = [&](const zt::state::Service& s) {
        std::string out;
        for (const auto& e : snap->endpoints(s)) {
            out += e.workload->uid.substr(10) + ",";
        }
        return out;
    };
    CHECK(uids(*svc) == "w1,w2,w4,w5,");
    CHECK(uids(*all) == "w1,w2,w3,");
}

TEST_CASE("state: a service's own endpoint replaces a workload's entry for its uid, in place") {
    auto snap = build(R"({
  "workloads": [
    {"uid": "c//Pod/ns/w1", "namespace": "ns", "workloadIps": ["198.18.0.1"],
     "services": {"ns/svc": {"80": 9001}}},
    {"uid": "c//Pod/ns/w2", "namespace": "ns", "workloadIps": ["198.18.0.2"],
     "services": {"ns/svc": {"80": 9002}}},
    {"uid": "c//Pod/ns/w3", "namespace": "ns", "workloadIps": ["198.18.0.3"], "services": {}}
  ],
  "services": [
    {"name": "svc", "namespace": "ns", "hostname": "svc", "vips": ["/198.19.1.1"],
     "ports": {"80": 0},
     "endpoints": {
       "e1": {"workloadUid": "c//Pod/ns/w1", "port": {"80": 7001}, "status": "Healthy"},
       "e2": {"workloadUid": "c//Pod/ns/w3", "port": {"80": 7003}, "status": "Healthy"},
       "e3": {"workloadUid": "c//Pod/ns/w2", "port": {"80": 7002}, "status": "Unhealthy"}}}
  ]
})");
    const auto* svc = snap->service_by_key("ns", "svc");
    REQUIRE(svc != nullptr);
    std::string seen;
    for (const auto& e : snap->endpoints(*svc)) {
        seen += e.workload->uid.substr(10) + ":" +
                std::to_string(zt::state::Snapshot::target_port(*svc, e, 80).value_or(0)) + ",";
    }
    // w1's own entry replaced where it was; the unhealthy one stored nothing, so w2's stays.
    CHECK(seen == "w1:7001,w2:9002,w3:7003,");
}

TEST_CASE("state: target port: endpoint map, then non-zero service target, else none") {
    auto snap = build(kEndpoints);
    const auto* svc = snap->service_by_key("ns", "svc");
    auto eps = snap->endpoints(*svc);
    CHECK(zt::state::Snapshot::target_port(*svc, eps[0], 80) == 9001);
    CHECK_FALSE(
            zt::state::Snapshot::target_port(*svc, eps[1], 80).has_value());  // Named, unmapped.
    CHECK(zt::state::Snapshot::target_port(*svc, eps[1], 443) == 8443);
    CHECK_FALSE(zt::state::Snapshot::target_port(*svc, eps[0], 8080).has_value());
}

TEST_CASE("state: policies are indexed by scope and selected per workload") {
    auto snap = build(R"({
      "workloads": [
        {"uid": "c//Pod/a/x", "namespace": "a", "workloadIps": [], "services": {},
         "authorizationPolicies": ["a/sel", "a/missing"]},
        {"uid": "c//Pod/b/y", "namespace": "b", "workloadIps": [], "services": {}}
      ],
      "policies": [
        {"name": "ns-a", "namespace": "a", "scope": "Namespace", "action": "Allow", "rules": []},
        {"name": "g", "namespace": "istio-system", "scope": "Global", "action": "Deny", "rules": [[]]},
        {"name": "sel", "namespace": "a", "scope": "WorkloadSelector", "action": "Allow", "rules": []},
        {"name": "orphan", "namespace": "b", "scope": "WorkloadSelector", "action": "Allow", "rules": []}
      ]
    })");
    CHECK(snap->global_policies().size() == 1);
    CHECK(snap->namespace_policies("a").size() == 1);
    CHECK(snap->namespace_policies("b").empty());
    auto names = [](const std::vector<const zt::state::Policy*>& list) {
        std::string out;
        for (const auto* p : list) {
            out += p->name + ",";
        }
        return out;
    };
    CHECK(names(snap->policies_for(*snap->workload_by_uid("c//Pod/a/x"))) == "ns-a,g,sel,");
    CHECK(names(snap->policies_for(*snap->workload_by_uid("c//Pod/b/y"))) == "g,");
    CHECK(snap->policy_by_key("b/orphan")->scope == zt::state::PolicyScope::workload_selector);
}

TEST_CASE("state: unknown references and orphan selector policies are warnings, not errors") {
    auto result = zt::config::load_text(R"({
      "workloads": [{"uid": "c//Pod/a/x", "namespace": "a", "workloadIps": [],
                     "services": {"a/nosuch": {}}, "authorizationPolicies": ["a/missing"]}],
      "policies": [{"name": "orphan", "namespace": "b", "scope": "WorkloadSelector",
                    "action": "Allow", "rules": []}]
    })");
    REQUIRE(result.snapshot);
    REQUIRE(result.warnings.size() == 3);
    CHECK(result.warnings[0] ==
          "workloads[0].services: service \"a/nosuch\" is not defined; the "
          "endpoint is ignored");
    CHECK(result.warnings[1] ==
          "workloads[0].authorizationPolicies[0]: policy \"a/missing\" is "
          "not defined; skipped");
    CHECK(result.warnings[2] ==
          "policies[0]: WorkloadSelector policy \"b/orphan\" is listed by "
          "no workload; it selects nothing");
}

TEST_CASE("state: pods are found by uid and pending until their workload exists") {
    auto snap = build(R"({
      "workloads": [{"uid": "c//Pod/a/x", "namespace": "a", "workloadIps": [], "services": {}}],
      "pods": [{"uid": "c//Pod/a/x", "netns": "/var/run/netns/zt-x"},
               {"uid": "c//Pod/a/later", "netns": "/var/run/netns/zt-later"}]
    })");
    REQUIRE(snap->pod_by_uid("c//Pod/a/x"));
    CHECK(snap->pod_by_uid("c//Pod/a/x")->netns == "/var/run/netns/zt-x");
    CHECK_FALSE(snap->pod_pending(*snap->pod_by_uid("c//Pod/a/x")));
    CHECK(snap->pod_pending(*snap->pod_by_uid("c//Pod/a/later")));
    CHECK(snap->pod_by_uid("nope") == nullptr);
}
