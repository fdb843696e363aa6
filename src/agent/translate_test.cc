// Unit tests for the xDS translation: one table per resource kind, one or more rows per field
// (what ztunnel reads, its defaults, what it rejects and what it drops), each row starting from
// a small valid resource and changing one thing. Every row that translates is also rendered
// into a config file and read back by `config::parse`, so no translated resource can stop the
// agent from writing a file; and a whole translated set is rendered and loaded with
// `config::load_text`, the code behind `ztunnel check-config`.

#include "src/agent/translate.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/config/parse.h"
#include "src/config/render.h"

namespace {

namespace xw = istio::workload;
namespace xs = istio::security;
using zt::agent::translate_address;
using zt::agent::translate_authorization;
using zt::agent::TranslateContext;
using zt::state::IpAddr;

// ip_bytes is the raw form of an IP as istiod sends it.
std::string ip_bytes(std::string_view text) {
    auto ip = IpAddr::parse(text);
    REQUIRE(ip.has_value());
    return std::string(ip->bytes.begin(), ip->bytes.begin() + long(ip->size()));
}

IpAddr ip(std::string_view text) {
    return *IpAddr::parse(text);
}

zt::state::Cidr cidr(std::string_view text) {
    return *zt::state::Cidr::parse(text);
}

bool has_text(const std::vector<std::string>& lines, std::string_view text) {
    for (const auto& line : lines) {
        if (line.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) {
        out += line + "\n";
    }
    return out;
}

// check_loads renders `config` and checks that parse reads back exactly the same structs: what
// the agent translates must never make the file it writes invalid.
void check_loads(const zt::state::Config& config) {
    std::string text = zt::config::render(config);
    auto parsed = zt::config::parse(text);
    INFO(text);
    INFO(joined(parsed.errors));
    CHECK(parsed.errors.empty());
    parsed.config.unsupported.clear();
    CHECK(parsed.config == config);
}

// --- workloads -------------------------------------------------------------------------------

xw::Workload base_workload() {
    xw::Workload w;
    w.set_uid("Kubernetes//Pod/ns1/pod-a");
    w.set_name("pod-a");
    w.set_namespace_("ns1");
    w.add_addresses(ip_bytes("198.18.1.2"));
    return w;
}

struct WorkloadRow {
    const char* what;
    void (*edit)(xw::Workload&);
    void (*check)(const zt::state::Workload&);  // Rows that translate.
    const char* error = nullptr;                // Rows that are rejected: part of the reason.
    const char* warning = nullptr;              // Part of a warning the row must produce.
};

const WorkloadRow
        kWorkloadRows
                [] =
                        {
                                {"uid, name and namespace are copied", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.uid == "Kubernetes//Pod/ns1/pod-a");
                                     CHECK(w.name == "pod-a");
                                     CHECK(w.namespace_ == "ns1");
                                 }},
                                {"an empty uid cannot be carried",
                                 [](xw::Workload& w) { w.clear_uid(); }, nullptr, "uid: empty uid"},
                                {"an empty namespace cannot be carried",
                                 [](xw::Workload& w) { w.clear_namespace_(); }, nullptr,
                                 "namespace: empty namespace"},
                                {"addresses: IPv4 and IPv6 bytes, in order",
                                 [](xw::Workload& w) { w.add_addresses(ip_bytes("2001:db8::7")); },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.workload_ips.size() == 2);
                                     CHECK(w.workload_ips[0] == ip("198.18.1.2"));
                                     CHECK(w.workload_ips[1] == ip("2001:db8::7"));
                                 }},
                                {"addresses: IPv4-mapped IPv6 stays IPv6",
                                 [](xw::Workload& w) {
                                     w.set_addresses(0, ip_bytes("::ffff:198.18.1.2"));
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_ips.at(0) == ip("::ffff:198.18.1.2"));
                                     CHECK(w.workload_ips.at(0).v6);
                                 }},
                                {"addresses: none (a hostname-only workload)",
                                 [](xw::Workload& w) { w.clear_addresses(); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_ips.empty());
                                 }},
                                {"addresses: 5 bytes are rejected",
                                 [](xw::Workload& w) { w.add_addresses("\x01\x02\x03\x04\x05"); },
                                 nullptr, "addresses[1]: failed to parse address, had 5 bytes"},
                                {"addresses: 0 bytes are rejected",
                                 [](xw::Workload& w) { w.set_addresses(0, ""); }, nullptr,
                                 "addresses[0]: failed to parse address, had 0 bytes"},
                                {"addresses: 15 bytes are rejected",
                                 [](xw::Workload& w) {
                                     w.set_addresses(0, std::string(15, '\x01'));
                                 },
                                 nullptr, "had 15 bytes"},
                                {"hostname is copied",
                                 [](xw::Workload& w) { w.set_hostname("vm.example.com"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.hostname == "vm.example.com");
                                 }},
                                {"network is copied",
                                 [](xw::Workload& w) { w.set_network("net-2"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.network == "net-2");
                                 }},
                                {"tunnel protocol NONE is TCP",
                                 [](xw::Workload& w) { w.set_tunnel_protocol(xw::NONE); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.protocol == zt::state::Protocol::tcp);
                                 }},
                                {"tunnel protocol HBONE",
                                 [](xw::Workload& w) { w.set_tunnel_protocol(xw::HBONE); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.protocol == zt::state::Protocol::hbone);
                                 }},
                                {"tunnel protocol LEGACY_ISTIO_MTLS is rejected",
                                 [](xw::Workload& w) {
                                     w.set_tunnel_protocol(xw::LEGACY_ISTIO_MTLS);
                                 },
                                 nullptr,
                                 "tunnel_protocol: unsupported tunnel protocol: legacy istio mtls"},
                                {"tunnel protocol unknown is rejected",
                                 [](xw::Workload& w) {
                                     w.set_tunnel_protocol(xw::TunnelProtocol(7));
                                 },
                                 nullptr, "tunnel_protocol: unknown enum value 7"},
                                {"trust domain empty: the default", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.trust_domain == "cluster.local");
                                 }},
                                {"trust domain set is kept",
                                 [](xw::Workload& w) { w.set_trust_domain("td.example"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.trust_domain == "td.example");
                                 }},
                                {"service account empty is \"default\"", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.service_account == "default");
                                     CHECK(w.identity("") ==
                                           "spiffe://cluster.local/ns/ns1/sa/default");
                                 }},
                                {"service account set is kept",
                                 [](xw::Workload& w) { w.set_service_account("sa-a"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.service_account == "sa-a");
                                 }},
                                {"an identity that is not a SPIFFE ID is rejected",
                                 [](xw::Workload& w) { w.set_service_account("a/b"); }, nullptr,
                                 "do not form a SPIFFE ID: "
                                 "\"spiffe://cluster.local/ns/ns1/sa/a/b\""},
                                {"a trust domain that is not one is rejected",
                                 [](xw::Workload& w) { w.set_trust_domain("Bad Domain"); }, nullptr,
                                 "trust_domain: trust domain, namespace and service account"},
                                {"waypoint by address",
                                 [](xw::Workload& w) {
                                     auto* wp = w.mutable_waypoint();
                                     wp->mutable_address()->set_network("net-1");
                                     wp->mutable_address()->set_address(ip_bytes("198.19.0.5"));
                                     wp->set_hbone_mtls_port(15008);
                                 },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.waypoint.has_value());
                                     REQUIRE(w.waypoint->address.has_value());
                                     CHECK(w.waypoint->address->network == "net-1");
                                     CHECK(w.waypoint->address->ip == ip("198.19.0.5"));
                                     CHECK_FALSE(w.waypoint->host.has_value());
                                     CHECK(w.waypoint->hbone_mtls_port == 15008);
                                 }},
                                {"waypoint by hostname",
                                 [](xw::Workload& w) {
                                     auto* wp = w.mutable_waypoint();
                                     wp->mutable_hostname()->set_namespace_("ns1");
                                     wp->mutable_hostname()->set_hostname(
                                             "waypoint.ns1.svc.cluster.local");
                                     wp->set_hbone_mtls_port(15019);
                                 },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.waypoint.has_value());
                                     REQUIRE(w.waypoint->host.has_value());
                                     CHECK(w.waypoint->host->to_string() ==
                                           "ns1/waypoint.ns1.svc.cluster.local");
                                     CHECK(w.waypoint->hbone_mtls_port == 15019);
                                 }},
                                {"waypoint port 0 is kept as ztunnel keeps it",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->mutable_address()->set_address(
                                             ip_bytes("198.19.0.5"));
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.waypoint->hbone_mtls_port == 0);
                                 }},
                                {"waypoint with no destination is rejected",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->set_hbone_mtls_port(15008);
                                 },
                                 nullptr, "waypoint: nonempty gateway address is missing address"},
                                {"waypoint address of 3 bytes is rejected",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->mutable_address()->set_address("abc");
                                 },
                                 nullptr,
                                 "waypoint.address.address: failed to parse address, had 3 bytes"},
                                {"waypoint port above 65535 is rejected",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->mutable_address()->set_address(
                                             ip_bytes("198.19.0.5"));
                                     w.mutable_waypoint()->set_hbone_mtls_port(80000);
                                 },
                                 nullptr, "waypoint.hbone_mtls_port: 80000 is not a port"},
                                {"waypoint hostname that reads as network/ip cannot be carried",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->mutable_hostname()->set_namespace_(
                                             "ns1");
                                     w.mutable_waypoint()->mutable_hostname()->set_hostname(
                                             "198.19.0.5");
                                 },
                                 nullptr, "reads as network/ip"},
                                {"waypoint hostname without namespace cannot be carried",
                                 [](xw::Workload& w) {
                                     w.mutable_waypoint()->mutable_hostname()->set_hostname(
                                             "wp.svc");
                                 },
                                 nullptr,
                                 "waypoint.hostname: namespaced hostname \"/wp.svc\" cannot be "
                                 "carried"},
                                {"network gateway by address",
                                 [](xw::Workload& w) {
                                     auto* gw = w.mutable_network_gateway();
                                     gw->mutable_address()->set_network("net-2");
                                     gw->mutable_address()->set_address(ip_bytes("2001:db8::99"));
                                     gw->set_hbone_mtls_port(15008);
                                 },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.network_gateway.has_value());
                                     CHECK(w.network_gateway->address->to_string() ==
                                           "net-2/2001:db8::99");
                                     CHECK_FALSE(w.waypoint.has_value());
                                 }},
                                {"network gateway with no destination is rejected",
                                 [](xw::Workload& w) { w.mutable_network_gateway(); }, nullptr,
                                 "network_gateway: nonempty gateway address is missing address"},
                                {"node is copied", [](xw::Workload& w) { w.set_node("node-1"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.node == "node-1");
                                 }},
                                {"canonical name and revision are copied",
                                 [](xw::Workload& w) {
                                     w.set_canonical_name("reviews");
                                     w.set_canonical_revision("v2");
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.canonical_name == "reviews");
                                     CHECK(w.canonical_revision == "v2");
                                 }},
                                {"workload type DEPLOYMENT (the default)", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_type == "deployment");
                                 }},
                                {"workload type CRONJOB",
                                 [](xw::Workload& w) { w.set_workload_type(xw::CRONJOB); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_type == "cronjob");
                                 }},
                                {"workload type POD",
                                 [](xw::Workload& w) { w.set_workload_type(xw::POD); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_type == "pod");
                                 }},
                                {"workload type JOB",
                                 [](xw::Workload& w) { w.set_workload_type(xw::JOB); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_type == "job");
                                 }},
                                {"workload type unknown reads as deployment",
                                 [](xw::Workload& w) { w.set_workload_type(xw::WorkloadType(42)); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_type == "deployment");
                                 }},
                                {"workload name is copied",
                                 [](xw::Workload& w) { w.set_workload_name("reviews-v2"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.workload_name == "reviews-v2");
                                 }},
                                {"cluster id empty: the default", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.cluster_id == "Kubernetes");
                                 }},
                                {"cluster id set is kept",
                                 [](xw::Workload& w) { w.set_cluster_id("cluster-2"); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.cluster_id == "cluster-2");
                                 }},
                                {"locality absent", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK_FALSE(w.locality.has_value());
                                 }},
                                {"locality present",
                                 [](xw::Workload& w) {
                                     w.mutable_locality()->set_region("eu");
                                     w.mutable_locality()->set_zone("eu-1");
                                     w.mutable_locality()->set_subzone("rack-3");
                                 },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.locality.has_value());
                                     CHECK(w.locality->region == "eu");
                                     CHECK(w.locality->zone == "eu-1");
                                     CHECK(w.locality->subzone == "rack-3");
                                 }},
                                {"locality present but empty",
                                 [](xw::Workload& w) { w.mutable_locality(); },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.locality.has_value());
                                     CHECK(w.locality->region.empty());
                                 }},
                                {"services: keys sorted, ports sorted, target 0 (named port) kept",
                                 [](xw::Workload& w) {
                                     auto& services = *w.mutable_services();
                                     auto* b = services["ns1/b.ns1.svc.cluster.local"].add_ports();
                                     b->set_service_port(443);
                                     b->set_target_port(0);
                                     auto* a1 = services["ns1/a.ns1.svc.cluster.local"].add_ports();
                                     a1->set_service_port(8080);
                                     a1->set_target_port(18080);
                                     auto* a2 = services["ns1/a.ns1.svc.cluster.local"].add_ports();
                                     a2->set_service_port(80);
                                     a2->set_target_port(8080);
                                     services["ns2/c.ns2.svc.cluster.local"];
                                 },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.services.size() == 3);
                                     CHECK(w.services[0].service.to_string() ==
                                           "ns1/a.ns1.svc.cluster.local");
                                     CHECK(w.services[0].ports ==
                                           zt::state::PortMap{{80, 8080}, {8080, 18080}});
                                     CHECK(w.services[1].service.to_string() ==
                                           "ns1/b.ns1.svc.cluster.local");
                                     CHECK(w.services[1].ports == zt::state::PortMap{{443, 0}});
                                     CHECK(w.services[2].service.to_string() ==
                                           "ns2/c.ns2.svc.cluster.local");
                                     CHECK(w.services[2].ports.empty());
                                 }},
                                {"services: a repeated service port, the later wins",
                                 [](xw::Workload& w) {
                                     auto& list = (*w.mutable_services())["ns1/a.svc"];
                                     list.add_ports()->set_service_port(80);
                                     list.mutable_ports(0)->set_target_port(1);
                                     list.add_ports()->set_service_port(80);
                                     list.mutable_ports(1)->set_target_port(2);
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.services.at(0).ports == zt::state::PortMap{{80, 2}});
                                 }},
                                {"services: service port 0 is dropped with a warning",
                                 [](xw::Workload& w) {
                                     auto& list = (*w.mutable_services())["ns1/a.svc"];
                                     list.add_ports()->set_target_port(8080);
                                     list.add_ports()->set_service_port(81);
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.services.at(0).ports == zt::state::PortMap{{81, 0}});
                                 },
                                 nullptr,
                                 "services[\"ns1/a.svc\"].ports[0]: service port 0 dropped"},
                                {"services: a target port above 65535 is rejected",
                                 [](xw::Workload& w) {
                                     auto* port = (*w.mutable_services())["ns1/a.svc"].add_ports();
                                     port->set_service_port(80);
                                     port->set_target_port(65536);
                                 },
                                 nullptr,
                                 "services[\"ns1/a.svc\"].ports[0].target_port: 65536 is not a "
                                 "port"},
                                {"services: a service port above 65535 is rejected",
                                 [](xw::Workload& w) {
                                     (*w.mutable_services())["ns1/a.svc"]
                                             .add_ports()
                                             ->set_service_port(65616);
                                 },
                                 nullptr,
                                 "ports[0].service_port: 65616 is not a port (above 65535; ztunnel "
                                 "would truncate"},
                                {"services: a key without '/' is rejected",
                                 [](xw::Workload& w) { (*w.mutable_services())["a.ns1.svc"]; },
                                 nullptr,
                                 "services[\"a.ns1.svc\"]: failed to parse namespaced hostname: "
                                 "\"a.ns1.svc\""},
                                {"services: a key with two '/' cannot be carried",
                                 [](xw::Workload& w) { (*w.mutable_services())["ns1/a/b"]; },
                                 nullptr, "namespaced hostname \"ns1/a/b\" cannot be carried"},
                                {"services: a key with an empty namespace cannot be carried",
                                 [](xw::Workload& w) { (*w.mutable_services())["/a.svc"]; },
                                 nullptr, "cannot be carried in the config file"},
                                {"authorization policies are copied in order",
                                 [](xw::Workload& w) {
                                     w.add_authorization_policies("ns1/z");
                                     w.add_authorization_policies("ns1/a");
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.authorization_policies ==
                                           std::vector<std::string>{"ns1/z", "ns1/a"});
                                 }},
                                {"status HEALTHY (the default)", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.status == zt::state::HealthStatus::healthy);
                                 }},
                                {"status UNHEALTHY",
                                 [](xw::Workload& w) { w.set_status(xw::UNHEALTHY); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.status == zt::state::HealthStatus::unhealthy);
                                 }},
                                {"status unknown is rejected",
                                 [](xw::Workload& w) { w.set_status(xw::WorkloadStatus(3)); },
                                 nullptr, "status: unknown enum value 3"},
                                {"native tunnel",
                                 [](xw::Workload& w) { w.set_native_tunnel(true); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.native_tunnel);
                                 }},
                                {"application tunnel absent", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK_FALSE(w.application_tunnel.has_value());
                                 }},
                                {"application tunnel NONE, port 0 means no port",
                                 [](xw::Workload& w) { w.mutable_application_tunnel(); },
                                 [](const zt::state::Workload& w) {
                                     REQUIRE(w.application_tunnel.has_value());
                                     CHECK(w.application_tunnel->protocol ==
                                           zt::state::ApplicationTunnel::Protocol::none);
                                     CHECK_FALSE(w.application_tunnel->port.has_value());
                                 }},
                                {"application tunnel PROXY with a port",
                                 [](xw::Workload& w) {
                                     w.mutable_application_tunnel()->set_protocol(
                                             xw::ApplicationTunnel::PROXY);
                                     w.mutable_application_tunnel()->set_port(15088);
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.application_tunnel->protocol ==
                                           zt::state::ApplicationTunnel::Protocol::proxy);
                                     CHECK(w.application_tunnel->port == uint16_t(15088));
                                 }},
                                {"application tunnel protocol unknown is rejected",
                                 [](xw::Workload& w) {
                                     w.mutable_application_tunnel()->set_protocol(
                                             xw::ApplicationTunnel::Protocol(2));
                                 },
                                 nullptr, "application_tunnel.protocol: unknown enum value 2"},
                                {"application tunnel port above 65535 is rejected",
                                 [](xw::Workload& w) {
                                     w.mutable_application_tunnel()->set_port(70000);
                                 },
                                 nullptr, "application_tunnel.port: 70000 is not a port"},
                                {"capacity absent is 1", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.capacity == 1);
                                 }},
                                {"capacity 0 is kept (absent differs from 0)",
                                 [](xw::Workload& w) { w.mutable_capacity()->set_value(0); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.capacity == 0);
                                 }},
                                {"capacity 4294967295",
                                 [](xw::Workload& w) {
                                     w.mutable_capacity()->set_value(UINT32_MAX);
                                 },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.capacity == UINT32_MAX);
                                 }},
                                {"network mode STANDARD (the default)", [](xw::Workload&) {},
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.network_mode == zt::state::NetworkMode::standard);
                                 }},
                                {"network mode HOST_NETWORK",
                                 [](xw::Workload& w) { w.set_network_mode(xw::HOST_NETWORK); },
                                 [](const zt::state::Workload& w) {
                                     CHECK(w.network_mode == zt::state::NetworkMode::host_network);
                                 }},
                                {"network mode unknown is rejected",
                                 [](xw::Workload& w) { w.set_network_mode(xw::NetworkMode(5)); },
                                 nullptr, "network_mode: unknown enum value 5"},
};

