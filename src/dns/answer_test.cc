// Table tests for the DNS proxy's answer logic, row for row ztunnel's `lookup` cases in its
// src/dns/server.rs (same services, names and expectations, with addresses from the test
// ranges), plus the handler's checks (FORMERR, NOTIMP, SERVFAIL for an unknown client), the
// class and case rules, IPV6_ENABLED, and the deterministic shuffle. One row per rule.

#include "src/dns/answer.h"

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/config/load.h"

namespace {

using zt::dns::kTypeA;
using zt::dns::kTypeAaaa;
using zt::dns::Name;
using zt::dns::Query;
using zt::dns::Verdict;

constexpr uint16_t kTypeNs = 2;
constexpr uint16_t kTypeMx = 15;

// The mesh of ztunnel's `state()` test helper. The client is in ns1 on network nw1.
constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns1/client", "name": "client", "namespace": "ns1", "network": "nw1",
     "canonicalName": "client", "canonicalRevision": "v1", "workloadIps": ["198.18.1.2"],
     "services": {}},
    {"uid": "c//Pod/ns1/headless0", "name": "headless0", "namespace": "ns1", "network": "nw1",
     "workloadIps": ["198.18.3.30", "2001:db8::30"],
     "services": {"ns1/headless.ns1.svc.cluster.local": {"80": 80}}},
    {"uid": "c//Pod/ns1/headless1", "name": "headless1", "namespace": "ns1", "network": "nw1",
     "workloadIps": ["2001:db8::31", "198.18.3.31"],
     "services": {"ns1/headless.ns1.svc.cluster.local": {"80": 80}}},
    {"uid": "c//Pod/ns1/headless-external", "name": "headless-external", "namespace": "ns1",
     "network": "nw1", "workloadIps": ["198.18.3.32", "2001:db8::32"],
     "services": {"ns1/headless.example.com": {"80": 80}}},
    {"uid": "c//Pod/ns1/headless2", "name": "headless2", "namespace": "ns1", "network": "nw1",
     "workloadIps": ["198.18.3.33", "2001:db8::33"],
     "services": {"ns1/headless-ipv6.ns1.svc.cluster.local": {"80": 80}}}
  ],
  "services": [
    {"name": "www.google.com", "namespace": "ns1", "hostname": "www.google.com",
     "vips": ["nw1/198.19.1.1"], "ports": {"80": 80}},
    {"name": "productpage", "namespace": "ns1", "hostname": "productpage.ns1.svc.cluster.local",
     "vips": ["nw1/198.19.9.9"], "ports": {"80": 80}},
    {"name": "example", "namespace": "ns2", "hostname": "example.ns2.svc.cluster.local",
     "vips": ["nw1/198.19.10.10"], "ports": {"80": 80}},
    {"name": "nslocal", "namespace": "ns2", "hostname": "nslocal.ns2.svc.cluster.local",
     "vips": ["nw1/198.19.10.240"], "ports": {"80": 80}, "visibility": "Namespace"},
    {"name": "nslocalsame", "namespace": "ns1",
     "hostname": "nslocalsame.ns1.svc.cluster.local", "vips": ["nw1/198.19.10.241"],
     "ports": {"80": 80}, "visibility": "Namespace"},
    {"name": "everywhere.io", "namespace": "ns2", "hostname": "everywhere.io",
     "vips": ["nw1/198.19.10.110"], "ports": {"80": 80}},
    {"name": "preferred.io", "namespace": "ns2", "hostname": "preferred.io",
     "vips": ["nw1/198.19.10.210"], "ports": {"80": 80}},
    {"name": "everywhere.io", "namespace": "preferred-ns", "hostname": "everywhere.io",
     "vips": ["nw1/198.19.10.111"], "ports": {"80": 80}},
    {"name": "preferred.io", "namespace": "preferred-ns", "hostname": "preferred.io",
     "vips": ["nw1/198.19.10.211"], "ports": {"80": 80}},
    {"name": "everywhere.io", "namespace": "ns1", "hostname": "everywhere.io",
     "vips": ["nw1/198.19.10.112"], "ports": {"80": 80}},
    {"name": "canonical.svc", "namespace": "ns2", "hostname": "canonical.svc",
     "vips": ["nw1/198.19.10.140"], "ports": {"80": 80}},
    {"name": "canonical.svc", "namespace": "ns3", "hostname": "canonical.svc",
     "vips": ["nw1/198.19.10.141"], "ports": {"80": 80}, "canonical": true},
    {"name": "canonical.with.local", "namespace": "ns1", "hostname": "canonical.with.local",
     "vips": ["nw1/198.19.10.150"], "ports": {"80": 80}},
    {"name": "canonical.with.local", "namespace": "ns2", "hostname": "canonical.with.local",
     "vips": ["nw1/198.19.10.151"], "ports": {"80": 80}, "canonical": true},
    {"name": "details", "namespace": "ns2", "hostname": "details.ns2.svc.cluster.remote",
     "vips": ["nw1/198.19.11.11", "nw1/198.19.11.12", "nw1/198.19.11.13", "nw1/198.19.11.14"],
     "ports": {"80": 80}},
    {"name": "ipv4.localhost", "namespace": "ns1", "hostname": "ipv4.localhost",
     "vips": ["nw1/198.19.2.2"], "ports": {"80": 80}},
    {"name": "ipv6.localhost", "namespace": "ns1", "hostname": "ipv6.localhost",
     "vips": ["nw1/2001:db8::ff00:42:8329"], "ports": {"80": 80}},
    {"name": "dual.localhost", "namespace": "ns1", "hostname": "dual.localhost",
     "vips": ["nw1/198.19.2.2", "nw1/2001:db8::ff00:42:8329"], "ports": {"80": 80}},
    {"name": "v4only", "namespace": "ns1", "hostname": "v4only.ns1.svc.cluster.local",
     "vips": ["nw1/198.19.2.3", "nw1/2001:db8::ff00:42:3"], "ports": {"80": 80},
     "ipFamilies": "IPv4"},
    {"name": "*.wildcard", "namespace": "ns1", "hostname": "*.wildcard",
     "vips": ["nw1/198.19.20.10"], "ports": {"80": 80}},
    {"name": "*.b.wildcard", "namespace": "ns1", "hostname": "*.b.wildcard",
     "vips": ["nw1/198.19.20.11"], "ports": {"80": 80}},
    {"name": "*.svc.mesh.company.net", "namespace": "ns1", "hostname": "*.svc.mesh.company.net",
     "vips": ["nw1/198.19.20.12"], "ports": {"80": 80}},
    {"name": "nw2-only", "namespace": "ns1", "hostname": "nw2-only.ns1.svc.cluster.local",
     "vips": ["nw2/198.19.20.20"], "ports": {"80": 80}},
    {"name": "both-networks", "namespace": "ns1",
     "hostname": "both-networks.ns1.svc.cluster.local",
     "vips": ["nw1/198.19.21.21", "nw2/198.19.22.22"], "ports": {"80": 80}},
    {"name": "headless", "namespace": "ns1", "hostname": "headless.ns1.svc.cluster.local",
     "vips": [], "ports": {"80": 80}},
    {"name": "headless.example.com", "namespace": "ns1", "hostname": "headless.example.com",
     "vips": [], "ports": {"80": 80}},
    {"name": "headless-no-endpoints.example.com", "namespace": "ns1",
     "hostname": "headless-no-endpoints.example.com", "vips": [], "ports": {"80": 80}},
    {"name": "headless-ipv6", "namespace": "ns1",
     "hostname": "headless-ipv6.ns1.svc.cluster.local", "vips": [], "ports": {"80": 80},
     "ipFamilies": "IPv6"}
  ]
})";

