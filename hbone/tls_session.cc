// tls_session.cc runs BoringSSL over in-memory buffers for HBONE: TLS 1.3 only, mutual
// certificates checked through certs/, ALPN h2 required on both sides, no resumption. The BIO
// below is the only "transport" BoringSSL sees; it must never block, allocate per call beyond the
// buffers' growth, or touch a socket. Peer certificates are judged only by certs/ (no second
// verifier here).

#include "hbone/tls_session.h"

#include <arpa/inet.h>

#include <cstring>

#include <openssl/err.h>

namespace zt::hbone {

namespace {

// kAlpnWire is the ALPN list in wire form: one length-prefixed "h2".
constexpr uint8_t kAlpnWire[] = {2, 'h', '2'};

// kMaxCertListBytes bounds a peer's Certificate message (A13: a 1 MB chain is refused early).
constexpr size_t kMaxCertListBytes = 32 * 1024;

// kCompactBytes is how much consumed output may sit at the front of the buffer before the rest is
// moved down.
constexpr size_t kCompactBytes = 64 * 1024;

// has_h2 says whether the wire-form ALPN list `list` offers "h2".
bool has_h2(const uint8_t* list, size_t len) {
    size_t at = 0;
    while (at < len) {
        size_t n = list[at];
        if (n == 0 || at + 1 + n > len) {
            return false;
        }
        if (n == 2 && list[at + 1] == 'h' && list[at + 2] == '2') {
            return true;
        }
        at += 1 + n;
    }
    return false;
}

// Server: pick "h2" or fail the handshake with no_application_protocol.
int select_alpn(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
                void*) {
    if (!has_h2(in, in_len)) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = kAlpnWire + 1;
    *out_len = 2;
    return SSL_TLSEXT_ERR_OK;
}

// offers_only_other_tls13_suites says whether a ClientHello's cipher suite list (two bytes per
// suite) names TLS 1.3 suites (0x13XX) but no AES-GCM one. A list without any TLS 1.3 suite is
// a TLS 1.2 client: left to BoringSSL, which answers it with protocol_version.
bool offers_only_other_tls13_suites(const uint8_t* suites, size_t len) {
    bool any_tls13 = false;
    for (size_t at = 0; at + 1 < len; at += 2) {
        uint16_t suite = uint16_t(suites[at] << 8 | suites[at + 1]);
        if (is_allowed_tls13_suite(suite)) {
            return false;
        }
        any_tls13 = any_tls13 || (suite >> 8) == 0x13;
    }
    return any_tls13;
}

// Server: a ClientHello without ALPN never reaches `select_alpn`, and one that offers no AES-GCM
// suite would be answered with ChaCha20-Poly1305 (this BoringSSL cannot restrict TLS 1.3
// suites): refuse both here, before anything is negotiated.
enum ssl_select_cert_result_t check_client_hello(const SSL_CLIENT_HELLO* hello) {
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (SSL_early_callback_ctx_extension_get(
                hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len) == 0) {
        return ssl_select_cert_error;
    }
    if (offers_only_other_tls13_suites(hello->cipher_suites, hello->cipher_suites_len)) {
        auto* session = static_cast<TlsSession*>(SSL_get_app_data(hello->ssl));
        session->refuse_cipher();
        return ssl_select_cert_error;
    }
    return ssl_select_cert_success;
}

}  // namespace

std::string_view to_string(TlsWant want) {
    switch (want) {
        case TlsWant::read:
            return "read";
        case TlsWant::write:
            return "write";
        case TlsWant::done:
            return "done";
    }
    return "unknown";
}

// Bio is the memory transport: reads come from `in_`, writes append to `out_`.
struct TlsSession::Bio {
    static int bio_read(BIO* bio, char* out, int len) {
        auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        size_t want = static_cast<size_t>(len);
        size_t n = 0;
        size_t buffered = s->in_.size() - s->in_offset_;
        if (buffered > 0) {
            n = std::min(buffered, want);
            std::memcpy(out, s->in_.data() + s->in_offset_, n);
            s->in_offset_ += n;
            if (s->in_offset_ == s->in_.size()) {
                s->in_.clear();
                s->in_offset_ = 0;
            }
        }
        size_t lent = s->lent_.size() - s->lent_offset_;
        if (n < want && lent > 0) {
            size_t m = std::min(lent, want - n);
            std::memcpy(out + n, s->lent_.data() + s->lent_offset_, m);
            s->lent_offset_ += m;
            n += m;
        }
        if (n == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }
        return static_cast<int>(n);
    }

    static int bio_write(BIO* bio, const char* in, int len) {
        auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        s->out_.append(in, static_cast<size_t>(len));
        return len;
    }

    static long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

