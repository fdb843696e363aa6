// Unit tests for the config parser and the cross-object checks: one row per validation error,
// each checked for its exact JSON path and message, plus the JSON-level limits (depth, duplicate
// keys, BOM, truncation) and ztunnel's examples/localhost.yaml written as JSON.

#include "src/config/parse.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::config::load_text;

// kBase is a small valid file; rows replace parts of it to break exactly one thing.
constexpr std::string_view kBase = R"({
  "workloads": [
    {"uid": "c//Pod/ns/a", "namespace": "ns", "workloadIps": ["198.18.0.1"], "protocol": "HBONE",
     "services": {"ns/s.ns.svc": {"80": 8080}}}
  ],
  "services": [
    {"name": "s", "namespace": "ns", "hostname": "s.ns.svc", "vips": ["/198.19.0.1"],
     "ports": {"80": 8080}, "subjectAltNames": ["spiffe://cluster.local/ns/ns/sa/s"]}
  ],
  "policies": [
    {"name": "p", "namespace": "ns", "scope": "Namespace", "action": "Allow", "dryRun": false,
     "rules": [[[{"destinationPorts": [8080]}], [{"principals": [{"Exact": "x"}]}]]]}
  ],
  "pods": [{"uid": "c//Pod/ns/a", "netns": "/var/run/netns/zt-a"}]
})";

std::string replace(std::string_view from, std::string_view to) {
    std::string text(kBase);
    size_t at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, "row does not apply: " << from);
    text.replace(at, from.size(), to);
    return text;
}

struct Row {
    const char* what;
    std::string text;
    std::string error;  // The one error expected, exactly.
};

}  // namespace

TEST_CASE("config: the base document is valid") {
    auto result = load_text(kBase);
    INFO(result.errors.size());
    CHECK(result.errors.empty());
    REQUIRE(result.snapshot != nullptr);
    CHECK(result.snapshot->workloads().size() == 1);
    CHECK(result.warnings.empty());
}