// --- services --------------------------------------------------------------------------------

xw::Service base_service() {
    xw::Service s;
    s.set_name("reviews");
    s.set_namespace_("ns1");
    s.set_hostname("reviews.ns1.svc.cluster.local");
    auto* vip = s.add_addresses();
    vip->set_address(ip_bytes("198.19.0.10"));
    auto* port = s.add_ports();
    port->set_service_port(80);
    port->set_target_port(8080);
    return s;
}

struct ServiceRow {
    const char* what;
    void (*edit)(xw::Service&);
    void (*check)(const zt::state::Service&);
    const char* error = nullptr;
    const char* warning = nullptr;
};

void set_lb(xw::Service& s, std::initializer_list<xw::LoadBalancing::Scope> scopes,
            xw::LoadBalancing::Mode mode, xw::LoadBalancing::HealthPolicy health) {
    auto* lb = s.mutable_load_balancing();
    for (auto scope : scopes) {
        lb->add_routing_preference(scope);
    }
    lb->set_mode(mode);
    lb->set_health_policy(health);
}

const ServiceRow kServiceRows[] = {
        {"name, namespace and hostname are copied", [](xw::Service&) {},
         [](const zt::state::Service& s) {
             CHECK(s.name == "reviews");
             CHECK(s.namespace_ == "ns1");
             CHECK(s.hostname == "reviews.ns1.svc.cluster.local");
             CHECK(s.key().to_string() == "ns1/reviews.ns1.svc.cluster.local");
             CHECK(s.endpoints.empty());  // Endpoints come from the workloads.
         }},
        {"an empty name is kept", [](xw::Service& s) { s.clear_name(); },
         [](const zt::state::Service& s) {
             CHECK(s.name.empty());
         }},
        {"an empty namespace cannot be carried", [](xw::Service& s) { s.clear_namespace_(); },
         nullptr, "namespace: must not be empty"},
        {"an empty hostname cannot be carried", [](xw::Service& s) { s.clear_hostname(); }, nullptr,
         "hostname: must not be empty"},
        {"addresses without a length are VIPs, with their network",
         [](xw::Service& s) {
             auto* vip = s.add_addresses();
             vip->set_network("net-2");
             vip->set_address(ip_bytes("2001:db8::10"));
         },
         [](const zt::state::Service& s) {
             REQUIRE(s.vips.size() == 2);
             CHECK(s.vips[0].to_string() == "/198.19.0.10");
             CHECK(s.vips[1].to_string() == "net-2/2001:db8::10");
             CHECK(s.cidr_vips.empty());
         }},
        {"addresses with the full length are VIPs",
         [](xw::Service& s) {
             s.mutable_addresses(0)->set_length(32);
             auto* vip = s.add_addresses();
             vip->set_address(ip_bytes("2001:db8::10"));
             vip->set_length(128);
         },
         [](const zt::state::Service& s) {
             CHECK(s.vips.size() == 2);
             CHECK(s.cidr_vips.empty());
         }},
        {"addresses with a shorter length are CIDR VIPs, host bits cleared",
         [](xw::Service& s) {
             s.mutable_addresses(0)->set_address(ip_bytes("198.19.1.7"));
             s.mutable_addresses(0)->set_length(24);
             auto* vip = s.add_addresses();
             vip->set_network("n");
             vip->set_address(ip_bytes("2001:db8:1::5"));
             vip->set_length(48);
         },
         [](const zt::state::Service& s) {
             CHECK(s.vips.empty());
             REQUIRE(s.cidr_vips.size() == 2);
             CHECK(s.cidr_vips[0].network.empty());
             CHECK(s.cidr_vips[0].cidr == cidr("198.19.1.0/24"));
             CHECK(s.cidr_vips[1].network == "n");
             CHECK(s.cidr_vips[1].cidr == cidr("2001:db8:1::/48"));
         }},
        {"an address of length 0 is a CIDR VIP of everything",
         [](xw::Service& s) { s.mutable_addresses(0)->set_length(0); },
         [](const zt::state::Service& s) {
             CHECK(s.cidr_vips.at(0).cidr == cidr("0.0.0.0/0"));
         }},
        {"an address longer than its family allows is rejected",
         [](xw::Service& s) { s.mutable_addresses(0)->set_length(33); }, nullptr,
         "addresses[0].length: invalid cidr: prefix length 33"},
        {"an address of 6 bytes is rejected",
         [](xw::Service& s) { s.mutable_addresses(0)->set_address("abcdef"); }, nullptr,
         "addresses[0].address: failed to parse address, had 6 bytes"},
        {"no addresses (a headless service)", [](xw::Service& s) { s.clear_addresses(); },
         [](const zt::state::Service& s) {
             CHECK(s.vips.empty());
         }},
        {"ports map service port to target port, sorted, 0 target kept",
         [](xw::Service& s) {
             auto* port = s.add_ports();
             port->set_service_port(15);
             port->set_target_port(0);
         },
         [](const zt::state::Service& s) {
             CHECK(s.ports == zt::state::PortMap{{15, 0}, {80, 8080}});
         }},
        {"ports: a repeated service port, the later wins",
         [](xw::Service& s) {
             auto* port = s.add_ports();
             port->set_service_port(80);
             port->set_target_port(9090);
         },
         [](const zt::state::Service& s) {
             CHECK(s.ports == zt::state::PortMap{{80, 9090}});
         }},
        {"ports: service port 0 is dropped with a warning",
         [](xw::Service& s) { s.mutable_ports(0)->set_service_port(0); },
         [](const zt::state::Service& s) { CHECK(s.ports.empty()); }, nullptr,
         "ports[0]: service port 0 dropped"},
        {"ports: a target above 65535 is rejected",
         [](xw::Service& s) { s.mutable_ports(0)->set_target_port(65536); }, nullptr,
         "ports[0].target_port: 65536 is not a port"},
        {"subject alt names that are SPIFFE IDs are kept",
         [](xw::Service& s) {
             s.add_subject_alt_names("spiffe://cluster.local/ns/ns1/sa/reviews");
             s.add_subject_alt_names("spiffe://td.example/ns/ns1/sa/other");
         },
         [](const zt::state::Service& s) {
             CHECK(s.subject_alt_names ==
                   std::vector<std::string>{"spiffe://cluster.local/ns/ns1/sa/reviews",
                                            "spiffe://td.example/ns/ns1/sa/other"});
         }},
        {"a subject alt name that is not a SPIFFE ID cannot be carried",
         [](xw::Service& s) { s.add_subject_alt_names("reviews.example.com"); }, nullptr,
         "subject_alt_names[0]: \"reviews.example.com\" is not a SPIFFE ID"},
        {"waypoint by hostname",
         [](xw::Service& s) {
             s.mutable_waypoint()->mutable_hostname()->set_namespace_("ns1");
             s.mutable_waypoint()->mutable_hostname()->set_hostname("wp.ns1.svc.cluster.local");
             s.mutable_waypoint()->set_hbone_mtls_port(15008);
         },
         [](const zt::state::Service& s) {
             REQUIRE(s.waypoint.has_value());
             CHECK(s.waypoint->host->to_string() == "ns1/wp.ns1.svc.cluster.local");
             CHECK(s.has_waypoint());
         }},
        {"waypoint by address",
         [](xw::Service& s) {
             s.mutable_waypoint()->mutable_address()->set_address(ip_bytes("198.19.0.99"));
             s.mutable_waypoint()->set_hbone_mtls_port(15008);
         },
         [](const zt::state::Service& s) {
             CHECK(s.waypoint->address->to_string() == "/198.19.0.99");
         }},
        {"waypoint with no destination is rejected", [](xw::Service& s) { s.mutable_waypoint(); },
         nullptr, "waypoint: nonempty gateway address is missing address"},
        {"weighted waypoints keep their weights, zero included",
         [](xw::Service& s) {
             auto* a = s.add_weighted_waypoints();
             a->mutable_destination()->mutable_hostname()->set_namespace_("ns1");
             a->mutable_destination()->mutable_hostname()->set_hostname("wp-a.ns1.svc");
             a->mutable_destination()->set_hbone_mtls_port(15008);
             a->set_weight(90);
             auto* b = s.add_weighted_waypoints();
             b->mutable_destination()->mutable_address()->set_address(ip_bytes("198.19.0.98"));
             b->mutable_destination()->set_hbone_mtls_port(15008);
             b->set_weight(0);
         },
         [](const zt::state::Service& s) {
             REQUIRE(s.weighted_waypoints.size() == 2);
             CHECK(s.weighted_waypoints[0].destination.host->to_string() == "ns1/wp-a.ns1.svc");
             CHECK(s.weighted_waypoints[0].weight == 90);
             CHECK(s.weighted_waypoints[1].destination.address->ip == ip("198.19.0.98"));
             CHECK(s.weighted_waypoints[1].weight == 0);
         }},
        {"a weighted waypoint with no destination is rejected",
         [](xw::Service& s) { s.add_weighted_waypoints()->set_weight(1); }, nullptr,
         "weighted_waypoints[0]: nonempty gateway address is missing address"},
        {"a weighted waypoint whose destination has none is rejected",
         [](xw::Service& s) { s.add_weighted_waypoints()->mutable_destination(); }, nullptr,
         "weighted_waypoints[0].destination: nonempty gateway address is missing address"},
        {"load balancing absent", [](xw::Service&) {},
         [](const zt::state::Service& s) {
             CHECK_FALSE(s.load_balancer.has_value());
         }},
        {"load balancing: every scope in order, FAILOVER, ONLY_HEALTHY",
         [](xw::Service& s) {
             using L = xw::LoadBalancing;
             set_lb(s, {L::NETWORK, L::REGION, L::ZONE, L::SUBZONE, L::NODE, L::CLUSTER},
                    L::FAILOVER, L::ONLY_HEALTHY);
         },
         [](const zt::state::Service& s) {
             using P = zt::state::RoutingPreference;
             REQUIRE(s.load_balancer.has_value());
             CHECK(s.load_balancer->routing_preferences ==
                   std::vector<P>{P::network, P::region, P::zone, P::subzone, P::node, P::cluster});
             CHECK(s.load_balancer->mode == zt::state::LoadBalancerMode::failover);
             CHECK(s.load_balancer->health_policy == zt::state::HealthPolicy::only_healthy);
         }},
        {"load balancing: UNSPECIFIED_MODE is Standard, ALLOW_ALL",
         [](xw::Service& s) {
             set_lb(s, {}, xw::LoadBalancing::UNSPECIFIED_MODE, xw::LoadBalancing::ALLOW_ALL);
         },
         [](const zt::state::Service& s) {
             CHECK(s.load_balancer->routing_preferences.empty());
             CHECK(s.load_balancer->mode == zt::state::LoadBalancerMode::standard);
             CHECK(s.health_policy() == zt::state::HealthPolicy::allow_all);
         }},
        {"load balancing: STRICT",
         [](xw::Service& s) {
             set_lb(s, {xw::LoadBalancing::NODE}, xw::LoadBalancing::STRICT,
                    xw::LoadBalancing::ONLY_HEALTHY);
         },
         [](const zt::state::Service& s) {
             CHECK(s.lb_mode() == zt::state::LoadBalancerMode::strict);
         }},
        {"load balancing: PASSTHROUGH",
         [](xw::Service& s) {
             set_lb(s, {}, xw::LoadBalancing::PASSTHROUGH, xw::LoadBalancing::ONLY_HEALTHY);
         },
         [](const zt::state::Service& s) {
             CHECK(s.lb_mode() == zt::state::LoadBalancerMode::passthrough);
         }},
        {"load balancing: UNSPECIFIED_SCOPE is rejected",
         [](xw::Service& s) {
             set_lb(s, {xw::LoadBalancing::ZONE, xw::LoadBalancing::UNSPECIFIED_SCOPE},
                    xw::LoadBalancing::FAILOVER, xw::LoadBalancing::ONLY_HEALTHY);
         },
         nullptr, "load_balancing.routing_preference[1]: unknown enum: invalid target"},
        {"load balancing: an unknown scope is rejected",
         [](xw::Service& s) {
             set_lb(s, {xw::LoadBalancing::Scope(9)}, xw::LoadBalancing::FAILOVER,
                    xw::LoadBalancing::ONLY_HEALTHY);
         },
         nullptr, "load_balancing.routing_preference[0]: unknown enum value 9"},
        {"load balancing: an unknown mode is rejected",
         [](xw::Service& s) {
             set_lb(s, {}, xw::LoadBalancing::Mode(4), xw::LoadBalancing::ONLY_HEALTHY);
         },
         nullptr, "load_balancing.mode: unknown enum value 4"},
        {"load balancing: an unknown health policy is rejected",
         [](xw::Service& s) {
             set_lb(s, {}, xw::LoadBalancing::STRICT, xw::LoadBalancing::HealthPolicy(2));
         },
         nullptr, "load_balancing.health_policy: unknown enum value 2"},
        {"ip families AUTOMATIC is no restriction", [](xw::Service&) {},
         [](const zt::state::Service& s) {
             CHECK(s.ip_families == zt::state::IpFamilies::any);
         }},
        {"ip families IPV4_ONLY", [](xw::Service& s) { s.set_ip_families(xw::IPV4_ONLY); },
         [](const zt::state::Service& s) {
             CHECK(s.ip_families == zt::state::IpFamilies::ipv4);
         }},
        {"ip families IPV6_ONLY", [](xw::Service& s) { s.set_ip_families(xw::IPV6_ONLY); },
         [](const zt::state::Service& s) {
             CHECK(s.ip_families == zt::state::IpFamilies::ipv6);
         }},
        {"ip families DUAL", [](xw::Service& s) { s.set_ip_families(xw::DUAL); },
         [](const zt::state::Service& s) {
             CHECK(s.ip_families == zt::state::IpFamilies::dual);
         }},
        {"ip families unknown is rejected",
         [](xw::Service& s) { s.set_ip_families(xw::IPFamilies(4)); }, nullptr,
         "ip_families: unknown enum value 4"},
        {"canonical", [](xw::Service& s) { s.set_canonical(true); },
         [](const zt::state::Service& s) {
             CHECK(s.canonical);
         }},
        {"visibility PUBLIC (the default)", [](xw::Service&) {},
         [](const zt::state::Service& s) {
             CHECK(s.visibility == zt::state::Visibility::public_);
         }},
        {"visibility NAMESPACE", [](xw::Service& s) { s.set_visibility(xw::Service::NAMESPACE); },
         [](const zt::state::Service& s) {
             CHECK(s.visibility == zt::state::Visibility::namespace_);
         }},
        {"visibility unknown reads as PUBLIC, as ztunnel reads it",
         [](xw::Service& s) { s.set_visibility(xw::Service::Visibility(9)); },
         [](const zt::state::Service& s) {
             CHECK(s.visibility == zt::state::Visibility::public_);
         }},
};

