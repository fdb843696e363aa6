// Unit tests for the control-plane client mode of hbone/tls_session (what the agent uses to
// reach istiod): a raw BoringSSL server in memory stands in for istiod with a DNS-name
// certificate from certs/'s TestCa; the client sends SNI, offers h2, sends no certificate, and
// accepts the server only for the right root and name.

#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hbone/tls_session.h"
#include "tests/support/test_ca.h"

using namespace zt::hbone;
using zt::Errc;
using zt::testing::TestCa;
using zt::testing::TestCert;

namespace {

// FakeIstiod is a BoringSSL server over memory BIOs: TLS 1.3, ALPN h2, the given certificate,
// asking for no client certificate (as istiod's xDS port).
struct FakeIstiod {
    bssl::UniquePtr<SSL_CTX> ctx;
    bssl::UniquePtr<SSL> ssl;
    BIO* in = nullptr;   // Bytes from the client (owned by `ssl`).
    BIO* out = nullptr;  // Bytes to the client (owned by `ssl`).
    std::string sni;
    bool hello_seen = false;  // The ClientHello was processed (the server answered it).
    bool client_sent_cert = false;

    explicit FakeIstiod(const TestCert& cert) {
        ctx.reset(SSL_CTX_new(TLS_method()));
        REQUIRE(ctx);
        SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
        REQUIRE(SSL_CTX_use_certificate(ctx.get(), cert.cert.get()));
        REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), cert.key.get()));
        for (const auto& inter : cert.intermediates) {
            REQUIRE(SSL_CTX_add1_chain_cert(ctx.get(), inter.get()));
        }
        SSL_CTX_set_alpn_select_cb(
                ctx.get(),
                [](SSL*, const uint8_t** out_proto, uint8_t* out_len, const uint8_t*, unsigned,
                   void*) {
                    static const uint8_t kH2[] = {'h', '2'};
                    *out_proto = kH2;
                    *out_len = 2;
                    return SSL_TLSEXT_ERR_OK;
                },
                nullptr);
        ssl.reset(SSL_new(ctx.get()));
        in = BIO_new(BIO_s_mem());
        out = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl.get(), in, out);
        SSL_set_accept_state(ssl.get());
    }

    // step feeds `bytes` and returns what the server wants to send back.
    std::vector<uint8_t> step(zt::ByteSpan bytes) {
        BIO_write(in, bytes.data(), int(bytes.size()));
        int rc = SSL_do_handshake(ssl.get());
        hello_seen = hello_seen || SSL_get_servername_type(ssl.get()) != -1 ||
                     SSL_in_init(ssl.get()) == 0 || BIO_pending(out) > 0;
        if (const char* name = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name)) {
            sni = name;
        }
        if (rc == 1) {
            client_sent_cert = SSL_get0_peer_certificates(ssl.get()) != nullptr;
        }
        ERR_clear_error();
        std::vector<uint8_t> reply;
        const uint8_t* data = nullptr;
        size_t len = 0;
        BIO_mem_contents(out, &data, &len);
        reply.assign(data, data + len);
        BIO_reset(out);
        return reply;
    }
};

TestCert istiod_cert(const TestCa& ca) {
    zt::certs::CertSpec spec = ca.leaf_spec("spiffe://unused");
    spec.uri_sans.clear();
    spec.dns_sans = {"istiod.istio-system.svc"};
    return ca.issue(spec);
}

// handshake runs the client against `server` and returns the client's last step.
zt::Result<TlsWant> handshake(TlsSession& client, FakeIstiod& server) {
    zt::Result<TlsWant> step = client.handshake();
    for (int i = 0; i < 20 && step && *step != TlsWant::done; i++) {
        zt::ByteSpan out = client.pending_output();
        std::vector<uint8_t> sent(out.begin(), out.end());
        client.consume_output(out.size());
        std::vector<uint8_t> reply = server.step(sent);
        if (!reply.empty()) {
            REQUIRE(client.feed_ciphertext(reply));
        }
        step = client.handshake();
    }
    return step;
}

std::unique_ptr<TlsSession> control_client(const TestCa& trusted, std::string name,
                                           int64_t now_unix) {
    auto context = TlsContext::create_control_client(trusted.bundle(), std::move(name));
    REQUIRE(context);
    CHECK((*context)->is_control_client());
    auto session = TlsSession::create(*context, {}, TlsLimits{}, 0, now_unix);
    REQUIRE(session);
    return std::move(*session);
}

}  // namespace

TEST_CASE("control tls: the client verifies istiod by root and name, sends SNI and no cert") {
    TestCa ca = TestCa::root();
    TestCert cert = istiod_cert(ca);
    FakeIstiod server(cert);
    auto client = control_client(ca, "istiod.istio-system.svc", ca.now_unix());
    auto step = handshake(*client, server);
    REQUIRE(step);
    CHECK(*step == TlsWant::done);
    CHECK(client->is_done());
    CHECK(client->version() == TLS1_3_VERSION);
    CHECK(server.sni == "istiod.istio-system.svc");
    CHECK_FALSE(server.client_sent_cert);
}

TEST_CASE("control tls: a wrong name or a wrong root fails the handshake with its reason") {
    TestCa ca = TestCa::root();
    TestCert cert = istiod_cert(ca);
    {
        FakeIstiod server(cert);
        auto client = control_client(ca, "istiod.other.svc", ca.now_unix());
        auto step = handshake(*client, server);
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::cert_name_mismatch);
        CHECK_FALSE(client->is_done());
    }
    {
        FakeIstiod server(cert);
        TestCa stranger = TestCa::root();
        auto client = control_client(stranger, "istiod.istio-system.svc", ca.now_unix());
        auto step = handshake(*client, server);
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::cert_unknown_ca);
    }
    {
        // Dialled by address: no SNI is sent, and the DNS-only certificate does not match.
        FakeIstiod server(cert);
        auto client = control_client(ca, "198.18.0.1", ca.now_unix());
        auto step = handshake(*client, server);
        REQUIRE_FALSE(step);
        CHECK(step.error().code == Errc::cert_name_mismatch);
        CHECK(server.hello_seen);
        CHECK(server.sni.empty());
    }
}

TEST_CASE("control tls: an empty name or no roots is a caller error") {
    TestCa ca = TestCa::root();
    auto no_name = TlsContext::create_control_client(ca.bundle(), "");
    REQUIRE_FALSE(no_name);
    CHECK(no_name.error().code == Errc::invalid_argument);
    auto no_roots = TlsContext::create_control_client(nullptr, "istiod");
    REQUIRE_FALSE(no_roots);
}
