// Unit tests for the config writer: every valid file of the repository (the corpus, the fixture
// and a document that sets every key parse.cc knows) survives parse -> render -> parse with
// equal structs; the text is a fixed point and deterministic; the keys a stricter reader needs
// are always written; and strings of any bytes still give JSON that parses back.

#include "src/config/render.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/config/parse.h"

namespace {

using zt::config::parse;
using zt::config::render;

// kEveryKey sets every key the parser reads, each to a value other than its default, so a key
// the writer forgets changes the structs of the round trip.
constexpr std::string_view kEveryKey = R"({
  "workloads": [
    {"uid": "Kubernetes//Pod/ns/a", "name": "a", "namespace": "ns", "serviceAccount": "sa-a",
     "trustDomain": "td.example", "workloadIps": ["198.18.0.1", "2001:db8::1"],
     "protocol": "HBONE", "networkMode": "HostNetwork", "network": "net1", "node": "node1",
     "clusterId": "c1", "workloadName": "a-deploy", "workloadType": "pod",
     "canonicalName": "a-app", "canonicalRevision": "v2", "hostname": "a.example",
     "status": "Unhealthy", "capacity": 0, "nativeTunnel": true,
     "locality": {"region": "r", "zone": "z", "subzone": "s"},
     "waypoint": {"destination": "ns/wp.ns.svc.cluster.local", "hboneMtlsPort": 15019},
     "networkGateway": {"destination": "net2/198.19.2.2", "hboneMtlsPort": 15009},
     "applicationTunnel": {"protocol": "PROXY", "port": 15088},
     "authorizationPolicies": ["ns/sel"],
     "services": {"ns/s.ns.svc": {"80": 8080, "443": 0}, "other/t.other.svc": {}}},
    {"uid": "u2", "namespace": "ns", "workloadIps": [], "services": {},
     "locality": {"region": "", "zone": "", "subzone": ""},
     "applicationTunnel": {"protocol": "NONE", "port": 0}}
  ],
  "services": [
    {"name": "s", "namespace": "ns", "hostname": "s.ns.svc",
     "vips": ["/198.19.0.1", "net1/2001:db8::a"],
     "cidrVips": [{"network": "", "cidr": "198.19.4.0/22"}, {"network": "n", "cidr": "2001:db8:1::/48"}],
     "ports": {"80": 8080, "443": 0},
     "subjectAltNames": ["spiffe://td.example/ns/ns/sa/s"],
     "endpoints": {"k1": {"workloadUid": "u2", "port": {"80": 9090}, "status": "Unhealthy"},
                   "k2": {"workloadUid": "u2", "port": {}, "status": "Healthy"}},
     "waypoint": {"destination": "/198.19.9.9", "hboneMtlsPort": 15008},
     "weightedWaypoints": [
       {"destination": {"destination": "ns/wp2.ns.svc", "hboneMtlsPort": 15008}, "weight": 3},
       {"destination": {"destination": "/198.19.9.10", "hboneMtlsPort": 15008}, "weight": 0}],
     "loadBalancer": {"routingPreferences": ["Network", "Region", "Zone", "Subzone", "Node",
                                             "Cluster"],
                      "mode": "Strict", "healthPolicy": "AllowAll"},
     "ipFamilies": "IPv6", "canonical": true, "visibility": "Namespace"},
    {"name": "", "namespace": "ns", "hostname": "t", "vips": [], "ports": {},
     "loadBalancer": {"routingPreferences": [], "mode": "Passthrough", "healthPolicy": "OnlyHealthy"},
     "ipFamilies": "Dual"}
  ],
  "policies": [
    {"name": "sel", "namespace": "ns", "scope": "WorkloadSelector", "action": "Deny",
     "dryRun": true,
     "rules": [[[{"namespaces": [{"Exact": "a"}], "notNamespaces": [{"Prefix": "b"}],
                  "serviceAccounts": [{"namespace": "ns", "serviceAccount": "x"}],
                  "notServiceAccounts": [{"namespace": "ns2", "serviceAccount": "y"}],
                  "principals": [{"Suffix": "/sa/x"}], "notPrincipals": [{"Presence": []}],
                  "sourceIps": ["198.18.0.0/16"], "notSourceIps": ["2001:db8::/32"],
                  "destinationIps": ["198.19.0.1/32"], "notDestinationIps": ["0.0.0.0/0"],
                  "destinationPorts": [0, 80, 65535], "notDestinationPorts": [9999]},
                 {}],
                [],
                [{"principals": [{"Exact": ""}]}]],
               []]},
    {"name": "g", "namespace": "istio-system", "scope": "Global", "action": "Allow",
     "dryRun": false, "rules": []}
  ],
  "pods": [{"uid": "Kubernetes//Pod/ns/a", "netns": "/var/run/netns/zt-a"},
           {"uid": "Kubernetes//Pod/ns/b", "netns": "/var/run/netns/zt-b", "name": "b",
            "namespace": "ns", "serviceAccount": "sa-b"}]
})";

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// sorted_unsupported puts `unsupported` in one order: parse lists keys in the order it meets
// them, and the writer's key order need not be the file's.
zt::state::Config sorted_unsupported(zt::state::Config config) {
    std::sort(config.unsupported.begin(), config.unsupported.end());
    return config;
}