Query question(std::string_view host, uint16_t type) {
    Query query;
    query.id = 0x1234;
    query.recursion_desired = true;
    query.question_count = 1;
    query.name = *Name::parse(host);
    query.type = type;
    query.qclass = zt::dns::kClassIn;
    return query;
}

// render writes records as `CNAME from>to` and `A owner ip`, address records sorted (the
// order is shuffled on purpose; the shuffle has its own test).
std::string render(const std::vector<zt::dns::Record>& records) {
    std::vector<std::string> cnames;
    std::vector<std::string> addresses;
    for (const auto& record : records) {
        if (record.type == zt::dns::kTypeCname) {
            cnames.push_back("CNAME " + record.owner.to_fqdn() + ">" + record.target.to_fqdn());
        } else {
            addresses.push_back((record.type == kTypeA ? "A " : "AAAA ") + record.owner.to_fqdn() +
                                " " + record.address.to_string());
        }
    }
    std::sort(addresses.begin(), addresses.end());
    std::string out;
    for (const auto& line : cnames) {
        out += (out.empty() ? "" : ",") + line;
    }
    for (const auto& line : addresses) {
        out += (out.empty() ? "" : ",") + line;
    }
    return out;
}

struct Row {
    const char* what;
    const char* host;
    uint16_t type;
    Verdict verdict;
    const char* records;
};

}  // namespace

