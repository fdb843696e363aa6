#pragma once

// Keys, CSRs and certificates: ECDSA P-256 key generation, a CSR for a SPIFFE identity, a general
// certificate builder (`CertSpec` + `sign_cert`), and `LocalCa`, the root CA of `ztunnel ca` and
// of local-CA mode. Everything is in memory; writing files is the caller's job.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/identity.h"
#include "certs/pem.h"
#include "zt/result.h"

namespace zt::certs {

// kRootCaValiditySeconds is the lifetime of a root made by `LocalCa::create` (10 years).
inline constexpr int64_t kRootCaValiditySeconds = int64_t(3650) * 86400;

// kLeafBackdateSeconds moves a new leaf's notBefore into the past so that a peer whose clock is
// slightly behind ours does not refuse it as not yet valid.
inline constexpr int64_t kLeafBackdateSeconds = 60;

// generate_p256_key makes a fresh ECDSA P-256 private key. Fails with `Errc::cert_issue` only if
// BoringSSL cannot (out of memory or entropy).
Result<KeyPtr> generate_p256_key();

// CertSpec describes one certificate to sign. The defaults describe nothing useful: start from
// `leaf_spec` or `ca_spec` and change fields (the test CA changes them to make bad certificates).
struct CertSpec {
    // common_name and organization fill the subject; both empty gives an empty subject, in which
    // case the SAN extension is marked critical (RFC 5280 §4.2.1.6, SPIFFE X509-SVID §4).
    std::string common_name;
    std::string organization;
    std::vector<std::string> uri_sans;
    std::vector<std::string> dns_sans;
    // san_critical marks the SAN extension critical (1) or not (0); -1 means "critical exactly
    // when the subject is empty", the only right choice outside tests.
    int san_critical = -1;
    // is_ca sets basicConstraints cA=TRUE (always critical); `path_len` >= 0 adds
    // pathLenConstraint.
    bool is_ca = false;
    int path_len = -1;
    // key_usage is a mask of BoringSSL's `KU_*` bits; 0 omits the extension.
    uint32_t key_usage = 0;
    bool key_usage_critical = true;
    // ext_key_usage is a mask of `XKU_SSL_SERVER` and `XKU_SSL_CLIENT`; 0 omits the extension.
    uint32_t ext_key_usage = 0;
    int64_t not_before_unix = 0;
    int64_t not_after_unix = 0;
};

// leaf_spec returns the spec of an X.509-SVID for `id`: empty subject, URI SAN = `id` (critical),
// KU digitalSignature (critical), EKU serverAuth + clientAuth, cA=FALSE, valid from
// `now_unix - kLeafBackdateSeconds` to `now_unix + ttl_seconds`.
CertSpec leaf_spec(const Identity& id, int64_t now_unix, int64_t ttl_seconds);

// ca_spec returns the spec of a CA for `trust_domain`: O=`trust_domain`, CN=`common_name`,
// cA=TRUE, KU keyCertSign + cRLSign (critical), URI SAN `spiffe://<trust_domain>` (SPIFFE's
// trust-domain form), valid from `now_unix - kLeafBackdateSeconds` for `validity_seconds`.
CertSpec ca_spec(std::string_view trust_domain, std::string_view common_name, int64_t now_unix,
                 int64_t validity_seconds);

// sign_cert builds and signs the certificate `spec` describes for `subject_key`'s public key,
// with a random positive 128-bit serial, SHA-256, and subject/authority key identifiers. The
// issuer is `issuer_cert` signed with `issuer_key`; pass `issuer_cert == nullptr` to self-sign
// with `issuer_key` (which must then be `subject_key`). Borrows every argument. Fails with
// `Errc::cert_issue`.
Result<X509Ptr> sign_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
                          EVP_PKEY* issuer_key);

// make_csr_pem returns a PEM CSR for `id` signed by `key`: empty subject and one critical URI
// SAN = `id`, as ztunnel's CA client sends. Fails with `Errc::cert_issue`.
Result<std::string> make_csr_pem(EVP_PKEY* key, const Identity& id);

