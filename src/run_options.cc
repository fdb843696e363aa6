// run_options.cc parses `ztunnel run`'s flags and their environment variables (docs/contract.md
// §1). Nothing here touches the process: the environment, hostname, core count and IPv6 support are
// arguments, so every rule is unit-tested.

#include "src/run_options.h"

#include <charconv>
#include <string_view>

#include "src/dns/names.h"
#include "src/dns/resolv_conf.h"
#include "zt/duration.h"

namespace zt {

const char* const kRunUsage =
        "usage: ztunnel run --config FILE [flags]\n"
        "\n"
        "flags (environment variable in brackets; a flag beats its variable):\n"
        "  --config FILE        JSON config, watched for changes [ZTUNNEL_CONFIG, LOCAL_XDS_PATH]\n"
        "  --node NAME          local node name (default: hostname) [NODE_NAME]\n"
        "  --ca-dir DIR         local CA mode: sign local identities with DIR/ca-key.pem\n"
        "  --cert-dir DIR       file mode: certificates written by an agent into DIR\n"
        "  --trust-domain TD    trust domain of workloads without one (cluster.local) "
        "[TRUST_DOMAIN]\n"
        "  --cert-ttl DUR       certificate validity in local CA mode (24h) [SECRET_TTL]\n"
        "  --admin-addr A       admin HTTP (127.0.0.1:15000)\n"
        "  --metrics-addr A     Prometheus metrics ([::]:15020)\n"
        "  --readiness-addr A   readiness ([::]:15021)\n"
        "  --workers N          data-plane threads (max(2, 25% of cores)) "
        "[ZTUNNEL_WORKER_THREADS]\n"
        "  --packet-mark N      SO_MARK on sockets made in pods (1337) [PACKET_MARK]\n"
        "  --drain-timeout DUR  graceful drain deadline (5s) [CONNECTION_TERMINATION_DEADLINE]\n"
        "  --log-format F       plain or json (plain) [LOG_FORMAT]\n"
        "  --log-level SPEC     level or level,target=level,... (info) [RUST_LOG]\n"
        "  --dns-capture B      DNS proxy on 15053 in each pod, true or false (true)\n"
        "                       [ISTIO_META_DNS_CAPTURE: on unless set to other than true]\n"
        "  --dns-upstream LIST  resolvers to forward to: IP[:PORT],... (the nameservers of\n"
        "                       /etc/resolv.conf)\n"
        "  --cluster-domain D   Kubernetes cluster domain for DNS names (cluster.local)\n"
        "                       [CLUSTER_DOMAIN]\n"
        "\n"
        "limits, per worker thread (0: none; README \"Limits\"):\n"
        "  --max-pending-handshakes N  inbound TLS handshakes in progress (1024)\n"
        "                       [ZTUNNEL_MAX_PENDING_HANDSHAKES]\n"
        "  --max-hbone-connections N  HBONE connections (16384) [ZTUNNEL_MAX_HBONE_CONNECTIONS]\n"
        "  --max-peer-connections N  inbound HBONE connections per peer identity (1024)\n"
        "                       [ZTUNNEL_MAX_PEER_CONNECTIONS]\n"
        "  --max-peer-streams N inbound HBONE streams per peer identity (4096)\n"
        "                       [ZTUNNEL_MAX_PEER_STREAMS]\n"
        "  --fd-reserve N       descriptors kept for listeners and operator servers (64)\n"
        "                       [ZTUNNEL_FD_RESERVE]\n"
        "  --memory-shed-ratio R  shed new connections when the cgroup's working set reaches\n"
        "                       R of its memory limit (0.9; 0: never) [ZTUNNEL_MEMORY_SHED_RATIO]\n"
        "  --memory-resume-ratio R  accept again below R of the limit (0.8)\n"
        "                       [ZTUNNEL_MEMORY_RESUME_RATIO]\n"
        "\n"
        "environment only:\n"
        "  POOL_MAX_STREAMS_PER_CONNECTION  HBONE streams per pooled connection, 1-65535 (100)\n"
        "  IPV6_ENABLED                     true or false: AAAA answers for mesh names (true)\n"
        "  PREFERED_SERVICE_NAMESPACE       DNS tie-break namespace for shared hostnames\n"
        "\n"
        "Exactly one of --ca-dir and --cert-dir. Durations: 500ms, 5s, 10m, 24h.\n";

namespace {

const std::string* find_env(const Environment& env, std::string_view name) {
    for (const auto& [key, value] : env) {
        if (key == name) {
            return &value;
        }
    }
    return nullptr;
}

bool parse_uint(std::string_view text, uint64_t max, uint64_t& out) {
    if (text.empty()) {
        return false;
    }
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc() && end == text.data() + text.size() && out <= max;
}

// Setter applies one option's textual value, from a flag or a variable; `source` names where
// it came from for the error message.
using Setter = bool (*)(RunOptions& options, std::string_view value, int cores);

struct OptionSpec {
    const char* flag;
    const char* env[2];
    Setter set;
};

bool set_duration(int64_t& field, std::string_view value) {
    auto parsed = parse_duration_ns(value);
    if (!parsed) {
        return false;
    }
    field = *parsed;
    return true;
}

// set_count reads a cap: a number up to 10,000,000, 0 meaning none.
bool set_count(uint32_t& field, std::string_view value) {
    uint64_t number = 0;
    if (!parse_uint(value, 10'000'000, number)) {
        return false;
    }
    field = uint32_t(number);
    return true;
}

// set_ratio reads a fraction of a limit: a decimal number from 0 to 1 (e.g. 0.9).
bool set_ratio(double& field, std::string_view value) {
    double number = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number,
                                     std::chars_format::fixed);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
        !(number >= 0 && number <= 1)) {
        return false;
    }
    field = number;
    return true;
}

