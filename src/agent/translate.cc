// translate.cc turns istiod's Address and Authorization resources into the config file's
// structs, field by field, with ztunnel's defaults, rejections and silent drops (translate.h
// lists them), and with the extra checks that keep a translated resource loadable by
// `config::parse`. The first problem that rejects a resource stops its translation, as in
// ztunnel; drops only add warnings. It must stay a pure function: no I/O, no logging, no state
// between calls (the agent logs the warnings and NACKs the errors).

#include "src/agent/translate.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <utility>

#include "certs/identity.h"
#include "src/config/parse.h"

namespace zt::agent {

namespace {

namespace xw = istio::workload;
namespace xs = istio::security;
using state::quote_text;

// Translation carries one resource's verdict: the first error (which rejects it) and every
// warning. Its checks return false once the resource is rejected, so callers can stop.
class Translation {
public:
    bool fail(std::string_view path, std::string_view reason) {
        if (error.empty()) {
            error = path.empty() ? std::string(reason)
                                 : std::string(path) + ": " + std::string(reason);
        }
        return false;
    }

    void warn(std::string_view path, std::string_view reason) {
        warnings.push_back(std::string(path) + ": " + std::string(reason));
    }

    // ip reads raw address bytes as ztunnel's `byte_to_ip` does: 4 or 16 bytes, else reject.
    bool ip(const std::string& bytes, std::string_view path, state::IpAddr& out) {
        if (bytes.size() != 4 && bytes.size() != 16) {
            return fail(path, "failed to parse address, had " + std::to_string(bytes.size()) +
                                      " bytes (an IP address has 4 or 16)");
        }
        out = state::IpAddr{};
        out.v6 = bytes.size() == 16;
        std::copy(bytes.begin(), bytes.end(), out.bytes.begin());
        return true;
    }

    // port16 narrows a uint32 port. ztunnel truncates to 16 bits (`as u16`), which would turn
    // 65616 into 80; the config cannot say that, so it is rejected.
    bool port16(uint32_t value, std::string_view path, uint16_t& out) {
        if (value > 65535) {
            return fail(path, std::to_string(value) +
                                      " is not a port (above 65535; ztunnel would truncate it "
                                      "to 16 bits, the config file cannot carry it)");
        }
        out = uint16_t(value);
        return true;
    }

    bool port_map(const google::protobuf::RepeatedPtrField<xw::Port>& ports,
                  const std::string& path, state::PortMap& out);
    bool namespaced_hostname(std::string_view text, std::string_view path,
                             state::NamespacedHostname& out);
    bool gateway(const xw::GatewayAddress& in, const std::string& path,
                 std::optional<state::GatewayAddress>& out);

    std::string error;
    std::vector<std::string> warnings;
};

std::string at(std::string_view field, size_t index) {
    return std::string(field) + "[" + std::to_string(index) + "]";
}

std::string join(std::string_view path, std::string_view field) {
    return path.empty() ? std::string(field) : std::string(path) + "." + std::string(field);
}

// Translation::port_map builds ztunnel's `HashMap<u16, u16>` from a port list: a later entry
// for the same service port wins; service port 0 is dropped (no connection has that
// destination port, and the config's port keys start at 1). The result is sorted, as parse
// sorts it.
bool Translation::port_map(const google::protobuf::RepeatedPtrField<xw::Port>& ports,
                           const std::string& path, state::PortMap& out) {
    out.clear();
    for (int i = 0; i < ports.size(); ++i) {
        const xw::Port& port = ports[i];
        std::string entry = at(path, size_t(i));
        uint16_t service_port = 0;
        uint16_t target_port = 0;
        if (!port16(port.service_port(), join(entry, "service_port"), service_port) ||
            !port16(port.target_port(), join(entry, "target_port"), target_port)) {
            return false;
        }
        if (service_port == 0) {
            warn(entry, "service port 0 dropped (no connection has destination port 0)");
            continue;
        }
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const auto& e) { return e.first == service_port; });
        if (it != out.end()) {
            it->second = target_port;
        } else {
            out.emplace_back(service_port, target_port);
        }
    }
    std::sort(out.begin(), out.end());
    return true;
}

