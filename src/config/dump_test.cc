// Unit tests for `/config_dump`: a snapshot built from a small config with `load_text`, the
// other inputs filled by hand (plus one real certificate chain issued at run time), rendered,
// then parsed back with nlohmann and checked section by section against ztunnel's serde shape
// (docs/ecosystem.md §1.3): key sets, skipped fields, encodings, sorting and 2-space indentation.

#include "src/config/dump.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <openssl/base64.h>

#include "certs/dump.h"
#include "src/config/load.h"
#include "tests/support/test_ca.h"

namespace {

using json = nlohmann::json;
using zt::config::DumpConnection;
using zt::config::DumpInputs;
using zt::config::DumpPod;
using zt::config::render_config_dump;

// kConfig lists workloads, services and policies out of order on purpose, so that the dump's
// sorting is visible; `b-client` sets nearly every optional workload field and `a-server` none.
constexpr std::string_view kConfig = R"({
  "workloads": [
    {"uid": "Kubernetes//Pod/default/b-client", "name": "b-client", "namespace": "default",
     "serviceAccount": "client", "trustDomain": "example.org", "network": "net1",
     "workloadIps": ["198.18.1.2", "2001:db8::2"], "protocol": "HBONE", "node": "node1",
     "workloadName": "client", "workloadType": "deployment", "canonicalName": "client",
     "canonicalRevision": "v1", "nativeTunnel": true, "capacity": 3,
     "locality": {"region": "r1", "zone": "z1", "subzone": "s1"},
     "applicationTunnel": {"protocol": "PROXY"},
     "authorizationPolicies": ["default/allow-client"],
     "services": {"default/server.default.svc.cluster.local": {"80": 8080},
                  "default/alpha.default.svc.cluster.local": {}}},
    {"uid": "Kubernetes//Pod/default/a-server", "namespace": "default",
     "workloadIps": ["198.18.1.3"],
     "services": {"default/server.default.svc.cluster.local": {"80": 8080}}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10"], "ports": {"80": 8080, "443": 0},
     "subjectAltNames": ["spiffe://cluster.local/ns/default/sa/server"]},
    {"name": "alpha", "namespace": "default", "hostname": "alpha.default.svc.cluster.local",
     "vips": ["net1/198.19.0.11"], "cidrVips": [{"network": "", "cidr": "198.19.4.0/24"}],
     "ports": {"9090": 9090}, "canonical": true, "ipFamilies": "IPv4",
     "endpoints": {"Kubernetes//Pod/default/a-server":
                   {"workloadUid": "Kubernetes//Pod/default/a-server", "port": {"9090": 9091},
                    "status": "Healthy"}}}
  ],
  "policies": [
    {"name": "zz-deny", "namespace": "default", "scope": "Global", "action": "Deny",
     "dryRun": true, "rules": []},
    {"name": "allow-client", "namespace": "default", "scope": "WorkloadSelector",
     "action": "Allow", "dryRun": false,
     "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"},
                                 {"Prefix": "cluster.local/ns/"}],
                  "notPrincipals": [{"Suffix": "/sa/evil"}],
                  "namespaces": [{"Presence": []}],
                  "serviceAccounts": [{"namespace": "default", "serviceAccount": "client"}],
                  "sourceIps": ["198.18.0.0/16"], "notDestinationIps": ["198.19.9.9/32"],
                  "destinationPorts": [8080]}],
                [{}]],
               []]},
    {"name": "ns-allow", "namespace": "apps", "scope": "Namespace", "action": "Allow",
     "dryRun": false, "rules": [[[{"destinationIps": ["2001:db8::/32"]}]]]}
  ],
  "pods": [{"uid": "Kubernetes//Pod/default/b-client", "netns": "/var/run/netns/zt-b"}]
})";

// Fixture owns the snapshot the DumpInputs point into.
struct Fixture {
    zt::config::LoadResult loaded;
    DumpInputs inputs;

    Fixture() {
        loaded = zt::config::load_text(kConfig);
        INFO(loaded.errors.size());
        REQUIRE(loaded.errors.empty());
        REQUIRE(loaded.snapshot != nullptr);
        inputs.snapshot = loaded.snapshot.get();
        inputs.static_config = loaded.snapshot.get();
        inputs.version = "0.1.0";
        inputs.git_revision = "abc123";
        inputs.istio_version = "1.29.0";
        inputs.crypto_provider = "BoringSSL (Debian android-libboringssl)";
        inputs.unsupported = loaded.snapshot->config().unsupported;
        inputs.settings = {{"adminAddr", R"({"Localhost":[true,15000]})"},
                           {"numWorkerThreads", "2"},
                           {"drainTimeout", R"({"secs":5,"nanos":0})"},
                           {"clusterId", R"("Kubernetes")"}};
    }
};

