// options.cc parses `ztunnel-agent`'s flags and their environment variables (docs/contract.md §10).
// It touches nothing of the process: the environment is an argument, so every rule is unit-tested.

#include "src/agent/options.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "zt/duration.h"

namespace zt::agent {

const char* const kAgentUsage =
        "usage: ztunnel-agent --config-out FILE [flags]\n"
        "\n"
        "Connects ztunnel to istiod: xDS (workloads, services, policies) written into ztunnel's\n"
        "config file.\n"
        "\n"
        "flags (environment variable in brackets; a flag beats its variable):\n"
        "  --config-out FILE      ztunnel's config file, written atomically by the agent\n"
        "  --static FILE          a config file (same format) merged in: its entries win\n"
        "  --xds-address ADDR     istiod's xDS, host:port or https://host:port; \"\" turns xDS "
        "off\n"
        "                         (istiod.istio-system.svc:15012) [XDS_ADDRESS]\n"
        "  --xds-root-cert FILE   roots istiod's certificate must verify to\n"
        "                         (/var/run/secrets/istio/root-cert.pem) [XDS_ROOT_CA]\n"
        "  --token-file FILE      token sent as `authorization: Bearer`, read at every connection\n"
        "                         (/var/run/secrets/tokens/istio-token)\n"
        "  --cluster-id ID        sent as `clusterid` (Kubernetes) [CLUSTER_ID]\n"
        "  --admin-addr ADDR      the agent's /ready, /debug, /metrics (127.0.0.1:15098)\n"
        "  --log-format F         plain or json (plain) [LOG_FORMAT]\n"
        "  --log-level SPEC       level or level,target=level,... (info) [RUST_LOG]\n"
        "\n"
        "read now, used by the CA client and ZDS (not implemented yet):\n"
        "  --cert-dir DIR, --netns-dir DIR, --ztunnel-admin ADDR (127.0.0.1:15000),\n"
        "  --ca-address ADDR [CA_ADDRESS], --ca-root-cert FILE [CA_ROOT_CA],\n"
        "  --inpod-uds PATH [INPOD_UDS], --trust-domain TD [TRUST_DOMAIN]\n"
        "\n"
        "environment only: INSTANCE_IP, POD_NAME, POD_NAMESPACE, NODE_NAME, ISTIO_META_*,\n"
        "ISTIO_METAJSON_* (xDS node), ALT_XDS_HOSTNAME (the name istiod's certificate proves when\n"
        "it is not the address's host), XDS_HEADER_<NAME> (extra stream headers), SECRET_TTL,\n"
        "AGENT_WRITE_COST_FACTOR (4: config writes spaced by that many times the CPU cost of the\n"
        "last one), AGENT_WRITE_MIN_INTERVAL_MS (500: config writes start at least that far "
        "apart).\n";

namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

const std::string* find_env(const Env& env, std::string_view name) {
    for (const auto& [key, value] : env) {
        if (key == name) {
            return &value;
        }
    }
    return nullptr;
}

bool parse_port(std::string_view text, uint16_t& out) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
        return false;
    }
    out = uint16_t(value);
    return true;
}

// Setter applies a textual value from a flag or its variable; false means it is malformed.
using Setter = bool (*)(AgentOptions& options, std::string_view value);

struct OptionSpec {
    const char* flag;
    const char* env[2];
    Setter set;
};

bool set_address(bool& enabled, ServerAddress& address, std::string_view value) {
    if (value.empty()) {
        enabled = false;
        return true;
    }
    auto parsed = parse_server_address(value);
    if (!parsed) {
        return false;
    }
    enabled = true;
    address = *parsed;
    return true;
}

bool set_nonempty(std::string& field, std::string_view value) {
    if (value.empty()) {
        return false;
    }
    field = std::string(value);
    return true;
}

constexpr OptionSpec kOptions[] = {
        {"--config-out",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.config_out, v);
         }},
        {"--static",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             o.static_file = std::string(v);
             return true;
         }},
        {"--xds-address",
         {"XDS_ADDRESS", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_address(o.xds_enabled, o.xds_address, v);
         }},
        {"--xds-root-cert",
         {"XDS_ROOT_CA", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.xds_root_cert, v);
         }},
        {"--token-file",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             o.token_file = std::string(v);
             return true;
         }},
        // ztunnel takes ISTIO_META_CLUSTER_ID over CLUSTER_ID.
        {"--cluster-id",
         {"ISTIO_META_CLUSTER_ID", "CLUSTER_ID"},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.cluster_id, v);
         }},
        {"--trust-domain",
         {"TRUST_DOMAIN", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.trust_domain, v);
         }},
        {"--admin-addr",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.admin_addr, v);
         }},
        {"--ca-address",
         {"CA_ADDRESS", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_address(o.ca_enabled, o.ca_address, v);
         }},
        {"--ca-root-cert",
         {"CA_ROOT_CA", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.ca_root_cert, v);
         }},
        {"--cert-dir",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.cert_dir, v);
         }},
        {"--netns-dir",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.netns_dir, v);
         }},
        {"--inpod-uds",
         {"INPOD_UDS", nullptr},
         [](AgentOptions& o, std::string_view v) {
             o.inpod_enabled = !v.empty();
             o.inpod_uds = std::string(v);
             return true;
         }},
        {"--ztunnel-admin",
         {nullptr, nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.ztunnel_admin, v);
         }},
        {"--log-format",
         {"LOG_FORMAT", nullptr},
         [](AgentOptions& o, std::string_view v) {
             o.log_json = v == "json" || v == "JSON";
             return true;
         }},
        {"--log-level",
         {"RUST_LOG", nullptr},
         [](AgentOptions& o, std::string_view v) {
             return set_nonempty(o.log_level, v);
         }},
};

}  // namespace

