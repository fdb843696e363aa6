// Table tests for plan_outbound, ztunnel's `build_request_*` cases for everything this project
// supports: service VIP to endpoint with port translation (including named ports), workload IP,
// HBONE vs TCP workloads, passthrough, refusals (no healthy endpoint, self call, unsupported
// waypoint and cross-network), IP family selection. One row per case.

#include "src/proxy/route.h"

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
            {"service whose only endpoint has no IP (DNS not implemented)", "198.19.0.90:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::no_healthy_upstream},
            {"Passthrough load balancing keeps the original destination", "198.19.0.40:80", 0,
             PlanKind::passthrough, "198.19.0.40:80", "", "", RefuseReason::none},
            {"service with a waypoint fails closed", "198.19.0.45:80", 0, PlanKind::refuse, "", "",
             "", RefuseReason::waypoint_unsupported},
            {"endpoint on another network (double HBONE not implemented)", "198.19.0.50:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::cross_network},
            {"workload IP of an HBONE workload keeps the port", "198.18.1.10:5000", 0,
             PlanKind::hbone, "198.18.1.10:15008", "198.18.1.10:5000",
             "spiffe://cluster.local/ns/default/sa/server", RefuseReason::none},
            {"workload IP of a TCP workload", "198.18.1.20:7000", 0, PlanKind::tcp,
             "198.18.1.20:7000", "", "", RefuseReason::none},
            {"workload IP behind a workload waypoint fails closed", "198.18.1.60:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::waypoint_unsupported},
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
        CAPTURE(row.what);
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
        auto plan = zt::proxy::plan_outbound(snap, *client,
                                             *zt::state::SocketAddr::parse("198.19.2.1:443"),
                                             {"cluster.local", r});
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
    auto hbone = zt::proxy::plan_outbound(snap, *local, vip, {"cluster.local", 0});
    CHECK(hbone.kind == PlanKind::hbone);
    CHECK(hbone.connect_to.to_string() == "127.0.0.1:15008");
    CHECK(hbone.authority == "127.0.0.1:8080");
    CHECK(join(hbone.expected_identities) ==
          "spiffe://cluster.local/ns/default/sa/default,spiffe://cluster.local/ns/default/sa/"
          "local");
    auto tcp = zt::proxy::plan_outbound(snap, *local, vip, {"cluster.local", 1});
    CHECK(tcp.kind == PlanKind::tcp);
    CHECK(tcp.connect_to.to_string() == "127.0.0.2:8080");
    // example2.com's VIP lives on network "remote": from the default network it is unknown.
    auto remote =
            zt::proxy::plan_outbound(snap, *local, *zt::state::SocketAddr::parse("127.10.0.2:80"));
    CHECK(remote.kind == PlanKind::passthrough);
}
