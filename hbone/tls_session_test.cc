// Unit tests for hbone/tls_session: client and server TlsSessions joined in memory (whole,
// byte-at-a-time, random chunks) with run-time certificates from certs/'s TestCa; peer checks
// through certs/; and the TLS bad inputs of docs/reliability.md §6a (A1–A4, A6, A11–A13) from raw
// BoringSSL peers the test drives directly, each with its pinned outcome.

#include "hbone/tls_session.h"

#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/aead.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/support/h2_pump.h"
#include "tests/support/hbone_pki.h"

using namespace zt::hbone;
using zt::Errc;
using zt::certs::Identity;
using zt::test::ChunkMode;
using zt::test::ChunkPolicy;
using zt::test::HbonePki;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

HbonePki& pki() {
    static HbonePki instance;
    return instance;
}

std::unique_ptr<TlsSession> session(std::shared_ptr<const TlsContext> ctx,
                                    std::vector<Identity> expected = {}) {
    auto s = TlsSession::create(std::move(ctx), std::move(expected), TlsLimits{}, 0,
                                pki().ca.now_unix());
    REQUIRE(s);
    return std::move(*s);
}

// TlsPair runs a handshake between two TlsSessions.
struct TlsPair {
    std::unique_ptr<TlsSession> client;
    std::unique_ptr<TlsSession> server;
    zt::Result<TlsWant> client_step = TlsWant::read;
    zt::Result<TlsWant> server_step = TlsWant::read;
    ChunkPolicy policy;

    explicit TlsPair(std::vector<Identity> expected = {pki().server_id},
                     std::shared_ptr<const TlsContext> client_ctx = pki().client_ctx,
                     std::shared_ptr<const TlsContext> server_ctx = pki().server_ctx)
        : client(session(std::move(client_ctx), std::move(expected)))
        , server(session(std::move(server_ctx))) {}

    // move sends one chunk from `from` to `to` and advances `to`'s handshake.
    bool move(TlsSession& from, TlsSession& to, zt::Result<TlsWant>& to_step) {
        zt::ByteSpan out = from.pending_output();
        if (out.empty()) {
            return false;
        }
        size_t n = policy.next(out.size());
        REQUIRE(to.feed_ciphertext(out.subspan(0, n)));
        from.consume_output(n);
        if (to_step) {
            to_step = to.handshake();
        }
        return true;
    }

    void run() {
        client_step = client->handshake();
        for (int i = 0; i < 1'000'000; i++) {
            bool moved = move(*client, *server, server_step);
            moved = move(*server, *client, client_step) || moved;
            if (!moved) {
                return;
            }
        }
        FAIL("handshake did not settle");
    }
};

// RawPeer is a plain BoringSSL endpoint over two memory BIOs, for inputs our sessions never
// produce (TLS 1.2, no certificate, other ALPN, KeyUpdate floods).
struct RawPeer {
    bssl::UniquePtr<SSL_CTX> ctx{SSL_CTX_new(TLS_method())};
    bssl::UniquePtr<SSL> ssl;
    BIO* rbio = nullptr;  // Owned by `ssl`.
    BIO* wbio = nullptr;
    int tickets = 0;
    std::string error;

    void start(bool client) {
        ssl.reset(SSL_new(ctx.get()));
        rbio = BIO_new(BIO_s_mem());
        wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl.get(), rbio, wbio);
        SSL_set_app_data(ssl.get(), this);
        if (client) {
            SSL_set_connect_state(ssl.get());
        } else {
            SSL_set_accept_state(ssl.get());
        }
    }

    void present(const zt::certs::CertifiedKey& ck) {
        REQUIRE(SSL_CTX_set_chain_and_key(ctx.get(), ck.chain().data(), ck.chain().size(),
                                          ck.private_key(), nullptr));
    }

    // step runs the handshake (or a read once done); returns 1 done, 0 want more, -1 failed.
    int step() {
        int rc = SSL_is_init_finished(ssl.get()) ? 1 : SSL_do_handshake(ssl.get());
        if (rc == 1) {
            uint8_t buf[256];
            int r = SSL_read(ssl.get(), buf, sizeof buf);
            if (r <= 0 && SSL_get_error(ssl.get(), r) != SSL_ERROR_WANT_READ) {
                record_error();
                return -1;
            }
            return 1;
        }
        if (SSL_get_error(ssl.get(), rc) == SSL_ERROR_WANT_READ) {
            return 0;
        }
        record_error();
        return -1;
    }

    void record_error() {
        uint32_t err = ERR_peek_error();
        const char* reason = err != 0 ? ERR_reason_error_string(err) : nullptr;
        error = reason != nullptr ? reason : "?";
        ERR_clear_error();
    }

    std::vector<uint8_t> output() {
        std::vector<uint8_t> out(BIO_pending(wbio));
        if (!out.empty()) {
            BIO_read(wbio, out.data(), static_cast<int>(out.size()));
        }
        return out;
    }

    void input(zt::ByteSpan bytes) {
        if (!bytes.empty()) {
            BIO_write(rbio, bytes.data(), static_cast<int>(bytes.size()));
        }
    }
};