// --- policies --------------------------------------------------------------------------------

xs::Authorization base_policy() {
    xs::Authorization a;
    a.set_name("allow-reviews");
    a.set_namespace_("ns1");
    a.set_scope(xs::NAMESPACE);
    a.set_action(xs::ALLOW);
    a.add_rules()->add_clauses()->add_matches()->add_destination_ports(9080);
    return a;
}

xs::Match& first_match(xs::Authorization& a) {
    return *a.mutable_rules(0)->mutable_clauses(0)->mutable_matches(0);
}

const zt::state::RbacMatch& first_match(const zt::state::Policy& p) {
    return p.rules.at(0).at(0).at(0);
}

void add_cidr(google::protobuf::RepeatedPtrField<xs::Address>* list, std::string_view address,
              uint32_t length) {
    auto* entry = list->Add();
    entry->set_address(ip_bytes(address));
    entry->set_length(length);
}

struct PolicyRow {
    const char* what;
    void (*edit)(xs::Authorization&);
    void (*check)(const zt::state::Policy&);
    const char* error = nullptr;
    const char* warning = nullptr;
};

const PolicyRow kPolicyRows[] = {
        {"name and namespace are copied; the key is namespace/name", [](xs::Authorization&) {},
         [](const zt::state::Policy& p) {
             CHECK(p.name == "allow-reviews");
             CHECK(p.namespace_ == "ns1");
             CHECK(p.key() == "ns1/allow-reviews");
         }},
        {"scope GLOBAL", [](xs::Authorization& a) { a.set_scope(xs::GLOBAL); },
         [](const zt::state::Policy& p) {
             CHECK(p.scope == zt::state::PolicyScope::global);
         }},
        {"scope NAMESPACE", [](xs::Authorization&) {},
         [](const zt::state::Policy& p) {
             CHECK(p.scope == zt::state::PolicyScope::namespace_);
         }},
        {"scope WORKLOAD_SELECTOR",
         [](xs::Authorization& a) { a.set_scope(xs::WORKLOAD_SELECTOR); },
         [](const zt::state::Policy& p) {
             CHECK(p.scope == zt::state::PolicyScope::workload_selector);
         }},
        {"scope unknown is rejected", [](xs::Authorization& a) { a.set_scope(xs::Scope(3)); },
         nullptr, "scope: unknown enum value 3"},
        {"action ALLOW", [](xs::Authorization&) {},
         [](const zt::state::Policy& p) {
             CHECK(p.action == zt::state::PolicyAction::allow);
         }},
        {"action DENY", [](xs::Authorization& a) { a.set_action(xs::DENY); },
         [](const zt::state::Policy& p) {
             CHECK(p.action == zt::state::PolicyAction::deny);
         }},
        {"action unknown is rejected", [](xs::Authorization& a) { a.set_action(xs::Action(2)); },
         nullptr, "action: unknown enum value 2"},
        {"dry run false", [](xs::Authorization&) {},
         [](const zt::state::Policy& p) {
             CHECK_FALSE(p.dry_run);
         }},
        {"dry run true", [](xs::Authorization& a) { a.set_dry_run(true); },
         [](const zt::state::Policy& p) {
             CHECK(p.dry_run);
         }},
        {"no rules (never matches) stays no rules", [](xs::Authorization& a) { a.clear_rules(); },
         [](const zt::state::Policy& p) {
             CHECK(p.rules.empty());
         }},
        {"a rule with no clauses (always true) stays one",
         [](xs::Authorization& a) { a.add_rules(); },
         [](const zt::state::Policy& p) {
             REQUIRE(p.rules.size() == 2);
             CHECK(p.rules[1].empty());
         }},
        {"rules, clauses and matches keep their nesting and order",
         [](xs::Authorization& a) {
             auto* rule = a.add_rules();
             rule->add_clauses()->add_matches()->add_destination_ports(1);
             auto* clause = rule->add_clauses();
             clause->add_matches()->add_destination_ports(2);
             clause->add_matches();  // All fields empty: never matches, kept as such.
             rule->add_clauses();    // No matches: true.
         },
         [](const zt::state::Policy& p) {
             REQUIRE(p.rules.size() == 2);
             REQUIRE(p.rules[1].size() == 3);
             CHECK(p.rules[1][0].at(0).destination_ports == std::vector<uint16_t>{1});
             REQUIRE(p.rules[1][1].size() == 2);
             CHECK(p.rules[1][1][0].destination_ports == std::vector<uint16_t>{2});
             CHECK(p.rules[1][1][1] == zt::state::RbacMatch{});
             CHECK(p.rules[1][2].empty());
         }},
        {"namespaces: exact, prefix, suffix, presence",
         [](xs::Authorization& a) {
             auto& m = first_match(a);
             m.add_namespaces()->set_exact("ns1");
             m.add_namespaces()->set_prefix("team-");
             m.add_namespaces()->set_suffix("-prod");
             m.add_namespaces()->mutable_presence();
         },
         [](const zt::state::Policy& p) {
             using K = zt::state::StringMatch::Kind;
             const auto& list = first_match(p).namespaces;
             REQUIRE(list.size() == 4);
             CHECK((list[0].kind == K::exact && list[0].value == "ns1"));
             CHECK((list[1].kind == K::prefix && list[1].value == "team-"));
             CHECK((list[2].kind == K::suffix && list[2].value == "-prod"));
             CHECK((list[3].kind == K::presence && list[3].value.empty()));
         }},
        {"not namespaces",
         [](xs::Authorization& a) {
             first_match(a).add_not_namespaces()->set_exact("kube-system");
         },
         [](const zt::state::Policy& p) {
             CHECK(first_match(p).not_namespaces.at(0).value == "kube-system");
         }},
        {"an exact match on the empty string is kept (it is not \"no kind\")",
         [](xs::Authorization& a) { first_match(a).add_namespaces()->set_exact(""); },
         [](const zt::state::Policy& p) {
             REQUIRE(first_match(p).namespaces.size() == 1);
             CHECK(first_match(p).namespaces[0].kind == zt::state::StringMatch::Kind::exact);
         }},
        {"a string match with no kind is dropped with a warning, as ztunnel drops it",
         [](xs::Authorization& a) {
             first_match(a).add_principals();
             first_match(a).add_principals()->set_exact("cluster.local/ns/ns1/sa/a");
         },
         [](const zt::state::Policy& p) {
             REQUIRE(first_match(p).principals.size() == 1);
             CHECK(first_match(p).principals[0].value == "cluster.local/ns/ns1/sa/a");
         },
         nullptr,
         "rules[0].clauses[0].matches[0].principals[0]: string match with no kind dropped"},
        {"service accounts and not service accounts",
         [](xs::Authorization& a) {
             auto* sa = first_match(a).add_service_accounts();
             sa->set_namespace_("ns1");
             sa->set_serviceaccount("productpage");
             auto* not_sa = first_match(a).add_not_service_accounts();
             not_sa->set_namespace_("ns2");
             not_sa->set_serviceaccount("bad");
         },
         [](const zt::state::Policy& p) {
             const auto& m = first_match(p);
             REQUIRE(m.service_accounts.size() == 1);
             CHECK(m.service_accounts[0].namespace_ == "ns1");
             CHECK(m.service_accounts[0].service_account == "productpage");
             REQUIRE(m.not_service_accounts.size() == 1);
             CHECK(m.not_service_accounts[0].service_account == "bad");
         }},
        {"principals and not principals",
         [](xs::Authorization& a) {
             first_match(a).add_principals()->set_exact("cluster.local/ns/ns1/sa/a");
             first_match(a).add_not_principals()->mutable_presence();
         },
         [](const zt::state::Policy& p) {
             CHECK(first_match(p).principals.at(0).value == "cluster.local/ns/ns1/sa/a");
             CHECK(first_match(p).not_principals.at(0).kind ==
                   zt::state::StringMatch::Kind::presence);
         }},
        {"source and destination IPs, negated or not, host bits cleared",
         [](xs::Authorization& a) {
             auto& m = first_match(a);
             add_cidr(m.mutable_source_ips(), "198.18.7.7", 16);
             add_cidr(m.mutable_not_source_ips(), "2001:db8::1", 32);
             add_cidr(m.mutable_destination_ips(), "198.19.0.10", 32);
             add_cidr(m.mutable_not_destination_ips(), "0.0.0.0", 0);
         },
         [](const zt::state::Policy& p) {
             const auto& m = first_match(p);
             CHECK(m.source_ips == std::vector{cidr("198.18.0.0/16")});
             CHECK(m.not_source_ips == std::vector{cidr("2001:db8::/32")});
             CHECK(m.destination_ips == std::vector{cidr("198.19.0.10/32")});
             CHECK(m.not_destination_ips == std::vector{cidr("0.0.0.0/0")});
         }},
        {"an IP range of 3 bytes is dropped with a warning, as ztunnel drops it",
         [](xs::Authorization& a) {
             auto* bad = first_match(a).add_source_ips();
             bad->set_address("abc");
             bad->set_length(8);
             add_cidr(first_match(a).mutable_source_ips(), "198.18.0.0", 15);
         },
         [](const zt::state::Policy& p) {
             CHECK(first_match(p).source_ips == std::vector{cidr("198.18.0.0/15")});
         },
         nullptr, "matches[0].source_ips[0]: dropped, as ztunnel drops it: an IP address has 4"},
        {"an IP range longer than its family is dropped with a warning",
         [](xs::Authorization& a) {
             add_cidr(first_match(a).mutable_destination_ips(), "198.18.0.1", 33);
         },
         [](const zt::state::Policy& p) { CHECK(first_match(p).destination_ips.empty()); }, nullptr,
         "destination_ips[0]: dropped, as ztunnel drops it: prefix length 33"},
        {"destination ports and not destination ports, 0 and 65535 included",
         [](xs::Authorization& a) {
             first_match(a).add_destination_ports(0);
             first_match(a).add_destination_ports(65535);
             first_match(a).add_not_destination_ports(9999);
         },
         [](const zt::state::Policy& p) {
             CHECK(first_match(p).destination_ports == std::vector<uint16_t>{9080, 0, 65535});
             CHECK(first_match(p).not_destination_ports == std::vector<uint16_t>{9999});
         }},
        {"a destination port above 65535 is rejected",
         [](xs::Authorization& a) { first_match(a).add_not_destination_ports(65616); }, nullptr,
         "rules[0].clauses[0].matches[0].not_destination_ports[0]: 65616 is not a port"},
};

