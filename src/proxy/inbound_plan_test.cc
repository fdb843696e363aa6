// Table tests for plan_inbound, ztunnel's inbound cases (its test_policy, hbone_ip_mismatch and
// service-hostname tests): an IP authority equal to the pod's address (IPv4 and IPv6), one that
// is not (400), a service hostname whose port goes through the pod's endpoint map or the
// service's target port, one with no port (503), ztunnel's own ports 15001/15006/15008 (503, but
// not 15020/15021), an unknown or draining workload (503), an RBAC deny (401). One row per case.

#include "src/proxy/inbound_plan.h"

#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::proxy::InboundAction;
using zt::proxy::InboundRequest;

constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["198.18.1.2"], "protocol": "HBONE",
     "services": {}},
    {"uid": "c//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["198.18.2.2", "2001:db8:2::2"],
     "protocol": "HBONE",
     "services": {"default/server.default.svc": {"80": 8080},
                  "default/fallback.default.svc": {},
                  "default/noport.default.svc": {}}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc",
     "vips": ["/198.19.0.10"], "ports": {"80": 8000}},
    {"name": "fallback", "namespace": "default", "hostname": "fallback.default.svc",
     "vips": ["/198.19.0.11"], "ports": {"81": 8181}},
    {"name": "noport", "namespace": "default", "hostname": "noport.default.svc",
     "vips": ["/198.19.0.12"], "ports": {"82": 0}}
  ],
  "policies": [
    {"name": "deny-robot", "namespace": "default", "scope": "Namespace", "action": "Deny",
     "rules": [[[{"principals": [{"Suffix": "/sa/robot"}]}]]]}
  ]
})";

constexpr const char* kServer = "c//Pod/default/server";
constexpr const char* kClientId = "spiffe://cluster.local/ns/default/sa/client";

struct Row {
    const char* what;
    const char* workload;  // uid; "" for an unknown one
    bool accepting;
    const char* authority;
    const char* local;  // the link's local address
    const char* peer;
    const char* identity;
    InboundAction action;
    uint16_t status;
    const char* target;  // connect and deny only
    const char* error;   // ztunnel's error text, "" when connecting
    const char* service;
    const char* source;  // the peer's workload name, "" when unknown
};

}  // namespace

