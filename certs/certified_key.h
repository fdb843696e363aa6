#pragma once

// CertifiedKey is what hbone/ gets to build a TLS context for one local identity: our chain, our
// private key, the roots we trust peers against, and the identity and validity they prove. The
// store publishes one per identity as `std::shared_ptr<const CertifiedKey>` and replaces the
// pointer (never the object) on renewal or rotation, so a handshake that loaded the old one
// finishes with it and the next handshake loads the new one.
//
// hbone/ uses it like this (BoringSSL up-refs what it keeps, so the CertifiedKey may be dropped
// after the SSL_CTX is built):
//
//     SSL_CTX_set_chain_and_key(ctx, ck->chain().data(), ck->chain().size(),
//                               ck->private_key(), nullptr);
//     // custom verify: certs::verify_svid(ck->roots(), peer_chain, role, now_unix)
//     // server side: certs::check_trust_domain(peer, ck->identity().trust_domain())

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
#include "certs/verify.h"
#include "zt/result.h"

namespace zt::certs {

// CertifiedKey is immutable after `make`; every accessor returns something borrowed that lives as
// long as the CertifiedKey. Safe to share between threads.
class CertifiedKey {
public:
    // ChainCheck says how much of a new chain `make` verifies. `full` is the rule for anything
    // read or received. `issued_by_verified_ca` is for a leaf this process just signed with a CA
    // whose chain an earlier `full` make verified against the same roots: its path above the leaf
    // is the one already verified, and its signature is ours, so only the leaf is checked (its
    // profile for both roles, its identity and its validity window).
    enum class ChainCheck { full, issued_by_verified_ca };

    // make parses `chain_pem` (leaf first, then intermediates; a self-signed root at the end is
    // dropped, since roots are never sent) and `key_pem`, and accepts them only if the key is the
    // leaf's, the chain verifies against `roots` at `now_unix` as an SVID for both sides
    // (serverAuth and clientAuth: we use it in both roles), and the leaf's identity is
    // `expected`. Fails with `Errc::cert_parse`, `Errc::cert_key_mismatch`,
    // `Errc::identity_mismatch` or any `verify_svid` reason (e.g. `Errc::cert_expired`).
    static Result<std::shared_ptr<const CertifiedKey>> make(
            const Identity& expected, std::string_view chain_pem, std::string_view key_pem,
            std::shared_ptr<const TrustBundle> roots, int64_t now_unix,
            ChainCheck check = ChainCheck::full);

    // with_roots returns this chain and key re-verified against `roots` at `now_unix`, as a new
    // CertifiedKey that trusts `roots` (this one is unchanged: handshakes holding it keep it).
    // It fails with the `verify_svid` reason (e.g. `Errc::cert_unknown_ca` when the leaf does not
    // chain to any of `roots`). A root rotation in file mode uses it so that no identity goes on
    // trusting a root that was removed.
    Result<std::shared_ptr<const CertifiedKey>> with_roots(std::shared_ptr<const TrustBundle> roots,
                                                           int64_t now_unix) const;

    // identity is the SPIFFE ID the leaf proves.
    const Identity& identity() const { return identity_; }

    // chain is the DER chain to send (leaf first, then intermediates), in the array form
    // `SSL_CTX_set_chain_and_key` takes.
    std::span<CRYPTO_BUFFER* const> chain() const { return chain_ptrs_; }

    // certs is the same chain as parsed certificates (leaf first).
    const std::vector<X509Ptr>& certs() const { return certs_; }

    // leaf returns the leaf certificate.
    X509* leaf() const { return certs_.front().get(); }

    // private_key returns the leaf's private key.
    EVP_PKEY* private_key() const { return key_.get(); }

    // roots returns the trust bundle peers are verified against.
    const TrustBundle& roots() const { return *roots_; }

    // roots_ptr returns the shared trust bundle, for holders that outlive this object.
    const std::shared_ptr<const TrustBundle>& roots_ptr() const { return roots_; }

    // not_before_unix / not_after_unix are the leaf's validity in Unix seconds.
    int64_t not_before_unix() const { return not_before_unix_; }

    int64_t not_after_unix() const { return not_after_unix_; }

    // refresh_at_unix is when a renewal is due: the leaf's half-life, as ztunnel.
    int64_t refresh_at_unix() const {
        return not_before_unix_ + (not_after_unix_ - not_before_unix_) / 2;
    }

    // chain_pem is the chain as accepted (leaf first), PEM.
    const std::string& chain_pem() const { return chain_pem_; }

private:
    explicit CertifiedKey(Identity identity) : identity_(std::move(identity)) {}

    Identity identity_;
    std::vector<X509Ptr> certs_;
    std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> buffers_;
    std::vector<CRYPTO_BUFFER*> chain_ptrs_;
    KeyPtr key_;
    std::shared_ptr<const TrustBundle> roots_;
    int64_t not_before_unix_ = 0;
    int64_t not_after_unix_ = 0;
    std::string chain_pem_;
};

}  // namespace zt::certs