TEST_CASE("config: each validation error names its JSON path") {
    const Row rows[] = {
            {"unknown top-level key", replace("\"pods\"", "\"pod\""), "pod: unknown key"},
            {"top level not an object", "[]", "(top level): expected an object, got array"},
            {"list not an array", "{\"pods\": {}}", "pods: expected an array, got object"},
            {"misspelt workload key", replace("\"protocol\"", "\"protcol\""),
             "workloads[0].protcol: unknown key"},
            {"missing required key",
             replace("\"namespace\": \"ns\", \"workloadIps\"", "\"workloadIps\""),
             "workloads[0]: missing required key \"namespace\""},
            {"empty uid",
             replace("\"uid\": \"c//Pod/ns/a\", \"namespace\"", "\"uid\": \"\", \"namespace\""),
             "workloads[0].uid: must not be empty"},
            {"bad IP", replace("198.18.0.1", "10.0.0.300"),
             "workloads[0].workloadIps[0]: not an IP address: \"10.0.0.300\""},
            {"inet_aton-only IP", replace("198.18.0.1", "127.1"),
             "workloads[0].workloadIps[0]: not an IP address: \"127.1\""},
            {"wrong type", replace("[\"198.18.0.1\"]", "\"198.18.0.1\""),
             "workloads[0].workloadIps: expected an array, got \"198.18.0.1\""},
            {"unknown enum", replace("\"HBONE\"", "\"UDP\""),
             "workloads[0].protocol: unknown value \"UDP\" (expected one of: TCP, HBONE)"},
            {"unknown status", replace("\"protocol\": \"HBONE\"", "\"status\": \"Sick\""),
             "workloads[0].status: unknown value \"Sick\" (expected one of: Healthy, Unhealthy)"},
            {"negative capacity", replace("\"protocol\": \"HBONE\"", "\"capacity\": -1"),
             "workloads[0].capacity: -1 is not an integer from 0 to 4294967295"},
            {"service key not ns/hostname", replace("\"ns/s.ns.svc\": {", "\"s.ns.svc\": {"),
             "workloads[0].services[\"s.ns.svc\"]: key is not namespace/hostname"},
            {"port key not a number", replace("{\"80\": 8080}}}", "{\"http\": 8080}}}"),
             "workloads[0].services[\"ns/s.ns.svc\"][\"http\"]: \"http\" is not a port (keys are "
             "ports written as strings)"},
            {"target port out of range",
             replace("\"ports\": {\"80\": 8080}", "\"ports\": {\"80\": 70000}"),
             "services[0].ports[\"80\"]: 70000 is not a port"},
            {"port twice",
             replace("\"ports\": {\"80\": 8080}", "\"ports\": {\"80\": 1, \"080\": 2}"),
             "services[0].ports: port 80 appears twice"},
            {"vip without network", replace("\"/198.19.0.1\"", "\"198.19.0.1\""),
             "services[0].vips[0]: not a network/ip address: \"198.19.0.1\""},
            {"cidr prefix too long",
             replace("\"vips\": [",
                     "\"cidrVips\": [{\"network\": \"\", \"cidr\": \"198.19.0.0/33\"}], \"vips\": "
                     "["),
             "services[0].cidrVips[0].cidr: not a CIDR (prefix length must be 0 to 32): "
             "\"198.19.0.0/33\""},
            {"not a SPIFFE ID",
             replace("spiffe://cluster.local/ns/ns/sa/s", "cluster.local/ns/ns/sa/s"),
             "services[0].subjectAltNames[0]: not a SPIFFE ID: \"cluster.local/ns/ns/sa/s\""},
            {"SPIFFE ID with empty segment", replace("ns/ns/sa/s", "ns//sa/s"),
             "services[0].subjectAltNames[0]: not a SPIFFE ID: "
             "\"spiffe://cluster.local/ns//sa/s\""},
            {"SPIFFE ID outside Istio's ns/sa shape", replace("ns/ns/sa/s", "workload/s"),
             "services[0].subjectAltNames[0]: not a SPIFFE ID: "
             "\"spiffe://cluster.local/workload/s\""},
            {"identity fields that make no SPIFFE ID",
             replace("\"namespace\": \"ns\", \"workloadIps\"",
                     "\"namespace\": \"ns\", \"serviceAccount\": \"a/b\", \"workloadIps\""),
             "workloads[0]: trustDomain, namespace and serviceAccount do not form a valid SPIFFE "
             "ID: \"spiffe://cluster.local/ns/ns/sa/a/b\""},
            {"unknown load balancer mode",
             replace("\"vips\": [",
                     "\"loadBalancer\": {\"mode\": \"Random\", \"routingPreferences\": [], "
                     "\"healthPolicy\": \"OnlyHealthy\"}, \"vips\": ["),
             "services[0].loadBalancer.mode: unknown value \"Random\" (expected one of: Standard, "
             "Strict, Failover, Passthrough)"},
            {"locality without subzone",
             replace("\"protocol\": \"HBONE\"",
                     "\"protocol\": \"HBONE\", \"locality\": {\"region\": \"r\", \"zone\": \"z\"}"),
             "workloads[0].locality: missing required key \"subzone\""},
            {"load balancer without routing preferences",
             replace("\"vips\": [",
                     "\"loadBalancer\": {\"mode\": \"Strict\", \"healthPolicy\": "
                     "\"OnlyHealthy\"}, \"vips\": ["),
             "services[0].loadBalancer: missing required key \"routingPreferences\""},
            {"load balancer without a mode",
             replace("\"vips\": [",
                     "\"loadBalancer\": {\"routingPreferences\": [\"Node\"], \"healthPolicy\": "
                     "\"OnlyHealthy\"}, \"vips\": ["),
             "services[0].loadBalancer: missing required key \"mode\""},
            {"load balancer without a health policy",
             replace("\"vips\": [",
                     "\"loadBalancer\": {\"routingPreferences\": [], \"mode\": \"Failover\"}, "
                     "\"vips\": ["),
             "services[0].loadBalancer: missing required key \"healthPolicy\""},
            {"unknown routing preference",
             replace("\"vips\": [",
                     "\"loadBalancer\": {\"routingPreferences\": [\"Rack\"], \"mode\": "
                     "\"Failover\", \"healthPolicy\": \"OnlyHealthy\"}, \"vips\": ["),
             "services[0].loadBalancer.routingPreferences[0]: unknown value \"Rack\" (expected one "
             "of: Region, Zone, Subzone, Node, Cluster, Network)"},
            {"waypoint without its port",
             replace("\"vips\": [",
                     "\"waypoint\": {\"destination\": \"istio-system/wp.svc\"}, \"vips\": ["),
             "services[0].waypoint: missing required key \"hboneMtlsPort\""},
            {"workload waypoint without a destination",
             replace("\"protocol\": \"HBONE\"",
                     "\"protocol\": \"HBONE\", \"waypoint\": {\"hboneMtlsPort\": 15008}"),
             "workloads[0].waypoint: missing required key \"destination\""},
            {"waypoint destination neither form",
             replace("\"vips\": [",
                     "\"waypoint\": {\"destination\": \"wp\", \"hboneMtlsPort\": 15008}, "
                     "\"vips\": ["),
             "services[0].waypoint.destination: neither network/ip nor namespace/hostname: \"wp\""},
            {"waypoint destination not a string",
             replace("\"vips\": [",
                     "\"waypoint\": {\"destination\": {\"address\": \"/198.18.0.9\"}, "
                     "\"hboneMtlsPort\": 15008}, \"vips\": ["),
             "services[0].waypoint.destination: expected a string, got object"},
            {"weighted waypoint without a weight",
             replace("\"vips\": [",
                     "\"weightedWaypoints\": [{\"destination\": {\"destination\": "
                     "\"/198.18.0.9\", \"hboneMtlsPort\": 15008}}], \"vips\": ["),
             "services[0].weightedWaypoints[0]: missing required key \"weight\""},
            {"weighted waypoint without a destination",
             replace("\"vips\": [", "\"weightedWaypoints\": [{\"weight\": 1}], \"vips\": ["),
             "services[0].weightedWaypoints[0]: missing required key \"destination\""},
            {"weighted waypoint destination as a bare string",
             replace("\"vips\": [",
                     "\"weightedWaypoints\": [{\"destination\": \"/198.18.0.9\", \"weight\": "
                     "1}], \"vips\": ["),
             "services[0].weightedWaypoints[0].destination: expected an object, got "
             "\"/198.18.0.9\""},
            {"weighted waypoint's gateway without its port",
             replace("\"vips\": [",
                     "\"weightedWaypoints\": [{\"destination\": {\"destination\": "
                     "\"/198.18.0.9\"}, \"weight\": 1}], \"vips\": ["),
             "services[0].weightedWaypoints[0].destination: missing required key "
             "\"hboneMtlsPort\""},
            {"endpoint without a status",
             replace("\"vips\": [",
                     "\"endpoints\": {\"c//Pod/ns/a\": {\"workloadUid\": \"c//Pod/ns/a\", "
                     "\"port\": {}}}, \"vips\": ["),
             "services[0].endpoints[\"c//Pod/ns/a\"]: missing required key \"status\""},
            {"application tunnel without a protocol",
             replace("\"protocol\": \"HBONE\"",
                     "\"protocol\": \"HBONE\", \"applicationTunnel\": {\"port\": 15088}"),
             "workloads[0].applicationTunnel: missing required key \"protocol\""},
            {"rule port out of range",
             replace("\"principals\": [{\"Exact\": \"x\"}]", "\"destinationPorts\": [70000]"),
             "policies[0].rules[0][1][0].destinationPorts[0]: 70000 is not a port"},
            {"bare IP where a CIDR is required",
             replace("\"destinationPorts\": [8080]", "\"sourceIps\": [\"198.18.0.1\"]"),
             "policies[0].rules[0][0][0].sourceIps[0]: not a CIDR (an address/prefix length is "
             "required): \"198.18.0.1\""},
            {"unknown string match", replace("{\"Exact\": \"x\"}", "{\"Regex\": \"x\"}"),
             "policies[0].rules[0][1][0].principals[0].Regex: unknown string match (expected "
             "Exact, Prefix, Suffix or Presence)"},
            {"typo inside a match",
             replace("\"destinationPorts\": [8080]", "\"destinationPort\": [8080]"),
             "policies[0].rules[0][0][0].destinationPort: unknown key"},
            {"unknown scope", replace("\"Namespace\", \"action\"", "\"Cluster\", \"action\""),
             "policies[0].scope: unknown value \"Cluster\" (expected one of: Global, Namespace, "
             "WorkloadSelector)"},
            {"missing action", replace("\"action\": \"Allow\", ", ""),
             "policies[0]: missing required key \"action\""},
            {"relative netns", replace("/var/run/netns/zt-a", "var/run/netns/zt-a"),
             "pods[0].netns: not an absolute path: \"var/run/netns/zt-a\""},
            {"pod without netns", replace(", \"netns\": \"/var/run/netns/zt-a\"", ""),
             "pods[0]: missing required key \"netns\""},
            {"pod info without serviceAccount",
             replace("\"netns\": \"/var/run/netns/zt-a\"",
                     "\"netns\": \"/var/run/netns/zt-a\", \"name\": \"a\", \"namespace\": \"ns\""),
             "pods[0]: missing required key \"serviceAccount\" (name, namespace and "
             "serviceAccount come together)"},
            {"pod info with an empty name",
             replace("\"netns\": \"/var/run/netns/zt-a\"",
                     "\"netns\": \"/var/run/netns/zt-a\", \"name\": \"\", \"namespace\": \"ns\", "
                     "\"serviceAccount\": \"a\""),
             "pods[0].name: must not be empty"},
            {"pod serviceAccount not a string",
             replace("\"netns\": \"/var/run/netns/zt-a\"",
                     "\"netns\": \"/var/run/netns/zt-a\", \"name\": \"a\", \"namespace\": \"ns\", "
                     "\"serviceAccount\": 7"),
             "pods[0].serviceAccount: expected a string, got 7"},
            {"pod info that is no SPIFFE ID",
             replace("\"netns\": \"/var/run/netns/zt-a\"",
                     "\"netns\": \"/var/run/netns/zt-a\", \"name\": \"a\", \"namespace\": \"n/s\", "
                     "\"serviceAccount\": \"a\""),
             "pods[0]: namespace and serviceAccount do not form a valid SPIFFE ID: "
             "\"spiffe://cluster.local/ns/n/s/sa/a\""},
            {"duplicate workload uid",
             std::string(kBase).replace(kBase.find("  ],\n  \"services\""), 0,
                                        ",{\"uid\": \"c//Pod/ns/a\", \"namespace\": \"ns\", "
                                        "\"workloadIps\": [], \"services\": {}}\n"),
             "workloads[1].uid: duplicate uid \"c//Pod/ns/a\" (first at workloads[0])"},
            {"one IP in two workloads of a network",
             std::string(kBase).replace(kBase.find("  ],\n  \"services\""), 0,
                                        ",{\"uid\": \"c//Pod/ns/b\", \"namespace\": \"ns\", "
                                        "\"workloadIps\": [\"198.18.0.1\"], \"services\": {}}\n"),
             "workloads[1].workloadIps[0]: 198.18.0.1 on network \"\" is also an IP of "
             "workloads[0] (uid \"c//Pod/ns/a\")"},
            {"duplicate service",
             std::string(kBase).replace(kBase.find("  ],\n  \"policies\""), 0,
                                        ",{\"name\": \"s2\", \"namespace\": \"ns\", \"hostname\": "
                                        "\"s.ns.svc\", \"vips\": [], \"ports\": {}}\n"),
             "services[1]: duplicate service \"ns/s.ns.svc\" (first at services[0])"},
            {"duplicate policy",
             std::string(kBase).replace(kBase.find("  ],\n  \"pods\""), 0,
                                        ",{\"name\": \"p\", \"namespace\": \"ns\", \"scope\": "
                                        "\"Global\", \"action\": \"Deny\", \"rules\": []}\n"),
             "policies[1]: duplicate policy \"ns/p\""},
            {"duplicate pod",
             replace("\"netns\": \"/var/run/netns/zt-a\"}",
                     "\"netns\": \"/var/run/netns/zt-a\"}, {\"uid\": "
                     "\"c//Pod/ns/a\", \"netns\": \"/x\"}"),
             "pods[1].uid: duplicate pod uid \"c//Pod/ns/a\""},
            {"syntax error", replace("\"pods\"", "pods"),
             "(file): parse error at line 14, column 3: syntax error while parsing object key - "
             "invalid literal; last read: '\"x\"}]}]]]}<U+000A>  ],<U+000A>  p'; expected string "
             "literal"},
            {"duplicate key", replace("\"pods\": [", "\"workloads\": [], \"pods\": ["),
             "(file): duplicate key \"workloads\" in one object"},
            {"byte order mark", "\xEF\xBB\xBF" + std::string(kBase),
             "(file): a byte order mark is not allowed"},
    };
    for (const Row& row : rows) {
        std::string what = row.what;
        CAPTURE(what);
        auto result = load_text(row.text);
        CHECK(result.snapshot == nullptr);
        REQUIRE(result.errors.size() >= 1);
        CHECK(result.errors.front() == row.error);
        CHECK(result.errors.size() == 1);
    }
}

