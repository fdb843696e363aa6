// idle_conns: opens COUNT connections to an echo peer (directly or through a relay), proves each
// one end to end with a 1-byte echo, then holds them all idle so a benchmark can read the
// relay's memory. Usage: idle_conns IP:PORT COUNT [HOLD_SECONDS]. Prints
// "idle_conns: ready N" (N = connections open and proven) on stdout once all are set up, then
// sleeps HOLD_SECONDS (default 3600) or until stdin reaches end of file, and closes them all.
// Exits 1 if fewer than COUNT connections could be made.

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/support/bench_net.h"
#include "tests/support/net.h"

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: idle_conns IP:PORT COUNT [HOLD_SECONDS]\n");
        return 2;
    }
    zt::bench::Endpoint ep;
    if (!zt::bench::parse_endpoint(argv[1], ep)) {
        std::fprintf(stderr, "idle_conns: bad address %s\n", argv[1]);
        return 2;
    }
    long count = std::atol(argv[2]);
    int hold_s = argc == 4 ? std::atoi(argv[3]) : 3600;
    if (count <= 0) {
        std::fprintf(stderr, "idle_conns: COUNT must be positive\n");
        return 2;
    }
    zt::bench::raise_nofile();
    std::vector<int> fds;
    fds.reserve(static_cast<size_t>(count));
    for (long i = 0; i < count; ++i) {
        int fd = zt::bench::connect_tcp(ep);
        if (fd < 0) {
            std::fprintf(stderr, "idle_conns: connection %ld: %s\n", i, std::strerror(-fd));
            break;
        }
        uint8_t out[1] = {static_cast<uint8_t>('a' + i % 26)};
        uint8_t in[1] = {0};
        if (!zt::test::write_all(fd, out) || !zt::test::read_all(fd, in) || in[0] != out[0]) {
            std::fprintf(stderr, "idle_conns: connection %ld: no echo\n", i);
            ::close(fd);
            break;
        }
        fds.push_back(fd);
    }
    std::printf("idle_conns: ready %zu\n", fds.size());
    std::fflush(stdout);
    if (static_cast<long>(fds.size()) == count) {
        pollfd p{};
        p.fd = STDIN_FILENO;
        p.events = POLLIN;
        // Returns on timeout, on input, or on end of file of stdin (the driver closing it).
        ::poll(&p, 1, hold_s * 1000);
    }
    for (int fd : fds) {
        ::close(fd);
    }
    return static_cast<long>(fds.size()) == count ? 0 : 1;
}
