// Unit tests for certs/verify: X.509-SVID path validation and leaf profile with certificates made
// at run time by tests/support/test_ca (docs/reliability.md §6a A4–A10), plus the two identity
// checks hbone/ applies after verification.

#include "certs/verify.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/stack.h>

#include "tests/support/test_ca.h"

using zt::Errc;
using zt::certs::Identity;
using zt::certs::PeerRole;
using zt::certs::TrustBundle;
using zt::certs::verify_svid;
using zt::testing::TestCa;
using zt::testing::TestCert;

namespace {

zt::Result<Identity> verify(const TrustBundle& bundle, const TestCert& cert, PeerRole role,
                            int64_t now) {
    auto chain = cert.chain();
    return verify_svid(bundle, std::span<X509* const>(chain), role, now);
}

}  // namespace

TEST_CASE("certs: a good SVID verifies for both sides and yields its identity") {
    TestCa ca = TestCa::root();
    TestCert leaf = ca.issue_leaf("spiffe://cluster.local/ns/default/sa/app");
    auto bundle = ca.bundle();
    for (PeerRole role : {PeerRole::server, PeerRole::client}) {
        auto id = verify(*bundle, leaf, role, ca.now_unix());
        REQUIRE(id);
        CHECK(id->to_string() == "spiffe://cluster.local/ns/default/sa/app");
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certs: a chain through an intermediate verifies in all three input forms") {
    TestCa root = TestCa::root();
    TestCa inter = root.intermediate();
    TestCert leaf = inter.issue_leaf("spiffe://cluster.local/ns/prod/sa/api");
    REQUIRE(leaf.chain().size() == 2);
    auto bundle = root.bundle();

    auto by_span = verify(*bundle, leaf, PeerRole::server, root.now_unix());
    REQUIRE(by_span);
    CHECK(by_span->service_account() == "api");

    auto buffers = leaf.chain_buffers();
    auto by_buffer = verify_svid(*bundle, buffers.get(), PeerRole::client, root.now_unix());
    REQUIRE(by_buffer);
    CHECK(*by_buffer == *by_span);

    bssl::UniquePtr<STACK_OF(X509)> stack(sk_X509_new_null());
    for (X509* cert : leaf.chain()) {
        X509_up_ref(cert);
        sk_X509_push(stack.get(), cert);
    }
    auto by_stack = verify_svid(*bundle, stack.get(), PeerRole::client, root.now_unix());
    REQUIRE(by_stack);
    CHECK(*by_stack == *by_span);

    // Without the intermediate the path does not build.
    X509* leaf_only[] = {leaf.cert.get()};
    auto missing = verify_svid(*bundle, std::span<X509* const>(leaf_only), PeerRole::client,
                               root.now_unix());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == Errc::cert_unknown_ca);
}

TEST_CASE("certs: a bundle of two roots accepts a leaf from either") {
    TestCa old_root = TestCa::root();
    TestCa new_root = TestCa::root("cluster.local", old_root.now_unix());
    auto both = TrustBundle::from_pem(old_root.root_pem() + new_root.root_pem());
    REQUIRE(both);
    CHECK((*both)->roots().size() == 2);
    TestCert from_old = old_root.issue_leaf("spiffe://cluster.local/ns/a/sa/a");
    TestCert from_new = new_root.intermediate().issue_leaf("spiffe://cluster.local/ns/b/sa/b");
    CHECK(verify(**both, from_old, PeerRole::client, old_root.now_unix()));
    CHECK(verify(**both, from_new, PeerRole::client, old_root.now_unix()));
    // And each root alone accepts only its own.
    auto only_old = verify(*old_root.bundle(), from_new, PeerRole::client, old_root.now_unix());
    REQUIRE_FALSE(only_old);
    CHECK(only_old.error().code == Errc::cert_unknown_ca);
}

TEST_CASE("certs: every bad certificate of A4-A10 is refused with its own reason") {
    TestCa ca = TestCa::root();
    auto bundle = ca.bundle();
    auto cases = zt::testing::bad_cases(ca);
    CHECK(cases.size() >= 25);
    for (const auto& bad : cases) {
        CAPTURE(bad.name);
        auto result = verify(*bundle, bad.cert, bad.role, ca.now_unix());
        REQUIRE_FALSE(result);
        CHECK(to_string(result.error().code) == to_string(bad.expected));
        CHECK(ERR_peek_error() == 0);
    }
}

