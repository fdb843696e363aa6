// test_ca.cc builds test PKI with certs/issue at run time. It is test support: it aborts on
// internal failure instead of returning errors, and must never be linked into ztunnel itself.

#include "tests/support/test_ca.h"

#include <openssl/stack.h>
#include <openssl/x509v3.h>

#include "zt/assert.h"
#include "zt/clock.h"

namespace zt::testing {
namespace {

constexpr int64_t kDay = 86400;

std::string pem_of(X509* cert) {
    auto pem = certs::cert_to_pem(cert);
    ZT_CHECK(pem.has_value());
    return std::move(pem).value();
}

certs::X509Ptr up_ref(X509* cert) {
    X509_up_ref(cert);
    return certs::X509Ptr(cert);
}

}  // namespace

std::vector<X509*> TestCert::chain() const {
    std::vector<X509*> out = {cert.get()};
    for (const auto& inter : intermediates) {
        out.push_back(inter.get());
    }
    return out;
}

bssl::UniquePtr<STACK_OF(CRYPTO_BUFFER)> TestCert::chain_buffers() const {
    bssl::UniquePtr<STACK_OF(CRYPTO_BUFFER)> stack(sk_CRYPTO_BUFFER_new_null());
    ZT_CHECK(stack != nullptr);
    for (X509* c : chain()) {
        auto buffer = certs::cert_to_buffer(c);
        ZT_CHECK(buffer.has_value());
        ZT_CHECK(sk_CRYPTO_BUFFER_push(stack.get(), buffer->get()));
        buffer->release();
    }
    return stack;
}

TestCa TestCa::root(std::string_view trust_domain, int64_t now_unix) {
    TestCa ca;
    ca.trust_domain_ = std::string(trust_domain);
    ca.now_unix_ = now_unix >= 0 ? now_unix : zt::unix_ns() / kNanosPerSecond;
    auto key = certs::generate_p256_key();
    ZT_CHECK(key.has_value());
    certs::CertSpec spec =
            certs::ca_spec(trust_domain, "test root", ca.now_unix_ - kDay, 3650 * kDay);
    auto cert = certs::sign_cert(spec, key->get(), nullptr, key->get());
    ZT_CHECK(cert.has_value());
    ca.cert_ = std::move(cert).value();
    ca.key_ = std::move(key).value();
    ca.cert_pem_ = pem_of(ca.cert_.get());
    auto key_pem = certs::private_key_to_pem(ca.key_.get());
    ZT_CHECK(key_pem.has_value());
    ca.key_pem_ = std::move(key_pem).value();
    ca.root_pem_ = ca.cert_pem_;
    return ca;
}

certs::CertSpec TestCa::ca_spec(std::string_view common_name) const {
    return certs::ca_spec(trust_domain_, common_name, now_unix_ - kDay, 3650 * kDay);
}

TestCa TestCa::intermediate(std::string_view common_name) const {
    return intermediate(ca_spec(common_name));
}

TestCa TestCa::intermediate(const certs::CertSpec& spec) const {
    TestCa ca;
    ca.trust_domain_ = trust_domain_;
    ca.now_unix_ = now_unix_;
    auto key = certs::generate_p256_key();
    ZT_CHECK(key.has_value());
    auto cert = certs::sign_cert(spec, key->get(), cert_.get(), key_.get());
    ZT_CHECK(cert.has_value());
    ca.cert_ = std::move(cert).value();
    ca.key_ = std::move(key).value();
    ca.cert_pem_ = pem_of(ca.cert_.get());
    auto key_pem = certs::private_key_to_pem(ca.key_.get());
    ZT_CHECK(key_pem.has_value());
    ca.key_pem_ = std::move(key_pem).value();
    ca.root_pem_ = root_pem_;
    ca.chain_.push_back(up_ref(ca.cert_.get()));
    for (const auto& above : chain_) {
        ca.chain_.push_back(up_ref(above.get()));
    }
    return ca;
}

certs::CertSpec TestCa::leaf_spec(std::string_view spiffe_id) const {
    certs::CertSpec spec;
    spec.uri_sans = {std::string(spiffe_id)};
    spec.key_usage = KU_DIGITAL_SIGNATURE;
    spec.key_usage_critical = true;
    spec.ext_key_usage = XKU_SSL_SERVER | XKU_SSL_CLIENT;
    spec.not_before_unix = now_unix_ - 3600;
    spec.not_after_unix = now_unix_ + kDay;
    return spec;
}

TestCert TestCa::issue(const certs::CertSpec& spec) const {
    TestCert out;
    auto key = certs::generate_p256_key();
    ZT_CHECK(key.has_value());
    auto cert = certs::sign_cert(spec, key->get(), cert_.get(), key_.get());
    ZT_CHECK(cert.has_value());
    out.cert = std::move(cert).value();
    out.key = std::move(key).value();
    out.cert_pem = pem_of(out.cert.get());
    auto key_pem = certs::private_key_to_pem(out.key.get());
    ZT_CHECK(key_pem.has_value());
    out.key_pem = std::move(key_pem).value();
    out.chain_pem = out.cert_pem;
    for (const auto& inter : chain_) {
        out.intermediates.push_back(up_ref(inter.get()));
        out.chain_pem += pem_of(inter.get());
    }
    return out;
}

TestCert TestCa::issue_leaf(std::string_view spiffe_id) const {
    return issue(leaf_spec(spiffe_id));
}

std::shared_ptr<const certs::TrustBundle> TestCa::bundle() const {
    auto bundle = certs::TrustBundle::from_pem(root_pem_);
    ZT_CHECK(bundle.has_value());
    return std::move(bundle).value();
}

std::vector<BadCase> bad_cases(const TestCa& ca) {
    using certs::PeerRole;
    const std::string good_id = "spiffe://" + ca.trust_domain() + "/ns/default/sa/app";
    const std::string prefix = "spiffe://" + ca.trust_domain();
    std::vector<BadCase> cases;
    auto add = [&](std::string name, TestCert cert, PeerRole role, Errc expected) {
        cases.push_back(BadCase{std::move(name), std::move(cert), role, expected});
    };
    auto with = [&](auto change) {
        certs::CertSpec spec = ca.leaf_spec(good_id);
        change(spec);
        return ca.issue(spec);
    };

    // A4: a chain from a CA the verifier does not trust, in our trust domain and in another.
    TestCa stranger = TestCa::root(ca.trust_domain(), ca.now_unix());
    add("A4 unknown CA", stranger.issue_leaf(good_id), PeerRole::client, Errc::cert_unknown_ca);
    TestCa other_td = TestCa::root("other.td", ca.now_unix());
    add("A4 other trust domain's CA", other_td.issue_leaf("spiffe://other.td/ns/default/sa/app"),
        PeerRole::client, Errc::cert_unknown_ca);

    // A5: the SAN shapes SPIFFE refuses.
    add("A5 DNS SAN only", with([](certs::CertSpec& s) {
            s.uri_sans.clear();
            s.dns_sans = {"app.default.svc.cluster.local"};
        }),
        PeerRole::client, Errc::cert_no_uri_san);
    add("A5 two URI SANs",
        with([&](certs::CertSpec& s) { s.uri_sans.push_back(prefix + "/ns/default/sa/other"); }),
        PeerRole::client, Errc::cert_many_uri_sans);
    add("A5 https URI", with([](certs::CertSpec& s) { s.uri_sans = {"https://app.example/x"}; }),
        PeerRole::client, Errc::cert_bad_san);
    add("A5 empty subject with a non-critical SAN",
        with([](certs::CertSpec& s) { s.san_critical = 0; }), PeerRole::client, Errc::cert_bad_san);
    add("A5 no SAN at all", with([](certs::CertSpec& s) {
            s.uri_sans.clear();
            s.common_name = "app";
        }),
        PeerRole::client, Errc::cert_no_uri_san);

    // A7: malformed IDs inside an otherwise good SVID.
    const std::vector<std::pair<std::string, std::string>> malformed = {
            {"empty segment", prefix + "/ns//sa/app"},
            {"trailing slash", prefix + "/ns/default/sa/app/"},
            {"dot-dot segment", prefix + "/ns/../sa/app"},
            {"uppercase trust domain", "spiffe://Cluster.Local/ns/default/sa/app"},
            {"port", "spiffe://" + ca.trust_domain() + ":443/ns/default/sa/app"},
            {"userinfo", "spiffe://user@" + ca.trust_domain() + "/ns/default/sa/app"},
            {"over 2048 bytes", prefix + "/ns/default/sa/" + std::string(2048, 'a')},
            {"missing sa value", prefix + "/ns/x/sa"},
    };
    for (const auto& entry : malformed) {
        // A named pair, not a structured binding: clang < 16 cannot capture those.
        const std::string& bad_id = entry.second;
        add("A7 " + entry.first, with([&](certs::CertSpec& s) { s.uri_sans = {bad_id}; }),
            PeerRole::client, Errc::cert_bad_san);
    }

    // A8: leaves that could act as CAs, or whose key usage is wrong.
    add("A8 cA=true leaf", with([](certs::CertSpec& s) { s.is_ca = true; }), PeerRole::client,
        Errc::cert_is_ca);
    add("A8 keyCertSign", with([](certs::CertSpec& s) { s.key_usage |= KU_KEY_CERT_SIGN; }),
        PeerRole::client, Errc::cert_key_cert_sign);
    add("A8 no digitalSignature",
        with([](certs::CertSpec& s) { s.key_usage = KU_KEY_ENCIPHERMENT; }), PeerRole::client,
        Errc::cert_key_usage);
    add("A8 non-critical key usage", with([](certs::CertSpec& s) { s.key_usage_critical = false; }),
        PeerRole::client, Errc::cert_key_usage);
    add("A8 no key usage", with([](certs::CertSpec& s) { s.key_usage = 0; }), PeerRole::client,
        Errc::cert_key_usage);
    add("A8 cRLSign", with([](certs::CertSpec& s) { s.key_usage |= KU_CRL_SIGN; }),
        PeerRole::client, Errc::cert_key_usage);

    // A9: validity of the leaf and of an intermediate.
    const int64_t now = ca.now_unix();
    add("A9 expired leaf", with([&](certs::CertSpec& s) {
            s.not_before_unix = now - 2 * kDay;
            s.not_after_unix = now - kDay;
        }),
        PeerRole::client, Errc::cert_expired);
    add("A9 not yet valid leaf", with([&](certs::CertSpec& s) {
            s.not_before_unix = now + kDay;
            s.not_after_unix = now + 2 * kDay;
        }),
        PeerRole::client, Errc::cert_not_yet_valid);
    certs::CertSpec old_inter = ca.ca_spec("expired intermediate");
    old_inter.not_before_unix = now - 10 * kDay;
    old_inter.not_after_unix = now - kDay;
    add("A9 expired intermediate", ca.intermediate(old_inter).issue_leaf(good_id), PeerRole::client,
        Errc::cert_expired);
    certs::CertSpec young_inter = ca.ca_spec("future intermediate");
    young_inter.not_before_unix = now + kDay;
    young_inter.not_after_unix = now + 10 * kDay;
    add("A9 not yet valid intermediate", ca.intermediate(young_inter).issue_leaf(good_id),
        PeerRole::client, Errc::cert_not_yet_valid);

    // A10: the EKU of the wrong side.
    add("A10 client with serverAuth only",
        with([](certs::CertSpec& s) { s.ext_key_usage = XKU_SSL_SERVER; }), PeerRole::client,
        Errc::cert_eku);
    add("A10 server with clientAuth only",
        with([](certs::CertSpec& s) { s.ext_key_usage = XKU_SSL_CLIENT; }), PeerRole::server,
        Errc::cert_eku);
    add("A10 no EKU", with([](certs::CertSpec& s) { s.ext_key_usage = 0; }), PeerRole::server,
        Errc::cert_eku);
    return cases;
}

TestCert foreign_trust_domain_leaf(const TestCa& ca) {
    return ca.issue_leaf("spiffe://other.td/ns/default/sa/app");
}

}  // namespace zt::testing