TEST_CASE("config: every error of a file is reported, not just the first") {
    std::string text = replace("198.18.0.1", "10.0.0.300");
    text.replace(text.find("\"HBONE\""), 7, "\"UDP\"");
    text.replace(text.find("/var/run"), 1, "");
    auto result = load_text(text);
    REQUIRE(result.errors.size() == 3);
    // File order: workloadIps comes before protocol in kBase.
    CHECK(result.errors[0] == "workloads[0].workloadIps[0]: not an IP address: \"10.0.0.300\"");
    CHECK(result.errors[1] ==
          "workloads[0].protocol: unknown value \"UDP\" (expected one of: "
          "TCP, HBONE)");
    CHECK(result.errors[2] == "pods[0].netns: not an absolute path: \"var/run/netns/zt-a\"");
}

TEST_CASE("config: cross-object errors are reported together with per-object ones") {
    std::string text = std::string(kBase).replace(
            kBase.find("  ],\n  \"services\""), 0,
            ",{\"uid\": \"c//Pod/ns/a\", \"namespace\": \"ns\", \"workloadIps\": [\"x\"], "
            "\"services\": {}}\n");
    auto result = load_text(text);
    CHECK(result.snapshot == nullptr);
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0] == "workloads[1].workloadIps[0]: not an IP address: \"x\"");
    CHECK(result.errors[1] ==
          "workloads[1].uid: duplicate uid \"c//Pod/ns/a\" (first at workloads[0])");
}