TEST_CASE("certs: the EKU check follows the side the peer plays") {
    TestCa ca = TestCa::root();
    auto spec = ca.leaf_spec("spiffe://cluster.local/ns/a/sa/b");
    spec.ext_key_usage = XKU_SSL_SERVER;
    TestCert server_only = ca.issue(spec);
    CHECK(verify(*ca.bundle(), server_only, PeerRole::server, ca.now_unix()));
    auto as_client = verify(*ca.bundle(), server_only, PeerRole::client, ca.now_unix());
    REQUIRE_FALSE(as_client);
    CHECK(as_client.error().code == Errc::cert_eku);
}

TEST_CASE("certs: validity is judged at the time given, not the wall clock") {
    TestCa ca = TestCa::root();
    TestCert leaf = ca.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    auto bundle = ca.bundle();
    CHECK(verify(*bundle, leaf, PeerRole::client, ca.now_unix()));
    auto later = verify(*bundle, leaf, PeerRole::client, ca.now_unix() + 2 * 86400);
    REQUIRE_FALSE(later);
    CHECK(later.error().code == Errc::cert_expired);
    auto earlier = verify(*bundle, leaf, PeerRole::client, ca.now_unix() - 2 * 3600);
    REQUIRE_FALSE(earlier);
    CHECK(earlier.error().code == Errc::cert_not_yet_valid);
}

TEST_CASE("certs: more certificates than the cap are refused before parsing") {
    TestCa ca = TestCa::root();
    TestCert leaf = ca.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    std::vector<X509*> chain(zt::certs::kMaxPeerChainCerts + 1, leaf.cert.get());
    auto result = verify_svid(*ca.bundle(), std::span<X509* const>(chain), PeerRole::client,
                              ca.now_unix());
    REQUIRE_FALSE(result);
    CHECK(result.error().code == Errc::cert_chain_too_long);

    auto empty =
            verify_svid(*ca.bundle(), std::span<X509* const>(), PeerRole::client, ca.now_unix());
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == Errc::cert_parse);
    const STACK_OF(CRYPTO_BUFFER)* none = nullptr;
    CHECK_FALSE(verify_svid(*ca.bundle(), none, PeerRole::client, ca.now_unix()));
}

TEST_CASE("certs: a chain deeper than the cap fails path validation") {
    TestCa ca = TestCa::root();
    TestCa deepest = ca.intermediate("i1");
    for (int i = 2; i <= zt::certs::kMaxVerifyDepth; ++i) {
        deepest = deepest.intermediate("i" + std::to_string(i));
    }
    // kMaxVerifyDepth intermediates are still fine...
    TestCert at_cap = deepest.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    CHECK(verify(*ca.bundle(), at_cap, PeerRole::client, ca.now_unix()));
    // ...one more is not.
    deepest = deepest.intermediate("one too many");
    TestCert leaf = deepest.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    REQUIRE(leaf.chain().size() == size_t(zt::certs::kMaxVerifyDepth) + 2);
    auto result = verify(*ca.bundle(), leaf, PeerRole::client, ca.now_unix());
    REQUIRE_FALSE(result);
    CHECK(result.error().code == Errc::cert_chain_too_long);
}

TEST_CASE("certs: A6 a foreign trust domain passes verification but not the trust-domain check") {
    TestCa ca = TestCa::root();
    TestCert foreign = zt::testing::foreign_trust_domain_leaf(ca);
    auto id = verify(*ca.bundle(), foreign, PeerRole::client, ca.now_unix());
    REQUIRE(id);
    auto check = zt::certs::check_trust_domain(*id, "cluster.local");
    REQUIRE_FALSE(check);
    CHECK(check.error().code == Errc::trust_domain_mismatch);
    CHECK(zt::certs::check_trust_domain(*id, "other.td"));
}

TEST_CASE("certs: the client-side check wants one of the expected identities") {
    auto a = Identity::parse("spiffe://td/ns/a/sa/a").value();
    auto b = Identity::parse("spiffe://td/ns/b/sa/b").value();
    auto c = Identity::parse("spiffe://td/ns/c/sa/c").value();
    std::vector<Identity> expected = {a, b};
    CHECK(zt::certs::check_identity_in(b, expected));
    auto wrong = zt::certs::check_identity_in(c, expected);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().code == Errc::identity_mismatch);
    CHECK_FALSE(zt::certs::check_identity_in(a, std::span<const Identity>()));
}

