// h2_frames.cc writes and splits raw HTTP/2 frames for tests and fuzz seeds. It trusts nothing it
// parses beyond bounds checks, and it is deliberately simpler than a codec: literal HPACK only.

#include "tests/support/h2_frames.h"

namespace zt::test {

namespace {

void put32(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back(static_cast<uint8_t>(v >> 24));
    out.push_back(static_cast<uint8_t>(v >> 16));
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

uint32_t get32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// hpack_int encodes `value` with an N-bit prefix (RFC 7541 §5.1); `first` holds the high bits.
void hpack_int(std::vector<uint8_t>& out, uint8_t first, int prefix_bits, size_t value) {
    size_t max = (size_t{1} << prefix_bits) - 1;
    if (value < max) {
        out.push_back(static_cast<uint8_t>(first | value));
        return;
    }
    out.push_back(static_cast<uint8_t>(first | max));
    value -= max;
    while (value >= 128) {
        out.push_back(static_cast<uint8_t>((value & 0x7f) | 0x80));
        value >>= 7;
    }
    out.push_back(static_cast<uint8_t>(value));
}

}  // namespace

void append_frame(std::vector<uint8_t>& out, uint8_t type, uint8_t flags, int32_t stream_id,
                  ByteSpan payload) {
    size_t len = payload.size();
    out.push_back(static_cast<uint8_t>(len >> 16));
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(static_cast<uint8_t>(len));
    out.push_back(type);
    out.push_back(flags);
    put32(out, static_cast<uint32_t>(stream_id) & 0x7fffffffu);
    out.insert(out.end(), payload.begin(), payload.end());
}

std::vector<uint8_t> hpack_literals(
        const std::vector<std::pair<std::string_view, std::string_view>>& headers) {
    std::vector<uint8_t> out;
    for (const auto& [name, value] : headers) {
        out.push_back(0x00);  // Literal without indexing, new name.
        hpack_int(out, 0, 7, name.size());
        out.insert(out.end(), name.begin(), name.end());
        hpack_int(out, 0, 7, value.size());
        out.insert(out.end(), value.begin(), value.end());
    }
    return out;
}

std::vector<uint8_t> client_preface(const std::vector<std::pair<uint16_t, uint32_t>>& settings) {
    std::vector<uint8_t> out(kH2Preface.begin(), kH2Preface.end());
    append_settings(out, settings);
    return out;
}

void append_settings(std::vector<uint8_t>& out,
                     const std::vector<std::pair<uint16_t, uint32_t>>& settings, bool ack) {
    std::vector<uint8_t> payload;
    for (const auto& [id, value] : settings) {
        payload.push_back(static_cast<uint8_t>(id >> 8));
        payload.push_back(static_cast<uint8_t>(id));
        put32(payload, value);
    }
    append_frame(out, kFrameSettings, ack ? kFlagAck : 0, 0, payload);
}

void append_rst(std::vector<uint8_t>& out, int32_t stream_id, uint32_t code) {
    std::vector<uint8_t> payload;
    put32(payload, code);
    append_frame(out, kFrameRstStream, 0, stream_id, payload);
}

void append_window_update(std::vector<uint8_t>& out, int32_t stream_id, uint32_t increment) {
    std::vector<uint8_t> payload;
    put32(payload, increment);
    append_frame(out, kFrameWindowUpdate, 0, stream_id, payload);
}

void append_ping(std::vector<uint8_t>& out, bool ack) {
    uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    append_frame(out, kFramePing, ack ? kFlagAck : 0, 0, payload);
}

void append_connect(std::vector<uint8_t>& out, int32_t stream_id, std::string_view authority,
                    bool end_stream) {
    std::vector<uint8_t> block =
            hpack_literals({{":method", "CONNECT"}, {":authority", authority}});
    append_frame(out, kFrameHeaders,
                 static_cast<uint8_t>(kFlagEndHeaders | (end_stream ? kFlagEndStream : 0)),
                 stream_id, block);
}

std::vector<H2Frame> parse_frames(ByteSpan bytes) {
    std::vector<H2Frame> frames;
    size_t at = 0;
    while (bytes.size() - at >= 9) {
        const uint8_t* p = bytes.data() + at;
        size_t len = (size_t{p[0]} << 16) | (size_t{p[1]} << 8) | p[2];
        if (bytes.size() - at - 9 < len) {
            break;
        }
        H2Frame frame;
        frame.type = p[3];
        frame.flags = p[4];
        frame.stream_id = static_cast<int32_t>(get32(p + 5) & 0x7fffffffu);
        frame.payload.assign(p + 9, p + 9 + len);
        frames.push_back(std::move(frame));
        at += 9 + len;
    }
    return frames;
}

int64_t goaway_code(const std::vector<H2Frame>& frames) {
    int64_t code = -1;
    for (const H2Frame& frame : frames) {
        if (frame.type == kFrameGoaway && frame.payload.size() >= 8) {
            code = get32(frame.payload.data() + 4);
        }
    }
    return code;
}

size_t count_frames(const std::vector<H2Frame>& frames, uint8_t type, int64_t code) {
    size_t n = 0;
    for (const H2Frame& frame : frames) {
        if (frame.type != type) {
            continue;
        }
        if (code >= 0) {
            size_t off = type == kFrameGoaway ? 4 : 0;
            if (frame.payload.size() < off + 4 || get32(frame.payload.data() + off) != code) {
                continue;
            }
        }
        n++;
    }
    return n;
}

}  // namespace zt::test
