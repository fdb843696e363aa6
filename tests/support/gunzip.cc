// gunzip.cc inflates gzip bodies with zlib so tests can compare them with the uncompressed
// scrape. Test support only.

#include "tests/support/gunzip.h"

#include <zlib.h>

namespace zt::test {

std::optional<std::string> gunzip(std::string_view data) {
    z_stream stream{};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) {
        return std::nullopt;
    }
    std::string out;
    char buf[16384];
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    stream.avail_in = uInt(data.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        stream.next_out = reinterpret_cast<Bytef*>(buf);
        stream.avail_out = sizeof buf;
        rc = inflate(&stream, Z_NO_FLUSH);
        out.append(buf, sizeof buf - stream.avail_out);
        if (rc == Z_BUF_ERROR && stream.avail_in == 0) {
            break;  // truncated input
        }
    }
    inflateEnd(&stream);
    if (rc != Z_STREAM_END) {
        return std::nullopt;
    }
    return out;
}

}  // namespace zt::test
