#pragma once

// Addresses of the mesh model: IPs, CIDRs, `network/ip` pairs and `ip:port` socket addresses, as
// plain values with strict parsing (inet_pton, never inet_aton: `127.1`, `010.0.0.1` are not
// IPs). They carry no JSON and no sockets, so the proxy, the admin dump and the config parser can
// all share them.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zt::state {

// IpAddr is an IPv4 or IPv6 address held as bytes (4 or 16 used). A default IpAddr is the IPv4
// address 0.0.0.0.
struct IpAddr {
    std::array<uint8_t, 16> bytes{};
    bool v6 = false;

    // parse reads the textual form strictly (inet_pton); std::nullopt when `text` is not an IP.
    static std::optional<IpAddr> parse(std::string_view text);

    // v4 builds an IPv4 address from its four octets.
    static IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);

    size_t size() const { return v6 ? 16 : 4; }

    // is_loopback is true for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
    bool is_loopback() const;

    // to_string is the canonical text (inet_ntop).
    std::string to_string() const;

    friend bool operator==(const IpAddr&, const IpAddr&) = default;
    friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// Cidr is an address plus a prefix length; `addr` has its host bits cleared by `parse`.
struct Cidr {
    IpAddr addr;
    uint8_t prefix_len = 0;

    // parse reads `ip/len`; std::nullopt when the IP is bad, the length is missing, not a decimal
    // number, or larger than the family allows (32 or 128).
    static std::optional<Cidr> parse(std::string_view text);

    // contains is true when `ip` is of the same family and inside the prefix.
    bool contains(const IpAddr& ip) const;

    std::string to_string() const;

    friend bool operator==(const Cidr&, const Cidr&) = default;
};

// NetworkAddress is ztunnel's lookup key `network/ip`; the default network is "".
struct NetworkAddress {
    std::string network;
    IpAddr ip;

    // parse reads `network/ip`: the text up to the LAST '/' is the network (it may be empty),
    // the rest must be an IP. std::nullopt otherwise.
    static std::optional<NetworkAddress> parse(std::string_view text);

    std::string to_string() const;

    friend bool operator==(const NetworkAddress&, const NetworkAddress&) = default;
};

// NetworkAddressHash hashes a NetworkAddress for unordered containers.
struct NetworkAddressHash {
    size_t operator()(const NetworkAddress& key) const;
};

// SocketAddr is `ip:port` (`[v6]:port` in text).
struct SocketAddr {
    IpAddr ip;
    uint16_t port = 0;

    // parse reads `1.2.3.4:80` or `[::1]:80`; std::nullopt otherwise (including port 0).
    static std::optional<SocketAddr> parse(std::string_view text);

    std::string to_string() const;

    friend bool operator==(const SocketAddr&, const SocketAddr&) = default;
};

// parse_decimal reads a non-empty run of ASCII digits no larger than `max`; std::nullopt on
// anything else (signs, spaces, leading '+', overflow).
std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t max);

}  // namespace zt::state
