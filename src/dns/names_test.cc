// Table tests for the DNS proxy's name rules, row for row ztunnel's own tables
// (`test_to_kube_fqdns`, `test_get_wildcards`, `test_has_domain`, `test_trim_domain`,
// `search_domains` in its src/dns), plus the alias order the answer logic depends on.

#include "src/dns/names.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using zt::dns::Name;

namespace {

Name n(std::string_view text) {
    auto name = Name::parse(text);
    REQUIRE(name.has_value());
    return *name;
}

std::string join(const std::vector<Name>& names) {
    std::string out;
    for (const Name& name : names) {
        out += (out.empty() ? "" : ",") + name.to_string();
    }
    return out;
}

}  // namespace

TEST_CASE("dns names: parse, print and compare ignoring case") {
    CHECK(n("a.b.c.").size() == 3);
    CHECK(n("a.b.c").to_fqdn() == "a.b.c.");
    CHECK(n(".").empty());
    CHECK(n("").to_fqdn() == ".");
    CHECK_FALSE(Name::parse("a..b").has_value());
    CHECK_FALSE(Name::parse(".a").has_value());
    CHECK_FALSE(Name::parse(std::string(64, 'x')).has_value());
    CHECK(n("Foo.Example").equals(n("foo.example.")));
    CHECK(n("Foo.Example").to_lower() == "foo.example");
    CHECK(n("Foo.Example").to_string() == "Foo.Example");
    CHECK(n("*.example").is_wildcard());
    Name dotted;
    dotted.labels = {"a.b", "c"};
    CHECK_FALSE(dotted.is_hostname());
    CHECK(n("under_score.x-y").is_hostname());
}

TEST_CASE("dns names: has_domain and trim_domain as ztunnel's name_util") {
    const Name domain = n("svc.cluster.local");
    CHECK(zt::dns::has_domain(n("name.ns.svc.cluster.local"), domain));
    CHECK(zt::dns::has_domain(n("name.ns.SVC.Cluster.local"), domain));
    CHECK_FALSE(zt::dns::has_domain(n("name.ns.a.different.domain"), domain));
    CHECK_FALSE(zt::dns::has_domain(n("cluster.com"), domain));
    CHECK_FALSE(zt::dns::has_domain(n("svc.cluster.local"), domain));  // Nothing would remain.
    CHECK_FALSE(zt::dns::has_domain(n("a.b.c"), n("*.c")));            // Never a wildcard.

    CHECK(zt::dns::trim_domain(n("name.ns.svc.cluster.local"), domain)->to_string() == "name.ns");
    CHECK_FALSE(zt::dns::trim_domain(n("name.ns.a.different.domain"), domain).has_value());
    CHECK_FALSE(zt::dns::trim_domain(n("svc.cluster.local"), domain).has_value());
}

TEST_CASE("dns names: kube_fqdns expands short names as ztunnel's to_kube_fqdns") {
    struct Row {
        const char* host;
        const char* expected;
    };

    const Row rows[] = {
            {"name", "name.ns1.svc.cluster.local"},
            {"name.", "name.ns1.svc.cluster.local"},
            {"name.ns2", "name.ns2.svc.cluster.local,name.ns2.ns1.svc.cluster.local"},
            {"name.ns2.svc.", "name.ns2.svc.cluster.local,name.ns2.svc.svc.cluster.local"},
            {"name.ns2.not-svc.", "name.ns2.not-svc.svc.cluster.local"},
            {"pod.sub-domain.ns.svc", "pod.sub-domain.ns.svc.cluster.local"},
            {"pod.sub-domain.ns.not-svc", ""},
            {"name.ns2.svc.cluster.", ""},  // An invalid short form.
            {"name.ns2.svc.cluster.local", ""},
            {"www.google.com.", "www.google.com.svc.cluster.local"},
    };
    const Name cluster_domain = n("cluster.local");
    for (const Row& row : rows) {
        CAPTURE(row.host);
        CHECK(join(zt::dns::kube_fqdns(n(row.host), "ns1", cluster_domain)) == row.expected);
    }
    // Another cluster domain is used wherever the default would be.
    CHECK(join(zt::dns::kube_fqdns(n("name"), "ns1", n("corp.example"))) ==
          "name.ns1.svc.corp.example");
}

TEST_CASE("dns names: wildcards of decreasing specificity as ztunnel's get_wildcards") {
    CHECK(join(zt::dns::wildcards(n("svc1."))) == "svc1");
    CHECK(join(zt::dns::wildcards(n("svc1.ns1.svc.cluster.local."))) ==
          "svc1.ns1.svc.cluster.local,*.ns1.svc.cluster.local,*.svc.cluster.local,"
          "*.cluster.local,*.local");
}

TEST_CASE("dns names: per-pod search domains from the client's namespace and the cluster domain") {
    CHECK(join(zt::dns::search_domains("default-ns", n("cluster.local"))) ==
          "default-ns.svc.cluster.local,svc.cluster.local,cluster.local");
}

TEST_CASE("dns names: aliases in ztunnel's order, stripped search domains remembered") {
    const Name cd = n("cluster.local");
    auto render = [](const std::vector<zt::dns::Alias>& list) {
        std::string out;
        for (const auto& alias : list) {
            out += (out.empty() ? "" : ",") + alias.name.to_string();
            if (alias.stripped) {
                out += "<" + alias.stripped->to_string();
            }
        }
        return out;
    };
    CHECK(render(zt::dns::aliases(n("productpage"), "ns1", cd)) ==
          "productpage,productpage.ns1.svc.cluster.local");
    // A name the client's resolver expanded with its first search domain: the stripped name and
    // its own expansions come after the name itself.
    CHECK(render(zt::dns::aliases(n("productpage.ns1.ns1.svc.cluster.local"), "ns1", cd)) ==
          "productpage.ns1.ns1.svc.cluster.local,"
          "productpage.ns1<productpage.ns1,"
          "productpage.ns1.svc.cluster.local<productpage.ns1,"
          "productpage.ns1.ns1<productpage.ns1.ns1,"
          "productpage.ns1.ns1.svc<productpage.ns1.ns1.svc");
    // Duplicates keep their first position only.
    auto list = zt::dns::aliases(n("a.ns1"), "ns1", cd);
    for (size_t i = 0; i < list.size(); ++i) {
        for (size_t k = i + 1; k < list.size(); ++k) {
            CHECK_FALSE(list[i].name.equals(list[k].name));
        }
    }
}
