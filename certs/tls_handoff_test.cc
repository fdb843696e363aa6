// Unit test of the hand-off to TLS: two in-memory BoringSSL TLS 1.3 endpoints built only from
// `CertifiedKey`s (as hbone/ will build them) complete a mutual handshake whose custom-verify
// callbacks call `verify_svid` with the peer's CRYPTO_BUFFER chain, then the identity and trust
// domain checks. Proves the API fits a real handshake; the TLS session code itself is hbone/'s.

#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "certs/certified_key.h"
#include "certs/verify.h"
#include "tests/support/test_ca.h"

using zt::Errc;
using zt::certs::CertifiedKey;
using zt::certs::Identity;
using zt::certs::PeerRole;
using zt::testing::TestCa;

namespace {

// Side is one endpoint's view: its certificate, what it expects of the peer, and what its verify
// callback decided.
struct Side {
    std::shared_ptr<const CertifiedKey> ck;
    PeerRole peer_role;
    std::vector<Identity> expected;  // client side: the identities the server may have
    int64_t now_unix;
    std::optional<Identity> peer;
    std::optional<Errc> refusal;
};

int side_index() {
    static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

ssl_verify_result_t verify_peer(SSL* ssl, uint8_t* out_alert) {
    auto* side = static_cast<Side*>(SSL_get_ex_data(ssl, side_index()));
    const STACK_OF(CRYPTO_BUFFER)* chain = SSL_get0_peer_certificates(ssl);
    auto id = side->peer_role == PeerRole::server
                      ? zt::certs::verify_server_peer(side->ck->roots(), chain, side->now_unix,
                                                      side->expected)
                      : zt::certs::verify_client_peer(side->ck->roots(), chain, side->now_unix,
                                                      side->ck->identity().trust_domain());
    if (!id) {
        side->refusal = id.error().code;
        *out_alert = SSL_AD_BAD_CERTIFICATE;
        return ssl_verify_invalid;
    }
    side->peer = *id;
    return ssl_verify_ok;
}

bssl::UniquePtr<SSL_CTX> make_ctx(const CertifiedKey& ck) {
    bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
    REQUIRE(ctx);
    REQUIRE(SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION));
    REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION));
    REQUIRE(SSL_CTX_set_chain_and_key(ctx.get(), ck.chain().data(), ck.chain().size(),
                                      ck.private_key(), nullptr));
    SSL_CTX_set_custom_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                              verify_peer);
    return ctx;
}

// handshake runs both ends over a BIO pair until both finish or one fails. Returns true when both
// completed.
bool handshake(Side& client, Side& server) {
    auto client_ctx = make_ctx(*client.ck);
    auto server_ctx = make_ctx(*server.ck);
    bssl::UniquePtr<SSL> c(SSL_new(client_ctx.get()));
    bssl::UniquePtr<SSL> s(SSL_new(server_ctx.get()));
    BIO* c_bio = nullptr;
    BIO* s_bio = nullptr;
    REQUIRE(BIO_new_bio_pair(&c_bio, 0, &s_bio, 0));
    SSL_set_bio(c.get(), c_bio, c_bio);
    SSL_set_bio(s.get(), s_bio, s_bio);
    SSL_set_connect_state(c.get());
    SSL_set_accept_state(s.get());
    SSL_set_ex_data(c.get(), side_index(), &client);
    SSL_set_ex_data(s.get(), side_index(), &server);
    bool c_done = false;
    bool s_done = false;
    for (int round = 0; round < 20 && !(c_done && s_done); ++round) {
        for (auto [ssl, done] : {std::pair{c.get(), &c_done}, std::pair{s.get(), &s_done}}) {
            if (*done) {
                continue;
            }
            int rc = SSL_do_handshake(ssl);
            if (rc == 1) {
                *done = true;
            } else if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ) {
                ERR_clear_error();
                return false;
            }
        }
    }
    return c_done && s_done;
}

