// types.cc holds the few behaviours of the plain mesh structs: port-map lookup, SPIFFE identity
// formatting, string matching and enum names. It must stay free of indexes and of JSON.

#include "src/state/types.h"

#include <algorithm>

namespace zt::state {

std::optional<uint16_t> find_port(const PortMap& map, uint16_t service_port) {
    auto it = std::lower_bound(map.begin(), map.end(), service_port,
                               [](const auto& entry, uint16_t port) { return entry.first < port; });
    if (it == map.end() || it->first != service_port) {
        return std::nullopt;
    }
    return it->second;
}

std::string Workload::identity(std::string_view default_trust_domain) const {
    std::string_view td = trust_domain.empty() ? default_trust_domain : trust_domain;
    std::string out = "spiffe://";
    out.append(td);
    out.append("/ns/");
    out.append(namespace_);
    out.append("/sa/");
    out.append(service_account);
    return out;
}

bool StringMatch::matches(std::string_view text) const {
    switch (kind) {
        case Kind::exact: return text == value;
        case Kind::prefix: return text.starts_with(value);
        case Kind::suffix: return text.ends_with(value);
        case Kind::presence: return !text.empty();
    }
    return false;
}

std::string_view to_string(Protocol value) {
    return value == Protocol::hbone ? "HBONE" : "TCP";
}

std::string_view to_string(HealthStatus value) {
    return value == HealthStatus::healthy ? "Healthy" : "Unhealthy";
}

std::string_view to_string(PolicyScope value) {
    switch (value) {
        case PolicyScope::global: return "Global";
        case PolicyScope::namespace_: return "Namespace";
        case PolicyScope::workload_selector: return "WorkloadSelector";
    }
    return "Namespace";
}

std::string_view to_string(PolicyAction value) {
    return value == PolicyAction::allow ? "Allow" : "Deny";
}

}  // namespace zt::state
