// Tests for the DNS servers' shared config built from `ztunnel run`'s options: --dns-upstream
// beats resolv.conf, resolv.conf read from a real file, warnings for a missing or useless one,
// and the answer options carried over.

#include "src/dns/settings.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include <doctest/doctest.h>

namespace {

std::string write_temp(const std::string& text) {
    char path[] = "/tmp/zt-dns-settings-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == ssize_t(text.size()));
    close(fd);
    return path;
}

}  // namespace

TEST_CASE("dns settings: the answer options and --dns-upstream come from the run's options") {
    zt::RunOptions options;
    options.cluster_domain = "corp.example";
    options.ipv6_enabled = false;
    options.preferred_service_namespace = "istio-system";
    options.dns_upstreams = {*zt::state::SocketAddr::parse("198.18.0.53:5353")};
    auto settings = zt::dns::server_settings(options, "/nonexistent/resolv.conf");
    CHECK(settings.warnings.empty());  // resolv.conf is not even read.
    CHECK(settings.config.answer.cluster_domain.to_string() == "corp.example");
    CHECK_FALSE(settings.config.answer.ipv6_enabled);
    CHECK(settings.config.answer.preferred_namespace == "istio-system");
    REQUIRE(settings.config.forwarder.upstreams.size() == 1);
    CHECK(settings.config.forwarder.upstreams[0].to_string() == "198.18.0.53:5353");
}

TEST_CASE("dns settings: without --dns-upstream the nameservers of resolv.conf") {
    zt::RunOptions options;
    std::string path = write_temp(
            "search svc.cluster.local\nnameserver 198.18.0.10\n"
            "nameserver fe80::1%eth0\n");
    auto settings = zt::dns::server_settings(options, path);
    unlink(path.c_str());
    REQUIRE(settings.config.forwarder.upstreams.size() == 1);
    CHECK(settings.config.forwarder.upstreams[0].to_string() == "198.18.0.10:53");
    REQUIRE(settings.warnings.size() == 1);
    CHECK(settings.warnings[0].find("fe80::1%eth0") != std::string::npos);
    CHECK(settings.config.answer.cluster_domain.to_string() == "cluster.local");

    std::string empty = write_temp("# nothing\n");
    auto none = zt::dns::server_settings(options, empty);
    unlink(empty.c_str());
    CHECK(none.config.forwarder.upstreams.empty());
    REQUIRE(none.warnings.size() == 1);
    CHECK(none.warnings[0].find("no usable nameserver") != std::string::npos);

    auto missing = zt::dns::server_settings(options, "/nonexistent/resolv.conf");
    CHECK(missing.config.forwarder.upstreams.empty());
    REQUIRE(missing.warnings.size() == 1);
    CHECK(missing.warnings[0].find("cannot read /nonexistent/resolv.conf") != std::string::npos);
}
