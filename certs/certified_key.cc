// certified_key.cc validates a chain and key before they can be published to TLS. Nothing reaches
// hbone/ without passing here, so a half-written file, a mismatched key or a certificate filed
// under the wrong identity is refused at load time, never during a handshake.

#include "certs/certified_key.h"

#include <openssl/x509v3.h>

namespace zt::certs {

Result<std::shared_ptr<const CertifiedKey>> CertifiedKey::make(
        const Identity& expected, std::string_view chain_pem, std::string_view key_pem,
        std::shared_ptr<const TrustBundle> roots, int64_t now_unix, ChainCheck check) {
    ZT_ASSERT(roots != nullptr);
    auto certs = parse_cert_chain_pem(chain_pem);
    if (!certs) {
        return fail(certs.error());
    }
    // Drop trailing self-signed roots: peers have their own, and sending one only costs bytes.
    while (certs->size() > 1 && (X509_get_extension_flags(certs->back().get()) & EXFLAG_SS)) {
        certs->pop_back();
    }
    auto key = parse_private_key_pem(key_pem);
    if (!key) {
        return fail(key.error());
    }
    X509* leaf = certs->front().get();
    if (!keys_match(leaf, key->get())) {
        return fail(Errc::cert_key_mismatch);
    }
    std::vector<X509*> borrowed;
    for (auto& cert : *certs) {
        borrowed.push_back(cert.get());
    }
    // Check the identity before the chain so a certificate filed under the wrong identity says
    // so even when it is also expired or from another CA.
    auto profile = check_leaf_profile(leaf, PeerRole::server);
    if (profile && !(*profile == expected)) {
        return fail(Errc::identity_mismatch);
    }
    for (PeerRole role : {PeerRole::server, PeerRole::client}) {
        auto id = check == ChainCheck::full
                          ? verify_svid(*roots, std::span<X509* const>(borrowed), role, now_unix)
                          : check_leaf_profile(leaf, role);
        if (!id) {
            return fail(id.error());
        }
    }
    auto not_before = cert_not_before_unix(leaf);
    auto not_after = cert_not_after_unix(leaf);
    if (!not_before || !not_after) {
        return fail(Errc::cert_parse);
    }
    if (check != ChainCheck::full && (now_unix < *not_before || now_unix > *not_after)) {
        return fail(now_unix < *not_before ? Errc::cert_not_yet_valid : Errc::cert_expired);
    }
    std::shared_ptr<CertifiedKey> out(new CertifiedKey(expected));
    for (auto& cert : *certs) {
        auto buffer = cert_to_buffer(cert.get());
        auto pem = cert_to_pem(cert.get());
        if (!buffer || !pem) {
            return fail(Errc::cert_parse);
        }
        out->chain_ptrs_.push_back(buffer->get());
        out->buffers_.push_back(std::move(buffer).value());
        out->chain_pem_ += *pem;
    }
    out->certs_ = std::move(certs).value();
    out->key_ = std::move(key).value();
    out->roots_ = std::move(roots);
    out->not_before_unix_ = *not_before;
    out->not_after_unix_ = *not_after;
    return std::shared_ptr<const CertifiedKey>(std::move(out));
}

Result<std::shared_ptr<const CertifiedKey>> CertifiedKey::with_roots(
        std::shared_ptr<const TrustBundle> roots, int64_t now_unix) const {
    ZT_ASSERT(roots != nullptr);
    std::vector<X509*> borrowed;
    for (const auto& cert : certs_) {
        borrowed.push_back(cert.get());
    }
    for (PeerRole role : {PeerRole::server, PeerRole::client}) {
        auto id = verify_svid(*roots, std::span<X509* const>(borrowed), role, now_unix);
        if (!id) {
            return fail(id.error());
        }
    }
    std::shared_ptr<CertifiedKey> out(new CertifiedKey(identity_));
    for (const auto& cert : certs_) {
        X509_up_ref(cert.get());
        out->certs_.emplace_back(cert.get());
    }
    for (const auto& buffer : buffers_) {
        CRYPTO_BUFFER_up_ref(buffer.get());
        out->chain_ptrs_.push_back(buffer.get());
        out->buffers_.emplace_back(buffer.get());
    }
    EVP_PKEY_up_ref(key_.get());
    out->key_.reset(key_.get());
    out->roots_ = std::move(roots);
    out->not_before_unix_ = not_before_unix_;
    out->not_after_unix_ = not_after_unix_;
    out->chain_pem_ = chain_pem_;
    return std::shared_ptr<const CertifiedKey>(std::move(out));
}

}  // namespace zt::certs
