// Unit tests for certs/issue and certs/pem: P-256 keys, CSRs, the leaf and CA profiles, LocalCa
// create/load/sign, and the PEM and field helpers the dump uses.

#include "certs/issue.h"

#include <set>
#include <string>

#include <doctest/doctest.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/x509v3.h>

#include "certs/pem.h"
#include "certs/verify.h"
#include "tests/support/test_ca.h"

using zt::Errc;
using zt::certs::Identity;
using zt::certs::LocalCa;

namespace {

constexpr int64_t kNow = 1'750'000'000;

Identity id(const char* text) {
    return Identity::parse(text).value();
}

}  // namespace

TEST_CASE("certs: generated keys are ECDSA P-256 and distinct") {
    auto a = zt::certs::generate_p256_key();
    auto b = zt::certs::generate_p256_key();
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(EVP_PKEY_id(a->get()) == EVP_PKEY_EC);
    const EC_GROUP* group = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(a->get()));
    CHECK(EC_GROUP_get_curve_name(group) == NID_X9_62_prime256v1);
    CHECK(EVP_PKEY_cmp(a->get(), b->get()) != 1);

    auto pem = zt::certs::private_key_to_pem(a->get());
    REQUIRE(pem);
    CHECK(pem->starts_with("-----BEGIN PRIVATE KEY-----"));
    auto back = zt::certs::parse_private_key_pem(*pem);
    REQUIRE(back);
    CHECK(EVP_PKEY_cmp(a->get(), back->get()) == 1);
    CHECK(zt::certs::parse_private_key_pem("junk").error().code == Errc::cert_parse);
}

TEST_CASE("certs: a local CA issues SVIDs with the SPIFFE leaf profile") {
    auto ca = LocalCa::create("example.org", kNow);
    REQUIRE(ca);
    X509* root = ca->cert();
    CHECK(X509_check_ca(root) == 1);
    CHECK((X509_get_key_usage(root) & KU_KEY_CERT_SIGN) != 0);
    CHECK(zt::certs::cert_not_after_unix(root).value() == kNow + zt::certs::kRootCaValiditySeconds);

    auto issued = ca->issue(id("spiffe://example.org/ns/prod/sa/api"), kNow, 3600);
    REQUIRE(issued);
    X509* leaf = issued->leaf.get();
    CHECK(zt::certs::cert_not_before_unix(leaf).value() == kNow - zt::certs::kLeafBackdateSeconds);
    CHECK(zt::certs::cert_not_after_unix(leaf).value() == kNow + 3600);
    CHECK(zt::certs::keys_match(leaf, issued->key.get()));
    CHECK((X509_get_extended_key_usage(leaf) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) ==
          (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    bssl::UniquePtr<EVP_PKEY> pub(X509_get_pubkey(leaf));
    CHECK(EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pub.get()))) ==
          NID_X9_62_prime256v1);

    // The leaf passes our own verifier on both sides against the root the CA publishes.
    auto bundle = zt::certs::TrustBundle::from_pem(ca->root_pem());
    REQUIRE(bundle);
    X509* chain[] = {leaf};
    for (auto role : {zt::certs::PeerRole::server, zt::certs::PeerRole::client}) {
        auto verified = zt::certs::verify_svid(**bundle, std::span<X509* const>(chain), role, kNow);
        REQUIRE(verified);
        CHECK(verified->to_string() == "spiffe://example.org/ns/prod/sa/api");
    }
}

TEST_CASE("certs: serials are random, positive and about 128 bits") {
    auto ca = LocalCa::create("td", kNow);
    REQUIRE(ca);
    std::set<std::string> serials;
    for (int i = 0; i < 8; ++i) {
        auto issued = ca->issue(id("spiffe://td/ns/a/sa/b"), kNow, 60);
        REQUIRE(issued);
        std::string serial = zt::certs::serial_decimal(issued->leaf.get());
        // 2^126 has 38 decimal digits, 2^127 has 39.
        CHECK(serial.size() >= 38);
        CHECK(serial.size() <= 39);
        CHECK(serial[0] != '-');
        serials.insert(serial);
    }
    CHECK(serials.size() == 8);
}