// render_and_parse renders `inputs` and parses the text back; the text must be valid JSON.
json render_and_parse(const DumpInputs& inputs, std::string* text_out = nullptr) {
    std::string text = render_config_dump(inputs);
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    INFO(text);
    REQUIRE_FALSE(doc.is_discarded());
    REQUIRE(doc.is_object());
    if (text_out != nullptr) {
        *text_out = std::move(text);
    }
    return doc;
}

std::set<std::string> keys_of(const json& object) {
    std::set<std::string> keys;
    for (const auto& item : object.items()) {
        keys.insert(item.key());
    }
    return keys;
}

std::string base64_decode(const std::string& text) {
    size_t max_len = 0;
    REQUIRE(EVP_DecodedLength(&max_len, text.size()) == 1);
    std::string out(max_len, '\0');
    size_t out_len = 0;
    REQUIRE(EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &out_len, max_len,
                             reinterpret_cast<const uint8_t*>(text.data()), text.size()) == 1);
    out.resize(out_len);
    return out;
}

bool is_rfc3339_seconds(const std::string& text) {
    // YYYY-MM-DDTHH:MM:SSZ
    if (text.size() != 20) {
        return false;
    }
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        bool ok = (i == 4 || i == 7)     ? c == '-'
                  : (i == 10)            ? c == 'T'
                  : (i == 13 || i == 16) ? c == ':'
                  : (i == 19)            ? c == 'Z'
                                         : std::isdigit(static_cast<unsigned char>(c)) != 0;
        if (!ok) {
            return false;
        }
    }
    return true;
}

const std::set<std::string> kTopLevel = {"certificates",  "config",      "configStatus",
                                         "policies",      "services",    "stagedServices",
                                         "staticConfig",  "unsupported", "version",
                                         "workloadState", "workloads"};

}  // namespace

TEST_CASE("config dump: top-level keys are exactly ztunnel's plus ours, sorted, 2-space indent") {
    Fixture f;
    std::string text;
    json doc = render_and_parse(f.inputs, &text);
    CHECK(keys_of(doc) == kTopLevel);
    // Re-dumping the parsed value sorts every object's keys (std::map) with a 2-space indent:
    // equal text means the dump was already sorted and indented that way.
    CHECK(doc.dump(2) == text);
    CHECK(text.starts_with("{\n  \"certificates\": ["));
    CHECK(doc.at("stagedServices") == json::object());
    CHECK(keys_of(doc.at("staticConfig")) ==
          std::set<std::string>{"policies", "services", "workloads"});
}

TEST_CASE("config dump: workloads sorted by uid, with ztunnel's always/skip-when-empty fields") {
    Fixture f;
    json doc = render_and_parse(f.inputs);
    const json& workloads = doc.at("workloads");
    REQUIRE(workloads.is_array());
    REQUIRE(workloads.size() == 2);
    CHECK(workloads[0].at("uid") == "Kubernetes//Pod/default/a-server");
    CHECK(workloads[1].at("uid") == "Kubernetes//Pod/default/b-client");

    // The minimal workload: only the fields serde always writes, plus our defaulted
    // serviceAccount (ztunnel's xDS path defaults it to "default" too).
    const json& server = workloads[0];
    CHECK(keys_of(server) == std::set<std::string>{"capacity", "clusterId", "name", "namespace",
                                                   "networkMode", "protocol", "serviceAccount",
                                                   "services", "status", "uid", "workloadIps"});
    CHECK(server.at("name") == "");
    CHECK(server.at("protocol") == "TCP");
    CHECK(server.at("networkMode") == "Standard");
    CHECK(server.at("status") == "Healthy");
    CHECK(server.at("clusterId") == "Kubernetes");
    CHECK(server.at("capacity") == 1);
    CHECK(server.at("capacity").is_number_unsigned());
    CHECK(server.at("serviceAccount") == "default");
    CHECK(server.at("workloadIps") == json::array({"198.18.1.3"}));
    CHECK(server.at("services") == json::array({"default/server.default.svc.cluster.local"}));

    const json& client = workloads[1];
    CHECK(client.at("workloadIps") == json::array({"198.18.1.2", "2001:db8::2"}));
    CHECK(client.at("protocol") == "HBONE");
    CHECK(client.at("trustDomain") == "example.org");
    CHECK(client.at("network") == "net1");
    CHECK(client.at("node") == "node1");
    CHECK(client.at("workloadType") == "deployment");
    CHECK(client.at("canonicalRevision") == "v1");
    CHECK(client.at("nativeTunnel") == true);
    CHECK(client.at("capacity") == 3);
    CHECK(client.at("locality") == json({{"region", "r1"}, {"subzone", "s1"}, {"zone", "z1"}}));
    // ztunnel's `port: Option<u16>` has no skip attribute, so an unset port is null.
    CHECK(client.at("applicationTunnel") == json({{"port", nullptr}, {"protocol", "PROXY"}}));
    CHECK(client.at("authorizationPolicies") == json::array({"default/allow-client"}));
    // A list of `ns/hostname`, sorted.
    CHECK(client.at("services") == json::array({"default/alpha.default.svc.cluster.local",
                                                "default/server.default.svc.cluster.local"}));
    CHECK_FALSE(client.contains("waypoint"));
    CHECK_FALSE(client.contains("networkGateway"));
    CHECK_FALSE(client.contains("hostname"));
}

