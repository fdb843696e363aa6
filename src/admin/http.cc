// http.cc parses one HTTP/1.1 request from bytes and writes responses, with every size bounded.
// It never touches a socket and never trusts a length the client sends beyond the limits.

#include "src/admin/http.h"

#include <charconv>

namespace zt::admin {

namespace {

bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = char(c - 'A' + 'a');
        }
    }
    return out;
}

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

// next_line returns the line at `pos` (without CR LF or bare LF) and advances `pos`.
std::string_view next_line(std::string_view text, size_t& pos) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
        nl = text.size();
    }
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    pos = nl + 1;
    return line;
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (key == name) {
            return value;
        }
    }
    return {};
}

RequestParser::Status RequestParser::refuse(int status, std::string_view reason) {
    status_ = Status::error;
    error_status_ = status;
    error_reason_ = reason;
    return status_;
}

RequestParser::Status RequestParser::feed(std::string_view data) {
    if (status_ != Status::need_more) {
        return status_;
    }
    if (!head_done_) {
        // Look for the end of the head only in what could complete it.
        size_t search_from = buffer_.size() >= 3 ? buffer_.size() - 3 : 0;
        buffer_.append(data);
        size_t end = buffer_.find("\r\n\r\n", search_from);
        size_t end_len = 4;
        size_t lf = buffer_.find("\n\n", search_from);
        if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
            end = lf;
            end_len = 2;
        }
        if (end == std::string::npos) {
            if (buffer_.size() > limits_.max_header_bytes) {
                return refuse(431, "request header too large");
            }
            return status_;
        }
        if (end + end_len > limits_.max_header_bytes) {
            return refuse(431, "request header too large");
        }
        head_done_ = true;
        body_start_ = end + end_len;
        if (parse_head(std::string_view(buffer_).substr(0, end)) == Status::error) {
            return status_;
        }
    } else {
        buffer_.append(data);
    }
    if (buffer_.size() - body_start_ >= content_length_) {
        request_.body = buffer_.substr(body_start_, content_length_);
        buffer_.clear();
        status_ = Status::complete;
    }
    return status_;
}

RequestParser::Status RequestParser::parse_head(std::string_view head) {
    size_t pos = 0;
    std::string_view line = next_line(head, pos);
    // Request line: METHOD SP request-target SP HTTP-version.
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        line.find(' ', sp2 + 1) != std::string_view::npos) {
        return refuse(400, "malformed request line");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (method.empty()) {
        return refuse(400, "malformed request line");
    }
    for (char c : method) {
        if (!is_token_char(c)) {
            return refuse(400, "malformed method");
        }
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        return refuse(400, "malformed HTTP version");
    }
    if (version[5] != '1') {
        return refuse(505, "only HTTP/1.x is supported");
    }
    // Absolute form (`http://host/path`) is allowed by RFC 9112; keep only the path.
    if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
        size_t slash = target.find('/', target.find("//") + 2);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (target.empty() || target[0] != '/') {
        return refuse(400, "request target must be a path");
    }
    for (char c : target) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
            return refuse(400, "malformed request target");
        }
    }
    request_.method = std::string(method);
    request_.target = std::string(target);
    size_t question = target.find('?');
    request_.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) {
        request_.query = std::string(target.substr(question + 1));
    }

    bool have_length = false;
    while (pos <= head.size()) {
        std::string_view header_line = next_line(head, pos);
        if (header_line.empty()) {
            if (pos > head.size()) {
                break;
            }
            return refuse(400, "malformed header");
        }
        if (header_line[0] == ' ' || header_line[0] == '\t') {
            return refuse(400, "obsolete header line folding");
        }
        size_t colon = header_line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return refuse(400, "malformed header");
        }
        std::string_view name = header_line.substr(0, colon);
        for (char c : name) {
            if (!is_token_char(c)) {
                return refuse(400, "malformed header name");
            }
        }
        std::string_view value = trim_ows(header_line.substr(colon + 1));
        for (char c : value) {
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
                return refuse(400, "malformed header value");
            }
        }
        if (request_.headers.size() >= limits_.max_headers) {
            return refuse(431, "too many headers");
        }
        std::string key = lower(name);
        if (key == "transfer-encoding") {
            return refuse(501, "transfer-encoding is not supported");
        }
        if (key == "content-length") {
            size_t length = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
            if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
                return refuse(400, "malformed content-length");
            }
            if (have_length && length != content_length_) {
                return refuse(400, "conflicting content-length");
            }
            if (length > limits_.max_body_bytes) {
                return refuse(413, "request body too large");
            }
            have_length = true;
            content_length_ = length;
        }
        request_.headers.emplace_back(std::move(key), std::string(value));
    }
    if (request_.header("host").empty() && version[7] == '1') {
        // RFC 9112 §3.2 requires Host on HTTP/1.1; refusing catches garbage early.
        return refuse(400, "missing host header");
    }
    return status_;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Content Too Large";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::string serialize(const HttpResponse& response, bool head_only) {
    std::string out = "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += reason_phrase(response.status);
    out += "\r\n";
    if (!response.content_type.empty()) {
        out += "content-type: ";
        out += response.content_type;
        out += "\r\n";
    }
    for (const auto& [name, value] : response.headers) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "content-length: ";
    out += std::to_string(response.body.size());
    out += "\r\nconnection: close\r\n\r\n";
    if (!head_only) {
        out += response.body;
    }
    return out;
}

HttpResponse text_response(int status, std::string body) {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    return response;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            out += char(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> pairs;
    size_t pos = 0;
    while (pos < query.size()) {
        size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) {
            amp = query.size();
        }
        std::string_view part = query.substr(pos, amp - pos);
        pos = amp + 1;
        if (part.empty()) {
            continue;
        }
        size_t eq = part.find('=');
        if (eq == std::string_view::npos) {
            pairs.emplace_back(percent_decode(part), std::string());
        } else {
            pairs.emplace_back(percent_decode(part.substr(0, eq)),
                               percent_decode(part.substr(eq + 1)));
        }
    }
    return pairs;
}

}  // namespace zt::admin
