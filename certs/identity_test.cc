// Unit tests for certs/identity: the strict SPIFFE parser (docs/reliability.md §3.1, §6a A7) and
// the accessors other modules build on.

#include "certs/identity.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include <doctest/doctest.h>

using zt::certs::Identity;

TEST_CASE("certs: a well-formed SPIFFE ID parses into its parts") {
    auto id = Identity::parse("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
    REQUIRE(id);
    CHECK(id->trust_domain() == "cluster.local");
    CHECK(id->namespace_name() == "default");
    CHECK(id->service_account() == "bookinfo-productpage");
    CHECK(id->to_string() == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
    CHECK(id->principal() == "cluster.local/ns/default/sa/bookinfo-productpage");
}

TEST_CASE("certs: identity segments accept SPIFFE's full character set") {
    auto id = Identity::parse("spiffe://td_1-x.example/ns/Name.Space-1_x/sa/SA.a-b_c");
    REQUIRE(id);
    CHECK(id->trust_domain() == "td_1-x.example");
    CHECK(id->namespace_name() == "Name.Space-1_x");
    CHECK(id->service_account() == "SA.a-b_c");
    // Single dots inside a segment are fine; only "." and ".." segments are refused.
    CHECK(Identity::parse("spiffe://td/ns/.a/sa/a..").has_value());
}

TEST_CASE("certs: from_parts builds the same identity parse does, with the same rules") {
    auto built = Identity::from_parts("example.org", "prod", "api");
    REQUIRE(built);
    auto parsed = Identity::parse("spiffe://example.org/ns/prod/sa/api");
    REQUIRE(parsed);
    CHECK(*built == *parsed);
    CHECK(built->to_string() == parsed->to_string());

    CHECK_FALSE(Identity::from_parts("Example.org", "prod", "api"));
    CHECK_FALSE(Identity::from_parts("example.org", "", "api"));
    CHECK_FALSE(Identity::from_parts("example.org", "prod", ".."));
    CHECK_FALSE(Identity::from_parts("example.org", "pr/od", "api"));
    CHECK_FALSE(Identity::from_parts("", "prod", "api"));
    auto err = Identity::from_parts("td", "ns", "a b");
    REQUIRE_FALSE(err);
    CHECK(err.error().code == zt::Errc::bad_identity);
}

TEST_CASE("certs: malformed SPIFFE IDs are refused (docs/reliability.md A7)") {
    const std::vector<std::string> bad = {
            "",
            "spiffe://",
            "spiffe:///ns/a/sa/b",                       // empty trust domain
            "spiffe://td/ns//sa/b",                      // empty namespace (ztunnel accepts)
            "spiffe://td/ns/a/sa/",                      // empty service account (ztunnel accepts)
            "spiffe://td/ns/a/sa/b/",                    // trailing slash
            "spiffe://td/ns/a/sa/b/c",                   // extra segment
            "spiffe://td/ns/../sa/b",                    // dot-dot segment
            "spiffe://td/ns/./sa/b",                     // dot segment
            "spiffe://Cluster.local/ns/a/sa/b",          // uppercase trust domain
            "spiffe://td:8080/ns/a/sa/b",                // port
            "spiffe://user@td/ns/a/sa/b",                // userinfo
            "spiffe://td/ns/a/sa/b?x=1",                 // query
            "spiffe://td/ns/a/sa/b#frag",                // fragment
            "spiffe://td/ns/a%2Fb/sa/b",                 // percent-encoding
            "spiffe://td/ns/x/sa",                       // missing service account
            "spiffe://td/ns/x",                          // missing sa entirely
            "spiffe://td",                               // no path
            "spiffe://td/",                              // root path
            "spiffe://td/sa/a/ns/b",                     // wrong order
            "spiffe://td/NS/a/sa/b",                     // literal segments are lowercase
            "SPIFFE://td/ns/a/sa/b",                     // scheme is lowercase
            "https://td/ns/a/sa/b",                      // other scheme
            "spiffe:/td/ns/a/sa/b",                      // broken authority
            " spiffe://td/ns/a/sa/b",                    // leading space
            "spiffe://td/ns/a/sa/b ",                    // trailing space
            "spiffe://td/ns/a b/sa/b",                   // space in a segment
            std::string("spiffe://td/ns/a\0/sa/b", 22),  // NUL
            "spiffe://td/ns/caf\xc3\xa9/sa/b",           // non-ASCII
    };
    for (const auto& text : bad) {
        CAPTURE(text);
        auto id = Identity::parse(text);
        REQUIRE_FALSE(id);
        CHECK(id.error().code == zt::Errc::bad_identity);
    }
}

TEST_CASE("certs: identity length caps are 2048 bytes and a 255-byte trust domain") {
    const std::string prefix = "spiffe://td/ns/n/sa/";
    std::string at_cap = prefix + std::string(zt::certs::kMaxSpiffeIdBytes - prefix.size(), 'a');
    CHECK(at_cap.size() == 2048);
    CHECK(Identity::parse(at_cap).has_value());
    CHECK_FALSE(Identity::parse(at_cap + "a"));

    std::string td255(255, 'a');
    CHECK(Identity::parse("spiffe://" + td255 + "/ns/n/sa/s").has_value());
    CHECK_FALSE(Identity::parse("spiffe://" + td255 + "a/ns/n/sa/s"));
}

TEST_CASE("certs: identities compare, order and hash by URI") {
    auto a = Identity::parse("spiffe://td/ns/a/sa/x").value();
    auto b = Identity::parse("spiffe://td/ns/b/sa/x").value();
    auto a2 = Identity::from_parts("td", "a", "x").value();
    CHECK(a == a2);
    CHECK(a != b);
    CHECK(a < b);
    std::vector<Identity> ids = {b, a};
    std::sort(ids.begin(), ids.end());
    CHECK(ids.front() == a);
    std::unordered_set<Identity> set = {a, b, a2};
    CHECK(set.size() == 2);
    Identity copy = b;
    CHECK(copy.namespace_name() == "b");  // views point into the copy, not the original
}
