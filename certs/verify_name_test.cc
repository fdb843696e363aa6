// Unit tests for certs::verify_server_name, the check the agent applies to istiod's certificate:
// a DNS-name server certificate (no SPIFFE ID) made at run time by tests/support/test_ca, judged
// by chain, time, serverAuth and name.

#include <string>

#include <doctest/doctest.h>
#include <openssl/err.h>

#include "certs/verify.h"
#include "tests/support/test_ca.h"

using zt::Errc;
using zt::certs::verify_server_name;
using zt::testing::TestCa;
using zt::testing::TestCert;

namespace {

// istiod_cert issues what istiod serves on 15012: DNS SANs only, serverAuth (+ clientAuth),
// digitalSignature.
TestCert istiod_cert(const TestCa& ca, std::vector<std::string> dns,
                     uint32_t eku = XKU_SSL_SERVER | XKU_SSL_CLIENT) {
    zt::certs::CertSpec spec = ca.leaf_spec("spiffe://unused");
    spec.uri_sans.clear();
    spec.dns_sans = std::move(dns);
    spec.ext_key_usage = eku;
    return ca.issue(spec);
}

zt::Result<void> check(const TestCa& trusted, const TestCert& cert, std::string_view name,
                       int64_t now) {
    auto buffers = cert.chain_buffers();
    return verify_server_name(*trusted.bundle(), buffers.get(), now, name);
}

}  // namespace

TEST_CASE("certs: istiod's certificate verifies for each of its DNS names and no other") {
    TestCa ca = TestCa::root();
    TestCert cert = istiod_cert(ca, {"istiod.istio-system.svc", "istiod-remote.example"});
    CHECK(check(ca, cert, "istiod.istio-system.svc", ca.now_unix()));
    CHECK(check(ca, cert, "istiod-remote.example", ca.now_unix()));
    CHECK(check(ca, cert, "ISTIOD.istio-system.svc", ca.now_unix()));  // DNS is case-blind.
    auto other = check(ca, cert, "istiod.istio-system.svc.cluster.local", ca.now_unix());
    REQUIRE_FALSE(other);
    CHECK(other.error().code == Errc::cert_name_mismatch);
    // An address literal is matched against IP SANs, never against the DNS names.
    auto by_ip = check(ca, cert, "198.18.0.1", ca.now_unix());
    REQUIRE_FALSE(by_ip);
    CHECK(by_ip.error().code == Errc::cert_name_mismatch);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("certs: a wildcard covers one whole left-most label only") {
    TestCa ca = TestCa::root();
    TestCert cert = istiod_cert(ca, {"*.istio-system.svc"});
    CHECK(check(ca, cert, "istiod.istio-system.svc", ca.now_unix()));
    CHECK_FALSE(check(ca, cert, "a.b.istio-system.svc", ca.now_unix()));
    CHECK_FALSE(check(ca, cert, "istio-system.svc", ca.now_unix()));
}

TEST_CASE("certs: istiod's certificate through an intermediate needs the mesh root") {
    TestCa root = TestCa::root();
    TestCa inter = root.intermediate();
    TestCert cert = istiod_cert(inter, {"istiod.istio-system.svc"});
    CHECK(check(root, cert, "istiod.istio-system.svc", root.now_unix()));
    TestCa stranger = TestCa::root();
    auto refused = check(stranger, cert, "istiod.istio-system.svc", root.now_unix());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::cert_unknown_ca);
}

TEST_CASE("certs: time, purpose and malformed input are refused with their reasons") {
    TestCa ca = TestCa::root();
    TestCert cert = istiod_cert(ca, {"istiod.istio-system.svc"});
    auto late = check(ca, cert, "istiod.istio-system.svc", ca.now_unix() + 3 * 86400);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::cert_expired);
    auto early = check(ca, cert, "istiod.istio-system.svc", ca.now_unix() - 86400);
    REQUIRE_FALSE(early);
    CHECK(early.error().code == Errc::cert_not_yet_valid);

    TestCert client_only = istiod_cert(ca, {"istiod.istio-system.svc"}, XKU_SSL_CLIENT);
    auto purpose = check(ca, client_only, "istiod.istio-system.svc", ca.now_unix());
    REQUIRE_FALSE(purpose);
    CHECK(purpose.error().code == Errc::cert_eku);

    auto empty_name = check(ca, cert, "", ca.now_unix());
    REQUIRE_FALSE(empty_name);
    CHECK(empty_name.error().code == Errc::cert_parse);
    auto no_chain = verify_server_name(*ca.bundle(), nullptr, ca.now_unix(), "x");
    REQUIRE_FALSE(no_chain);
    CHECK(no_chain.error().code == Errc::cert_parse);
    CHECK(ERR_peek_error() == 0);
}