TEST_CASE("dns answer: decide follows ztunnel's lookup table") {
    auto loaded = zt::config::load_text(kMesh);
    for (const auto& e : loaded.errors) {
        MESSAGE(e);
    }
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* client = snap.workload_by_uid("c//Pod/ns1/client");
    REQUIRE(client);
    zt::dns::AnswerOptions options;
    options.preferred_namespace = "preferred-ns";

    const Row rows[] = {
            {"an unsupported record type is forwarded", "productpage.ns1.", kTypeNs,
             Verdict::forward, ""},
            {"a non-k8s host of the mesh", "www.google.com", kTypeA, Verdict::answer,
             "A www.google.com. 198.19.1.1"},
            {"a non-k8s host with the search namespace gets CNAME + A",
             "www.google.com.ns1.svc.cluster.local.", kTypeA, Verdict::answer,
             "CNAME www.google.com.ns1.svc.cluster.local.>www.google.com.,"
             "A www.google.com. 198.19.1.1"},
            {"a non-k8s host not in the mesh is forwarded", "www.bing.com", kTypeA,
             Verdict::forward, ""},
            {"k8s host, FQDN", "productpage.ns1.svc.cluster.local.", kTypeA, Verdict::answer,
             "A productpage.ns1.svc.cluster.local. 198.19.9.9"},
            {"k8s host, name.namespace", "productpage.ns1.", kTypeA, Verdict::answer,
             "A productpage.ns1. 198.19.9.9"},
            {"k8s host, short name", "productpage.", kTypeA, Verdict::answer,
             "A productpage. 198.19.9.9"},
            {"k8s host as name.namespace with the search namespace: CNAME + A",
             "productpage.ns1.ns1.svc.cluster.local.", kTypeA, Verdict::answer,
             "CNAME productpage.ns1.ns1.svc.cluster.local.>productpage.ns1.,"
             "A productpage.ns1. 198.19.9.9"},
            {"AAAA for an IPv4 k8s host with the search namespace: no records, no CNAME",
             "productpage.ns1.ns1.svc.cluster.local.", kTypeAaaa, Verdict::answer, ""},
            {"another namespace, name.namespace", "example.ns2.", kTypeA, Verdict::answer,
             "A example.ns2. 198.19.10.10"},
            {"another namespace, FQDN", "example.ns2.svc.cluster.local.", kTypeA, Verdict::answer,
             "A example.ns2.svc.cluster.local. 198.19.10.10"},
            {"visibility: a Namespace-scoped service of another namespace is forwarded",
             "nslocal.ns2.svc.cluster.local.", kTypeA, Verdict::forward, ""},
            {"visibility: a Namespace-scoped service of the client's namespace resolves",
             "nslocalsame.ns1.svc.cluster.local.", kTypeA, Verdict::answer,
             "A nslocalsame.ns1.svc.cluster.local. 198.19.10.241"},
            {"another namespace, name.namespace.svc", "example.ns2.svc.", kTypeA, Verdict::answer,
             "A example.ns2.svc. 198.19.10.10"},
            {"another namespace, short name is forwarded", "example.", kTypeA, Verdict::forward,
             ""},
            {"remote cluster domain, FQDN", "details.ns2.svc.cluster.remote.", kTypeA,
             Verdict::answer,
             "A details.ns2.svc.cluster.remote. 198.19.11.11,"
             "A details.ns2.svc.cluster.remote. 198.19.11.12,"
             "A details.ns2.svc.cluster.remote. 198.19.11.13,"
             "A details.ns2.svc.cluster.remote. 198.19.11.14"},
            {"remote cluster domain, name.namespace is forwarded", "details.ns2.", kTypeA,
             Verdict::forward, ""},
            {"A returns A records only", "dual.localhost.", kTypeA, Verdict::answer,
             "A dual.localhost. 198.19.2.2"},
            {"AAAA returns AAAA records only", "dual.localhost.", kTypeAaaa, Verdict::answer,
             "AAAA dual.localhost. 2001:db8::ff00:42:8329"},
            {"A for an IPv6-only host: empty, not NXDOMAIN", "ipv6.localhost.", kTypeA,
             Verdict::answer, ""},
            {"AAAA for an IPv4-only host: empty, not NXDOMAIN", "ipv4.localhost.", kTypeAaaa,
             Verdict::answer, ""},
            {"ipFamilies IPv4 hides the IPv6 VIP", "v4only.ns1.svc.cluster.local.", kTypeAaaa,
             Verdict::answer, ""},
            {"ipFamilies IPv4 still answers A", "v4only.ns1.svc.cluster.local.", kTypeA,
             Verdict::answer, "A v4only.ns1.svc.cluster.local. 198.19.2.3"},
            {"a wildcard", "foo.wildcard.", kTypeA, Verdict::answer,
             "A foo.wildcard. 198.19.20.10"},
            {"the most specific wildcard", "a.b.wildcard.", kTypeA, Verdict::answer,
             "A a.b.wildcard. 198.19.20.11"},
            {"a wildcard with a domain", "foo.svc.mesh.company.net.", kTypeA, Verdict::answer,
             "A foo.svc.mesh.company.net. 198.19.20.12"},
            {"a wildcard with namespace and domain", "foo.foons.svc.mesh.company.net.", kTypeA,
             Verdict::answer, "A foo.foons.svc.mesh.company.net. 198.19.20.12"},
            {"a wildcard through a search domain: no CNAME, the asked name",
             "foo.svc.mesh.company.net.ns1.svc.cluster.local.", kTypeA, Verdict::answer,
             "A foo.svc.mesh.company.net.ns1.svc.cluster.local. 198.19.20.12"},
            {"no VIP on the client's network: no records", "nw2-only.ns1.svc.cluster.local.",
             kTypeA, Verdict::answer, ""},
            {"only the VIP of the client's network", "both-networks.ns1.svc.cluster.local.", kTypeA,
             Verdict::answer, "A both-networks.ns1.svc.cluster.local. 198.19.21.21"},
            {"headless service: endpoint IPs for A", "headless.ns1.svc.cluster.local.", kTypeA,
             Verdict::answer,
             "A headless.ns1.svc.cluster.local. 198.18.3.30,"
             "A headless.ns1.svc.cluster.local. 198.18.3.31"},
            {"headless service: endpoint IPs for AAAA", "headless.ns1.svc.cluster.local.",
             kTypeAaaa, Verdict::answer,
             "AAAA headless.ns1.svc.cluster.local. 2001:db8::30,"
             "AAAA headless.ns1.svc.cluster.local. 2001:db8::31"},
            {"headless IPv6 service answers AAAA", "headless-ipv6.ns1.svc.cluster.local.",
             kTypeAaaa, Verdict::answer, "AAAA headless-ipv6.ns1.svc.cluster.local. 2001:db8::33"},
            {"headless IPv6 service: A is empty", "headless-ipv6.ns1.svc.cluster.local.", kTypeA,
             Verdict::answer, ""},
            {"k8s pod FQDN (a TODO in ztunnel) is forwarded",
             "headless.pod0.ns1.svc.cluster.local.", kTypeA, Verdict::forward, ""},
            {"k8s pod name.domain.ns (a TODO in ztunnel) is forwarded", "headless.pod0.ns1.",
             kTypeA, Verdict::forward, ""},
            {"an external service without VIPs or endpoints is forwarded",
             "headless-no-endpoints.example.com", kTypeA, Verdict::forward, ""},
            {"an external service without VIPs is forwarded (DNS-resolved ServiceEntry)",
             "headless.example.com", kTypeA, Verdict::forward, ""},
            {"the preferred namespace wins over the first", "preferred.io.", kTypeA,
             Verdict::answer, "A preferred.io. 198.19.10.211"},
            {"the client's namespace wins over the preferred one", "everywhere.io.", kTypeA,
             Verdict::answer, "A everywhere.io. 198.19.10.112"},
            {"a canonical service wins when the client's namespace has none", "canonical.svc",
             kTypeA, Verdict::answer, "A canonical.svc. 198.19.10.141"},
            {"the client's namespace wins over a canonical service", "canonical.with.local", kTypeA,
             Verdict::answer, "A canonical.with.local. 198.19.10.150"},
            {"names match ignoring case; the owner keeps the asked case", "ProductPage.NS1.",
             kTypeA, Verdict::answer, "A ProductPage.NS1. 198.19.9.9"},
            {"MX for a mesh name is forwarded", "productpage.ns1.svc.cluster.local.", kTypeMx,
             Verdict::forward, ""},
    };
    for (const Row& row : rows) {
        CAPTURE(row.what);
        Query query = question(row.host, row.type);
        auto decision = zt::dns::decide(&snap, client, query, options, 42);
        CHECK(decision.verdict == row.verdict);
        CHECK(render(decision.records) == row.records);
        if (decision.verdict == Verdict::answer) {
            CHECK(decision.service != nullptr);
            CHECK((decision.result == "success") == !decision.records.empty());
            CHECK(decision.endpoints ==
                  std::count_if(decision.records.begin(), decision.records.end(),
                                [](const auto& r) { return r.type != zt::dns::kTypeCname; }));
        }
    }
}

