// Unit tests for the base vocabulary in include/zt/: Result, UniqueFd, durations and the log
// filter and formats.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include <doctest/doctest.h>

#include "zt/duration.h"
#include "zt/log.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace {

zt::Result<int> half(int value) {
    if (value % 2 != 0) {
        return zt::fail(zt::Errc::invalid_argument);
    }
    return value / 2;
}

}  // namespace

TEST_CASE("result: holds a value or an error, never both") {
    auto good = half(10);
    REQUIRE(good.has_value());
    CHECK(bool(good));
    CHECK(*good == 5);
    CHECK(good.value_or(7) == 5);

    auto bad = half(3);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == zt::Errc::invalid_argument);
    CHECK(bad.value_or(7) == 7);
}

TEST_CASE("result: move-only values and copies") {
    zt::Result<std::unique_ptr<int>> owned = std::make_unique<int>(42);
    REQUIRE(owned);
    std::unique_ptr<int> taken = std::move(owned).value();
    CHECK(*taken == 42);

    zt::Result<std::string> text = std::string("abc");
    zt::Result<std::string> copy = text;
    CHECK(*copy == "abc");
    copy = zt::fail(zt::Errc::eof);
    CHECK(copy.error().code == zt::Errc::eof);
    CHECK(*text == "abc");
}

TEST_CASE("result: void and errno failures") {
    zt::Result<void> fine = zt::ok();
    CHECK(fine.has_value());
    zt::Result<void> broken = zt::fail_errno(-ECONNRESET);
    REQUIRE_FALSE(broken);
    CHECK(broken.error().code == zt::Errc::sys);
    CHECK(broken.error().sys_errno == ECONNRESET);
    CHECK(zt::to_string(zt::Errc::policy_denied) == "policy_denied");
}

TEST_CASE("unique_fd: closes on destruction and moves ownership") {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(raw >= 0);
    {
        zt::UniqueFd fd(raw);
        zt::UniqueFd moved = std::move(fd);
        CHECK_FALSE(fd.valid());
        CHECK(moved.get() == raw);
    }
    CHECK(::fcntl(raw, F_GETFD) == -1);

    zt::UniqueFd kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int released = kept.release();
    CHECK_FALSE(kept.valid());
    CHECK(::close(released) == 0);
}