// run_raw drives a raw peer against one of our sessions until neither has anything to say.
// Returns our session's last handshake result.
zt::Result<TlsWant> run_raw(RawPeer& raw, TlsSession& ours, int& raw_result) {
    zt::Result<TlsWant> step = TlsWant::read;
    raw_result = raw.step();
    for (int i = 0; i < 100; i++) {
        std::vector<uint8_t> out = raw.output();
        bool moved = !out.empty();
        if (moved) {
            REQUIRE(ours.feed_ciphertext(out));
        }
        if (step) {
            step = ours.handshake();
        }
        zt::ByteSpan back = ours.pending_output();
        if (!back.empty()) {
            moved = true;
            raw.input(back);
            ours.consume_output(back.size());
        }
        if (raw_result == 0 || (raw_result == 1 && moved)) {
            raw_result = raw.step();
        }
        if (!moved) {
            break;
        }
    }
    return step;
}

int count_ticket(SSL* ssl, SSL_SESSION*) {
    static_cast<RawPeer*>(SSL_get_app_data(ssl))->tickets++;
    return 0;
}

}  // namespace

TEST_CASE("hbone: tls mutual handshake verifies both SVIDs, in every chunking") {
    for (ChunkMode mode : {ChunkMode::all, ChunkMode::one_byte, ChunkMode::random}) {
        CAPTURE(static_cast<int>(mode));
        TlsPair pair;
        pair.policy.mode = mode;
        pair.policy.max_random = 100;
        pair.run();
        REQUIRE(pair.client_step);
        REQUIRE(pair.server_step);
        CHECK(*pair.client_step == TlsWant::done);
        CHECK(*pair.server_step == TlsWant::done);
        CHECK(pair.client->peer_identity() == pki().server_id);
        CHECK(pair.server->peer_identity() == pki().client_id);
        CHECK(pair.client->version() == TLS1_3_VERSION);
        CHECK(pair.server->version() == TLS1_3_VERSION);
    }
}

TEST_CASE("hbone: tls AES-GCM is chosen on a CPU with AES instructions") {
    // This BoringSSL cannot switch ChaCha20 off for TLS 1.3; its client orders AES-GCM first when
    // the CPU has AES instructions, and both sides refuse anything but AES-GCM (ztunnel's list;
    // tests/scripts/hbone_interop.sh refuses OpenSSL peers that negotiate ChaCha20-Poly1305).
    TlsPair pair;
    pair.run();
    CHECK(zt::hbone::is_allowed_tls13_suite(0x1301));
    CHECK(zt::hbone::is_allowed_tls13_suite(0x1302));
    CHECK_FALSE(zt::hbone::is_allowed_tls13_suite(0x1303));  // TLS_CHACHA20_POLY1305_SHA256
    if (EVP_has_aes_hardware()) {
        REQUIRE(pair.server_step);
        CHECK(pair.client->cipher_id() == 0x1301);  // TLS_AES_128_GCM_SHA256
        CHECK(pair.server->cipher_id() == 0x1301);
    } else {
        MESSAGE("no AES instructions: this BoringSSL's client offers ChaCha20-Poly1305 first, "
                "which is refused");
        CHECK_FALSE(pair.server_step);
    }
    CHECK(EVP_has_aes_hardware());  // The machines we run on have AES-NI; say so if not.
}

