// splice_relay_test.cc runs the splice relay for real on loopback: a worker thread owns a ring,
// accepts on 127.0.0.1 and relays each connection to a backend, while plain blocking sockets on
// the test thread play client and server. It checks byte-exact transfer both ways (SHA-256),
// half-close in both orders, reset propagation, idle timeout, the connection limit, 1,000
// concurrent connections, no leaked fds, and that idle connections park no io-wq threads.

#include "uring/splice_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/net.h"
#include "tests/support/sha256.h"
#include "zt/clock.h"

using zt::UniqueFd;
using zt::test::Digest;
using zt::test::Sha256;
using zt::uring::RelayEnd;
using zt::uring::RelayEngine;
using zt::uring::RelayOptions;
using zt::uring::RelayReport;
using zt::uring::Ring;
using zt::uring::SpliceMode;

namespace {

constexpr int64_t kMs = zt::kNanosPerMilli;

// RelayHarness is a one-worker relay: a thread with its own ring and engine that accepts on a
// loopback port and connects each client to `target_port`. Engine calls happen only on that
// thread; the test reads reports after `stop`.
class RelayHarness {
public:
    RelayHarness(const RelayOptions& options, uint16_t target_port, int family = AF_INET,
                 bool legacy_kernel = false)
        : options_(options)
        , target_port_(target_port)
        , family_(family)
        , legacy_kernel_(legacy_kernel) {
        listener_ = zt::test::listen_loopback(family, port_);
        thread_ = std::thread([this] { run(); });
        while (state_.load() == 0) {
            std::this_thread::yield();
        }
    }

    ~RelayHarness() { stop(); }

    // ok says the worker runs; false means io_uring is unavailable and the test should skip.
    bool ok() const { return state_.load() == 1; }

    uint16_t port() const { return port_; }

    // stop drains every relay (resetting them), waits for the worker to finish and joins it.
    void stop() {
        if (thread_.joinable()) {
            stop_ = true;
            thread_.join();
        }
    }

