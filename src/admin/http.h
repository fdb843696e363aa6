#pragma once

// A small sans-I/O HTTP/1.1 request parser and response writer for the three operator servers
// (admin :15000, metrics :15020, readiness :15021). It handles what curl, istioctl, Prometheus
// and the kubelet send: a request line, headers, and an optional Content-Length body. Every size
// is bounded, and every refusal maps to a precise status (400, 413, 431, 501, 505) so a client
// learns what it did wrong. No I/O: `http_server.h` moves the bytes.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zt::admin {

// HttpLimits bounds one request.
struct HttpLimits {
    size_t max_header_bytes = 8192;  // request line + headers, including the blank line
    size_t max_headers = 64;
    size_t max_body_bytes = 65536;
};

// HeldRequest says whether a request is asked again after its handler held it (see
// `HttpResponse::hold_ms`). `context` is what the handler put in `HttpResponse::hold_context`.
struct HeldRequest {
    bool held = false;     // asked again: the handler held this request before
    bool expired = false;  // the hold time is over: the handler must answer now
    uint64_t context = 0;
};

// HttpRequest is one parsed request. `path` is the target before `?`, not decoded; `query` the
// part after it (without `?`), not decoded.
struct HttpRequest {
    std::string method;
    std::string target;
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    HeldRequest hold;  // set by the server when it asks again

    // header returns the first header named `name` (lower-case), or an empty view.
    std::string_view header(std::string_view name) const;
};

// RequestParser consumes bytes until one request is complete or refused.
class RequestParser {
public:
    enum class Status : uint8_t {
        need_more,  // feed more bytes
        complete,   // `request()` is ready
        error,      // refused; `error_status()` and `error_reason()` say why
    };

    explicit RequestParser(HttpLimits limits = {}) : limits_(limits) {}

    // feed appends `data` and parses as far as possible. After `complete` or `error` further
    // bytes are ignored (these servers close after one response).
    Status feed(std::string_view data);

    Status status() const { return status_; }

    const HttpRequest& request() const { return request_; }

    // error_status is the HTTP status to answer with after `error`.
    int error_status() const { return error_status_; }

    // error_reason is a one-line explanation for the response body.
    std::string_view error_reason() const { return error_reason_; }

private:
    Status refuse(int status, std::string_view reason);
    Status parse_head(std::string_view head);

    HttpLimits limits_;
    Status status_ = Status::need_more;
    std::string buffer_;
    size_t body_start_ = 0;
    size_t content_length_ = 0;
    bool head_done_ = false;
    HttpRequest request_;
    int error_status_ = 0;
    std::string_view error_reason_;
};

// HttpResponse is what a handler answers. The writer adds Content-Length and
// `Connection: close`.
//
// A handler that cannot answer yet (a long poll) returns `hold(ms, context)` instead: the server
// keeps the connection without answering, asks the handler again (with `HttpRequest::hold`)
// each time `HttpServer::wake_held` is called, and once more with `expired` set when `ms` have
// passed, when the answer is due whatever the state.
struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    int64_t hold_ms = 0;        // > 0: not an answer; hold the request this long at most
    uint64_t hold_context = 0;  // handed back in `HttpRequest::hold.context`

    // hold builds the "not yet" answer.
    static HttpResponse hold(int64_t ms, uint64_t context) {
        HttpResponse response;
        response.hold_ms = ms;
        response.hold_context = context;
        return response;
    }
};

// reason_phrase returns the standard reason phrase of `status`.
std::string_view reason_phrase(int status);

// serialize renders `response` as HTTP/1.1 bytes; with `head_only` the body is left out but
// Content-Length still gives its size.
std::string serialize(const HttpResponse& response, bool head_only = false);

// text_response builds a plain-text response.
HttpResponse text_response(int status, std::string body);

// percent_decode decodes `%XX` escapes and `+` as space, as form-urlencoded queries need.
// Malformed escapes are kept literally.
std::string percent_decode(std::string_view text);

// parse_query splits `a=1&b&c=x%3Ay` into decoded pairs; a key without `=` has an empty value.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

}  // namespace zt::admin
