#pragma once

// `Sha256` hashes a byte stream incrementally for tests that check relayed data byte-exact.
// A thin wrapper over BoringSSL's SHA256_*; test support only.

#include <array>
#include <cstdint>
#include <span>

#include <openssl/sha.h>

namespace zt::test {

using Digest = std::array<uint8_t, SHA256_DIGEST_LENGTH>;

class Sha256 {
public:
    Sha256() { SHA256_Init(&ctx_); }

    // update hashes `bytes` after everything hashed before.
    void update(std::span<const uint8_t> bytes) {
        SHA256_Update(&ctx_, bytes.data(), bytes.size());
    }

    // finish returns the digest; the object must not be used afterwards.
    Digest finish() {
        Digest digest{};
        SHA256_Final(digest.data(), &ctx_);
        return digest;
    }

private:
    SHA256_CTX ctx_;
};

}  // namespace zt::test