TEST_CASE("certs: sign_csr checks the CSR's signature and identity") {
    auto ca = LocalCa::create("td", kNow);
    REQUIRE(ca);
    auto key = zt::certs::generate_p256_key();
    REQUIRE(key);
    auto csr = zt::certs::make_csr_pem(key->get(), id("spiffe://td/ns/a/sa/b"));
    REQUIRE(csr);
    CHECK(csr->starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

    auto good = ca->sign_csr(*csr, id("spiffe://td/ns/a/sa/b"), kNow, 60);
    REQUIRE(good);
    CHECK(zt::certs::keys_match(good->leaf.get(), key->get()));
    CHECK(good->key == nullptr);  // the requester keeps its key

    auto other = ca->sign_csr(*csr, id("spiffe://td/ns/a/sa/c"), kNow, 60);
    REQUIRE_FALSE(other);
    CHECK(other.error().code == Errc::identity_mismatch);

    // Flip a byte inside the base64 body: the CSR no longer parses or verifies.
    std::string tampered = *csr;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    auto bad = ca->sign_csr(tampered, id("spiffe://td/ns/a/sa/b"), kNow, 60);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::cert_parse);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certs: a local CA reloads from its PEM files and refuses a foreign key") {
    auto ca = LocalCa::create("td", kNow);
    REQUIRE(ca);
    auto loaded = LocalCa::load(ca->cert_pem(), ca->key_pem(), ca->root_pem());
    REQUIRE(loaded);
    auto issued = loaded->issue(id("spiffe://td/ns/a/sa/b"), kNow, 60);
    REQUIRE(issued);
    bssl::UniquePtr<EVP_PKEY> ca_pub(X509_get_pubkey(ca->cert()));
    CHECK(X509_verify(issued->leaf.get(), ca_pub.get()) == 1);
    // A self-signed CA sends no intermediates: the chain is the leaf alone.
    CHECK(zt::certs::parse_cert_chain_pem(issued->chain_pem)->size() == 1);

    auto other = LocalCa::create("td", kNow);
    REQUIRE(other);
    auto mismatch = LocalCa::load(ca->cert_pem(), other->key_pem(), ca->root_pem());
    REQUIRE_FALSE(mismatch);
    CHECK(mismatch.error().code == Errc::cert_key_mismatch);

    CHECK(LocalCa::create("Bad.TD", kNow).error().code == Errc::bad_identity);
}

TEST_CASE("certs: an intermediate CA sends itself with every leaf") {
    zt::testing::TestCa root = zt::testing::TestCa::root("td", kNow);
    zt::testing::TestCa inter = root.intermediate("issuing");
    auto ca = LocalCa::load(inter.cert_pem(), inter.key_pem(), root.root_pem());
    REQUIRE(ca);
    auto issued = ca->issue(id("spiffe://td/ns/a/sa/b"), kNow, 60);
    REQUIRE(issued);
    auto chain = zt::certs::parse_cert_chain_pem(issued->chain_pem);
    REQUIRE(chain);
    REQUIRE(chain->size() == 2);
    std::vector<X509*> borrowed = {(*chain)[0].get(), (*chain)[1].get()};
    CHECK(zt::certs::verify_svid(*root.bundle(), std::span<X509* const>(borrowed),
                                 zt::certs::PeerRole::client, kNow));
    // A leaf can never be loaded as a CA.
    auto leaf = root.issue_leaf("spiffe://td/ns/a/sa/b");
    CHECK(LocalCa::load(leaf.cert_pem, leaf.key_pem, root.root_pem()).error().code ==
          Errc::cert_is_ca);
}

TEST_CASE("certs: PEM chains, times, serials and base64 for the dump") {
    zt::testing::TestCa root = zt::testing::TestCa::root("td", kNow);
    auto leaf = root.intermediate().issue_leaf("spiffe://td/ns/a/sa/b");
    auto chain = zt::certs::parse_cert_chain_pem(leaf.chain_pem);
    REQUIRE(chain);
    CHECK(chain->size() == 2);
    CHECK(zt::certs::parse_cert_chain_pem("").error().code == Errc::cert_parse);
    CHECK(zt::certs::parse_cert_chain_pem(std::string(zt::certs::kMaxPemBytes + 1, 'x'))
                  .error()
                  .code == Errc::cert_parse);
    std::string many;
    for (size_t i = 0; i <= zt::certs::kMaxPemCerts; ++i) {
        many += leaf.cert_pem;
    }
    CHECK_FALSE(zt::certs::parse_cert_chain_pem(many));

    CHECK(zt::certs::format_rfc3339(0) == "1970-01-01T00:00:00Z");
    CHECK(zt::certs::format_rfc3339(1'750'000'000) == "2025-06-15T15:06:40Z");
    CHECK(zt::certs::base64_encode("") == "");
    CHECK(zt::certs::base64_encode("f") == "Zg==");
    CHECK(zt::certs::base64_encode("foobar") == "Zm9vYmFy");
    CHECK(zt::certs::cert_not_before_unix(leaf.cert.get()).value() == kNow - 3600);
}

TEST_CASE("certs: a local CA signs only its own trust domain") {
    auto ca = LocalCa::create("example.org", kNow);
    REQUIRE(ca);
    CHECK(ca->trust_domain() == "example.org");
    auto foreign = ca->issue(id("spiffe://other.org/ns/a/sa/b"), kNow, 60);
    REQUIRE_FALSE(foreign);
    CHECK(foreign.error().code == Errc::trust_domain_mismatch);
    // The trust domain survives a reload from the PEM files.
    auto loaded = LocalCa::load(ca->cert_pem(), ca->key_pem(), ca->root_pem());
    REQUIRE(loaded);
    CHECK(loaded->trust_domain() == "example.org");
    CHECK_FALSE(loaded->issue(id("spiffe://other.org/ns/a/sa/b"), kNow, 60));
    CHECK(loaded->issue(id("spiffe://example.org/ns/a/sa/b"), kNow, 60));
}
