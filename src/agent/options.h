#pragma once

// The command line and environment of `ztunnel-agent` (docs/contract.md §10): every flag also has
// the environment variable ztunnel uses for the same setting, a flag beating its variable. Parsing
// is a pure function of (argv, environment), tested without starting anything.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "zt/result.h"

namespace zt::agent {

// ServerAddress is a control-plane address split into host and port.
struct ServerAddress {
    std::string host;  // DNS name or address literal, without brackets.
    uint16_t port = 0;
};

// parse_server_address reads `XDS_ADDRESS` / `CA_ADDRESS` forms: `host:port`, `https://host:port`
// or `[v6]:port`, a missing port meaning 443 as in a URL. Fails with `Errc::invalid_argument` on
// another scheme (`http://` would be plaintext, which istiod's 15012 never speaks), a path, an
// empty host or a bad port.
Result<ServerAddress> parse_server_address(std::string_view text);

// AgentOptions is one parsed `ztunnel-agent` command line.
struct AgentOptions {
    std::string config_out;   // --config-out: ztunnel's config file, written by the agent.
    std::string static_file;  // --static: a §2 file merged into it ("" = none).
    bool xds_enabled = true;  // false when --xds-address "" (or XDS_ADDRESS="").
    ServerAddress xds_address{"istiod.istio-system.svc", 15012};
    std::string xds_root_cert = "/var/run/secrets/istio/root-cert.pem";
    std::string alt_xds_hostname;  // ALT_XDS_HOSTNAME: the name istiod's certificate proves.
    std::string token_file = "/var/run/secrets/tokens/istio-token";
    std::string cluster_id = "Kubernetes";
    std::string trust_domain = "cluster.local";
    std::string admin_addr = "127.0.0.1:15098";
    // Part 2 of the agent (the CA client and ZDS, issue 18) reads these; they are parsed now so
    // deployments can set them already.
    bool ca_enabled = true;
    ServerAddress ca_address{"istiod.istio-system.svc", 15012};
    std::string ca_root_cert = "/var/run/secrets/istio/root-cert.pem";
    std::string alt_ca_hostname;
    std::string cert_dir;
    std::string netns_dir;
    bool inpod_enabled = true;
    std::string inpod_uds = "/var/run/ztunnel/ztunnel.sock";
    std::string ztunnel_admin = "127.0.0.1:15000";
    int64_t secret_ttl_ns = 24 * 3600 * int64_t(1'000'000'000);
    // write_cost_factor (AGENT_WRITE_COST_FACTOR, environment only): config writes are spaced by
    // this many times the CPU cost of the last one (see `WriterOptions::cost_factor`).
    double write_cost_factor = 4.0;
    // write_min_interval_ns (AGENT_WRITE_MIN_INTERVAL_MS, environment only): config writes start
    // at least this far apart (see `WriterOptions::min_interval_ns`).
    int64_t write_min_interval_ns = 500'000'000;
    // XDS_HEADER_<NAME>=value pairs, name lower-cased ('_' kept), sent on the ADS stream.
    std::vector<std::pair<std::string, std::string>> xds_headers;
    bool log_json = false;
    std::string log_level = "info";
    bool help = false;
    bool version = false;
};

// AgentOptionsError explains a usage error.
struct AgentOptionsError {
    std::string message;
};

// parse_agent_options parses `argv` (without the program name) with `env` as the environment.
// Fails with `Errc::invalid_argument` and a message on an unknown flag, a missing or bad value, or
// a missing --config-out; `--help` / `--version` set their flag and succeed.
Result<AgentOptions> parse_agent_options(
        int argc, const char* const* argv,
        const std::vector<std::pair<std::string, std::string>>& env, AgentOptionsError& error);

// kAgentUsage is what `ztunnel-agent --help` prints.
extern const char* const kAgentUsage;

}  // namespace zt::agent