TEST_CASE("certs: a trust bundle refuses garbage and non-CA certificates") {
    CHECK(TrustBundle::from_pem("").error().code == Errc::cert_parse);
    CHECK(TrustBundle::from_pem("not pem").error().code == Errc::cert_parse);
    TestCa ca = TestCa::root();
    TestCert leaf = ca.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    CHECK(TrustBundle::from_pem(ca.root_pem() + leaf.cert_pem).error().code == Errc::cert_is_ca);
    std::string truncated = ca.root_pem().substr(0, ca.root_pem().size() / 2);
    CHECK(TrustBundle::from_pem(truncated).error().code == Errc::cert_parse);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certs: the one-call peer checks combine verification and the identity rule") {
    TestCa ca = TestCa::root();
    auto bundle = ca.bundle();
    auto server_id = Identity::parse("spiffe://cluster.local/ns/b/sa/server").value();
    TestCert server = ca.issue_leaf(server_id.to_string());
    auto server_chain = server.chain_buffers();
    std::vector<Identity> expected = {server_id};
    CHECK(zt::certs::verify_server_peer(*bundle, server_chain.get(), ca.now_unix(), expected)
                  .value() == server_id);
    std::vector<Identity> others = {Identity::parse("spiffe://cluster.local/ns/b/sa/x").value()};
    CHECK(zt::certs::verify_server_peer(*bundle, server_chain.get(), ca.now_unix(), others)
                  .error()
                  .code == Errc::identity_mismatch);
    // A verification failure wins over the identity rule.
    CHECK(zt::certs::verify_server_peer(*bundle, server_chain.get(), ca.now_unix() + 3 * 86400,
                                        expected)
                  .error()
                  .code == Errc::cert_expired);

    TestCert foreign = zt::testing::foreign_trust_domain_leaf(ca);
    auto foreign_chain = foreign.chain_buffers();
    CHECK(zt::certs::verify_client_peer(*bundle, foreign_chain.get(), ca.now_unix(),
                                        "cluster.local")
                  .error()
                  .code == Errc::trust_domain_mismatch);
    CHECK(zt::certs::verify_client_peer(*bundle, server_chain.get(), ca.now_unix(), "cluster.local")
                  .value() == server_id);
}

TEST_CASE("certs: DNS SANs and a subject beside the one URI SAN are accepted") {
    TestCa ca = TestCa::root();
    auto spec = ca.leaf_spec("spiffe://cluster.local/ns/a/sa/b");
    spec.dns_sans = {"b.a.svc.cluster.local"};
    spec.common_name = "b";  // with a subject, a non-critical SAN is fine
    TestCert leaf = ca.issue(spec);
    auto id = verify(*ca.bundle(), leaf, PeerRole::server, ca.now_unix());
    REQUIRE(id);
    CHECK(id->service_account() == "b");
}

namespace {

// verify_der verifies `cert`'s chain in the CRYPTO_BUFFER form handshakes use (the cached path).
zt::Result<Identity> verify_der(const TrustBundle& bundle, const TestCert& cert, PeerRole role,
                                int64_t now) {
    auto chain = cert.chain_buffers();
    return verify_svid(bundle, chain.get(), role, now);
}

}  // namespace

TEST_CASE("certs: a chain verified once is judged from the bundle's cache afterwards") {
    TestCa ca = TestCa::root();
    TestCert leaf = ca.intermediate().issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    auto bundle = ca.bundle();
    uint64_t hits_before = zt::certs::verify_cache_hits_total();
    uint64_t misses_before = zt::certs::verify_cache_misses_total();
    for (int i = 0; i < 3; ++i) {
        auto id = verify_der(*bundle, leaf, PeerRole::client, ca.now_unix() + i);
        REQUIRE(id);
        CHECK(id->to_string() == "spiffe://cluster.local/ns/a/sa/b");
    }
    auto stats = bundle->verify_cache_stats();
    CHECK(stats.misses == 1);
    CHECK(stats.hits == 2);
    CHECK(stats.entries == 1);
    // The process-wide totals (metrics) moved at least as much (tests may run in parallel).
    CHECK(zt::certs::verify_cache_hits_total() - hits_before >= 2);
    CHECK(zt::certs::verify_cache_misses_total() - misses_before >= 1);
    // The other side is another entry: its EKU was never checked.
    CHECK(verify_der(*bundle, leaf, PeerRole::server, ca.now_unix()));
    CHECK(bundle->verify_cache_stats().misses == 2);
    CHECK(bundle->verify_cache_stats().entries == 2);
}

