// Table tests for plan_outbound through waypoints, ztunnel's `build_request` waypoint cases:
// service and workload waypoints (by address and by hostname), the source that is itself the
// waypoint, weighted waypoints, an application tunnel behind a waypoint, references that resolve
// to nothing, and the error text each refusal carries to the access log. One row per case; the
// mesh mirrors ztunnel's test state.

#include <numeric>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/proxy/route.h"

using zt::proxy::PlanKind;
using zt::proxy::RefuseReason;

namespace {

std::string comma_separated(const std::vector<std::string>& items) {
    return std::accumulate(items.begin(), items.end(), std::string(),
                           [](std::string out, const std::string& item) {
                               return out.empty() ? item : out + "," + item;
                           });
}

}  // namespace

namespace {

// kWaypointMesh mirrors ztunnel's build_request test state (a source, a waypoint, a dual-stack
// waypoint sharing its service account) with this project's addresses, plus waypoints by
// hostname (a service, a workload's `hostname`), weighted waypoints, a waypoint service whose
// endpoint runs an application tunnel, and references that resolve to nothing.
constexpr std::string_view kWaypointMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns/source-workload", "name": "source-workload", "namespace": "ns",
     "workloadIps": ["198.18.4.1", "2001:db8:4::1"], "node": "local-node", "services": {}},
    {"uid": "c//Pod/ns/waypoint-workload", "name": "waypoint-workload", "namespace": "ns",
     "serviceAccount": "waypoint-sa", "workloadIps": ["198.18.4.10"], "node": "local-node",
     "services": {}},
    {"uid": "c//Pod/ns/waypoint-workload-dual", "name": "waypoint-workload-dual",
     "namespace": "ns", "serviceAccount": "waypoint-sa",
     "workloadIps": ["198.18.4.11", "2001:db8:4::c5"], "services": {}},
    {"uid": "c//Pod/ns/pod-wp", "name": "pod-wp", "namespace": "ns",
     "workloadIps": ["198.18.4.2"],
     "waypoint": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/pod-wp-dual", "name": "pod-wp-dual", "namespace": "ns",
     "workloadIps": ["198.18.4.3", "2001:db8:4::c3"],
     "waypoint": {"destination": "/198.18.4.11", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/pod-wp-host", "name": "pod-wp-host", "namespace": "ns",
     "workloadIps": ["198.18.4.4", "2001:db8:4::4"], "protocol": "HBONE",
     "waypoint": {"destination": "ns/waypoint.ns.svc", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/pod-wp-workload-host", "name": "pod-wp-workload-host", "namespace": "ns",
     "workloadIps": ["198.18.4.5"],
     "waypoint": {"destination": "ns/wp-by-host.example", "hboneMtlsPort": 15008},
     "services": {}},
    {"uid": "c//Pod/ns/pod-wp-unknown", "name": "pod-wp-unknown", "namespace": "ns",
     "workloadIps": ["198.18.4.6"],
     "waypoint": {"destination": "/198.18.4.250", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/pod-wp-unknown-host", "name": "pod-wp-unknown-host", "namespace": "ns",
     "workloadIps": ["198.18.4.7"],
     "waypoint": {"destination": "ns/nothing.ns.svc", "hboneMtlsPort": 15008}, "services": {}},
    {"uid": "c//Pod/ns/wp-host-workload", "name": "wp-host-workload", "namespace": "ns",
     "serviceAccount": "wp-host", "hostname": "wp-by-host.example",
     "workloadIps": ["198.18.4.12"], "services": {}},
    {"uid": "c//Pod/ns/wp-svc-pod", "name": "wp-svc-pod", "namespace": "ns",
     "serviceAccount": "waypoint-svc-sa", "workloadIps": ["198.18.4.13", "2001:db8:4::d"],
     "services": {"ns/waypoint.ns.svc": {"80": 8080}}},
    {"uid": "c//Pod/ns/server", "name": "server", "namespace": "ns", "serviceAccount": "server",
     "workloadIps": ["198.18.4.20"], "protocol": "HBONE",
     "services": {"ns/svc-zero-weights": {}}},
    {"uid": "c//Pod/ns/remote-wp", "name": "remote-wp", "namespace": "ns", "network": "net2",
     "serviceAccount": "remote-wp", "workloadIps": ["198.18.4.30"], "services": {}},
    {"uid": "c//Pod/ns/tunnel-wp", "name": "tunnel-wp", "namespace": "ns",
     "serviceAccount": "tunnel-wp", "workloadIps": ["198.18.4.40"],
     "applicationTunnel": {"protocol": "PROXY", "port": 15088},
     "services": {"ns/tunnel-wp.ns.svc": {}}},
    {"uid": "c//Pod/ns/plain-wp", "name": "plain-wp", "namespace": "ns",
     "serviceAccount": "plain-wp", "workloadIps": ["198.18.4.41"],
     "services": {"ns/plain-wp.ns.svc": {}}}
  ],
  "services": [
    {"name": "waypoint", "namespace": "ns", "hostname": "waypoint.ns.svc",
     "vips": ["/198.19.4.100"], "ports": {"15008": 15008},
     "subjectAltNames": ["spiffe://cluster.local/ns/ns/sa/waypoint-svc-extra"]},
    {"name": "tunnel-wp", "namespace": "ns", "hostname": "tunnel-wp.ns.svc",
     "vips": ["/198.19.4.101"], "ports": {"80": 80}},
    {"name": "plain-wp", "namespace": "ns", "hostname": "plain-wp.ns.svc",
     "vips": ["/198.19.4.102"], "ports": {"80": 80}},
    {"name": "svc-wp", "namespace": "ns", "hostname": "svc-wp", "vips": ["/198.19.4.3"],
     "ports": {"80": 8080}, "waypoint": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008}},
    {"name": "svc-pt", "namespace": "ns", "hostname": "svc-pt",
     "vips": ["/198.19.4.4", "/198.19.5.7"], "ports": {"80": 80},
     "loadBalancer": {"mode": "Passthrough", "routingPreferences": [],
                      "healthPolicy": "OnlyHealthy"}},
    {"name": "svc-empty", "namespace": "ns", "hostname": "svc-empty", "vips": ["/198.19.4.5"],
     "ports": {"80": 8080}},
    {"name": "svc-pt-wp", "namespace": "ns", "hostname": "svc-pt-wp",
     "vips": ["/198.19.4.6", "/198.19.5.8"], "ports": {"80": 80},
     "waypoint": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008},
     "loadBalancer": {"mode": "Passthrough", "routingPreferences": [],
                      "healthPolicy": "OnlyHealthy"}},
    {"name": "svc-weighted", "namespace": "ns", "hostname": "svc-weighted",
     "vips": ["/198.19.4.7"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008},
     "weightedWaypoints": [
       {"destination": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008}, "weight": 1},
       {"destination": {"destination": "/198.18.4.11", "hboneMtlsPort": 15008}, "weight": 3}]},
    {"name": "svc-zero-weights-wp", "namespace": "ns", "hostname": "svc-zero-weights-wp",
     "vips": ["/198.19.4.8"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.18.4.11", "hboneMtlsPort": 15008},
     "weightedWaypoints": [
       {"destination": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008}, "weight": 0}]},
    {"name": "svc-zero-weights", "namespace": "ns", "hostname": "svc-zero-weights",
     "vips": ["/198.19.4.9"], "ports": {"80": 8080},
     "weightedWaypoints": [
       {"destination": {"destination": "/198.18.4.10", "hboneMtlsPort": 15008}, "weight": 0}]},
    {"name": "svc-wp-host", "namespace": "ns", "hostname": "svc-wp-host",
     "vips": ["/198.19.4.10", "/2001:db8:ffff::10"], "ports": {"80": 8080},
     "waypoint": {"destination": "ns/waypoint.ns.svc", "hboneMtlsPort": 15008}},
    {"name": "svc-wp-remote", "namespace": "ns", "hostname": "svc-wp-remote",
     "vips": ["/198.19.4.11"], "ports": {"80": 8080},
     "waypoint": {"destination": "net2/198.18.4.30", "hboneMtlsPort": 15008}},
    {"name": "svc-wp-tunnel-vip", "namespace": "ns", "hostname": "svc-wp-tunnel-vip",
     "vips": ["/198.19.4.12"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.19.4.101", "hboneMtlsPort": 15008}},
    {"name": "svc-wp-plain-vip", "namespace": "ns", "hostname": "svc-wp-plain-vip",
     "vips": ["/198.19.4.13"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.19.4.102", "hboneMtlsPort": 15008}}
  ]
})";

struct WaypointRow {
    const char* what;
    const char* source;     // Workload name.
    const char* source_ip;  // "" for none.
    const char* destination;
    uint64_t waypoint_random;
    PlanKind kind;
    const char* connect_to;  // dst.addr; "" when refused.
    const char* authority;   // dst.hbone_addr.
    const char* identities;
    RefuseReason reason;
    const char* upstream;  // Plan::upstream's name (dst.workload), "" for none.
    const char* service;   // Plan::service's name (dst.service), "" for none.
    const char* final;     // Plan::final_destination's name, "" for none.
};

const char* name_of(const zt::state::Workload* workload) {
    return workload == nullptr ? "" : workload->name.c_str();
}

const char* name_of(const zt::state::Service* service) {
    return service == nullptr ? "" : service->name.c_str();
}

constexpr const char* kWaypointId = "spiffe://cluster.local/ns/ns/sa/waypoint-sa";

}  // namespace