    static const BIO_METHOD* method() {
        // Built once; BoringSSL never frees a BIO_METHOD that is in use, and this one lives for
        // the process.
        static BIO_METHOD* const kMethod = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "zt-hbone-memory");
            ZT_CHECK(m != nullptr);
            BIO_meth_set_read(m, bio_read);
            BIO_meth_set_write(m, bio_write);
            BIO_meth_set_ctrl(m, bio_ctrl);
            return m;
        }();
        return kMethod;
    }
};

Result<std::shared_ptr<const TlsContext>> TlsContext::create(
        Role role, std::shared_ptr<const certs::CertifiedKey> key) {
    std::shared_ptr<TlsContext> context(new TlsContext());
    context->role_ = role;
    context->key_ = std::move(key);
    context->ctx_.reset(SSL_CTX_new(TLS_with_buffers_method()));
    SSL_CTX* ctx = context->ctx_.get();
    if (ctx == nullptr || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
        ERR_clear_error();
        return fail(Errc::no_capacity);
    }
    // TLS 1.3 suites cannot be configured in this BoringSSL (no SSL_CTX_set_compliance_policy):
    // a server refuses a ClientHello without AES-GCM (`check_client_hello`) and both sides refuse
    // a handshake that settled on anything else (`handshake`), as ztunnel's AES-only list does.
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_early_data_enabled(ctx, 0);
    SSL_CTX_set_max_cert_list(ctx, kMaxCertListBytes);
    // X25519 first, then P-256 and P-384, as ztunnel offers them (docs/ztunnel-reference.md §2):
    // the client sends an X25519 share, so peers agree in one round trip on the cheapest group here
    // (X25519 ~66 us per handshake side against ~160 us for P-256, tests/tools/handshake_cost).
    if (!SSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384")) {
        ERR_clear_error();
        return fail(Errc::no_capacity);
    }
    const certs::CertifiedKey& ck = *context->key_;
    if (!SSL_CTX_set_chain_and_key(ctx, ck.chain().data(), ck.chain().size(), ck.private_key(),
                                   nullptr)) {
        ERR_clear_error();
        return fail(Errc::cert_key_mismatch);
    }
    SSL_CTX_set_custom_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                              TlsSession::verify_peer);
    if (role == Role::client) {
        if (SSL_CTX_set_alpn_protos(ctx, kAlpnWire, sizeof(kAlpnWire)) != 0) {
            return fail(Errc::no_capacity);
        }
    } else {
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
        SSL_CTX_set_select_certificate_cb(ctx, check_client_hello);
    }
    return std::shared_ptr<const TlsContext>(std::move(context));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::create_control_client(
        std::shared_ptr<const certs::TrustBundle> roots, std::string server_name) {
    if (roots == nullptr || server_name.empty()) {
        return fail(Errc::invalid_argument);
    }
    std::shared_ptr<TlsContext> context(new TlsContext());
    context->role_ = Role::client;
    context->control_roots_ = std::move(roots);
    context->server_name_ = std::move(server_name);
    context->ctx_.reset(SSL_CTX_new(TLS_with_buffers_method()));
    SSL_CTX* ctx = context->ctx_.get();
    // ztunnel talks TLS 1.3 to istiod too (its control-plane client uses the same version list
    // as HBONE).
    if (ctx == nullptr || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384")) {
        ERR_clear_error();
        return fail(Errc::no_capacity);
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_early_data_enabled(ctx, 0);
    SSL_CTX_set_max_cert_list(ctx, kMaxCertListBytes);
    SSL_CTX_set_custom_verify(ctx, SSL_VERIFY_PEER, TlsSession::verify_peer);
    if (SSL_CTX_set_alpn_protos(ctx, kAlpnWire, sizeof(kAlpnWire)) != 0) {
        return fail(Errc::no_capacity);
    }
    return std::shared_ptr<const TlsContext>(std::move(context));
}

TlsSession::~TlsSession() = default;

Result<std::unique_ptr<TlsSession>> TlsSession::create(std::shared_ptr<const TlsContext> context,
                                                       std::vector<certs::Identity> expected_peers,
                                                       const TlsLimits& limits, uint64_t now_ns,
                                                       int64_t now_unix) {
    std::unique_ptr<TlsSession> s(new TlsSession());
    s->context_ = std::move(context);
    s->expected_peers_ = std::move(expected_peers);
    s->limits_ = limits;
    s->started_ns_ = now_ns;
    s->now_unix_ = now_unix;
    s->ssl_.reset(SSL_new(s->context_->get()));
    if (!s->ssl_) {
        ERR_clear_error();
        return fail(Errc::no_capacity);
    }
    BIO* bio = BIO_new(Bio::method());
    if (bio == nullptr) {
        ERR_clear_error();
        return fail(Errc::no_capacity);
    }
    BIO_set_data(bio, s.get());
    BIO_set_init(bio, 1);
    SSL_set_bio(s->ssl_.get(), bio, bio);  // One reference, owned by the SSL.
    SSL_set_app_data(s->ssl_.get(), s.get());
    if (s->context_->role() == Role::client) {
        SSL_set_connect_state(s->ssl_.get());
        // SNI stays off on HBONE, as in ztunnel: identity is checked from the certificate, not
        // a name. A control-plane server is dialled by name, which it may use to pick its
        // certificate; an address literal is never sent (RFC 6066 §3).
        const std::string& name = s->context_->server_name();
        in6_addr ignored;
        if (s->context_->is_control_client() && inet_pton(AF_INET, name.c_str(), &ignored) != 1 &&
            inet_pton(AF_INET6, name.c_str(), &ignored) != 1 &&
            !SSL_set_tlsext_host_name(s->ssl_.get(), name.c_str())) {
            ERR_clear_error();
            return fail(Errc::no_capacity);
        }
    } else {
        SSL_set_accept_state(s->ssl_.get());
    }
    return s;
}

enum ssl_verify_result_t TlsSession::verify_peer(SSL* ssl, uint8_t* out_alert) {
    auto* s = static_cast<TlsSession*>(SSL_get_app_data(ssl));
    if (s->context_->is_control_client()) {
        // A control-plane server proves a name from the configured roots (no SPIFFE ID).
        Result<void> named = certs::verify_server_name(*s->context_->control_roots_,
                                                       SSL_get0_peer_certificates(ssl),
                                                       s->now_unix_, s->context_->server_name());
        if (!named) {
            s->verify_error_ = named.error().code;
            *out_alert = named.error().code == Errc::cert_unknown_ca ? SSL_AD_UNKNOWN_CA
                                                                     : SSL_AD_BAD_CERTIFICATE;
            return ssl_verify_invalid;
        }
        s->peer_verified_ = true;
        return ssl_verify_ok;
    }
    const certs::CertifiedKey& ck = s->context_->key();
    bool we_are_client = s->context_->role() == Role::client;
    // All of the judging is certs/'s: chain, SVID profile, then "one of the expected identities"
    // (client) or "our trust domain" (server).
    Result<certs::Identity> peer =
            we_are_client ? certs::verify_server_peer(ck.roots(), SSL_get0_peer_certificates(ssl),
                                                      s->now_unix_, s->expected_peers_)
                          : certs::verify_client_peer(ck.roots(), SSL_get0_peer_certificates(ssl),
                                                      s->now_unix_, ck.identity().trust_domain());
    if (!peer) {
        s->verify_error_ = peer.error().code;
        *out_alert = peer.error().code == Errc::cert_unknown_ca ? SSL_AD_UNKNOWN_CA
                                                                : SSL_AD_BAD_CERTIFICATE;
        return ssl_verify_invalid;
    }
    s->peer_ = std::make_unique<certs::Identity>(std::move(*peer));
    s->peer_verified_ = true;
    return ssl_verify_ok;
}

Error TlsSession::failure(Errc fallback, int ssl_result) {
    int kind = SSL_get_error(ssl_.get(), ssl_result);
    uint32_t err = ERR_peek_error();
    const char* reason = err != 0 ? ERR_reason_error_string(err) : nullptr;
    error_reason_ = reason != nullptr ? reason : "";
    ERR_clear_error();
    if (kind == SSL_ERROR_ZERO_RETURN) {
        return Error{Errc::eof, 0};
    }
    if (verify_error_ != Errc::sys) {
        return Error{verify_error_, 0};
    }
    if (cipher_refused_) {
        error_reason_ = "NO_AES_GCM_SUITE";
        return Error{Errc::tls_cipher, 0};
    }
    if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
        (ERR_GET_REASON(err) == SSL_R_NO_APPLICATION_PROTOCOL ||
         ERR_GET_REASON(err) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL ||
         ERR_GET_REASON(err) == SSL_R_CONNECTION_REJECTED)) {
        return Error{Errc::tls_alpn, 0};
    }
    return Error{fallback, 0};
}