Result<ServerAddress> parse_server_address(std::string_view text) {
    constexpr std::string_view kHttps = "https://";
    if (text.rfind(kHttps, 0) == 0) {
        text.remove_prefix(kHttps.size());
    } else if (text.find("://") != std::string_view::npos) {
        return fail(Errc::invalid_argument);
    }
    if (!text.empty() && text.back() == '/') {
        text.remove_suffix(1);  // `https://host:port/` is still the server.
    }
    if (text.empty() || text.find('/') != std::string_view::npos) {
        return fail(Errc::invalid_argument);
    }
    ServerAddress address;
    address.port = 443;
    std::string_view port;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close == 1) {
            return fail(Errc::invalid_argument);
        }
        address.host = std::string(text.substr(1, close - 1));
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return fail(Errc::invalid_argument);
            }
            port = rest.substr(1);
            if (port.empty()) {
                return fail(Errc::invalid_argument);
            }
        }
    } else {
        size_t colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon) {
            return fail(Errc::invalid_argument);  // A bare IPv6 literal needs brackets.
        }
        address.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = text.substr(colon + 1);
            if (port.empty()) {
                return fail(Errc::invalid_argument);
            }
        }
    }
    if (address.host.empty() || (!port.empty() && !parse_port(port, address.port))) {
        return fail(Errc::invalid_argument);
    }
    return address;
}

namespace {

// apply_environment sets what the environment says (variables first; flags override them
// later). False, with a message, on a malformed value.
bool apply_environment(AgentOptions& options, const Env& env, AgentOptionsError& error) {
    // The environment first, then flags over it.
    for (const OptionSpec& spec : kOptions) {
        for (const char* name : spec.env) {
            if (name == nullptr) {
                continue;
            }
            if (const std::string* value = find_env(env, name)) {
                if (!spec.set(options, *value)) {
                    error.message = std::string(name) + ": invalid value \"" + *value + "\"";
                    return false;
                }
                break;  // The first variable listed wins.
            }
        }
    }
    if (const std::string* alt = find_env(env, "ALT_XDS_HOSTNAME")) {
        options.alt_xds_hostname = *alt;
    }
    if (const std::string* alt = find_env(env, "ALT_CA_HOSTNAME")) {
        options.alt_ca_hostname = *alt;
    }
    if (const std::string* ttl = find_env(env, "SECRET_TTL")) {
        auto parsed = parse_duration_ns(*ttl);
        if (!parsed || *parsed <= 0) {
            error.message = "SECRET_TTL: invalid duration \"" + *ttl + "\"";
            return false;
        }
        options.secret_ttl_ns = *parsed;
    }
    if (const std::string* factor = find_env(env, "AGENT_WRITE_COST_FACTOR")) {
        char* end = nullptr;
        double value = std::strtod(factor->c_str(), &end);
        if (factor->empty() || end != factor->c_str() + factor->size() || !(value >= 0) ||
            value > 1000) {
            error.message =
                    "AGENT_WRITE_COST_FACTOR: not a number from 0 to 1000: \"" + *factor + "\"";
            return false;
        }
        options.write_cost_factor = value;
    }
    if (const std::string* interval = find_env(env, "AGENT_WRITE_MIN_INTERVAL_MS")) {
        char* end = nullptr;
        long long value = std::strtoll(interval->c_str(), &end, 10);
        if (interval->empty() || end != interval->c_str() + interval->size() || value < 0 ||
            value > 60'000) {
            error.message =
                    "AGENT_WRITE_MIN_INTERVAL_MS: not a number of milliseconds from 0 to "
                    "60000: \"" +
                    *interval + "\"";
            return false;
        }
        options.write_min_interval_ns = int64_t(value) * 1'000'000;
    }
    constexpr std::string_view kHeaderPrefix = "XDS_HEADER_";
    for (const auto& [name, value] : env) {
        if (name.rfind(kHeaderPrefix, 0) == 0 && name.size() > kHeaderPrefix.size()) {
            std::string header = name.substr(kHeaderPrefix.size());
            for (char& c : header) {
                c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
            }
            options.xds_headers.emplace_back(std::move(header), value);
        }
    }
    return true;
}

}  // namespace

Result<AgentOptions> parse_agent_options(int argc, const char* const* argv, const Env& env,
                                         AgentOptionsError& error) {
    AgentOptions options;
    if (!apply_environment(options, env, error)) {
        return fail(Errc::invalid_argument);
    }
    for (int i = 0; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            options.help = true;
            return options;
        }
        if (arg == "--version") {
            options.version = true;
            return options;
        }
        std::string_view value;
        bool inline_value = false;
        size_t eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        const OptionSpec* spec = nullptr;
        for (const OptionSpec& candidate : kOptions) {
            if (arg == candidate.flag) {
                spec = &candidate;
            }
        }
        if (spec == nullptr) {
            error.message = "unknown flag " + std::string(arg);
            return fail(Errc::invalid_argument);
        }
        if (!inline_value) {
            if (i + 1 >= argc) {
                error.message = std::string(arg) + " needs a value";
                return fail(Errc::invalid_argument);
            }
            value = argv[++i];
        }
        if (!spec->set(options, value)) {
            error.message = std::string(arg) + ": invalid value \"" + std::string(value) + "\"";
            return fail(Errc::invalid_argument);
        }
    }
    if (options.config_out.empty()) {
        error.message = "--config-out is required";
        return fail(Errc::invalid_argument);
    }
    return options;
}

}  // namespace zt::agent
