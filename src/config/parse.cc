// parse.cc turns config JSON into `state::Config`. nlohmann's SAX parser (iterative, validates
// UTF-8) feeds our own handler, which builds a compact flat DOM and enforces the depth cap and
// duplicate-key rejection during the parse (nlohmann's own DOM recurses on copy and dump, and
// silently keeps the last duplicate). One reader per object kind then walks that DOM, collecting
// every error with its JSON path. This file must not build indexes or judge cross-object
// consistency: that is `state::Snapshot::build`.

#include "src/config/parse.h"

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "certs/identity.h"

namespace zt::config {

namespace {

using state::Config;
using state::PortMap;

// --- JSON text to a compact DOM ----------------------------------------------------------------

// Dom is a read-only JSON document in one flat vector of nodes (preorder, each container knowing
// where its subtree ends) plus one string arena. It is several times cheaper to build and walk
// than nlohmann's DOM (a std::map and an allocation per node), which matters for a 5 MB file on
// the control thread (docs/bench/config.md).
class Dom {
public:
    enum class Type : uint8_t {
        null,
        boolean,
        number_unsigned,
        number_integer,
        number_float,
        string,
        object,
        array
    };

    struct Node {
        Type type = Type::null;
        bool boolean = false;
        uint32_t key_off = 0;  // Member key in the arena (children of objects only).
        uint32_t key_len = 0;
        uint32_t end = 0;      // One past the last node of this subtree.
        uint32_t count = 0;    // Children of a container.
        uint32_t str_off = 0;  // String value in the arena; for arrays, the child table offset.
        uint32_t str_len = 0;

        union {
            uint64_t u;
            int64_t i;
            double d;
        } number{0};
    };

    std::vector<Node> nodes;
    std::vector<uint32_t> array_children;  // For each array, its children's node indices.
    std::string arena;

    std::string_view text(uint32_t off, uint32_t len) const {
        return std::string_view(arena).substr(off, len);
    }

    // index_arrays fills `array_children` once the document is complete, so `Value::operator[]`
    // is O(1).
    void index_arrays() {
        array_children.reserve(nodes.size());
        for (uint32_t idx = 0; idx < nodes.size(); ++idx) {
            Node& node = nodes[idx];
            if (node.type != Type::array) {
                continue;
            }
            node.str_off = uint32_t(array_children.size());
            for (uint32_t child = idx + 1; child < node.end; child = nodes[child].end) {
                array_children.push_back(child);
            }
        }
    }
};

// Value is a view of one node of a Dom, with the subset of nlohmann's API the reader uses. A
// default Value is "absent" (what `find` returns for a missing key, and what `end()` is).
class Value {
public:
    Value() = default;

    Value(const Dom* dom, uint32_t idx) : dom_(dom), idx_(idx) {}

    bool is_null() const { return type() == Dom::Type::null; }

    bool is_boolean() const { return type() == Dom::Type::boolean; }

    bool is_number_unsigned() const { return type() == Dom::Type::number_unsigned; }

    bool is_number_integer() const {
        return type() == Dom::Type::number_unsigned || type() == Dom::Type::number_integer;
    }

    bool is_string() const { return type() == Dom::Type::string; }

    bool is_object() const { return type() == Dom::Type::object; }

    bool is_array() const { return type() == Dom::Type::array; }

    const char* type_name() const {
        switch (type()) {
            case Dom::Type::null:
                return "null";
            case Dom::Type::boolean:
                return "boolean";
            case Dom::Type::number_unsigned:
            case Dom::Type::number_integer:
            case Dom::Type::number_float:
                return "number";
            case Dom::Type::string:
                return "string";
            case Dom::Type::object:
                return "object";
            case Dom::Type::array:
                return "array";
        }
        return "null";
    }

    std::string_view str() const { return dom_->text(node().str_off, node().str_len); }

    uint64_t u64() const { return node().number.u; }

    int64_t i64() const { return node().number.i; }

    bool boolean() const { return node().boolean; }

    std::string_view key() const { return dom_->text(node().key_off, node().key_len); }

    size_t size() const { return node().count; }

    bool empty() const { return node().count == 0; }

    // operator[] is the i-th element of an array (i < size()).
    Value operator[](size_t i) const {
        return Value(dom_, dom_->array_children[node().str_off + i]);
    }

    // find returns the member `name` of an object, or an absent Value (== end()).
    Value find(std::string_view name) const {
        for (uint32_t child = idx_ + 1; child < node().end; child = dom_->nodes[child].end) {
            if (Value(dom_, child).key() == name) {
                return Value(dom_, child);
            }
        }
        return Value();
    }

    Value end() const { return Value(); }

    bool operator==(const Value& other) const { return idx_ == other.idx_ && dom_ == other.dom_; }

    // Member is one member of an object while iterating `items()`.
    struct Member {
        const Dom* dom;
        uint32_t idx;
        std::string_view key() const;
        Value value() const;
    };

    struct Iterator {
        const Dom* dom;
        uint32_t idx;

        Member operator*() const { return Member{dom, idx}; }

        Iterator& operator++() {
            idx = dom->nodes[idx].end;
            return *this;
        }

        bool operator!=(const Iterator& other) const { return idx != other.idx; }
    };

    struct Range {
        Iterator first;
        Iterator last;

        Iterator begin() const { return first; }

        Iterator end() const { return last; }
    };

    // items iterates the members of an object (or the elements of an array), in file order.
    Range items() const { return Range{{dom_, idx_ + 1}, {dom_, node().end}}; }

private:
    const Dom::Node& node() const { return dom_->nodes[idx_]; }

    Dom::Type type() const { return dom_ == nullptr ? Dom::Type::null : node().type; }