TEST_CASE("config dump: services sorted by hostname with resolved endpoints and network/ip vips") {
    Fixture f;
    json doc = render_and_parse(f.inputs);
    const json& services = doc.at("services");
    REQUIRE(services.size() == 2);
    CHECK(services[0].at("hostname") == "alpha.default.svc.cluster.local");
    CHECK(services[1].at("hostname") == "server.default.svc.cluster.local");

    const json& server = services[1];
    CHECK(keys_of(server) == std::set<std::string>{"canonical", "endpoints", "hostname", "name",
                                                   "namespace", "ports", "subjectAltNames", "vips",
                                                   "visibility"});
    CHECK(server.at("vips") == json::array({"/198.19.0.10"}));
    CHECK(server.at("ports") == json({{"443", 0}, {"80", 8080}}));
    CHECK(server.at("subjectAltNames") ==
          json::array({"spiffe://cluster.local/ns/default/sa/server"}));
    CHECK(server.at("canonical") == false);
    CHECK(server.at("visibility") == "Public");
    // Endpoints come from the workloads' `services` maps, keyed by workload uid.
    const json& endpoints = server.at("endpoints");
    CHECK(keys_of(endpoints) == std::set<std::string>{"Kubernetes//Pod/default/a-server",
                                                      "Kubernetes//Pod/default/b-client"});
    CHECK(endpoints.at("Kubernetes//Pod/default/b-client") ==
          json({{"port", {{"80", 8080}}},
                {"status", "Healthy"},
                {"workloadUid", "Kubernetes//Pod/default/b-client"}}));

    const json& alpha = services[0];
    CHECK(alpha.at("vips") == json::array({"net1/198.19.0.11"}));
    CHECK(alpha.at("cidrVips") ==
          json::array({json({{"cidr", "198.19.4.0/24"}, {"network", ""}})}));
    CHECK(alpha.at("ipFamilies") == "IPv4");
    CHECK(alpha.at("canonical") == true);
    CHECK(alpha.at("subjectAltNames") == json::array());
    CHECK_FALSE(alpha.contains("waypoint"));
    CHECK_FALSE(alpha.contains("loadBalancer"));
    // The explicit endpoint plus b-client's (empty) port map.
    CHECK(alpha.at("endpoints").size() == 2);
    CHECK(alpha.at("endpoints").at("Kubernetes//Pod/default/a-server").at("port") ==
          json({{"9090", 9091}}));
}