// Translation::namespaced_hostname reads a `namespace/hostname` key. ztunnel splits at the
// first '/' and rejects text without one; the config also needs both parts non-empty and no
// second '/', which is every key istiod makes (neither part can hold a '/').
bool Translation::namespaced_hostname(std::string_view text, std::string_view path,
                                      state::NamespacedHostname& out) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return fail(path, "failed to parse namespaced hostname: " + quote_text(text));
    }
    if (slash == 0 || slash + 1 == text.size() ||
        text.find('/', slash + 1) != std::string_view::npos) {
        return fail(path, "namespaced hostname " + quote_text(text) +
                                  " cannot be carried in the config file (it needs "
                                  "namespace/hostname, both non-empty, one '/')");
    }
    out.namespace_ = std::string(text.substr(0, slash));
    out.hostname = std::string(text.substr(slash + 1));
    return true;
}

// Translation::gateway reads a waypoint or network gateway. A message with no destination is
// rejected, as ztunnel rejects it; an address keeps only network and IP (ztunnel ignores a
// prefix length here). The config writes the destination as untagged text read as
// `network/ip` first, so a hostname that would read as an address cannot be carried.
bool Translation::gateway(const xw::GatewayAddress& in, const std::string& path,
                          std::optional<state::GatewayAddress>& out) {
    state::GatewayAddress gateway;
    if (!port16(in.hbone_mtls_port(), join(path, "hbone_mtls_port"), gateway.hbone_mtls_port)) {
        return false;
    }
    switch (in.destination_case()) {
        case xw::GatewayAddress::kAddress: {
            state::NetworkAddress address{in.address().network(), {}};
            if (!ip(in.address().address(), join(path, "address.address"), address.ip)) {
                return false;
            }
            gateway.address = std::move(address);
            break;
        }
        case xw::GatewayAddress::kHostname: {
            std::string text = in.hostname().namespace_() + "/" + in.hostname().hostname();
            state::NamespacedHostname host;
            if (!namespaced_hostname(text, join(path, "hostname"), host)) {
                return false;
            }
            if (state::NetworkAddress::parse(text)) {
                return fail(join(path, "hostname"),
                            quote_text(text) +
                                    " reads as network/ip in the config file and cannot be "
                                    "carried as a hostname");
            }
            gateway.host = std::move(host);
            break;
        }
        case xw::GatewayAddress::DESTINATION_NOT_SET:
            return fail(path, "nonempty gateway address is missing address");
    }
    out = std::move(gateway);
    return true;
}

// --- workloads ---------------------------------------------------------------------------------

// lower_case_name spells a WorkloadType as ztunnel's `as_str_name().to_lowercase()`; prost reads
// an unknown value as the first one.
std::string lower_case_name(int value) {
    if (!xw::WorkloadType_IsValid(value)) {
        value = xw::DEPLOYMENT;
    }
    std::string name = xw::WorkloadType_Name(xw::WorkloadType(value));
    for (char& c : name) {
        c = char(std::tolower(static_cast<unsigned char>(c)));
    }
    return name;
}

bool workload_enums(Translation& t, const xw::Workload& in, state::Workload& out) {
    switch (in.tunnel_protocol()) {
        case xw::NONE:
            out.protocol = state::Protocol::tcp;
            break;
        case xw::HBONE:
            out.protocol = state::Protocol::hbone;
            break;
        case xw::LEGACY_ISTIO_MTLS:
            return t.fail("tunnel_protocol", "unsupported tunnel protocol: legacy istio mtls");
        default:
            return t.fail("tunnel_protocol",
                          "unknown enum value " + std::to_string(in.tunnel_protocol()));
    }
    if (!xw::NetworkMode_IsValid(in.network_mode())) {
        return t.fail("network_mode", "unknown enum value " + std::to_string(in.network_mode()));
    }
    out.network_mode = in.network_mode() == xw::HOST_NETWORK ? state::NetworkMode::host_network
                                                             : state::NetworkMode::standard;
    if (!xw::WorkloadStatus_IsValid(in.status())) {
        return t.fail("status", "unknown enum value " + std::to_string(in.status()));
    }
    out.status = in.status() == xw::UNHEALTHY ? state::HealthStatus::unhealthy
                                              : state::HealthStatus::healthy;
    out.workload_type = lower_case_name(in.workload_type());
    return true;
}