// --- running the tables ----------------------------------------------------------------------

template <class Outcome>
void check_verdict(const Outcome& outcome, const char* error, const char* warning,
                   bool translated) {
    INFO("error: " << outcome.error);
    INFO("warnings: " << joined(outcome.warnings));
    if (error != nullptr) {
        CHECK(outcome.error.find(error) != std::string::npos);
        CHECK_FALSE(translated);
    } else {
        CHECK(outcome.error.empty());
        CHECK(translated);
    }
    if (warning != nullptr) {
        CHECK(has_text(outcome.warnings, warning));
    } else {
        CHECK(outcome.warnings.empty());
    }
}

}  // namespace

TEST_CASE("translate: workload fields, one row each") {
    for (const WorkloadRow& row : kWorkloadRows) {
        INFO(row.what);
        xw::Address address;
        *address.mutable_workload() = base_workload();
        row.edit(*address.mutable_workload());
        auto outcome = translate_address(address, TranslateContext{});
        check_verdict(outcome, row.error, row.warning, outcome.workload.has_value());
        CHECK_FALSE(outcome.service.has_value());
        if (outcome.workload && row.check != nullptr) {
            row.check(*outcome.workload);
            zt::state::Config config;
            config.workloads.push_back(*outcome.workload);
            check_loads(config);
        }
    }
}