TEST_CASE("config: the same IP on two networks, or on host-network workloads, is accepted") {
    std::string other_network = std::string(kBase).replace(
            kBase.find("  ],\n  \"services\""), 0,
            ",{\"uid\": \"c//Pod/ns/b\", \"namespace\": \"ns\", \"network\": \"n2\", "
            "\"workloadIps\": [\"198.18.0.1\"], \"services\": {}}\n");
    auto result = load_text(other_network);
    CHECK(result.errors.empty());
    REQUIRE(result.snapshot);
    CHECK(result.snapshot->workload_by_ip({"n2", *zt::state::IpAddr::parse("198.18.0.1")})->uid ==
          "c//Pod/ns/b");
    CHECK(result.snapshot->workload_by_ip({"", *zt::state::IpAddr::parse("198.18.0.1")})->uid ==
          "c//Pod/ns/a");

    std::string host_network = std::string(kBase).replace(
            kBase.find("  ],\n  \"services\""), 0,
            ",{\"uid\": \"c//Pod/ns/b\", \"namespace\": \"ns\", \"networkMode\": \"HostNetwork\", "
            "\"workloadIps\": [\"198.18.0.1\"], \"services\": {}}\n");
    result = load_text(host_network);
    CHECK(result.errors.empty());
}

TEST_CASE("config: nesting beyond the cap is rejected during the parse, without recursion") {
    std::string deep(100000, '[');
    auto result = zt::config::parse(deep);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0] == "(file): nesting deeper than 64 levels");
    CHECK(result.too_deep);

    // 64 levels are fine for the JSON reader (the schema then rejects the shape).
    std::string ok = "{\"workloads\": " + std::string(63, '[') + std::string(63, ']') + "}";
    result = zt::config::parse(ok);
    CHECK_FALSE(result.too_deep);
    CHECK(result.errors.front().starts_with("workloads[0]: expected an object"));
}