TEST_CASE("certs: a cached chain is still refused outside the validity of every certificate") {
    TestCa root = TestCa::root();
    // The intermediate expires two hours from now, long before the leaf (a day).
    auto spec = root.ca_spec("short-lived intermediate");
    spec.not_before_unix = root.now_unix() - 3600;
    spec.not_after_unix = root.now_unix() + 2 * 3600;
    TestCa inter = root.intermediate(spec);
    TestCert leaf = inter.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    auto bundle = root.bundle();
    REQUIRE(verify_der(*bundle, leaf, PeerRole::client, root.now_unix()));
    REQUIRE(verify_der(*bundle, leaf, PeerRole::client, root.now_unix() + 3600));
    CHECK(bundle->verify_cache_stats().hits == 1);
    auto expired = verify_der(*bundle, leaf, PeerRole::client, root.now_unix() + 3 * 3600);
    REQUIRE_FALSE(expired);
    CHECK(expired.error().code == Errc::cert_expired);
    // The leaf is not valid before an hour ago.
    auto early = verify_der(*bundle, leaf, PeerRole::client, root.now_unix() - 2 * 3600);
    REQUIRE_FALSE(early);
    CHECK(early.error().code == Errc::cert_not_yet_valid);
    CHECK(bundle->verify_cache_stats().hits == 1);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certs: refusals are never cached and new roots start with an empty cache") {
    TestCa old_root = TestCa::root();
    TestCa new_root = TestCa::root("cluster.local", old_root.now_unix());
    TestCert leaf = old_root.issue_leaf("spiffe://cluster.local/ns/a/sa/b");
    auto old_bundle = old_root.bundle();
    REQUIRE(verify_der(*old_bundle, leaf, PeerRole::client, old_root.now_unix()));
    REQUIRE(verify_der(*old_bundle, leaf, PeerRole::client, old_root.now_unix()));
    CHECK(old_bundle->verify_cache_stats().hits == 1);
    // After a rotation to a new root only, the same chain is validated again and refused.
    auto new_bundle = new_root.bundle();
    for (int i = 0; i < 2; ++i) {
        auto refused = verify_der(*new_bundle, leaf, PeerRole::client, old_root.now_unix());
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == Errc::cert_unknown_ca);
    }
    auto stats = new_bundle->verify_cache_stats();
    CHECK(stats.hits == 0);
    CHECK(stats.misses == 2);
    CHECK(stats.entries == 0);
}

TEST_CASE("certs: the verification cache is bounded and counts its evictions") {
    TestCa ca = TestCa::root();
    auto bundle = TrustBundle::from_pem(ca.root_pem(), 2);
    REQUIRE(bundle);
    std::vector<TestCert> leaves;
    for (const char* sa : {"one", "two", "three"}) {
        leaves.push_back(ca.issue_leaf(std::string("spiffe://cluster.local/ns/a/sa/") + sa));
        REQUIRE(verify_der(**bundle, leaves.back(), PeerRole::client, ca.now_unix()));
    }
    auto stats = (*bundle)->verify_cache_stats();
    CHECK(stats.entries == 2);
    CHECK(stats.evictions == 1);
    CHECK(zt::certs::verify_cache_evictions_total() >= 1);
    // The oldest went; the newest two are hits.
    REQUIRE(verify_der(**bundle, leaves[2], PeerRole::client, ca.now_unix()));
    REQUIRE(verify_der(**bundle, leaves[1], PeerRole::client, ca.now_unix()));
    CHECK((*bundle)->verify_cache_stats().hits == 2);
    REQUIRE(verify_der(**bundle, leaves[0], PeerRole::client, ca.now_unix()));
    CHECK((*bundle)->verify_cache_stats().misses == 4);
    auto off = TrustBundle::from_pem(ca.root_pem(), 0);
    REQUIRE(off);
    REQUIRE(verify_der(**off, leaves[0], PeerRole::client, ca.now_unix()));
    REQUIRE(verify_der(**off, leaves[0], PeerRole::client, ca.now_unix()));
    CHECK((*off)->verify_cache_stats().hits == 0);
}