bool set_workers(RunOptions& options, std::string_view value, int cores) {
    // ztunnel accepts a number, `N%` of the cores, or 0 meaning every core.
    uint64_t number = 0;
    if (!value.empty() && value.back() == '%') {
        if (!parse_uint(value.substr(0, value.size() - 1), 100, number) || number == 0) {
            return false;
        }
        options.workers = int((uint64_t(cores) * number + 99) / 100);
        if (options.workers < 1) {
            options.workers = 1;
        }
        return true;
    }
    if (!parse_uint(value, 1024, number)) {
        return false;
    }
    options.workers = number == 0 ? cores : int(number);
    return true;
}

const OptionSpec kOptions[] = {
        {"--config",
         {"ZTUNNEL_CONFIG", "LOCAL_XDS_PATH"},
         [](RunOptions& o, std::string_view v, int) {
             o.config_path = v;
             return !v.empty();
         }},
        {"--node",
         {"NODE_NAME", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.node_name = v;
             return !v.empty();
         }},
        {"--ca-dir",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.ca_dir = v;
             return !v.empty();
         }},
        {"--cert-dir",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.cert_dir = v;
             return !v.empty();
         }},
        {"--trust-domain",
         {"TRUST_DOMAIN", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.trust_domain = v;
             return !v.empty();
         }},
        {"--cert-ttl",
         {"SECRET_TTL", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_duration(o.cert_ttl_ns, v) && o.cert_ttl_ns > 0;
         }},
        {"--admin-addr",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.admin_addr = v;
             return !v.empty();
         }},
        {"--metrics-addr",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.metrics_addr = v;
             return !v.empty();
         }},
        {"--readiness-addr",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.readiness_addr = v;
             return !v.empty();
         }},
        {"--workers", {"ZTUNNEL_WORKER_THREADS", nullptr}, &set_workers},
        {"--packet-mark",
         {"PACKET_MARK", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             uint64_t mark = 0;
             if (!parse_uint(v, UINT32_MAX, mark)) {
                 return false;
             }
             o.packet_mark = uint32_t(mark);
             return true;
         }},
        {"--drain-timeout",
         {"CONNECTION_TERMINATION_DEADLINE", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_duration(o.drain_timeout_ns, v);
         }},
        {"--log-format",
         {"LOG_FORMAT", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             if (v != "plain" && v != "json") {
                 return false;
             }
             o.log_json = v == "json";
             return true;
         }},
        {"--log-level",
         {"RUST_LOG", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             o.log_level = v;
             return !v.empty();
         }},
        // ISTIO_META_DNS_CAPTURE is read apart (ztunnel's looser rule); the flag is strict.
        {"--dns-capture",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             if (v != "true" && v != "false") {
                 return false;
             }
             o.dns_capture = v == "true";
             return true;
         }},
        {"--dns-upstream",
         {nullptr, nullptr},
         [](RunOptions& o, std::string_view v, int) {
             auto upstreams = dns::parse_upstreams(v);
             if (!upstreams) {
                 return false;
             }
             o.dns_upstreams = std::move(*upstreams);
             return true;
         }},
        {"--cluster-domain",
         {"CLUSTER_DOMAIN", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             auto name = dns::Name::parse(v);
             if (!name || name->empty() || !name->is_hostname()) {
                 return false;
             }
             o.cluster_domain = name->to_string();
             return true;
         }},
        {"--max-pending-handshakes",
         {"ZTUNNEL_MAX_PENDING_HANDSHAKES", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_count(o.limits.pending_handshakes, v);
         }},
        {"--max-hbone-connections",
         {"ZTUNNEL_MAX_HBONE_CONNECTIONS", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_count(o.limits.hbone_connections, v);
         }},
        {"--max-peer-connections",
         {"ZTUNNEL_MAX_PEER_CONNECTIONS", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_count(o.limits.peer_connections, v);
         }},
        {"--max-peer-streams",
         {"ZTUNNEL_MAX_PEER_STREAMS", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_count(o.limits.peer_streams, v);
         }},
        {"--fd-reserve",
         {"ZTUNNEL_FD_RESERVE", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_count(o.limits.fd_reserve, v);
         }},
        {"--memory-shed-ratio",
         {"ZTUNNEL_MEMORY_SHED_RATIO", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_ratio(o.limits.memory_shed_ratio, v);
         }},
        {"--memory-resume-ratio",
         {"ZTUNNEL_MEMORY_RESUME_RATIO", nullptr},
         [](RunOptions& o, std::string_view v, int) {
             return set_ratio(o.limits.memory_resume_ratio, v);
         }},
};

