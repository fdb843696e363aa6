// authority_fuzz.cc checks the CONNECT authority parser on arbitrary text: it must never crash,
// and whatever it accepts must format back to text that parses to the same value (so no two
// spellings of one target slip past a check done on the text).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hbone/connect.h"
#include "zt/assert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = zt::hbone::parse_authority(text);
    if (!parsed) {
        return 0;
    }
    ZT_CHECK(parsed->port != 0);
    std::string again = zt::hbone::format_authority(*parsed);
    auto reparsed = zt::hbone::parse_authority(again);
    ZT_CHECK(reparsed.has_value());
    ZT_CHECK(*reparsed == *parsed);
    return 0;
}
