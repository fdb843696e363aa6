#pragma once

// TlsSession: HBONE's TLS 1.3 mutual TLS as a sans-I/O engine. BoringSSL runs over a custom BIO
// whose "socket" is two byte buffers: ciphertext goes in through `feed`, comes out through
// `pending_output`/`consume_output`. Peer identities are checked through certs/ (`verify_svid`
// plus "one of these identities" on the client, "my trust domain" on the server). Results are
// values: want-read, want-write, done, or an `Errc` saying why. No syscalls, no clocks.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>
#include <openssl/ssl.h>

#include "certs/certified_key.h"
#include "certs/identity.h"
#include "hbone/byte_buffer.h"
#include "hbone/h2_session.h"
#include "zt/bytes.h"
#include "zt/result.h"

namespace zt::hbone {

// TlsContext is the per-identity, per-role TLS configuration (an `SSL_CTX`): TLS 1.3 only with
// the AES-GCM suites only (as ztunnel), our chain and key from a `certs::CertifiedKey`, client
// certificates required, ALPN `h2` required, no session tickets, no session cache, no early data.
// Immutable once made; share it between the connections of one local identity (BoringSSL's
// `SSL_CTX` is thread-safe for that).
class TlsContext {
public:
    // create builds the context for `role` presenting `key`. The context keeps `key` (its roots
    // are the trust bundle peers are verified against). Fails with `Errc::no_capacity` when
    // BoringSSL cannot allocate and `Errc::cert_key_mismatch` when it refuses the chain/key.
    static Result<std::shared_ptr<const TlsContext>> create(
            Role role, std::shared_ptr<const certs::CertifiedKey> key);

    // create_control_client builds the client context for a control-plane server (istiod's
    // xDS or CA port): TLS 1.3, ALPN `h2`, no client certificate, and the server accepted only
    // if its chain verifies to `roots` and its leaf is valid for `server_name`
    // (`certs::verify_server_name`: a DNS name, or an IP literal matched against IP SANs). The
    // name is also sent as SNI when it is a DNS name. Sessions on this context have no peer
    // identity (`TlsSession::peer_identity` must not be called). Fails with
    // `Errc::no_capacity` when BoringSSL cannot allocate and `Errc::invalid_argument` for an
    // empty name.
    static Result<std::shared_ptr<const TlsContext>> create_control_client(
            std::shared_ptr<const certs::TrustBundle> roots, std::string server_name);

    // role is the side this context plays; get is the `SSL_CTX` (borrowed); key is the identity
    // it presents and the roots it trusts (borrowed, live as long as the context).
    Role role() const { return role_; }

    SSL_CTX* get() const { return ctx_.get(); }

    const certs::CertifiedKey& key() const { return *key_; }

    // is_control_client says whether this context was made by `create_control_client`;
    // server_name is then the name the server must prove.
    bool is_control_client() const { return control_roots_ != nullptr; }

    const std::string& server_name() const { return server_name_; }

private:
    friend class TlsSession;

    TlsContext() = default;

    Role role_ = Role::client;
    bssl::UniquePtr<SSL_CTX> ctx_;
    std::shared_ptr<const certs::CertifiedKey> key_;
    // Control-plane client only: the roots the server is verified against and its name.
    std::shared_ptr<const certs::TrustBundle> control_roots_;
    std::string server_name_;
};

// TlsWant is what a handshake step needs next.
enum class TlsWant : uint8_t {
    read,   // Feed more ciphertext from the peer.
    write,  // Send `pending_output` (then feed whatever comes back).
    done,   // The handshake is complete and the peer verified; send `pending_output` if any.
};

// to_string returns a stable lowercase name for `want`, for logs.
std::string_view to_string(TlsWant want);

// TlsLimits bounds one TLS connection.
struct TlsLimits {
    uint64_t handshake_timeout_ns = 10'000'000'000;
    // A ClientHello, certificate chain or record fed faster than it is consumed never makes the
    // input buffer grow beyond this; `feed` refuses more with `Errc::no_capacity`.
    size_t input_buffer_bytes_max = 4u << 20;
};

// TlsSession is one TLS connection. Not thread-safe; owned by the caller.
class TlsSession {
public:
    // create starts a session on `context`. A client passes the identities the server may prove
    // (`expected_peers`, fail closed when empty); a server passes none and accepts a client from
    // its own trust domain. `now_ns` starts the handshake deadline; `now_unix` is the time
    // certificates are checked at. The client's first flight is produced by the first
    // `handshake` call.
    static Result<std::unique_ptr<TlsSession>> create(std::shared_ptr<const TlsContext> context,
                                                      std::vector<certs::Identity> expected_peers,
                                                      const TlsLimits& limits, uint64_t now_ns,
                                                      int64_t now_unix);

    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // feed_ciphertext appends ciphertext received from the peer; nothing is processed until
    // `handshake` or `decrypt`. Fails with `Errc::no_capacity` when the input buffer would exceed
    // its cap.
    Result<void> feed_ciphertext(ByteSpan bytes);

    // pending_output returns ciphertext not yet handed to the transport (valid until the next
    // call that produces output or `consume_output`).
    ByteSpan pending_output() const { return out_.span().subspan(out_offset_); }

    // consume_output marks the first `n` bytes of `pending_output` as sent.
    void consume_output(size_t n);

    // take_output moves all of `pending_output` into `out`, which must be empty, without copying:
    // the two buffers are swapped, so the session keeps `out`'s former storage for its next
    // output and never touches the bytes handed over. The transport owns them (for a send in
    // flight) until it clears the buffer and passes it back on the next call.
    void take_output(ByteBuffer& out);

    // release_idle_buffers frees the input and output buffers when they hold nothing (no partial
    // record, no unsent ciphertext), for a connection that has gone idle. Never fails.
    void release_idle_buffers();

