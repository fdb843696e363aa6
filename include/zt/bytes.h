#pragma once

// Byte spans: the one way byte ranges cross module boundaries (pointer plus length only at a C
// boundary).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace zt {

using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

// as_bytes views the characters of `text` as bytes, without copying.
inline ByteSpan as_bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// as_chars views `bytes` as characters, without copying.
inline std::string_view as_chars(ByteSpan bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace zt
