// Unit tests for src/agent/grpc_frame: message prefixes split at every byte, the size cap and
// compressed messages, status from trailers and from HTTP statuses, grpc-message escapes and
// grpc-timeout units.

#include "src/agent/grpc_frame.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace zt::agent::grpc;
using zt::ByteSpan;
using zt::Errc;

namespace {

ByteSpan bytes_of(const std::string& text) {
    return ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace

TEST_CASE("grpc: messages survive any split of the byte stream") {
    std::string wire;
    append_message(wire, "first");
    append_message(wire, "");
    append_message(wire, std::string(70000, 'x'));
    REQUIRE(wire.size() == 3 * kMessagePrefixBytes + 5 + 70000);
    CHECK(wire.substr(0, 5) == std::string("\0\0\0\0\5", 5));
    for (size_t cut : {size_t(1), size_t(3), size_t(5), size_t(7), size_t(4096)}) {
        MessageReader reader;
        for (size_t at = 0; at < wire.size(); at += cut) {
            std::string piece = wire.substr(at, cut);
            REQUIRE(reader.feed(bytes_of(piece)));
        }
        CHECK_FALSE(reader.partial());
        std::string out;
        REQUIRE(reader.next(out));
        CHECK(out == "first");
        REQUIRE(reader.next(out));
        CHECK(out.empty());
        REQUIRE(reader.next(out));
        CHECK(out == std::string(70000, 'x'));
        CHECK_FALSE(reader.next(out));
    }
}

TEST_CASE("grpc: a message larger than the cap fails the reader before any body arrives") {
    MessageReader reader(1024);
    std::string prefix("\0\0\0\4\1", 5);  // 1025 bytes declared.
    auto fed = reader.feed(bytes_of(prefix));
    REQUIRE_FALSE(fed);
    CHECK(fed.error().code == Errc::no_capacity);
    // Failed for good: later bytes are refused too.
    CHECK_FALSE(reader.feed(bytes_of(std::string("x"))));

    MessageReader at_cap(1024);
    std::string ok_wire;
    append_message(ok_wire, std::string(1024, 'y'));
    CHECK(at_cap.feed(bytes_of(ok_wire)));
}

TEST_CASE("grpc: a compressed message is refused (the agent offers no encoding)") {
    MessageReader reader;
    std::string wire("\1\0\0\0\1z", 6);
    auto fed = reader.feed(bytes_of(wire));
    REQUIRE_FALSE(fed);
    CHECK(fed.error().code == Errc::unsupported);
}

TEST_CASE("grpc: a stream cut inside a message is seen as partial") {
    MessageReader reader;
    std::string wire;
    append_message(wire, "abcdef");
    REQUIRE(reader.feed(bytes_of(wire.substr(0, 3))));
    CHECK(reader.partial());
    REQUIRE(reader.feed(bytes_of(wire.substr(3, 5))));
    CHECK(reader.partial());
    std::string out;
    CHECK_FALSE(reader.next(out));
}

TEST_CASE("grpc: status comes from grpc-status and the decoded grpc-message") {
    std::vector<zt::hbone::H2Field> trailers = {{"grpc-status", "14"},
                                                {"grpc-message", "istiod%20is%20%E2%9C%93 down"}};
    Status status = status_from_fields(trailers);
    CHECK(status.code == StatusCode::unavailable);
    CHECK(status.message == "istiod is \xE2\x9C\x93 down");
    CHECK(status_from_fields(std::vector<zt::hbone::H2Field>{{"grpc-status", "0"}}).ok());

    Status missing = status_from_fields(std::vector<zt::hbone::H2Field>{{"x", "y"}});
    CHECK(missing.code == StatusCode::unknown);
    CHECK(missing.message.find("no grpc-status") != std::string::npos);
    CHECK(status_from_fields(std::vector<zt::hbone::H2Field>{{"grpc-status", "1x"}}).code ==
          StatusCode::unknown);
    CHECK(status_from_fields(std::vector<zt::hbone::H2Field>{{"grpc-status", "99"}}).code ==
          StatusCode::unknown);
    CHECK(status_from_fields(std::vector<zt::hbone::H2Field>{{"grpc-status", "16"}}).code ==
          StatusCode::unauthenticated);
}

TEST_CASE("grpc: grpc-message escapes round-trip and bad escapes stay literal") {
    std::string text = "50% of \"resources\"\nrejected: é";
    std::string encoded = percent_encode_message(text);
    CHECK(encoded.find('\n') == std::string::npos);
    CHECK(encoded.find("%25") != std::string::npos);
    CHECK(percent_decode_message(encoded) == text);
    CHECK(percent_decode_message("100%") == "100%");
    CHECK(percent_decode_message("%zz%4") == "%zz%4");
    CHECK(percent_decode_message("%41%42") == "AB");
}

TEST_CASE("grpc: HTTP statuses from proxies map to the spec's codes") {
    CHECK(status_from_http(400) == StatusCode::internal);
    CHECK(status_from_http(401) == StatusCode::unauthenticated);
    CHECK(status_from_http(403) == StatusCode::permission_denied);
    CHECK(status_from_http(404) == StatusCode::unimplemented);
    CHECK(status_from_http(429) == StatusCode::unavailable);
    CHECK(status_from_http(503) == StatusCode::unavailable);
    CHECK(status_from_http(500) == StatusCode::unknown);
    CHECK(to_string(StatusCode::deadline_exceeded) == "DEADLINE_EXCEEDED");
}

TEST_CASE("grpc: content types") {
    CHECK(is_grpc_content_type("application/grpc"));
    CHECK(is_grpc_content_type("application/grpc+proto"));
    CHECK(is_grpc_content_type("Application/GRPC;charset=x"));
    CHECK_FALSE(is_grpc_content_type("application/grpcx"));
    CHECK_FALSE(is_grpc_content_type("text/html"));
    CHECK_FALSE(is_grpc_content_type(""));
}

TEST_CASE("grpc: timeouts use at most eight digits and round up") {
    CHECK(encode_timeout(1) == "1n");
    CHECK(encode_timeout(99'999'999) == "99999999n");
    CHECK(encode_timeout(100'000'000) == "100000u");
    CHECK(encode_timeout(100'000'001) == "100001u");
    CHECK(encode_timeout(10'000'000'000) == "10000000u");
    CHECK(encode_timeout(300'000'000'000) == "300000m");
    CHECK(encode_timeout(int64_t(200'000) * 1'000'000'000) == "200000S");
    CHECK(encode_timeout(int64_t(1) << 62) == "76861434M");
}
