// types.cc holds the few behaviours of the plain mesh structs: port-map lookup, SPIFFE identity
// formatting, string matching and enum names. It must stay free of indexes and of JSON.

#include "src/state/types.h"

#include <algorithm>

namespace zt::state {

std::string quote_text(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text.substr(0, 200)) {
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out.push_back("0123456789abcdef"[c >> 4]);
            out.push_back("0123456789abcdef"[c & 15]);
        } else if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(char(c));
        } else {
            out.push_back(char(c));
        }
    }
    if (text.size() > 200) {
        out += "...";
    }
    out.push_back('"');
    return out;
}

std::optional<uint16_t> find_port(const PortMap& map, uint16_t service_port) {
    auto it = std::lower_bound(map.begin(), map.end(), service_port,
                               [](const auto& entry, uint16_t port) { return entry.first < port; });
    if (it == map.end() || it->first != service_port) {
        return std::nullopt;
    }
    return it->second;
}

std::string Pod::identity(std::string_view trust_domain) const {
    return "spiffe://" + std::string(trust_domain) + "/ns/" + namespace_ + "/sa/" + service_account;
}

std::string Workload::identity(std::string_view default_trust_domain) const {
    std::string_view td = trust_domain.empty() ? default_trust_domain : trust_domain;
    constexpr std::string_view kScheme = "spiffe://", kNs = "/ns/", kSa = "/sa/";
    std::string out;
    // Called several times per new connection: one allocation, not one per append.
    out.reserve(kScheme.size() + td.size() + kNs.size() + namespace_.size() + kSa.size() +
                service_account.size());
    out.append(kScheme);
    out.append(td);
    out.append(kNs);
    out.append(namespace_);
    out.append(kSa);
    out.append(service_account);
    return out;
}

bool StringMatch::matches(std::string_view text) const {
    switch (kind) {
        case Kind::exact:
            return text == value;
        case Kind::prefix:
            return text.starts_with(value);
        case Kind::suffix:
            return text.ends_with(value);
        case Kind::presence:
            return !text.empty();
    }
    return false;
}

std::string_view to_string(Protocol value) {
    return value == Protocol::hbone ? "HBONE" : "TCP";
}

std::string_view to_string(NetworkMode value) {
    return value == NetworkMode::host_network ? "HostNetwork" : "Standard";
}

std::string_view to_string(ApplicationTunnel::Protocol value) {
    return value == ApplicationTunnel::Protocol::proxy ? "PROXY" : "NONE";
}

std::string_view to_string(LoadBalancerMode value) {
    switch (value) {
        case LoadBalancerMode::standard:
            return "Standard";
        case LoadBalancerMode::strict:
            return "Strict";
        case LoadBalancerMode::failover:
            return "Failover";
        case LoadBalancerMode::passthrough:
            return "Passthrough";
    }
    return "Standard";
}

std::string_view to_string(HealthPolicy value) {
    return value == HealthPolicy::allow_all ? "AllowAll" : "OnlyHealthy";
}

std::string_view to_string(RoutingPreference value) {
    switch (value) {
        case RoutingPreference::region:
            return "Region";
        case RoutingPreference::zone:
            return "Zone";
        case RoutingPreference::subzone:
            return "Subzone";
        case RoutingPreference::node:
            return "Node";
        case RoutingPreference::cluster:
            return "Cluster";
        case RoutingPreference::network:
            return "Network";
    }
    return "Region";
}

std::string_view to_string(IpFamilies value) {
    switch (value) {
        case IpFamilies::any:
            return "";
        case IpFamilies::dual:
            return "Dual";
        case IpFamilies::ipv4:
            return "IPv4";
        case IpFamilies::ipv6:
            return "IPv6";
    }
    return "";
}

std::string_view to_string(Visibility value) {
    return value == Visibility::namespace_ ? "Namespace" : "Public";
}

std::string_view to_string(HealthStatus value) {
    return value == HealthStatus::healthy ? "Healthy" : "Unhealthy";
}

std::string_view to_string(PolicyScope value) {
    switch (value) {
        case PolicyScope::global:
            return "Global";
        case PolicyScope::namespace_:
            return "Namespace";
        case PolicyScope::workload_selector:
            return "WorkloadSelector";
    }
    return "Namespace";
}

std::string_view to_string(PolicyAction value) {
    return value == PolicyAction::allow ? "Allow" : "Deny";
}

}  // namespace zt::state
