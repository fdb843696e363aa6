// Unit tests for ztunnel-agent's command line: defaults, flags over environment variables,
// XDS_ADDRESS forms, turning xDS off with "", XDS_HEADER_* and the usage errors.

#include "src/agent/options.h"

#include <doctest/doctest.h>

using namespace zt::agent;

namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

zt::Result<AgentOptions> parse(std::vector<const char*> args, const Env& env,
                               AgentOptionsError& error) {
    return parse_agent_options(int(args.size()), args.data(), env, error);
}

}  // namespace

TEST_CASE("agent options: defaults are the contract's") {
    AgentOptionsError error;
    auto o = parse({"--config-out", "/run/zt/config.json"}, {}, error);
    REQUIRE(o);
    CHECK(o->config_out == "/run/zt/config.json");
    CHECK(o->xds_enabled);
    CHECK(o->xds_address.host == "istiod.istio-system.svc");
    CHECK(o->xds_address.port == 15012);
    CHECK(o->xds_root_cert == "/var/run/secrets/istio/root-cert.pem");
    CHECK(o->token_file == "/var/run/secrets/tokens/istio-token");
    CHECK(o->cluster_id == "Kubernetes");
    CHECK(o->admin_addr == "127.0.0.1:15098");
    CHECK(o->static_file.empty());
    CHECK_FALSE(o->log_json);
}

TEST_CASE("agent options: the environment, and flags over it") {
    AgentOptionsError error;
    Env env = {{"XDS_ADDRESS", "https://istiod.example:443"},
               {"XDS_ROOT_CA", "/etc/roots.pem"},
               {"CLUSTER_ID", "c2"},
               {"ALT_XDS_HOSTNAME", "istiod.istio-system.svc"},
               {"XDS_HEADER_X_Extra", "v"},
               {"LOG_FORMAT", "json"},
               {"RUST_LOG", "debug"}};
    auto o = parse({"--config-out=/c.json", "--cluster-id", "c3"}, env, error);
    REQUIRE(o);
    CHECK(o->xds_address.host == "istiod.example");
    CHECK(o->xds_address.port == 443);
    CHECK(o->xds_root_cert == "/etc/roots.pem");
    CHECK(o->cluster_id == "c3");
    CHECK(o->alt_xds_hostname == "istiod.istio-system.svc");
    REQUIRE(o->xds_headers.size() == 1);
    CHECK(o->xds_headers[0].first == "x_extra");
    CHECK(o->xds_headers[0].second == "v");
    CHECK(o->log_json);
    CHECK(o->log_level == "debug");

    // ISTIO_META_CLUSTER_ID wins over CLUSTER_ID, as in ztunnel.
    auto meta = parse({"--config-out", "x"}, {{"CLUSTER_ID", "a"}, {"ISTIO_META_CLUSTER_ID", "b"}},
                      error);
    REQUIRE(meta);
    CHECK(meta->cluster_id == "b");
}

TEST_CASE("agent options: an empty address turns xDS off, from a flag or the environment") {
    AgentOptionsError error;
    auto flag = parse({"--config-out", "x", "--xds-address", ""}, {}, error);
    REQUIRE(flag);
    CHECK_FALSE(flag->xds_enabled);
    auto env = parse({"--config-out", "x"}, {{"XDS_ADDRESS", ""}}, error);
    REQUIRE(env);
    CHECK_FALSE(env->xds_enabled);
    auto back = parse({"--config-out", "x", "--xds-address", "198.18.0.1:15012"},
                      {{"XDS_ADDRESS", ""}}, error);
    REQUIRE(back);
    CHECK(back->xds_enabled);
    CHECK(back->xds_address.host == "198.18.0.1");
}

TEST_CASE("agent options: server address forms") {
    auto v6 = parse_server_address("https://[2001:db8::1]:15012");
    REQUIRE(v6);
    CHECK(v6->host == "2001:db8::1");
    CHECK(v6->port == 15012);
    auto no_port = parse_server_address("istiod.istio-system.svc");
    REQUIRE(no_port);
    CHECK(no_port->port == 443);
    auto slash = parse_server_address("https://istiod:15012/");
    REQUIRE(slash);
    CHECK(slash->host == "istiod");
    for (const char* bad :
         {"http://istiod:15012", "istiod:0", "istiod:70000", "istiod:", "2001:db8::1",
          "[2001:db8::1", "https://", "istiod:15012/path", "[]:1", "istiod:x"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_server_address(bad));
    }
}

TEST_CASE("agent options: usage errors name what is wrong") {
    AgentOptionsError error;
    CHECK_FALSE(parse({}, {}, error));
    CHECK(error.message == "--config-out is required");
    CHECK_FALSE(parse({"--config-out", "x", "--bogus"}, {}, error));
    CHECK(error.message == "unknown flag --bogus");
    CHECK_FALSE(parse({"--config-out"}, {}, error));
    CHECK(error.message == "--config-out needs a value");
    CHECK_FALSE(parse({"--config-out", "x"}, {{"XDS_ADDRESS", "http://plain:80"}}, error));
    CHECK(error.message.find("XDS_ADDRESS") != std::string::npos);
    CHECK_FALSE(parse({"--config-out", "x"}, {{"SECRET_TTL", "soon"}}, error));
    CHECK_FALSE(parse({"--config-out", "x"}, {{"AGENT_WRITE_COST_FACTOR", "-1"}}, error));
    CHECK_FALSE(parse({"--config-out", "x"}, {{"AGENT_WRITE_COST_FACTOR", "2x"}}, error));
    auto factor = parse({"--config-out", "x"}, {{"AGENT_WRITE_COST_FACTOR", "1.5"}}, error);
    REQUIRE(factor);
    CHECK(factor->write_cost_factor == 1.5);
    CHECK(factor->write_min_interval_ns == 500'000'000);
    CHECK_FALSE(parse({"--config-out", "x"}, {{"AGENT_WRITE_MIN_INTERVAL_MS", "-5"}}, error));
    CHECK_FALSE(parse({"--config-out", "x"}, {{"AGENT_WRITE_MIN_INTERVAL_MS", "1s"}}, error));
    auto interval = parse({"--config-out", "x"}, {{"AGENT_WRITE_MIN_INTERVAL_MS", "250"}}, error);
    REQUIRE(interval);
    CHECK(interval->write_min_interval_ns == 250'000'000);
    auto help = parse({"--help"}, {}, error);
    REQUIRE(help);
    CHECK(help->help);
}
