// identity.cc parses and builds SPIFFE IDs in Istio's shape. It is deliberately stricter than
// Istio's ztunnel (which only splits on `/`): SPIFFE's character rules and length caps apply, so
// no identity that another SPIFFE implementation would refuse is ever accepted or issued here.
// It allocates only the one string an `Identity` owns and never touches certificates.

#include "certs/identity.h"

namespace zt::certs {
namespace {

constexpr std::string_view kScheme = "spiffe://";

bool is_td_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool is_segment_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

}  // namespace

bool is_valid_trust_domain(std::string_view td) {
    if (td.empty() || td.size() > kMaxTrustDomainBytes) {
        return false;
    }
    for (char c : td) {
        if (!is_td_char(c)) {
            return false;
        }
    }
    return true;
}

bool is_valid_path_segment(std::string_view segment) {
    if (segment.empty() || segment == "." || segment == "..") {
        return false;
    }
    for (char c : segment) {
        if (!is_segment_char(c)) {
            return false;
        }
    }
    return true;
}

Result<Identity> Identity::from_parts(std::string_view td, std::string_view ns,
                                      std::string_view sa) {
    if (!is_valid_trust_domain(td) || !is_valid_path_segment(ns) || !is_valid_path_segment(sa)) {
        return fail(Errc::bad_identity);
    }
    // "spiffe://" td "/ns/" ns "/sa/" sa
    size_t total = kScheme.size() + td.size() + 4 + ns.size() + 4 + sa.size();
    if (total > kMaxSpiffeIdBytes) {
        return fail(Errc::bad_identity);
    }
    std::string uri;
    uri.reserve(total);
    uri.append(kScheme).append(td).append("/ns/");
    size_t ns_pos = uri.size();
    uri.append(ns).append("/sa/");
    size_t sa_pos = uri.size();
    uri.append(sa);
    // All offsets fit: total <= 2048.
    return Identity(std::move(uri), uint16_t(td.size()), uint16_t(ns_pos), uint16_t(ns.size()),
                    uint16_t(sa_pos));
}

Result<Identity> Identity::parse(std::string_view uri) {
    if (uri.size() > kMaxSpiffeIdBytes || !uri.starts_with(kScheme)) {
        return fail(Errc::bad_identity);
    }
    std::string_view rest = uri.substr(kScheme.size());
    // Exactly five `/`-separated parts: td, "ns", ns, "sa", sa. A sixth part (even an empty one,
    // from a trailing slash) is refused.
    std::string_view parts[5];
    for (size_t i = 0; i < 5; ++i) {
        size_t slash = rest.find('/');
        if (i < 4) {
            if (slash == std::string_view::npos) {
                return fail(Errc::bad_identity);
            }
            parts[i] = rest.substr(0, slash);
            rest.remove_prefix(slash + 1);
        } else {
            if (slash != std::string_view::npos) {
                return fail(Errc::bad_identity);
            }
            parts[i] = rest;
        }
    }
    if (parts[1] != "ns" || parts[3] != "sa") {
        return fail(Errc::bad_identity);
    }
    return from_parts(parts[0], parts[2], parts[4]);
}

}  // namespace zt::certs
