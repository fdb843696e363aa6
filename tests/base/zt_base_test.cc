// Unit tests for the base vocabulary in include/zt/: Result, UniqueFd, durations and the log
// filter and formats.

#include <fcntl.h>
#include <unistd.h>

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

TEST_CASE("duration: the forms SPEC.md uses") {
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
