#pragma once

// TestCa makes PKI for tests at run time (nothing secret is committed): roots, intermediates,
// good X.509-SVIDs and every bad certificate of docs/reliability.md §6a A4–A10. certs/ tests use it
// for verification and the store; hbone/ tests use it for TLS certificates. Failures inside (which
// would be bugs in certs/ or the test) abort with ZT_CHECK rather than return errors, so test
// code stays short.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include "certs/issue.h"
#include "certs/pem.h"
#include "certs/verify.h"
#include "zt/errc.h"

namespace zt::testing {

// TestCert is one issued certificate with its key and the chain a peer would send.
struct TestCert {
    certs::X509Ptr cert;
    certs::KeyPtr key;
    std::string cert_pem;   // the certificate alone
    std::string key_pem;    // its private key (PKCS#8 PEM)
    std::string chain_pem;  // `cert_pem` followed by the issuer's intermediates (never the root)
    std::vector<certs::X509Ptr> intermediates;  // the issuer's intermediates, leaf-side first

    // chain returns the leaf then the intermediates, borrowed from this `TestCert`.
    std::vector<X509*> chain() const;

    // chain_buffers returns the same chain as DER buffers (what `SSL_get0_peer_certificates`
    // gives, and what `SSL_CTX_set_chain_and_key` takes).
    bssl::UniquePtr<STACK_OF(CRYPTO_BUFFER)> chain_buffers() const;
};

// TestCa is a CA (a root, or an intermediate that knows its chain up to the root).
class TestCa {
public:
    // root makes a self-signed P-256 root for `trust_domain`, valid from a day before `now_unix`
    // for ten years. `now_unix` defaults to the real wall clock.
    static TestCa root(std::string_view trust_domain = "cluster.local", int64_t now_unix = -1);

    // intermediate makes a CA signed by this one: with `ca_spec(common_name)`, or with `spec`
    // (e.g. an expired or not-yet-valid intermediate).
    TestCa intermediate(std::string_view common_name = "intermediate") const;
    TestCa intermediate(const certs::CertSpec& spec) const;

    // ca_spec returns the spec `intermediate` uses by default, to modify.
    certs::CertSpec ca_spec(std::string_view common_name) const;

    // leaf_spec returns a good SVID spec for `spiffe_id` (taken verbatim, so malformed IDs can be
    // issued), valid from an hour before `now_unix()` for a day, both EKUs, KU digitalSignature.
    certs::CertSpec leaf_spec(std::string_view spiffe_id) const;

    // issue signs `spec` with a fresh P-256 key.
    TestCert issue(const certs::CertSpec& spec) const;

    // issue_leaf issues a good SVID for `spiffe_id`.
    TestCert issue_leaf(std::string_view spiffe_id) const;

    // root_pem returns the PEM of this hierarchy's root (what peers trust).
    const std::string& root_pem() const { return root_pem_; }

    // bundle returns a trust bundle holding this hierarchy's root.
    std::shared_ptr<const certs::TrustBundle> bundle() const;

    // cert_pem / key_pem are this CA's own certificate and key, PEM (e.g. for `ca-cert.pem`).
    const std::string& cert_pem() const { return cert_pem_; }

    const std::string& key_pem() const { return key_pem_; }

    // cert / key return this CA's certificate and key (borrowed, as long as this TestCa lives).
    X509* cert() const { return cert_.get(); }

    EVP_PKEY* key() const { return key_.get(); }

    // trust_domain is the trust domain the root was made for (intermediates inherit it).
    const std::string& trust_domain() const { return trust_domain_; }

    // now_unix is the reference time every validity window here is built around; verify at it.
    int64_t now_unix() const { return now_unix_; }

private:
    TestCa() = default;

    std::string trust_domain_;
    int64_t now_unix_ = 0;
    certs::X509Ptr cert_;
    certs::KeyPtr key_;
    std::string cert_pem_;
    std::string key_pem_;
    std::string root_pem_;
    // This CA's own chain above it, excluding the root: for a root, empty; for an intermediate,
    // itself followed by its issuer's intermediates.
    std::vector<certs::X509Ptr> chain_;
};

// BadCase is one certificate a verifier must refuse, with the reason it must give.
struct BadCase {
    std::string name;  // e.g. "A5 two URI SANs"
    TestCert cert;
    certs::PeerRole role;  // the side the certificate is presented as
    Errc expected;
};

// bad_cases returns docs/reliability.md §6a A4, A5 and A7–A10 for `ca`'s trust domain, each issued
// as it would reach a verifier that trusts `ca.bundle()`. A6 (another trust domain through a
// trusted CA) is a valid SVID refused later by `check_trust_domain`; see
// `foreign_trust_domain_leaf`.
std::vector<BadCase> bad_cases(const TestCa& ca);

// foreign_trust_domain_leaf issues, from `ca`, a valid SVID in trust domain `other.td` (A6).
TestCert foreign_trust_domain_leaf(const TestCa& ca);

}  // namespace zt::testing
