// render.cc writes `state::Config` as the JSON text `parse.cc` reads. It writes the text
// directly (no DOM: the agent renders the whole file for every batch of changes, 10,000
// workloads included, so it should cost one pass over the output), in a fixed key order, and
// it validates UTF-8 as it escapes so the result is JSON whatever a string holds. Which keys
// are written is decided next to each object below; the rule is in render.h. This file must
// stay the exact inverse of parse.cc: a key added there is added here, and the round-trip test
// (render_test.cc) covers every key.

#include "src/config/render.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace zt::config {

namespace {

// Out is a JSON text being written: it puts the commas between members and elements, so the
// object writers below only name keys and values.
class Out {
public:
    explicit Out(std::string& text) : text_(text) {}

    void begin_object() { open('{'); }

    void end_object() { close('}'); }

    void begin_array() { open('['); }

    void end_array() { close(']'); }

    // key starts the member `name`; the next value written is its value.
    void key(std::string_view name) {
        separate();
        quoted(name);
        text_.push_back(':');
        after_key_ = true;
    }

    void string(std::string_view value) {
        separate();
        quoted(value);
    }

    void number(uint64_t value) {
        separate();
        text_.append(std::to_string(value));
    }

    void boolean(bool value) {
        separate();
        text_.append(value ? "true" : "false");
    }

    void string_member(std::string_view name, std::string_view value) {
        key(name);
        string(value);
    }

    void number_member(std::string_view name, uint64_t value) {
        key(name);
        number(value);
    }

    void bool_member(std::string_view name, bool value) {
        key(name);
        boolean(value);
    }

private:
    void open(char bracket) {
        separate();
        text_.push_back(bracket);
        first_.push_back(true);
    }

    void close(char bracket) {
        text_.push_back(bracket);
        first_.pop_back();
    }

    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (!first_.empty()) {
            if (!first_.back()) {
                text_.push_back(',');
            }
            first_.back() = false;
        }
    }

    void quoted(std::string_view value);

    std::string& text_;
    std::vector<bool> first_;  // Per open container: nothing written in it yet.
    bool after_key_ = false;
};

// utf8_sequence_length returns the length of the well-formed UTF-8 sequence at the start of
// `bytes` (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when it is
// not one. The JSON reader rejects exactly these, so the writer must not emit them.
size_t utf8_sequence_length(std::string_view bytes) {
    auto at = [&](size_t i) {
        return uint8_t(bytes[i]);
    };
    auto continuation = [&](size_t i, uint8_t low, uint8_t high) {
        return i < bytes.size() && at(i) >= low && at(i) <= high;
    };
    uint8_t lead = at(0);
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return continuation(1, 0x80, 0xBF) ? 2 : 0;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        uint8_t low = lead == 0xE0 ? 0xA0 : 0x80;
        uint8_t high = lead == 0xED ? 0x9F : 0xBF;
        return continuation(1, low, high) && continuation(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        uint8_t low = lead == 0xF0 ? 0x90 : 0x80;
        uint8_t high = lead == 0xF4 ? 0x8F : 0xBF;
        return continuation(1, low, high) && continuation(2, 0x80, 0xBF) &&
                               continuation(3, 0x80, 0xBF)
                       ? 4
                       : 0;
    }
    return 0;
}

void Out::quoted(std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    text_.push_back('"');
    size_t i = 0;
    while (i < value.size()) {
        // Most text is printable ASCII: copy such a run in one append.
        size_t run = i;
        while (run < value.size() && uint8_t(value[run]) >= 0x20 && uint8_t(value[run]) < 0x80 &&
               value[run] != '"' && value[run] != '\\') {
            ++run;
        }
        if (run > i) {
            text_.append(value.substr(i, run - i));
            i = run;
            continue;
        }
        auto c = uint8_t(value[i]);
        if (c == '"' || c == '\\') {
            text_.push_back('\\');
            text_.push_back(char(c));
            ++i;
        } else if (c < 0x20) {
            text_.append("\\u00");
            text_.push_back(kHex[c >> 4]);
            text_.push_back(kHex[c & 15]);
            ++i;
        } else if (size_t n = utf8_sequence_length(value.substr(i)); n > 0) {
            text_.append(value.substr(i, n));
            i += n;
        } else {
            text_.append("\\ufffd");  // One replacement per byte that starts no sequence.
            ++i;
        }
    }
    text_.push_back('"');
}

// --- shared encodings ----------------------------------------------------------------------

// port_map writes a PortMap as `{"80":8080}` (string keys, as ztunnel's YAML integer keys
// become in JSON).
void port_map(Out& out, const state::PortMap& ports) {
    out.begin_object();
    for (const auto& [service_port, target_port] : ports) {
        out.number_member(std::to_string(service_port), target_port);
    }
    out.end_object();
}