TEST_CASE("config dump: policies sorted by namespace/name, rules triple-nested, matches tagged") {
    Fixture f;
    json doc = render_and_parse(f.inputs);
    const json& policies = doc.at("policies");
    REQUIRE(policies.size() == 3);
    CHECK(policies[0].at("namespace") == "apps");
    CHECK(policies[1].at("name") == "allow-client");
    CHECK(policies[2].at("name") == "zz-deny");

    const json& deny = policies[2];
    CHECK(keys_of(deny) ==
          std::set<std::string>{"action", "dryRun", "name", "namespace", "rules", "scope"});
    CHECK(deny.at("action") == "Deny");
    CHECK(deny.at("scope") == "Global");
    CHECK(deny.at("dryRun") == true);
    CHECK(deny.at("rules") == json::array());

    const json& allow = policies[1];
    CHECK(allow.at("scope") == "WorkloadSelector");
    CHECK(allow.at("dryRun") == false);
    const json& rules = allow.at("rules");
    REQUIRE(rules.size() == 2);
    REQUIRE(rules[0].size() == 2);                        // Two clauses.
    CHECK(rules[1] == json::array());                     // An empty rule stays an empty array.
    CHECK(rules[0][1] == json::array({json::object()}));  // An empty match renders as {}.
    const json& match = rules[0][0][0];
    CHECK(match.at("principals") ==
          json::array({json({{"Exact", "cluster.local/ns/default/sa/client"}}),
                       json({{"Prefix", "cluster.local/ns/"}})}));
    CHECK(match.at("notPrincipals") == json::array({json({{"Suffix", "/sa/evil"}})}));
    // `Presence()` is a serde tuple variant with no fields: an empty array, not null.
    CHECK(match.at("namespaces") == json::array({json({{"Presence", json::array()}})}));
    CHECK(match.at("serviceAccounts") ==
          json::array({json({{"namespace", "default"}, {"serviceAccount", "client"}})}));
    CHECK(match.at("sourceIps") == json::array({"198.18.0.0/16"}));
    CHECK(match.at("notDestinationIps") == json::array({"198.19.9.9/32"}));
    CHECK(match.at("destinationPorts") == json::array({8080}));
    CHECK(keys_of(match).size() == 7);  // Empty fields are skipped.
    CHECK(policies[0].at("rules")[0][0][0].at("destinationIps") == json::array({"2001:db8::/32"}));
}

TEST_CASE("config dump: staticConfig is the file as LocalConfig, in file order") {
    Fixture f;
    json doc = render_and_parse(f.inputs);
    const json& file = doc.at("staticConfig");
    REQUIRE(file.at("workloads").size() == 2);
    CHECK(file.at("workloads")[0].at("uid") == "Kubernetes//Pod/default/b-client");
    // LocalWorkload's `services` is the file's map of port maps, not the runtime key list.
    CHECK(file.at("workloads")[1].at("services") ==
          json({{"default/server.default.svc.cluster.local", {{"80", 8080}}}}));
    REQUIRE(file.at("services").size() == 2);
    CHECK(file.at("services")[0].at("hostname") == "server.default.svc.cluster.local");
    // A file service shows only the endpoints the file itself lists.
    CHECK(file.at("services")[0].at("endpoints") == json::object());
    CHECK(file.at("services")[1].at("endpoints").size() == 1);
    REQUIRE(file.at("policies").size() == 3);
    CHECK(file.at("policies")[0].at("name") == "zz-deny");
    CHECK(file.at("policies")[1] == doc.at("policies")[1]);
}

TEST_CASE("config dump: certificates sorted by identity, with real chains") {
    Fixture f;
    auto ca = zt::testing::TestCa::root();
    auto leaf = ca.issue_leaf("spiffe://cluster.local/ns/default/sa/client");
    zt::certs::CertificateDump client;
    client.identity = "spiffe://cluster.local/ns/default/sa/client";
    client.state = "Available";
    client.cert_chain.push_back(zt::certs::dump_cert(leaf.cert.get()));
    client.root_certs.push_back(zt::certs::dump_cert(ca.cert()));
    zt::certs::CertificateDump pending;
    pending.identity = "spiffe://cluster.local/ns/apps/sa/api";
    pending.state = "Initializing";
    f.inputs.certificates = {client, pending};

    json doc = render_and_parse(f.inputs);
    const json& certs = doc.at("certificates");
    REQUIRE(certs.size() == 2);
    CHECK(certs[0].at("identity") == "spiffe://cluster.local/ns/apps/sa/api");
    CHECK(certs[0].at("state") == "Initializing");
    CHECK(certs[0].at("certChain") == json::array());
    CHECK(certs[0].at("rootCerts") == json::array());

    const json& entry = certs[1];
    CHECK(keys_of(entry) == std::set<std::string>{"certChain", "identity", "rootCerts", "state"});
    REQUIRE(entry.at("certChain").size() == 1);
    const json& cert = entry.at("certChain")[0];
    CHECK(keys_of(cert) ==
          std::set<std::string>{"expirationTime", "pem", "serialNumber", "validFrom"});
    // `pem` is base64 of the PEM text (istioctl decodes it that way).
    CHECK(base64_decode(cert.at("pem").get<std::string>()) == leaf.cert_pem);
    std::string serial = cert.at("serialNumber").get<std::string>();
    CHECK_FALSE(serial.empty());
    CHECK(std::all_of(serial.begin(), serial.end(),
                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }));
    CHECK(is_rfc3339_seconds(cert.at("validFrom").get<std::string>()));
    CHECK(is_rfc3339_seconds(cert.at("expirationTime").get<std::string>()));
    CHECK(cert.at("validFrom").get<std::string>() < cert.at("expirationTime").get<std::string>());
    REQUIRE(entry.at("rootCerts").size() == 1);
    CHECK(base64_decode(entry.at("rootCerts")[0].at("pem").get<std::string>()) == ca.root_pem());
}