// workload_identity fills the SPIFFE parts with ztunnel's defaults and checks that they form an
// ID: the identity is what certificates are issued for, and parse rejects one that is not.
bool workload_identity(Translation& t, const xw::Workload& in, const TranslateContext& context,
                       state::Workload& out) {
    if (in.uid().empty()) {
        return t.fail("uid", "empty uid cannot be carried in the config file (it is the key)");
    }
    if (in.namespace_().empty()) {
        return t.fail("namespace",
                      "empty namespace cannot be carried in the config file (it is part of the "
                      "workload's identity)");
    }
    out.uid = in.uid();
    out.name = in.name();
    out.namespace_ = in.namespace_();
    out.trust_domain = in.trust_domain().empty() ? context.trust_domain : in.trust_domain();
    out.service_account = in.service_account().empty() ? "default" : in.service_account();
    if (!certs::Identity::from_parts(out.trust_domain, out.namespace_, out.service_account)) {
        return t.fail("trust_domain",
                      "trust domain, namespace and service account do not form a SPIFFE ID: " +
                              quote_text(out.identity(out.trust_domain)));
    }
    return true;
}

bool workload_addresses(Translation& t, const xw::Workload& in, state::Workload& out) {
    out.workload_ips.resize(size_t(in.addresses_size()));
    for (int i = 0; i < in.addresses_size(); ++i) {
        if (!t.ip(in.addresses(i), at("addresses", size_t(i)), out.workload_ips[size_t(i)])) {
            return false;
        }
    }
    out.hostname = in.hostname();
    out.network = in.network();
    if (in.has_waypoint() && !t.gateway(in.waypoint(), "waypoint", out.waypoint)) {
        return false;
    }
    if (in.has_network_gateway() &&
        !t.gateway(in.network_gateway(), "network_gateway", out.network_gateway)) {
        return false;
    }
    return true;
}

bool workload_tunnel(Translation& t, const xw::Workload& in, state::Workload& out) {
    out.native_tunnel = in.native_tunnel();
    if (!in.has_application_tunnel()) {
        return true;
    }
    const xw::ApplicationTunnel& tunnel = in.application_tunnel();
    state::ApplicationTunnel translated;
    switch (tunnel.protocol()) {
        case xw::ApplicationTunnel::NONE:
            translated.protocol = state::ApplicationTunnel::Protocol::none;
            break;
        case xw::ApplicationTunnel::PROXY:
            translated.protocol = state::ApplicationTunnel::Protocol::proxy;
            break;
        default:
            return t.fail("application_tunnel.protocol",
                          "unknown enum value " + std::to_string(tunnel.protocol()));
    }
    if (tunnel.port() != 0) {  // ztunnel: 0 means "no port".
        uint16_t port = 0;
        if (!t.port16(tunnel.port(), "application_tunnel.port", port)) {
            return false;
        }
        translated.port = port;
    }
    out.application_tunnel = translated;
    return true;
}

// workload_services reads the `services` map in key order (a protobuf map has none of its
// own, and the file must not change when only the iteration order does).
bool workload_services(Translation& t, const xw::Workload& in, state::Workload& out) {
    std::vector<const std::string*> keys;
    keys.reserve(in.services().size());
    for (const auto& [key, ports] : in.services()) {
        keys.push_back(&key);
    }
    std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) { return *a < *b; });
    out.services.resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        std::string path = "services[" + quote_text(*keys[i]) + "]";
        if (!t.namespaced_hostname(*keys[i], path, out.services[i].service) ||
            !t.port_map(in.services().at(*keys[i]).ports(), path + ".ports",
                        out.services[i].ports)) {
            return false;
        }
    }
    return true;
}

void workload_labels(const xw::Workload& in, const TranslateContext& context,
                     state::Workload& out) {
    out.node = in.node();
    out.cluster_id = in.cluster_id().empty() ? context.cluster_id : in.cluster_id();
    out.workload_name = in.workload_name();
    out.canonical_name = in.canonical_name();
    out.canonical_revision = in.canonical_revision();
    out.capacity = in.has_capacity() ? in.capacity().value() : 1;
    if (in.has_locality()) {
        out.locality = state::Locality{in.locality().region(), in.locality().zone(),
                                       in.locality().subzone()};
    }
    out.authorization_policies.assign(in.authorization_policies().begin(),
                                      in.authorization_policies().end());
}

std::optional<state::Workload> translate_workload(Translation& t, const xw::Workload& in,
                                                  const TranslateContext& context) {
    state::Workload out;
    if (!workload_identity(t, in, context, out) || !workload_enums(t, in, out) ||
        !workload_addresses(t, in, out) || !workload_tunnel(t, in, out) ||
        !workload_services(t, in, out)) {
        return std::nullopt;
    }
    workload_labels(in, context, out);
    return out;
}

// --- services ----------------------------------------------------------------------------------

