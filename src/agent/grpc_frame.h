#pragma once

// The gRPC-over-HTTP/2 wire rules the agent's client needs, as pure functions and one small
// parser (PROTOCOL-HTTP2.md of grpc/grpc): the length-prefixed message framing, the status codes
// and how a status is read from trailers (or from the HTTP status when a proxy answered), the
// `grpc-message` percent-encoding, and the `grpc-timeout` header. No I/O, no HTTP/2 state: the
// call (src/agent/grpc_channel.h) feeds DATA payloads in and takes messages out.

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>

#include "hbone/h2_session.h"
#include "zt/bytes.h"
#include "zt/result.h"

namespace zt::agent::grpc {

// StatusCode is gRPC's canonical status code (the numbers are the wire values).
enum class StatusCode : uint8_t {
    ok = 0,
    cancelled = 1,
    unknown = 2,
    invalid_argument = 3,
    deadline_exceeded = 4,
    not_found = 5,
    already_exists = 6,
    permission_denied = 7,
    resource_exhausted = 8,
    failed_precondition = 9,
    aborted = 10,
    out_of_range = 11,
    unimplemented = 12,
    internal = 13,
    unavailable = 14,
    data_loss = 15,
    unauthenticated = 16,
};

// to_string returns the code's canonical upper-case name (`OK`, `UNAVAILABLE`, ...), for logs.
std::string_view to_string(StatusCode code);

// Status is how a call ended: a code and the server's (decoded) message, or ours when the call
// failed on this side (transport lost, deadline, malformed response).
struct Status {
    StatusCode code = StatusCode::ok;
    std::string message;

    bool ok() const { return code == StatusCode::ok; }
};

// kMaxMessageBytes is the largest message the agent accepts, as ztunnel's xDS client
// (`max_decoding_message_size`, 200 MiB): an istiod push for a large mesh is big, a bigger one
// is a fault.
inline constexpr size_t kMaxMessageBytes = size_t(200) << 20;

// kMessagePrefixBytes is the size of a message's prefix: one flag byte (1 = compressed), then
// the payload length as a 32-bit big-endian number.
inline constexpr size_t kMessagePrefixBytes = 5;

// append_message appends `payload` to `out` as one uncompressed length-prefixed message.
void append_message(std::string& out, std::string_view payload);

// MessageReader reassembles length-prefixed messages from DATA payloads cut anywhere. It holds
// at most one message being assembled; the memory it reserves ahead is bounded (a declared
// length is trusted only as it is filled), so a peer announcing 200 MiB and sending nothing
// costs nothing.
class MessageReader {
public:
    explicit MessageReader(size_t max_message_bytes = kMaxMessageBytes)
        : max_message_bytes_(max_message_bytes) {}

    // feed consumes `bytes`, completing messages into the ready queue. Fails, and stays
    // failed, with `Errc::no_capacity` when a message declares more than the maximum (gRPC
    // RESOURCE_EXHAUSTED) and `Errc::unsupported` for a compressed message (the agent never
    // offers an encoding, so a compressed one is the server's error: INTERNAL).
    Result<void> feed(ByteSpan bytes);

    // next moves the oldest complete message into `out`; false when there is none.
    bool next(std::string& out);

    // partial says whether a message has begun but not finished (a stream that ends then lost
    // bytes).
    bool partial() const { return header_fill_ > 0 || in_body_; }

private:
    size_t max_message_bytes_;
    uint8_t header_[kMessagePrefixBytes] = {};
    size_t header_fill_ = 0;
    bool in_body_ = false;
    size_t body_length_ = 0;
    std::string body_;
    std::deque<std::string> ready_;  // Complete messages not yet taken, oldest first.
    Errc failed_ = Errc::sys;        // `Errc::sys`: not failed.
};

// percent_decode_message decodes a `grpc-message` value (`%XX` escapes of UTF-8 bytes; a
// malformed escape is kept literally, as the spec asks).
std::string percent_decode_message(std::string_view value);

// percent_encode_message encodes `text` for a `grpc-message` value: bytes outside printable
// ASCII, and `%`, become `%XX`.
std::string percent_encode_message(std::string_view text);

// status_from_http maps a non-200 HTTP status (a proxy or a server that is not gRPC answered)
// to the gRPC code the spec gives it: 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
StatusCode status_from_http(uint16_t http_status);

// status_from_fields reads `grpc-status` and `grpc-message` from a header block (trailers, or
// the headers of a trailers-only response). A missing or unparsable `grpc-status` is
// UNKNOWN with a message saying so.
Status status_from_fields(std::span<const hbone::H2Field> fields);

// find_field returns the value of the first field named `name`, or an empty view.
std::string_view find_field(std::span<const hbone::H2Field> fields, std::string_view name);

// is_grpc_content_type says whether `value` is `application/grpc` or `application/grpc+...` /
// `application/grpc;...` (a response with another type is not gRPC).
bool is_grpc_content_type(std::string_view value);

// encode_timeout renders a deadline `ns` from now as a `grpc-timeout` value: at most eight
// digits and the coarsest unit that keeps the value exact enough (`n`, `u`, `m`, `S`, `M`,
// `H`); a timeout is rounded up, never down. `ns` must be positive.
std::string encode_timeout(int64_t ns);

}  // namespace zt::agent::grpc