void string_list(Out& out, const std::vector<std::string>& values) {
    out.begin_array();
    for (const auto& value : values) {
        out.string(value);
    }
    out.end_array();
}

// gateway writes a GatewayAddress; `destination` is untagged, `network/ip` or
// `namespace/hostname`, and both keys are always there.
void gateway(Out& out, const state::GatewayAddress& address) {
    out.begin_object();
    if (address.address) {
        out.string_member("destination", address.address->to_string());
    } else if (address.host) {
        out.string_member("destination", address.host->to_string());
    } else {
        out.string_member("destination", "");  // Not a config parse can produce.
    }
    out.number_member("hboneMtlsPort", address.hbone_mtls_port);
    out.end_object();
}

// --- workloads -----------------------------------------------------------------------------

void workload_identity_and_addresses(Out& out, const state::Workload& w) {
    out.string_member("uid", w.uid);
    if (!w.name.empty()) {
        out.string_member("name", w.name);
    }
    out.string_member("namespace", w.namespace_);
    out.string_member("serviceAccount", w.service_account);
    if (!w.trust_domain.empty()) {
        out.string_member("trustDomain", w.trust_domain);
    }
    out.key("workloadIps");
    out.begin_array();
    for (const auto& ip : w.workload_ips) {
        out.string(ip.to_string());
    }
    out.end_array();
    out.string_member("protocol", state::to_string(w.protocol));
    if (w.network_mode != state::NetworkMode::standard) {
        out.string_member("networkMode", state::to_string(w.network_mode));
    }
    if (!w.network.empty()) {
        out.string_member("network", w.network);
    }
    if (!w.node.empty()) {
        out.string_member("node", w.node);
    }
    if (w.cluster_id != "Kubernetes") {
        out.string_member("clusterId", w.cluster_id);
    }
}

void workload_telemetry_and_balance(Out& out, const state::Workload& w) {
    const std::pair<std::string_view, const std::string*> labels[] = {
            {"workloadName", &w.workload_name},
            {"workloadType", &w.workload_type},
            {"canonicalName", &w.canonical_name},
            {"canonicalRevision", &w.canonical_revision},
            {"hostname", &w.hostname},
    };
    for (const auto& [name, value] : labels) {
        if (!value->empty()) {
            out.string_member(name, *value);
        }
    }
    if (w.status != state::HealthStatus::healthy) {
        out.string_member("status", state::to_string(w.status));
    }
    if (w.capacity != 1) {
        out.number_member("capacity", w.capacity);
    }
    if (w.native_tunnel) {
        out.bool_member("nativeTunnel", true);
    }
    if (w.locality) {
        out.key("locality");
        out.begin_object();
        out.string_member("region", w.locality->region);
        out.string_member("zone", w.locality->zone);
        out.string_member("subzone", w.locality->subzone);
        out.end_object();
    }
}

void workload_routing(Out& out, const state::Workload& w) {
    if (w.waypoint) {
        out.key("waypoint");
        gateway(out, *w.waypoint);
    }
    if (w.network_gateway) {
        out.key("networkGateway");
        gateway(out, *w.network_gateway);
    }
    if (w.application_tunnel) {
        out.key("applicationTunnel");
        out.begin_object();
        out.string_member("protocol", state::to_string(w.application_tunnel->protocol));
        if (w.application_tunnel->port) {
            out.number_member("port", *w.application_tunnel->port);
        }
        out.end_object();
    }
    if (!w.authorization_policies.empty()) {
        out.key("authorizationPolicies");
        string_list(out, w.authorization_policies);
    }
    out.key("services");
    out.begin_object();
    for (const auto& entry : w.services) {
        out.key(entry.service.to_string());
        port_map(out, entry.ports);
    }
    out.end_object();
}

void workload(Out& out, const state::Workload& w) {
    out.begin_object();
    workload_identity_and_addresses(out, w);
    workload_telemetry_and_balance(out, w);
    workload_routing(out, w);
    out.end_object();
}

// --- services ------------------------------------------------------------------------------

void service_addresses(Out& out, const state::Service& s) {
    out.key("vips");
    out.begin_array();
    for (const auto& vip : s.vips) {
        out.string(vip.to_string());
    }
    out.end_array();
    if (!s.cidr_vips.empty()) {
        out.key("cidrVips");
        out.begin_array();
        for (const auto& vip : s.cidr_vips) {
            out.begin_object();
            out.string_member("network", vip.network);
            out.string_member("cidr", vip.cidr.to_string());
            out.end_object();
        }
        out.end_array();
    }
    out.key("ports");
    port_map(out, s.ports);
    if (!s.subject_alt_names.empty()) {
        out.key("subjectAltNames");
        string_list(out, s.subject_alt_names);
    }
}