// service_addresses splits `addresses` as ztunnel does: no prefix length, or the whole address,
// is a VIP; any other length a CIDR VIP (host bits cleared, as the config stores CIDRs).
bool service_addresses(Translation& t, const xw::Service& in, state::Service& out) {
    for (int i = 0; i < in.addresses_size(); ++i) {
        const xw::NetworkAddress& address = in.addresses(i);
        std::string path = at("addresses", size_t(i));
        state::IpAddr ip;
        if (!t.ip(address.address(), join(path, "address"), ip)) {
            return false;
        }
        uint32_t full = ip.v6 ? 128 : 32;
        if (!address.has_length() || address.length() == full) {
            out.vips.push_back(state::NetworkAddress{address.network(), ip});
            continue;
        }
        if (address.length() > full) {
            return t.fail(join(path, "length"), "invalid cidr: prefix length " +
                                                        std::to_string(address.length()) +
                                                        " is longer than the address");
        }
        auto cidr = state::Cidr::parse(ip.to_string() + "/" + std::to_string(address.length()));
        out.cidr_vips.push_back(state::NetworkCidr{address.network(), *cidr});
    }
    return true;
}

bool service_names(Translation& t, const xw::Service& in, state::Service& out) {
    if (in.namespace_().empty() || in.hostname().empty()) {
        return t.fail(in.namespace_().empty() ? "namespace" : "hostname",
                      "must not be empty: the config file keys services by namespace/hostname");
    }
    out.name = in.name();
    out.namespace_ = in.namespace_();
    out.hostname = in.hostname();
    for (int i = 0; i < in.subject_alt_names_size(); ++i) {
        const std::string& san = in.subject_alt_names(i);
        if (!config::is_spiffe_id(san)) {
            return t.fail(at("subject_alt_names", size_t(i)),
                          quote_text(san) +
                                  " is not a SPIFFE ID; the config file carries only SPIFFE IDs "
                                  "as subject alt names");
        }
        out.subject_alt_names.push_back(san);
    }
    return true;
}

bool service_waypoints(Translation& t, const xw::Service& in, state::Service& out) {
    if (in.has_waypoint() && !t.gateway(in.waypoint(), "waypoint", out.waypoint)) {
        return false;
    }
    for (int i = 0; i < in.weighted_waypoints_size(); ++i) {
        const xw::WeightedWaypoint& weighted = in.weighted_waypoints(i);
        std::string path = at("weighted_waypoints", size_t(i));
        if (!weighted.has_destination()) {
            return t.fail(path, "nonempty gateway address is missing address");
        }
        std::optional<state::GatewayAddress> destination;
        if (!t.gateway(weighted.destination(), join(path, "destination"), destination)) {
            return false;
        }
        out.weighted_waypoints.push_back(state::WeightedWaypoint{*destination, weighted.weight()});
    }
    return true;
}

bool routing_preference(Translation& t, int value, size_t index, state::RoutingPreference& out) {
    using state::RoutingPreference;
    switch (value) {
        case xw::LoadBalancing::REGION:
            out = RoutingPreference::region;
            return true;
        case xw::LoadBalancing::ZONE:
            out = RoutingPreference::zone;
            return true;
        case xw::LoadBalancing::SUBZONE:
            out = RoutingPreference::subzone;
            return true;
        case xw::LoadBalancing::NODE:
            out = RoutingPreference::node;
            return true;
        case xw::LoadBalancing::CLUSTER:
            out = RoutingPreference::cluster;
            return true;
        case xw::LoadBalancing::NETWORK:
            out = RoutingPreference::network;
            return true;
        case xw::LoadBalancing::UNSPECIFIED_SCOPE:
            return t.fail(at("load_balancing.routing_preference", index),
                          "unknown enum: invalid target (UNSPECIFIED_SCOPE)");
        default:
            return t.fail(at("load_balancing.routing_preference", index),
                          "unknown enum value " + std::to_string(value));
    }
}

