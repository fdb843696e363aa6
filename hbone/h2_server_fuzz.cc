// h2_server_fuzz.cc feeds arbitrary bytes to a server H2Session with the production callbacks and
// protections, acting as src/ would (answer requests, echo data, consume, tick). The first byte
// picks options: bit 0 prepends a valid client preface + SETTINGS (to reach deep states), bits 1-3
// pick the chunk size fed per call. Any crash, assert or leak is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "hbone/h2_session.h"

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t kEmptySettings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace zt::hbone;
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    std::vector<uint8_t> input;
    if (flags & 1) {
        input.insert(input.end(), kPreface.begin(), kPreface.end());
        input.insert(input.end(), kEmptySettings, kEmptySettings + sizeof kEmptySettings);
    }
    input.insert(input.end(), data + 1, data + size);
    size_t chunk = size_t{1} << (((flags >> 1) & 7) * 2);  // 1, 4, 16, ... 16384 bytes.

    H2Limits limits = default_limits(Role::server);
    limits.glitch_burst = 50;  // Reach the glitch path with small inputs.
    auto created = H2Session::create(Role::server, limits, 0);
    if (!created) {
        return 0;
    }
    H2Session& s = **created;
    static const uint8_t kEcho[] = "echo";
    uint64_t now = 0;
    for (size_t at = 0; at < input.size(); at += chunk) {
        size_t n = std::min(chunk, input.size() - at);
        auto fed = s.feed(zt::ByteSpan(input.data() + at, n));
        H2Event event;
        while (s.poll_event(event)) {
            switch (event.kind) {
                case H2EventKind::request:
                    (void)s.respond(event.stream_id, event.authority.port % 2 == 0
                                                             ? kStatusOk
                                                             : kStatusServiceUnavailable);
                    break;
                case H2EventKind::data:
                    s.consume(event.stream_id, event.data.size());
                    (void)s.write_data(event.stream_id, zt::ByteSpan(kEcho, 4), false);
                    break;
                case H2EventKind::end_stream:
                    (void)s.write_data(event.stream_id, {}, true);
                    break;
                case H2EventKind::reset:
                    s.reset_stream(event.stream_id, kCancel);
                    break;
                default:
                    break;
            }
        }
        now += 3'000'000'000;
        (void)s.tick(now);
        zt::ByteSpan out = s.pending_output();
        s.consume_output(out.size());
        if (!fed) {
            break;
        }
    }
    s.drain();
    (void)s.pending_output();
    return 0;
}
