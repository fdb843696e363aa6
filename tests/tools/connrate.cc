// connrate: new-connection rate. THREADS threads each loop for SECONDS: connect, write 1 byte,
// read the 1-byte echo, close. Usage: connrate IP:PORT THREADS SECONDS. Prints
// "connrate: conns=N rate=N/s errors=N p50_us=... p99_us=..." (per-connection latency, connect to
// echo received). Errors (refused, reset, short read) are counted, not fatal; exits 1 only when no
// connection succeeded at all.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/support/bench_net.h"
#include "tests/support/net.h"

namespace {

struct Worker {
    std::vector<uint64_t> samples;
    uint64_t errors = 0;
    int last_error = 0;
};

void run(const zt::bench::Endpoint& ep, uint64_t deadline_ns, Worker& w) {
    w.samples.reserve(1 << 18);
    while (zt::bench::now_ns() < deadline_ns) {
        uint64_t start = zt::bench::now_ns();
        int fd = zt::bench::connect_tcp(ep);
        if (fd < 0) {
            ++w.errors;
            w.last_error = -fd;
            continue;
        }
        uint8_t out[1] = {'x'};
        uint8_t in[1] = {0};
        bool ok = zt::test::write_all(fd, out) && zt::test::read_all(fd, in) && in[0] == out[0];
        ::close(fd);
        if (!ok) {
            ++w.errors;
            continue;
        }
        w.samples.push_back(zt::bench::now_ns() - start);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: connrate IP:PORT THREADS SECONDS\n");
        return 2;
    }
    zt::bench::Endpoint ep;
    if (!zt::bench::parse_endpoint(argv[1], ep)) {
        std::fprintf(stderr, "connrate: bad address %s\n", argv[1]);
        return 2;
    }
    int threads = std::atoi(argv[2]);
    double seconds = std::atof(argv[3]);
    if (threads <= 0 || seconds <= 0) {
        std::fprintf(stderr, "connrate: THREADS and SECONDS must be positive\n");
        return 2;
    }
    zt::bench::raise_nofile();
    std::vector<Worker> workers(static_cast<size_t>(threads));
    uint64_t start = zt::bench::now_ns();
    uint64_t deadline = start + static_cast<uint64_t>(seconds * 1e9);
    std::vector<std::thread> pool;
    for (auto& w : workers) {
        pool.emplace_back(run, std::cref(ep), deadline, std::ref(w));
    }
    for (auto& t : pool) {
        t.join();
    }
    double wall = static_cast<double>(zt::bench::now_ns() - start) / 1e9;
    std::vector<uint64_t> all;
    uint64_t errors = 0;
    int last_error = 0;
    for (auto& w : workers) {
        all.insert(all.end(), w.samples.begin(), w.samples.end());
        errors += w.errors;
        if (w.last_error != 0) {
            last_error = w.last_error;
        }
    }
    std::sort(all.begin(), all.end());
    std::printf("connrate: conns=%zu rate=%.0f errors=%llu p50_us=%.1f p99_us=%.1f\n", all.size(),
                static_cast<double>(all.size()) / wall, static_cast<unsigned long long>(errors),
                static_cast<double>(zt::bench::percentile(all, 50)) / 1000.0,
                static_cast<double>(zt::bench::percentile(all, 99)) / 1000.0);
    if (last_error != 0) {
        std::fprintf(stderr, "connrate: last connect error: %s\n", std::strerror(last_error));
    }
    return all.empty() ? 1 : 0;
}
