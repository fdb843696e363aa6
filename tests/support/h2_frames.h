#pragma once

// Hand-built HTTP/2 frames for tests and fuzz seeds: a frame writer, a literal-only HPACK header
// block encoder (no Huffman, no indexing, so every byte is predictable) and a frame splitter for
// checking what a session sent. Test support only; never linked into the proxy.

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "zt/bytes.h"

namespace zt::test {

// kH2Preface is the client connection preface (RFC 9113 §3.4).
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types and flags used by the tests.
inline constexpr uint8_t kFrameData = 0x0, kFrameHeaders = 0x1, kFramePriority = 0x2,
                         kFrameRstStream = 0x3, kFrameSettings = 0x4, kFramePing = 0x6,
                         kFrameGoaway = 0x7, kFrameWindowUpdate = 0x8, kFrameContinuation = 0x9;
inline constexpr uint8_t kFlagEndStream = 0x1, kFlagAck = 0x1, kFlagEndHeaders = 0x4;

// H2Frame is one parsed frame; `payload` is a copy.
struct H2Frame {
    uint8_t type = 0;
    uint8_t flags = 0;
    int32_t stream_id = 0;
    std::vector<uint8_t> payload;
};

// append_frame appends a frame header and `payload` to `out`.
void append_frame(std::vector<uint8_t>& out, uint8_t type, uint8_t flags, int32_t stream_id,
                  ByteSpan payload);

// hpack_literals encodes `headers` as HPACK literals without indexing.
std::vector<uint8_t> hpack_literals(
        const std::vector<std::pair<std::string_view, std::string_view>>& headers);

// client_preface returns the preface plus an empty SETTINGS frame (and `settings` entries).
std::vector<uint8_t> client_preface(
        const std::vector<std::pair<uint16_t, uint32_t>>& settings = {});

// append_settings, append_rst, append_window_update, append_goaway, append_ping build single
// frames of those types.
void append_settings(std::vector<uint8_t>& out,
                     const std::vector<std::pair<uint16_t, uint32_t>>& settings, bool ack = false);
void append_rst(std::vector<uint8_t>& out, int32_t stream_id, uint32_t code);
void append_window_update(std::vector<uint8_t>& out, int32_t stream_id, uint32_t increment);
void append_ping(std::vector<uint8_t>& out, bool ack);

// append_connect appends HEADERS(END_HEADERS) carrying CONNECT to `authority` on `stream_id`.
void append_connect(std::vector<uint8_t>& out, int32_t stream_id, std::string_view authority,
                    bool end_stream = false);

// parse_frames splits `bytes` into frames, ignoring a trailing partial frame.
std::vector<H2Frame> parse_frames(ByteSpan bytes);

// goaway_code returns the error code of the last GOAWAY in `frames`, or -1 when there is none.
int64_t goaway_code(const std::vector<H2Frame>& frames);

// count_frames counts frames of `type` (and, when `code` >= 0, RST_STREAM/GOAWAY with that code).
size_t count_frames(const std::vector<H2Frame>& frames, uint8_t type, int64_t code = -1);

}  // namespace zt::test
