// grpc_frame.cc implements gRPC's framing and status rules over plain bytes and header lists:
// message prefixes in and out, status codes from trailers or HTTP statuses, the percent-encoding
// of `grpc-message` and the `grpc-timeout` units. It must stay free of I/O and of HTTP/2 state
// so every rule is testable on its own.

#include "src/agent/grpc_frame.h"

#include <algorithm>
#include <cstring>

namespace zt::agent::grpc {

namespace {

// kReserveAheadBytes is the most a message buffer grows ahead of the bytes actually received:
// a declared length is a claim, not a reason to allocate 200 MiB.
constexpr size_t kReserveAheadBytes = size_t(4) << 20;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

std::string_view to_string(StatusCode code) {
    switch (code) {
        case StatusCode::ok:
            return "OK";
        case StatusCode::cancelled:
            return "CANCELLED";
        case StatusCode::unknown:
            return "UNKNOWN";
        case StatusCode::invalid_argument:
            return "INVALID_ARGUMENT";
        case StatusCode::deadline_exceeded:
            return "DEADLINE_EXCEEDED";
        case StatusCode::not_found:
            return "NOT_FOUND";
        case StatusCode::already_exists:
            return "ALREADY_EXISTS";
        case StatusCode::permission_denied:
            return "PERMISSION_DENIED";
        case StatusCode::resource_exhausted:
            return "RESOURCE_EXHAUSTED";
        case StatusCode::failed_precondition:
            return "FAILED_PRECONDITION";
        case StatusCode::aborted:
            return "ABORTED";
        case StatusCode::out_of_range:
            return "OUT_OF_RANGE";
        case StatusCode::unimplemented:
            return "UNIMPLEMENTED";
        case StatusCode::internal:
            return "INTERNAL";
        case StatusCode::unavailable:
            return "UNAVAILABLE";
        case StatusCode::data_loss:
            return "DATA_LOSS";
        case StatusCode::unauthenticated:
            return "UNAUTHENTICATED";
    }
    return "UNKNOWN";
}

void append_message(std::string& out, std::string_view payload) {
    ZT_CHECK(payload.size() <= UINT32_MAX);
    uint32_t n = static_cast<uint32_t>(payload.size());
    const char prefix[kMessagePrefixBytes] = {0, char(n >> 24), char(n >> 16), char(n >> 8),
                                              char(n)};
    out.append(prefix, kMessagePrefixBytes);
    out.append(payload);
}

Result<void> MessageReader::feed(ByteSpan bytes) {
    if (failed_ != Errc::sys) {
        return fail(failed_);
    }
    size_t at = 0;
    while (at < bytes.size()) {
        if (!in_body_) {
            size_t take = std::min(kMessagePrefixBytes - header_fill_, bytes.size() - at);
            std::memcpy(header_ + header_fill_, bytes.data() + at, take);
            header_fill_ += take;
            at += take;
            if (header_fill_ < kMessagePrefixBytes) {
                break;
            }
            if (header_[0] != 0) {
                failed_ = Errc::unsupported;
                return fail(failed_);
            }
            body_length_ = (size_t(header_[1]) << 24) | (size_t(header_[2]) << 16) |
                           (size_t(header_[3]) << 8) | size_t(header_[4]);
            if (body_length_ > max_message_bytes_) {
                failed_ = Errc::no_capacity;
                return fail(failed_);
            }
            header_fill_ = 0;
            in_body_ = true;
            body_.clear();
            body_.reserve(std::min(body_length_, kReserveAheadBytes));
        }
        size_t take = std::min(body_length_ - body_.size(), bytes.size() - at);
        body_.append(reinterpret_cast<const char*>(bytes.data() + at), take);
        at += take;
        if (body_.size() == body_length_) {
            ready_.push_back(std::move(body_));
            body_ = std::string();
            in_body_ = false;
        }
    }
    return ok();
}

bool MessageReader::next(std::string& out) {
    if (ready_.empty()) {
        return false;
    }
    out = std::move(ready_.front());
    ready_.pop_front();
    return true;
}

std::string percent_decode_message(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '%' && i + 2 < value.size()) {
            int hi = hex_value(value[i + 1]);
            int lo = hex_value(value[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(char(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(value[i]);
    }
    return out;
}

std::string percent_encode_message(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte <= 0x7e && byte != '%') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 0xf]);
        }
    }
    return out;
}

StatusCode status_from_http(uint16_t http_status) {
    switch (http_status) {
        case 400:
            return StatusCode::internal;
        case 401:
            return StatusCode::unauthenticated;
        case 403:
            return StatusCode::permission_denied;
        case 404:
            return StatusCode::unimplemented;
        case 429:
        case 502:
        case 503:
        case 504:
            return StatusCode::unavailable;
        default:
            return StatusCode::unknown;
    }
}

std::string_view find_field(std::span<const hbone::H2Field> fields, std::string_view name) {
    for (const hbone::H2Field& field : fields) {
        if (field.name == name) {
            return field.value;
        }
    }
    return {};
}

Status status_from_fields(std::span<const hbone::H2Field> fields) {
    std::string_view text = find_field(fields, "grpc-status");
    Status status;
    uint32_t code = 0;
    bool valid = !text.empty() && text.size() <= 3;
    for (char c : text) {
        if (c < '0' || c > '9') {
            valid = false;
            break;
        }
        code = code * 10 + uint32_t(c - '0');
    }
    if (!valid) {
        status.code = StatusCode::unknown;
        status.message = text.empty() ? "the server's response has no grpc-status"
                                      : "the server's grpc-status is not a number";
        return status;
    }
    // Codes the spec does not define are UNKNOWN to a client (gRPC's own rule).
    status.code = code <= 16 ? StatusCode(code) : StatusCode::unknown;
    status.message = percent_decode_message(find_field(fields, "grpc-message"));
    return status;
}

bool is_grpc_content_type(std::string_view value) {
    constexpr std::string_view kType = "application/grpc";
    if (value.size() < kType.size()) {
        return false;
    }
    for (size_t i = 0; i < kType.size(); ++i) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z') {
            c = char(c - 'A' + 'a');
        }
        if (c != kType[i]) {
            return false;
        }
    }
    return value.size() == kType.size() || value[kType.size()] == '+' || value[kType.size()] == ';';
}

std::string encode_timeout(int64_t ns) {
    ZT_ASSERT(ns > 0);

    // gRPC allows at most eight digits; pick the finest unit that fits, rounding up.
    struct Unit {
        char letter;
        int64_t ns;
    };

    static constexpr Unit kUnits[] = {
            {'n', 1},
            {'u', 1'000},
            {'m', 1'000'000},
            {'S', 1'000'000'000},
            {'M', 60'000'000'000},
            {'H', 3'600'000'000'000},
    };
    constexpr int64_t kMaxValue = 99'999'999;
    for (const Unit& unit : kUnits) {
        int64_t value = (ns + unit.ns - 1) / unit.ns;
        if (value <= kMaxValue) {
            return std::to_string(value) + unit.letter;
        }
    }
    return std::to_string(kMaxValue) + "H";
}

}  // namespace zt::agent::grpc
