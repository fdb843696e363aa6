// Table tests for the waypoint decisions outside the outbound plan: the inbound "sandwich"
// acceptance (ztunnel's `validate_destination`), the PROXY header's destination for hostname
// authorities, the application tunnel decision, and the RBAC inputs of waypoint traffic checked
// against real policies. One row per case.

#include "src/proxy/waypoint.h"

#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::proxy::InboundTargetCheck;

constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns/server", "name": "server", "namespace": "ns", "serviceAccount": "server",
     "workloadIps": ["198.18.5.2"], "protocol": "HBONE",
     "waypoint": {"destination": "/198.18.5.10", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/server2", "name": "server2", "namespace": "ns",
     "workloadIps": ["198.18.5.3"], "protocol": "HBONE",
     "waypoint": {"destination": "ns/waypoint.ns.svc", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/waypoint", "name": "waypoint", "namespace": "ns",
     "serviceAccount": "waypoint", "workloadIps": ["198.18.5.10", "2001:db8:5::10"],
     "protocol": "HBONE", "services": {}},
    {"uid": "c//Pod/ns/wp-svc-pod", "name": "wp-svc-pod", "namespace": "ns",
     "serviceAccount": "waypoint", "workloadIps": ["198.18.5.11"], "protocol": "HBONE",
     "services": {"ns/waypoint.ns.svc": {}}},
    {"uid": "c//Pod/ns/wp-svc-sick", "name": "wp-svc-sick", "namespace": "ns",
     "serviceAccount": "waypoint", "workloadIps": ["198.18.5.12"], "protocol": "HBONE",
     "status": "Unhealthy", "services": {"ns/waypoint.ns.svc": {}}},
    {"uid": "c//Pod/ns/tunnel", "name": "tunnel", "namespace": "ns", "serviceAccount": "tunnel",
     "workloadIps": ["198.18.5.20", "2001:db8:5::20"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "PROXY", "port": 15088}, "services": {}},
    {"uid": "c//Pod/ns/tunnel-proxy-no-port", "name": "tunnel-proxy-no-port", "namespace": "ns",
     "workloadIps": ["198.18.5.22"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "PROXY"}, "services": {}},
    {"uid": "c//Pod/ns/tunnel-none", "name": "tunnel-none", "namespace": "ns",
     "workloadIps": ["198.18.5.21"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "NONE"}, "services": {}},
    {"uid": "c//Pod/ns/tunnel-none-port", "name": "tunnel-none-port", "namespace": "ns",
     "workloadIps": ["198.18.5.23"], "protocol": "HBONE",
     "applicationTunnel": {"protocol": "NONE", "port": 9000}, "services": {}},
    {"uid": "c//Pod/ns/other", "name": "other", "namespace": "ns", "serviceAccount": "other",
     "workloadIps": ["198.18.5.30"], "protocol": "HBONE", "services": {}},
    {"uid": "c//Pod/ns/plain", "name": "plain", "namespace": "ns",
     "workloadIps": ["198.18.5.31"], "protocol": "HBONE", "services": {}}
  ],
  "services": [
    {"name": "waypoint", "namespace": "ns", "hostname": "waypoint.ns.svc",
     "vips": ["/198.19.5.100"], "ports": {"15008": 15008}},
    {"name": "svc", "namespace": "ns", "hostname": "svc.ns", "vips": ["/198.19.5.1"],
     "ports": {"80": 8080}, "waypoint": {"destination": "/198.18.5.10", "hboneMtlsPort": 15008}},
    {"name": "svc-host", "namespace": "ns", "hostname": "svc-host.ns", "vips": ["/198.19.5.2"],
     "ports": {"80": 8080},
     "waypoint": {"destination": "ns/waypoint.ns.svc", "hboneMtlsPort": 15008}},
    {"name": "svc-weighted-only", "namespace": "ns", "hostname": "svc-weighted-only.ns",
     "vips": ["/198.19.5.3"], "ports": {"80": 8080},
     "weightedWaypoints": [
       {"destination": {"destination": "/198.18.5.10", "hboneMtlsPort": 15008}, "weight": 1}]},
    {"name": "svc-no-wp", "namespace": "ns", "hostname": "svc-no-wp.ns", "vips": ["/198.19.5.4"],
     "ports": {"80": 8080}},
    {"name": "private", "namespace": "other", "hostname": "private.other",
     "vips": ["/198.19.5.5"], "ports": {"80": 8080}, "visibility": "Namespace",
     "waypoint": {"destination": "/198.18.5.10", "hboneMtlsPort": 15008}}
  ],
  "policies": [
    {"name": "only-the-waypoint", "namespace": "ns", "scope": "WorkloadSelector",
     "action": "Allow", "dryRun": false,
     "rules": [[[{"principals": [{"Exact": "cluster.local/ns/ns/sa/waypoint"}]}]]]},
    {"name": "tunnel-port-only", "namespace": "ns", "scope": "WorkloadSelector",
     "action": "Allow", "dryRun": false, "rules": [[[{"destinationPorts": [15088]}]]]}
  ]
})";