TEST_CASE("duration: the forms docs/contract.md uses") {
    CHECK(*zt::parse_duration_ns("500ms") == 500'000'000);
    CHECK(*zt::parse_duration_ns("5s") == 5'000'000'000);
    CHECK(*zt::parse_duration_ns("10m") == 600'000'000'000);
    CHECK(*zt::parse_duration_ns("24h") == 86'400'000'000'000);
    CHECK(*zt::parse_duration_ns("1h30m") == 5'400'000'000'000);
    CHECK(*zt::parse_duration_ns("250us") == 250'000);
    CHECK(*zt::parse_duration_ns("0s") == 0);
}

TEST_CASE("duration: refusals") {
    for (const char* bad : {"", "5", "s", "5x", "-5s", "5 s", "1.5s", "99999999999999h", "5S"}) {
        CAPTURE(bad);
        CHECK_FALSE(zt::parse_duration_ns(bad).has_value());
    }
    CHECK(zt::format_duration_ms(12'345'678) == "12ms");
}

TEST_CASE("log: RUST_LOG filters") {
    auto filter = zt::log::Filter::parse("warn,access=debug,proxy:trace");
    REQUIRE(filter);
    CHECK(filter->enabled(zt::log::Level::warn, "config"));
    CHECK_FALSE(filter->enabled(zt::log::Level::info, "config"));
    CHECK(filter->enabled(zt::log::Level::debug, "access"));
    CHECK_FALSE(filter->enabled(zt::log::Level::trace, "access"));
    CHECK(filter->enabled(zt::log::Level::trace, "proxy::inbound"));
    CHECK_FALSE(filter->enabled(zt::log::Level::trace, "proxyish"));
    CHECK(filter->max_level() == zt::log::Level::trace);
    CHECK(filter->to_string() == "warn,access=debug,proxy=trace");

    auto appended = filter->with(*zt::log::Filter::parse("access=off"));
    CHECK_FALSE(appended.enabled(zt::log::Level::error, "access"));
    CHECK(appended.default_level() == zt::log::Level::warn);

    CHECK_FALSE(zt::log::Filter::parse("loud").has_value());
    CHECK_FALSE(zt::log::Filter::parse("access=loud").has_value());
    CHECK_FALSE(zt::log::Filter::parse("=info").has_value());
    CHECK(zt::log::Filter::parse("off")->enabled(zt::log::Level::error, "x") == false);
}

TEST_CASE("log: plain and json formats") {
    zt::log::Field fields[] = {
            zt::log::Field::display("src.addr", "198.18.1.2:40000"),
            zt::log::Field::str("src.workload", "cli\"ent"),
            zt::log::Field::num("bytes_sent", 11),
    };
    zt::log::Record record{zt::log::Level::info, "access", "connection complete", fields,
                           1'764'135'568'123'456'789};
    CHECK(zt::log::format_plain(record) ==
          "2025-11-26T05:39:28.123456Z\tinfo\taccess\tconnection complete\t"
          "src.addr=198.18.1.2:40000 src.workload=\"cli\\\"ent\" bytes_sent=11");
    CHECK(zt::log::format_json(record) ==
          "{\"level\":\"info\",\"time\":\"2025-11-26T05:39:28.123456Z\",\"scope\":\"access\","
          "\"message\":\"connection complete\",\"src.addr\":\"198.18.1.2:40000\","
          "\"src.workload\":\"cli\\\"ent\",\"bytes_sent\":11}");
}

namespace {

// is_valid_utf8 checks `text` against RFC 3629 (Unicode table 3-7): no stray continuation byte,
// no overlong form, no surrogate, nothing above U+10FFFF, no truncated sequence. Written apart
// from log.h's own check so the test does not grade the code with itself.
bool is_valid_utf8(std::string_view text) {
    size_t i = 0;
    auto in = [&](size_t at, unsigned lo, unsigned hi) {
        return at < text.size() && uint8_t(text[at]) >= lo && uint8_t(text[at]) <= hi;
    };
    while (i < text.size()) {
        unsigned c = uint8_t(text[i]);
        if (c < 0x80) {
            i += 1;
        } else if (c >= 0xc2 && c <= 0xdf && in(i + 1, 0x80, 0xbf)) {
            i += 2;
        } else if (c == 0xe0 && in(i + 1, 0xa0, 0xbf) && in(i + 2, 0x80, 0xbf)) {
            i += 3;
        } else if (((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) && in(i + 1, 0x80, 0xbf) &&
                   in(i + 2, 0x80, 0xbf)) {
            i += 3;
        } else if (c == 0xed && in(i + 1, 0x80, 0x9f) && in(i + 2, 0x80, 0xbf)) {
            i += 3;
        } else if (c == 0xf0 && in(i + 1, 0x90, 0xbf) && in(i + 2, 0x80, 0xbf) &&
                   in(i + 3, 0x80, 0xbf)) {
            i += 4;
        } else if (c >= 0xf1 && c <= 0xf3 && in(i + 1, 0x80, 0xbf) && in(i + 2, 0x80, 0xbf) &&
                   in(i + 3, 0x80, 0xbf)) {
            i += 4;
        } else if (c == 0xf4 && in(i + 1, 0x80, 0x8f) && in(i + 2, 0x80, 0xbf) &&
                   in(i + 3, 0x80, 0xbf)) {
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

std::string json_line(std::string_view message, std::string_view value) {
    zt::log::Field fields[] = {zt::log::Field::str("peer", value),
                               zt::log::Field::display("addr", value)};
    zt::log::Record record{zt::log::Level::warn, "proxy", message, fields, 0};
    return zt::log::format_json(record);
}

}  // namespace

TEST_CASE("log: json lines stay valid UTF-8 whatever bytes a config or a peer put in them") {
    struct Case {
        const char* what;
        std::string input;
        std::string escaped;  // the JSON string body `input` must become
    };

    const Case cases[] = {
            {"valid multibyte text is kept", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
            {"a lone byte 0xff",
             "a\xff"
             "b",
             "a\\\\xffb"},
            {"a stray continuation byte", "\x80", "\\\\x80"},
            {"an overlong '/' in two bytes", "\xc0\xaf", "\\\\xc0\\\\xaf"},
            {"an overlong NUL in three bytes", "\xe0\x80\x80", "\\\\xe0\\\\x80\\\\x80"},
            {"an overlong in four bytes", "\xf0\x80\x80\xaf", "\\\\xf0\\\\x80\\\\x80\\\\xaf"},
            {"a lone high surrogate U+D800", "\xed\xa0\x80", "\\\\xed\\\\xa0\\\\x80"},
            {"a lone low surrogate U+DFFF", "\xed\xbf\xbf", "\\\\xed\\\\xbf\\\\xbf"},
            {"above U+10FFFF", "\xf4\x90\x80\x80", "\\\\xf4\\\\x90\\\\x80\\\\x80"},
            {"a truncated sequence", "\xe2\x82", "\\\\xe2\\\\x82"},
            {"a truncated sequence before ASCII", "\xe2\x82x", "\\\\xe2\\\\x82x"},
            {"control bytes and DEL", std::string("\x01\x1b[2J\x7f\n\0", 8),
             "\\u0001\\u001b[2J\\u007f\\n\\u0000"},
            {"quotes and backslashes", "\"\\", "\\\"\\\\"},
    };
    for (const Case& c : cases) {
        std::string what = c.what;
        CAPTURE(what);
        std::string line = json_line(c.input, c.input);
        CHECK(is_valid_utf8(line));
        CHECK(line ==
              "{\"level\":\"warn\",\"time\":\"1970-01-01T00:00:00.000000Z\",\"scope\":"
              "\"proxy\",\"message\":\"" +
                      c.escaped + "\",\"peer\":\"" + c.escaped + "\",\"addr\":\"" + c.escaped +
                      "\"}");
    }
    // Any bytes at all: 20,000 random strings, each line valid UTF-8 with no raw control byte.
    uint64_t state = 0x2545f4914f6cdd1dull;
    for (int round = 0; round < 20000; ++round) {
        std::string bytes(size_t(state % 24), '\0');
        for (char& b : bytes) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b = char(state);
        }
        std::string line = json_line(bytes, bytes);
        bool no_raw_control =
                std::all_of(line.begin(), line.end(), [](char b) { return uint8_t(b) >= 0x20; });
        if (!is_valid_utf8(line) || !no_raw_control) {
            FAIL_CHECK("round " << round << ": " << line);
            break;
        }
    }
}

TEST_CASE("log: plain lines escape invalid UTF-8 and control bytes in every field") {
    zt::log::Field fields[] = {zt::log::Field::str("peer", "x\xff\n"),
                               zt::log::Field::display("addr", "y\xc0\xaf\r\n")};
    zt::log::Record record{zt::log::Level::info, "proxy", "m", fields, 0};
    std::string line = zt::log::format_plain(record);
    CHECK(line ==
          "1970-01-01T00:00:00.000000Z\tinfo\tproxy\tm\tpeer=\"x\\xff\\n\" "
          "addr=y\\xc0\\xaf\\r\\n");
    CHECK(is_valid_utf8(line));
}