// explicit_endpoints writes `endpoints`, a map keyed by workload uid in ztunnel. parse ignores
// the keys; a uid listed twice gets a `#index` suffix so the keys stay distinct.
void explicit_endpoints(Out& out, const std::vector<state::ExplicitEndpoint>& endpoints) {
    out.key("endpoints");
    out.begin_object();
    for (size_t i = 0; i < endpoints.size(); ++i) {
        const state::ExplicitEndpoint& endpoint = endpoints[i];
        bool repeated = false;
        for (size_t j = 0; j < i && !repeated; ++j) {
            repeated = endpoints[j].workload_uid == endpoint.workload_uid;
        }
        out.key(repeated ? endpoint.workload_uid + "#" + std::to_string(i) : endpoint.workload_uid);
        out.begin_object();
        out.string_member("workloadUid", endpoint.workload_uid);
        out.key("port");
        port_map(out, endpoint.ports);
        out.string_member("status", state::to_string(endpoint.status));
        out.end_object();
    }
    out.end_object();
}

void service_routing(Out& out, const state::Service& s) {
    if (s.waypoint) {
        out.key("waypoint");
        gateway(out, *s.waypoint);
    }
    if (!s.weighted_waypoints.empty()) {
        out.key("weightedWaypoints");
        out.begin_array();
        for (const auto& weighted : s.weighted_waypoints) {
            out.begin_object();
            out.key("destination");
            gateway(out, weighted.destination);
            out.number_member("weight", weighted.weight);
            out.end_object();
        }
        out.end_array();
    }
    if (s.load_balancer) {
        out.key("loadBalancer");
        out.begin_object();
        out.key("routingPreferences");
        out.begin_array();
        for (auto preference : s.load_balancer->routing_preferences) {
            out.string(state::to_string(preference));
        }
        out.end_array();
        out.string_member("mode", state::to_string(s.load_balancer->mode));
        out.string_member("healthPolicy", state::to_string(s.load_balancer->health_policy));
        out.end_object();
    }
    if (s.ip_families != state::IpFamilies::any) {
        out.string_member("ipFamilies", state::to_string(s.ip_families));
    }
    if (s.canonical) {
        out.bool_member("canonical", true);
    }
    if (s.visibility != state::Visibility::public_) {
        out.string_member("visibility", state::to_string(s.visibility));
    }
}

void service(Out& out, const state::Service& s) {
    out.begin_object();
    out.string_member("name", s.name);
    out.string_member("namespace", s.namespace_);
    out.string_member("hostname", s.hostname);
    service_addresses(out, s);
    if (!s.endpoints.empty()) {
        explicit_endpoints(out, s.endpoints);
    }
    service_routing(out, s);
    out.end_object();
}

// --- policies ------------------------------------------------------------------------------

void string_matches(Out& out, std::string_view name, const std::vector<state::StringMatch>& list) {
    if (list.empty()) {
        return;
    }
    using Kind = state::StringMatch::Kind;
    out.key(name);
    out.begin_array();
    for (const auto& match : list) {
        out.begin_object();
        switch (match.kind) {
            case Kind::exact:
                out.string_member("Exact", match.value);
                break;
            case Kind::prefix:
                out.string_member("Prefix", match.value);
                break;
            case Kind::suffix:
                out.string_member("Suffix", match.value);
                break;
            case Kind::presence:
                out.key("Presence");
                out.begin_array();
                out.end_array();
                break;
        }
        out.end_object();
    }
    out.end_array();
}

void account_matches(Out& out, std::string_view name,
                     const std::vector<state::ServiceAccountMatch>& list) {
    if (list.empty()) {
        return;
    }
    out.key(name);
    out.begin_array();
    for (const auto& match : list) {
        out.begin_object();
        out.string_member("namespace", match.namespace_);
        out.string_member("serviceAccount", match.service_account);
        out.end_object();
    }
    out.end_array();
}

void cidrs(Out& out, std::string_view name, const std::vector<state::Cidr>& list) {
    if (list.empty()) {
        return;
    }
    out.key(name);
    out.begin_array();
    for (const auto& cidr : list) {
        out.string(cidr.to_string());
    }
    out.end_array();
}

void ports(Out& out, std::string_view name, const std::vector<uint16_t>& list) {
    if (list.empty()) {
        return;
    }
    out.key(name);
    out.begin_array();
    for (uint16_t port : list) {
        out.number(port);
    }
    out.end_array();
}