TEST_CASE("config: malformed bytes are rejected: empty, NUL, invalid UTF-8, trailing garbage") {
    for (std::string text : {std::string(""), std::string("   \n"), std::string("{}\0", 3),
                             std::string("{\"workloads\": [], \"x\xff\": 1}"), std::string("{} {}"),
                             std::string("{\"pods\": []} x")}) {
        CAPTURE(text);
        auto result = load_text(text);
        CHECK(result.snapshot == nullptr);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].starts_with("(file): "));
    }
}

TEST_CASE("config: an empty object is a valid, empty config") {
    // ztunnel's LocalConfig defaults every list; an empty node is a real state (no pods).
    auto result = load_text("{}");
    REQUIRE(result.snapshot);
    CHECK(result.snapshot->workloads().empty());
    CHECK(result.snapshot->pods().empty());
}

TEST_CASE("config: every truncation of a valid file is rejected") {
    std::string text(kBase);
    size_t rejected = 0;
    for (size_t len = 0; len < text.size(); len += 7) {
        auto result = load_text(std::string_view(text).substr(0, len));
        CHECK(result.snapshot == nullptr);
        rejected += result.snapshot == nullptr ? 1 : 0;
    }
    CHECK(rejected == (text.size() + 6) / 7);
}

TEST_CASE("config: keys ztunnel knows but we do not implement are accepted and listed once") {
    // Waypoints are implemented (issue 16): accepted and not listed. A network gateway (double
    // HBONE) is not.
    std::string text = replace("\"protocol\": \"HBONE\"",
                               "\"protocol\": \"HBONE\", \"waypoint\": {\"destination\": "
                               "\"/198.19.9.9\", \"hboneMtlsPort\": 15008}, \"networkGateway\": "
                               "{\"destination\": \"/198.19.9.8\", \"hboneMtlsPort\": 15008}, "
                               "\"applicationTunnel\": {\"protocol\": \"PROXY\", \"port\": 15088}");
    text.replace(text.find("\"vips\""), 0,
                 "\"waypoint\": {\"destination\": \"istio-system/wp.svc\", \"hboneMtlsPort\": "
                 "15008}, ");
    auto result = load_text(text);
    REQUIRE(result.snapshot);
    const auto& unsupported = result.snapshot->config().unsupported;
    REQUIRE(unsupported.size() == 1);
    CHECK(unsupported[0] == "workloads[].networkGateway");
    const auto& waypoint = *result.snapshot->services()[0].waypoint;
    CHECK_FALSE(waypoint.address.has_value());
    CHECK(waypoint.host->to_string() == "istio-system/wp.svc");
}

