// settings.cc turns the run's options into the DNS servers' shared config, reading ztunnel's
// resolv.conf once when no upstream was given. It runs at start-up on the main thread.

#include "src/dns/settings.h"

#include <cstring>

#include "src/dns/resolv_conf.h"

namespace zt::dns {

ServerSettings server_settings(const RunOptions& options, const std::string& resolv_conf_path) {
    ServerSettings settings;
    ServerConfig& config = settings.config;
    auto domain = Name::parse(options.cluster_domain);
    if (domain && !domain->empty()) {
        config.answer.cluster_domain = *domain;
    }
    config.answer.ipv6_enabled = options.ipv6_enabled;
    config.answer.preferred_namespace = options.preferred_service_namespace;
    if (!options.dns_upstreams.empty()) {
        config.forwarder.upstreams = options.dns_upstreams;
        return settings;
    }
    auto conf = read_resolv_conf(resolv_conf_path);
    if (!conf) {
        settings.warnings.push_back("cannot read " + resolv_conf_path + ": " +
                                    std::strerror(conf.error().sys_errno) +
                                    "; DNS forwarding answers SERVFAIL (set --dns-upstream)");
        return settings;
    }
    for (const std::string& skipped : conf->skipped) {
        settings.warnings.push_back(resolv_conf_path + ": nameserver " + skipped +
                                    " is not an IP address without a zone; skipped");
    }
    if (conf->nameservers.empty()) {
        settings.warnings.push_back(resolv_conf_path +
                                    " names no usable nameserver; DNS forwarding answers SERVFAIL "
                                    "(set --dns-upstream)");
    }
    config.forwarder.upstreams = std::move(conf->nameservers);
    return settings;
}

}  // namespace zt::dns