    const Dom* dom_ = nullptr;
    uint32_t idx_ = UINT32_MAX;
};

std::string_view Value::Member::key() const {
    return Value(dom, idx).key();
}

Value Value::Member::value() const {
    return Value(dom, idx);
}

// DomBuilder is the SAX handler that fills a Dom. It stops the parse at once (returns false) on
// nesting deeper than kMaxDepth or a duplicate key within one object, which nlohmann's own DOM
// would silently resolve as "last wins".
class DomBuilder final : public nlohmann::json_sax<nlohmann::json> {
public:
    explicit DomBuilder(Dom& dom) : dom_(dom) {}

    bool null() override { return put(Dom::Node{}); }

    bool boolean(bool value) override {
        Dom::Node node;
        node.type = Dom::Type::boolean;
        node.boolean = value;
        return put(node);
    }

    bool number_integer(number_integer_t value) override {
        Dom::Node node;
        node.type = value >= 0 ? Dom::Type::number_unsigned : Dom::Type::number_integer;
        node.number.i = value;
        return put(node);
    }

    bool number_unsigned(number_unsigned_t value) override {
        Dom::Node node;
        node.type = Dom::Type::number_unsigned;
        node.number.u = value;
        return put(node);
    }

    bool number_float(number_float_t value, const string_t&) override {
        Dom::Node node;
        node.type = Dom::Type::number_float;
        node.number.d = value;
        return put(node);
    }

    bool string(string_t& value) override {
        Dom::Node node;
        node.type = Dom::Type::string;
        node.str_off = uint32_t(dom_.arena.size());
        node.str_len = uint32_t(value.size());
        dom_.arena.append(value);
        return put(node);
    }

    bool binary(binary_t&) override {
        error_ = "binary values are not JSON";
        return false;
    }

    bool start_object(std::size_t) override { return open(Dom::Type::object); }

    bool start_array(std::size_t) override { return open(Dom::Type::array); }

    bool key(string_t& name) override {
        Open& object = stack_.back();
        // Small objects: compare with the keys so far; large maps switch to a hash set.
        if (object.keys) {
            if (!object.keys->insert(name).second) {
                return duplicate(name);
            }
        } else {
            const auto& nodes = dom_.nodes;
            for (uint32_t child = object.idx + 1; child < nodes.size(); child = nodes[child].end) {
                if (dom_.text(nodes[child].key_off, nodes[child].key_len) == name) {
                    return duplicate(name);
                }
            }
            if (dom_.nodes[object.idx].count >= 32) {
                object.keys = std::make_unique<std::unordered_set<std::string>>();
                for (uint32_t child = object.idx + 1; child < nodes.size();
                     child = nodes[child].end) {
                    object.keys->emplace(dom_.text(nodes[child].key_off, nodes[child].key_len));
                }
                object.keys->insert(name);
            }
        }
        key_off_ = uint32_t(dom_.arena.size());
        key_len_ = uint32_t(name.size());
        dom_.arena.append(name);
        return true;
    }

    bool end_object() override { return close(); }

    bool end_array() override { return close(); }

    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        // what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ...".
        std::string_view what = ex.what();
        size_t close_bracket = what.find("] ");
        error_ = std::string(
                close_bracket == std::string_view::npos ? what : what.substr(close_bracket + 2));
        return false;
    }

    const std::string& error() const { return error_; }

    bool too_deep() const { return too_deep_; }

private:
    struct Open {
        uint32_t idx;
        std::unique_ptr<std::unordered_set<std::string>> keys;
    };

    bool duplicate(std::string_view name) {
        error_ = "duplicate key \"" + std::string(name) + "\" in one object";
        return false;
    }

    bool put(Dom::Node node) {
        uint32_t idx = uint32_t(dom_.nodes.size());
        if (idx == UINT32_MAX || dom_.arena.size() > UINT32_MAX / 2) {
            error_ = "document too large";
            return false;
        }
        node.end = idx + 1;
        if (!stack_.empty()) {
            Dom::Node& parent = dom_.nodes[stack_.back().idx];
            ++parent.count;
            if (parent.type == Dom::Type::object) {
                node.key_off = key_off_;
                node.key_len = key_len_;
            }
        }
        dom_.nodes.push_back(node);
        return true;
    }

    bool open(Dom::Type type) {
        if (stack_.size() >= kMaxDepth) {
            error_ = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
            too_deep_ = true;
            return false;
        }
        Dom::Node node;
        node.type = type;
        if (!put(node)) {
            return false;
        }
        stack_.push_back(Open{uint32_t(dom_.nodes.size() - 1), nullptr});
        return true;
    }

    bool close() {
        dom_.nodes[stack_.back().idx].end = uint32_t(dom_.nodes.size());
        stack_.pop_back();
        return true;
    }

    Dom& dom_;
    std::vector<Open> stack_;
    uint32_t key_off_ = 0;
    uint32_t key_len_ = 0;
    std::string error_;
    bool too_deep_ = false;
};

// --- JSON paths ----------------------------------------------------------------------------------

using state::quote_text;

// Path is one step of a JSON path, chained to its parent on the stack; it is rendered only when
// an error needs it, so the happy path builds no strings.
struct Path {
    enum class Kind : uint8_t { root, field, index, map_key };

    const Path* parent = nullptr;
    Kind kind = Kind::root;
    std::string_view key;
    size_t index = 0;

    Path field(std::string_view name) const { return {this, Kind::field, name, 0}; }

    Path at(size_t i) const { return {this, Kind::index, {}, i}; }

    Path map_key(std::string_view name) const { return {this, Kind::map_key, name, 0}; }

    std::string render() const {
        std::string out = raw();
        return out.empty() ? std::string("(top level)") : out;
    }

