#pragma once

// X.509-SVID verification (docs/reliability.md §3.1, §3.3): a peer's chain must build to one of the
// trust bundle's roots, every certificate must be valid at the given time, and the leaf must be
// an SVID: not a CA, critical key usage with digitalSignature and neither keyCertSign nor cRLSign,
// the extended key usage of the peer's side, and exactly one URI SAN that is a valid SPIFFE ID in
// Istio's shape. Each refusal is its own `Errc` so callers can count and log it.
//
// hbone/ calls this from `SSL_CTX_set_custom_verify`:
//
//     // client side (the peer is a server we dialled):
//     auto peer = certs::verify_server_peer(ck->roots(), SSL_get0_peer_certificates(ssl),
//                                           now_unix, expected_identities);
//     // server side (the peer is a client that dialled us):
//     auto peer = certs::verify_client_peer(ck->roots(), SSL_get0_peer_certificates(ssl),
//                                           now_unix, ck->identity().trust_domain());
//     if (!peer) { count(peer.error().code); *out_alert = SSL_AD_BAD_CERTIFICATE;
//                  return ssl_verify_invalid; }

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include "certs/identity.h"
#include "certs/pem.h"
#include "zt/result.h"

namespace zt::certs {

// kMaxPeerChainCerts caps the certificates a peer may send (leaf included); more fail with
// `Errc::cert_chain_too_long` before any is parsed (docs/reliability.md A13: a 100-certificate
// chain).
inline constexpr size_t kMaxPeerChainCerts = 8;

// kMaxVerifyDepth caps the intermediates allowed between the leaf and a root.
inline constexpr int kMaxVerifyDepth = 5;

// kVerifyCacheEntries is the default number of verified peer chains a `TrustBundle` remembers
// (about 300 bytes each).
inline constexpr size_t kVerifyCacheEntries = 1024;

// VerifyCacheStats are a bundle's verification-cache counters since it was made.
struct VerifyCacheStats {
    uint64_t hits = 0;       // chains judged from the cache (no path validation)
    uint64_t misses = 0;     // chains validated in full (new, evicted, or outside their window)
    uint64_t evictions = 0;  // entries dropped because the cache was full (the limit was hit)
    size_t entries = 0;
};

// PeerRole says which side of the handshake the verified certificate belongs to, and so which
// extended key usage its leaf must carry.
enum class PeerRole : uint8_t {
    server,  // The peer is a TLS server (we are the client): serverAuth.
    client,  // The peer is a TLS client (we are the server): clientAuth.
};

// verify_cache_hits_total, verify_cache_misses_total and verify_cache_evictions_total are the
// process-wide sums of every bundle's `VerifyCacheStats` counters: monotonic, also across root
// rotations (which replace bundles), for metrics. Thread-safe.
uint64_t verify_cache_hits_total();
uint64_t verify_cache_misses_total();
uint64_t verify_cache_evictions_total();

// TrustBundle is an immutable set of trusted roots (one or more, e.g. the old and the new root
// during a rotation) with the `X509_STORE` built from them once. Share it as
// `std::shared_ptr<const TrustBundle>`; concurrent verifications against one bundle are safe.
//
// It also remembers the peer chains it validated (the verification cache): path validation of
// the same chain against the same roots for the same side gives the same answer except for time,
// so `verify_svid` (CRYPTO_BUFFER form, what handshakes use) keys successes by a SHA-256 of the
// side and the chain's DER and, on a hit, checks only that `now_unix` lies inside the validity
// window of every certificate of the built path. New roots are a new bundle, so a root
// rotation starts with an empty cache. The TLS CertificateVerify signature is checked by
// BoringSSL on every handshake regardless.
class TrustBundle {
public:
    // from_pem parses every certificate of `pem` as a root. Fails with `Errc::cert_parse` when
    // there is none or one is malformed, and with `Errc::cert_is_ca` when one is not a CA
    // (basicConstraints cA=TRUE): a leaf must never become a trust anchor. The verification
    // cache holds at most `verify_cache_entries` chains (0 disables it); when full, the oldest
    // entry is evicted.
    static Result<std::shared_ptr<const TrustBundle>> from_pem(
            std::string_view pem, size_t verify_cache_entries = kVerifyCacheEntries);

    ~TrustBundle();
    TrustBundle(const TrustBundle&) = delete;
    TrustBundle& operator=(const TrustBundle&) = delete;

    // verify_cache_stats returns a copy of the cache's counters (for metrics and tests).
    VerifyCacheStats verify_cache_stats() const;

    // store returns the verification store (borrowed; lives as long as this bundle).
    X509_STORE* store() const { return store_.get(); }

    // roots returns the root certificates, in file order (borrowed).
    const std::vector<X509Ptr>& roots() const { return roots_; }

    // pem returns the PEM text the bundle was parsed from.
    const std::string& pem() const { return pem_; }

    // VerifyCache is the verification cache (defined in verify.cc; thread-safe). The bundle is
    // immutable; the cache is the one part shared `const` bundles change, behind its lock.
    struct VerifyCache;

private:
    friend Result<Identity> verify_svid(const TrustBundle& roots,
                                        const STACK_OF(CRYPTO_BUFFER) * chain, PeerRole role,
                                        int64_t now_unix);