TEST_CASE("config: defaults follow ztunnel's xDS loader") {
    auto result = load_text(kBase);
    REQUIRE(result.snapshot);
    const auto& w = result.snapshot->workloads()[0];
    CHECK(w.service_account == "default");
    CHECK(w.cluster_id == "Kubernetes");
    CHECK(w.status == zt::state::HealthStatus::healthy);
    CHECK(w.capacity == 1);
    CHECK(w.identity("cluster.local") == "spiffe://cluster.local/ns/ns/sa/default");
    const auto& p = result.snapshot->policies()[0];
    REQUIRE(p.rules.size() == 1);
    REQUIRE(p.rules[0].size() == 2);
    CHECK(p.rules[0][0][0].destination_ports == std::vector<uint16_t>{8080});
    CHECK(p.rules[0][1][0].principals[0].value == "x");
}

TEST_CASE("config: ztunnel's examples/localhost.yaml as JSON loads with the expected lookups") {
    auto result = zt::config::load_file("tests/fixtures/localhost.json");
    INFO(result.errors.size());
    REQUIRE(result.snapshot);
    const auto& snap = *result.snapshot;
    CHECK(snap.workloads().size() == 2);
    CHECK(snap.services().size() == 2);
    CHECK(snap.policies().size() == 1);

    auto ip = [](const char* text) {
        return *zt::state::IpAddr::parse(text);
    };
    const auto* local = snap.workload_by_ip({"", ip("127.0.0.1")});
    REQUIRE(local);
    CHECK(local->uid == "cluster1//v1/Pod/default/local");
    CHECK(local->protocol == zt::state::Protocol::hbone);
    const auto* tcp = snap.workload_by_ip({"", ip("127.0.0.2")});
    REQUIRE(tcp);
    CHECK(tcp->protocol == zt::state::Protocol::tcp);
    CHECK(snap.workload_by_uid("cluster1//v1/Pod/default/local-tcp") == tcp);

    const auto* example = snap.service_by_vip({"", ip("127.10.0.1")}, "default");
    REQUIRE(example);
    CHECK(example->hostname == "example.com");
    CHECK(snap.service_by_key("default", "example.com") == example);
    CHECK(snap.endpoints(*example).size() == 2);
    // example2.com's VIP is on network "remote": invisible from the default network.
    CHECK(snap.service_by_vip({"", ip("127.10.0.2")}, "default") == nullptr);
    const auto* remote = snap.service_by_vip({"remote", ip("127.10.0.2")}, "default");
    REQUIRE(remote);
    CHECK(remote->name == "remote");

    auto policies = snap.policies_for(*local);
    REQUIRE(policies.size() == 1);
    CHECK(policies[0]->name == "deny-9999");
    CHECK(policies[0]->rules[0][0][0].not_destination_ports == std::vector<uint16_t>{9999});
    CHECK_FALSE(policies[0]->dry_run);
}

