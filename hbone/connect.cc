// connect.cc parses CONNECT authorities and builds HBONE request headers. It is strict on purpose:
// an authority decides which socket the server opens, so anything a lenient parser would "fix up"
// (inet_aton shorthands, signs, leading zeros, zone ids, userinfo) is refused. No I/O here.

#include "hbone/connect.h"

#include <arpa/inet.h>

#include <cstring>

namespace zt::hbone {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// parse_port accepts 1–65535 in plain decimal: no sign, no leading zero, at most 5 digits.
Result<uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5 || text[0] == '0') {
        return fail(Errc::bad_authority);
    }
    uint32_t port = 0;
    for (char c : text) {
        if (!is_digit(c)) {
            return fail(Errc::bad_authority);
        }
        port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port > 65535) {
        return fail(Errc::bad_authority);
    }
    return static_cast<uint16_t>(port);
}

// is_hostname checks RFC 1123 labels (letters, digits, hyphen; 1–63 bytes; no hyphen at either
// end; 253 bytes in all) and refuses an all-digit last label, which only a numeric address has.
bool is_hostname(std::string_view host) {
    if (host.empty() || host.size() > 253) {
        return false;
    }
    size_t start = 0;
    bool last_all_digits = false;
    while (start <= host.size()) {
        size_t end = host.find('.', start);
        if (end == std::string_view::npos) {
            end = host.size();
        }
        std::string_view label = host.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        bool all_digits = true;
        for (char c : label) {
            if (!is_alpha(c) && !is_digit(c) && c != '-') {
                return false;
            }
            all_digits = all_digits && is_digit(c);
        }
        last_all_digits = all_digits;
        start = end + 1;
        if (end == host.size()) {
            break;
        }
    }
    return !last_all_digits;
}

void append_hex(std::string& out, const uint8_t* bytes, size_t len) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0xf]);
    }
}

bool is_lower_hex(std::string_view text) {
    for (char c : text) {
        if (!is_digit(c) && !(c >= 'a' && c <= 'f')) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view to_string(AuthorityKind kind) {
    switch (kind) {
        case AuthorityKind::ipv4:
            return "ipv4";
        case AuthorityKind::ipv6:
            return "ipv6";
        case AuthorityKind::hostname:
            return "hostname";
    }
    return "unknown";
}

Result<Authority> parse_authority(std::string_view text) {
    if (text.empty() || text.size() > kAuthorityBytesMax) {
        return fail(Errc::bad_authority);
    }
    // Only visible ASCII: a NUL would end the string inet_pton sees before the text we checked.
    for (char c : text) {
        if (c <= ' ' || c >= 0x7f) {
            return fail(Errc::bad_authority);
        }
    }
    // inet_pton needs a NUL-terminated string; the bound above makes a stack copy enough.
    char host[kAuthorityBytesMax + 1];
    Authority out;
    std::string_view port_text;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return fail(Errc::bad_authority);
        }
        std::string_view addr = text.substr(1, close - 1);
        std::memcpy(host, addr.data(), addr.size());
        host[addr.size()] = '\0';
        if (addr.empty() || inet_pton(AF_INET6, host, out.ip.data()) != 1) {
            return fail(Errc::bad_authority);
        }
        out.kind = AuthorityKind::ipv6;
        port_text = text.substr(close + 2);
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0) {
            return fail(Errc::bad_authority);
        }
        std::string_view name = text.substr(0, colon);
        if (name.find(':') != std::string_view::npos) {
            return fail(Errc::bad_authority);  // An IPv6 address must be bracketed.
        }
        std::memcpy(host, name.data(), name.size());
        host[name.size()] = '\0';
        if (inet_pton(AF_INET, host, out.ip.data()) == 1) {
            out.kind = AuthorityKind::ipv4;
        } else if (is_hostname(name)) {
            out.kind = AuthorityKind::hostname;
            out.host.assign(name);
        } else {
            return fail(Errc::bad_authority);
        }
        port_text = text.substr(colon + 1);
    }
    Result<uint16_t> port = parse_port(port_text);
    if (!port) {
        return fail(port.error());
    }
    out.port = *port;
    return out;
}

std::string format_authority(const Authority& authority) {
    char buf[INET6_ADDRSTRLEN];
    std::string out;
    switch (authority.kind) {
        case AuthorityKind::ipv4:
            out = inet_ntop(AF_INET, authority.ip.data(), buf, sizeof(buf));
            break;
        case AuthorityKind::ipv6:
            out = "[";
            out += inet_ntop(AF_INET6, authority.ip.data(), buf, sizeof(buf));
            out += "]";
            break;
        case AuthorityKind::hostname:
            out = authority.host;
            break;
    }
    out += ':';
    out += std::to_string(authority.port);
    return out;
}

std::string build_baggage(const BaggageFields& fields) {
    std::string out;
    auto add = [&out](std::string_view key, std::string_view value) {
        if (value.empty()) {
            return;
        }
        if (!out.empty()) {
            out += ',';
        }
        out += key;
        out += '=';
        out += value;
    };
    add("k8s.cluster.name", fields.cluster);
    add("k8s.namespace.name", fields.namespace_name);
    if (!fields.workload_type.empty()) {
        add("k8s." + fields.workload_type + ".name", fields.workload_name);
    }
    add("service.name", fields.service_name);
    add("service.version", fields.service_version);
    add("cloud.region", fields.region);
    add("cloud.availability_zone", fields.zone);
    return out;
}

std::string build_forwarded(std::string_view client, std::string_view service_host) {
    std::string out = "for=\"";
    out += client;
    out += '"';
    if (!service_host.empty()) {
        out += ";host=";
        out += service_host;
    }
    return out;
}

std::string build_traceparent(const std::array<uint8_t, 16>& trace_id,
                              const std::array<uint8_t, 8>& parent_id) {
    std::string out = "00-";
    append_hex(out, trace_id.data(), trace_id.size());
    out += '-';
    append_hex(out, parent_id.data(), parent_id.size());
    out += "-00";
    return out;
}

bool is_valid_traceparent(std::string_view value) {
    return value.size() == 55 && value.substr(0, 3) == "00-" && value[35] == '-' &&
           value[52] == '-' && is_lower_hex(value.substr(3, 32)) &&
           is_lower_hex(value.substr(36, 16)) && is_lower_hex(value.substr(53, 2));
}

bool is_hbone_status(uint16_t status) {
    return status == kStatusOk || status == kStatusBadRequest || status == kStatusUnauthorized ||
           status == kStatusServiceUnavailable;
}

}  // namespace zt::hbone