TEST_CASE("translate: service fields, one row each") {
    for (const ServiceRow& row : kServiceRows) {
        INFO(row.what);
        xw::Address address;
        *address.mutable_service() = base_service();
        row.edit(*address.mutable_service());
        auto outcome = translate_address(address, TranslateContext{});
        check_verdict(outcome, row.error, row.warning, outcome.service.has_value());
        CHECK_FALSE(outcome.workload.has_value());
        if (outcome.service && row.check != nullptr) {
            row.check(*outcome.service);
            zt::state::Config config;
            config.services.push_back(*outcome.service);
            check_loads(config);
        }
    }
}

TEST_CASE("translate: authorization fields, one row each") {
    for (const PolicyRow& row : kPolicyRows) {
        INFO(row.what);
        xs::Authorization authorization = base_policy();
        row.edit(authorization);
        auto outcome = translate_authorization(authorization, TranslateContext{});
        check_verdict(outcome, row.error, row.warning, outcome.policy.has_value());
        if (outcome.policy && row.check != nullptr) {
            row.check(*outcome.policy);
            zt::state::Config config;
            config.policies.push_back(*outcome.policy);
            check_loads(config);
        }
    }
}

TEST_CASE("translate: an Address with neither workload nor service is rejected") {
    auto outcome = translate_address(xw::Address{}, TranslateContext{});
    CHECK(outcome.error == "unknown address type (neither workload nor service)");
    CHECK_FALSE(outcome.workload.has_value());
    CHECK_FALSE(outcome.service.has_value());
}

