// proxy_protocol_fuzz.cc checks the PROXY protocol v2 parser and builder on arbitrary bytes. The
// parser must never crash or read past its input; a complete header must account for exactly
// `16 + length` bytes with TLVs inside it; a header in the builder's own shape must rebuild to the
// same bytes. Then the input is read as a builder's arguments, and what the builder writes must
// parse back to those arguments.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "hbone/proxy_protocol.h"
#include "zt/assert.h"

namespace {

using zt::hbone::ProxyParseStatus;

void check_parse(std::span<const uint8_t> input) {
    auto parsed = zt::hbone::parse_proxy_v2(input);
    ZT_CHECK(parsed.error.empty() == (parsed.status != ProxyParseStatus::invalid));
    if (parsed.status != ProxyParseStatus::complete) {
        return;
    }
    const auto& header = parsed.header;
    ZT_CHECK(header.size >= zt::hbone::kProxyV2FixedBytes && header.size <= input.size());
    ZT_CHECK(header.size == zt::hbone::kProxyV2FixedBytes + ((size_t(input[14]) << 8) | input[15]));
    for (const auto& tlv : header.tlvs) {
        ZT_CHECK(tlv.value.data() >= input.data() &&
                 tlv.value.data() + tlv.value.size() <= input.data() + header.size);
    }
    bool builder_shape = header.command == zt::hbone::ProxyCommand::proxy &&
                         header.transport == zt::hbone::ProxyTransport::stream &&
                         (header.family == zt::hbone::ProxyFamily::inet ||
                          header.family == zt::hbone::ProxyFamily::inet6) &&
                         header.tlvs.size() <= 1;
    if (builder_shape && header.tlvs.size() == 1) {
        builder_shape = header.tlvs[0].type == zt::hbone::kProxyTlvPeerIdentity &&
                        !header.tlvs[0].value.empty();
    }
    if (!builder_shape) {
        return;
    }
    auto rebuilt = zt::hbone::build_proxy_v2(header.source, header.destination,
                                             header.peer_identity().value_or(""));
    ZT_CHECK(rebuilt.has_value());
    ZT_CHECK(rebuilt->size() == header.size);
    ZT_CHECK(std::memcmp(rebuilt->data(), input.data(), header.size) == 0);
}

void check_build(std::span<const uint8_t> input) {
    if (input.size() < 37) {
        return;
    }
    zt::hbone::ProxyAddress source;
    zt::hbone::ProxyAddress destination;
    source.v6 = (input[0] & 1) != 0;
    destination.v6 = (input[0] & 2) != 0;
    std::memcpy(source.ip.data(), input.data() + 1, 16);
    std::memcpy(destination.ip.data(), input.data() + 17, 16);
    source.port = uint16_t((input[33] << 8) | input[34]);
    destination.port = uint16_t((input[35] << 8) | input[36]);
    if (!source.v6) {
        std::memset(source.ip.data() + 4, 0, 12);
    }
    if (!destination.v6) {
        std::memset(destination.ip.data() + 4, 0, 12);
    }
    std::string_view identity(reinterpret_cast<const char*>(input.data()) + 37, input.size() - 37);
    auto built = zt::hbone::build_proxy_v2(source, destination, identity);
    ZT_CHECK(built.has_value() == (identity.size() <= zt::hbone::kProxyV2IdentityMax));
    if (!built) {
        return;
    }
    auto parsed = zt::hbone::parse_proxy_v2(*built);
    ZT_CHECK(parsed.status == ProxyParseStatus::complete);
    ZT_CHECK(parsed.header.size == built->size());
    ZT_CHECK(parsed.header.peer_identity().value_or("") == identity);
    if (source.v6 == destination.v6) {
        ZT_CHECK(parsed.header.source == source);
        ZT_CHECK(parsed.header.destination == destination);
    } else {
        ZT_CHECK(parsed.header.family == zt::hbone::ProxyFamily::unspec);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> input(data, size);
    check_parse(input);
    check_build(input);
    return 0;
}
