// Unit tests for hbone/connect: the strict `:authority` parser (docs/reliability.md §6a B3, B6) and
// the HBONE request headers built from caller data (docs/ztunnel-reference.md §2.3).

#include "hbone/connect.h"

#include <string>

#include <doctest/doctest.h>

using zt::Errc;
using zt::hbone::Authority;
using zt::hbone::AuthorityKind;
using zt::hbone::parse_authority;

TEST_CASE("hbone: authority accepts ip:port, [ipv6]:port and hostname:port") {
    auto v4 = parse_authority("10.1.2.3:8080");
    REQUIRE(v4);
    CHECK(v4->kind == AuthorityKind::ipv4);
    CHECK(v4->port == 8080);
    CHECK(v4->ip[0] == 10);
    CHECK(v4->ip[3] == 3);
    CHECK(zt::hbone::format_authority(*v4) == "10.1.2.3:8080");

    auto v6 = parse_authority("[2001:db8::1]:443");
    REQUIRE(v6);
    CHECK(v6->kind == AuthorityKind::ipv6);
    CHECK(v6->ip[0] == 0x20);
    CHECK(v6->ip[15] == 1);
    CHECK(zt::hbone::format_authority(*v6) == "[2001:db8::1]:443");

    auto host = parse_authority("reviews.default.svc.cluster.local:9080");
    REQUIRE(host);
    CHECK(host->kind == AuthorityKind::hostname);
    CHECK(host->host == "reviews.default.svc.cluster.local");
    CHECK(host->port == 9080);

    CHECK(parse_authority("198.18.0.1:1")->port == 1);
    CHECK(parse_authority("198.18.0.1:65535")->port == 65535);
    // IPv4-mapped IPv6 parses; refusing it as an IP mismatch is src/'s job (B4).
    CHECK(parse_authority("[::ffff:127.0.0.1]:80"));
}

TEST_CASE("hbone: authority refuses what inet_aton or a lenient parser would accept") {
    const char* bad[] = {
            "",                   // empty
            "10.0.0.1",           // no port
            "10.0.0.1:",          // empty port
            "10.0.0.1:0",         // port 0
            "10.0.0.1:65536",     // port too large
            "10.0.0.1:080",       // leading zero
            "10.0.0.1:+80",       // sign
            "10.0.0.1:8a",        // not decimal
            "10.0.0.1:123456",    // too many digits
            "127.1:80",           // inet_aton shorthand (B6)
            "0x7f.0.0.1:80",      // hex octet (B6)
            "010.0.0.1:80",       // octal-looking octet (B6)
            "1.2.3.4.5:80",       // numeric last label
            "user@h:1",           // userinfo (B3)
            "2001:db8::1:80",     // unbracketed IPv6
            "[2001:db8::1]",      // no port
            "[2001:db8::1]80",    // missing colon
            "[fe80::1%eth0]:80",  // zone id
            "[]:80",              // empty address
            "[10.0.0.1]:80",      // IPv4 in brackets
            ":80",                // no host
            "-bad.example:80",    // label starts with hyphen
            "bad-.example:80",    // label ends with hyphen
            "a..b:80",            // empty label
            "host_name:80",       // underscore
            "host name:80",       // space
            "10.0.0.1:80\r\n",    // trailing garbage
    };
    for (const char* text : bad) {
        CAPTURE(text);
        auto parsed = parse_authority(text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().code == Errc::bad_authority);
    }
    std::string long_label(64, 'a');
    CHECK_FALSE(parse_authority(long_label + ".example:80"));
    std::string too_long(300, 'a');
    CHECK_FALSE(parse_authority(too_long + ":80"));
    std::string nul("10.0.0.1\0:80", 12);
    CHECK_FALSE(parse_authority(nul));
}

TEST_CASE("hbone: baggage, forwarded and traceparent are built from caller data") {
    zt::hbone::BaggageFields fields;
    fields.cluster = "Kubernetes";
    fields.namespace_name = "default";
    fields.workload_type = "deployment";
    fields.workload_name = "productpage-v1";
    fields.service_name = "productpage";
    fields.service_version = "v1";
    CHECK(zt::hbone::build_baggage(fields) ==
          "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,"
          "k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1");
    fields = {};
    fields.zone = "z1";
    CHECK(zt::hbone::build_baggage(fields) == "cloud.availability_zone=z1");
    CHECK(zt::hbone::build_baggage({}).empty());

    CHECK(zt::hbone::build_forwarded("198.18.0.5:41000", "") == "for=\"198.18.0.5:41000\"");
    CHECK(zt::hbone::build_forwarded("198.18.0.5:41000", "reviews.default.svc.cluster.local") ==
          "for=\"198.18.0.5:41000\";host=reviews.default.svc.cluster.local");

    std::array<uint8_t, 16> trace{};
    std::array<uint8_t, 8> parent{};
    for (size_t i = 0; i < trace.size(); i++) {
        trace[i] = static_cast<uint8_t>(0xa0 + i);
    }
    parent[7] = 0xff;
    std::string tp = zt::hbone::build_traceparent(trace, parent);
    CHECK(tp == "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-00000000000000ff-00");
    CHECK(zt::hbone::is_valid_traceparent(tp));
    CHECK_FALSE(zt::hbone::is_valid_traceparent(tp.substr(1)));
    tp[5] = 'X';
    CHECK_FALSE(zt::hbone::is_valid_traceparent(tp));
}

TEST_CASE("hbone: only 200, 400, 401 and 503 are HBONE statuses") {
    CHECK(zt::hbone::is_hbone_status(200));
    CHECK(zt::hbone::is_hbone_status(400));
    CHECK(zt::hbone::is_hbone_status(401));
    CHECK(zt::hbone::is_hbone_status(503));
    CHECK_FALSE(zt::hbone::is_hbone_status(404));
    CHECK_FALSE(zt::hbone::is_hbone_status(500));
}