TEST_CASE("config dump: workloadState has state, info and connections with null originalDst") {
    Fixture f;
    DumpPod up;
    up.uid = "Kubernetes//Pod/default/b-client";
    up.up = true;
    up.name = "b-client";
    up.namespace_name = "default";
    up.service_account = "client";
    up.outbound.push_back(
            DumpConnection{"198.18.1.2:43210", "198.19.0.10:80", "198.18.1.3:15008", "HBONE"});
    up.inbound.push_back(DumpConnection{"198.18.1.3:5000", "", "198.18.1.2:8080", "TCP"});
    DumpPod pending;
    pending.uid = "Kubernetes//Pod/default/c-late";
    pending.name = "c-late";
    pending.namespace_name = "default";
    pending.service_account = "default";
    f.inputs.pods = {up, pending};

    json doc = render_and_parse(f.inputs);
    const json& state = doc.at("workloadState");
    CHECK(keys_of(state) == std::set<std::string>{"Kubernetes//Pod/default/b-client",
                                                  "Kubernetes//Pod/default/c-late"});
    const json& client = state.at("Kubernetes//Pod/default/b-client");
    CHECK(keys_of(client) == std::set<std::string>{"connections", "info", "state"});
    CHECK(client.at("state") == "Up");
    CHECK(client.at("info") ==
          json({{"name", "b-client"}, {"namespace", "default"}, {"serviceAccount", "client"}}));
    CHECK(client.at("connections").at("outbound") ==
          json::array({json({{"actualDst", "198.18.1.3:15008"},
                             {"originalDst", "198.19.0.10:80"},
                             {"protocol", "HBONE"},
                             {"src", "198.18.1.2:43210"}})}));
    const json& inbound = client.at("connections").at("inbound");
    REQUIRE(inbound.size() == 1);
    CHECK(inbound[0].at("originalDst").is_null());
    CHECK(inbound[0].at("actualDst") == "198.18.1.2:8080");
    const json& late = state.at("Kubernetes//Pod/default/c-late");
    CHECK(late.at("state") == "Pending");
    CHECK(late.at("connections") ==
          json({{"inbound", json::array()}, {"outbound", json::array()}}));
}

TEST_CASE("config dump: config values are inserted as JSON, version is ztunnel's BuildInfo") {
    Fixture f;
    f.inputs.settings.push_back({"brokenByCaller", "{not json"});
    json doc = render_and_parse(f.inputs);
    const json& config = doc.at("config");
    CHECK(config.at("adminAddr") == json({{"Localhost", json::array({true, 15000})}}));
    CHECK(config.at("numWorkerThreads") == 2);
    CHECK(config.at("drainTimeout") == json({{"nanos", 0}, {"secs", 5}}));
    CHECK(config.at("clusterId") == "Kubernetes");
    // A value its owner failed to encode is shown as text rather than breaking the document.
    CHECK(config.at("brokenByCaller") == "{not json");

    CHECK(doc.at("version") == json({{"buildProfile", "release"},
                                     {"buildStatus", "Clean"},
                                     {"cryptoProvider", "BoringSSL (Debian android-libboringssl)"},
                                     {"gitRevision", "abc123"},
                                     {"istioVersion", "1.29.0"},
                                     {"rustVersion", "n/a (C++20)"},
                                     {"version", "0.1.0"}}));
    // `unsupported` lists what the file used that we accept but do not act on; the application
    // tunnel is acted on (issue 16), so it is not listed.
    const json& unsupported = doc.at("unsupported");
    CHECK(unsupported.is_array());
    CHECK(std::find(unsupported.begin(), unsupported.end(),
                    json("workloads[].applicationTunnel")) == unsupported.end());
}