TEST_CASE("hbone: tls key exchange is X25519 in one round trip, never resumed") {
    TlsPair pair;
    pair.run();
    REQUIRE(pair.server_step);
    REQUIRE(*pair.client_step == TlsWant::done);
    CHECK(SSL_get_curve_id(pair.client->ssl()) == SSL_CURVE_X25519);
    CHECK(SSL_get_curve_id(pair.server->ssl()) == SSL_CURVE_X25519);
    CHECK_FALSE(SSL_used_hello_retry_request(pair.client->ssl()));
    CHECK_FALSE(SSL_session_reused(pair.client->ssl()));
    CHECK_FALSE(SSL_session_reused(pair.server->ssl()));
}

TEST_CASE("hbone: tls application data flows both ways and across KeyUpdates") {
    TlsPair pair;
    pair.run();
    REQUIRE(*pair.client_step == TlsWant::done);
    auto roundtrip = [&](TlsSession& from, TlsSession& to, const std::string& text) {
        REQUIRE(from.encrypt(zt::as_bytes(text)));
        REQUIRE(to.feed_ciphertext(from.pending_output()));
        from.consume_output(from.pending_output().size());
        std::string got;
        std::vector<uint8_t> buf(64 * 1024);
        for (;;) {
            auto n = to.decrypt(buf);
            REQUIRE(n);
            if (*n == 0) {
                break;
            }
            got.append(reinterpret_cast<const char*>(buf.data()), *n);
        }
        // Post-handshake replies (KeyUpdate answers) go back.
        if (!to.pending_output().empty()) {
            REQUIRE(from.feed_ciphertext(to.pending_output()));
            to.consume_output(to.pending_output().size());
        }
        return got;
    };
    std::string big(100'000, 'q');
    CHECK(roundtrip(*pair.client, *pair.server, big) == big);
    CHECK(roundtrip(*pair.server, *pair.client, "pong") == "pong");
    REQUIRE(pair.client->request_key_update(true));
    CHECK(roundtrip(*pair.client, *pair.server, "after update") == "after update");
    CHECK(roundtrip(*pair.server, *pair.client, "server after update") == "server after update");
    REQUIRE(pair.server->request_key_update(false));
    CHECK(roundtrip(*pair.server, *pair.client, "again") == "again");
    CHECK(roundtrip(*pair.client, *pair.server, "client again") == "client again");
}

TEST_CASE("hbone: tls A11 client refuses a valid SVID of the wrong identity") {
    auto other = Identity::parse("spiffe://cluster.local/ns/b/sa/someone-else").value();
    TlsPair pair({other});
    pair.run();
    REQUIRE_FALSE(pair.client_step);
    CHECK(pair.client_step.error().code == Errc::identity_mismatch);
    CHECK_FALSE(pair.client->is_done());
    // Fail closed with no expected identities at all.
    TlsPair none(std::vector<Identity>{});
    none.run();
    REQUIRE_FALSE(none.client_step);
    CHECK(none.client_step.error().code == Errc::identity_mismatch);
}

TEST_CASE("hbone: tls A4/A6 server refuses an unknown CA and a foreign trust domain") {
    {
        zt::testing::TestCa stranger =
                zt::testing::TestCa::root("cluster.local", pki().ca.now_unix());
        zt::testing::TestCert leaf = stranger.issue_leaf(zt::test::kClientSpiffe);
        RawPeer raw;
        REQUIRE(SSL_CTX_use_certificate(raw.ctx.get(), leaf.cert.get()));
        REQUIRE(SSL_CTX_use_PrivateKey(raw.ctx.get(), leaf.key.get()));
        uint8_t alpn[] = {2, 'h', '2'};
        SSL_CTX_set_alpn_protos(raw.ctx.get(), alpn, sizeof alpn);
        SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
        raw.start(true);
        auto server = session(pki().server_ctx);
        int raw_result = 0;
        auto step = run_raw(raw, *server, raw_result);
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::cert_unknown_ca);
        CHECK_FALSE(server->is_done());
        CHECK(raw.error == "TLSV1_ALERT_UNKNOWN_CA");
    }
    {
        auto ctx = TlsContext::create(
                Role::client, zt::test::certified(pki().ca, "spiffe://other.td/ns/default/sa/app"));
        REQUIRE(ctx);
        TlsPair pair({pki().server_id}, *ctx);
        pair.run();
        REQUIRE_FALSE(pair.server_step);
        CHECK(pair.server_step.error().code == Errc::trust_domain_mismatch);
        // TLS 1.3: the client finished first and learns of the refusal from the alert.
        if (pair.client_step) {
            std::vector<uint8_t> buf(1024);
            auto n = pair.client->decrypt(buf);
            REQUIRE_FALSE(n);
            CHECK(n.error().code == Errc::tls_protocol);
            CHECK(std::string(pair.client->error_reason()).find("BAD_CERTIFICATE") !=
                  std::string::npos);
        }
    }
}

