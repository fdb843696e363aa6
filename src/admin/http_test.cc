// Unit tests for the sans-I/O HTTP/1.1 parser and writer, query decoding, the readiness tracker
// and the `/logging` level control. No sockets here; admin_test.cc drives the real servers.

#include "src/admin/http.h"

#include <string>

#include <doctest/doctest.h>

#include "src/admin/logging.h"
#include "src/admin/readiness.h"
#include "zt/log.h"

using namespace zt::admin;
using Status = RequestParser::Status;

namespace {

Status parse(RequestParser& parser, std::string_view bytes) {
    return parser.feed(bytes);
}

HttpRequest post(std::string query) {
    HttpRequest request;
    request.method = "POST";
    request.path = "/logging";
    request.query = std::move(query);
    return request;
}

}  // namespace

TEST_CASE("http: parses a request fed one byte at a time") {
    RequestParser parser;
    std::string bytes =
            "POST /logging?level=access%3Adebug HTTP/1.1\r\nHost: localhost:15000\r\n"
            "Accept-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello";
    Status status = Status::need_more;
    for (size_t i = 0; i < bytes.size(); ++i) {
        REQUIRE(status == Status::need_more);
        status = parser.feed(std::string_view(&bytes[i], 1));
    }
    REQUIRE(status == Status::complete);
    const HttpRequest& request = parser.request();
    CHECK(request.method == "POST");
    CHECK(request.path == "/logging");
    CHECK(request.query == "level=access%3Adebug");
    CHECK(request.header("accept-encoding") == "gzip");
    CHECK(request.header("host") == "localhost:15000");
    CHECK(request.body == "hello");
}

TEST_CASE("http: bare LF line endings and absolute-form targets are accepted") {
    RequestParser parser;
    REQUIRE(parse(parser, "GET http://127.0.0.1:15020/metrics HTTP/1.0\nAccept: */*\n\n") ==
            Status::complete);
    CHECK(parser.request().path == "/metrics");
    CHECK(parser.request().header("accept") == "*/*");
}