TEST_CASE("config dump: configStatus has nulls before the first load, then times and errors") {
    Fixture f;
    f.inputs.status.path = "/etc/ztunnel/config.json";
    json doc = render_and_parse(f.inputs);
    const json& before = doc.at("configStatus");
    CHECK(keys_of(before) == std::set<std::string>{"appliedSha256", "lastError", "lastErrors",
                                                   "lastFailure", "lastLoaded", "path",
                                                   "reloadsFailure", "reloadsSuccess", "warnings"});
    CHECK(before.at("path") == "/etc/ztunnel/config.json");
    CHECK(before.at("lastLoaded").is_null());
    CHECK(before.at("lastFailure").is_null());
    CHECK(before.at("lastError").is_null());
    CHECK(before.at("lastErrors") == json::array());
    CHECK(before.at("warnings") == json::array());
    CHECK(before.at("reloadsSuccess") == 0);
    CHECK(before.at("appliedSha256") == "");

    f.inputs.status.last_loaded_unix_ns = 1'750'000'000'123'456'789;  // 2025-06-15T15:06:40Z
    f.inputs.status.last_failure_unix_ns = 1'750'000'061'000'000'000;
    f.inputs.status.applied_sha256 = f.loaded.sha256;
    f.inputs.status.reloads_success_total = 3;
    f.inputs.status.reloads_failure_total = 1;
    f.inputs.status.last_errors = {"workloads[0].uid: must not be empty",
                                   "pods[1]: missing required key \"netns\""};
    f.inputs.status.warnings = {"services[].waypoint: not supported yet"};
    doc = render_and_parse(f.inputs);
    const json& after = doc.at("configStatus");
    CHECK(after.at("lastLoaded") == "2025-06-15T15:06:40Z");
    CHECK(after.at("lastFailure") == "2025-06-15T15:07:41Z");
    CHECK(after.at("appliedSha256") == f.loaded.sha256);
    CHECK(after.at("appliedSha256").get<std::string>().size() == 64);
    CHECK(after.at("reloadsSuccess") == 3);
    CHECK(after.at("reloadsFailure") == 1);
    CHECK(after.at("lastError") ==
          "workloads[0].uid: must not be empty\npods[1]: missing required key \"netns\"");
    CHECK(after.at("lastErrors").size() == 2);
    CHECK(after.at("warnings") == json::array({"services[].waypoint: not supported yet"}));
}

TEST_CASE("config dump: no snapshot yet renders valid JSON with empty sections") {
    DumpInputs empty;
    std::string text;
    json doc = render_and_parse(empty, &text);
    CHECK(keys_of(doc) == kTopLevel);
    CHECK(doc.dump(2) == text);
    CHECK(doc.at("workloads") == json::array());
    CHECK(doc.at("services") == json::array());
    CHECK(doc.at("policies") == json::array());
    CHECK(doc.at("certificates") == json::array());
    CHECK(doc.at("config") == json::object());
    CHECK(doc.at("workloadState") == json::object());
    CHECK(doc.at("unsupported") == json::array());
    CHECK(doc.at("staticConfig") == json({{"policies", json::array()},
                                          {"services", json::array()},
                                          {"workloads", json::array()}}));
    CHECK(doc.at("configStatus").at("lastLoaded").is_null());
    CHECK(doc.at("version").at("rustVersion") == "n/a (C++20)");
}

TEST_CASE("config dump: invalid UTF-8 in a string is replaced, never fatal") {
    DumpInputs inputs;
    // An error that quotes raw bytes of a broken file.
    inputs.status.last_errors = {std::string("bad byte \xff\xfe here")};
    inputs.certificates.push_back({"spiffe://x/ns/a/sa/\xc3", "Unavailable: \x80", {}, {}});
    json doc = render_and_parse(inputs);
    CHECK(doc.at("configStatus").at("lastErrors")[0] == "bad byte \xef\xbf\xbd\xef\xbf\xbd here");
    CHECK(doc.at("certificates")[0].at("state") == "Unavailable: \xef\xbf\xbd");
}
