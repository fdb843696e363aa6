// x509_fuzz.cc feeds arbitrary bytes to the code that reads what a peer sends: as one DER
// certificate through `check_leaf_profile` and `verify_svid` (both sides), and as PEM through the
// chain and key parsers. Nothing may crash, an accepted leaf's identity must round-trip through
// the strict parser, and BoringSSL's error queue must be empty afterwards (hbone/ relies on it).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/stack.h>

#include "certs/pem.h"
#include "certs/verify.h"
#include "tests/support/test_ca.h"

namespace {

constexpr int64_t kNow = 1'700'000'000;

void require(bool condition) {
    if (!condition) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto bundle = zt::testing::TestCa::root("cluster.local", kNow).bundle();

    bssl::UniquePtr<CRYPTO_BUFFER> buffer(CRYPTO_BUFFER_new(data, size, nullptr));
    bssl::UniquePtr<STACK_OF(CRYPTO_BUFFER)> chain(sk_CRYPTO_BUFFER_new_null());
    require(buffer && chain && sk_CRYPTO_BUFFER_push(chain.get(), buffer.get()));
    CRYPTO_BUFFER_up_ref(buffer.get());
    for (auto role : {zt::certs::PeerRole::server, zt::certs::PeerRole::client}) {
        // A random root signs nothing the fuzzer can forge: every input must be refused.
        require(!zt::certs::verify_svid(*bundle, chain.get(), role, kNow));
        require(ERR_peek_error() == 0);
    }
    zt::certs::X509Ptr leaf(X509_parse_from_buffer(buffer.get()));
    ERR_clear_error();
    if (leaf) {
        auto id = zt::certs::check_leaf_profile(leaf.get(), zt::certs::PeerRole::client);
        require(ERR_peek_error() == 0);
        if (id) {
            auto again = zt::certs::Identity::parse(id->to_string());
            require(again && *again == *id);
        }
    }
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)zt::certs::parse_cert_chain_pem(text);
    (void)zt::certs::parse_private_key_pem(text);
    require(ERR_peek_error() == 0);
    return 0;
}