    std::string raw() const {
        if (kind == Kind::root) {
            return {};
        }
        std::string out = parent->raw();
        switch (kind) {
            case Kind::root:
                break;
            case Kind::field:
                if (!out.empty()) {
                    out.push_back('.');
                }
                out.append(key);
                break;
            case Kind::index:
                out += "[" + std::to_string(index) + "]";
                break;
            case Kind::map_key:
                out += "[" + quote_text(key) + "]";
                break;
        }
        return out;
    }
};

std::string describe(Value value) {
    if (value.is_string()) {
        return quote_text(value.str());
    }
    if (value.is_number_unsigned()) {
        return std::to_string(value.u64());
    }
    if (value.is_number_integer()) {
        return std::to_string(value.i64());
    }
    return std::string(value.type_name());
}

// --- the reader --------------------------------------------------------------------------------

// Reader walks the DOM of one file. Each `read_*` takes the value and its path, fills its output
// as far as it can, and records errors; it never stops at the first one.
class Reader {
public:
    explicit Reader(std::vector<std::string>& errors, std::vector<std::string>& unsupported)
        : errors_(errors), unsupported_(unsupported) {}

    void read_config(Value root, Config& config);

    size_t dropped() const { return dropped_; }

private:
    void error(const Path& path, std::string_view message) {
        if (errors_.size() < kMaxErrors) {
            errors_.push_back(path.render() + ": " + std::string(message));
        } else {
            ++dropped_;
        }
    }

    void unknown_key(const Path& path) { error(path, "unknown key"); }

    void missing(const Path& path, std::string_view key) {
        error(path, "missing required key \"" + std::string(key) + "\"");
    }

    void note_unsupported(std::string_view key) {
        if (std::find(unsupported_.begin(), unsupported_.end(), key) == unsupported_.end()) {
            unsupported_.emplace_back(key);
        }
    }

    bool object(Value value, const Path& path) {
        if (!value.is_object()) {
            error(path, "expected an object, got " + describe(value));
            return false;
        }
        return true;
    }

    bool array(Value value, const Path& path) {
        if (!value.is_array()) {
            error(path, "expected an array, got " + describe(value));
            return false;
        }
        return true;
    }

    bool string(Value value, const Path& path, std::string& out) {
        if (!value.is_string()) {
            error(path, "expected a string, got " + describe(value));
            return false;
        }
        out = value.str();
        return true;
    }

    bool boolean(Value value, const Path& path, bool& out) {
        if (!value.is_boolean()) {
            error(path, "expected true or false, got " + describe(value));
            return false;
        }
        out = value.boolean();
        return true;
    }

    bool unsigned_int(Value value, const Path& path, uint64_t max, uint64_t& out) {
        if (!value.is_number_unsigned() || value.u64() > max) {
            error(path, describe(value) + " is not an integer from 0 to " + std::to_string(max));
            return false;
        }
        out = value.u64();
        return true;
    }

    bool port(Value value, const Path& path, uint16_t& out) {
        if (!value.is_number_unsigned() || value.u64() > 65535) {
            error(path, describe(value) + " is not a port");
            return false;
        }
        out = uint16_t(value.u64());
        return true;
    }

    // enumeration reads one of `values`, spelled as `state::to_string` spells them (the one
    // table of enum names, shared with the dump).
    template <class E>
    bool enumeration(Value value, const Path& path, std::initializer_list<E> values, E& out) {
        if (value.is_string()) {
            for (E candidate : values) {
                if (value.str() == state::to_string(candidate)) {
                    out = candidate;
                    return true;
                }
            }
        }
        std::string expected;
        for (E candidate : values) {
            expected += expected.empty() ? "" : ", ";
            expected.append(state::to_string(candidate));
        }
        error(path, "unknown value " + describe(value) + " (expected one of: " + expected + ")");
        return false;
    }

    void string_list(Value value, const Path& path, std::vector<std::string>& out);
    void ip_list(Value value, const Path& path, std::vector<state::IpAddr>& out);
    void port_map(Value value, const Path& path, PortMap& out);
    void network_address(Value value, const Path& path, std::optional<state::NetworkAddress>& out);
    bool namespaced_hostname(std::string_view text, state::NamespacedHostname& out);
    void gateway(Value value, const Path& path, std::optional<state::GatewayAddress>& out);
    void cidr(Value value, const Path& path, std::optional<state::Cidr>& out);

    void read_workload(Value value, const Path& path, state::Workload& out);
    void read_workload_field(std::string_view key, Value value, const Path& path,
                             state::Workload& out);
    void read_service(Value value, const Path& path, state::Service& out);
    void read_service_field(std::string_view key, Value value, const Path& path,
                            state::Service& out);
    void read_load_balancer(Value value, const Path& path, state::LoadBalancer& out);
    void read_endpoints(Value value, const Path& path, state::Service& out);
    void read_policy(Value value, const Path& path, state::Policy& out);
    void read_match(Value value, const Path& path, state::RbacMatch& out);
    void string_matches(Value value, const Path& path, std::vector<state::StringMatch>& out);
    void sa_matches(Value value, const Path& path, std::vector<state::ServiceAccountMatch>& out);
    void cidr_list(Value value, const Path& path, std::vector<state::Cidr>& out);
    void port_list(Value value, const Path& path, std::vector<uint16_t>& out);
    void read_pod(Value value, const Path& path, state::Pod& out);

    std::vector<std::string>& errors_;
    std::vector<std::string>& unsupported_;
    size_t dropped_ = 0;  // Errors past kMaxErrors, counted but not kept.
};

void Reader::string_list(Value value, const Path& path, std::vector<std::string>& out) {
    if (!array(value, path)) {
        return;
    }
    out.resize(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        string(value[i], path.at(i), out[i]);
    }
}

void Reader::ip_list(Value value, const Path& path, std::vector<state::IpAddr>& out) {
    if (!array(value, path)) {
        return;
    }
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        std::string text;
        if (!string(value[i], path.at(i), text)) {
            continue;
        }
        auto ip = state::IpAddr::parse(text);
        if (!ip) {
            error(path.at(i), "not an IP address: " + quote_text(text));
            continue;
        }
        out.push_back(*ip);
    }
}

