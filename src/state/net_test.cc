// Unit tests for the address values: strict IP parsing, CIDR masking and containment,
// `network/ip` and `ip:port` forms.

#include "src/state/net.h"

#include <doctest/doctest.h>

using zt::state::Cidr;
using zt::state::IpAddr;
using zt::state::NetworkAddress;
using zt::state::SocketAddr;

TEST_CASE("state: IPs parse strictly (inet_pton, no inet_aton forms)") {
    CHECK(IpAddr::parse("198.18.0.1").has_value());
    CHECK(IpAddr::parse("2001:db8::1")->v6);
    CHECK(IpAddr::parse("2001:db8::1")->to_string() == "2001:db8::1");
    for (const char* bad : {"", "127.1", "010.0.0.1", "0x7f.0.0.1", "10.0.0.300", "1.2.3.4 ",
                            "fe80::1%eth0", "::ffff:1.2.3", "a.b.c.d"}) {
        CAPTURE(bad);
        CHECK_FALSE(IpAddr::parse(bad).has_value());
    }
    CHECK(IpAddr::parse("127.0.0.9")->is_loopback());
    CHECK(IpAddr::parse("::1")->is_loopback());
    CHECK(IpAddr::parse("::ffff:127.0.0.1")->is_loopback());
    CHECK_FALSE(IpAddr::parse("198.18.0.1")->is_loopback());
}

TEST_CASE("state: CIDRs clear host bits, bound the prefix, and contain by family") {
    auto cidr = Cidr::parse("198.18.7.9/16");
    REQUIRE(cidr);
    CHECK(cidr->to_string() == "198.18.0.0/16");
    CHECK(cidr->contains(*IpAddr::parse("198.18.255.1")));
    CHECK_FALSE(cidr->contains(*IpAddr::parse("198.19.0.1")));
    CHECK_FALSE(cidr->contains(*IpAddr::parse("::ffff:198.18.0.1")));
    auto odd = Cidr::parse("198.18.0.0/15");
    CHECK(odd->contains(*IpAddr::parse("198.19.200.1")));
    CHECK_FALSE(odd->contains(*IpAddr::parse("198.20.0.1")));
    CHECK(Cidr::parse("2001:db8::/32")->contains(*IpAddr::parse("2001:db8:ffff::1")));
    CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddr::parse("203.0.113.1")));
    for (const char* bad : {"198.18.0.0/33", "2001:db8::/129", "198.18.0.0", "198.18.0.0/",
                            "198.18.0.0/-1", "198.18.0.0/+8", "x/8", "198.18.0.0/8/8"}) {
        CAPTURE(bad);
        CHECK_FALSE(Cidr::parse(bad).has_value());
    }
}

TEST_CASE("state: network/ip and ip:port forms") {
    auto a = NetworkAddress::parse("/198.19.0.10");
    REQUIRE(a);
    CHECK(a->network.empty());
    CHECK(a->to_string() == "/198.19.0.10");
    auto b = NetworkAddress::parse("remote/2001:db8::5");
    REQUIRE(b);
    CHECK(b->network == "remote");
    CHECK_FALSE(NetworkAddress::parse("198.19.0.10").has_value());
    CHECK_FALSE(NetworkAddress::parse("net/host.example").has_value());

    auto s = SocketAddr::parse("[2001:db8::1]:15008");
    REQUIRE(s);
    CHECK(s->port == 15008);
    CHECK(s->to_string() == "[2001:db8::1]:15008");
    CHECK(SocketAddr::parse("198.18.0.1:80")->to_string() == "198.18.0.1:80");
    for (const char* bad : {"198.18.0.1", "198.18.0.1:0", "198.18.0.1:65536", "2001:db8::1:80",
                            "[198.18.0.1]:80", "[2001:db8::1]80"}) {
        CAPTURE(bad);
        CHECK_FALSE(SocketAddr::parse(bad).has_value());
    }
}
