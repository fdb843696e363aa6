#pragma once

// HBONE CONNECT vocabulary (docs/contract.md §5, docs/ztunnel-reference.md §2.3–2.4): the
// `:authority` of a CONNECT request parsed strictly, and the `baggage`, `forwarded` and
// `traceparent` request headers built from caller data. Pure functions over strings; no I/O, no
// workloads.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "zt/result.h"

namespace zt::hbone {

// AuthorityKind says which of the three accepted `:authority` shapes was parsed.
enum class AuthorityKind : uint8_t {
    ipv4,      // `a.b.c.d:port`, dotted-quad as `inet_pton(AF_INET)` accepts it.
    ipv6,      // `[addr]:port`, as `inet_pton(AF_INET6)` accepts it (no zone id).
    hostname,  // `name:port`, an RFC 1123 host name whose last label is not all digits.
};

// to_string returns a stable lowercase name for `kind`, for logs.
std::string_view to_string(AuthorityKind kind);

// Authority is a parsed CONNECT target. `ip` holds the address in network order (the first 4 bytes
// for IPv4); `host` holds the host name for `AuthorityKind::hostname` and is empty otherwise.
struct Authority {
    AuthorityKind kind = AuthorityKind::ipv4;
    std::array<uint8_t, 16> ip{};
    std::string host;
    uint16_t port = 0;

    friend bool operator==(const Authority&, const Authority&) = default;
};

// kAuthorityBytesMax bounds the `:authority` we parse; a longer value is `Errc::bad_authority`.
inline constexpr size_t kAuthorityBytesMax = 255 + 1 + 5;

// parse_authority parses `text` as `ip:port`, `[ipv6]:port` or `hostname:port`. The port is 1–65535
// in decimal without sign or leading zero. Addresses go through `inet_pton` only, so `127.1`,
// `0x7f.0.0.1` and `010.0.0.1` are refused rather than read the way `inet_aton` would. A host name
// that looks numeric (last label all digits) is refused for the same reason. Fails with
// `Errc::bad_authority`; never asserts on its input.
Result<Authority> parse_authority(std::string_view text);

// format_authority renders `authority` in the canonical form `parse_authority` accepts.
std::string format_authority(const Authority& authority);

// BaggageFields are the source workload's attributes carried in the `baggage` header (ztunnel
// `src/baggage.rs`). Empty fields are omitted from the header. `workload_type` is one of
// `deployment`, `cronjob`, `pod`, `job`.
struct BaggageFields {
    std::string cluster;
    std::string namespace_name;
    std::string workload_type;
    std::string workload_name;
    std::string service_name;
    std::string service_version;
    std::string region;
    std::string zone;
};

// build_baggage renders `fields` as ztunnel's comma-joined `k=v` list, in ztunnel's order.
std::string build_baggage(const BaggageFields& fields);

// build_forwarded renders the `forwarded` header: `for="<client>"`, plus `;host=<service_host>`
// when `service_host` is not empty. `client` is the client's `ip:port` (see `format_authority`).
std::string build_forwarded(std::string_view client, std::string_view service_host);

// build_traceparent renders a W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-00`. The
// caller supplies the random ids (hbone/ draws no randomness of its own).
std::string build_traceparent(const std::array<uint8_t, 16>& trace_id,
                              const std::array<uint8_t, 8>& parent_id);

// is_valid_traceparent says whether `value` has the shape `build_traceparent` produces (length 55,
// lowercase hex, version 00), as ztunnel checks before using it as the log span id.
bool is_valid_traceparent(std::string_view value);

// ConnectRequest is what a client sends on a new HBONE stream. Empty headers are not sent.
struct ConnectRequest {
    std::string authority;
    std::string baggage;
    std::string forwarded;
    std::string traceparent;
};

// Status codes an HBONE server answers (docs/ztunnel-reference.md §2.4).
inline constexpr uint16_t kStatusOk = 200;
inline constexpr uint16_t kStatusBadRequest = 400;
inline constexpr uint16_t kStatusUnauthorized = 401;
inline constexpr uint16_t kStatusServiceUnavailable = 503;

// is_hbone_status says whether `status` is one of the four statuses an HBONE server may send.
bool is_hbone_status(uint16_t status);

}  // namespace zt::hbone