// parse_bool reads Rust's `bool` spellings, as ztunnel parses IPV6_ENABLED: `true` or `false`.
bool parse_bool(std::string_view text, bool& out) {
    if (text == "true" || text == "false") {
        out = text == "true";
        return true;
    }
    return false;
}

}  // namespace

int default_workers(int cores) {
    int quarter = (cores + 3) / 4;
    return quarter > 2 ? quarter : 2;
}

Result<int64_t> default_drain_timeout_ns(const Environment& env, RunOptionsError& error) {
    constexpr int64_t kSecond = 1'000'000'000;
    if (const std::string* deadline = find_env(env, "CONNECTION_TERMINATION_DEADLINE")) {
        auto parsed = parse_duration_ns(*deadline);
        if (!parsed) {
            error.message =
                    "CONNECTION_TERMINATION_DEADLINE: not a duration: \"" + *deadline + "\"";
            return fail(Errc::invalid_argument);
        }
        return *parsed;
    }
    if (const std::string* grace = find_env(env, "TERMINATION_GRACE_PERIOD_SECONDS")) {
        uint64_t seconds = 0;
        if (!parse_uint(*grace, 1'000'000, seconds)) {
            error.message = "TERMINATION_GRACE_PERIOD_SECONDS: not a number: \"" + *grace + "\"";
            return fail(Errc::invalid_argument);
        }
        int64_t g = int64_t(seconds);
        int64_t drain = g > 10 ? g - 5 : g - 1;
        return (drain < 1 ? 1 : drain) * kSecond;
    }
    return 5 * kSecond;
}