TEST_CASE("config: duplicate keys are caught in large maps too (hash-set path)") {
    std::string ports;
    for (int p = 1; p <= 40; ++p) {
        ports += "\"" + std::to_string(p) + "\": " + std::to_string(p) + ", ";
    }
    std::string ok = replace("\"ports\": {\"80\": 8080}", "\"ports\": {" + ports + "\"80\": 8080}");
    auto good = load_text(ok);
    CHECK(good.errors.empty());
    REQUIRE(good.snapshot);
    CHECK(good.snapshot->services()[0].ports.size() == 41);
    std::string dup = replace("\"ports\": {\"80\": 8080}", "\"ports\": {" + ports + "\"7\": 8080}");
    auto bad = load_text(dup);
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0] == "(file): duplicate key \"7\" in one object");
}

TEST_CASE("config: a file with thousands of errors reports a bounded list and the rest counted") {
    std::string ips;
    for (int i = 0; i < 1500; ++i) {
        ips += std::string(i ? ", " : "") + "\"bad-" + std::to_string(i) + "\"";
    }
    auto result = load_text(replace("[\"198.18.0.1\"]", "[" + ips + "]"));
    CHECK(result.snapshot == nullptr);
    REQUIRE(result.errors.size() == zt::config::kMaxErrors + 1);
    CHECK(result.errors[999] == "workloads[0].workloadIps[999]: not an IP address: \"bad-999\"");
    CHECK(result.errors.back() == "(file): 500 more errors not shown");
}

