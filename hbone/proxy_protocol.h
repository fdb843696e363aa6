#pragma once

// The PROXY protocol, version 2 (HAProxy's `proxy-protocol.txt`, section 2.2), as ztunnel writes
// it to an application tunnel (docs/waypoints.md): after the HBONE 200 and before any
// payload, a binary header carrying the original client and the original destination, with
// TLV 0xD0 holding the client's SPIFFE identity. A builder for that header and a strict parser
// (for tests and test peers); bytes in, bytes out, no I/O and no workloads.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "zt/result.h"

namespace zt::hbone {

// kProxyV2Signature opens every version 2 header.
inline constexpr std::array<uint8_t, 12> kProxyV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                              0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// kProxyV2FixedBytes is the signature plus version/command, family/transport and length.
inline constexpr size_t kProxyV2FixedBytes = 16;

// kProxyTlvPeerIdentity is the TLV type ztunnel uses for the client's SPIFFE identity (its
// `PROXY_PROTOCOL_AUTHORITY_TLV`, in the range HAProxy reserves for custom use). ztunnel's proto
// also names 0xD1 for the service hostname, which it does not send; neither do we.
inline constexpr uint8_t kProxyTlvPeerIdentity = 0xD0;

// ProxyCommand, ProxyFamily and ProxyTransport are the header's nibbles, numbered as on the wire.
enum class ProxyCommand : uint8_t { local = 0x0, proxy = 0x1 };
enum class ProxyFamily : uint8_t { unspec = 0x0, inet = 0x1, inet6 = 0x2, unix_socket = 0x3 };
enum class ProxyTransport : uint8_t { unspec = 0x0, stream = 0x1, dgram = 0x2 };

// ProxyAddress is one end of a connection: an IPv4 (the first 4 bytes of `ip`) or IPv6 address
// in network order and a port.
struct ProxyAddress {
    bool v6 = false;
    std::array<uint8_t, 16> ip{};
    uint16_t port = 0;

    friend bool operator==(const ProxyAddress&, const ProxyAddress&) = default;
};

// kProxyV2IdentityMax bounds the identity `build_proxy_v2` accepts: what fits in the header's
// 16-bit length next to the largest address block and the TLV's own 3 bytes.
inline constexpr size_t kProxyV2IdentityMax = 65535 - 36 - 3;

// build_proxy_v2 returns the header ztunnel writes: command PROXY, transport STREAM, family INET
// or INET6 with `source` and `destination` (which must be of one family: for a mixed pair the
// family is UNSPEC with no addresses, as ztunnel's `ppp` builder does), then, when
// `peer_identity` is not empty, one TLV 0xD0 holding it. Fails with `Errc::invalid_argument` when
// the identity is longer than `kProxyV2IdentityMax`.
Result<std::vector<uint8_t>> build_proxy_v2(const ProxyAddress& source,
                                            const ProxyAddress& destination,
                                            std::string_view peer_identity);

// ProxyTlv is one TLV of a parsed header; `value` points into the parsed bytes.
struct ProxyTlv {
    uint8_t type = 0;
    std::span<const uint8_t> value;
};

// ProxyHeader is a parsed header. `source` and `destination` are set for INET and INET6 only;
// the spans in `tlvs` point into the bytes given to `parse_proxy_v2`.
struct ProxyHeader {
    ProxyCommand command = ProxyCommand::local;
    ProxyFamily family = ProxyFamily::unspec;
    ProxyTransport transport = ProxyTransport::unspec;
    ProxyAddress source;
    ProxyAddress destination;
    std::vector<ProxyTlv> tlvs;
    size_t size = 0;  // Bytes the header occupies; what follows is payload.

    // peer_identity is the value of TLV 0xD0 as text; std::nullopt when absent.
    std::optional<std::string_view> peer_identity() const;
};

enum class ProxyParseStatus : uint8_t {
    complete,    // `header` holds the whole header.
    incomplete,  // A valid prefix: more bytes are needed (`error` is empty).
    invalid,     // Not a valid version 2 header; `error` says why.
};

std::string_view to_string(ProxyParseStatus status);

struct ProxyParse {
    ProxyParseStatus status = ProxyParseStatus::invalid;
    ProxyHeader header;
    std::string_view error;  // A static string.
};

// parse_proxy_v2 reads a version 2 header from the start of `bytes`, strictly: the signature
// (a mismatch in the bytes present is invalid at once, so a short non-PROXY stream is refused
// early), version 2, command LOCAL or PROXY, a known family and transport, a length that holds
// the family's address block (12, 36, 216 or 0 bytes), and TLVs that tile the rest exactly with
// at most one 0xD0. Never reads past `bytes` and never asserts on its input.
ProxyParse parse_proxy_v2(std::span<const uint8_t> bytes);

}  // namespace zt::hbone