TEST_CASE("dns answer: the log result says why a found name has no records") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto* client = loaded.snapshot->workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;
    auto found = [&](std::string_view host, uint16_t type) {
        return zt::dns::decide(loaded.snapshot.get(), client, question(host, type), options, 1);
    };
    CHECK(found("productpage.ns1.", kTypeA).result == "success");
    CHECK(found("ipv4.localhost.", kTypeAaaa).result == "no records");
    CHECK(found("nw2-only.ns1.svc.cluster.local.", kTypeA).result == "no records");
    CHECK(found("v4only.ns1.svc.cluster.local.", kTypeAaaa).result ==
          "service does not support this record type");
}

TEST_CASE("dns answer: handler checks come before the lookup") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto& snap = *loaded.snapshot;
    const auto* client = snap.workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;

    Query response = question("productpage.ns1.", kTypeA);
    response.response = true;
    CHECK(zt::dns::decide(&snap, client, response, options, 0).verdict == Verdict::formerr);

    Query notify = question("productpage.ns1.", kTypeA);
    notify.opcode = 4;
    CHECK(zt::dns::decide(&snap, client, notify, options, 0).verdict == Verdict::notimp);

    Query none = question("productpage.ns1.", kTypeA);
    none.question_count = 0;
    CHECK(zt::dns::decide(&snap, client, none, options, 0).verdict == Verdict::formerr);
    Query two = question("productpage.ns1.", kTypeA);
    two.question_count = 2;
    CHECK(zt::dns::decide(&snap, client, two, options, 0).verdict == Verdict::formerr);

    // The client pod's workload is unknown (or no config was loaded yet): SERVFAIL, even for a
    // name that would be forwarded.
    CHECK(zt::dns::decide(&snap, nullptr, question("www.bing.com", kTypeA), options, 0).verdict ==
          Verdict::servfail);
    CHECK(zt::dns::decide(nullptr, nullptr, question("productpage.ns1.", kTypeA), options, 0)
                  .verdict == Verdict::servfail);

    // A class other than IN is never a mesh name.
    Query chaos = question("productpage.ns1.", kTypeA);
    chaos.qclass = 3;
    CHECK(zt::dns::decide(&snap, client, chaos, options, 0).verdict == Verdict::forward);

    // A wire label holding a dot cannot be a config hostname: forwarded as it is.
    Query dotted = question("x.", kTypeA);
    dotted.name.labels = {"productpage.ns1", "svc", "cluster", "local"};
    CHECK(zt::dns::decide(&snap, client, dotted, options, 0).verdict == Verdict::forward);
}