    // buffer_bytes is the storage the session's own input and output buffers hold.
    size_t buffer_bytes() const { return in_.capacity() + out_.capacity(); }

    // buffered_input is how much fed (or lent) ciphertext BoringSSL has not taken yet.
    size_t buffered_input() const { return in_.size() - in_offset_ + lent_.size() - lent_offset_; }

    // lend makes `bytes` readable by BoringSSL without copying them, after anything already
    // buffered, until `settle`. `bytes` must stay valid and unchanged until then. Only one span
    // may be lent at a time.
    void lend(ByteSpan bytes);

    // settle ends a `lend`: bytes BoringSSL did not take are copied into the internal buffer.
    // Fails with `Errc::no_capacity` when that would exceed the input cap.
    Result<void> settle();

    // handshake advances the handshake as far as the fed input allows. Failures: a certs/ code
    // (`Errc::cert_unknown_ca`, `Errc::identity_mismatch`, `Errc::trust_domain_mismatch`, ...)
    // when the peer's certificate was refused, `Errc::tls_alpn` when ALPN `h2` was not agreed,
    // `Errc::tls_cipher` when the peer offered no AES-GCM suite or the handshake settled on
    // another (ChaCha20-Poly1305; refused before any application data; the proxy counts it as a
    // handshake failure), `Errc::timed_out` after the deadline (see `tick`),
    // `Errc::tls_handshake` otherwise. An alert for the peer may be left in `pending_output`:
    // flush it before closing.
    Result<TlsWant> handshake();

    // tick enforces the handshake deadline at `now_ns`: `Errc::timed_out` once it passed before
    // the handshake completed.
    Result<void> tick(uint64_t now_ns);

    // decrypt writes up to `out.size()` plaintext bytes into `out` and returns how many; 0 means
    // no complete record is buffered (feed more). KeyUpdate and other post-handshake messages are
    // handled inside. Fails with `Errc::eof` on the peer's close_notify and `Errc::tls_protocol`
    // on any other TLS error (a bad record, an alert, too many KeyUpdates).
    Result<size_t> decrypt(MutableByteSpan out);

    // encrypt seals all of `plaintext` into records appended to `pending_output` (16 KiB of
    // plaintext per record). Fails with `Errc::tls_protocol` (the connection is unusable).
    Result<void> encrypt(ByteSpan plaintext);

    // request_key_update queues a KeyUpdate (asking the peer to update too when `peer_too`),
    // flushed into `pending_output` at once.
    Result<void> request_key_update(bool peer_too);

    // close_notify queues a close_notify alert.
    void close_notify();

    // is_done says whether the handshake completed and the peer was verified.
    bool is_done() const { return done_; }

    // peer_identity is the verified peer identity (valid once `is_done`, on a mesh context;
    // a control-plane session verified a name, not an identity).
    const certs::Identity& peer_identity() const { return *peer_; }

    // cipher_id is the negotiated cipher suite's IANA number (0x1301 = TLS_AES_128_GCM_SHA256).
    uint16_t cipher_id() const;

    // version is the negotiated protocol version (0x0304 for TLS 1.3).
    uint16_t version() const;

    // error_reason is BoringSSL's reason string for the last failure (e.g. an alert's name), for
    // logs and tests; empty when there was none.
    std::string_view error_reason() const { return error_reason_; }

    // ssl returns the underlying connection, borrowed, for tests and metrics.
    SSL* ssl() const { return ssl_.get(); }

    // refuse_cipher records a refusal for a suite other than AES-GCM (offered or negotiated);
    // the handshake then fails with `Errc::tls_cipher`. Called from inside BoringSSL's callbacks.
    void refuse_cipher();

private:
    struct Bio;
    friend struct Bio;
    friend class TlsContext;  // Installs `verify_peer` as the custom verify callback.

    TlsSession() = default;
    // verify_peer is the custom-verify callback: certs/ judges the peer chain; a refusal is kept
    // in `verify_error_` and becomes the handshake's `Errc`.
    static enum ssl_verify_result_t verify_peer(SSL* ssl, uint8_t* out_alert);
    // failure turns BoringSSL's error for `ssl_result` into an `Error` (`fallback` when nothing
    // more specific applies), records the reason string and clears the error queue.
    Error failure(Errc fallback, int ssl_result);

    std::shared_ptr<const TlsContext> context_;
    bssl::UniquePtr<SSL> ssl_;
    std::vector<certs::Identity> expected_peers_;
    std::unique_ptr<certs::Identity> peer_;
    TlsLimits limits_;
    uint64_t started_ns_ = 0;
    int64_t now_unix_ = 0;
    bool done_ = false;
    bool peer_verified_ = false;  // `verify_peer` accepted the peer's certificate.
    bool timed_out_ = false;
    bool cipher_refused_ = false;
    Errc verify_error_ = Errc::sys;  // `Errc::sys` = none.
    std::string_view error_reason_;
    ByteBuffer in_;
    size_t in_offset_ = 0;
    ByteSpan lent_;
    size_t lent_offset_ = 0;
    ByteBuffer out_;
    size_t out_offset_ = 0;
};

// is_allowed_tls13_suite says whether `suite` (an IANA number) is one HBONE allows, as ztunnel:
// TLS_AES_128_GCM_SHA256 (0x1301) and TLS_AES_256_GCM_SHA384 (0x1302).
constexpr bool is_allowed_tls13_suite(uint16_t suite) {
    return suite == 0x1301 || suite == 0x1302;
}

// kAlpnH2 is the one ALPN protocol HBONE speaks.
inline constexpr std::string_view kAlpnH2 = "h2";

}  // namespace zt::hbone