std::string with_policies() {
    std::string text(kMesh);
    // server admits only the waypoint's identity; tunnel admits only its tunnel port.
    text.replace(text.find("\"waypoint\": {\"destination\": \"/198.18.5.10\""), 0,
                 "\"authorizationPolicies\": [\"ns/only-the-waypoint\"], ");
    text.replace(text.find("\"applicationTunnel\": {\"protocol\": \"PROXY\", \"port\": 15088}"), 0,
                 "\"authorizationPolicies\": [\"ns/tunnel-port-only\"], ");
    return text;
}

const zt::state::Workload& by_name(const zt::state::Snapshot& snap, std::string_view name) {
    for (const auto& w : snap.workloads()) {
        if (w.name == name) {
            return w;
        }
    }
    FAIL("no workload " << name);
    return snap.workloads()[0];
}

zt::state::IpAddr ip(const char* text) {
    auto parsed = zt::state::IpAddr::parse(text);
    REQUIRE(parsed);
    return *parsed;
}

zt::state::SocketAddr addr(const char* text) {
    auto parsed = zt::state::SocketAddr::parse(text);
    REQUIRE(parsed);
    return *parsed;
}

struct TargetRow {
    const char* what;
    const char* local;     // The pod the HBONE connection arrived for.
    const char* local_ip;  // The address it arrived on.
    const char* authority;
    InboundTargetCheck check;
    const char* error;
};

}  // namespace

TEST_CASE("waypoint: an inbound authority that is not the pod's IP is accepted as ztunnel does") {
    auto loaded = zt::config::load_text(kMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const TargetRow rows[] = {
            {"the pod's own IP", "server", "198.18.5.2", "198.18.5.2:8080",
             InboundTargetCheck::own_ip, ""},
            {"a service hostname is resolved later", "server", "198.18.5.2", "svc.ns:80",
             InboundTargetCheck::hostname, ""},
            {"a PROXY application tunnel takes any authority", "tunnel", "198.18.5.20",
             "198.18.5.2:8080", InboundTargetCheck::application_tunnel, ""},
            {"a NONE application tunnel too", "tunnel-none", "198.18.5.21", "198.19.5.1:80",
             InboundTargetCheck::application_tunnel, ""},
            {"the waypoint (by IP) of the authority's workload", "waypoint", "198.18.5.10",
             "198.18.5.2:8080", InboundTargetCheck::waypoint, ""},
            {"the same waypoint reached on its IPv6 address", "waypoint", "2001:db8:5::10",
             "198.18.5.2:8080", InboundTargetCheck::waypoint, ""},
            {"the waypoint (by IP) of the authority's service", "waypoint", "198.18.5.10",
             "198.19.5.1:80", InboundTargetCheck::waypoint, ""},
            {"an endpoint of the waypoint service (by hostname) of the authority's service",
             "wp-svc-pod", "198.18.5.11", "198.19.5.2:80", InboundTargetCheck::waypoint, ""},
            {"an endpoint of the waypoint service of the authority's workload", "wp-svc-pod",
             "198.18.5.11", "198.18.5.3:80", InboundTargetCheck::waypoint, ""},
            {"a service of another namespace with Namespace visibility is still found", "waypoint",
             "198.18.5.10", "198.19.5.5:80", InboundTargetCheck::waypoint, ""},
            {"an unhealthy endpoint is not stored, so not the waypoint", "wp-svc-sick",
             "198.18.5.12", "198.19.5.2:80", InboundTargetCheck::ip_mismatch,
             "ip mismatch: 198.18.5.12 != 198.19.5.2"},
            {"weightedWaypoints are not consulted (ztunnel reads `waypoint` only)", "waypoint",
             "198.18.5.10", "198.19.5.3:80", InboundTargetCheck::ip_mismatch,
             "ip mismatch: 198.18.5.10 != 198.19.5.3"},
            {"a service without a waypoint", "waypoint", "198.18.5.10", "198.19.5.4:80",
             InboundTargetCheck::ip_mismatch, "ip mismatch: 198.18.5.10 != 198.19.5.4"},
            {"a workload whose waypoint is someone else", "other", "198.18.5.30", "198.18.5.2:8080",
             InboundTargetCheck::ip_mismatch, "ip mismatch: 198.18.5.30 != 198.18.5.2"},
            {"the waypoint service's pod is not the IP-named waypoint", "wp-svc-pod", "198.18.5.11",
             "198.18.5.2:8080", InboundTargetCheck::ip_mismatch,
             "ip mismatch: 198.18.5.11 != 198.18.5.2"},
            {"an unknown address", "waypoint", "198.18.5.10", "198.18.5.99:80",
             InboundTargetCheck::ip_mismatch, "ip mismatch: 198.18.5.10 != 198.18.5.99"},
            {"an IPv6 authority for an IPv4 pod", "plain", "198.18.5.31", "[2001:db8:5::31]:80",
             InboundTargetCheck::ip_mismatch, "ip mismatch: 198.18.5.31 != 2001:db8:5::31"},
    };
    for (const TargetRow& row : rows) {
        std::string what = row.what;
        INFO(what);
        auto authority = zt::hbone::parse_authority(row.authority);
        REQUIRE(authority);
        auto decision = zt::proxy::check_inbound_target(snap, by_name(snap, row.local),
                                                        ip(row.local_ip), *authority);
        CHECK(zt::proxy::to_string(decision.check) == zt::proxy::to_string(row.check));
        CHECK(decision.accepted() == (row.check != InboundTargetCheck::ip_mismatch));
        CHECK(decision.error == row.error);
    }
}

TEST_CASE("waypoint: the source is the waypoint only by identity and IP together") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto& server = by_name(snap, "server");
    const auto& server2 = by_name(snap, "server2");
    const std::string waypoint_id = "spiffe://cluster.local/ns/ns/sa/waypoint";
    auto check = [&](const zt::state::Workload& upstream, const std::string& identity,
                     std::optional<zt::state::IpAddr> source_ip) {
        return zt::proxy::source_is_waypoint(snap, upstream, identity, source_ip, "cluster.local");
    };
    CHECK(check(server, waypoint_id, ip("198.18.5.10")));
    CHECK(check(server, waypoint_id, ip("2001:db8:5::10")));
    CHECK_FALSE(check(server, waypoint_id, ip("198.18.5.11")));  // Same identity, other pod.
    CHECK_FALSE(check(server, "spiffe://cluster.local/ns/ns/sa/other", ip("198.18.5.10")));
    CHECK_FALSE(check(server, waypoint_id, std::nullopt));
    CHECK(check(server2, waypoint_id, ip("198.18.5.11")));        // A stored endpoint.
    CHECK_FALSE(check(server2, waypoint_id, ip("198.18.5.12")));  // An unhealthy one is not.
    CHECK_FALSE(check(by_name(snap, "other"), waypoint_id, ip("198.18.5.10")));  // No waypoint.
}

