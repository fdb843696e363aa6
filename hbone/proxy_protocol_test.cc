// Tests for the PROXY protocol v2 builder and strict parser: the exact bytes ztunnel writes for
// IPv4, IPv6 and a mixed pair (spelled out by hand from HAProxy's proxy-protocol.txt §2.2, not
// produced by our builder), the identity bound, and the parser's verdict on every prefix and on
// each way a header can be malformed.

#include "hbone/proxy_protocol.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

using zt::hbone::ProxyAddress;
using zt::hbone::ProxyParseStatus;

ProxyAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    ProxyAddress out;
    out.ip[0] = a;
    out.ip[1] = b;
    out.ip[2] = c;
    out.ip[3] = d;
    out.port = port;
    return out;
}

ProxyAddress v6_db8(uint8_t last, uint16_t port) {
    ProxyAddress out;
    out.v6 = true;
    out.ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
    out.port = port;
    return out;
}

std::vector<uint8_t> signature() {
    return {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
}

std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::vector<uint8_t> bytes_of(std::string_view text) {
    return std::vector<uint8_t>(text.begin(), text.end());
}

constexpr std::string_view kIdentity = "spiffe://cluster.local/ns/default/sa/client";

}  // namespace

TEST_CASE("proxy protocol: an IPv4 header with the peer identity, byte for byte") {
    auto built =
            zt::hbone::build_proxy_v2(v4(198, 18, 1, 2, 40000), v4(198, 18, 2, 2, 8080), kIdentity);
    REQUIRE(built);
    // 12 address bytes + a TLV of 3 + 43 bytes = 58 = 0x003a.
    std::vector<uint8_t> expected =
            concat(signature(), {0x21, 0x11, 0x00, 0x3a, 198, 18, 1, 2, 198, 18, 2, 2, 0x9c, 0x40,
                                 0x1f, 0x90, 0xD0, 0x00, 0x2b});
    expected = concat(expected, bytes_of(kIdentity));
    CHECK(*built == expected);
}

TEST_CASE("proxy protocol: an IPv6 header without an identity has no TLV") {
    auto built = zt::hbone::build_proxy_v2(v6_db8(1, 443), v6_db8(2, 15088), "");
    REQUIRE(built);
    std::vector<uint8_t> expected = concat(signature(), {0x21, 0x21, 0x00, 0x24});
    expected = concat(expected, {0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,    0,    0,   0, 0, 0,
                                 0,    0,    1,    0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,   0, 0, 0,
                                 0,    0,    0,    0,    0,    2,    0x01, 0xbb, 0x3a, 0xf0});
    CHECK(*built == expected);
}

TEST_CASE("proxy protocol: a mixed IPv4/IPv6 pair is UNSPEC with no addresses, as ztunnel's ppp") {
    auto built = zt::hbone::build_proxy_v2(v4(198, 18, 1, 2, 1), v6_db8(2, 2), "id");
    REQUIRE(built);
    CHECK(*built == concat(signature(), {0x21, 0x01, 0x00, 0x05, 0xD0, 0x00, 0x02, 'i', 'd'}));
    auto parsed = zt::hbone::parse_proxy_v2(*built);
    REQUIRE(parsed.status == ProxyParseStatus::complete);
    CHECK(parsed.header.family == zt::hbone::ProxyFamily::unspec);
    CHECK(parsed.header.peer_identity() == "id");
}

TEST_CASE("proxy protocol: the identity is bounded by the header's 16-bit length") {
    std::string longest(zt::hbone::kProxyV2IdentityMax, 'x');
    auto built = zt::hbone::build_proxy_v2(v6_db8(1, 1), v6_db8(2, 2), longest);
    REQUIRE(built);
    CHECK(built->size() == zt::hbone::kProxyV2FixedBytes + 65535);
    auto parsed = zt::hbone::parse_proxy_v2(*built);
    REQUIRE(parsed.status == ProxyParseStatus::complete);
    CHECK(parsed.header.peer_identity()->size() == longest.size());
    auto too_long = zt::hbone::build_proxy_v2(v4(1, 2, 3, 4, 1), v4(1, 2, 3, 4, 2), longest + "x");
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().code == zt::Errc::invalid_argument);
}

