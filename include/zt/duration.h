#pragma once

// Durations as operators write them (docs/contract.md §1): `500ms`, `5s`, `10m`, `24h`, and sums of
// those such as `1h30m`. Units: ns, us, ms, s, m, h. A bare number is refused: a unit is always
// required, so `5` never silently means five nanoseconds.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "zt/result.h"

namespace zt {

// parse_duration_ns parses `text` into nanoseconds. It fails with `Errc::parse` on an empty
// string, a missing or unknown unit, a negative value or an overflow of int64 nanoseconds.
inline Result<int64_t> parse_duration_ns(std::string_view text) {
    if (text.empty()) {
        return fail(Errc::parse);
    }
    int64_t total = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        uint64_t number = 0;
        auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), number);
        if (ec != std::errc() || end == text.data() + pos) {
            return fail(Errc::parse);
        }
        pos = size_t(end - text.data());
        size_t unit_start = pos;
        while (pos < text.size() && text[pos] >= 'a' && text[pos] <= 'z') {
            ++pos;
        }
        std::string_view unit = text.substr(unit_start, pos - unit_start);
        uint64_t scale = 0;
        if (unit == "ns") {
            scale = 1;
        } else if (unit == "us") {
            scale = 1'000;
        } else if (unit == "ms") {
            scale = 1'000'000;
        } else if (unit == "s") {
            scale = 1'000'000'000;
        } else if (unit == "m") {
            scale = 60ull * 1'000'000'000;
        } else if (unit == "h") {
            scale = 3600ull * 1'000'000'000;
        } else {
            return fail(Errc::parse);
        }
        constexpr uint64_t kMax = uint64_t(INT64_MAX);
        if (number > kMax / scale || uint64_t(total) > kMax - number * scale) {
            return fail(Errc::parse);
        }
        total += int64_t(number * scale);
    }
    return total;
}

// format_duration_ms renders `ns` the way access logs show durations: whole milliseconds,
// `"12ms"`.
inline std::string format_duration_ms(int64_t ns) {
    return std::to_string(ns / 1'000'000) + "ms";
}

}  // namespace zt