TEST_CASE(
        "waypoint: a hostname authority's PROXY destination is a VIP, IPv4 on our network first") {
    struct Row {
        const char* what;
        std::vector<const char*> vips;
        const char* expected;  // "" for none.
    } rows[] = {
            {"IPv4 before IPv6", {"/198.19.5.1", "/2001:db8:ffff::1"}, "198.19.5.1:80"},
            {"the last of equal ranks",
             {"/2001:db8:ffff::1", "/198.19.5.1", "/198.19.5.9"},
             "198.19.5.9:80"},
            {"our network before another's IPv4",
             {"net2/198.19.6.1", "/2001:db8:ffff::2"},
             "[2001:db8:ffff::2]:80"},
            {"no VIP on our network: the last of any",
             {"net2/198.19.6.1", "net3/198.19.7.1"},
             "198.19.7.1:80"},
            {"no VIP at all", {}, ""},
    };

    for (const Row& row : rows) {
        std::string what = row.what;
        INFO(what);
        zt::state::Service service;
        for (const char* vip : row.vips) {
            service.vips.push_back(*zt::state::NetworkAddress::parse(vip));
        }
        auto target = zt::proxy::hostname_tunnel_target(service, "", 80);
        CHECK((target ? target->to_string() : std::string()) == row.expected);
    }
}

