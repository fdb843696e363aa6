// bench_net_test.cc: unit tests for the benchmark tools' address parsing and percentile maths,
// which the published benchmark figures depend on.

#include "tests/support/bench_net.h"

#include <unistd.h>

#include <cstring>

#include <doctest/doctest.h>

#include "tests/support/net.h"

using zt::bench::Endpoint;

TEST_CASE("bench: parse_endpoint accepts IPv4, bracketed IPv6 and a bare port") {
    Endpoint ep;
    REQUIRE(zt::bench::parse_endpoint("198.18.1.2:8080", ep));
    CHECK(zt::bench::endpoint_string(ep) == "198.18.1.2:8080");
    REQUIRE(zt::bench::parse_endpoint("[2001:db8:1::2]:15008", ep));
    CHECK(zt::bench::endpoint_string(ep) == "[2001:db8:1::2]:15008");
    REQUIRE(zt::bench::parse_endpoint("7000", ep));
    CHECK(zt::bench::endpoint_string(ep) == "127.0.0.1:7000");
}

TEST_CASE("bench: parse_endpoint rejects malformed addresses") {
    Endpoint ep;
    CHECK_FALSE(zt::bench::parse_endpoint("", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("1.2.3.4:", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("1.2.3.4:65536", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("1.2.3.400:80", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("[2001:db8::1:80", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("2001:db8::1]:80", ep));
    CHECK_FALSE(zt::bench::parse_endpoint("host:80x", ep));
}

TEST_CASE("bench: percentile uses the nearest rank") {
    std::vector<uint64_t> v;
    CHECK(zt::bench::percentile(v, 50) == 0);
    for (uint64_t i = 1; i <= 100; ++i) {
        v.push_back(i * 10);
    }
    CHECK(zt::bench::percentile(v, 50) == 500);
    CHECK(zt::bench::percentile(v, 99) == 990);
    CHECK(zt::bench::percentile(v, 99.9) == 1000);
    CHECK(zt::bench::percentile(v, 0) == 10);
    std::vector<uint64_t> one{7};
    CHECK(zt::bench::percentile(one, 99) == 7);
}

TEST_CASE("bench: connect_tcp and listen_tcp carry bytes over loopback") {
    Endpoint ep;
    REQUIRE(zt::bench::parse_endpoint("127.0.0.1:0", ep));
    int lfd = zt::bench::listen_tcp(ep, 8);
    REQUIRE(lfd >= 0);
    socklen_t len = sizeof ep.addr;
    REQUIRE(getsockname(lfd, reinterpret_cast<sockaddr*>(&ep.addr), &len) == 0);
    int cfd = zt::bench::connect_tcp(ep);
    REQUIRE(cfd >= 0);
    int sfd = accept(lfd, nullptr, nullptr);
    REQUIRE(sfd >= 0);
    const uint8_t ping[4] = {'p', 'i', 'n', 'g'};
    CHECK(zt::test::write_all(cfd, ping));
    uint8_t got[4] = {};
    CHECK(zt::test::read_all(sfd, got));
    CHECK(std::memcmp(got, ping, 4) == 0);
    close(cfd);
    CHECK_FALSE(zt::test::read_all(sfd, std::span<uint8_t>(got, 1)));  // end of stream
    close(sfd);
    close(lfd);
    CHECK(zt::bench::connect_tcp(ep) < 0);  // nothing listens any more
}