bool service_balancing(Translation& t, const xw::Service& in, state::Service& out) {
    if (in.has_load_balancing()) {
        const xw::LoadBalancing& lb = in.load_balancing();
        state::LoadBalancer balancer;
        for (int i = 0; i < lb.routing_preference_size(); ++i) {
            state::RoutingPreference preference{};
            if (!routing_preference(t, lb.routing_preference(i), size_t(i), preference)) {
                return false;
            }
            balancer.routing_preferences.push_back(preference);
        }
        static constexpr state::LoadBalancerMode kModes[] = {
                state::LoadBalancerMode::standard, state::LoadBalancerMode::strict,
                state::LoadBalancerMode::failover, state::LoadBalancerMode::passthrough};
        if (!xw::LoadBalancing::Mode_IsValid(lb.mode())) {
            return t.fail("load_balancing.mode", "unknown enum value " + std::to_string(lb.mode()));
        }
        balancer.mode = kModes[lb.mode()];
        if (!xw::LoadBalancing::HealthPolicy_IsValid(lb.health_policy())) {
            return t.fail("load_balancing.health_policy",
                          "unknown enum value " + std::to_string(lb.health_policy()));
        }
        balancer.health_policy = lb.health_policy() == xw::LoadBalancing::ALLOW_ALL
                                         ? state::HealthPolicy::allow_all
                                         : state::HealthPolicy::only_healthy;
        out.load_balancer = std::move(balancer);
    }
    static constexpr state::IpFamilies kFamilies[] = {
            state::IpFamilies::any, state::IpFamilies::ipv4, state::IpFamilies::ipv6,
            state::IpFamilies::dual};
    if (!xw::IPFamilies_IsValid(in.ip_families())) {
        return t.fail("ip_families", "unknown enum value " + std::to_string(in.ip_families()));
    }
    out.ip_families = kFamilies[in.ip_families()];
    out.canonical = in.canonical();
    // ztunnel reads an unknown visibility as PUBLIC rather than dropping the service.
    out.visibility = in.visibility() == xw::Service::NAMESPACE ? state::Visibility::namespace_
                                                               : state::Visibility::public_;
    return true;
}

std::optional<state::Service> translate_service(Translation& t, const xw::Service& in) {
    state::Service out;
    if (!service_names(t, in, out) || !service_addresses(t, in, out) ||
        !t.port_map(in.ports(), "ports", out.ports) || !service_waypoints(t, in, out) ||
        !service_balancing(t, in, out)) {
        return std::nullopt;
    }
    return out;
}

// --- policies ----------------------------------------------------------------------------------

// string_matches keeps the matches with a kind; ztunnel filters out one with none set.
void string_matches(Translation& t, const google::protobuf::RepeatedPtrField<xs::StringMatch>& in,
                    std::string_view path, std::vector<state::StringMatch>& out) {
    using Kind = state::StringMatch::Kind;
    for (int i = 0; i < in.size(); ++i) {
        const xs::StringMatch& match = in[i];
        switch (match.match_type_case()) {
            case xs::StringMatch::kExact:
                out.push_back({Kind::exact, match.exact()});
                break;
            case xs::StringMatch::kPrefix:
                out.push_back({Kind::prefix, match.prefix()});
                break;
            case xs::StringMatch::kSuffix:
                out.push_back({Kind::suffix, match.suffix()});
                break;
            case xs::StringMatch::kPresence:
                out.push_back({Kind::presence, ""});
                break;
            case xs::StringMatch::MATCH_TYPE_NOT_SET:
                t.warn(at(path, size_t(i)), "string match with no kind dropped, as ztunnel does");
                break;
        }
    }
}

void account_matches(const google::protobuf::RepeatedPtrField<xs::ServiceAccountMatch>& in,
                     std::vector<state::ServiceAccountMatch>& out) {
    for (const auto& match : in) {
        out.push_back({match.namespace_(), match.serviceaccount()});
    }
}

// cidrs keeps the ranges ztunnel can build (`IpNet::new(byte_to_ip(address), length)`) and drops
// the others with a warning, as ztunnel filters them out.
void cidrs(Translation& t, const google::protobuf::RepeatedPtrField<xs::Address>& in,
           std::string_view path, std::vector<state::Cidr>& out) {
    for (int i = 0; i < in.size(); ++i) {
        const std::string& bytes = in[i].address();
        uint32_t length = in[i].length();
        std::string entry = at(path, size_t(i));
        if (bytes.size() != 4 && bytes.size() != 16) {
            t.warn(entry, "dropped, as ztunnel drops it: an IP address has 4 or 16 bytes, had " +
                                  std::to_string(bytes.size()));
            continue;
        }
        state::IpAddr ip;
        (void)t.ip(bytes, entry, ip);
        if (length > (ip.v6 ? 128u : 32u)) {
            t.warn(entry, "dropped, as ztunnel drops it: prefix length " + std::to_string(length) +
                                  " is longer than the address");
            continue;
        }
        out.push_back(*state::Cidr::parse(ip.to_string() + "/" + std::to_string(length)));
    }
}

