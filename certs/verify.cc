// verify.cc implements X.509-SVID verification on BoringSSL's X509_verify_cert plus our own leaf
// checks. It must fail closed on anything it cannot parse, never allocate per certificate beyond
// BoringSSL's own objects, and never leave errors on BoringSSL's thread-local queue (hbone/ calls
// it inside a handshake, where a stale error would confuse `SSL_get_error`). The verification
// cache below skips path validation only for a chain that already passed it against the same
// roots for the same side; it never answers a refusal and never skips the time check.

#include "certs/verify.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <openssl/stack.h>
#include <openssl/x509v3.h>

namespace zt::certs {

namespace {

// The process-wide totals behind `verify_cache_*_total`.
std::atomic<uint64_t> g_cache_hits{0};
std::atomic<uint64_t> g_cache_misses{0};
std::atomic<uint64_t> g_cache_evictions{0};

}  // namespace

uint64_t verify_cache_hits_total() {
    return g_cache_hits.load(std::memory_order_relaxed);
}

uint64_t verify_cache_misses_total() {
    return g_cache_misses.load(std::memory_order_relaxed);
}

uint64_t verify_cache_evictions_total() {
    return g_cache_evictions.load(std::memory_order_relaxed);
}

// VerifyCache maps SHA-256(side, chain DER) to the identity validation produced and the window
// of time in which every certificate of the built path is valid. Bounded; FIFO eviction.
struct TrustBundle::VerifyCache {
    using Key = std::array<uint8_t, SHA256_DIGEST_LENGTH>;

    struct KeyHash {
        size_t operator()(const Key& key) const {
            size_t h;
            std::memcpy(&h, key.data(), sizeof h);  // Already a cryptographic hash.
            return h;
        }
    };

    struct Entry {
        Identity identity;
        int64_t not_before_unix;  // The latest notBefore of the path.
        int64_t not_after_unix;   // The earliest notAfter of the path.
    };

    explicit VerifyCache(size_t capacity) : capacity_(capacity) {}

    // find returns the identity cached for `key` when `now_unix` lies strictly inside its window
    // (the edges, and anything outside, go through full validation for the exact verdict).
    std::optional<Identity> find(const Key& key, int64_t now_unix) {
        std::lock_guard<std::mutex> lock(mu_);
        auto found = entries_.find(key);
        if (found == entries_.end() || now_unix <= found->second.not_before_unix ||
            now_unix >= found->second.not_after_unix) {
            ++stats_.misses;
            g_cache_misses.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
        ++stats_.hits;
        g_cache_hits.fetch_add(1, std::memory_order_relaxed);
        return found->second.identity;
    }

    void insert(const Key& key, Entry entry) {
        std::lock_guard<std::mutex> lock(mu_);
        if (capacity_ == 0) {
            return;
        }
        auto [at, added] = entries_.insert_or_assign(key, std::move(entry));
        if (!added) {
            return;
        }
        order_.push_back(key);
        if (entries_.size() > capacity_) {
            entries_.erase(order_.front());
            order_.pop_front();
            ++stats_.evictions;
            g_cache_evictions.fetch_add(1, std::memory_order_relaxed);
        }
    }

    const size_t capacity_;
    std::mutex mu_;
    std::unordered_map<Key, Entry, KeyHash> entries_;
    std::deque<Key> order_;  // Insertion order, oldest first.
    VerifyCacheStats stats_;
};

namespace {

Unexpected refuse(Errc code) {
    ERR_clear_error();
    return fail(code);
}

// ShallowStack is a STACK_OF(X509) that borrows its elements: freeing it frees only the stack
// (the default `bssl::UniquePtr` deleter would free the certificates too).
struct ShallowStackFree {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};

using ShallowStack = std::unique_ptr<STACK_OF(X509), ShallowStackFree>;

Errc map_verify_error(int err) {
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return Errc::cert_expired;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return Errc::cert_not_yet_valid;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
            return Errc::cert_unknown_ca;
        case X509_V_ERR_INVALID_PURPOSE:
            return Errc::cert_eku;
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
            return Errc::cert_chain_too_long;
        case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
            return Errc::cert_parse;
        default:
            return Errc::cert_chain_invalid;
    }
}

bool extension_critical(X509* cert, int nid) {
    int index = X509_get_ext_by_NID(cert, nid, -1);
    return index >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1;
}

// leaf_identity applies the SAN rules: exactly one URI SAN, a valid SPIFFE ID, and a critical SAN
// when the subject is empty. Other SAN types (DNS, IP) are allowed and ignored.
Result<Identity> leaf_identity(X509* leaf) {
    int critical = -1;
    int index = -1;
    bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(leaf, NID_subject_alt_name, &critical, &index)));
    if (!names) {
        // critical == -1: no SAN at all; -2: the extension is repeated; otherwise unparsable.
        return refuse(critical == -1 ? Errc::cert_no_uri_san : Errc::cert_bad_san);
    }
    const ASN1_STRING* uri = nullptr;
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type != GEN_URI) {
            continue;
        }
        if (uri != nullptr) {
            return refuse(Errc::cert_many_uri_sans);
        }
        uri = name->d.uniformResourceIdentifier;
    }
    if (uri == nullptr) {
        return refuse(Errc::cert_no_uri_san);
    }
    if (X509_NAME_entry_count(X509_get_subject_name(leaf)) == 0 && critical != 1) {
        return refuse(Errc::cert_bad_san);
    }
    std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                          size_t(ASN1_STRING_length(uri)));
    auto id = Identity::parse(text);
    if (!id) {
        return refuse(Errc::cert_bad_san);
    }
    return id;
}