void Reader::port_map(Value value, const Path& path, PortMap& out) {
    if (!object(value, path)) {
        return;
    }
    out.reserve(value.size());
    for (const auto& item : value.items()) {
        Path entry = path.map_key(item.key());
        auto service_port = state::parse_decimal(item.key(), 65535);
        if (!service_port || *service_port == 0) {
            error(entry,
                  quote_text(item.key()) + " is not a port (keys are ports written as strings)");
            continue;
        }
        uint16_t target = 0;
        if (port(item.value(), entry, target)) {
            out.emplace_back(uint16_t(*service_port), target);
        }
    }
    std::sort(out.begin(), out.end());
    for (size_t i = 1; i < out.size(); ++i) {
        if (out[i].first == out[i - 1].first) {
            error(path, "port " + std::to_string(out[i].first) + " appears twice");
        }
    }
}

void Reader::network_address(Value value, const Path& path,
                             std::optional<state::NetworkAddress>& out) {
    std::string text;
    if (!string(value, path, text)) {
        return;
    }
    out = state::NetworkAddress::parse(text);
    if (!out) {
        error(path, "not a network/ip address: " + quote_text(text));
    }
}

bool Reader::namespaced_hostname(std::string_view text, state::NamespacedHostname& out) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
        text.find('/', slash + 1) != std::string_view::npos) {
        return false;
    }
    out.namespace_ = std::string(text.substr(0, slash));
    out.hostname = std::string(text.substr(slash + 1));
    return true;
}

void Reader::gateway(Value value, const Path& path, std::optional<state::GatewayAddress>& out) {
    if (!object(value, path)) {
        return;
    }
    state::GatewayAddress gateway;
    bool has_destination = false;
    for (const auto& item : value.items()) {
        Path field = path.field(item.key());
        if (item.key() == "destination") {
            std::string text;
            if (!string(item.value(), field, text)) {
                continue;
            }
            // Untagged in ztunnel: `network/ip` first, then `namespace/hostname`.
            gateway.address = state::NetworkAddress::parse(text);
            if (!gateway.address) {
                state::NamespacedHostname host;
                if (namespaced_hostname(text, host)) {
                    gateway.host = std::move(host);
                } else {
                    error(field, "neither network/ip nor namespace/hostname: " + quote_text(text));
                }
            }
            has_destination = gateway.address.has_value() || gateway.host.has_value();
        } else if (item.key() == "hboneMtlsPort") {
            port(item.value(), field, gateway.hbone_mtls_port);
        } else {
            unknown_key(field);
        }
    }
    // Both keys are required, as in ztunnel's `GatewayAddress` (no serde defaults): a waypoint
    // whose port is guessed would be dialled on the wrong port without a word.
    if (value.find("destination") == value.end()) {
        missing(path, "destination");
    }
    if (value.find("hboneMtlsPort") == value.end()) {
        missing(path, "hboneMtlsPort");
    }
    if (has_destination) {
        out = std::move(gateway);
    }
}

void Reader::cidr(Value value, const Path& path, std::optional<state::Cidr>& out) {
    std::string text;
    if (!string(value, path, text)) {
        return;
    }
    out = state::Cidr::parse(text);
    if (out) {
        return;
    }
    size_t slash = text.find('/');
    auto ip = state::IpAddr::parse(std::string_view(text).substr(0, slash));
    if (slash == std::string::npos) {
        error(path, "not a CIDR (an address/prefix length is required): " + quote_text(text));
    } else if (!ip) {
        error(path, "not a CIDR (bad address): " + quote_text(text));
    } else {
        error(path, "not a CIDR (prefix length must be 0 to " + std::string(ip->v6 ? "128" : "32") +
                            "): " + quote_text(text));
    }
}

// --- workloads ---------------------------------------------------------------------------------

void Reader::read_workload(Value value, const Path& path, state::Workload& out) {
    if (!object(value, path)) {
        return;
    }
    for (const char* required : {"uid", "namespace", "workloadIps", "services"}) {
        if (value.find(required) == value.end()) {
            missing(path, required);
        }
    }
    for (const auto& item : value.items()) {
        read_workload_field(item.key(), item.value(), path.field(item.key()), out);
    }
    if (out.service_account.empty()) {
        out.service_account = "default";  // ztunnel's xDS default (docs/ecosystem.md §4.2).
    }
    // The identity is what certificates are issued for and peers are checked against, so it
    // must be a valid SPIFFE ID; "cluster.local" stands in for the run's default trust domain.
    if (!out.namespace_.empty() &&
        !certs::Identity::from_parts(out.trust_domain.empty() ? "cluster.local" : out.trust_domain,
                                     out.namespace_, out.service_account)) {
        error(path, "trustDomain, namespace and serviceAccount do not form a valid SPIFFE ID: " +
                            quote_text(out.identity("cluster.local")));
    }
    if (out.cluster_id.empty()) {
        out.cluster_id = "Kubernetes";
    }
}