bool ports(Translation& t, const google::protobuf::RepeatedField<uint32_t>& in,
           std::string_view path, std::vector<uint16_t>& out) {
    for (int i = 0; i < in.size(); ++i) {
        uint16_t port = 0;
        if (!t.port16(in[i], at(path, size_t(i)), port)) {
            return false;
        }
        out.push_back(port);
    }
    return true;
}

bool rbac_match(Translation& t, const xs::Match& in, const std::string& path,
                state::RbacMatch& out) {
    string_matches(t, in.namespaces(), join(path, "namespaces"), out.namespaces);
    string_matches(t, in.not_namespaces(), join(path, "not_namespaces"), out.not_namespaces);
    account_matches(in.service_accounts(), out.service_accounts);
    account_matches(in.not_service_accounts(), out.not_service_accounts);
    string_matches(t, in.principals(), join(path, "principals"), out.principals);
    string_matches(t, in.not_principals(), join(path, "not_principals"), out.not_principals);
    cidrs(t, in.source_ips(), join(path, "source_ips"), out.source_ips);
    cidrs(t, in.not_source_ips(), join(path, "not_source_ips"), out.not_source_ips);
    cidrs(t, in.destination_ips(), join(path, "destination_ips"), out.destination_ips);
    cidrs(t, in.not_destination_ips(), join(path, "not_destination_ips"), out.not_destination_ips);
    return ports(t, in.destination_ports(), join(path, "destination_ports"),
                 out.destination_ports) &&
           ports(t, in.not_destination_ports(), join(path, "not_destination_ports"),
                 out.not_destination_ports);
}

bool policy_rules(Translation& t, const xs::Authorization& in, state::Policy& out) {
    out.rules.resize(size_t(in.rules_size()));
    for (int r = 0; r < in.rules_size(); ++r) {
        const xs::Rule& rule = in.rules(r);
        std::string rule_path = at("rules", size_t(r));
        out.rules[size_t(r)].resize(size_t(rule.clauses_size()));
        for (int c = 0; c < rule.clauses_size(); ++c) {
            const xs::Clause& clause = rule.clauses(c);
            std::string clause_path = at(join(rule_path, "clauses"), size_t(c));
            state::RbacClause& matches = out.rules[size_t(r)][size_t(c)];
            matches.resize(size_t(clause.matches_size()));
            for (int m = 0; m < clause.matches_size(); ++m) {
                if (!rbac_match(t, clause.matches(m), at(join(clause_path, "matches"), size_t(m)),
                                matches[size_t(m)])) {
                    return false;
                }
            }
        }
    }
    return true;
}

}  // namespace

AddressOutcome translate_address(const istio::workload::Address& address,
                                 const TranslateContext& context) {
    Translation t;
    AddressOutcome outcome;
    switch (address.type_case()) {
        case xw::Address::kWorkload:
            outcome.workload = translate_workload(t, address.workload(), context);
            break;
        case xw::Address::kService:
            outcome.service = translate_service(t, address.service());
            break;
        case xw::Address::TYPE_NOT_SET:
            t.fail("", "unknown address type (neither workload nor service)");
            break;
    }
    outcome.error = std::move(t.error);
    outcome.warnings = std::move(t.warnings);
    return outcome;
}

PolicyOutcome translate_authorization(const istio::security::Authorization& authorization,
                                      const TranslateContext& /*context*/) {
    Translation t;
    PolicyOutcome outcome;
    state::Policy policy;
    policy.name = authorization.name();
    policy.namespace_ = authorization.namespace_();
    policy.dry_run = authorization.dry_run();
    switch (authorization.scope()) {
        case xs::GLOBAL:
            policy.scope = state::PolicyScope::global;
            break;
        case xs::NAMESPACE:
            policy.scope = state::PolicyScope::namespace_;
            break;
        case xs::WORKLOAD_SELECTOR:
            policy.scope = state::PolicyScope::workload_selector;
            break;
        default:
            t.fail("scope", "unknown enum value " + std::to_string(authorization.scope()));
    }
    if (t.error.empty() && !xs::Action_IsValid(authorization.action())) {
        t.fail("action", "unknown enum value " + std::to_string(authorization.action()));
    }
    policy.action = authorization.action() == xs::DENY ? state::PolicyAction::deny
                                                       : state::PolicyAction::allow;
    if (t.error.empty() && policy_rules(t, authorization, policy)) {
        outcome.policy = std::move(policy);
    }
    outcome.error = std::move(t.error);
    outcome.warnings = std::move(t.warnings);
    return outcome;
}

}  // namespace zt::agent
