// proxy_protocol.cc builds and parses PROXY protocol version 2 headers (HAProxy's
// proxy-protocol.txt §2.2) as plain bytes. The builder writes exactly what ztunnel writes to an
// application tunnel; the parser is strict and is meant for tests and test peers, never for
// bytes a proxy must forward. No I/O, no allocation beyond the returned vectors.

#include "hbone/proxy_protocol.h"

#include <algorithm>

namespace zt::hbone {

namespace {

constexpr uint8_t kVersion2 = 0x2;

// address_block_bytes is the size of a family's address block: two addresses and two ports
// (INET, INET6), two 108-byte paths (UNIX), or nothing (UNSPEC).
size_t address_block_bytes(ProxyFamily family) {
    switch (family) {
        case ProxyFamily::unspec:
            return 0;
        case ProxyFamily::inet:
            return 12;
        case ProxyFamily::inet6:
            return 36;
        case ProxyFamily::unix_socket:
            return 216;
    }
    return 0;
}

void put16(std::vector<uint8_t>& out, size_t value) {
    out.push_back(uint8_t(value >> 8));
    out.push_back(uint8_t(value & 0xff));
}

uint16_t get16(const uint8_t* p) {
    return uint16_t((uint16_t(p[0]) << 8) | p[1]);
}

ProxyParse invalid(std::string_view why) {
    ProxyParse parse;
    parse.status = ProxyParseStatus::invalid;
    parse.error = why;
    return parse;
}

// read_addresses fills `header`'s addresses from an INET or INET6 block at `block`.
void read_addresses(const uint8_t* block, ProxyHeader& header) {
    size_t ip_bytes = header.family == ProxyFamily::inet6 ? 16 : 4;
    header.source.v6 = header.destination.v6 = ip_bytes == 16;
    std::copy_n(block, ip_bytes, header.source.ip.begin());
    std::copy_n(block + ip_bytes, ip_bytes, header.destination.ip.begin());
    header.source.port = get16(block + 2 * ip_bytes);
    header.destination.port = get16(block + 2 * ip_bytes + 2);
}

}  // namespace

Result<std::vector<uint8_t>> build_proxy_v2(const ProxyAddress& source,
                                            const ProxyAddress& destination,
                                            std::string_view peer_identity) {
    if (peer_identity.size() > kProxyV2IdentityMax) {
        return fail(Errc::invalid_argument);
    }
    ProxyFamily family = ProxyFamily::unspec;
    if (source.v6 == destination.v6) {
        family = source.v6 ? ProxyFamily::inet6 : ProxyFamily::inet;
    }
    size_t tlv_bytes = peer_identity.empty() ? 0 : 3 + peer_identity.size();
    size_t length = address_block_bytes(family) + tlv_bytes;
    std::vector<uint8_t> out;
    out.reserve(kProxyV2FixedBytes + length);
    out.insert(out.end(), kProxyV2Signature.begin(), kProxyV2Signature.end());
    out.push_back(uint8_t(kVersion2 << 4) | uint8_t(ProxyCommand::proxy));
    out.push_back(uint8_t(uint8_t(family) << 4) | uint8_t(ProxyTransport::stream));
    put16(out, length);
    if (family != ProxyFamily::unspec) {
        size_t ip_bytes = source.v6 ? 16 : 4;
        out.insert(out.end(), source.ip.begin(), source.ip.begin() + ptrdiff_t(ip_bytes));
        out.insert(out.end(), destination.ip.begin(), destination.ip.begin() + ptrdiff_t(ip_bytes));
        put16(out, source.port);
        put16(out, destination.port);
    }
    if (!peer_identity.empty()) {
        out.push_back(kProxyTlvPeerIdentity);
        put16(out, peer_identity.size());
        out.insert(out.end(), peer_identity.begin(), peer_identity.end());
    }
    return out;
}

std::optional<std::string_view> ProxyHeader::peer_identity() const {
    for (const ProxyTlv& tlv : tlvs) {
        if (tlv.type == kProxyTlvPeerIdentity) {
            return std::string_view(reinterpret_cast<const char*>(tlv.value.data()),
                                    tlv.value.size());
        }
    }
    return std::nullopt;
}

std::string_view to_string(ProxyParseStatus status) {
    switch (status) {
        case ProxyParseStatus::complete:
            return "complete";
        case ProxyParseStatus::incomplete:
            return "incomplete";
        case ProxyParseStatus::invalid:
            return "invalid";
    }
    return "invalid";
}

ProxyParse parse_proxy_v2(std::span<const uint8_t> bytes) {
    size_t signature_seen = std::min(bytes.size(), kProxyV2Signature.size());
    if (!std::equal(bytes.begin(), bytes.begin() + ptrdiff_t(signature_seen),
                    kProxyV2Signature.begin())) {
        return invalid("not a PROXY protocol v2 signature");
    }
    ProxyParse parse;
    parse.status = ProxyParseStatus::incomplete;
    if (bytes.size() >= 13) {
        uint8_t version_command = bytes[12];
        if ((version_command >> 4) != kVersion2) {
            return invalid("not version 2");
        }
        if ((version_command & 0xf) > uint8_t(ProxyCommand::proxy)) {
            return invalid("unknown command");
        }
        parse.header.command = ProxyCommand(version_command & 0xf);
    }
    if (bytes.size() >= 14) {
        uint8_t family_transport = bytes[13];
        if ((family_transport >> 4) > uint8_t(ProxyFamily::unix_socket)) {
            return invalid("unknown address family");
        }
        if ((family_transport & 0xf) > uint8_t(ProxyTransport::dgram)) {
            return invalid("unknown transport");
        }
        parse.header.family = ProxyFamily(family_transport >> 4);
        parse.header.transport = ProxyTransport(family_transport & 0xf);
    }
    if (bytes.size() < kProxyV2FixedBytes) {
        return parse;
    }
    size_t length = get16(bytes.data() + 14);
    size_t block = address_block_bytes(parse.header.family);
    if (length < block) {
        return invalid("length shorter than the address block");
    }
    if (bytes.size() < kProxyV2FixedBytes + length) {
        return parse;
    }
    ProxyHeader& header = parse.header;
    const uint8_t* body = bytes.data() + kProxyV2FixedBytes;
    if (header.family == ProxyFamily::inet || header.family == ProxyFamily::inet6) {
        read_addresses(body, header);
    }
    size_t at = block;
    bool identity_seen = false;
    while (at < length) {
        if (length - at < 3) {
            return invalid("truncated TLV");
        }
        uint8_t type = body[at];
        size_t value_bytes = get16(body + at + 1);
        if (length - at - 3 < value_bytes) {
            return invalid("TLV longer than the header");
        }
        if (type == kProxyTlvPeerIdentity) {
            if (identity_seen) {
                return invalid("TLV 0xD0 twice");
            }
            identity_seen = true;
        }
        header.tlvs.push_back(ProxyTlv{type, std::span<const uint8_t>(body + at + 3, value_bytes)});
        at += 3 + value_bytes;
    }
    header.size = kProxyV2FixedBytes + length;
    parse.status = ProxyParseStatus::complete;
    return parse;
}

}  // namespace zt::hbone