TEST_CASE("waypoint: the application tunnel decides the port, the header and the loopback dial") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;

    struct Row {
        const char* what;
        const char* local;
        const char* target;
        bool localhost;
        const char* upstream;
        const char* connect_to;
        bool from_loopback;
        bool header;
    } rows[] = {
            {"no tunnel: the target as it is", "plain", "198.18.5.31:8080", true,
             "198.18.5.31:8080", "198.18.5.31:8080", false, false},
            {"NONE with a port: only the port changes", "tunnel-none-port", "198.18.5.23:8080",
             true, "198.18.5.23:9000", "198.18.5.23:9000", false, false},
            {"NONE without a port: nothing changes", "tunnel-none", "198.18.5.21:8080", true,
             "198.18.5.21:8080", "198.18.5.21:8080", false, false},
            {"PROXY: its port, from and to loopback, a header", "tunnel", "198.18.5.20:8080", true,
             "198.18.5.20:15088", "127.0.0.1:15088", true, true},
            {"PROXY to an IPv6 target: IPv6 loopback", "tunnel", "[2001:db8:5::20]:8080", true,
             "[2001:db8:5::20]:15088", "[::1]:15088", true, true},
            {"PROXY without LOCALHOST_APP_TUNNEL: the pod's address", "tunnel", "198.18.5.20:8080",
             false, "198.18.5.20:15088", "198.18.5.20:15088", false, true},
            {"PROXY without a port: the resolved port", "tunnel-proxy-no-port", "198.18.5.22:8080",
             true, "198.18.5.22:8080", "127.0.0.1:8080", true, true},
    };

    auto header_destination = addr("198.19.5.1:80");
    for (const Row& row : rows) {
        std::string what = row.what;
        INFO(what);
        auto decision = zt::proxy::decide_app_tunnel(by_name(snap, row.local), addr(row.target),
                                                     header_destination, row.localhost);
        CHECK(decision.upstream.to_string() == row.upstream);
        CHECK(decision.connect_to.to_string() == row.connect_to);
        CHECK(decision.from_loopback == row.from_loopback);
        CHECK(decision.send_proxy_header == row.header);
        if (row.header) {
            CHECK(decision.header_destination == header_destination);
        }
    }
}

TEST_CASE("waypoint: RBAC sees the waypoint as the source of the traffic it sends on") {
    auto loaded = zt::config::load_text(with_policies());
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    auto waypoint_id = zt::certs::Identity::parse("spiffe://cluster.local/ns/ns/sa/waypoint");
    auto client_id = zt::certs::Identity::parse("spiffe://cluster.local/ns/ns/sa/client");
    REQUIRE(waypoint_id);
    REQUIRE(client_id);

    // server admits only the waypoint: the waypoint's stream is allowed, a client's denied.
    const auto& server = by_name(snap, "server");
    auto plain = zt::proxy::decide_app_tunnel(server, addr("198.18.5.2:8080"),
                                              addr("198.18.5.2:8080"), true);
    auto from_waypoint =
            zt::proxy::inbound_rbac_connection(addr("198.18.5.10:40000"), *waypoint_id, plain);
    CHECK(from_waypoint.src.to_string() == "198.18.5.10:40000");
    CHECK(from_waypoint.dst.to_string() == "198.18.5.2:8080");
    CHECK(from_waypoint.src_identity->principal() == "cluster.local/ns/ns/sa/waypoint");
    CHECK(zt::proxy::evaluate(snap.policies_for(server), from_waypoint).allowed);
    auto from_client =
            zt::proxy::inbound_rbac_connection(addr("198.18.5.40:40000"), *client_id, plain);
    auto denied = zt::proxy::evaluate(snap.policies_for(server), from_client);
    CHECK_FALSE(denied.allowed);
    CHECK(denied.reason == "allow policies exist, but none allowed");

    // With a PROXY tunnel RBAC sees the pod's address on the tunnel port, not loopback.
    const auto& tunnel = by_name(snap, "tunnel");
    auto proxied = zt::proxy::decide_app_tunnel(tunnel, addr("198.18.5.20:8080"),
                                                addr("198.19.5.1:80"), true);
    auto connection =
            zt::proxy::inbound_rbac_connection(addr("198.18.5.10:40000"), *waypoint_id, proxied);
    // The application behind the tunnel learns the client and the authority from the header.
    auto header = zt::proxy::proxy_header(addr("198.18.5.10:40000"), *waypoint_id, proxied);
    REQUIRE(header);
    auto parsed = zt::hbone::parse_proxy_v2(*header);
    REQUIRE(parsed.status == zt::hbone::ProxyParseStatus::complete);
    CHECK(parsed.header.source.ip[0] == 198);
    CHECK(parsed.header.source.ip[3] == 10);
    CHECK(parsed.header.source.port == 40000);
    CHECK(parsed.header.destination.ip[1] == 19);
    CHECK(parsed.header.destination.port == 80);
    CHECK(parsed.header.peer_identity() == "spiffe://cluster.local/ns/ns/sa/waypoint");
    CHECK(connection.dst.to_string() == "198.18.5.20:15088");
    CHECK(zt::proxy::evaluate(snap.policies_for(tunnel), connection).allowed);
    auto untunnelled = zt::proxy::inbound_rbac_connection(
            addr("198.18.5.10:40000"), *waypoint_id,
            zt::proxy::decide_app_tunnel(by_name(snap, "plain"), addr("198.18.5.20:8080"),
                                         addr("198.19.5.1:80"), true));
    CHECK_FALSE(zt::proxy::evaluate(snap.policies_for(tunnel), untunnelled).allowed);
}