// Issued is a freshly issued leaf: its certificate, its PEM chain (leaf, then the issuer's
// intermediates, never the root) and its private key when the issuer made the key.
struct Issued {
    X509Ptr leaf;
    std::string chain_pem;
    KeyPtr key;
};

// LocalCa is a CA key and certificate held in memory: the root of `ztunnel ca init` and the signer
// of local-CA mode. Immutable after construction, so one instance may sign from several threads.
class LocalCa {
public:
    // create makes a new self-signed P-256 root for `trust_domain`, valid for 10 years from
    // `now_unix`. Fails with `Errc::cert_issue`, or `Errc::bad_identity` for an invalid trust
    // domain.
    static Result<LocalCa> create(std::string_view trust_domain, int64_t now_unix);

    // load reads a CA from the files of `ztunnel ca init`: `cert_pem` (the CA certificate first;
    // when it is not self-signed, it and any further non-self-signed certificates of `cert_pem`
    // are sent with each leaf as intermediates), its `key_pem`, and `root_pem` (the trust anchors
    // peers use). Fails with `Errc::cert_parse`, `Errc::cert_key_mismatch` when the key is not
    // the certificate's, or `Errc::cert_is_ca` when the certificate is not a CA with keyCertSign.
    static Result<LocalCa> load(std::string_view cert_pem, std::string_view key_pem,
                                std::string_view root_pem);

    // sign_csr verifies `csr_pem`'s signature, checks that its only URI SAN is `id`, and issues a
    // leaf for `id` with the CSR's public key, valid for `ttl_seconds` from `now_unix`. Requested
    // extensions other than the SAN are ignored: the CA decides the profile. A CA whose
    // certificate names its trust domain (URI SAN `spiffe://<td>`, as `create` makes) signs only
    // identities of that trust domain, since no peer trusting it would accept others. Fails with
    // `Errc::cert_parse` (bad CSR), `Errc::identity_mismatch`, `Errc::trust_domain_mismatch` or
    // `Errc::cert_issue`.
    Result<Issued> sign_csr(std::string_view csr_pem, const Identity& id, int64_t now_unix,
                            int64_t ttl_seconds) const;

    // issue makes a new P-256 key and signs a leaf for `id` over it (the profile and checks of
    // `sign_csr`, without a CSR: the key is made here). The result owns the key.
    Result<Issued> issue(const Identity& id, int64_t now_unix, int64_t ttl_seconds) const;

    // cert returns the CA certificate (borrowed; lives as long as this `LocalCa`).
    X509* cert() const { return cert_.get(); }

    // key returns the CA private key (borrowed).
    EVP_PKEY* key() const { return key_.get(); }

    // cert_pem returns the CA certificate, PEM (`ca-cert.pem`).
    const std::string& cert_pem() const { return cert_pem_; }

    // key_pem returns the CA private key, PEM (`ca-key.pem`; secret).
    const std::string& key_pem() const { return key_pem_; }

    // trust_domain returns the trust domain the CA certificate names, or "" if it names none
    // (then any trust domain is signed).
    const std::string& trust_domain() const { return trust_domain_; }

    // root_pem returns the trust anchors peers need (`root-cert.pem`).
    const std::string& root_pem() const { return root_pem_; }

private:
    LocalCa() = default;

    // sign_leaf signs the leaf for `id` over `subject_key` (a public key is enough) and returns
    // it with the chain to send: the common end of `sign_csr` and `issue`.
    Result<Issued> sign_leaf(EVP_PKEY* subject_key, const Identity& id, int64_t now_unix,
                             int64_t ttl_seconds) const;

    X509Ptr cert_;
    KeyPtr key_;
    std::string cert_pem_;
    std::string key_pem_;
    std::string root_pem_;
    std::string intermediates_pem_;
    std::string trust_domain_;
};

}  // namespace zt::certs