void Reader::read_workload_field(std::string_view key, Value value, const Path& path,
                                 state::Workload& out) {
    using state::Workload;
    if (key == "uid") {
        if (string(value, path, out.uid) && out.uid.empty()) {
            error(path, "must not be empty");
        }
    } else if (key == "name") {
        string(value, path, out.name);
    } else if (key == "namespace") {
        if (string(value, path, out.namespace_) && out.namespace_.empty()) {
            error(path, "must not be empty");
        }
    } else if (key == "serviceAccount") {
        string(value, path, out.service_account);
    } else if (key == "trustDomain") {
        string(value, path, out.trust_domain);
    } else if (key == "workloadIps") {
        ip_list(value, path, out.workload_ips);
    } else if (key == "protocol") {
        enumeration<state::Protocol>(value, path, {state::Protocol::tcp, state::Protocol::hbone},
                                     out.protocol);
    } else if (key == "networkMode") {
        enumeration<state::NetworkMode>(
                value, path, {state::NetworkMode::standard, state::NetworkMode::host_network},
                out.network_mode);
    } else if (key == "network") {
        string(value, path, out.network);
    } else if (key == "node") {
        string(value, path, out.node);
    } else if (key == "clusterId") {
        string(value, path, out.cluster_id);
    } else if (key == "workloadName") {
        string(value, path, out.workload_name);
    } else if (key == "workloadType") {
        string(value, path, out.workload_type);
    } else if (key == "canonicalName") {
        string(value, path, out.canonical_name);
    } else if (key == "canonicalRevision") {
        string(value, path, out.canonical_revision);
    } else if (key == "hostname") {
        // A hostname-only workload is resolved on demand at connect time (src/proxy/on_demand.h).
        string(value, path, out.hostname);
    } else if (key == "status") {
        enumeration<state::HealthStatus>(
                value, path, {state::HealthStatus::healthy, state::HealthStatus::unhealthy},
                out.status);
    } else if (key == "capacity") {
        uint64_t capacity = 1;
        if (unsigned_int(value, path, UINT32_MAX, capacity)) {
            out.capacity = uint32_t(capacity);
        }
    } else if (key == "nativeTunnel") {
        boolean(value, path, out.native_tunnel);
    } else if (key == "locality") {
        if (!object(value, path)) {
            return;
        }
        // All three parts are required, as in ztunnel's `Locality` (no serde defaults); an empty
        // string is a value ("no subzone"), a missing key is a mistake.
        for (const char* required : {"region", "zone", "subzone"}) {
            if (value.find(required) == value.end()) {
                missing(path, required);
            }
        }
        state::Locality locality;
        for (const auto& item : value.items()) {
            Path field = path.field(item.key());
            if (item.key() == "region") {
                string(item.value(), field, locality.region);
            } else if (item.key() == "zone") {
                string(item.value(), field, locality.zone);
            } else if (item.key() == "subzone") {
                string(item.value(), field, locality.subzone);
            } else {
                unknown_key(field);
            }
        }
        out.locality = std::move(locality);
    } else if (key == "waypoint") {
        gateway(value, path, out.waypoint);
    } else if (key == "networkGateway") {
        gateway(value, path, out.network_gateway);
        note_unsupported("workloads[].networkGateway");
    } else if (key == "applicationTunnel") {
        if (!object(value, path)) {
            return;
        }
        state::ApplicationTunnel tunnel;
        if (value.find("protocol") == value.end()) {
            missing(path, "protocol");
        }
        for (const auto& item : value.items()) {
            Path field = path.field(item.key());
            if (item.key() == "protocol") {
                enumeration<state::ApplicationTunnel::Protocol>(
                        item.value(), field,
                        {state::ApplicationTunnel::Protocol::none,
                         state::ApplicationTunnel::Protocol::proxy},
                        tunnel.protocol);
            } else if (item.key() == "port") {
                uint16_t number = 0;
                if (port(item.value(), field, number)) {
                    tunnel.port = number;
                }
            } else {
                unknown_key(field);
            }
        }
        out.application_tunnel = tunnel;
    } else if (key == "authorizationPolicies") {
        string_list(value, path, out.authorization_policies);
    } else if (key == "services") {
        if (!object(value, path)) {
            return;
        }
        out.services.reserve(value.size());
        for (const auto& item : value.items()) {
            Path entry = path.map_key(item.key());
            state::WorkloadService ws;
            if (!namespaced_hostname(item.key(), ws.service)) {
                error(entry, "key is not namespace/hostname");
                continue;
            }
            port_map(item.value(), entry, ws.ports);
            out.services.push_back(std::move(ws));
        }
    } else {
        unknown_key(path);
    }
}

// --- services ----------------------------------------------------------------------------------

void Reader::read_service(Value value, const Path& path, state::Service& out) {
    if (!object(value, path)) {
        return;
    }
    for (const char* required : {"name", "namespace", "hostname", "vips", "ports"}) {
        if (value.find(required) == value.end()) {
            missing(path, required);
        }
    }
    for (const auto& item : value.items()) {
        read_service_field(item.key(), item.value(), path.field(item.key()), out);
    }
}

