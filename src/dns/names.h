#pragma once

// Domain names as the DNS proxy reasons about them, and ztunnel's name rules (its
// `src/dns/name_util.rs` and the alias, Kubernetes-expansion and wildcard helpers of
// `src/dns/server.rs`): which names a query for `name` may stand for from a client in a given
// namespace. Pure functions over labels; no codec, no sockets, no snapshot.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zt::dns {

// Name is a domain name as labels, most specific first, without the root label: `a.b.c.` is
// {"a", "b", "c"} and the root is {}. Labels keep the bytes (and the case) they arrived with;
// every comparison ignores ASCII case, as DNS does.
struct Name {
    std::vector<std::string> labels;

    // parse reads `a.b.c` or `a.b.c.`; "" and "." are the root. std::nullopt for an empty label
    // (`a..b`, `.a`) or a label over 63 bytes. No escapes: this is for hostnames from the config
    // and from tests, not for arbitrary presentation-format names.
    static std::optional<Name> parse(std::string_view text);

    size_t size() const { return labels.size(); }

    bool empty() const { return labels.empty(); }

    // is_wildcard says whether the first label is `*`.
    bool is_wildcard() const { return !labels.empty() && labels.front() == "*"; }

    // is_hostname says whether every label can be part of a config hostname: no `.` inside a
    // label (a wire label may carry one) and no byte outside printable ASCII. Only such names
    // are looked up in the mesh; anything else is forwarded as it is.
    bool is_hostname() const;

    // to_string joins the labels with `.`, without a trailing dot (the root is "").
    std::string to_string() const;

    // to_lower joins the lower-cased labels: the key hostnames are looked up by.
    std::string to_lower() const;

    // to_fqdn is `to_string()` plus the trailing dot (the root is ".").
    std::string to_fqdn() const;

    // equals compares label by label, ignoring ASCII case.
    bool equals(const Name& other) const;
};

// equal_ignore_case compares two labels ignoring ASCII case.
bool equal_ignore_case(std::string_view a, std::string_view b);

// append returns `name` followed by the labels of `domain`.
Name append(const Name& name, const Name& domain);

// has_domain is ztunnel's `has_domain`: `name` has more labels than `domain` and its last labels
// equal `domain`'s. A wildcard `domain` never matches.
bool has_domain(const Name& name, const Name& domain);

// trim_domain is ztunnel's `trim_domain`: `name` without `domain`'s labels when `has_domain`
// holds, else std::nullopt.
std::optional<Name> trim_domain(const Name& name, const Name& domain);

// kube_fqdns is ztunnel's `to_kube_fqdns`: the Kubernetes FQDNs `name` may be short for, from a
// client in `client_namespace`, with `cluster_domain` (`cluster.local`):
//   1 label            name.<ns>.svc.<cd>
//   2 labels           name.svc.<cd>, name.<ns>.svc.<cd>
//   3 labels           name.<cd> (only when the last label is `svc`), name.svc.<cd>
//   4 labels ...svc    name.<cd>
// and none otherwise.
std::vector<Name> kube_fqdns(const Name& name, std::string_view client_namespace,
                             const Name& cluster_domain);

// search_domains are the search domains ztunnel assumes for a pod in `client_namespace` (shared
// mode has no per-pod resolv.conf): `<ns>.svc.<cd>`, `svc.<cd>`, `<cd>`.
std::vector<Name> search_domains(std::string_view client_namespace, const Name& cluster_domain);

// Alias is one name a query may stand for. `stripped` is set when the alias came from removing
// a search domain: it is the name without that domain, which becomes a CNAME target.
struct Alias {
    Name name;
    std::optional<Name> stripped;
};

// aliases is ztunnel's `get_aliases`, in its order and without duplicates: the name itself, its
// `kube_fqdns`, then for each search domain the name with that domain stripped and the stripped
// name's `kube_fqdns`.
std::vector<Alias> aliases(const Name& name, std::string_view client_namespace,
                           const Name& cluster_domain);

// wildcards is ztunnel's `get_wildcards`: `name`, then `*.` plus each parent with at least one
// label (`a.b.c` gives `a.b.c`, `*.b.c`, `*.c`). A one-label name gives itself only.
std::vector<Name> wildcards(const Name& name);

}  // namespace zt::dns