// PathWindow is when every certificate of a validated path is valid.
struct PathWindow {
    int64_t not_before_unix = INT64_MIN;
    int64_t not_after_unix = INT64_MAX;
    bool known = false;
};

// path_window computes the window of the path `ctx` built; `known` stays false if a time does
// not convert (the chain is then simply not cached).
PathWindow path_window(X509_STORE_CTX* ctx) {
    PathWindow window;
    STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx);
    if (path == nullptr || sk_X509_num(path) == 0) {
        return window;
    }
    for (size_t i = 0; i < sk_X509_num(path); ++i) {
        X509* cert = sk_X509_value(path, i);
        auto not_before = cert_not_before_unix(cert);
        auto not_after = cert_not_after_unix(cert);
        if (!not_before || !not_after) {
            ERR_clear_error();
            return window;
        }
        window.not_before_unix = std::max(window.not_before_unix, *not_before);
        window.not_after_unix = std::min(window.not_after_unix, *not_after);
    }
    window.known = true;
    return window;
}

Result<Identity> verify_parsed(const TrustBundle& roots, std::span<X509* const> chain,
                               PeerRole role, int64_t now_unix, PathWindow* window = nullptr) {
    if (chain.empty()) {
        return refuse(Errc::cert_parse);
    }
    if (chain.size() > kMaxPeerChainCerts) {
        return refuse(Errc::cert_chain_too_long);
    }
    auto id = check_leaf_profile(chain[0], role);
    if (!id) {
        return id;
    }
    ShallowStack untrusted(sk_X509_new_null());
    if (!untrusted) {
        return refuse(Errc::cert_chain_invalid);
    }
    for (size_t i = 1; i < chain.size(); ++i) {
        if (!sk_X509_push(untrusted.get(), chain[i])) {
            return refuse(Errc::cert_chain_invalid);
        }
    }
    bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), roots.store(), chain[0], untrusted.get())) {
        return refuse(Errc::cert_chain_invalid);
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, time_t(now_unix));
    // BoringSSL's depth counts the trust anchor as well as the intermediates.
    X509_VERIFY_PARAM_set_depth(param, kMaxVerifyDepth + 1);
    // The purpose makes BoringSSL check the EKU of every certificate of the path, not only ours
    // of the leaf (an intermediate restricted to serverAuth cannot vouch for a client).
    int purpose = role == PeerRole::server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
    if (!X509_STORE_CTX_set_purpose(ctx.get(), purpose)) {
        return refuse(Errc::cert_chain_invalid);
    }
    if (X509_verify_cert(ctx.get()) != 1) {
        Errc code = map_verify_error(X509_STORE_CTX_get_error(ctx.get()));
        // BoringSSL stops building at the depth limit and then reports a missing issuer; say
        // what really happened when the peer sent more intermediates than the limit.
        if (code == Errc::cert_unknown_ca && chain.size() - 1 > size_t(kMaxVerifyDepth)) {
            code = Errc::cert_chain_too_long;
        }
        return refuse(code);
    }
    if (window != nullptr) {
        *window = path_window(ctx.get());
    }
    ERR_clear_error();
    return id;
}