    TrustBundle();

    bssl::UniquePtr<X509_STORE> store_;
    std::unique_ptr<VerifyCache> cache_;
    std::vector<X509Ptr> roots_;
    std::string pem_;
};

// verify_svid verifies the peer chain `chain` (leaf first, then any intermediates, as TLS sends
// it) against `roots` at `now_unix` for a peer playing `role`, and returns the leaf's identity.
// Borrows everything; leaves BoringSSL's error queue empty. Failures, in check order:
//   `cert_chain_too_long`  empty is `cert_parse`; more than `kMaxPeerChainCerts` certificates
//   `cert_parse`           a certificate or extension does not parse
//   `cert_is_ca`           the leaf has cA=TRUE
//   `cert_key_usage`       key usage absent, not critical, without digitalSignature, or cRLSign
//   `cert_key_cert_sign`   key usage has keyCertSign
//   `cert_eku`             no extended key usage for `role` (serverAuth / clientAuth)
//   `cert_no_uri_san`      no URI SAN (e.g. DNS names only)
//   `cert_many_uri_sans`   more than one URI SAN
//   `cert_bad_san`         the URI SAN is not `spiffe://td/ns/x/sa/y` (`Identity::parse`), or an
//                          empty subject with a non-critical SAN
//   `cert_unknown_ca`      the chain does not build to a root of `roots` (or a signature fails)
//   `cert_expired`, `cert_not_yet_valid`   some certificate of the built chain, at `now_unix`
//   `cert_chain_too_long`  deeper than `kMaxVerifyDepth`
//   `cert_chain_invalid`   any other path-validation failure (an intermediate that is not a CA,
//                          an unknown critical extension, a path length constraint, ...)
Result<Identity> verify_svid(const TrustBundle& roots, std::span<X509* const> chain, PeerRole role,
                             int64_t now_unix);

// verify_svid (CRYPTO_BUFFER form) parses `chain` (`SSL_get0_peer_certificates`) and verifies it
// as above, through `roots`' verification cache (see `TrustBundle`): a chain validated before
// for `role` is only checked against `now_unix`; only successes are remembered, so refusals
// always come from full validation with their own reason. A null or empty `chain` fails with
// `Errc::cert_parse`.
Result<Identity> verify_svid(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                             PeerRole role, int64_t now_unix);

// verify_svid (STACK_OF(X509) form) verifies `chain` (`SSL_get_peer_full_cert_chain`) as above.
Result<Identity> verify_svid(const TrustBundle& roots, const STACK_OF(X509) * chain, PeerRole role,
                             int64_t now_unix);

// check_leaf_profile applies only the leaf checks of `verify_svid` (no chain, no time) for `role`
// and returns the leaf's identity. `Errc` values as for `verify_svid`.
Result<Identity> check_leaf_profile(X509* leaf, PeerRole role);

// check_identity_in is the client-side check: the server `peer` must be one of `expected` (the
// destination workload's identity and its service's SANs). Fails with
// `Errc::identity_mismatch`, also when `expected` is empty (fail closed).
Result<void> check_identity_in(const Identity& peer, std::span<const Identity> expected);

// check_trust_domain is the server-side check: the client `peer` must be in `trust_domain` (the
// trust domain of our own certificate). Fails with `Errc::trust_domain_mismatch`.
Result<void> check_trust_domain(const Identity& peer, std::string_view trust_domain);

// verify_server_peer is the whole client-side check: `verify_svid` with `PeerRole::server`, then
// `check_identity_in(expected)`. Returns the server's identity or the first refusal.
Result<Identity> verify_server_peer(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                    int64_t now_unix, std::span<const Identity> expected);

// verify_client_peer is the whole server-side check: `verify_svid` with `PeerRole::client`, then
// `check_trust_domain(trust_domain)`. Returns the client's identity (for RBAC) or the refusal.
Result<Identity> verify_client_peer(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                    int64_t now_unix, std::string_view trust_domain);

// verify_server_name is the check of a control-plane server (istiod, the Istio CA) that the
// agent dials: the chain (leaf first, `SSL_get0_peer_certificates`) must build to one of `roots`
// at `now_unix` with serverAuth allowed along the path, and the leaf must be valid for `name`:
// a DNS name matched against the leaf's DNS SANs (a wildcard only as a whole left-most label),
// or an IPv4/IPv6 literal matched against its IP SANs. It is not an SVID check: istiod proves a
// DNS name (`istiod.istio-system.svc`), not a SPIFFE ID. Borrows everything; leaves BoringSSL's
// error queue empty. Fails with `Errc::cert_name_mismatch` when the leaf is not valid for
// `name`, `Errc::cert_parse` for an empty or unparsable chain (or an empty `name`),
// `Errc::cert_chain_too_long` past `kMaxPeerChainCerts`, and the path-validation codes of
// `verify_svid` (`cert_unknown_ca`, `cert_expired`, `cert_not_yet_valid`, `cert_eku`, ...).
Result<void> verify_server_name(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                int64_t now_unix, std::string_view name);

}  // namespace zt::certs