    // wait_reports waits until `count` relays have ended, up to `timeout_ns`.
    bool wait_reports(size_t count, int64_t timeout_ns = 5000 * kMs) {
        const int64_t deadline = zt::monotonic_ns() + timeout_ns;
        while (zt::monotonic_ns() < deadline) {
            {
                std::lock_guard lock(mutex_);
                if (reports_.size() >= count) {
                    return true;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    }

    std::vector<RelayReport> reports() {
        std::lock_guard lock(mutex_);
        return reports_;
    }

    zt::uring::RelayCounters counters() {
        std::lock_guard lock(mutex_);
        return counters_;
    }

private:
    static void on_done(void* context, const RelayReport& report) {
        auto* self = static_cast<RelayHarness*>(context);
        std::lock_guard lock(self->mutex_);
        self->reports_.push_back(report);
    }

    static void on_accept(zt::uring::Completion& self, int32_t res, uint32_t flags) {
        auto* harness = static_cast<RelayHarness*>(self.context);
        if (res >= 0) {
            UniqueFd client(res);
            UniqueFd target(
                    ::socket(harness->family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            int one = 1;
            ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            ::setsockopt(target.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            sockaddr_storage address;
            socklen_t length =
                    zt::test::loopback_address(harness->family_, harness->target_port_, address);
            (void)harness->engine_->connect_and_relay(std::move(client), std::move(target),
                                                      reinterpret_cast<sockaddr*>(&address), length,
                                                      nullptr);
        }
        if ((flags & IORING_CQE_F_MORE) == 0 && !harness->stopping_) {
            harness->ring_->accept_multishot(self, harness->listener_.get());
        }
    }

    void run() {
        zt::uring::RingOptions ring_options;
        ring_options.legacy_kernel = legacy_kernel_;
        auto ring = Ring::create(ring_options);
        if (!ring) {
            MESSAGE("skipping: io_uring unavailable: " << zt::to_string(ring.error().code));
            state_ = 2;
            return;
        }
        ring_ = std::move(*ring);
        engine_ = std::make_unique<RelayEngine>(*ring_, options_, &on_done, this);
        zt::uring::Completion accept(&on_accept, this);
        ring_->accept_multishot(accept, listener_.get());
        state_ = 1;
        while (!stop_.load()) {
            ring_->run(5 * kMs);
            std::lock_guard lock(mutex_);
            counters_ = engine_->counters();
        }
        stopping_ = true;
        ring_->cancel(accept);
        engine_->drain();
        while (ring_->in_flight() > 0) {
            ring_->run(5 * kMs);
        }
        {
            std::lock_guard lock(mutex_);
            counters_ = engine_->counters();
        }
        engine_.reset();
        ring_.reset();
    }

    RelayOptions options_;
    uint16_t target_port_;
    int family_;
    bool legacy_kernel_;
    uint16_t port_ = 0;
    UniqueFd listener_;
    std::thread thread_;
    std::atomic<int> state_{0};
    std::atomic<bool> stop_{false};
    bool stopping_ = false;
    std::unique_ptr<Ring> ring_;
    std::unique_ptr<RelayEngine> engine_;
    std::mutex mutex_;
    std::vector<RelayReport> reports_;
    zt::uring::RelayCounters counters_{};
};

// send_stream writes `total` bytes of stream `seed` to `fd`, hashing what it sent.
bool send_stream(int fd, uint64_t seed, uint64_t total, Digest& digest) {
    std::vector<uint8_t> chunk(256 * 1024);
    Sha256 hash;
    for (uint64_t offset = 0; offset < total;) {
        size_t n = size_t(std::min<uint64_t>(chunk.size(), total - offset));
        zt::test::fill_stream(seed, offset, std::span(chunk.data(), n));
        hash.update(std::span(chunk.data(), n));
        if (!zt::test::write_all(fd, std::span(chunk.data(), n))) {
            return false;
        }
        offset += n;
    }
    digest = hash.finish();
    return true;
}

// ReceiveResult is what `receive_all` saw: bytes, their digest, and how the stream ended
// (0 for a clean EOF, else the errno, ECONNRESET for a reset).
struct ReceiveResult {
    uint64_t bytes = 0;
    Digest digest{};
    int end_errno = 0;
};

ReceiveResult receive_all(int fd) {
    ReceiveResult result;
    std::vector<uint8_t> chunk(256 * 1024);
    Sha256 hash;
    for (;;) {
        ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            result.end_errno = n == 0 ? 0 : errno;
            break;
        }
        hash.update(std::span(chunk.data(), size_t(n)));
        result.bytes += uint64_t(n);
    }
    result.digest = hash.finish();
    return result;
}

void set_timeout(int fd, int seconds) {
    timeval tv{seconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void reset_close(UniqueFd& fd) {
    linger reset{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    fd.reset();
}

// transfer_both_ways sends `total` bytes each way through a relay in `mode` and checks both
// digests, byte counts and the report.
void transfer_both_ways(const RelayOptions& options, uint64_t total, int family,
                        bool legacy = false) {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(family, backend_port);
    RelayHarness relay(options, backend_port, family, legacy);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(family, relay.port());
    REQUIRE(client.valid());
    UniqueFd server = zt::test::accept_blocking(backend.get());
    REQUIRE(server.valid());
    set_timeout(client.get(), 20);
    set_timeout(server.get(), 20);

    Digest client_sent{}, server_sent{};
    ReceiveResult client_got, server_got;
    bool client_ok = false, server_ok = false;
    std::thread client_writer([&] {
        client_ok = send_stream(client.get(), 1, total, client_sent);
        ::shutdown(client.get(), SHUT_WR);
    });
    std::thread server_writer([&] {
        server_ok = send_stream(server.get(), 2, total, server_sent);
        ::shutdown(server.get(), SHUT_WR);
    });
    std::thread server_reader([&] { server_got = receive_all(server.get()); });
    client_got = receive_all(client.get());
    client_writer.join();
    server_writer.join();
    server_reader.join();
    CHECK(client_ok);
    CHECK(server_ok);
    CHECK(server_got.bytes == total);
    CHECK(client_got.bytes == total);
    CHECK(server_got.end_errno == 0);
    CHECK(client_got.end_errno == 0);
    CHECK(server_got.digest == client_sent);
    CHECK(client_got.digest == server_sent);
    client.reset();
    server.reset();
    REQUIRE(relay.wait_reports(1));
    RelayReport report = relay.reports()[0];
    CHECK(report.end == RelayEnd::completed);
    CHECK(report.bytes_source_to_target == total);
    CHECK(report.bytes_target_to_source == total);
}

// eventually polls `condition` for up to two seconds.
template <class Condition>
bool eventually(Condition condition) {
    const int64_t deadline = zt::monotonic_ns() + 2000 * kMs;
    while (!condition()) {
        if (zt::monotonic_ns() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

void raise_fd_limit(rlim_t wanted) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted) {
        limit.rlim_cur = std::min(wanted, limit.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace

TEST_CASE("splice_relay: 64 MiB each way arrive byte-exact (SHA-256), direct splices") {
    transfer_both_ways(RelayOptions{}, 64ull << 20, AF_INET);
}

TEST_CASE("splice_relay: 16 MiB each way arrive byte-exact over IPv6 with io_uring splices") {
    RelayOptions options;
    options.splice_mode = SpliceMode::ring;
    transfer_both_ways(options, 16ull << 20, AF_INET6);
}

TEST_CASE("splice_relay: small pipes and a short turn make the relay yield, bytes stay exact") {
    // Two splices per turn and 4 KiB pipes: a busy direction yields through a nop every turn,
    // which must neither lose nor reorder bytes.
    RelayOptions options;
    options.splices_per_turn = 2;
    options.pipe_size_bytes = 4096;
    transfer_both_ways(options, 8ull << 20, AF_INET);
}

TEST_CASE("splice_relay: on an old kernel's features (one-shot accept and poll) it still works") {
    // The fallback path: accept and every readiness poll are re-armed after each CQE, since
    // none carries IORING_CQE_F_MORE.
    transfer_both_ways(RelayOptions{}, 8ull << 20, AF_INET, true);
}

TEST_CASE("splice_relay: the client shuts down writing and still reads the full answer") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayHarness relay(RelayOptions{}, backend_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd server = zt::test::accept_blocking(backend.get());
    REQUIRE(server.valid());
    set_timeout(client.get(), 10);
    set_timeout(server.get(), 10);
    Digest request{};
    REQUIRE(send_stream(client.get(), 3, 100'000, request));
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    // The server sees the whole request, then EOF: the FIN crossed the relay.
    ReceiveResult got_request = receive_all(server.get());
    CHECK(got_request.bytes == 100'000);
    CHECK(got_request.end_errno == 0);
    CHECK(got_request.digest == request);
    // The other direction still flows after the half-close.
    Digest answer{};
    REQUIRE(send_stream(server.get(), 4, 3'000'000, answer));
    server.reset();
    ReceiveResult got_answer = receive_all(client.get());
    CHECK(got_answer.bytes == 3'000'000);
    CHECK(got_answer.end_errno == 0);
    CHECK(got_answer.digest == answer);
    client.reset();
    REQUIRE(relay.wait_reports(1));
    CHECK(relay.reports()[0].end == RelayEnd::completed);
    CHECK(relay.reports()[0].bytes_source_to_target == 100'000);
    CHECK(relay.reports()[0].bytes_target_to_source == 3'000'000);
}

TEST_CASE("splice_relay: the server closes first; the client gets everything, then EOF") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayHarness relay(RelayOptions{}, backend_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd server = zt::test::accept_blocking(backend.get());
    REQUIRE(server.valid());
    set_timeout(client.get(), 10);
    set_timeout(server.get(), 10);
    Digest sent{};
    REQUIRE(send_stream(server.get(), 5, 500'000, sent));
    REQUIRE(::shutdown(server.get(), SHUT_WR) == 0);
    ReceiveResult got = receive_all(client.get());
    CHECK(got.bytes == 500'000);
    CHECK(got.end_errno == 0);
    CHECK(got.digest == sent);
    // The client may still talk to the half-closed server.
    Digest late{};
    REQUIRE(send_stream(client.get(), 6, 200'000, late));
    client.reset();
    ReceiveResult server_got = receive_all(server.get());
    CHECK(server_got.bytes == 200'000);
    CHECK(server_got.digest == late);
    server.reset();
    REQUIRE(relay.wait_reports(1));
    CHECK(relay.reports()[0].end == RelayEnd::completed);
}

TEST_CASE("splice_relay: a reset mid-transfer is propagated as a reset, each way") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayHarness relay(RelayOptions{}, backend_port);
    if (!relay.ok()) {
        return;
    }
    for (int round = 0; round < 2; ++round) {
        UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
        UniqueFd server = zt::test::accept_blocking(backend.get());
        REQUIRE(server.valid());
        set_timeout(client.get(), 10);
        set_timeout(server.get(), 10);
        UniqueFd& resetter = round == 0 ? server : client;
        UniqueFd& victim = round == 0 ? client : server;
        Digest unused{};
        REQUIRE(send_stream(resetter.get(), 7, 1'000'000, unused));
        reset_close(resetter);
        ReceiveResult got = receive_all(victim.get());
        CHECK(got.end_errno == ECONNRESET);  // A reset, not a clean EOF.
        CHECK(got.bytes <= 1'000'000);
        REQUIRE(relay.wait_reports(size_t(round + 1)));
        CHECK(relay.reports()[size_t(round)].end == RelayEnd::reset);
    }
    CHECK(eventually([&] { return relay.counters().reset_total == 2; }));
}

TEST_CASE("splice_relay: an idle connection is reset after the idle timeout") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayOptions options;
    options.idle_timeout_ns = 150 * kMs;
    RelayHarness relay(options, backend_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd server = zt::test::accept_blocking(backend.get());
    set_timeout(client.get(), 5);
    // Traffic keeps it alive past one timeout...
    for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        REQUIRE(::send(client.get(), "x", 1, MSG_NOSIGNAL) == 1);
        char byte;
        REQUIRE(::recv(server.get(), &byte, 1, 0) == 1);
    }
    CHECK(relay.reports().empty());
    // ...silence ends it.
    const int64_t start = zt::monotonic_ns();
    ReceiveResult got = receive_all(client.get());
    const int64_t waited = zt::monotonic_ns() - start;
    CHECK(got.end_errno == ECONNRESET);
    CHECK(waited >= 100 * kMs);
    CHECK(waited < 2000 * kMs);
    REQUIRE(relay.wait_reports(1));
    CHECK(relay.reports()[0].end == RelayEnd::idle_timeout);
    CHECK(eventually([&] { return relay.counters().idle_timeout_total == 1; }));
}

TEST_CASE("splice_relay: connections over the per-worker limit are closed and counted") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayOptions options;
    options.relays_max = 2;
    RelayHarness relay(options, backend_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd first = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd second = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd first_server = zt::test::accept_blocking(backend.get());
    UniqueFd second_server = zt::test::accept_blocking(backend.get());
    UniqueFd third = zt::test::connect_loopback(AF_INET, relay.port());
    set_timeout(third.get(), 5);
    char byte;
    CHECK(::recv(third.get(), &byte, 1, 0) <= 0);  // Accepted, then closed.
    CHECK(eventually([&] { return relay.counters().limit_hit_total == 1; }));
    CHECK(relay.counters().active == 2);
    // The two admitted connections still work.
    REQUIRE(::send(second.get(), "y", 1, MSG_NOSIGNAL) == 1);
    set_timeout(second_server.get(), 5);
    REQUIRE(::recv(second_server.get(), &byte, 1, 0) == 1);
    CHECK(byte == 'y');
}

TEST_CASE("splice_relay: a refused connect to the target closes the client and is reported") {
    uint16_t closed_port = 0;
    { UniqueFd gone = zt::test::listen_loopback(AF_INET, closed_port); }
    RelayHarness relay(RelayOptions{}, closed_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    set_timeout(client.get(), 5);
    ReceiveResult got = receive_all(client.get());
    CHECK(got.bytes == 0);
    REQUIRE(relay.wait_reports(1));
    CHECK(relay.reports()[0].end == RelayEnd::connect_failed);
    CHECK(relay.reports()[0].sys_errno == ECONNREFUSED);
}

TEST_CASE("splice_relay: a connect that never finishes is cut by the connect timeout") {
    // A listener that never accepts, with its accept queue already full: the kernel drops
    // further SYNs, so the relay's connect hangs until our timeout ends it.
    UniqueFd backend(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage address;
    socklen_t length = zt::test::loopback_address(AF_INET, 0, address);
    REQUIRE(::bind(backend.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
    REQUIRE(::listen(backend.get(), 0) == 0);
    ::getsockname(backend.get(), reinterpret_cast<sockaddr*>(&address), &length);
    const uint16_t backend_port = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    std::vector<UniqueFd> fillers;
    for (int i = 0; i < 3; ++i) {
        UniqueFd filler(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        (void)!::connect(filler.get(), reinterpret_cast<sockaddr*>(&address), length);
        fillers.push_back(std::move(filler));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    RelayOptions options;
    options.connect_timeout_ns = 200 * kMs;
    RelayHarness relay(options, backend_port);
    if (!relay.ok()) {
        return;
    }
    const int64_t start = zt::monotonic_ns();
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    set_timeout(client.get(), 5);
    ReceiveResult got = receive_all(client.get());
    CHECK(got.bytes == 0);
    REQUIRE(relay.wait_reports(1));
    CHECK(relay.reports()[0].end == RelayEnd::connect_timeout);
    CHECK(zt::monotonic_ns() - start >= 150 * kMs);
}

TEST_CASE("splice_relay: 1,000 concurrent connections each echo through; no fd is left open") {
    raise_fd_limit(8192);
    const auto fds_before = zt::test::open_fds();
    {
        uint16_t backend_port = 0;
        UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
        // An epoll echo server: echoes what it reads, closes on EOF.
        std::atomic<bool> stop{false};
        std::thread echo([&] {
            UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
            zt::test::set_nonblocking(backend.get());
            epoll_event event{EPOLLIN, {.fd = backend.get()}};
            ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, backend.get(), &event);
            epoll_event events[64];
            char buffer[4096];
            while (!stop.load()) {
                int n = ::epoll_wait(epoll.get(), events, 64, 10);
                for (int i = 0; i < n; ++i) {
                    int fd = events[i].data.fd;
                    if (fd == backend.get()) {
                        int accepted;
                        while ((accepted = ::accept4(fd, nullptr, nullptr,
                                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                            epoll_event added{EPOLLIN, {.fd = accepted}};
                            ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, accepted, &added);
                        }
                        continue;
                    }
                    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
                    if (got > 0) {
                        (void)!::send(fd, buffer, size_t(got), MSG_NOSIGNAL);
                    } else if (got == 0 || errno != EAGAIN) {
                        ::close(fd);
                    }
                }
            }
        });
        RelayOptions options;
        options.relays_max = 1100;
        RelayHarness relay(options, backend_port);
        if (relay.ok()) {
            constexpr int kConnections = 1000;
            std::vector<UniqueFd> clients;
            clients.reserve(kConnections);
            for (int i = 0; i < kConnections; ++i) {
                clients.push_back(zt::test::connect_loopback(AF_INET, relay.port()));
                REQUIRE(clients.back().valid());
                set_timeout(clients.back().get(), 10);
            }
            for (int i = 0; i < kConnections; ++i) {
                char message[32];
                int n = std::snprintf(message, sizeof(message), "connection %04d", i);
                REQUIRE(::send(clients[size_t(i)].get(), message, size_t(n), MSG_NOSIGNAL) == n);
            }
            int echoed = 0;
            for (int i = 0; i < kConnections; ++i) {
                char expected[32], got[32] = {};
                int n = std::snprintf(expected, sizeof(expected), "connection %04d", i);
                if (zt::test::read_all(clients[size_t(i)].get(),
                                       std::span(reinterpret_cast<uint8_t*>(got), size_t(n))) &&
                    std::memcmp(got, expected, size_t(n)) == 0) {
                    ++echoed;
                }
            }
            CHECK(echoed == kConnections);
            CHECK(eventually([&] { return relay.counters().active == uint32_t(kConnections); }));
            clients.clear();
            CHECK(relay.wait_reports(kConnections, 10'000 * kMs));
            int completed = 0;
            for (const RelayReport& report : relay.reports()) {
                completed += report.end == RelayEnd::completed ? 1 : 0;
            }
            CHECK(completed == kConnections);
            relay.stop();
        }
        stop = true;
        echo.join();
    }
    const auto fds_after = zt::test::open_fds();
    CHECK(fds_after == fds_before);
}

TEST_CASE("splice_relay: 200 idle relayed connections create no io-wq threads") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayHarness relay(RelayOptions{}, backend_port);
    if (!relay.ok()) {
        return;
    }
    const int threads_before = zt::test::thread_count();
    std::vector<UniqueFd> clients, servers;
    for (int i = 0; i < 200; ++i) {
        clients.push_back(zt::test::connect_loopback(AF_INET, relay.port()));
        servers.push_back(zt::test::accept_blocking(backend.get()));
        REQUIRE(servers.back().valid());
    }
    // Give any parked splice time to spawn its io-wq worker.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int threads_idle = zt::test::thread_count();
    CHECK(eventually([&] { return relay.counters().active == 200; }));
    MESSAGE("threads before " << threads_before << ", with 200 idle relays " << threads_idle);
    CHECK(threads_idle - threads_before < 10);
    // And they are alive: one byte crosses one of them.
    REQUIRE(::send(clients[123].get(), "z", 1, MSG_NOSIGNAL) == 1);
    char byte = 0;
    set_timeout(servers[123].get(), 5);
    CHECK(::recv(servers[123].get(), &byte, 1, 0) == 1);
    CHECK(byte == 'z');
}

TEST_CASE("splice_relay: drain resets every active relay and reports it") {
    uint16_t backend_port = 0;
    UniqueFd backend = zt::test::listen_loopback(AF_INET, backend_port);
    RelayHarness relay(RelayOptions{}, backend_port);
    if (!relay.ok()) {
        return;
    }
    UniqueFd client = zt::test::connect_loopback(AF_INET, relay.port());
    UniqueFd server = zt::test::accept_blocking(backend.get());
    set_timeout(client.get(), 5);
    relay.stop();  // Drains.
    ReceiveResult got = receive_all(client.get());
    CHECK(got.end_errno == ECONNRESET);
    REQUIRE(relay.reports().size() == 1);
    CHECK(relay.reports()[0].end == RelayEnd::drained);
}

TEST_CASE("splice_relay: relay() on connected fds, and abort() by id resets that relay only") {
    auto ring = Ring::create();
    if (!ring) {
        MESSAGE("skipping: io_uring unavailable");
        return;
    }
    std::vector<RelayReport> reports;
    auto on_done = [](void* context, const RelayReport& report) {
        static_cast<std::vector<RelayReport>*>(context)->push_back(report);
    };
    RelayEngine engine(**ring, RelayOptions{}, on_done, &reports);
    uint16_t port = 0;
    UniqueFd listener = zt::test::listen_loopback(AF_INET, port);
    auto pair = [&](UniqueFd& outside, UniqueFd& inside) {
        outside = zt::test::connect_loopback(AF_INET, port);
        inside = zt::test::accept_blocking(listener.get());
        zt::test::set_nonblocking(inside.get());
        set_timeout(outside.get(), 5);
    };
    UniqueFd a_out, a_in, b_out, b_in, c_out, c_in, d_out, d_in;
    pair(a_out, a_in);
    pair(b_out, b_in);
    pair(c_out, c_in);
    pair(d_out, d_in);
    auto first = engine.relay(std::move(a_in), std::move(b_in), &reports);
    auto second = engine.relay(std::move(c_in), std::move(d_in), nullptr);
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(::send(a_out.get(), "ping", 4, MSG_NOSIGNAL) == 4);
    char got[4] = {};
    const int64_t deadline = zt::monotonic_ns() + 2000 * kMs;
    ssize_t n = -1;
    while (n != 4 && zt::monotonic_ns() < deadline) {
        (*ring)->run(5 * kMs);
        n = ::recv(b_out.get(), got, sizeof(got), MSG_DONTWAIT);
    }
    CHECK(n == 4);
    CHECK(std::memcmp(got, "ping", 4) == 0);
    engine.abort(*first);
    engine.abort(*first + 7);  // Not a live id: ignored.
    while (reports.empty() && zt::monotonic_ns() < deadline) {
        (*ring)->run(5 * kMs);
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].id == *first);
    CHECK(reports[0].user == &reports);
    CHECK(reports[0].end == RelayEnd::aborted);
    CHECK(reports[0].bytes_source_to_target == 4);
    CHECK(::recv(a_out.get(), got, 1, 0) == -1);
    CHECK(errno == ECONNRESET);
    CHECK(engine.active() == 1);
    engine.abort(*first);  // Stale now: ignored.
    engine.drain();
    while (engine.active() > 0 && zt::monotonic_ns() < deadline) {
        (*ring)->run(5 * kMs);
    }
    CHECK(engine.active() == 0);
    CHECK(reports.size() == 2);
    CHECK((*ring)->in_flight() == 0);
}