// cache_key hashes the side and the chain's DER, each certificate length-prefixed so that no two
// different chains share an input.
TrustBundle::VerifyCache::Key cache_key(const STACK_OF(CRYPTO_BUFFER) * chain, PeerRole role) {
    SHA256_CTX sha;
    SHA256_Init(&sha);
    uint8_t side = static_cast<uint8_t>(role);
    SHA256_Update(&sha, &side, 1);
    for (size_t i = 0; i < sk_CRYPTO_BUFFER_num(chain); ++i) {
        const CRYPTO_BUFFER* der = sk_CRYPTO_BUFFER_value(chain, i);
        uint64_t len = CRYPTO_BUFFER_len(der);
        SHA256_Update(&sha, &len, sizeof len);
        SHA256_Update(&sha, CRYPTO_BUFFER_data(der), len);
    }
    TrustBundle::VerifyCache::Key key;
    SHA256_Final(key.data(), &sha);
    return key;
}

}  // namespace

TrustBundle::TrustBundle() = default;
TrustBundle::~TrustBundle() = default;

VerifyCacheStats TrustBundle::verify_cache_stats() const {
    std::lock_guard<std::mutex> lock(cache_->mu_);
    VerifyCacheStats stats = cache_->stats_;
    stats.entries = cache_->entries_.size();
    return stats;
}

Result<std::shared_ptr<const TrustBundle>> TrustBundle::from_pem(std::string_view pem,
                                                                 size_t verify_cache_entries) {
    auto certs = parse_cert_chain_pem(pem);
    if (!certs) {
        return fail(certs.error());
    }
    std::shared_ptr<TrustBundle> bundle(new TrustBundle());
    bundle->cache_ = std::make_unique<VerifyCache>(verify_cache_entries);
    bundle->store_.reset(X509_STORE_new());
    if (!bundle->store_) {
        return refuse(Errc::cert_parse);
    }
    for (auto& cert : *certs) {
        if (X509_check_ca(cert.get()) != 1 ||
            (X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0) {
            return refuse(Errc::cert_is_ca);
        }
        // X509_STORE_add_cert fails on a duplicate root; that is harmless, so ignore it.
        X509_STORE_add_cert(bundle->store_.get(), cert.get());
        ERR_clear_error();
    }
    bundle->roots_ = std::move(certs).value();
    bundle->pem_ = std::string(pem);
    return std::shared_ptr<const TrustBundle>(std::move(bundle));
}

Result<Identity> check_leaf_profile(X509* leaf, PeerRole role) {
    uint32_t flags = X509_get_extension_flags(leaf);
    if (flags & EXFLAG_INVALID) {
        return refuse(Errc::cert_parse);
    }
    if (flags & EXFLAG_CA) {
        return refuse(Errc::cert_is_ca);
    }
    uint32_t ku = X509_get_key_usage(leaf);
    if ((flags & EXFLAG_KUSAGE) == 0 || !extension_critical(leaf, NID_key_usage) ||
        (ku & KU_DIGITAL_SIGNATURE) == 0 || (ku & KU_CRL_SIGN) != 0) {
        return refuse(Errc::cert_key_usage);
    }
    if (ku & KU_KEY_CERT_SIGN) {
        return refuse(Errc::cert_key_cert_sign);
    }
    uint32_t want = role == PeerRole::server ? XKU_SSL_SERVER : XKU_SSL_CLIENT;
    if ((flags & EXFLAG_XKUSAGE) == 0 || (X509_get_extended_key_usage(leaf) & want) == 0) {
        return refuse(Errc::cert_eku);
    }
    return leaf_identity(leaf);
}

Result<Identity> verify_svid(const TrustBundle& roots, std::span<X509* const> chain, PeerRole role,
                             int64_t now_unix) {
    return verify_parsed(roots, chain, role, now_unix);
}

Result<Identity> verify_svid(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                             PeerRole role, int64_t now_unix) {
    size_t count = chain == nullptr ? 0 : sk_CRYPTO_BUFFER_num(chain);
    if (count == 0) {
        return refuse(Errc::cert_parse);
    }
    if (count > kMaxPeerChainCerts) {
        return refuse(Errc::cert_chain_too_long);
    }
    TrustBundle::VerifyCache& cache = *roots.cache_;
    TrustBundle::VerifyCache::Key key = cache_key(chain, role);
    if (auto hit = cache.find(key, now_unix)) {
        return std::move(*hit);
    }
    X509Ptr owned[kMaxPeerChainCerts];
    X509* borrowed[kMaxPeerChainCerts];
    for (size_t i = 0; i < count; ++i) {
        owned[i].reset(X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(chain, i)));
        if (!owned[i]) {
            return refuse(Errc::cert_parse);
        }
        borrowed[i] = owned[i].get();
    }
    PathWindow window;
    auto id =
            verify_parsed(roots, std::span<X509* const>(borrowed, count), role, now_unix, &window);
    if (id && window.known) {
        cache.insert(key, {*id, window.not_before_unix, window.not_after_unix});
    }
    return id;
}