// check_round_trip parses `text` (which must be valid), renders it, parses that again, and
// checks the structs are equal, the rendered text loads cleanly, and rendering is a fixed point.
void check_round_trip(std::string_view text) {
    auto first = parse(text);
    REQUIRE(first.errors.empty());
    std::string rendered = render(first.config);
    auto second = parse(rendered);
    INFO(rendered);
    REQUIRE(second.errors.empty());
    CHECK(sorted_unsupported(second.config) == sorted_unsupported(first.config));
    CHECK(render(second.config) == rendered);
    auto loaded = zt::config::load_text(rendered);
    CHECK(loaded.errors.empty());
}

}  // namespace

TEST_CASE("render: a document with every key survives parse, render and parse unchanged") {
    check_round_trip(kEveryKey);
}

TEST_CASE("render: tests/corpus/config/full.json and the localhost fixture round-trip") {
    check_round_trip(read_text("tests/corpus/config/full.json"));
    check_round_trip(read_text("tests/fixtures/localhost.json"));
}

TEST_CASE("render: every valid file of the config fuzz corpus round-trips") {
    size_t valid = 0;
    for (const auto& entry : std::filesystem::directory_iterator("tests/corpus/config")) {
        std::string text = read_text(entry.path());
        if (!parse(text).errors.empty()) {
            continue;
        }
        INFO(entry.path().string());
        check_round_trip(text);
        ++valid;
    }
    CHECK(valid >= 10);  // full.json, localhost.json, empty-object.json, fuzz-valid-*.
}

TEST_CASE("render: an empty config is four empty lists") {
    std::string text = render(zt::state::Config{});
    CHECK(text == "{\n\"workloads\": [],\n\"services\": [],\n\"policies\": [],\n\"pods\": []\n}\n");
    CHECK(parse(text).errors.empty());
}

TEST_CASE("render: one resource per line, in the order given") {
    auto parsed = parse(kEveryKey);
    REQUIRE(parsed.errors.empty());
    std::string text = render(parsed.config);
    // 2 workloads, 2 services, 2 policies, 2 pods, 4 section heads, 4 closing brackets, 2 braces.
    CHECK(std::count(text.begin(), text.end(), '\n') == 18);
    CHECK(text.find(R"({"uid":"Kubernetes//Pod/ns/b","netns":"/var/run/netns/zt-b","name":"b",)"
                    R"("namespace":"ns","serviceAccount":"sa-b"})") != std::string::npos);
    CHECK(text.find(R"({"uid":"Kubernetes//Pod/ns/a","netns":"/var/run/netns/zt-a"})") !=
          std::string::npos);
    CHECK(text.find("\"uid\":\"Kubernetes//Pod/ns/a\"") < text.find("\"uid\":\"u2\""));
}

TEST_CASE("render: keys a strict reader requires are written even when empty or default") {
    auto parsed = parse(kEveryKey);
    REQUIRE(parsed.errors.empty());
    std::string text = render(parsed.config);
    CHECK(text.find(R"("locality":{"region":"","zone":"","subzone":""})") != std::string::npos);
    CHECK(text.find(R"("loadBalancer":{"routingPreferences":[],"mode":"Passthrough",)"
                    R"("healthPolicy":"OnlyHealthy"})") != std::string::npos);
    CHECK(text.find(R"("waypoint":{"destination":"/198.19.9.9","hboneMtlsPort":15008})") !=
          std::string::npos);
    CHECK(text.find(R"("applicationTunnel":{"protocol":"NONE","port":0})") != std::string::npos);
    CHECK(text.find(R"("dryRun":false,"rules":[])") != std::string::npos);
    CHECK(text.find(R"({"uid":"u2","namespace":"ns","serviceAccount":"default",)"
                    R"("workloadIps":[],"protocol":"TCP",)") != std::string::npos);
    CHECK(text.find(R"("name":"","namespace":"ns","hostname":"t","vips":[],"ports":{})") !=
          std::string::npos);
}

TEST_CASE("render: an explicit endpoint listed twice keeps distinct map keys") {
    auto parsed = parse(kEveryKey);
    REQUIRE(parsed.errors.empty());
    std::string text = render(parsed.config);
    CHECK(text.find(R"("endpoints":{"u2":{"workloadUid":"u2")") != std::string::npos);
    CHECK(text.find(R"("u2#1":{"workloadUid":"u2")") != std::string::npos);
}

TEST_CASE("render: strings of any bytes are escaped into JSON that reads back") {
    using namespace std::string_literals;

    struct Row {
        std::string name;      // As held in the structs.
        std::string expected;  // As parse gives it back.
    };

    const Row rows[] = {
            {"plain", "plain"},
            {"quote\" back\\slash", "quote\" back\\slash"},
            {"nul\0tab\tnl\n\x1f"s, "nul\0tab\tnl\n\x1f"s},
            {"del\x7f", "del\x7f"},
            {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
            // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong form, a
            // surrogate, a code point above U+10FFFF; each bad byte becomes U+FFFD.
            {"a\x80z", "a\xef\xbf\xbdz"},
            {"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},
            {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
            {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
            {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (const Row& row : rows) {
        zt::state::Config config;
        zt::state::Policy policy;
        policy.name = row.name;
        policy.namespace_ = "ns";
        config.policies.push_back(policy);
        std::string text = render(config);
        auto parsed = parse(text);
        INFO(text);
        REQUIRE(parsed.errors.empty());
        REQUIRE(parsed.config.policies.size() == 1);
        CHECK(parsed.config.policies[0].name == row.expected);
    }
}