TEST_CASE("translate: the context fills an empty trust domain and cluster id, nothing else") {
    TranslateContext context;
    context.trust_domain = "td.example";
    context.cluster_id = "cluster-9";
    xw::Address address;
    *address.mutable_workload() = base_workload();
    auto elided = translate_address(address, context);
    REQUIRE(elided.workload.has_value());
    CHECK(elided.workload->trust_domain == "td.example");
    CHECK(elided.workload->cluster_id == "cluster-9");
    address.mutable_workload()->set_trust_domain("other.example");
    address.mutable_workload()->set_cluster_id("cluster-1");
    auto set = translate_address(address, context);
    REQUIRE(set.workload.has_value());
    CHECK(set.workload->trust_domain == "other.example");
    CHECK(set.workload->cluster_id == "cluster-1");
}

TEST_CASE("translate: a resource read back from its wire bytes translates the same") {
    // The agent receives bytes inside an Any; what protobuf parses from them is what translates.
    xw::Address address;
    *address.mutable_workload() = base_workload();
    address.mutable_workload()->mutable_capacity()->set_value(0);
    (*address.mutable_workload()->mutable_services())["ns1/a.svc"].add_ports()->set_service_port(
            80);
    std::string wire = address.SerializeAsString();
    xw::Address decoded;
    REQUIRE(decoded.ParseFromString(wire));
    auto direct = translate_address(address, TranslateContext{});
    auto from_wire = translate_address(decoded, TranslateContext{});
    REQUIRE(direct.workload.has_value());
    REQUIRE(from_wire.workload.has_value());
    CHECK(*direct.workload == *from_wire.workload);
    CHECK(from_wire.workload->capacity == 0);
}