Result<Identity> verify_svid(const TrustBundle& roots, const STACK_OF(X509) * chain, PeerRole role,
                             int64_t now_unix) {
    size_t count = chain == nullptr ? 0 : sk_X509_num(chain);
    if (count == 0) {
        return refuse(Errc::cert_parse);
    }
    if (count > kMaxPeerChainCerts) {
        return refuse(Errc::cert_chain_too_long);
    }
    X509* borrowed[kMaxPeerChainCerts];
    for (size_t i = 0; i < count; ++i) {
        borrowed[i] = sk_X509_value(chain, i);
    }
    return verify_parsed(roots, std::span<X509* const>(borrowed, count), role, now_unix);
}

Result<void> check_identity_in(const Identity& peer, std::span<const Identity> expected) {
    if (std::find(expected.begin(), expected.end(), peer) == expected.end()) {
        return fail(Errc::identity_mismatch);
    }
    return ok();
}

Result<void> check_trust_domain(const Identity& peer, std::string_view trust_domain) {
    if (peer.trust_domain() != trust_domain) {
        return fail(Errc::trust_domain_mismatch);
    }
    return ok();
}

Result<Identity> verify_server_peer(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                    int64_t now_unix, std::span<const Identity> expected) {
    auto id = verify_svid(roots, chain, PeerRole::server, now_unix);
    if (!id) {
        return id;
    }
    if (auto match = check_identity_in(*id, expected); !match) {
        return fail(match.error());
    }
    return id;
}

Result<Identity> verify_client_peer(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                    int64_t now_unix, std::string_view trust_domain) {
    auto id = verify_svid(roots, chain, PeerRole::client, now_unix);
    if (!id) {
        return id;
    }
    if (auto match = check_trust_domain(*id, trust_domain); !match) {
        return fail(match.error());
    }
    return id;
}

Result<void> verify_server_name(const TrustBundle& roots, const STACK_OF(CRYPTO_BUFFER) * chain,
                                int64_t now_unix, std::string_view name) {
    size_t count = chain == nullptr ? 0 : sk_CRYPTO_BUFFER_num(chain);
    if (count == 0 || name.empty()) {
        return refuse(Errc::cert_parse);
    }
    if (count > kMaxPeerChainCerts) {
        return refuse(Errc::cert_chain_too_long);
    }
    X509Ptr owned[kMaxPeerChainCerts];
    ShallowStack untrusted(sk_X509_new_null());
    if (!untrusted) {
        return refuse(Errc::cert_chain_invalid);
    }
    for (size_t i = 0; i < count; ++i) {
        owned[i].reset(X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(chain, i)));
        if (!owned[i]) {
            return refuse(Errc::cert_parse);
        }
        if (i > 0 && !sk_X509_push(untrusted.get(), owned[i].get())) {
            return refuse(Errc::cert_chain_invalid);
        }
    }
    bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), roots.store(), owned[0].get(), untrusted.get())) {
        return refuse(Errc::cert_chain_invalid);
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, time_t(now_unix));
    X509_VERIFY_PARAM_set_depth(param, kMaxVerifyDepth + 1);
    if (!X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER)) {
        return refuse(Errc::cert_chain_invalid);
    }
    // An address literal is checked against IP SANs only, a name against DNS SANs only (never
    // the subject's CN: BoringSSL ignores it when DNS SANs exist, and istiod's have them).
    std::string text(name);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, text.c_str()) != 1) {
        ERR_clear_error();
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, text.data(), text.size()) != 1) {
            return refuse(Errc::cert_parse);
        }
    }
    if (X509_verify_cert(ctx.get()) != 1) {
        int err = X509_STORE_CTX_get_error(ctx.get());
        if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            return refuse(Errc::cert_name_mismatch);
        }
        return refuse(map_verify_error(err));
    }
    ERR_clear_error();
    return ok();
}

}  // namespace zt::certs
