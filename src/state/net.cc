// net.cc parses and prints the address values of the mesh model. Parsing is strict on purpose
// (inet_pton only) because these strings come from a file an agent writes and end up in policy
// decisions; nothing here touches a socket.

#include "src/state/net.h"

#include <arpa/inet.h>

#include <cstring>

namespace zt::state {

std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t max) {
    if (text.empty() || text.size() > 20) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        uint64_t digit = uint64_t(c - '0');
        if (value > (max - digit) / 10) {
            return std::nullopt;
        }
        value = value * 10 + digit;
    }
    return value;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string; the longest IPv6 text is 45 characters.
    char buf[64];
    if (text.empty() || text.size() >= sizeof buf) {
        return std::nullopt;
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddr ip;
    if (text.find(':') == std::string_view::npos) {
        if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) {
            return std::nullopt;
        }
        return ip;
    }
    if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) {
        return std::nullopt;
    }
    ip.v6 = true;
    return ip;
}

IpAddr IpAddr::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    IpAddr ip;
    ip.bytes[0] = a;
    ip.bytes[1] = b;
    ip.bytes[2] = c;
    ip.bytes[3] = d;
    return ip;
}

bool IpAddr::is_loopback() const {
    if (!v6) {
        return bytes[0] == 127;
    }
    static constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes.data(), kLoopback6, 16) == 0) {
        return true;
    }
    return std::memcmp(bytes.data(), kMapped, 12) == 0 && bytes[12] == 127;
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    const char* out = inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
    return out != nullptr ? std::string(out) : std::string();
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto ip = IpAddr::parse(text.substr(0, slash));
    if (!ip) {
        return std::nullopt;
    }
    auto len = parse_decimal(text.substr(slash + 1), ip->v6 ? 128 : 32);
    if (!len) {
        return std::nullopt;
    }
    Cidr cidr{*ip, uint8_t(*len)};
    // Clear host bits so that equal prefixes compare equal and `contains` is a plain compare.
    for (size_t bit = cidr.prefix_len; bit < cidr.addr.size() * 8; ++bit) {
        cidr.addr.bytes[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
    }
    return cidr;
}

bool Cidr::contains(const IpAddr& ip) const {
    if (ip.v6 != addr.v6) {
        return false;
    }
    size_t full = prefix_len / 8;
    if (std::memcmp(ip.bytes.data(), addr.bytes.data(), full) != 0) {
        return false;
    }
    unsigned rest = prefix_len % 8;
    if (rest == 0) {
        return true;
    }
    uint8_t mask = uint8_t(0xff00u >> rest);
    return (ip.bytes[full] & mask) == addr.bytes[full];
}

std::string Cidr::to_string() const {
    return addr.to_string() + "/" + std::to_string(prefix_len);
}

std::optional<NetworkAddress> NetworkAddress::parse(std::string_view text) {
    size_t slash = text.rfind('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto ip = IpAddr::parse(text.substr(slash + 1));
    if (!ip) {
        return std::nullopt;
    }
    return NetworkAddress{std::string(text.substr(0, slash)), *ip};
}

std::string NetworkAddress::to_string() const {
    return network + "/" + ip.to_string();
}

size_t NetworkAddressHash::operator()(const NetworkAddress& key) const {
    // FNV-1a over the network name and the address bytes.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint8_t b) {
        h ^= b;
        h *= 1099511628211ull;
    };
    for (char c : key.network) {
        mix(uint8_t(c));
    }
    mix(key.ip.v6 ? 6 : 4);
    for (size_t i = 0; i < key.ip.size(); ++i) {
        mix(key.ip.bytes[i]);
    }
    return size_t(h);
}

std::optional<SocketAddr> SocketAddr::parse(std::string_view text) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (host.find(':') == std::string_view::npos) {
            return std::nullopt;
        }
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return std::nullopt;  // A bare IPv6 address needs brackets.
        }
    }
    auto ip = IpAddr::parse(host);
    auto number = parse_decimal(port, 65535);
    if (!ip || !number || *number == 0) {
        return std::nullopt;
    }
    return SocketAddr{*ip, uint16_t(*number)};
}

std::string SocketAddr::to_string() const {
    if (ip.v6) {
        return "[" + ip.to_string() + "]:" + std::to_string(port);
    }
    return ip.to_string() + ":" + std::to_string(port);
}

}  // namespace zt::state