Result<RunOptions> parse_run_options(int argc, const char* const* argv, const Environment& env,
                                     const std::string& hostname, int cores, bool ipv6,
                                     RunOptionsError& error) {
    RunOptions options;
    options.node_name = hostname;
    options.workers = default_workers(cores);
    options.metrics_addr = ipv6 ? "[::]:15020" : "0.0.0.0:15020";
    options.readiness_addr = ipv6 ? "[::]:15021" : "0.0.0.0:15021";
    auto drain = default_drain_timeout_ns(env, error);
    if (!drain) {
        return fail(drain.error());
    }
    options.drain_timeout_ns = *drain;
    if (const std::string* max = find_env(env, "POOL_MAX_STREAMS_PER_CONNECTION")) {
        // ztunnel reads it as a u16; 0 would make every connection full before its first stream.
        uint64_t streams = 0;
        if (!parse_uint(*max, UINT16_MAX, streams) || streams == 0) {
            error.message = "POOL_MAX_STREAMS_PER_CONNECTION: invalid value \"" + *max +
                            "\" (a number of streams, 1-65535)";
            return fail(Errc::invalid_argument);
        }
        options.pool_streams_max = uint32_t(streams);
    }

    if (const std::string* capture = find_env(env, "ISTIO_META_DNS_CAPTURE")) {
        // ztunnel: enabled unless set to a value other than `true` (any case).
        std::string lower = *capture;
        for (char& c : lower) {
            c = char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        options.dns_capture = lower == "true";
    }
    if (const std::string* ipv6_enabled = find_env(env, "IPV6_ENABLED")) {
        if (!parse_bool(*ipv6_enabled, options.ipv6_enabled)) {
            error.message = "IPV6_ENABLED: invalid value \"" + *ipv6_enabled + "\" (true or false)";
            return fail(Errc::invalid_argument);
        }
    }
    if (const std::string* preferred = find_env(env, "PREFERED_SERVICE_NAMESPACE")) {
        options.preferred_service_namespace = *preferred;
    }

    // Environment first, then flags on top.
    for (const OptionSpec& spec : kOptions) {
        for (const char* name : spec.env) {
            if (name == nullptr) {
                continue;
            }
            const std::string* value = find_env(env, name);
            if (value == nullptr) {
                continue;
            }
            if (!spec.set(options, *value, cores)) {
                error.message = std::string(name) + ": invalid value \"" + *value + "\"";
                return fail(Errc::invalid_argument);
            }
            break;
        }
    }
    for (int i = 0; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            options.help = true;
            return options;
        }
        std::string_view value;
        bool has_inline = false;
        size_t eq = arg.find('=');
        if (arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline = true;
        }
        const OptionSpec* spec = nullptr;
        for (const OptionSpec& candidate : kOptions) {
            if (arg == candidate.flag) {
                spec = &candidate;
            }
        }
        if (spec == nullptr) {
            error.message = "unknown flag: " + std::string(argv[i]);
            return fail(Errc::invalid_argument);
        }
        if (!has_inline) {
            if (i + 1 >= argc) {
                error.message = std::string(arg) + ": missing value";
                return fail(Errc::invalid_argument);
            }
            value = argv[++i];
        }
        if (!spec->set(options, value, cores)) {
            error.message = std::string(arg) + ": invalid value \"" + std::string(value) + "\"";
            return fail(Errc::invalid_argument);
        }
    }
    if (options.config_path.empty()) {
        error.message = "--config is required (or ZTUNNEL_CONFIG / LOCAL_XDS_PATH)";
        return fail(Errc::invalid_argument);
    }
    if (options.ca_dir.empty() == options.cert_dir.empty()) {
        error.message = "exactly one of --ca-dir and --cert-dir is required";
        return fail(Errc::invalid_argument);
    }
    if (options.limits.memory_shed_ratio != 0 &&
        options.limits.memory_resume_ratio >= options.limits.memory_shed_ratio) {
        error.message = "--memory-resume-ratio must be below --memory-shed-ratio";
        return fail(Errc::invalid_argument);
    }
    return options;
}

}  // namespace zt