TEST_CASE("hbone: tls A1 plaintext, HTTP/1.1 or random bytes fail the handshake") {
    std::vector<std::string> inputs = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                       std::string("\x16\x03\x01\x00\x05hello", 10),
                                       std::string(64, '\0')};
    for (const std::string& input : inputs) {
        auto server = session(pki().server_ctx);
        REQUIRE(server->feed_ciphertext(zt::as_bytes(input)));
        auto step = server->handshake();
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::tls_handshake);
    }
}

TEST_CASE("hbone: tls input beyond the buffer cap is refused") {
    TlsLimits limits;
    limits.input_buffer_bytes_max = 1000;
    auto server = TlsSession::create(pki().server_ctx, {}, limits, 0, pki().ca.now_unix());
    REQUIRE(server);
    std::vector<uint8_t> junk(600, 0x16);
    REQUIRE((*server)->feed_ciphertext(junk));
    auto more = (*server)->feed_ciphertext(junk);
    REQUIRE_FALSE(more);
    CHECK(more.error().code == Errc::no_capacity);
    CHECK((*server)->buffered_input() == 600);
}

TEST_CASE("hbone: tls handshake deadline") {
    auto server = session(pki().server_ctx);
    REQUIRE(server->tick(9 * kSecond));
    auto late = server->tick(10 * kSecond);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::timed_out);
    auto step = server->handshake();
    REQUIRE_FALSE(step);
    CHECK(step.error().code == Errc::timed_out);
}

TEST_CASE("hbone: tls A2 a TLS 1.2-only client gets protocol_version") {
    RawPeer raw;
    REQUIRE(SSL_CTX_set_max_proto_version(raw.ctx.get(), TLS1_2_VERSION));
    uint8_t alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(raw.ctx.get(), alpn, sizeof alpn);
    raw.start(true);
    auto server = session(pki().server_ctx);
    int raw_result = 0;
    auto step = run_raw(raw, *server, raw_result);
    REQUIRE_FALSE(step);
    CHECK(step.error().code == Errc::tls_handshake);
    CHECK(std::string(server->error_reason()) == "UNSUPPORTED_PROTOCOL");
    CHECK(raw_result == -1);
    CHECK(raw.error == "TLSV1_ALERT_PROTOCOL_VERSION");
}

TEST_CASE("hbone: tls A3 a client without a certificate gets certificate_required") {
    RawPeer raw;
    uint8_t alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(raw.ctx.get(), alpn, sizeof alpn);
    SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
    raw.start(true);
    auto server = session(pki().server_ctx);
    int raw_result = 0;
    auto step = run_raw(raw, *server, raw_result);
    REQUIRE_FALSE(step);
    CHECK(step.error().code == Errc::tls_handshake);
    CHECK(std::string(server->error_reason()) == "PEER_DID_NOT_RETURN_A_CERTIFICATE");
    CHECK(raw_result == -1);
    CHECK(raw.error == "TLSV1_ALERT_CERTIFICATE_REQUIRED");
}

