// h2_client_fuzz.cc feeds arbitrary bytes, as if from an HBONE server, to a client H2Session that
// has opened two CONNECT streams and writes on them as src/ would. The first byte picks options:
// bit 0 prepends a valid server SETTINGS frame, bits 1-3 the chunk size. Any crash, assert or leak
// is a bug.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hbone/h2_session.h"

namespace {

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
        input.insert(input.end(), kEmptySettings, kEmptySettings + sizeof kEmptySettings);
    }
    input.insert(input.end(), data + 1, data + size);
    size_t chunk = size_t{1} << (((flags >> 1) & 7) * 2);

    H2Limits limits = default_limits(Role::client);
    limits.glitch_burst = 50;
    auto created = H2Session::create(Role::client, limits, 0);
    if (!created) {
        return 0;
    }
    H2Session& s = **created;
    ConnectRequest request;
    request.authority = "198.18.0.7:8080";
    request.traceparent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00";
    (void)s.submit_connect(request);
    request.authority = "[2001:db8::7]:443";
    (void)s.submit_connect(request);
    (void)s.pending_output();
    static const uint8_t kHello[] = "hello";
    uint64_t now = 0;
    for (size_t at = 0; at < input.size(); at += chunk) {
        size_t n = std::min(chunk, input.size() - at);
        auto fed = s.feed(zt::ByteSpan(input.data() + at, n));
        H2Event event;
        while (s.poll_event(event)) {
            switch (event.kind) {
                case H2EventKind::response:
                    if (event.status == kStatusOk) {
                        (void)s.write_data(event.stream_id, zt::ByteSpan(kHello, 5), true);
                    }
                    break;
                case H2EventKind::data:
                    s.consume(event.stream_id, event.data.size());
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
    return 0;
}