// rbac_match writes every non-empty field; a match with none is `{}` (it never matches).
void rbac_match(Out& out, const state::RbacMatch& m) {
    out.begin_object();
    string_matches(out, "namespaces", m.namespaces);
    string_matches(out, "notNamespaces", m.not_namespaces);
    account_matches(out, "serviceAccounts", m.service_accounts);
    account_matches(out, "notServiceAccounts", m.not_service_accounts);
    string_matches(out, "principals", m.principals);
    string_matches(out, "notPrincipals", m.not_principals);
    cidrs(out, "sourceIps", m.source_ips);
    cidrs(out, "notSourceIps", m.not_source_ips);
    cidrs(out, "destinationIps", m.destination_ips);
    cidrs(out, "notDestinationIps", m.not_destination_ips);
    ports(out, "destinationPorts", m.destination_ports);
    ports(out, "notDestinationPorts", m.not_destination_ports);
    out.end_object();
}

void policy(Out& out, const state::Policy& p) {
    out.begin_object();
    out.string_member("name", p.name);
    out.string_member("namespace", p.namespace_);
    out.string_member("scope", state::to_string(p.scope));
    out.string_member("action", state::to_string(p.action));
    out.bool_member("dryRun", p.dry_run);
    out.key("rules");
    out.begin_array();
    for (const auto& rule : p.rules) {
        out.begin_array();
        for (const auto& clause : rule) {
            out.begin_array();
            for (const auto& match : clause) {
                rbac_match(out, match);
            }
            out.end_array();
        }
        out.end_array();
    }
    out.end_array();
    out.end_object();
}

void pod(Out& out, const state::Pod& p) {
    out.begin_object();
    out.string_member("uid", p.uid);
    out.string_member("netns", p.netns);
    // What the CNI said of the pod (ZDS WorkloadInfo): all three or none (parse.cc).
    if (p.has_info()) {
        out.string_member("name", p.name);
        out.string_member("namespace", p.namespace_);
        out.string_member("serviceAccount", p.service_account);
    }
    out.end_object();
}

// The file's frame: one object of four sections, each a list with one element per line.
constexpr std::string_view kFileStart = "{\n";
constexpr std::string_view kFileEnd = "}\n";

void open_section(std::string& text, std::string_view name) {
    text.append("\"");
    text.append(name);
    text.append("\": [");
}

void close_section(std::string& text, bool empty, bool last) {
    text.append(empty ? "]" : "\n]");
    text.append(last ? "\n" : ",\n");
}

// section writes `"name": [` and one element per line.
template <class T>
void section(std::string& text, std::string_view name, const std::vector<T>& items,
             void (*write_one)(Out&, const T&), bool last) {
    open_section(text, name);
    for (size_t i = 0; i < items.size(); ++i) {
        text.append(i == 0 ? "\n" : ",\n");
        Out out(text);
        write_one(out, items[i]);
    }
    close_section(text, items.empty(), last);
}

// section_of_lines is `section` for elements already rendered by `render_line`.
void section_of_lines(std::string& text, std::string_view name,
                      const std::vector<std::string>& lines, bool last) {
    open_section(text, name);
    for (size_t i = 0; i < lines.size(); ++i) {
        text.append(i == 0 ? "\n" : ",\n");
        text.append(lines[i]);
    }
    close_section(text, lines.empty(), last);
}

}  // namespace

std::string render(const state::Config& config) {
    std::string text;
    // About what a workload line takes, so a large file grows the buffer only a few times.
    text.reserve(256 + 512 * (config.workloads.size() + config.services.size()) +
                 256 * (config.policies.size() + config.pods.size()));
    text.append(kFileStart);
    section(text, "workloads", config.workloads, &workload, false);
    section(text, "services", config.services, &service, false);
    section(text, "policies", config.policies, &policy, false);
    section(text, "pods", config.pods, &pod, true);
    text.append(kFileEnd);
    return text;
}

void render_line(std::string& text, const state::Workload& w) {
    Out out(text);
    workload(out, w);
}

void render_line(std::string& text, const state::Service& s) {
    Out out(text);
    service(out, s);
}

void render_line(std::string& text, const state::Policy& p) {
    Out out(text);
    policy(out, p);
}

void render_line(std::string& text, const state::Pod& p) {
    Out out(text);
    pod(out, p);
}

std::string render_lines(const RenderedLines& lines) {
    size_t size = 64;
    for (const auto* list : {&lines.workloads, &lines.services, &lines.policies, &lines.pods}) {
        for (const std::string& line : *list) {
            size += line.size() + 2;
        }
    }
    std::string text;
    text.reserve(size);
    text.append(kFileStart);
    section_of_lines(text, "workloads", lines.workloads, false);
    section_of_lines(text, "services", lines.services, false);
    section_of_lines(text, "policies", lines.policies, false);
    section_of_lines(text, "pods", lines.pods, true);
    text.append(kFileEnd);
    return text;
}

}  // namespace zt::config