TEST_CASE("inbound_plan: plan_inbound answers as ztunnel's serve_connect") {
    auto loaded = zt::config::load_text(kMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const zt::state::Snapshot& snapshot = *loaded.snapshot;

    const Row rows[] = {
            {"IP authority of the pod itself", kServer, true, "198.18.2.2:8080", "198.18.2.2:15008",
             "198.18.1.2:40000", kClientId, InboundAction::connect, 200, "198.18.2.2:8080", "",
             "server.default.svc", "client"},
            {"IPv6 authority of the pod itself", kServer, true, "[2001:db8:2::2]:8080",
             "[2001:db8:2::2]:15008", "[2001:db8:1::2]:40000", kClientId, InboundAction::connect,
             200, "[2001:db8:2::2]:8080", "", "server.default.svc", ""},
            {"IP authority of another address", kServer, true, "198.18.2.9:8080",
             "198.18.2.2:15008", "198.18.1.2:40000", kClientId, InboundAction::refuse, 400, "",
             "ip mismatch: 198.18.2.9 != 198.18.2.2", "", ""},
            {"service hostname: the pod's endpoint map wins over the service's target port",
             kServer, true, "server.default.svc:80", "198.18.2.2:15008", "198.18.1.2:40000",
             kClientId, InboundAction::connect, 200, "198.18.2.2:8080", "", "server.default.svc",
             "client"},
            {"service hostname: the service's target port when the pod maps none", kServer, true,
             "fallback.default.svc:81", "198.18.2.2:15008", "198.18.1.2:40000", kClientId,
             InboundAction::connect, 200, "198.18.2.2:8181", "", "fallback.default.svc", "client"},
            {"service hostname the pod does not serve", kServer, true, "unknown.default.svc:80",
             "198.18.2.2:15008", "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "",
             "unknown service unknown.default.svc:80", "", ""},
            {"service hostname with no port for it", kServer, true, "noport.default.svc:82",
             "198.18.2.2:15008", "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "",
             "unknown service noport.default.svc:82", "", ""},
            {"a port of ztunnel's own (a loop)", kServer, true, "198.18.2.2:15008",
             "198.18.2.2:15008", "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "",
             "attempted recursive call to ourselves", "", ""},
            {"15006 is ztunnel's own too", kServer, true, "198.18.2.2:15006", "198.18.2.2:15008",
             "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "",
             "attempted recursive call to ourselves", "", ""},
            {"15001 is ztunnel's own too", kServer, true, "198.18.2.2:15001", "198.18.2.2:15008",
             "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "",
             "attempted recursive call to ourselves", "", ""},
            {"15020 is the application's (ztunnel's metrics listen outside the pod)", kServer, true,
             "198.18.2.2:15020", "198.18.2.2:15008", "198.18.1.2:40000", kClientId,
             InboundAction::connect, 200, "198.18.2.2:15020", "", "", "client"},
            {"15021 is the application's (ztunnel's readiness listens outside the pod)", kServer,
             true, "198.18.2.2:15021", "198.18.2.2:15008", "198.18.1.2:40000", kClientId,
             InboundAction::connect, 200, "198.18.2.2:15021", "", "", "client"},
            {"the pod's workload is unknown", "", true, "198.18.2.2:8080", "198.18.2.2:15008",
             "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "", "unknown workload", "",
             ""},
            {"the pod is draining", kServer, false, "198.18.2.2:8080", "198.18.2.2:15008",
             "198.18.1.2:40000", kClientId, InboundAction::refuse, 503, "", "unknown workload", "",
             ""},
            {"RBAC denies the peer's identity", kServer, true, "198.18.2.2:8080",
             "198.18.2.2:15008", "198.18.1.2:40000", "spiffe://cluster.local/ns/default/sa/robot",
             InboundAction::deny, 401, "198.18.2.2:8080",
             "connection closed due to policy rejection: explicitly denied by: "
             "default/deny-robot",
             "server.default.svc", "client"},
    };
    for (const Row& row : rows) {
        CAPTURE(std::string(row.what));
        InboundRequest request;
        request.workload = *row.workload ? snapshot.workload_by_uid(row.workload) : nullptr;
        request.accepting = row.accepting;
        request.authority = zt::hbone::parse_authority(row.authority).value();
        request.local = *zt::state::SocketAddr::parse(row.local);
        request.peer = *zt::state::SocketAddr::parse(row.peer);
        request.peer_identity = zt::certs::Identity::parse(row.identity).value();
        zt::proxy::InboundDecision decision = plan_inbound(snapshot, request);
        CHECK(to_string(decision.action) == to_string(row.action));
        CHECK(decision.status == row.status);
        CHECK(error_text(decision.cause) == row.error);
        if (row.action == InboundAction::refuse) {
            continue;
        }
        CHECK(decision.target.to_string() == row.target);
        CHECK(decision.destination == request.workload);
        if (*row.service == '\0') {
            CHECK(decision.service == nullptr);  // A port no service of the pod names.
        } else {
            REQUIRE(decision.service != nullptr);
            CHECK(decision.service->hostname == row.service);
        }
        CHECK((decision.source ? decision.source->name : std::string()) == row.source);
        // RBAC judged the application's address, not 15008, with the peer's identity.
        CHECK(decision.rbac.dst == decision.target);
        CHECK(decision.rbac.src == request.peer);
        CHECK(decision.rbac.src_identity->to_string() == row.identity);
    }
}

namespace {

constexpr std::string_view kWaypointMesh = R"({
  "workloads": [
    {"uid": "c//Pod/default/wp", "name": "wp", "namespace": "default", "serviceAccount": "wp",
     "workloadIps": ["198.18.3.5"], "protocol": "HBONE", "services": {}},
    {"uid": "c//Pod/default/behind", "name": "behind", "namespace": "default",
     "serviceAccount": "behind", "workloadIps": ["198.18.3.6"], "protocol": "HBONE",
     "waypoint": {"destination": "/198.18.3.5", "hboneMtlsPort": 15008},
     "authorizationPolicies": ["default/only-waypoint"], "services": {}},
    {"uid": "c//Pod/default/tun", "name": "tun", "namespace": "default", "serviceAccount": "tun",
     "workloadIps": ["198.18.3.7"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "PROXY", "port": 15088},
     "services": {"default/tunsvc.default.svc": {"80": 8080}}},
    {"uid": "c//Pod/default/tunnone", "name": "tunnone", "namespace": "default",
     "workloadIps": ["198.18.3.8"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "NONE", "port": 15090}, "services": {}}
  ],
  "services": [
    {"name": "wpsvc", "namespace": "default", "hostname": "wpsvc.default.svc",
     "vips": ["/198.19.3.20"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.18.3.5", "hboneMtlsPort": 15008}},
    {"name": "tunsvc", "namespace": "default", "hostname": "tunsvc.default.svc",
     "vips": ["/198.19.3.30"], "ports": {"80": 8080}}
  ],
  "policies": [
    {"name": "only-waypoint", "namespace": "default", "scope": "WorkloadSelector",
     "action": "Allow", "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/wp"}]}]]]}
  ]
})";