TEST_CASE("proxy protocol: what the builder writes parses back, and payload after it is left") {
    for (bool v6 : {false, true}) {
        ProxyAddress src = v6 ? v6_db8(7, 50000) : v4(198, 18, 1, 7, 50000);
        ProxyAddress dst = v6 ? v6_db8(9, 80) : v4(198, 19, 0, 9, 80);
        auto built = zt::hbone::build_proxy_v2(src, dst, kIdentity);
        REQUIRE(built);
        size_t header_size = built->size();
        std::vector<uint8_t> stream = concat(*built, bytes_of("GET / HTTP/1.1\r\n"));
        auto parsed = zt::hbone::parse_proxy_v2(stream);
        REQUIRE(parsed.status == ProxyParseStatus::complete);
        CHECK(parsed.error.empty());
        CHECK(parsed.header.size == header_size);
        CHECK(parsed.header.command == zt::hbone::ProxyCommand::proxy);
        CHECK(parsed.header.transport == zt::hbone::ProxyTransport::stream);
        CHECK(parsed.header.family ==
              (v6 ? zt::hbone::ProxyFamily::inet6 : zt::hbone::ProxyFamily::inet));
        CHECK(parsed.header.source == src);
        CHECK(parsed.header.destination == dst);
        REQUIRE(parsed.header.tlvs.size() == 1);
        CHECK(parsed.header.peer_identity() == kIdentity);
        // Every proper prefix is incomplete, never invalid and never complete.
        for (size_t n = 0; n < header_size; ++n) {
            auto prefix = zt::hbone::parse_proxy_v2(std::span<const uint8_t>(stream.data(), n));
            CHECK(prefix.status == ProxyParseStatus::incomplete);
        }
    }
}

TEST_CASE("proxy protocol: the strict parser refuses each malformation with a reason") {
    // A valid IPv4 header with a NOOP TLV: 12 address bytes + 3 + 1.
    const std::vector<uint8_t> good = concat(
            signature(),
            {0x21, 0x11, 0x00, 0x10, 198, 18, 1, 2, 198, 18, 2, 2, 0, 80, 1, 187, 0x04, 0, 1, 42});
    auto ok = zt::hbone::parse_proxy_v2(good);
    REQUIRE(ok.status == ProxyParseStatus::complete);
    CHECK(ok.header.tlvs[0].type == 0x04);
    CHECK_FALSE(ok.header.peer_identity().has_value());

    struct Row {
        const char* what;
        size_t offset;
        uint8_t value;
        const char* error;
    } rows[] = {
            {"signature", 5, 0x01, "not a PROXY protocol v2 signature"},
            {"version 1 binary", 12, 0x11, "not version 2"},
            {"unknown command", 12, 0x22, "unknown command"},
            {"unknown family", 13, 0x41, "unknown address family"},
            {"unknown transport", 13, 0x13, "unknown transport"},
            {"length shorter than the INET block", 15, 0x0b,
             "length shorter than the address block"},
            {"INET6 block longer than the length", 13, 0x21,
             "length shorter than the address block"},
            {"TLV value past the end", 18 + 12, 0x02, "TLV longer than the header"},
            {"trailing bytes too short for a TLV", 15, 0x0e, "truncated TLV"},
    };

    for (const Row& row : rows) {
        std::string what = row.what;
        INFO(what);
        std::vector<uint8_t> bad = good;
        bad[row.offset] = row.value;
        auto parsed = zt::hbone::parse_proxy_v2(bad);
        CHECK(parsed.status == ProxyParseStatus::invalid);
        CHECK(parsed.error == row.error);
    }

    // A wrong signature is refused from its first bytes, without waiting for 16.
    auto early = zt::hbone::parse_proxy_v2(bytes_of("GET "));
    CHECK(early.status == ProxyParseStatus::invalid);
    // PROXY v1 (text) is not v2.
    CHECK(zt::hbone::parse_proxy_v2(bytes_of("PROXY TCP4 198.18.1.2 198.18.2.2 1 2\r\n")).status ==
          ProxyParseStatus::invalid);

    auto twice = zt::hbone::build_proxy_v2(v4(1, 1, 1, 1, 1), v4(2, 2, 2, 2, 2), "a");
    REQUIRE(twice);
    (*twice)[15] += 4;
    *twice = concat(*twice, {0xD0, 0x00, 0x01, 'b'});
    CHECK(zt::hbone::parse_proxy_v2(*twice).error == "TLV 0xD0 twice");
}

TEST_CASE("proxy protocol: LOCAL, UNSPEC and UNIX headers are complete without addresses") {
    auto local = zt::hbone::parse_proxy_v2(concat(signature(), {0x20, 0x00, 0x00, 0x00}));
    REQUIRE(local.status == ProxyParseStatus::complete);
    CHECK(local.header.command == zt::hbone::ProxyCommand::local);
    CHECK(local.header.size == 16);

    std::vector<uint8_t> unix_header = concat(signature(), {0x21, 0x31, 0x00, 0xd8});
    unix_header.resize(16 + 216, 0);
    auto unix_parsed = zt::hbone::parse_proxy_v2(unix_header);
    REQUIRE(unix_parsed.status == ProxyParseStatus::complete);
    CHECK(unix_parsed.header.family == zt::hbone::ProxyFamily::unix_socket);
    CHECK(unix_parsed.header.size == 232);
    CHECK(unix_parsed.header.source == ProxyAddress{});
}