TEST_CASE("dns answer: IPV6_ENABLED=false empties AAAA answers for mesh names") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto* client = loaded.snapshot->workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;
    options.ipv6_enabled = false;
    auto aaaa = zt::dns::decide(loaded.snapshot.get(), client,
                                question("dual.localhost.", kTypeAaaa), options, 0);
    CHECK(aaaa.verdict == Verdict::answer);
    CHECK(aaaa.records.empty());
    CHECK(aaaa.result == "service does not support this record type");
    auto headless =
            zt::dns::decide(loaded.snapshot.get(), client,
                            question("headless.ns1.svc.cluster.local.", kTypeAaaa), options, 0);
    CHECK(headless.records.empty());
    auto a = zt::dns::decide(loaded.snapshot.get(), client, question("dual.localhost.", kTypeA),
                             options, 0);
    CHECK(render(a.records) == "A dual.localhost. 198.19.2.2");
}

TEST_CASE("dns answer: another cluster domain moves the expansions and the headless rule") {
    constexpr std::string_view kCorp = R"({
      "workloads": [
        {"uid": "c//Pod/ns1/client", "namespace": "ns1", "workloadIps": ["198.18.1.2"],
         "services": {}},
        {"uid": "c//Pod/ns1/db-0", "namespace": "ns1", "workloadIps": ["198.18.1.40"],
         "services": {"ns1/db.ns1.svc.corp.example": {"5432": 5432}}}
      ],
      "services": [
        {"name": "api", "namespace": "ns1", "hostname": "api.ns1.svc.corp.example",
         "vips": ["/198.19.3.1"], "ports": {"80": 80}},
        {"name": "db", "namespace": "ns1", "hostname": "db.ns1.svc.corp.example",
         "vips": [], "ports": {"5432": 5432}}
      ]
    })";
    auto loaded = zt::config::load_text(kCorp);
    REQUIRE(loaded.snapshot);
    const auto* client = loaded.snapshot->workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;
    options.cluster_domain = *Name::parse("corp.example");
    auto api = zt::dns::decide(loaded.snapshot.get(), client, question("api", kTypeA), options, 0);
    CHECK(render(api.records) == "A api. 198.19.3.1");
    auto db =
            zt::dns::decide(loaded.snapshot.get(), client, question("db.ns1", kTypeA), options, 0);
    CHECK(render(db.records) == "A db.ns1. 198.18.1.40");
    // With the default domain the same short name finds nothing and goes upstream.
    zt::dns::AnswerOptions default_domain;
    CHECK(zt::dns::decide(loaded.snapshot.get(), client, question("api", kTypeA), default_domain, 0)
                  .verdict == Verdict::forward);
}