Result<void> TlsSession::feed_ciphertext(ByteSpan bytes) {
    ZT_ASSERT(lent_.empty());
    if (in_.size() - in_offset_ + bytes.size() > limits_.input_buffer_bytes_max) {
        return fail(Errc::no_capacity);
    }
    in_.append(bytes.data(), bytes.size());
    return ok();
}

void TlsSession::lend(ByteSpan bytes) {
    ZT_ASSERT(lent_.empty());
    lent_ = bytes;
    lent_offset_ = 0;
}

Result<void> TlsSession::settle() {
    ByteSpan rest = lent_.subspan(lent_offset_);
    lent_ = {};
    lent_offset_ = 0;
    return feed_ciphertext(rest);
}

void TlsSession::release_idle_buffers() {
    if (in_offset_ == in_.size() && lent_.empty()) {
        in_.clear();
        in_offset_ = 0;
        in_.release();
    }
    if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
        out_.release();
    }
}

void TlsSession::take_output(ByteBuffer& out) {
    ZT_ASSERT(out.empty());
    if (out_offset_ > 0) {
        out_.drop_front(out_offset_);
        out_offset_ = 0;
    }
    out_.swap(out);
}

void TlsSession::consume_output(size_t n) {
    ZT_ASSERT(n <= out_.size() - out_offset_);
    out_offset_ += n;
    if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
    } else if (out_offset_ >= kCompactBytes) {
        // A transport that always takes part of the output must not make the buffer grow.
        out_.drop_front(out_offset_);
        out_offset_ = 0;
    }
}