TEST_CASE("route: waypoints are followed as ztunnel's build_request follows them") {
    auto loaded = zt::config::load_text(kWaypointMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const char* src = "source-workload";
    const char* src_ip = "198.18.4.1";
    const WaypointRow rows[] = {
            // ztunnel's build_request_* cases.
            {"source_waypoint: the source's own waypoint is not used", src, "198.18.4.2",
             "198.18.4.1:80", 0, PlanKind::tcp, "198.18.4.1:80", "", "", RefuseReason::none,
             "source-workload", "", "source-workload"},
            {"destination_waypoint: a workload's waypoint, HBONE even to a TCP workload", src,
             src_ip, "198.18.4.2:80", 0, PlanKind::hbone, "198.18.4.10:15008", "198.18.4.2:80",
             kWaypointId, RefuseReason::none, "waypoint-workload", "", "pod-wp"},
            {"destination_waypoint_mismatch_ip: the waypoint's IP whatever the family", src, src_ip,
             "[2001:db8:4::c3]:80", 0, PlanKind::hbone, "198.18.4.11:15008", "[2001:db8:4::c3]:80",
             kWaypointId, RefuseReason::none, "waypoint-workload-dual", "", "pod-wp-dual"},
            {"destination_svc_waypoint: the VIP is the authority, untranslated", src, src_ip,
             "198.19.4.3:80", 0, PlanKind::hbone, "198.18.4.10:15008", "198.19.4.3:80", kWaypointId,
             RefuseReason::none, "waypoint-workload", "svc-wp", ""},
            {"empty_service: no endpoint, no waypoint", src, src_ip, "198.19.4.5:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::no_healthy_upstream, "", "", ""},
            {"passthrough_svc", src, src_ip, "198.19.4.4:80", 0, PlanKind::passthrough,
             "198.19.4.4:80", "", "", RefuseReason::none, "", "svc-pt", ""},
            {"passthrough_svc_with_waypoint: the waypoint still comes first", src, src_ip,
             "198.19.4.6:80", 0, PlanKind::hbone, "198.18.4.10:15008", "198.19.4.6:80", kWaypointId,
             RefuseReason::none, "waypoint-workload", "svc-pt-wp", ""},
            // Weighted waypoints: weights 1 and 3.
            {"weighted waypoints: draw 0 of 4 is the first", src, src_ip, "198.19.4.7:80", 0,
             PlanKind::hbone, "198.18.4.10:15008", "198.19.4.7:80", kWaypointId, RefuseReason::none,
             "waypoint-workload", "svc-weighted", ""},
            {"weighted waypoints: draw 1 of 4 is the second", src, src_ip, "198.19.4.7:80", 1,
             PlanKind::hbone, "198.18.4.11:15008", "198.19.4.7:80", kWaypointId, RefuseReason::none,
             "waypoint-workload-dual", "svc-weighted", ""},
            {"weighted waypoints: draw 3 of 4 is the second", src, src_ip, "198.19.4.7:80", 3,
             PlanKind::hbone, "198.18.4.11:15008", "198.19.4.7:80", kWaypointId, RefuseReason::none,
             "waypoint-workload-dual", "svc-weighted", ""},
            {"weighted waypoints: draw 4 wraps to the first", src, src_ip, "198.19.4.7:80", 4,
             PlanKind::hbone, "198.18.4.10:15008", "198.19.4.7:80", kWaypointId, RefuseReason::none,
             "waypoint-workload", "svc-weighted", ""},
            {"weighted waypoints all of weight 0: the single waypoint", src, src_ip,
             "198.19.4.8:80", 0, PlanKind::hbone, "198.18.4.11:15008", "198.19.4.8:80", kWaypointId,
             RefuseReason::none, "waypoint-workload-dual", "svc-zero-weights-wp", ""},
            {"weighted waypoints all of weight 0 and no waypoint: no waypoint at all", src, src_ip,
             "198.19.4.9:80", 0, PlanKind::hbone, "198.18.4.20:15008", "198.18.4.20:8080",
             "spiffe://cluster.local/ns/ns/sa/server", RefuseReason::none, "server",
             "svc-zero-weights", "server"},
            // Waypoints by hostname.
            {"service waypoint named by hostname: its endpoint on the service's port, its SANs",
             src, src_ip, "198.19.4.10:80", 0, PlanKind::hbone, "198.18.4.13:15008",
             "198.19.4.10:80",
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-sa,"
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-extra",
             RefuseReason::none, "wp-svc-pod", "svc-wp-host", ""},
            {"waypoint by hostname keeps an IPv6 destination's family", src, src_ip,
             "[2001:db8:ffff::10]:80", 0, PlanKind::hbone, "[2001:db8:4::d]:15008",
             "[2001:db8:ffff::10]:80",
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-sa,"
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-extra",
             RefuseReason::none, "wp-svc-pod", "svc-wp-host", ""},
            {"workload waypoint by hostname, IPv4 destination", src, src_ip, "198.18.4.4:80", 0,
             PlanKind::hbone, "198.18.4.13:15008", "198.18.4.4:80",
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-sa,"
             "spiffe://cluster.local/ns/ns/sa/waypoint-svc-extra",
             RefuseReason::none, "wp-svc-pod", "", "pod-wp-host"},
            {"waypoint named by a workload's hostname field", src, src_ip, "198.18.4.5:80", 0,
             PlanKind::hbone, "198.18.4.12:15008", "198.18.4.5:80",
             "spiffe://cluster.local/ns/ns/sa/wp-host", RefuseReason::none, "wp-host-workload", "",
             "pod-wp-workload-host"},
            // References that cannot work.
            {"waypoint IP with nothing there", src, src_ip, "198.18.4.6:80", 0, PlanKind::refuse,
             "", "", "", RefuseReason::unknown_waypoint, "", "", ""},
            {"waypoint hostname with nothing by that name", src, src_ip, "198.18.4.7:80", 0,
             PlanKind::refuse, "", "", "", RefuseReason::unknown_waypoint, "", "", ""},
            {"service waypoint on another network needs double HBONE", src, src_ip,
             "198.19.4.11:80", 0, PlanKind::refuse, "", "", "", RefuseReason::cross_network,
             "remote-wp", "", ""},
            {"waypoint VIP lacking the port: its tunnelled endpoint takes it", src, src_ip,
             "198.19.4.12:80", 0, PlanKind::hbone, "198.18.4.40:15008", "198.19.4.12:80",
             "spiffe://cluster.local/ns/ns/sa/tunnel-wp", RefuseReason::none, "tunnel-wp",
             "svc-wp-tunnel-vip", ""},
            {"waypoint VIP lacking the port, endpoint without a tunnel: unknown", src, src_ip,
             "198.19.4.13:80", 0, PlanKind::refuse, "", "", "", RefuseReason::unknown_waypoint, "",
             "", ""},
            // check_from_waypoint: identity AND IP.
            {"the waypoint itself sends on to the workload behind it directly", "waypoint-workload",
             "198.18.4.10", "198.18.4.2:80", 0, PlanKind::tcp, "198.18.4.2:80", "", "",
             RefuseReason::none, "pod-wp", "", "pod-wp"},
            {"the waypoint's identity from another IP is not the waypoint", "waypoint-workload",
             "198.18.4.99", "198.18.4.2:80", 0, PlanKind::hbone, "198.18.4.10:15008",
             "198.18.4.2:80", kWaypointId, RefuseReason::none, "waypoint-workload", "", "pod-wp"},
            {"the waypoint's IP with another identity is not the waypoint", src, "198.18.4.10",
             "198.18.4.2:80", 0, PlanKind::hbone, "198.18.4.10:15008", "198.18.4.2:80", kWaypointId,
             RefuseReason::none, "waypoint-workload", "", "pod-wp"},
            {"a workload sharing the waypoint's service account is not the waypoint",
             "waypoint-workload-dual", "198.18.4.11", "198.18.4.2:80", 0, PlanKind::hbone,
             "198.18.4.10:15008", "198.18.4.2:80", kWaypointId, RefuseReason::none,
             "waypoint-workload", "", "pod-wp"},
            {"without the client's IP the source is never the waypoint", "waypoint-workload", "",
             "198.18.4.2:80", 0, PlanKind::hbone, "198.18.4.10:15008", "198.18.4.2:80", kWaypointId,
             RefuseReason::none, "waypoint-workload", "", "pod-wp"},
            {"an endpoint of a waypoint service is that waypoint", "wp-svc-pod", "198.18.4.13",
             "198.18.4.4:80", 0, PlanKind::hbone, "198.18.4.4:15008", "198.18.4.4:80",
             "spiffe://cluster.local/ns/ns/sa/default", RefuseReason::none, "pod-wp-host", "",
             "pod-wp-host"},
            {"a service's waypoint is followed even from the waypoint (ztunnel checks workload "
             "waypoints only)",
             "waypoint-workload", "198.18.4.10", "198.19.4.3:80", 0, PlanKind::hbone,
             "198.18.4.10:15008", "198.19.4.3:80", kWaypointId, RefuseReason::none,
             "waypoint-workload", "svc-wp", ""},
    };
    for (const WaypointRow& row : rows) {
        std::string what = row.what;
        INFO(what);
        const zt::state::Workload* source = nullptr;
        for (const auto& w : snap.workloads()) {
            source = w.name == row.source ? &w : source;
        }
        REQUIRE(source);
        auto destination = zt::state::SocketAddr::parse(row.destination);
        REQUIRE(destination);
        zt::proxy::RouteOptions options;
        options.waypoint_random = row.waypoint_random;
        if (*row.source_ip != '\0') {
            options.source_ip = zt::state::IpAddr::parse(row.source_ip);
        }
        auto plan = zt::proxy::plan_outbound(snap, *source, *destination, options);
        CHECK(zt::proxy::to_string(plan.kind) == zt::proxy::to_string(row.kind));
        CHECK(zt::proxy::to_string(plan.reason) == zt::proxy::to_string(row.reason));
        if (row.kind != PlanKind::refuse) {
            CHECK(plan.connect_to.to_string() == row.connect_to);
        }
        CHECK(plan.authority == row.authority);
        CHECK(comma_separated(plan.expected_identities) == row.identities);
        CHECK(std::string(name_of(plan.upstream)) == row.upstream);
        CHECK(std::string(name_of(plan.service)) == row.service);
        CHECK(std::string(name_of(plan.final_destination)) == row.final);
        if (row.kind != PlanKind::refuse) {
            CHECK((plan.waypoint != nullptr) == (std::string_view(row.upstream) != row.final));
        }
    }
}

TEST_CASE("route: refusals carry ztunnel's error text for the access log") {
    auto loaded = zt::config::load_text(kWaypointMesh);
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* source = snap.workload_by_uid("c//Pod/ns/source-workload");
    REQUIRE(source);

    struct Row {
        const char* destination;
        const char* error;
    } rows[] = {
            {"127.0.0.1:15008", "attempted recursive call to ourselves"},
            {"198.19.4.5:80", "no healthy upstream: 198.19.4.5:80"},
            {"198.18.4.6:80", "unknown waypoint: waypoint /198.18.4.250 not found"},
            {"198.18.4.7:80", "unknown waypoint: waypoint ns/nothing.ns.svc not found"},
            {"198.19.4.11:80", "unsupported feature: double HBONE to network \"net2\""},
            {"198.18.4.2:80", ""},
            {"198.19.4.3:80", ""},
    };

    for (const Row& row : rows) {
        std::string what = row.destination;
        INFO(what);
        zt::proxy::RouteOptions options;
        auto destination = *zt::state::SocketAddr::parse(row.destination);
        auto plan = zt::proxy::plan_outbound(snap, *source, destination, options);
        CHECK(zt::proxy::refuse_error(plan, destination) == row.error);
    }
    // A hostname-only waypoint is not resolved on demand: no usable IP.
    auto dns_only = zt::config::load_text(R"({"workloads": [
        {"uid": "c//Pod/d/client", "namespace": "d", "workloadIps": ["198.18.8.1"], "services": {}},
        {"uid": "c//Pod/d/wp", "name": "wp", "namespace": "d", "hostname": "wp.example",
         "workloadIps": [], "protocol": "HBONE", "services": {}},
        {"uid": "c//Pod/d/server", "namespace": "d", "workloadIps": ["198.18.8.2"], "services": {},
         "waypoint": {"destination": "d/wp.example", "hboneMtlsPort": 15008}}]})");
    REQUIRE(dns_only.snapshot);
    zt::proxy::RouteOptions options;
    auto destination = *zt::state::SocketAddr::parse("198.18.8.2:80");
    auto plan = zt::proxy::plan_outbound(*dns_only.snapshot,
                                         *dns_only.snapshot->workload_by_uid("c//Pod/d/client"),
                                         destination, options);
    CHECK(plan.reason == RefuseReason::no_workload_ip);
    CHECK(zt::proxy::refuse_error(plan, destination) ==
          "no valid routing destination for workload: Workload{wp with uid c//Pod/d/wp (HBONE)}");
}
