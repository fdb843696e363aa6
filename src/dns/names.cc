// names.cc implements the DNS proxy's name rules (ztunnel's name_util.rs and the alias,
// expansion and wildcard helpers of its server.rs) over plain label vectors. It must stay free
// of I/O, of the codec and of the snapshot, so every rule is a line of a table test.

#include "src/dns/names.h"

namespace zt::dns {

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

std::string join(const std::vector<std::string>& labels, bool to_lower) {
    std::string out;
    for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) {
            out.push_back('.');
        }
        if (to_lower) {
            for (char c : labels[i]) {
                out.push_back(lower(c));
            }
        } else {
            out += labels[i];
        }
    }
    return out;
}

Name single(std::string_view label) {
    return Name{{std::string(label)}};
}

}  // namespace

std::optional<Name> Name::parse(std::string_view text) {
    Name name;
    if (text.empty() || text == ".") {
        return name;
    }
    if (text.back() == '.') {
        text.remove_suffix(1);
    }
    size_t start = 0;
    while (true) {
        size_t dot = text.find('.', start);
        std::string_view label = text.substr(
                start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63) {
            return std::nullopt;
        }
        name.labels.emplace_back(label);
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return name;
}

bool Name::is_hostname() const {
    for (const std::string& label : labels) {
        if (label.empty()) {
            return false;
        }
        for (char c : label) {
            auto byte = static_cast<unsigned char>(c);
            if (c == '.' || byte <= 0x20 || byte >= 0x7f) {
                return false;
            }
        }
    }
    return true;
}

std::string Name::to_string() const {
    return join(labels, false);
}

std::string Name::to_lower() const {
    return join(labels, true);
}

std::string Name::to_fqdn() const {
    return to_string() + ".";
}

bool Name::equals(const Name& other) const {
    if (labels.size() != other.labels.size()) {
        return false;
    }
    for (size_t i = 0; i < labels.size(); ++i) {
        if (!equal_ignore_case(labels[i], other.labels[i])) {
            return false;
        }
    }
    return true;
}

bool equal_ignore_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

Name append(const Name& name, const Name& domain) {
    Name out;
    out.labels.reserve(name.size() + domain.size());
    out.labels = name.labels;
    out.labels.insert(out.labels.end(), domain.labels.begin(), domain.labels.end());
    return out;
}

bool has_domain(const Name& name, const Name& domain) {
    if (domain.is_wildcard() || name.size() <= domain.size()) {
        return false;
    }
    size_t skip = name.size() - domain.size();
    for (size_t i = 0; i < domain.size(); ++i) {
        if (!equal_ignore_case(name.labels[skip + i], domain.labels[i])) {
            return false;
        }
    }
    return true;
}

std::optional<Name> trim_domain(const Name& name, const Name& domain) {
    if (!has_domain(name, domain)) {
        return std::nullopt;
    }
    Name out;
    out.labels.assign(name.labels.begin(), name.labels.end() - long(domain.size()));
    return out;
}

std::vector<Name> kube_fqdns(const Name& name, std::string_view client_namespace,
                             const Name& cluster_domain) {
    const Name svc_domain = append(single("svc"), cluster_domain);
    const Name namespaced_domain = append(single(client_namespace), svc_domain);
    const Name svc = single("svc");
    std::vector<Name> out;
    switch (name.size()) {
        case 1:
            // <service>: a service in the client's own namespace.
            out.push_back(append(name, namespaced_domain));
            break;
        case 2:
            // <service>.<namespace>, or <pod-hostname>.<subdomain> in the client's namespace.
            out.push_back(append(name, svc_domain));
            out.push_back(append(name, namespaced_domain));
            break;
        case 3:
            // <service>.<namespace>.svc, or <pod-hostname>.<subdomain>.<namespace>.
            if (has_domain(name, svc)) {
                out.push_back(append(name, cluster_domain));
            }
            out.push_back(append(name, svc_domain));
            break;
        case 4:
            // <pod-hostname>.<subdomain>.<namespace>.svc.
            if (has_domain(name, svc)) {
                out.push_back(append(name, cluster_domain));
            }
            break;
        default:
            // Already an FQDN, or not a Kubernetes short name.
            break;
    }
    return out;
}

std::vector<Name> search_domains(std::string_view client_namespace, const Name& cluster_domain) {
    const Name svc_domain = append(single("svc"), cluster_domain);
    return {append(single(client_namespace), svc_domain), svc_domain, cluster_domain};
}

std::vector<Alias> aliases(const Name& name, std::string_view client_namespace,
                           const Name& cluster_domain) {
    std::vector<Alias> out;
    auto add = [&out](Name candidate, const std::optional<Name>& stripped) {
        for (const Alias& existing : out) {
            if (existing.name.equals(candidate)) {
                return;
            }
        }
        out.push_back(Alias{std::move(candidate), stripped});
    };
    add(name, std::nullopt);
    for (Name& fqdn : kube_fqdns(name, client_namespace, cluster_domain)) {
        add(std::move(fqdn), std::nullopt);
    }
    for (const Name& domain : search_domains(client_namespace, cluster_domain)) {
        std::optional<Name> stripped = trim_domain(name, domain);
        if (!stripped) {
            continue;
        }
        add(*stripped, stripped);
        for (Name& fqdn : kube_fqdns(*stripped, client_namespace, cluster_domain)) {
            add(std::move(fqdn), stripped);
        }
    }
    return out;
}

std::vector<Name> wildcards(const Name& name) {
    std::vector<Name> out{name};
    for (size_t first = 0; name.size() - first > 1; ++first) {
        Name wildcard;
        wildcard.labels.push_back("*");
        wildcard.labels.insert(wildcard.labels.end(), name.labels.begin() + long(first) + 1,
                               name.labels.end());
        out.push_back(std::move(wildcard));
    }
    return out;
}

}  // namespace zt::dns
