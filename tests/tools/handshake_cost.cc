// handshake_cost measures what one HBONE mTLS handshake costs with this machine's BoringSSL:
// the public-key operations it is made of (ECDSA P-256 sign and verify, X25519 and P-256 key
// agreement), parsing a certificate, certs/'s `verify_svid` of a peer chain (what the custom
// verify callback runs, in full and from the trust bundle's cache), and whole handshakes between
// two `hbone::TlsSession`s in memory (no sockets), with and without the cache, with the CPU time
// of each side taken apart (thread CPU clock around each side's calls). Each row runs for about
// `--ms` milliseconds (default 300) on one thread; the machine is shared, so compare rows of one
// run and repeat it.
//
//     build/tools/handshake_cost [--ms N]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "certs/verify.h"
#include "hbone/tls_session.h"
#include "tests/support/hbone_pki.h"

namespace {

int64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// bench runs `op` in batches of 8 for about `budget_ms` of wall time and prints its CPU cost.
template <class F>
void bench(const char* name, int64_t budget_ms, F&& op) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
    int64_t cpu0 = thread_cpu_ns();
    uint64_t n = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        for (int i = 0; i < 8; ++i) {
            if (!op()) {
                std::fprintf(stderr, "%s: operation failed\n", name);
                std::exit(1);
            }
        }
        n += 8;
    }
    double us = double(thread_cpu_ns() - cpu0) / 1000.0 / double(n);
    std::printf("%-52s %9.1f CPU us/op  (%llu ops)\n", name, us,
                static_cast<unsigned long long>(n));
}

// handshake_once joins a fresh client and server session in memory until both are done, adding
// each side's CPU time to `client_ns` / `server_ns`.
struct Contexts {
    std::shared_ptr<const zt::hbone::TlsContext> client;
    std::shared_ptr<const zt::hbone::TlsContext> server;
};

bool handshake_once(const zt::test::HbonePki& pki, const Contexts& ctx, int64_t& client_ns,
                    int64_t& server_ns) {
    using zt::hbone::TlsSession;
    int64_t t0 = thread_cpu_ns();
    auto client = TlsSession::create(ctx.client, {pki.server_id}, {}, 0, pki.ca.now_unix());
    int64_t t1 = thread_cpu_ns();
    auto server = TlsSession::create(ctx.server, {}, {}, 0, pki.ca.now_unix());
    int64_t t2 = thread_cpu_ns();
    if (!client || !server) {
        return false;
    }
    client_ns += t1 - t0;
    server_ns += t2 - t1;
    TlsSession& c = **client;
    TlsSession& s = **server;
    auto step_client = c.handshake();
    client_ns += thread_cpu_ns() - t2;
    for (int round = 0; round < 16; ++round) {
        if (!step_client) {
            return false;
        }
        if (!c.pending_output().empty()) {
            int64_t a = thread_cpu_ns();
            if (!s.feed_ciphertext(c.pending_output())) {
                return false;
            }
            c.consume_output(c.pending_output().size());
            auto step = s.handshake();
            server_ns += thread_cpu_ns() - a;
            if (!step) {
                return false;
            }
        }
        if (s.pending_output().empty() && c.is_done() && s.is_done()) {
            return true;
        }
        if (!s.pending_output().empty()) {
            int64_t a = thread_cpu_ns();
            if (!c.feed_ciphertext(s.pending_output())) {
                return false;
            }
            s.consume_output(s.pending_output().size());
            step_client = c.handshake();
            client_ns += thread_cpu_ns() - a;
        }
    }
    return c.is_done() && s.is_done();
}

// handshakes runs whole handshakes on `ctx` for about `budget_ms` and prints each side's cost.
bool handshakes(const char* name, const zt::test::HbonePki& pki, const Contexts& ctx,
                int64_t budget_ms) {
    int64_t client_ns = 0, server_ns = 0;
    uint64_t n = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!handshake_once(pki, ctx, client_ns, server_ns)) {
            std::fprintf(stderr, "%s: handshake failed\n", name);
            return false;
        }
        ++n;
    }
    std::printf("%-52s %9.1f CPU us/op  (%llu ops)\n",
                (std::string(name) + ", client side").c_str(),
                double(client_ns) / 1000.0 / double(n), static_cast<unsigned long long>(n));
    std::printf("%-52s %9.1f CPU us/op  (%llu ops)\n",
                (std::string(name) + ", server side").c_str(),
                double(server_ns) / 1000.0 / double(n), static_cast<unsigned long long>(n));
    return true;
}

