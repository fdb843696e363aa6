// Tests for the forwarder's upstream sources: resolv.conf as Kubernetes and systemd write it
// (search lists and options ignored, comments, IPv6, zones skipped), a real file read back, and
// the `--dns-upstream` list with and without ports.

#include "src/dns/resolv_conf.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include <doctest/doctest.h>

TEST_CASE("dns resolv.conf: nameservers in order; search, options and comments ignored") {
    auto conf = zt::dns::parse_resolv_conf(
            "# written by kubelet\n"
            "search istio-system.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 198.18.0.10\n"
            "nameserver\t2001:db8::53 ; trailing comment\n"
            "  nameserver 198.18.0.11   \r\n"
            "nameserver fe80::1%eth0\n"
            "nameservers 198.18.0.99\n"
            "nameserver not-an-ip\n"
            "options ndots:5 timeout:2\n"
            "nameserver 198.18.0.12");
    REQUIRE(conf.nameservers.size() == 4);
    CHECK(conf.nameservers[0].to_string() == "198.18.0.10:53");
    CHECK(conf.nameservers[1].to_string() == "[2001:db8::53]:53");
    CHECK(conf.nameservers[2].to_string() == "198.18.0.11:53");
    CHECK(conf.nameservers[3].to_string() == "198.18.0.12:53");
    REQUIRE(conf.skipped.size() == 2);
    CHECK(conf.skipped[0] == "fe80::1%eth0");
    CHECK(conf.skipped[1] == "not-an-ip");
    CHECK(zt::dns::parse_resolv_conf("").nameservers.empty());
}

TEST_CASE("dns resolv.conf: a file is read; a missing one is an error") {
    char path[] = "/tmp/zt-resolv-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    std::string text = "nameserver 198.18.7.7\n";
    REQUIRE(write(fd, text.data(), text.size()) == ssize_t(text.size()));
    close(fd);
    auto conf = zt::dns::read_resolv_conf(path);
    unlink(path);
    REQUIRE(conf);
    REQUIRE(conf->nameservers.size() == 1);
    CHECK(conf->nameservers[0].to_string() == "198.18.7.7:53");
    auto missing = zt::dns::read_resolv_conf(path);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().sys_errno == ENOENT);
}

TEST_CASE("dns resolv.conf: --dns-upstream takes addresses with optional ports") {
    auto list = zt::dns::parse_upstreams(
            "198.18.0.53, 198.18.0.54:5353,[2001:db8::1]:53,2001:db8::2,[2001:db8::3]");
    REQUIRE(list);
    REQUIRE(list->size() == 5);
    CHECK((*list)[0].to_string() == "198.18.0.53:53");
    CHECK((*list)[1].to_string() == "198.18.0.54:5353");
    CHECK((*list)[2].to_string() == "[2001:db8::1]:53");
    CHECK((*list)[3].to_string() == "[2001:db8::2]:53");
    CHECK((*list)[4].to_string() == "[2001:db8::3]:53");
    CHECK_FALSE(zt::dns::parse_upstreams(""));
    CHECK_FALSE(zt::dns::parse_upstreams("198.18.0.53,"));
    CHECK_FALSE(zt::dns::parse_upstreams("dns.example:53"));
    CHECK_FALSE(zt::dns::parse_upstreams("198.18.0.53:0"));
    CHECK_FALSE(zt::dns::parse_upstreams("198.18.0.53:99999"));
}