void Reader::read_service_field(std::string_view key, Value value, const Path& path,
                                state::Service& out) {
    if (key == "name") {
        string(value, path, out.name);
    } else if (key == "namespace") {
        if (string(value, path, out.namespace_) && out.namespace_.empty()) {
            error(path, "must not be empty");
        }
    } else if (key == "hostname") {
        if (string(value, path, out.hostname) && out.hostname.empty()) {
            error(path, "must not be empty");
        }
    } else if (key == "vips") {
        if (!array(value, path)) {
            return;
        }
        for (size_t i = 0; i < value.size(); ++i) {
            std::optional<state::NetworkAddress> vip;
            network_address(value[i], path.at(i), vip);
            if (vip) {
                out.vips.push_back(std::move(*vip));
            }
        }
    } else if (key == "cidrVips") {
        if (!array(value, path)) {
            return;
        }
        for (size_t i = 0; i < value.size(); ++i) {
            Path entry = path.at(i);
            if (!object(value[i], entry)) {
                continue;
            }
            state::NetworkCidr vip;
            std::optional<state::Cidr> parsed;
            bool has_cidr = false;
            for (const auto& item : value[i].items()) {
                Path field = entry.field(item.key());
                if (item.key() == "network") {
                    string(item.value(), field, vip.network);
                } else if (item.key() == "cidr") {
                    has_cidr = true;
                    cidr(item.value(), field, parsed);
                } else {
                    unknown_key(field);
                }
            }
            if (!has_cidr) {
                missing(entry, "cidr");
            } else if (parsed) {
                vip.cidr = *parsed;
                out.cidr_vips.push_back(std::move(vip));
            }
        }
    } else if (key == "ports") {
        port_map(value, path, out.ports);
    } else if (key == "subjectAltNames") {
        string_list(value, path, out.subject_alt_names);
        for (size_t i = 0; i < out.subject_alt_names.size(); ++i) {
            if (value[i].is_string() && !is_spiffe_id(out.subject_alt_names[i])) {
                error(path.at(i), "not a SPIFFE ID: " + quote_text(out.subject_alt_names[i]));
            }
        }
    } else if (key == "endpoints") {
        read_endpoints(value, path, out);
    } else if (key == "waypoint") {
        gateway(value, path, out.waypoint);
    } else if (key == "weightedWaypoints") {
        if (!array(value, path)) {
            return;
        }
        for (size_t i = 0; i < value.size(); ++i) {
            Path entry = path.at(i);
            if (!object(value[i], entry)) {
                continue;
            }
            // Both keys are required (ztunnel's `WeightedWaypoint` has no serde defaults): a
            // missing weight must not silently become 0 and drop the waypoint from the sample.
            for (const char* required : {"destination", "weight"}) {
                if (value[i].find(required) == value[i].end()) {
                    missing(entry, required);
                }
            }
            state::WeightedWaypoint weighted;
            std::optional<state::GatewayAddress> destination;
            for (const auto& item : value[i].items()) {
                Path field = entry.field(item.key());
                if (item.key() == "destination") {
                    gateway(item.value(), field, destination);
                } else if (item.key() == "weight") {
                    uint64_t weight = 0;
                    if (unsigned_int(item.value(), field, UINT32_MAX, weight)) {
                        weighted.weight = uint32_t(weight);
                    }
                } else {
                    unknown_key(field);
                }
            }
            if (destination) {
                weighted.destination = std::move(*destination);
                out.weighted_waypoints.push_back(std::move(weighted));
            }
        }
    } else if (key == "loadBalancer") {
        state::LoadBalancer balancer;
        read_load_balancer(value, path, balancer);
        out.load_balancer = std::move(balancer);
    } else if (key == "ipFamilies") {
        enumeration<state::IpFamilies>(
                value, path,
                {state::IpFamilies::dual, state::IpFamilies::ipv4, state::IpFamilies::ipv6},
                out.ip_families);
    } else if (key == "canonical") {
        boolean(value, path, out.canonical);
    } else if (key == "visibility") {
        enumeration<state::Visibility>(value, path,
                                       {state::Visibility::public_, state::Visibility::namespace_},
                                       out.visibility);
    } else {
        unknown_key(path);
    }
}

void Reader::read_load_balancer(Value value, const Path& path, state::LoadBalancer& out) {
    if (!object(value, path)) {
        return;
    }
    // Every key is required, as in ztunnel's `LoadBalancer` (no serde defaults): a `Strict`
    // policy whose preferences went missing would silently become "any endpoint".
    for (const char* required : {"mode", "routingPreferences", "healthPolicy"}) {
        if (value.find(required) == value.end()) {
            missing(path, required);
        }
    }
    for (const auto& item : value.items()) {
        Path field = path.field(item.key());
        if (item.key() == "routingPreferences") {
            if (!array(item.value(), field)) {
                continue;
            }
            for (size_t i = 0; i < item.value().size(); ++i) {
                state::RoutingPreference preference{};
                if (enumeration<state::RoutingPreference>(
                            item.value()[i], field.at(i),
                            {state::RoutingPreference::region, state::RoutingPreference::zone,
                             state::RoutingPreference::subzone, state::RoutingPreference::node,
                             state::RoutingPreference::cluster, state::RoutingPreference::network},
                            preference)) {
                    out.routing_preferences.push_back(preference);
                }
            }
        } else if (item.key() == "mode") {
            enumeration<state::LoadBalancerMode>(
                    item.value(), field,
                    {state::LoadBalancerMode::standard, state::LoadBalancerMode::strict,
                     state::LoadBalancerMode::failover, state::LoadBalancerMode::passthrough},
                    out.mode);
        } else if (item.key() == "healthPolicy") {
            enumeration<state::HealthPolicy>(
                    item.value(), field,
                    {state::HealthPolicy::only_healthy, state::HealthPolicy::allow_all},
                    out.health_policy);
        } else {
            unknown_key(field);
        }
    }
}

void Reader::read_endpoints(Value value, const Path& path, state::Service& out) {
    if (!object(value, path)) {
        return;
    }
    for (const auto& item : value.items()) {
        Path entry = path.map_key(item.key());
        if (!object(item.value(), entry)) {
            continue;
        }
        state::ExplicitEndpoint endpoint;
        bool has_uid = false;
        for (const auto& field_item : item.value().items()) {
            Path field = entry.field(field_item.key());
            if (field_item.key() == "workloadUid") {
                has_uid = string(field_item.value(), field, endpoint.workload_uid);
            } else if (field_item.key() == "port") {
                port_map(field_item.value(), field, endpoint.ports);
            } else if (field_item.key() == "status") {
                enumeration<state::HealthStatus>(
                        field_item.value(), field,
                        {state::HealthStatus::healthy, state::HealthStatus::unhealthy},
                        endpoint.status);
            } else {
                unknown_key(field);
            }
        }
        // ztunnel's `Endpoint` has no serde defaults: all three keys are required.
        for (const char* required : {"workloadUid", "port", "status"}) {
            if (item.value().find(required) == item.value().end()) {
                missing(entry, required);
            }
        }
        if (has_uid) {
            out.endpoints.push_back(std::move(endpoint));
        }
    }
}