TEST_CASE("config: error lines stay one line whatever the file holds") {
    std::string text = std::string(kBase).replace(
            kBase.find("  ],\n  \"services\""), 0,
            ",{\"uid\": \"x\\nERROR forged\", \"namespace\": \"ns\", \"workloadIps\": [], "
            "\"services\": {}}, {\"uid\": \"x\\nERROR forged\", \"namespace\": \"ns\", "
            "\"workloadIps\": [\"bad\\u0007\"], \"services\": {}}\n");
    auto result = load_text(text);
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0] == "workloads[2].workloadIps[0]: not an IP address: \"bad\\x07\"");
    CHECK(result.errors[1] ==
          "workloads[2].uid: duplicate uid \"x\\x0aERROR forged\" (first at workloads[1])");
    for (const auto& e : result.errors) {
        CHECK(e.find('\n') == std::string::npos);
    }
}

TEST_CASE("config: a pod entry with what ZDS says of it is not pending without its workload") {
    std::string text(kBase);
    std::string pods = "\"pods\": [{\"uid\": \"c//Pod/ns/a\", \"netns\": \"/var/run/netns/zt-a\"}]";
    size_t at = text.find(pods);
    REQUIRE(at != std::string::npos);
    text.replace(at, pods.size(),
                 "\"pods\": [{\"uid\": \"c//Pod/ns/a\", \"netns\": \"/var/run/netns/zt-a\"},"
                 " {\"uid\": \"c//Pod/ns/later\", \"netns\": \"/var/run/netns/zt-b\", "
                 "\"name\": \"later\", \"namespace\": \"ns\", \"serviceAccount\": \"sa-later\"},"
                 " {\"uid\": \"c//Pod/ns/bare\", \"netns\": \"/var/run/netns/zt-c\"}]");
    auto result = load_text(text);
    INFO(result.errors.size());
    REQUIRE(result.snapshot != nullptr);
    const auto& snapshot = *result.snapshot;
    const zt::state::Pod* later = snapshot.pod_by_uid("c//Pod/ns/later");
    REQUIRE(later != nullptr);
    CHECK(later->name == "later");
    CHECK(later->namespace_ == "ns");
    CHECK(later->service_account == "sa-later");
    CHECK_FALSE(snapshot.pod_pending(*later));
    CHECK(snapshot.pod_identity(*later, "td.example") == "spiffe://td.example/ns/ns/sa/sa-later");
    // Without the keys and without a workload: pending, as before.
    const zt::state::Pod* bare = snapshot.pod_by_uid("c//Pod/ns/bare");
    REQUIRE(bare != nullptr);
    CHECK(snapshot.pod_pending(*bare));
    CHECK(snapshot.pod_identity(*bare, "td.example").empty());
    // With a workload the workload's identity wins (its trust domain, namespace and account).
    const zt::state::Pod* known = snapshot.pod_by_uid("c//Pod/ns/a");
    REQUIRE(known != nullptr);
    CHECK(snapshot.pod_identity(*known, "td.example") == "spiffe://td.example/ns/ns/sa/default");
}