TEST_CASE("http: refusals carry precise statuses") {
    struct Case {
        std::string bytes;
        int status;
    };

    const Case cases[] = {
            {"GET / HTTP/1.1\r\n\r\n", 400},              // no Host on 1.1
            {"GET /\r\nHost: a\r\n\r\n", 400},            // no version
            {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},  // double space
            {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},   // bad method token
            {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
            {"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
            {"GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400},
            {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
            {"GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
            {"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400},
            {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
            {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12x\r\n\r\n", 400},
            {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
            {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n", 413},
            {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        RequestParser parser;
        CHECK(parse(parser, c.bytes) == Status::error);
        CHECK(parser.error_status() == c.status);
        CHECK(!parser.error_reason().empty());
    }
}

TEST_CASE("http: header size and count are bounded") {
    HttpLimits limits;
    limits.max_header_bytes = 128;
    limits.max_headers = 3;
    {
        RequestParser parser(limits);
        std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200, 'x');
        CHECK(parse(parser, big) == Status::error);  // refused before the head even ends
        CHECK(parser.error_status() == 431);
    }
    {
        RequestParser parser(limits);
        CHECK(parse(parser, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n") ==
              Status::error);
        CHECK(parser.error_status() == 431);
    }
}

TEST_CASE("http: responses carry length and close, HEAD leaves out the body") {
    HttpResponse response = text_response(200, "ready\n");
    std::string full = serialize(response);
    CHECK(full ==
          "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"
          "content-length: 6\r\nconnection: close\r\n\r\nready\n");
    std::string head = serialize(response, true);
    CHECK(head.size() == full.size() - 6);
    CHECK(reason_phrase(405) == "Method Not Allowed");
}

TEST_CASE("http: query strings decode percent escapes and plus") {
    auto pairs = parse_query("level=access%3Adebug%2Cproxy%3Dwarn&reset&x=a+b&bad=%zz&&");
    REQUIRE(pairs.size() == 4);
    CHECK(pairs[0].first == "level");
    CHECK(pairs[0].second == "access:debug,proxy=warn");
    CHECK(pairs[1].first == "reset");
    CHECK(pairs[1].second.empty());
    CHECK(pairs[2].second == "a b");
    CHECK(pairs[3].second == "%zz");
    CHECK(percent_decode("%4") == "%4");
}

TEST_CASE("readiness: pending names are sorted, counted, and released once each") {
    Readiness readiness;
    int status = 0;
    CHECK(readiness.probe_body(status) == "ready\n");
    CHECK(status == 200);
    readiness.block("state manager");
    readiness.block("proxy");
    readiness.block("proxy");
    CHECK(readiness.probe_body(status) == "not ready, pending: proxy, state manager\n");
    CHECK(status == 500);
    CHECK(readiness.release("proxy"));
    CHECK(readiness.pending().size() == 2);  // blocked twice, released once
    CHECK(readiness.release("proxy"));
    CHECK_FALSE(readiness.release("proxy"));
    CHECK(readiness.release("state manager"));
    CHECK(readiness.ready());
    readiness.start_draining();
    CHECK(readiness.probe_body(status) == "not ready, pending: draining\n");
    CHECK(status == 500);
}

TEST_CASE("logging: POST /logging shows, appends, resets and refuses like ztunnel") {
    auto startup = zt::log::Filter::parse("info");
    REQUIRE(startup.has_value());
    zt::log::set_filter(*startup);
    LogLevels levels(*startup);

    HttpRequest get = post("");
    get.method = "GET";
    HttpResponse refused = levels.handle(get);
    CHECK(refused.status == 405);
    CHECK(refused.body.rfind("Invalid HTTP method\n", 0) == 0);

    HttpResponse shown = levels.handle(post(""));
    CHECK(shown.status == 200);
    CHECK(shown.body == "current log level is info\n");

    CHECK_FALSE(zt::log::enabled(zt::log::Level::debug, "access"));
    HttpResponse changed = levels.handle(post("level=access%3Adebug"));
    CHECK(changed.status == 200);
    CHECK(changed.body == "current log level is info,access=debug\n");
    CHECK(zt::log::enabled(zt::log::Level::debug, "access"));
    CHECK_FALSE(zt::log::enabled(zt::log::Level::debug, "proxy"));

    // Appends to the current filter.
    CHECK(levels.handle(post("level=proxy=trace")).body ==
          "current log level is info,access=debug,proxy=trace\n");
    CHECK(levels.handle(post("level=warn")).body ==
          "current log level is warn,access=debug,proxy=trace\n");

    HttpResponse bad = levels.handle(post("level=loud"));
    CHECK(bad.status == 400);
    CHECK(bad.body.rfind("Invalid level provided: loud\n", 0) == 0);
    CHECK(zt::log::enabled(zt::log::Level::debug, "access"));  // unchanged by a refusal

    // istioctl zc log -r sends level=info&reset.
    CHECK(levels.handle(post("level=info&reset")).body == "current log level is info\n");
    CHECK_FALSE(zt::log::enabled(zt::log::Level::debug, "access"));
    CHECK(levels.handle(post("reset&level=access=debug")).body ==
          "current log level is info,access=debug\n");
    CHECK(levels.handle(post("reset")).body == "current log level is info\n");
    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
}

TEST_CASE("logging: ztunnel's RUST_LOG and /logging examples with module paths parse") {
    auto filter = zt::log::Filter::parse("error,ztunnel::proxy=warn");
    REQUIRE(filter.has_value());
    CHECK(filter->to_string() == "error,proxy=warn");
    CHECK(filter->enabled(zt::log::Level::warn, "proxy::outbound"));
    CHECK_FALSE(filter->enabled(zt::log::Level::warn, "access"));
    auto colon = zt::log::Filter::parse("proxy::outbound:debug");
    REQUIRE(colon.has_value());
    CHECK(colon->enabled(zt::log::Level::debug, "proxy::outbound"));
    CHECK_FALSE(colon->enabled(zt::log::Level::debug, "proxy"));
    CHECK_FALSE(zt::log::Filter::parse("ztunnel::proxy").has_value());  // no level
    CHECK_FALSE(zt::log::Filter::parse("access=loud").has_value());

    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
    LogLevels levels(zt::log::Filter(zt::log::Level::info));
    CHECK(levels.handle(post("level=ztunnel%3A%3Aproxy%3Dtrace")).body ==
          "current log level is info,proxy=trace\n");
    CHECK(zt::log::enabled(zt::log::Level::trace, "proxy"));
    zt::log::set_filter(zt::log::Filter(zt::log::Level::info));
}
