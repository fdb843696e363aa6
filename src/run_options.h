#pragma once

// The flags of `ztunnel run` (docs/contract.md §1), each also read from its environment variable, a
// flag beating its variable. Parsing is a pure function of (argv, environment, core count) so it is
// tested without starting anything.

#include <cstdint>
#include <string>
#include <vector>

#include "src/state/net.h"
#include "zt/result.h"

namespace zt {

// RunOptions is the parsed configuration of one `ztunnel run`.
struct RunOptions {
    std::string config_path;
    std::string node_name;
    std::string ca_dir;    // Local CA mode when set.
    std::string cert_dir;  // File mode when set; exactly one of ca_dir and cert_dir.
    std::string trust_domain = "cluster.local";
    int64_t cert_ttl_ns = 24 * 3600 * int64_t(1'000'000'000);
    std::string admin_addr = "127.0.0.1:15000";
    std::string metrics_addr;    // Default depends on IPv6 support: see `parse_run_options`.
    std::string readiness_addr;  // Same.
    int workers = 2;
    uint32_t packet_mark = 1337;
    int64_t drain_timeout_ns = 5 * int64_t(1'000'000'000);
    // pool_streams_max is POOL_MAX_STREAMS_PER_CONNECTION (environment only, like ztunnel): a
    // pooled HBONE connection leaves the pool when it carries this many streams; 1 means a new
    // HBONE connection (a full mTLS handshake) for every new outbound connection.
    uint32_t pool_streams_max = 100;

    // The proxy's caps, per worker thread (README "Limits"); 0 disables one.
    struct Limits {
        uint32_t pending_handshakes = 1024;  // --max-pending-handshakes
        uint32_t hbone_connections = 16384;  // --max-hbone-connections
        uint32_t peer_connections = 1024;    // --max-peer-connections
        uint32_t peer_streams = 4096;        // --max-peer-streams
        uint32_t fd_reserve = 64;            // --fd-reserve
        // Memory pressure (process-wide, src/proxy/memory_pressure.h): new work is shed when
        // the cgroup's working set reaches memory_shed_ratio of its limit (0: never), until it
        // falls below memory_resume_ratio (lower).
        double memory_shed_ratio = 0.9;    // --memory-shed-ratio
        double memory_resume_ratio = 0.8;  // --memory-resume-ratio
    } limits;

    bool log_json = false;
    std::string log_level = "info";
    bool help = false;

    // The DNS proxy (docs/ztunnel-reference.md §8, §11). Parsed and validated; the workers do not
    // serve DNS yet (README "DNS proxy"). dns_capture is ISTIO_META_DNS_CAPTURE (on unless set to
    // something other than `true`) or
    // --dns-capture true|false: whether each pod gets the proxy on 15053.
    bool dns_capture = true;
    // dns_upstreams is --dns-upstream; empty means the nameservers of /etc/resolv.conf.
    std::vector<state::SocketAddr> dns_upstreams;
    // cluster_domain is CLUSTER_DOMAIN or --cluster-domain: the suffix of Kubernetes names.
    std::string cluster_domain = "cluster.local";
    // ipv6_enabled is IPV6_ENABLED (`true` or `false`): when false the proxy answers no AAAA
    // records for mesh names.
    bool ipv6_enabled = true;
    // preferred_service_namespace is PREFERED_SERVICE_NAMESPACE (sic, ztunnel's spelling): the
    // tie-break namespace for services sharing a hostname in DNS answers. Empty: none.
    std::string preferred_service_namespace;
};

// Environment is the subset of the process environment the options read, as name=value pairs.
using Environment = std::vector<std::pair<std::string, std::string>>;

// RunOptionsError explains a usage error: which flag or variable and why. `parse_run_options`
// fills it when it fails with `Errc::invalid_argument`.
struct RunOptionsError {
    std::string message;
};

// default_workers is ztunnel's default worker count: max(2, ceil(25 % of `cores`)).
int default_workers(int cores);

// default_drain_timeout_ns derives the drain deadline like ztunnel (docs/ztunnel-reference.md
// §10.2): CONNECTION_TERMINATION_DEADLINE if set, else from TERMINATION_GRACE_PERIOD_SECONDS G as
// G-5 s when G > 10, else G-1 s, at least 1 s; 5 s when neither is set.
Result<int64_t> default_drain_timeout_ns(const Environment& env, RunOptionsError& error);

// parse_run_options parses the arguments after `run` (`argc`/`argv` exclude the command name)
// with `env` as the environment, `hostname` as the default node name, `cores` for the worker
// default and `ipv6` saying whether the host has IPv6 (for the wildcard listen defaults). It
// fails with `Errc::invalid_argument` and a message in `error` on an unknown flag, a missing or
// bad value, or a missing --config; `--help` sets `help` and succeeds.
Result<RunOptions> parse_run_options(int argc, const char* const* argv, const Environment& env,
                                     const std::string& hostname, int cores, bool ipv6,
                                     RunOptionsError& error);

// kRunUsage is the text `ztunnel run --help` prints.
extern const char* const kRunUsage;

}  // namespace zt