TEST_CASE("dns answer: the address order is a shuffle driven by the given randomness") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto* client = loaded.snapshot->workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;
    Query query = question("details.ns2.svc.cluster.remote.", kTypeA);
    auto order = [&](uint64_t random) {
        std::string out;
        for (const auto& record :
             zt::dns::decide(loaded.snapshot.get(), client, query, options, random).records) {
            out += record.address.to_string() + " ";
        }
        return out;
    };
    // The same randomness gives the same order; different randomness reaches other orders.
    CHECK(order(7) == order(7));
    std::vector<std::string> seen;
    for (uint64_t random = 0; random < 64; ++random) {
        std::string o = order(random);
        if (std::find(seen.begin(), seen.end(), o) == seen.end()) {
            seen.push_back(o);
        }
    }
    CHECK(seen.size() > 8);
}

TEST_CASE("dns answer: encode_decision renders each verdict") {
    auto loaded = zt::config::load_text(kMesh);
    REQUIRE(loaded.snapshot);
    const auto* client = loaded.snapshot->workload_by_uid("c//Pod/ns1/client");
    zt::dns::AnswerOptions options;
    Query query = question("productpage.ns1.", kTypeA);
    auto decision = zt::dns::decide(loaded.snapshot.get(), client, query, options, 0);
    auto wire = zt::dns::encode_decision(query, decision, 512);
    auto header = zt::dns::read_header(wire);
    REQUIRE(header);
    CHECK(header->id == 0x1234);
    CHECK(header->response);
    CHECK(header->rcode == 0);
    CHECK(header->answer_count == 1);
    CHECK((wire[2] & 0x04) != 0);  // AA
    CHECK((wire[3] & 0x80) != 0);  // RA

    auto servfail = zt::dns::decide(loaded.snapshot.get(), nullptr, query, options, 0);
    auto error = zt::dns::encode_decision(query, servfail, 512);
    CHECK(zt::dns::read_header(error)->rcode == uint8_t(zt::dns::Rcode::servfail));
    CHECK((error[3] & 0x80) == 0);  // No RA on errors, as ztunnel's send_error.
}