zt::proxy::InboundDecision plan(const zt::state::Snapshot& snapshot, const char* uid,
                                const char* authority, const char* local, const char* identity) {
    InboundRequest request;
    request.workload = snapshot.workload_by_uid(uid);
    REQUIRE(request.workload != nullptr);
    request.authority = zt::hbone::parse_authority(authority).value();
    request.local = *zt::state::SocketAddr::parse(local);
    request.peer = *zt::state::SocketAddr::parse("198.18.1.2:40000");
    request.peer_identity = zt::certs::Identity::parse(identity).value();
    return plan_inbound(snapshot, request);
}

}  // namespace

TEST_CASE("inbound_plan: waypoint sandwich, application tunnels and waypoint-only RBAC") {
    using zt::proxy::InboundTargetCheck;
    auto loaded = zt::config::load_text(kWaypointMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const zt::state::Snapshot& snap = *loaded.snapshot;
    const char* wp_id = "spiffe://cluster.local/ns/default/sa/wp";

    SUBCASE("the waypoint of a workload accepts its authority, on its own address") {
        auto d = plan(snap, "c//Pod/default/wp", "198.18.3.6:9090", "198.18.3.5:15008", kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.check == InboundTargetCheck::waypoint);
        CHECK(d.target.to_string() == "198.18.3.5:9090");
        CHECK(d.tunnel.connect_to.to_string() == "198.18.3.5:9090");
        CHECK_FALSE(d.tunnel.send_proxy_header);
    }
    SUBCASE("the waypoint of a service accepts its VIP and reports the service") {
        auto d = plan(snap, "c//Pod/default/wp", "198.19.3.20:80", "198.18.3.5:15008", kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.check == InboundTargetCheck::waypoint);
        CHECK(d.target.to_string() == "198.18.3.5:80");
        REQUIRE(d.service != nullptr);
        CHECK(d.service->hostname == "wpsvc.default.svc");
    }
    SUBCASE("a pod that is nobody's waypoint refuses a foreign authority") {
        auto d = plan(snap, "c//Pod/default/behind", "198.18.3.5:80", "198.18.3.6:15008", wp_id);
        CHECK(d.action == InboundAction::refuse);
        CHECK(d.status == 400);
        CHECK(error_text(d.cause) == "ip mismatch: 198.18.3.5 != 198.18.3.6");
    }
    SUBCASE("a policy allowing only the waypoint: the waypoint passes, the client is denied") {
        auto via =
                plan(snap, "c//Pod/default/behind", "198.18.3.6:9090", "198.18.3.6:15008", wp_id);
        CHECK(via.action == InboundAction::connect);
        auto direct = plan(snap, "c//Pod/default/behind", "198.18.3.6:9090", "198.18.3.6:15008",
                           kClientId);
        CHECK(direct.action == InboundAction::deny);
        CHECK(direct.status == 401);
    }
    SUBCASE("PROXY: the tunnel port on loopback, the header naming the authority") {
        auto d = plan(snap, "c//Pod/default/tun", "198.18.3.7:8080", "198.18.3.7:15008", kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.target.to_string() == "198.18.3.7:15088");
        CHECK(d.tunnel.connect_to.to_string() == "127.0.0.1:15088");
        CHECK(d.tunnel.from_loopback);
        CHECK(d.tunnel.send_proxy_header);
        CHECK(d.tunnel.header_destination.to_string() == "198.18.3.7:8080");
        // RBAC judges the pod's address on the tunnel port, never loopback.
        CHECK(d.rbac.dst.to_string() == "198.18.3.7:15088");
    }
    SUBCASE("PROXY with a foreign authority is accepted: the application decides") {
        auto d = plan(snap, "c//Pod/default/tun", "198.19.9.9:443", "198.18.3.7:15008", kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.check == InboundTargetCheck::application_tunnel);
        CHECK(d.tunnel.header_destination.to_string() == "198.19.9.9:443");
    }
    SUBCASE("PROXY with a hostname authority names the service's VIP in the header") {
        auto d = plan(snap, "c//Pod/default/tun", "tunsvc.default.svc:80", "198.18.3.7:15008",
                      kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.target.to_string() == "198.18.3.7:15088");
        CHECK(d.tunnel.header_destination.to_string() == "198.19.3.30:80");
    }
    SUBCASE("NONE with a port: only the port changes") {
        auto d = plan(snap, "c//Pod/default/tunnone", "198.18.3.8:8080", "198.18.3.8:15008",
                      kClientId);
        CHECK(d.action == InboundAction::connect);
        CHECK(d.target.to_string() == "198.18.3.8:15090");
        CHECK(d.tunnel.connect_to.to_string() == "198.18.3.8:15090");
        CHECK_FALSE(d.tunnel.from_loopback);
        CHECK_FALSE(d.tunnel.send_proxy_header);
    }
}