std::shared_ptr<const CertifiedKey> certified(const TestCa& ca, const char* spiffe_id) {
    auto cert = ca.issue_leaf(spiffe_id);
    auto id = Identity::parse(spiffe_id).value();
    auto ck = CertifiedKey::make(id, cert.chain_pem, cert.key_pem, ca.bundle(), ca.now_unix());
    REQUIRE(ck);
    return std::move(ck).value();
}

}  // namespace

TEST_CASE("certs: a mutual TLS 1.3 handshake verifies SVIDs through custom-verify callbacks") {
    TestCa root = TestCa::root();
    TestCa inter = root.intermediate();
    auto client_id = Identity::parse("spiffe://cluster.local/ns/a/sa/client").value();
    auto server_id = Identity::parse("spiffe://cluster.local/ns/b/sa/server").value();
    Side client{certified(inter, "spiffe://cluster.local/ns/a/sa/client"),
                PeerRole::server,
                {server_id},
                root.now_unix(),
                {},
                {}};
    Side server{certified(root, "spiffe://cluster.local/ns/b/sa/server"),
                PeerRole::client,
                {},
                root.now_unix(),
                {},
                {}};
    REQUIRE(handshake(client, server));
    REQUIRE(client.peer);
    REQUIRE(server.peer);
    CHECK(*client.peer == server_id);
    CHECK(*server.peer == client_id);  // through the intermediate the client sent
}

TEST_CASE("certs: the client refuses a valid server of the wrong identity (A11)") {
    TestCa root = TestCa::root();
    Side client{certified(root, "spiffe://cluster.local/ns/a/sa/client"),
                PeerRole::server,
                {Identity::parse("spiffe://cluster.local/ns/b/sa/expected").value()},
                root.now_unix(),
                {},
                {}};
    Side server{certified(root, "spiffe://cluster.local/ns/b/sa/impostor"),
                PeerRole::client,
                {},
                root.now_unix(),
                {},
                {}};
    CHECK_FALSE(handshake(client, server));
    REQUIRE(client.refusal);
    CHECK(*client.refusal == Errc::identity_mismatch);
}

TEST_CASE("certs: the server refuses a client from another trust domain (A6)") {
    TestCa root = TestCa::root();
    auto server_id = Identity::parse("spiffe://cluster.local/ns/b/sa/server").value();
    Side client{certified(root, "spiffe://other.td/ns/a/sa/client"),
                PeerRole::server,
                {server_id},
                root.now_unix(),
                {},
                {}};
    Side server{certified(root, "spiffe://cluster.local/ns/b/sa/server"),
                PeerRole::client,
                {},
                root.now_unix(),
                {},
                {}};
    CHECK_FALSE(handshake(client, server));
    REQUIRE(server.refusal);
    CHECK(*server.refusal == Errc::trust_domain_mismatch);
}

TEST_CASE("certs: the server refuses a client certificate from an unknown CA (A4)") {
    TestCa root = TestCa::root();
    TestCa stranger = TestCa::root("cluster.local", root.now_unix());
    auto server_id = Identity::parse("spiffe://cluster.local/ns/b/sa/server").value();
    // The client trusts our root (so it accepts the server) but its own cert is the stranger's.
    auto foreign = stranger.issue_leaf("spiffe://cluster.local/ns/a/sa/client");
    auto ck = CertifiedKey::make(
            Identity::parse("spiffe://cluster.local/ns/a/sa/client").value(), foreign.chain_pem,
            foreign.key_pem,
            zt::certs::TrustBundle::from_pem(root.root_pem() + stranger.root_pem()).value(),
            root.now_unix());
    REQUIRE(ck);
    Side client{*ck, PeerRole::server, {server_id}, root.now_unix(), {}, {}};
    Side server{certified(root, "spiffe://cluster.local/ns/b/sa/server"),
                PeerRole::client,
                {},
                root.now_unix(),
                {},
                {}};
    CHECK_FALSE(handshake(client, server));
    REQUIRE(server.refusal);
    CHECK(*server.refusal == Errc::cert_unknown_ca);
}