TEST_CASE("hbone: tls A12 no ALPN or http/1.1 only is a fatal alert, both sides") {
    auto client_key = zt::test::certified(pki().ca, zt::test::kClientSpiffe);
    for (int variant = 0; variant < 2; variant++) {
        CAPTURE(variant);
        RawPeer raw;
        raw.present(*client_key);
        SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
        if (variant == 1) {
            uint8_t http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
            SSL_CTX_set_alpn_protos(raw.ctx.get(), http11, sizeof http11);
        }
        raw.start(true);
        auto server = session(pki().server_ctx);
        int raw_result = 0;
        auto step = run_raw(raw, *server, raw_result);
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::tls_alpn);
        CHECK(raw_result == -1);
        CHECK_FALSE(raw.error.empty());
    }
    // Our client against a server that picks no protocol.
    RawPeer raw;
    raw.present(*zt::test::certified(pki().ca, zt::test::kServerSpiffe));
    SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
    raw.start(false);
    auto client = session(pki().client_ctx, {pki().server_id});
    auto first = client->handshake();
    REQUIRE(first);
    raw.input(client->pending_output());
    client->consume_output(client->pending_output().size());
    int raw_result = 0;
    auto step = run_raw(raw, *client, raw_result);
    REQUIRE_FALSE(step);
    CHECK(step.error().code == Errc::tls_alpn);
    CHECK_FALSE(client->is_done());
}

TEST_CASE("hbone: tls A13 no session tickets are issued") {
    RawPeer raw;
    raw.present(*zt::test::certified(pki().ca, zt::test::kClientSpiffe));
    uint8_t alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(raw.ctx.get(), alpn, sizeof alpn);
    SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(raw.ctx.get(), SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(raw.ctx.get(), count_ticket);
    raw.start(true);
    auto server = session(pki().server_ctx);
    int raw_result = 0;
    auto step = run_raw(raw, *server, raw_result);
    REQUIRE(step);
    CHECK(*step == TlsWant::done);
    REQUIRE(server->encrypt(zt::as_bytes("data after the handshake")));
    raw.input(server->pending_output());
    server->consume_output(server->pending_output().size());
    CHECK(raw.step() == 1);
    CHECK(raw.tickets == 0);
    CHECK(SSL_early_data_accepted(raw.ssl.get()) == 0);
}

TEST_CASE("hbone: tls A13 40 KeyUpdates without data end the connection at 33") {
    TlsPair pair;
    pair.run();
    REQUIRE(*pair.server_step == TlsWant::done);
    for (int i = 0; i < 40; i++) {
        REQUIRE(pair.client->request_key_update(false));
    }
    REQUIRE(pair.server->feed_ciphertext(pair.client->pending_output()));
    std::vector<uint8_t> buf(1024);
    auto n = pair.server->decrypt(buf);
    REQUIRE_FALSE(n);
    CHECK(n.error().code == Errc::tls_protocol);
    CHECK(std::string(pair.server->error_reason()) == "TOO_MANY_KEY_UPDATES");
}

TEST_CASE("hbone: tls A13 a chain of 100 certificates is refused, bounded") {
    zt::testing::TestCa deep = pki().ca.intermediate("i0");
    for (int i = 1; i < 100; i++) {
        deep = deep.intermediate("i" + std::to_string(i));
    }
    zt::testing::TestCert leaf = deep.issue_leaf(zt::test::kClientSpiffe);
    auto chain = leaf.chain_buffers();
    REQUIRE(sk_CRYPTO_BUFFER_num(chain.get()) == 101);
    std::vector<CRYPTO_BUFFER*> certs;
    for (size_t i = 0; i < sk_CRYPTO_BUFFER_num(chain.get()); i++) {
        certs.push_back(sk_CRYPTO_BUFFER_value(chain.get(), i));
    }
    RawPeer raw;
    REQUIRE(SSL_CTX_set_chain_and_key(raw.ctx.get(), certs.data(), certs.size(), leaf.key.get(),
                                      nullptr));
    uint8_t alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(raw.ctx.get(), alpn, sizeof alpn);
    SSL_CTX_set_verify(raw.ctx.get(), SSL_VERIFY_NONE, nullptr);
    raw.start(true);
    auto server = session(pki().server_ctx);
    int raw_result = 0;
    auto step = run_raw(raw, *server, raw_result);
    REQUIRE_FALSE(step);
    CHECK(std::string(server->error_reason()) == "EXCESSIVE_MESSAGE_SIZE");
}