TEST_CASE("translate: a translated mesh renders into a file that check-config's loader accepts") {
    TranslateContext context;
    zt::state::Config config;

    // Two pods of one service on two nodes (HBONE), a TCP VM off the mesh, a service with a
    // CIDR VIP, a namespace policy, a selector policy the first pod lists, and a global one.
    for (int i = 0; i < 2; ++i) {
        xw::Address address;
        xw::Workload& w = *address.mutable_workload();
        w = base_workload();
        w.set_uid("Kubernetes//Pod/ns1/reviews-" + std::to_string(i));
        w.set_name("reviews-" + std::to_string(i));
        w.set_addresses(0, ip_bytes(i == 0 ? "198.18.1.10" : "2001:db8::10"));
        w.set_tunnel_protocol(xw::HBONE);
        w.set_service_account("reviews");
        w.set_node(i == 0 ? "node-a" : "node-b");
        w.set_workload_type(xw::DEPLOYMENT);
        w.set_workload_name("reviews");
        w.set_canonical_name("reviews");
        w.set_canonical_revision("v1");
        w.mutable_locality()->set_region("r1");
        auto* port = (*w.mutable_services())["ns1/reviews.ns1.svc.cluster.local"].add_ports();
        port->set_service_port(80);
        port->set_target_port(9080);
        if (i == 0) {
            w.add_authorization_policies("ns1/only-productpage");
        }
        auto outcome = translate_address(address, context);
        REQUIRE(outcome.error.empty());
        config.workloads.push_back(*outcome.workload);
    }
    {
        xw::Address address;
        xw::Workload& w = *address.mutable_workload();
        w.set_uid("Kubernetes/networking.istio.io/WorkloadEntry/ns2/vm-1");
        w.set_namespace_("ns2");
        w.add_addresses(ip_bytes("198.18.9.9"));
        w.set_status(xw::UNHEALTHY);
        auto outcome = translate_address(address, context);
        REQUIRE(outcome.error.empty());
        config.workloads.push_back(*outcome.workload);
    }
    {
        xw::Address address;
        xw::Service& s = *address.mutable_service();
        s = base_service();
        s.add_subject_alt_names("spiffe://cluster.local/ns/ns1/sa/reviews");
        auto* range = s.add_addresses();
        range->set_address(ip_bytes("198.19.8.0"));
        range->set_length(24);
        auto outcome = translate_address(address, context);
        REQUIRE(outcome.error.empty());
        config.services.push_back(*outcome.service);
    }
    for (auto scope : {xs::NAMESPACE, xs::WORKLOAD_SELECTOR, xs::GLOBAL}) {
        xs::Authorization a = base_policy();
        a.set_scope(scope);
        if (scope == xs::WORKLOAD_SELECTOR) {
            a.set_name("only-productpage");
            a.set_action(xs::DENY);
            first_match(a).add_not_principals()->set_exact("cluster.local/ns/ns1/sa/productpage");
        } else if (scope == xs::GLOBAL) {
            a.set_name("mesh-wide");
            a.set_namespace_("istio-system");
            a.set_dry_run(true);
        }
        auto outcome = translate_authorization(a, context);
        REQUIRE(outcome.error.empty());
        config.policies.push_back(*outcome.policy);
    }

    std::string text = zt::config::render(config);
    auto loaded = zt::config::load_text(text);
    INFO(text);
    INFO(joined(loaded.errors));
    INFO(joined(loaded.warnings));
    REQUIRE(loaded.errors.empty());
    CHECK(loaded.warnings.empty());
    REQUIRE(loaded.snapshot != nullptr);
    const auto& snapshot = *loaded.snapshot;
    CHECK(snapshot.workloads().size() == 3);
    const auto* pod = snapshot.workload_by_ip({"", ip("2001:db8::10")});
    REQUIRE(pod != nullptr);
    CHECK(pod->uid == "Kubernetes//Pod/ns1/reviews-1");
    CHECK(pod->identity("cluster.local") == "spiffe://cluster.local/ns/ns1/sa/reviews");
    const auto* service = snapshot.service_by_key("ns1", "reviews.ns1.svc.cluster.local");
    REQUIRE(service != nullptr);
    CHECK(snapshot.endpoints(*service).size() == 2);
    CHECK(snapshot.policy_by_key("ns1/only-productpage") != nullptr);
    CHECK(snapshot.policy_by_key("istio-system/mesh-wide")->dry_run);
    check_loads(config);
    // The same input renders the same bytes: the agent's "content unchanged" test.
    CHECK(zt::config::render(config) == text);
}
