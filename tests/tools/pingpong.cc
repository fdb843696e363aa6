// pingpong: request/response latency on one persistent TCP connection (TCP_NODELAY). Sends SIZE
// bytes, reads SIZE bytes back from an echo peer, WARMUP times untimed, then COUNT times timed.
// Usage: pingpong IP:PORT SIZE COUNT [WARMUP]. Prints one line of key=value figures in
// microseconds: "pingpong: n=... p50_us=... p90_us=... p99_us=... p999_us=... mean_us=...".
// Exits 1 if the connection fails or the echo differs from what was sent.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/support/bench_net.h"
#include "tests/support/net.h"

int main(int argc, char** argv) {
    if (argc < 4 || argc > 5) {
        std::fprintf(stderr, "usage: pingpong IP:PORT SIZE COUNT [WARMUP]\n");
        return 2;
    }
    zt::bench::Endpoint ep;
    if (!zt::bench::parse_endpoint(argv[1], ep)) {
        std::fprintf(stderr, "pingpong: bad address %s\n", argv[1]);
        return 2;
    }
    size_t size = std::strtoul(argv[2], nullptr, 10);
    size_t count = std::strtoul(argv[3], nullptr, 10);
    size_t warmup = argc == 5 ? std::strtoul(argv[4], nullptr, 10) : 1000;
    if (size == 0 || count == 0) {
        std::fprintf(stderr, "pingpong: SIZE and COUNT must be positive\n");
        return 2;
    }
    int fd = zt::bench::connect_tcp(ep);
    if (fd < 0) {
        std::fprintf(stderr, "pingpong: connect %s: %s\n", argv[1], std::strerror(-fd));
        return 1;
    }
    std::vector<uint8_t> out(size);
    std::vector<uint8_t> in(size);
    for (size_t i = 0; i < size; ++i) {
        out[i] = static_cast<uint8_t>('a' + i % 26);
    }
    std::vector<uint64_t> samples;
    samples.reserve(count);
    for (size_t i = 0; i < warmup + count; ++i) {
        out[0] = static_cast<uint8_t>(i);  // each exchange differs, so a stale echo is caught
        uint64_t start = zt::bench::now_ns();
        if (!zt::test::write_all(fd, out) || !zt::test::read_all(fd, in)) {
            std::fprintf(stderr, "pingpong: connection failed after %zu exchanges\n", i);
            return 1;
        }
        uint64_t took = zt::bench::now_ns() - start;
        if (std::memcmp(in.data(), out.data(), size) != 0) {
            std::fprintf(stderr, "pingpong: echo mismatch at exchange %zu\n", i);
            return 1;
        }
        if (i >= warmup) {
            samples.push_back(took);
        }
    }
    ::close(fd);
    uint64_t sum = 0;
    for (uint64_t s : samples) {
        sum += s;
    }
    std::sort(samples.begin(), samples.end());
    auto us = [](uint64_t ns) {
        return static_cast<double>(ns) / 1000.0;
    };
    std::printf("pingpong: n=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f mean_us=%.1f\n",
                samples.size(), us(zt::bench::percentile(samples, 50)),
                us(zt::bench::percentile(samples, 90)), us(zt::bench::percentile(samples, 99)),
                us(zt::bench::percentile(samples, 99.9)), us(sum / samples.size()));
    return 0;
}