// contexts_trusting makes client and server contexts for `pki`'s identities whose peers are
// verified against `roots`.
Contexts contexts_trusting(const zt::test::HbonePki& pki,
                           std::shared_ptr<const zt::certs::TrustBundle> roots) {
    auto make = [&](zt::hbone::Role role, std::string_view spiffe) {
        auto cert = pki.ca.issue_leaf(spiffe);
        auto id = zt::certs::Identity::parse(spiffe).value();
        auto ck = zt::certs::CertifiedKey::make(id, cert.chain_pem, cert.key_pem, roots,
                                                pki.ca.now_unix());
        if (!ck) {
            std::exit(1);
        }
        auto ctx = zt::hbone::TlsContext::create(role, std::move(*ck));
        if (!ctx) {
            std::exit(1);
        }
        return std::move(*ctx);
    };
    return {make(zt::hbone::Role::client, zt::test::kClientSpiffe),
            make(zt::hbone::Role::server, zt::test::kServerSpiffe)};
}

}  // namespace

int main(int argc, char** argv) {
    int64_t budget_ms = 300;
    if (argc == 3 && std::strcmp(argv[1], "--ms") == 0) {
        budget_ms = std::atoll(argv[2]);
    }
    // Public-key operations, as a handshake uses them.
    bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (!key || !EC_KEY_generate_key(key.get())) {
        return 1;
    }
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const uint8_t*>("handshake transcript"), 20, digest);
    uint8_t sig[160];  // ECDSA_size(P-256 key) is 72
    unsigned sig_len = 0;
    bench("ECDSA P-256 sign", budget_ms,
          [&] { return ECDSA_sign(0, digest, sizeof digest, sig, &sig_len, key.get()) == 1; });
    bench("ECDSA P-256 verify", budget_ms,
          [&] { return ECDSA_verify(0, digest, sizeof digest, sig, sig_len, key.get()) == 1; });
    uint8_t x_pub[32], x_priv[32], x_peer_pub[32], x_peer_priv[32], shared[32];
    X25519_keypair(x_peer_pub, x_peer_priv);
    bench("X25519 keypair + shared secret", budget_ms, [&] {
        X25519_keypair(x_pub, x_priv);
        return X25519(shared, x_priv, x_peer_pub) == 1;
    });
    bssl::UniquePtr<EC_KEY> peer(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (!peer || !EC_KEY_generate_key(peer.get())) {
        return 1;
    }
    bench("P-256 ECDH keypair + shared secret", budget_ms, [&] {
        bssl::UniquePtr<EC_KEY> eph(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
        uint8_t out[32];
        return eph && EC_KEY_generate_key(eph.get()) &&
               ECDH_compute_key(out, sizeof out, EC_KEY_get0_public_key(peer.get()), eph.get(),
                                nullptr) == int(sizeof out);
    });

    // Certificates: a mesh leaf signed by the root (local-CA mode), as the peer sends it.
    zt::test::HbonePki pki;
    auto leaf = pki.ca.issue_leaf(zt::test::kClientSpiffe);
    auto chain = leaf.chain_buffers();
    CRYPTO_BUFFER* der = sk_CRYPTO_BUFFER_value(chain.get(), 0);
    bench("X.509 parse (X509_parse_from_buffer), leaf", budget_ms,
          [&] { return bssl::UniquePtr<X509>(X509_parse_from_buffer(der)) != nullptr; });
    auto uncached = zt::certs::TrustBundle::from_pem(pki.ca.root_pem(), 0);
    auto cached = zt::certs::TrustBundle::from_pem(pki.ca.root_pem());
    if (!uncached || !cached) {
        return 1;
    }
    bench("certs::verify_svid, leaf signed by the root", budget_ms, [&] {
        return zt::certs::verify_svid(**uncached, chain.get(), zt::certs::PeerRole::client,
                                      pki.ca.now_unix())
                .has_value();
    });
    bench("certs::verify_svid, the same chain from the cache", budget_ms, [&] {
        return zt::certs::verify_svid(**cached, chain.get(), zt::certs::PeerRole::client,
                                      pki.ca.now_unix())
                .has_value();
    });

    // Whole handshakes, both sides on this thread: peers verified in full every time (a
    // bundle without cache), then as in production (the bundle's cache; the first one fills it).
    if (!handshakes("mTLS handshake, verify cache off", pki, contexts_trusting(pki, *uncached),
                    budget_ms * 2) ||
        !handshakes("mTLS handshake", pki, {pki.client_ctx, pki.server_ctx}, budget_ms * 2)) {
        return 1;
    }
    return 0;
}
