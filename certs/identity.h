#pragma once

// Identity is a workload's SPIFFE ID in Istio's shape, `spiffe://<td>/ns/<ns>/sa/<sa>`, parsed
// strictly (SPIFFE's syntax rules plus Istio's fixed path). Every identity that exists as a value
// of this type is valid: parsing and construction from parts are the only ways to make one.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "zt/result.h"

namespace zt::certs {

// kMaxSpiffeIdBytes caps a whole SPIFFE ID (SPIFFE-ID.md: URIs of at most 2,048 bytes).
inline constexpr size_t kMaxSpiffeIdBytes = 2048;

// kMaxTrustDomainBytes caps the trust domain (SPIFFE-ID.md: at most 255 bytes).
inline constexpr size_t kMaxTrustDomainBytes = 255;

// is_valid_trust_domain returns true when `td` is a trust domain SPIFFE accepts: 1 to 255 bytes of
// lowercase `a-z`, digits, `.`, `-` and `_` (so no port, userinfo, uppercase or percent-encoding).
bool is_valid_trust_domain(std::string_view td);

// is_valid_path_segment returns true when `segment` is a SPIFFE path segment: non-empty, only
// `A-Z a-z 0-9 . - _`, and neither `.` nor `..`.
bool is_valid_path_segment(std::string_view segment);

// Identity is an immutable, valid SPIFFE ID `spiffe://<td>/ns/<ns>/sa/<sa>`. It owns one string
// (the URI); the accessors return views into it that live as long as the `Identity`. Copying is
// a string copy. There is no default constructor: an "empty identity" does not exist (use
// `std::optional<Identity>` where one may be absent).
class Identity {
public:
    // parse accepts exactly `spiffe://<td>/ns/<ns>/sa/<sa>`: lowercase scheme, a trust domain
    // that `is_valid_trust_domain` accepts, the literal segments `ns` and `sa`, a namespace and a
    // service account that `is_valid_path_segment` accepts, nothing else (no trailing `/`, query,
    // fragment, port, userinfo, percent-encoding) and at most `kMaxSpiffeIdBytes` bytes. Any
    // other input fails with `Errc::bad_identity`.
    static Result<Identity> parse(std::string_view uri);

    // from_parts builds the identity of service account `sa` in namespace `ns` of trust domain
    // `td`, with the same rules as `parse` (so `from_parts(td, ns, sa)` succeeds exactly when
    // `parse("spiffe://" + td + "/ns/" + ns + "/sa/" + sa)` does). Fails with
    // `Errc::bad_identity`.
    static Result<Identity> from_parts(std::string_view td, std::string_view ns,
                                       std::string_view sa);

    // trust_domain returns the trust domain, e.g. `cluster.local`.
    std::string_view trust_domain() const {
        return std::string_view(uri_).substr(kSchemeLen, td_len_);
    }

    // namespace_name returns the Kubernetes namespace (`namespace` is a keyword).
    std::string_view namespace_name() const {
        return std::string_view(uri_).substr(ns_pos_, ns_len_);
    }

    // service_account returns the service account.
    std::string_view service_account() const { return std::string_view(uri_).substr(sa_pos_); }

    // to_string returns the full URI, `spiffe://td/ns/ns/sa/sa`.
    const std::string& to_string() const { return uri_; }

    // principal returns the URI without `spiffe://` (`td/ns/ns/sa/sa`), the form Istio's RBAC
    // `principals` match against.
    std::string_view principal() const { return std::string_view(uri_).substr(kSchemeLen); }

    // Identities compare as their URIs (so sorting them sorts the `certificates` dump as
    // ztunnel does).
    friend bool operator==(const Identity& a, const Identity& b) { return a.uri_ == b.uri_; }

    friend std::strong_ordering operator<=>(const Identity& a, const Identity& b) {
        return a.uri_.compare(b.uri_) <=> 0;
    }

private:
    static constexpr size_t kSchemeLen = 9;  // "spiffe://"

    Identity(std::string uri, uint16_t td_len, uint16_t ns_pos, uint16_t ns_len, uint16_t sa_pos)
        : uri_(std::move(uri))
        , td_len_(td_len)
        , ns_pos_(ns_pos)
        , ns_len_(ns_len)
        , sa_pos_(sa_pos) {}

    std::string uri_;
    uint16_t td_len_;
    uint16_t ns_pos_;
    uint16_t ns_len_;
    uint16_t sa_pos_;
};

}  // namespace zt::certs

// std::hash<Identity> hashes the URI, so an `Identity` can key an `unordered_map`.
template <>
struct std::hash<zt::certs::Identity> {
    size_t operator()(const zt::certs::Identity& id) const noexcept {
        return std::hash<std::string>{}(id.to_string());
    }
};
