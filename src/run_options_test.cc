// Tests for run_options.cc: defaults, flags beating variables, ztunnel's worker and drain
// derivations, and every usage error.

#include "src/run_options.h"

#include <vector>

#include <doctest/doctest.h>

namespace {

struct Parsed {
    zt::Result<zt::RunOptions> options;
    std::string error;
};

Parsed parse(std::vector<const char*> args, zt::Environment env = {}, int cores = 2,
             bool ipv6 = true) {
    zt::RunOptionsError error;
    auto options =
            zt::parse_run_options(int(args.size()), args.data(), env, "host1", cores, ipv6, error);
    return {std::move(options), error.message};
}

}  // namespace

TEST_CASE("run options: defaults") {
    auto p = parse({"--config", "/etc/zt/config.json", "--ca-dir", "/var/lib/zt/ca"});
    REQUIRE(p.options);
    const auto& o = *p.options;
    CHECK(o.config_path == "/etc/zt/config.json");
    CHECK(o.node_name == "host1");
    CHECK(o.trust_domain == "cluster.local");
    CHECK(o.cert_ttl_ns == 24 * 3600 * int64_t(1'000'000'000));
    CHECK(o.admin_addr == "127.0.0.1:15000");
    CHECK(o.metrics_addr == "[::]:15020");
    CHECK(o.readiness_addr == "[::]:15021");
    CHECK(o.workers == 2);
    CHECK(o.packet_mark == 1337);
    CHECK(o.drain_timeout_ns == 5'000'000'000);
    CHECK_FALSE(o.log_json);
    CHECK(o.log_level == "info");

    auto v4 = parse({"--config", "c", "--cert-dir", "d"}, {}, 2, false);
    REQUIRE(v4.options);
    CHECK(v4.options->metrics_addr == "0.0.0.0:15020");
}

TEST_CASE("run options: a flag beats its variable; variables beat defaults") {
    zt::Environment env = {{"LOCAL_XDS_PATH", "/from/env.json"},
                           {"NODE_NAME", "node-env"},
                           {"PACKET_MARK", "0x111"},
                           {"RUST_LOG", "warn,access=info"},
                           {"LOG_FORMAT", "json"},
                           {"ZTUNNEL_WORKER_THREADS", "3"}};
    auto from_env = parse({"--cert-dir", "/certs"}, env);
    REQUIRE(from_env.options);
    CHECK(from_env.options->config_path == "/from/env.json");
    CHECK(from_env.options->node_name == "node-env");
    CHECK(from_env.options->packet_mark == 0x111);
    CHECK(from_env.options->log_level == "warn,access=info");
    CHECK(from_env.options->log_json);
    CHECK(from_env.options->workers == 3);

    auto flags = parse({"--cert-dir", "/certs", "--config=/from/flag.json", "--node", "node-flag",
                        "--workers", "1", "--log-format", "plain"},
                       env);
    REQUIRE(flags.options);
    CHECK(flags.options->config_path == "/from/flag.json");
    CHECK(flags.options->node_name == "node-flag");
    CHECK(flags.options->workers == 1);
    CHECK_FALSE(flags.options->log_json);

    // ZTUNNEL_CONFIG wins over LOCAL_XDS_PATH when both are set.
    auto both = parse({"--cert-dir", "/c"},
                      {{"LOCAL_XDS_PATH", "/b.json"}, {"ZTUNNEL_CONFIG", "/a.json"}});
    REQUIRE(both.options);
    CHECK(both.options->config_path == "/a.json");
}

TEST_CASE("run options: ztunnel's worker count forms") {
    CHECK(zt::default_workers(1) == 2);
    CHECK(zt::default_workers(8) == 2);
    CHECK(zt::default_workers(9) == 3);
    CHECK(zt::default_workers(64) == 16);
    auto percent = parse({"--config", "c", "--ca-dir", "d", "--workers", "50%"}, {}, 8);
    REQUIRE(percent.options);
    CHECK(percent.options->workers == 4);
    auto all = parse({"--config", "c", "--ca-dir", "d", "--workers", "0"}, {}, 6);
    REQUIRE(all.options);
    CHECK(all.options->workers == 6);
}

TEST_CASE("run options: drain deadline derivation") {
    auto drain = [](zt::Environment env) {
        zt::RunOptionsError error;
        auto got = zt::default_drain_timeout_ns(env, error);
        REQUIRE(got);
        return *got / 1'000'000'000;
    };
    CHECK(drain({}) == 5);
    CHECK(drain({{"TERMINATION_GRACE_PERIOD_SECONDS", "30"}}) == 25);
    CHECK(drain({{"TERMINATION_GRACE_PERIOD_SECONDS", "10"}}) == 9);
    CHECK(drain({{"TERMINATION_GRACE_PERIOD_SECONDS", "1"}}) == 1);
    CHECK(drain({{"TERMINATION_GRACE_PERIOD_SECONDS", "0"}}) == 1);
    CHECK(drain({{"TERMINATION_GRACE_PERIOD_SECONDS", "30"},
                 {"CONNECTION_TERMINATION_DEADLINE", "7s"}}) == 7);
    for (zt::Environment bad : std::vector<zt::Environment>{
                 {{"TERMINATION_GRACE_PERIOD_SECONDS", "30s"}},
                 {{"TERMINATION_GRACE_PERIOD_SECONDS", "-3"}},
                 {{"TERMINATION_GRACE_PERIOD_SECONDS", "99999999999999999999"}},
                 {{"CONNECTION_TERMINATION_DEADLINE", "5"}}}) {
        zt::RunOptionsError error;
        CHECK_FALSE(zt::default_drain_timeout_ns(bad, error).has_value());
        CHECK_FALSE(error.message.empty());
    }
    auto flag = parse({"--config", "c", "--ca-dir", "d", "--drain-timeout", "2s"},
                      {{"TERMINATION_GRACE_PERIOD_SECONDS", "30"}});
    REQUIRE(flag.options);
    CHECK(flag.options->drain_timeout_ns == 2'000'000'000);
}

TEST_CASE("run options: POOL_MAX_STREAMS_PER_CONNECTION sets the streams per HBONE connection") {
    auto streams = [](const char* value) {
        auto p = parse({"--config", "c", "--ca-dir", "d"},
                       {{"POOL_MAX_STREAMS_PER_CONNECTION", value}});
        return p.options ? int64_t(p.options->pool_streams_max) : -1;
    };
    auto unset = parse({"--config", "c", "--ca-dir", "d"});
    REQUIRE(unset.options);
    CHECK(unset.options->pool_streams_max == 100);  // ztunnel's default
    CHECK(streams("1") == 1);
    CHECK(streams("250") == 250);
    CHECK(streams("65535") == 65535);
    for (const char* bad : {"0", "65536", "-1", "", "ten", "10 ", "1.5"}) {
        CAPTURE(bad);
        auto p = parse({"--config", "c", "--ca-dir", "d"},
                       {{"POOL_MAX_STREAMS_PER_CONNECTION", bad}});
        REQUIRE_FALSE(p.options);
        CHECK(p.options.error().code == zt::Errc::invalid_argument);
        CHECK(p.error.find("POOL_MAX_STREAMS_PER_CONNECTION: invalid value") == 0);
    }
}

TEST_CASE("run options: usage errors name the flag") {
    struct Case {
        std::vector<const char*> args;
        const char* expected;
    };

    std::vector<Case> cases = {
            {{"--ca-dir", "d"}, "--config is required"},
            {{"--config", "c"}, "exactly one of --ca-dir and --cert-dir"},
            {{"--config", "c", "--ca-dir", "d", "--cert-dir", "e"}, "exactly one of"},
            {{"--config", "c", "--ca-dir", "d", "--bogus"}, "unknown flag: --bogus"},
            {{"--config"}, "--config: missing value"},
            {{"--config", "c", "--ca-dir", "d", "--workers", "many"}, "--workers: invalid value"},
            {{"--config", "c", "--ca-dir", "d", "--cert-ttl", "5"}, "--cert-ttl: invalid value"},
            {{"--config", "c", "--ca-dir", "d", "--log-format", "xml"}, "--log-format"},
            {{"--config", "c", "--ca-dir", "d", "--packet-mark", "-1"}, "--packet-mark"},
    };
    for (const Case& c : cases) {
        auto p = parse(c.args);
        CAPTURE(c.expected);
        REQUIRE_FALSE(p.options);
        CHECK(p.options.error().code == zt::Errc::invalid_argument);
        CHECK(p.error.find(c.expected) != std::string::npos);
    }
    auto bad_env = parse({"--config", "c", "--ca-dir", "d"}, {{"SECRET_TTL", "forever"}});
    REQUIRE_FALSE(bad_env.options);
    CHECK(bad_env.error.find("SECRET_TTL") != std::string::npos);

    auto help = parse({"--help"});
    REQUIRE(help.options);
    CHECK(help.options->help);
}

TEST_CASE("run options: the DNS proxy's settings") {
    auto defaults = parse({"--config", "c", "--cert-dir", "d"});
    REQUIRE(defaults.options);
    CHECK(defaults.options->dns_capture);
    CHECK(defaults.options->dns_upstreams.empty());
    CHECK(defaults.options->cluster_domain == "cluster.local");
    CHECK(defaults.options->ipv6_enabled);
    CHECK(defaults.options->preferred_service_namespace.empty());

    // ISTIO_META_DNS_CAPTURE: on for `true` in any case, off for anything else (ztunnel).
    for (auto [value, on] :
         {std::pair{"true", true}, {"TRUE", true}, {"false", false}, {"yes", false}, {"", false}}) {
        CAPTURE(value);
        auto p = parse({"--config", "c", "--cert-dir", "d"}, {{"ISTIO_META_DNS_CAPTURE", value}});
        REQUIRE(p.options);
        CHECK(p.options->dns_capture == on);
    }
    // The flag is strict and beats the variable.
    auto flag = parse({"--config", "c", "--cert-dir", "d", "--dns-capture", "false"},
                      {{"ISTIO_META_DNS_CAPTURE", "true"}});
    REQUIRE(flag.options);
    CHECK_FALSE(flag.options->dns_capture);
    auto bad_flag = parse({"--config", "c", "--cert-dir", "d", "--dns-capture", "yes"});
    CHECK_FALSE(bad_flag.options);
    CHECK(bad_flag.error == "--dns-capture: invalid value \"yes\"");

    auto upstreams = parse({"--config", "c", "--cert-dir", "d", "--dns-upstream",
                            "198.18.0.53,[2001:db8::53]:5353"});
    REQUIRE(upstreams.options);
    REQUIRE(upstreams.options->dns_upstreams.size() == 2);
    CHECK(upstreams.options->dns_upstreams[0].to_string() == "198.18.0.53:53");
    CHECK(upstreams.options->dns_upstreams[1].to_string() == "[2001:db8::53]:5353");
    auto bad_upstream = parse({"--config", "c", "--cert-dir", "d", "--dns-upstream", "kube-dns"});
    CHECK_FALSE(bad_upstream.options);
    CHECK(bad_upstream.error == "--dns-upstream: invalid value \"kube-dns\"");

    auto env = parse({"--config", "c", "--cert-dir", "d"},
                     {{"CLUSTER_DOMAIN", "corp.example."},
                      {"IPV6_ENABLED", "false"},
                      {"PREFERED_SERVICE_NAMESPACE", "istio-system"}});
    REQUIRE(env.options);
    CHECK(env.options->cluster_domain == "corp.example");
    CHECK_FALSE(env.options->ipv6_enabled);
    CHECK(env.options->preferred_service_namespace == "istio-system");
    auto domain_flag = parse({"--config", "c", "--cert-dir", "d", "--cluster-domain", "k8s.test"},
                             {{"CLUSTER_DOMAIN", "corp.example"}});
    REQUIRE(domain_flag.options);
    CHECK(domain_flag.options->cluster_domain == "k8s.test");

    auto bad_ipv6 = parse({"--config", "c", "--cert-dir", "d"}, {{"IPV6_ENABLED", "yes"}});
    CHECK_FALSE(bad_ipv6.options);
    CHECK(bad_ipv6.error == "IPV6_ENABLED: invalid value \"yes\" (true or false)");
    auto bad_domain = parse({"--config", "c", "--cert-dir", "d"}, {{"CLUSTER_DOMAIN", "a..b"}});
    CHECK_FALSE(bad_domain.options);
    CHECK(bad_domain.error == "CLUSTER_DOMAIN: invalid value \"a..b\"");
}

TEST_CASE("run options: the proxy's caps come from flags or their variables") {
    auto unset = parse({"--config", "c", "--ca-dir", "d"});
    REQUIRE(unset.options);
    CHECK(unset.options->limits.pending_handshakes == 1024);
    CHECK(unset.options->limits.hbone_connections == 16384);
    CHECK(unset.options->limits.peer_connections == 1024);
    CHECK(unset.options->limits.peer_streams == 4096);
    CHECK(unset.options->limits.fd_reserve == 64);
    auto set = parse({"--config", "c", "--ca-dir", "d", "--max-pending-handshakes", "7",
                      "--max-peer-streams", "0", "--fd-reserve", "10"},
                     {{"ZTUNNEL_MAX_PENDING_HANDSHAKES", "9"},
                      {"ZTUNNEL_MAX_HBONE_CONNECTIONS", "100"},
                      {"ZTUNNEL_MAX_PEER_CONNECTIONS", "3"}});
    REQUIRE(set.options);
    CHECK(set.options->limits.pending_handshakes == 7);  // The flag beats its variable.
    CHECK(set.options->limits.hbone_connections == 100);
    CHECK(set.options->limits.peer_connections == 3);
    CHECK(set.options->limits.peer_streams == 0);  // No cap.
    CHECK(set.options->limits.fd_reserve == 10);
    for (const char* bad : {"-1", "", "many", "10000001"}) {
        CAPTURE(bad);
        auto p = parse({"--config", "c", "--ca-dir", "d"}, {{"ZTUNNEL_FD_RESERVE", bad}});
        REQUIRE_FALSE(p.options);
        CHECK(p.error.find("ZTUNNEL_FD_RESERVE: invalid value") == 0);
    }
}

TEST_CASE("run options: the memory shedding marks come from flags or their variables") {
    auto unset = parse({"--config", "c", "--ca-dir", "d"});
    REQUIRE(unset.options);
    CHECK(unset.options->limits.memory_shed_ratio == doctest::Approx(0.9));
    CHECK(unset.options->limits.memory_resume_ratio == doctest::Approx(0.8));
    auto set = parse({"--config", "c", "--ca-dir", "d", "--memory-resume-ratio", "0.5"},
                     {{"ZTUNNEL_MEMORY_SHED_RATIO", "0.75"}});
    REQUIRE(set.options);
    CHECK(set.options->limits.memory_shed_ratio == doctest::Approx(0.75));
    CHECK(set.options->limits.memory_resume_ratio == doctest::Approx(0.5));
    auto off = parse({"--config", "c", "--ca-dir", "d", "--memory-shed-ratio", "0"});
    REQUIRE(off.options);  // 0 turns shedding off, whatever the resume mark.
    CHECK(off.options->limits.memory_shed_ratio == 0);
    for (const char* bad : {"-0.1", "", "1.5", "90%", "0.9x", "nan", "inf", "1e-1"}) {
        CAPTURE(bad);
        auto p = parse({"--config", "c", "--ca-dir", "d", "--memory-shed-ratio", bad});
        REQUIRE_FALSE(p.options);
        CHECK(p.error.find("--memory-shed-ratio: invalid value") == 0);
    }
    auto inverted = parse({"--config", "c", "--ca-dir", "d", "--memory-shed-ratio", "0.7"});
    REQUIRE_FALSE(inverted.options);  // The default resume mark, 0.8, is not below 0.7.
    CHECK(inverted.error == "--memory-resume-ratio must be below --memory-shed-ratio");
}