// --- policies ----------------------------------------------------------------------------------

void Reader::read_policy(Value value, const Path& path, state::Policy& out) {
    if (!object(value, path)) {
        return;
    }
    // `dryRun` is optional: ztunnel's own examples/localhost.yaml leaves it out.
    for (const char* required : {"name", "namespace", "scope", "action", "rules"}) {
        if (value.find(required) == value.end()) {
            missing(path, required);
        }
    }
    for (const auto& item : value.items()) {
        Path field = path.field(item.key());
        Value v = item.value();
        if (item.key() == "name") {
            string(v, field, out.name);
        } else if (item.key() == "namespace") {
            string(v, field, out.namespace_);
        } else if (item.key() == "scope") {
            enumeration<state::PolicyScope>(
                    v, field,
                    {state::PolicyScope::global, state::PolicyScope::namespace_,
                     state::PolicyScope::workload_selector},
                    out.scope);
        } else if (item.key() == "action") {
            enumeration<state::PolicyAction>(
                    v, field, {state::PolicyAction::allow, state::PolicyAction::deny}, out.action);
        } else if (item.key() == "dryRun") {
            boolean(v, field, out.dry_run);
        } else if (item.key() == "rules") {
            if (!array(v, field)) {
                continue;
            }
            out.rules.resize(v.size());
            for (size_t r = 0; r < v.size(); ++r) {
                Path rule_path = field.at(r);
                if (!array(v[r], rule_path)) {
                    continue;
                }
                out.rules[r].resize(v[r].size());
                for (size_t c = 0; c < v[r].size(); ++c) {
                    Path clause_path = rule_path.at(c);
                    if (!array(v[r][c], clause_path)) {
                        continue;
                    }
                    out.rules[r][c].resize(v[r][c].size());
                    for (size_t m = 0; m < v[r][c].size(); ++m) {
                        read_match(v[r][c][m], clause_path.at(m), out.rules[r][c][m]);
                    }
                }
            }
        } else {
            unknown_key(field);
        }
    }
}

void Reader::read_match(Value value, const Path& path, state::RbacMatch& out) {
    if (!object(value, path)) {
        return;
    }
    // Unlike ztunnel, an unknown key in a match is an error: a typo must not widen a policy.
    for (const auto& item : value.items()) {
        std::string_view key = item.key();
        Path field = path.field(key);
        Value v = item.value();
        if (key == "namespaces") {
            string_matches(v, field, out.namespaces);
        } else if (key == "notNamespaces") {
            string_matches(v, field, out.not_namespaces);
        } else if (key == "serviceAccounts") {
            sa_matches(v, field, out.service_accounts);
        } else if (key == "notServiceAccounts") {
            sa_matches(v, field, out.not_service_accounts);
        } else if (key == "principals") {
            string_matches(v, field, out.principals);
        } else if (key == "notPrincipals") {
            string_matches(v, field, out.not_principals);
        } else if (key == "sourceIps") {
            cidr_list(v, field, out.source_ips);
        } else if (key == "notSourceIps") {
            cidr_list(v, field, out.not_source_ips);
        } else if (key == "destinationIps") {
            cidr_list(v, field, out.destination_ips);
        } else if (key == "notDestinationIps") {
            cidr_list(v, field, out.not_destination_ips);
        } else if (key == "destinationPorts") {
            port_list(v, field, out.destination_ports);
        } else if (key == "notDestinationPorts") {
            port_list(v, field, out.not_destination_ports);
        } else {
            unknown_key(field);
        }
    }
}

void Reader::string_matches(Value value, const Path& path, std::vector<state::StringMatch>& out) {
    if (!array(value, path)) {
        return;
    }
    using Kind = state::StringMatch::Kind;
    for (size_t i = 0; i < value.size(); ++i) {
        Path entry = path.at(i);
        Value v = value[i];
        if (!v.is_object() || v.size() != 1) {
            error(entry,
                  "expected one of {\"Exact\": s}, {\"Prefix\": s}, {\"Suffix\": s}, "
                  "{\"Presence\": []}, got " +
                          describe(v));
            continue;
        }
        auto it = *v.items().begin();
        Path field = entry.field(it.key());
        state::StringMatch match;
        if (it.key() == "Presence") {
            if (!(it.value().is_null() || (it.value().is_array() && it.value().empty()))) {
                error(field, "expected [], got " + describe(it.value()));
                continue;
            }
            match.kind = Kind::presence;
            out.push_back(std::move(match));
            continue;
        }
        if (it.key() == "Exact") {
            match.kind = Kind::exact;
        } else if (it.key() == "Prefix") {
            match.kind = Kind::prefix;
        } else if (it.key() == "Suffix") {
            match.kind = Kind::suffix;
        } else {
            error(field, "unknown string match (expected Exact, Prefix, Suffix or Presence)");
            continue;
        }
        if (string(it.value(), field, match.value)) {
            out.push_back(std::move(match));
        }
    }
}

void Reader::sa_matches(Value value, const Path& path,
                        std::vector<state::ServiceAccountMatch>& out) {
    if (!array(value, path)) {
        return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
        Path entry = path.at(i);
        if (!object(value[i], entry)) {
            continue;
        }
        state::ServiceAccountMatch match;
        bool has_ns = false;
        bool has_sa = false;
        for (const auto& item : value[i].items()) {
            Path field = entry.field(item.key());
            if (item.key() == "namespace") {
                has_ns = string(item.value(), field, match.namespace_);
            } else if (item.key() == "serviceAccount") {
                has_sa = string(item.value(), field, match.service_account);
            } else {
                unknown_key(field);
            }
        }
        if (value[i].find("namespace") == value[i].end()) {
            missing(entry, "namespace");
        }
        if (value[i].find("serviceAccount") == value[i].end()) {
            missing(entry, "serviceAccount");
        }
        if (has_ns && has_sa) {
            out.push_back(std::move(match));
        }
    }
}

