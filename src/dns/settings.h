#pragma once

// From `ztunnel run`'s options to the DNS servers' shared `ServerConfig`: the answer options
// (CLUSTER_DOMAIN, IPV6_ENABLED, PREFERED_SERVICE_NAMESPACE) and the upstreams (`--dns-upstream`,
// else the nameservers of ztunnel's own resolv.conf, read once here at start-up, never on a
// worker).

#include <string>
#include <vector>

#include "src/dns/resolv_conf.h"
#include "src/dns/server.h"
#include "src/run_options.h"

namespace zt::dns {

// ServerSettings is the config every pod's server shares, plus what the start-up should log.
struct ServerSettings {
    ServerConfig config;
    std::vector<std::string> warnings;  // Unusable nameservers, a resolv.conf without any, ...
};

// server_settings builds the shared config from `options`, reading `resolv_conf_path` only when
// `options.dns_upstreams` is empty. A resolv.conf that cannot be read or names no usable
// nameserver is a warning, not an error: mesh names are still answered, forwards get SERVFAIL.
ServerSettings server_settings(const RunOptions& options, const std::string& resolv_conf_path =
                                                                  std::string(kDefaultResolvConf));

}  // namespace zt::dns
