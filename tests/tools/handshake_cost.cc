// handshake_cost measures what one HBONE mTLS handshake costs with this machine's BoringSSL:
// the public-key operations it is made of (ECDSA P-256 sign and verify, X25519 and P-256 key
// agreement), parsing a certificate, certs/'s `verify_svid` of a peer chain (what the custom
// verify callback runs), and whole handshakes between two `hbone::TlsSession`s in memory (no
// sockets), with the CPU time of each side taken apart (thread CPU clock around each side's
// calls). Each row runs for about `--ms` milliseconds (default 300) on one thread; the machine is
// shared, so compare rows of one run and repeat it.
//
//     build/tools/handshake_cost [--ms N]

#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

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
bool handshake_once(const zt::test::HbonePki& pki, int64_t& client_ns, int64_t& server_ns) {
    using zt::hbone::TlsSession;
    using zt::hbone::TlsWant;
    int64_t t0 = thread_cpu_ns();
    auto client = TlsSession::create(pki.client_ctx, {pki.server_id}, {}, 0, pki.ca.now_unix());
    int64_t t1 = thread_cpu_ns();
    auto server = TlsSession::create(pki.server_ctx, {}, {}, 0, pki.ca.now_unix());
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
    bench("ECDSA P-256 sign", budget_ms, [&] {
        return ECDSA_sign(0, digest, sizeof digest, sig, &sig_len, key.get()) == 1;
    });
    bench("ECDSA P-256 verify", budget_ms, [&] {
        return ECDSA_verify(0, digest, sizeof digest, sig, sig_len, key.get()) == 1;
    });
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
    bench("X.509 parse (X509_parse_from_buffer), leaf", budget_ms, [&] {
        return bssl::UniquePtr<X509>(X509_parse_from_buffer(der)) != nullptr;
    });
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

    // Whole handshakes, both sides on this thread.
    int64_t client_ns = 0, server_ns = 0;
    uint64_t n = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms * 3);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!handshake_once(pki, client_ns, server_ns)) {
            std::fprintf(stderr, "handshake failed\n");
            return 1;
        }
        ++n;
    }
    std::printf("%-52s %9.1f CPU us/op  (%llu ops)\n", "mTLS handshake, client side (TlsSession)",
                double(client_ns) / 1000.0 / double(n), static_cast<unsigned long long>(n));
    std::printf("%-52s %9.1f CPU us/op  (%llu ops)\n", "mTLS handshake, server side (TlsSession)",
                double(server_ns) / 1000.0 / double(n), static_cast<unsigned long long>(n));
    std::printf("handshake_cost: client_us=%.1f server_us=%.1f handshakes=%llu\n",
                double(client_ns) / 1000.0 / double(n), double(server_ns) / 1000.0 / double(n),
                static_cast<unsigned long long>(n));
    return 0;
}