void Reader::cidr_list(Value value, const Path& path, std::vector<state::Cidr>& out) {
    if (!array(value, path)) {
        return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
        std::optional<state::Cidr> parsed;
        cidr(value[i], path.at(i), parsed);
        if (parsed) {
            out.push_back(*parsed);
        }
    }
}

void Reader::port_list(Value value, const Path& path, std::vector<uint16_t>& out) {
    if (!array(value, path)) {
        return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
        uint16_t number = 0;
        if (port(value[i], path.at(i), number)) {
            out.push_back(number);
        }
    }
}

// --- pods and the top level --------------------------------------------------------------------

void Reader::read_pod(Value value, const Path& path, state::Pod& out) {
    if (!object(value, path)) {
        return;
    }
    for (const char* required : {"uid", "netns"}) {
        if (value.find(required) == value.end()) {
            missing(path, required);
        }
    }
    for (const auto& item : value.items()) {
        Path field = path.field(item.key());
        if (item.key() == "uid") {
            if (string(item.value(), field, out.uid) && out.uid.empty()) {
                error(field, "must not be empty");
            }
        } else if (item.key() == "netns") {
            if (!string(item.value(), field, out.netns)) {
                continue;
            }
            if (out.netns.empty() || out.netns.front() != '/' ||
                out.netns.find('\0') != std::string::npos) {
                error(field, "not an absolute path: " + quote_text(out.netns));
            }
        } else if (item.key() == "name" || item.key() == "namespace" ||
                   item.key() == "serviceAccount") {
            std::string& target = item.key() == "name"        ? out.name
                                  : item.key() == "namespace" ? out.namespace_
                                                              : out.service_account;
            if (string(item.value(), field, target) && target.empty()) {
                error(field, "must not be empty");
            }
        } else {
            unknown_key(field);
        }
    }
    // What ZDS says of a pod (`WorkloadInfo`) comes whole: its listeners present the identity
    // these keys make, so a partial set is a mistake, never a default.
    const char* info_keys[] = {"name", "namespace", "serviceAccount"};
    size_t present = 0;
    for (const char* key : info_keys) {
        present += value.find(key) != value.end() ? 1 : 0;
    }
    if (present != 0 && present != 3) {
        for (const char* key : info_keys) {
            if (value.find(key) == value.end()) {
                error(path, "missing required key \"" + std::string(key) +
                                    "\" (name, namespace and serviceAccount come together)");
            }
        }
        out.name.clear();
        out.namespace_.clear();
        out.service_account.clear();
        return;
    }
    if (present == 3 && !out.namespace_.empty() && !out.service_account.empty() &&
        !certs::Identity::from_parts("cluster.local", out.namespace_, out.service_account)) {
        error(path, "namespace and serviceAccount do not form a valid SPIFFE ID: " +
                            quote_text(out.identity("cluster.local")));
    }
}

void Reader::read_config(Value root, Config& config) {
    Path top;
    if (!object(root, top)) {
        return;
    }
    for (const auto& item : root.items()) {
        std::string_view key = item.key();
        if (key != "workloads" && key != "services" && key != "policies" && key != "pods") {
            unknown_key(top.field(key));
        }
    }
    // Read in a fixed order (not the DOM's alphabetical one) so errors follow the file's story.
    auto read_list = [&](const char* key, auto& out, auto read_one) {
        Value list = root.find(key);
        if (list == root.end()) {
            return;
        }
        Path field = top.field(key);
        if (!array(list, field)) {
            return;
        }
        out.resize(list.size());
        for (size_t i = 0; i < list.size(); ++i) {
            (this->*read_one)(list[i], field.at(i), out[i]);
        }
    };
    read_list("workloads", config.workloads, &Reader::read_workload);
    read_list("services", config.services, &Reader::read_service);
    read_list("policies", config.policies, &Reader::read_policy);
    read_list("pods", config.pods, &Reader::read_pod);
}

}  // namespace

bool is_spiffe_id(std::string_view text) {
    return certs::Identity::parse(text).has_value();
}

ParseResult parse(std::string_view text) {
    ParseResult result;
    if (text.starts_with("\xEF\xBB\xBF")) {
        result.not_json = true;
        result.errors.push_back("(file): a byte order mark is not allowed");
        return result;
    }
    // nlohmann stops at a NUL as if the input ended there, which would accept `{}\0garbage`.
    if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
        result.not_json = true;
        result.errors.push_back("(file): NUL byte at offset " + std::to_string(nul));
        return result;
    }
    Dom dom;
    // Rough sizes from the text keep the vectors from regrowing many times.
    dom.nodes.reserve(text.size() / 12);
    dom.arena.reserve(text.size() / 2);
    DomBuilder builder(dom);
    bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &builder,
                                            nlohmann::json::input_format_t::json,
                                            /*strict=*/true, /*ignore_comments=*/false);
    if (!parsed) {
        result.not_json = true;
        result.too_deep = builder.too_deep();
        result.errors.push_back(
                "(file): " + (builder.error().empty() ? std::string("not JSON") : builder.error()));
        return result;
    }
    dom.index_arrays();
    Value root(&dom, 0);
    Reader reader(result.errors, result.config.unsupported);
    reader.read_config(root, result.config);
    if (reader.dropped() > 0) {
        result.errors.push_back("(file): " + std::to_string(reader.dropped()) +
                                " more errors not shown");
    }
    return result;
}

}  // namespace zt::config
