// dns_load: the DNS benchmark's load generator. It keeps CONCURRENCY queries for one name in
// flight over UDP to one server for DURATION seconds (a fresh message id per query; a query not
// answered within TIMEOUT_MS counts as lost and frees its slot), waits up to TIMEOUT_MS for the
// last answers, and prints one line (qps over DURATION):
//
//   dns_load: qps=N p50_us=N p99_us=N answered=N lost=N errors=N truncated=N
//
// `errors` counts answers whose rcode is not NOERROR. Usage:
//   dns_load SERVER_IP:PORT NAME [TYPE] [CONCURRENCY] [DURATION_S] [TIMEOUT_MS]
// TYPE is A (default) or AAAA. Tool code: plain sockets and poll(2), no io_uring.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/dns/message.h"
#include "tests/support/bench_net.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: dns_load SERVER_IP:PORT NAME [A|AAAA] [CONCURRENCY] [DURATION_S] "
                     "[TIMEOUT_MS]\n");
        return 2;
    }
    zt::bench::Endpoint server;
    if (!zt::bench::parse_endpoint(argv[1], server)) {
        std::fprintf(stderr, "dns_load: bad address %s\n", argv[1]);
        return 2;
    }
    auto name = zt::dns::Name::parse(argv[2]);
    uint16_t type =
            argc > 3 && std::string(argv[3]) == "AAAA" ? zt::dns::kTypeAaaa : zt::dns::kTypeA;
    int concurrency = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;
    double duration_s = argc > 5 ? std::atof(argv[5]) : 5;
    uint64_t timeout_ns = uint64_t(argc > 6 ? std::atoi(argv[6]) : 1000) * 1'000'000;
    if (!name || concurrency > 60000) {
        return 2;
    }
    std::vector<uint8_t> query = zt::dns::encode_query(*name, type, 0);
    if (query.empty()) {
        return 2;
    }

    int fd = ::socket(server.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&server.addr), server.len) != 0) {
        std::perror("dns_load: socket");
        return 1;
    }
    int buffer = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);

    // sent_at[id] is when the query with that id left, 0 when no query with it is out.
    std::vector<uint64_t> sent_at(65536, 0);
    std::vector<uint64_t> latencies;
    latencies.reserve(1 << 20);
    uint16_t next_id = 1;
    int out = 0;
    uint64_t answered = 0, lost = 0, errors = 0, truncated = 0;
    const uint64_t start = zt::bench::now_ns();
    const uint64_t end = start + uint64_t(duration_s * 1e9);
    uint64_t last_sweep = start;
    uint8_t answer[65536];

    auto send_one = [&](uint64_t now) {
        while (sent_at[next_id] != 0) {
            ++next_id;
        }
        uint16_t id = next_id++;
        zt::dns::write_id(query, id);
        if (::send(fd, query.data(), query.size(), 0) == ssize_t(query.size())) {
            sent_at[id] = now;
            ++out;
        }
    };

    // Sends stop at `end`; answers are awaited for up to TIMEOUT_MS more, so only queries that
    // really got no answer count as lost.
    while (true) {
        uint64_t now = zt::bench::now_ns();
        if (now >= end + timeout_ns || (now >= end && out == 0)) {
            break;
        }
        while (now < end && out < concurrency) {
            send_one(now);
        }
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 10);
        while (true) {
            ssize_t n = ::recv(fd, answer, sizeof answer, 0);
            if (n < 0) {
                break;
            }
            now = zt::bench::now_ns();
            auto header = zt::dns::read_header(std::span<const uint8_t>(answer, size_t(n)));
            if (!header || sent_at[header->id] == 0) {
                continue;
            }
            latencies.push_back(now - sent_at[header->id]);
            sent_at[header->id] = 0;
            --out;
            ++answered;
            errors += header->rcode != 0;
            truncated += header->truncated;
            if (now < end) {
                send_one(now);
            }
        }
        if (now - last_sweep > timeout_ns / 4) {
            last_sweep = now;
            for (uint64_t& at : sent_at) {
                if (at != 0 && now - at > timeout_ns) {
                    at = 0;
                    --out;
                    ++lost;
                }
            }
        }
    }
    lost += uint64_t(out);
    const double elapsed_s = double(std::min(zt::bench::now_ns(), end) - start) / 1e9;
    std::sort(latencies.begin(), latencies.end());
    std::printf(
            "dns_load: qps=%.0f p50_us=%.1f p99_us=%.1f answered=%llu lost=%llu errors=%llu "
            "truncated=%llu\n",
            double(answered) / elapsed_s, double(zt::bench::percentile(latencies, 50)) / 1e3,
            double(zt::bench::percentile(latencies, 99)) / 1e3, (unsigned long long)answered,
            (unsigned long long)(lost + uint64_t(out)), (unsigned long long)errors,
            (unsigned long long)truncated);
    ::close(fd);
    return answered > 0 ? 0 : 1;
}