Result<TlsWant> TlsSession::handshake() {
    if (done_) {
        return TlsWant::done;
    }
    if (timed_out_) {
        return fail(Errc::timed_out);
    }
    int rc = SSL_do_handshake(ssl_.get());
    if (rc == 1) {
        if (!is_allowed_tls13_suite(cipher_id())) {
            // A peer that preferred ChaCha20-Poly1305 (this BoringSSL's server honours the
            // client's order) or a server that picked it: refused before any application data.
            SSL_send_fatal_alert(ssl_.get(), SSL_AD_HANDSHAKE_FAILURE);
            ERR_clear_error();
            refuse_cipher();
            return fail(Errc::tls_cipher);
        }
        const uint8_t* alpn = nullptr;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(ssl_.get(), &alpn, &alpn_len);
        if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
            // Only a client gets here without h2 (the server refuses in the ClientHello).
            SSL_send_fatal_alert(ssl_.get(), SSL_AD_NO_APPLICATION_PROTOCOL);
            error_reason_ = "NO_APPLICATION_PROTOCOL";
            ERR_clear_error();
            return fail(Errc::tls_alpn);
        }
        if (!peer_verified_) {
            return fail(
                    Errc::tls_handshake);  // Unreachable with FAIL_IF_NO_PEER_CERT; fail closed.
        }
        done_ = true;
        return TlsWant::done;
    }
    int kind = SSL_get_error(ssl_.get(), rc);
    if (kind == SSL_ERROR_WANT_READ) {
        return pending_output().empty() ? TlsWant::read : TlsWant::write;
    }
    return fail(failure(Errc::tls_handshake, rc));
}

Result<void> TlsSession::tick(uint64_t now_ns) {
    if (!done_ && now_ns - started_ns_ >= limits_.handshake_timeout_ns) {
        timed_out_ = true;
        return fail(Errc::timed_out);
    }
    return ok();
}

Result<size_t> TlsSession::decrypt(MutableByteSpan out) {
    ZT_ASSERT(done_);
    int want = static_cast<int>(std::min<size_t>(out.size(), 1u << 30));
    int rc = SSL_read(ssl_.get(), out.data(), want);
    if (rc > 0) {
        return static_cast<size_t>(rc);
    }
    int kind = SSL_get_error(ssl_.get(), rc);
    if (kind == SSL_ERROR_WANT_READ) {
        return size_t{0};
    }
    return fail(failure(Errc::tls_protocol, rc));
}

Result<void> TlsSession::encrypt(ByteSpan plaintext) {
    ZT_ASSERT(done_);
    size_t at = 0;
    do {
        // SSL_write seals up to 16 KiB per record; the BIO never pushes back, so it takes all.
        int n = static_cast<int>(std::min<size_t>(plaintext.size() - at, 1u << 30));
        int rc = SSL_write(ssl_.get(), plaintext.data() + at, n);
        if (rc <= 0) {
            return fail(failure(Errc::tls_protocol, rc));
        }
        at += static_cast<size_t>(rc);
    } while (at < plaintext.size());
    return ok();
}

Result<void> TlsSession::request_key_update(bool peer_too) {
    if (!done_ || !SSL_key_update(ssl_.get(), peer_too ? SSL_KEY_UPDATE_REQUESTED
                                                       : SSL_KEY_UPDATE_NOT_REQUESTED)) {
        ERR_clear_error();
        return fail(Errc::tls_protocol);
    }
    if (SSL_write(ssl_.get(), nullptr, 0) < 0) {
        ERR_clear_error();
        return fail(Errc::tls_protocol);
    }
    return ok();
}

void TlsSession::close_notify() {
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
}

uint16_t TlsSession::cipher_id() const {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_.get());
    return cipher == nullptr ? 0 : SSL_CIPHER_get_protocol_id(cipher);
}

uint16_t TlsSession::version() const {
    return static_cast<uint16_t>(SSL_version(ssl_.get()));
}

void TlsSession::refuse_cipher() {
    cipher_refused_ = true;
    error_reason_ = "NO_AES_GCM_SUITE";
}

}  // namespace zt::hbone
