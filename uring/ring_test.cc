// ring_test.cc drives a real io_uring on loopback sockets and pipes: every submitter, timers,
// cancellation that waits for the cancelled operation's completion, msg_ring between two rings,
// a full submission queue, and the classification of setup failures. Tests skip with a message
// when the kernel refuses io_uring.

#include "uring/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/net.h"
#include "uring/buffer_ring.h"
#include "zt/clock.h"
#include "zt/log.h"

using zt::Errc;
using zt::UniqueFd;
using zt::uring::Completion;
using zt::uring::Ring;
using zt::uring::Timer;

namespace {

// make_ring returns a ring, or null after printing why the test is skipped.
std::unique_ptr<Ring> make_ring(uint32_t entries = 64) {
    auto ring = Ring::create(zt::uring::RingOptions{entries, 0});
    if (!ring) {
        MESSAGE("skipping: io_uring unavailable: " << zt::to_string(ring.error().code) << ": "
                                                   << zt::uring::setup_hint(ring.error().code));
        return nullptr;
    }
    return std::move(*ring);
}

// Recorder is a completion that remembers every CQE it got.
struct Recorder {
    Completion completion{&Recorder::on_cqe, this};
    std::vector<int32_t> results;
    std::vector<uint32_t> flags;

    static void on_cqe(Completion& self, int32_t res, uint32_t cqe_flags) {
        auto* recorder = static_cast<Recorder*>(self.context);
        recorder->results.push_back(res);
        recorder->flags.push_back(cqe_flags);
    }
};

// run_until runs `ring` until `done()` or two seconds passed.
template <class Done>
bool run_until(Ring& ring, Done done) {
    const int64_t deadline = zt::monotonic_ns() + 2 * zt::kNanosPerSecond;
    while (!done()) {
        if (zt::monotonic_ns() > deadline) {
            return false;
        }
        ring.run(10 * zt::kNanosPerMilli);
    }
    return true;
}

}  // namespace

TEST_CASE("ring: creation probes the kernel and reports its features") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    CHECK(ring->fd() >= 0);
    CHECK(ring->in_flight() == 0);
    // The kernel this project targets (6.x) has all of these; a fallback is taken otherwise.
    MESSAGE("setup flags " << ring->features().setup_flags
                           << " fast_poll=" << ring->features().fast_poll
                           << " multishot_accept=" << ring->features().multishot_accept
                           << " msg_ring=" << ring->features().msg_ring);
    Recorder nop;
    ring->nop(nop.completion);
    CHECK(nop.completion.in_kernel);
    CHECK(ring->in_flight() == 1);
    CHECK(run_until(*ring, [&] { return !nop.results.empty(); }));
    CHECK(nop.results == std::vector<int32_t>{0});
    CHECK_FALSE(nop.completion.in_kernel);
    CHECK(ring->in_flight() == 0);
}

TEST_CASE("ring: a legacy-kernel ring takes every fallback and still completes operations") {
    auto ring = Ring::create(zt::uring::RingOptions{16, 0, true});
    if (!ring) {
        MESSAGE("skipping: io_uring unavailable");
        return;
    }
    CHECK((*ring)->features().setup_flags == (IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP));
    CHECK_FALSE((*ring)->features().multishot_accept);
    CHECK_FALSE((*ring)->features().multishot_poll);
    CHECK_FALSE((*ring)->features().msg_ring);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd left(pair[0]), right(pair[1]);
    Recorder readable;
    (*ring)->poll_multishot(readable.completion, right.get(), POLLIN);
    REQUIRE(::write(left.get(), "x", 1) == 1);
    REQUIRE(run_until(**ring, [&] { return !readable.results.empty(); }));
    CHECK((readable.flags[0] & IORING_CQE_F_MORE) == 0);  // One-shot: the owner re-arms.
    CHECK_FALSE(readable.completion.in_kernel);
    CHECK((*ring)->in_flight() == 0);
}

TEST_CASE("ring: setup failures are classified by the cause an operator can fix") {
    using zt::uring::classify_setup_errno;
    CHECK(classify_setup_errno(EPERM, 2, false) == Errc::uring_sysctl);
    CHECK(classify_setup_errno(EPERM, 1, false) == Errc::uring_sysctl);
    CHECK(classify_setup_errno(EPERM, 0, true) == Errc::uring_seccomp);
    CHECK(classify_setup_errno(EPERM, -1, true) == Errc::uring_seccomp);
    CHECK(classify_setup_errno(EPERM, 0, false) == Errc::uring_unavailable);
    CHECK(classify_setup_errno(ENOSYS, 0, false) == Errc::uring_too_old);
    CHECK(classify_setup_errno(ENOSYS, 0, true) == Errc::uring_seccomp);
    CHECK(classify_setup_errno(ENOMEM, 0, false) == Errc::uring_unavailable);
    CHECK(zt::uring::setup_hint(Errc::uring_seccomp).find("RuntimeDefault") !=
          std::string_view::npos);
    CHECK(zt::uring::setup_hint(Errc::uring_sysctl).find("io_uring_disabled") !=
          std::string_view::npos);
}

TEST_CASE("ring: a seccomp filter that refuses io_uring_setup is named as the cause") {
    // In a child process (seccomp filters cannot be removed), refuse io_uring_setup with EPERM
    // the way container runtimes' RuntimeDefault profile does, then try to create a ring.
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog program{uint16_t(sizeof(filter) / sizeof(filter[0])), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
            ::_exit(77);
        }
        zt::log::set_sink([](const zt::log::Record&) {});  // Keep the expected error quiet.
        auto ring = Ring::create();
        ::_exit(!ring && ring.error().code == Errc::uring_seccomp ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        MESSAGE("skipping: cannot install a seccomp filter here");
        return;
    }
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("ring: timers fire after their delay and cancelled timers report ECANCELED") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    Recorder fired;
    Timer timer;
    timer.completion.callback = &Recorder::on_cqe;
    timer.completion.context = &fired;
    const int64_t start = zt::monotonic_ns();
    ring->arm_timer(timer, 20 * zt::kNanosPerMilli);
    CHECK(run_until(*ring, [&] { return !fired.results.empty(); }));
    CHECK(fired.results[0] == -ETIME);
    CHECK(zt::monotonic_ns() - start >= 20 * zt::kNanosPerMilli);

    Recorder cancelled;
    Timer long_timer;
    long_timer.completion.callback = &Recorder::on_cqe;
    long_timer.completion.context = &cancelled;
    ring->arm_timer(long_timer, 60 * zt::kNanosPerSecond);
    ring->run(0);
    CHECK(long_timer.completion.in_kernel);
    ring->cancel_timer(long_timer);
    CHECK(run_until(*ring, [&] { return !cancelled.results.empty(); }));
    CHECK(cancelled.results[0] == -ECANCELED);
    CHECK(ring->in_flight() == 0);
}

TEST_CASE("ring: accept (multishot), connect, send, recv, shutdown and close on loopback") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    for (int family : {AF_INET, AF_INET6}) {
        uint16_t port = 0;
        UniqueFd listener = zt::test::listen_loopback(family, port);
        Recorder accepted;
        ring->accept_multishot(accepted.completion, listener.get());

        UniqueFd client(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_storage address;
        socklen_t length = zt::test::loopback_address(family, port, address);
        Recorder connected;
        ring->connect(connected.completion, client.get(), reinterpret_cast<sockaddr*>(&address),
                      length);
        UniqueFd second = zt::test::connect_loopback(family, port);
        REQUIRE(run_until(
                *ring, [&] { return !connected.results.empty() && accepted.results.size() >= 2; }));
        CHECK(connected.results[0] == 0);
        if (ring->features().multishot_accept) {
            CHECK((accepted.flags[0] & IORING_CQE_F_MORE) != 0);
            CHECK(accepted.completion.in_kernel);  // Still armed for the next connection.
        }
        UniqueFd first(accepted.results[0]);
        UniqueFd other(accepted.results[1]);
        REQUIRE(first.valid());
        CHECK((::fcntl(first.get(), F_GETFL) & O_NONBLOCK) != 0);

        const char message[] = "hello through io_uring";
        Recorder sent;
        ring->send(sent.completion, client.get(),
                   std::span(reinterpret_cast<const uint8_t*>(message), sizeof(message)));
        uint8_t buffer[64] = {};
        Recorder received;
        // Either accepted socket may be `client`'s peer; receive on both would complicate it,
        // so identify the peer by its address first.
        sockaddr_storage local, peer;
        socklen_t local_length = sizeof(local), peer_length = sizeof(peer);
        ::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &local_length);
        ::getpeername(first.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length);
        int server_side = std::memcmp(&local, &peer, local_length) == 0 ? first.get() : other.get();
        ring->recv(received.completion, server_side, buffer);
        REQUIRE(run_until(*ring, [&] { return !received.results.empty(); }));
        CHECK(sent.results[0] == int32_t(sizeof(message)));
        CHECK(received.results[0] == int32_t(sizeof(message)));
        CHECK(std::memcmp(buffer, message, sizeof(message)) == 0);

        Recorder shut;
        ring->shutdown(shut.completion, client.get(), SHUT_WR);
        Recorder eof;
        REQUIRE(run_until(*ring, [&] { return !shut.results.empty(); }));
        ring->recv(eof.completion, server_side, buffer);
        REQUIRE(run_until(*ring, [&] { return !eof.results.empty(); }));
        CHECK(shut.results[0] == 0);
        CHECK(eof.results[0] == 0);  // The FIN arrived.

        Recorder closed;
        int raw = client.release();
        ring->close(closed.completion, raw);
        REQUIRE(run_until(*ring, [&] { return !closed.results.empty(); }));
        CHECK(closed.results[0] == 0);
        CHECK(::fcntl(raw, F_GETFD) == -1);

        ring->cancel(accepted.completion);
        REQUIRE(run_until(*ring, [&] { return !accepted.completion.in_kernel; }));
        CHECK(accepted.results.back() == -ECANCELED);
        CHECK(ring->in_flight() == 0);
    }
}

TEST_CASE("ring: sendmsg sends gathered buffers in order in one operation") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd a(pair[0]), b(pair[1]);
    // Three pieces of one buffer with gaps between them, as HTTP/2 DATA payloads lie in a
    // decrypted record buffer: only the pieces may arrive, in order.
    std::vector<uint8_t> source(3000);
    for (size_t i = 0; i < source.size(); i++) {
        source[i] = uint8_t(i * 13 + 1);
    }
    iovec pieces[3] = {
            {source.data() + 9, 991}, {source.data() + 1009, 991}, {source.data() + 2009, 500}};
    msghdr message{};
    message.msg_iov = pieces;
    message.msg_iovlen = 3;
    Recorder sent;
    ring->sendmsg(sent.completion, a.get(), message, MSG_NOSIGNAL);
    REQUIRE(run_until(*ring, [&] { return !sent.results.empty(); }));
    REQUIRE(sent.results[0] == 991 + 991 + 500);
    std::vector<uint8_t> got(4096);
    ssize_t n = ::read(b.get(), got.data(), got.size());
    REQUIRE(n == 991 + 991 + 500);
    std::vector<uint8_t> expected;
    for (const iovec& piece : pieces) {
        auto* base = static_cast<const uint8_t*>(piece.iov_base);
        expected.insert(expected.end(), base, base + piece.iov_len);
    }
    got.resize(size_t(n));
    CHECK(got == expected);
}

TEST_CASE("ring: recvmsg and sendmsg carry datagrams with their peer's address") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    for (int family : {AF_INET, AF_INET6}) {
        CAPTURE(family);
        UniqueFd server(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        UniqueFd client(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(server.valid());
        REQUIRE(client.valid());
        sockaddr_storage bound{};
        socklen_t length = zt::test::loopback_address(family, 0, bound);
        REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&bound), length) == 0);
        REQUIRE(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0);
        REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&bound), length) == 0);

        // A receive is armed before anything is sent; then a datagram larger than the buffer
        // arrives: the first 8 bytes, MSG_TRUNC, and the sender's address come back.
        uint8_t buffer[8];
        iovec in{buffer, sizeof buffer};
        sockaddr_storage peer{};
        msghdr received{};
        received.msg_name = &peer;
        received.msg_namelen = sizeof peer;
        received.msg_iov = &in;
        received.msg_iovlen = 1;
        Recorder recv;
        ring->recvmsg(recv.completion, server.get(), received);
        ring->submit();
        const char text[] = "0123456789abcdef";
        REQUIRE(::send(client.get(), text, 16, 0) == 16);
        REQUIRE(run_until(*ring, [&] { return !recv.results.empty(); }));
        CHECK(recv.results[0] == 8);
        CHECK((received.msg_flags & MSG_TRUNC) != 0);
        CHECK(std::memcmp(buffer, text, 8) == 0);
        sockaddr_storage client_address{};
        socklen_t client_length = sizeof client_address;
        REQUIRE(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&client_address),
                              &client_length) == 0);
        CHECK(received.msg_namelen == client_length);
        CHECK(std::memcmp(&peer, &client_address, client_length) == 0);

        // The answer goes back to that address through sendmsg.
        iovec out{const_cast<char*>("pong"), 4};
        msghdr reply{};
        reply.msg_name = &peer;
        reply.msg_namelen = received.msg_namelen;
        reply.msg_iov = &out;
        reply.msg_iovlen = 1;
        Recorder sent;
        ring->sendmsg(sent.completion, server.get(), reply);
        REQUIRE(run_until(*ring, [&] { return !sent.results.empty(); }));
        CHECK(sent.results[0] == 4);
        char answer[8] = {};
        CHECK(::recv(client.get(), answer, sizeof answer, 0) == 4);
        CHECK(std::string_view(answer, 4) == "pong");
    }
}

TEST_CASE("ring: multishot recvmsg takes every waiting datagram in one batch, with its sender") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    auto buffers = zt::uring::BufferRing::create(*ring, 7, 8, 256);
    if (!buffers) {
        MESSAGE("skipping: no provided-buffer rings");
        return;
    }
    UniqueFd server(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_storage bound{};
    socklen_t length = zt::test::loopback_address(AF_INET, 0, bound);
    REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&bound), length) == 0);
    REQUIRE(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0);
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(clients.back().get(), reinterpret_cast<sockaddr*>(&bound), length) == 0);
        std::string text = "datagram " + std::to_string(i);
        REQUIRE(::send(clients.back().get(), text.data(), text.size(), 0) == ssize_t(text.size()));
    }
    std::string big(400, 'x');  // Larger than a buffer: cut, with MSG_TRUNC.
    REQUIRE(::send(clients[0].get(), big.data(), big.size(), 0) == ssize_t(big.size()));

    msghdr layout{};
    layout.msg_namelen = sizeof(sockaddr_storage);

    struct Got {
        std::vector<std::string> payloads;
        std::vector<uint16_t> ports;
        std::vector<bool> truncated;
        zt::uring::BufferRing* buffers;
        msghdr* layout;
        int ended = 0;
    } got{{}, {}, {}, buffers->get(), &layout};

    Completion multishot(
            [](Completion& self, int32_t res, uint32_t flags) {
                auto* g = static_cast<Got*>(self.context);
                if ((flags & IORING_CQE_F_MORE) == 0) {
                    ++g->ended;
                }
                if (res < 0 || (flags & IORING_CQE_F_BUFFER) == 0) {
                    return;
                }
                uint16_t id = zt::uring::BufferRing::buffer_id(flags);
                auto parts = zt::uring::parse_recvmsg(g->buffers->buffer(id), res, *g->layout);
                REQUIRE(parts.has_value());
                g->payloads.emplace_back(parts->payload.begin(), parts->payload.end());
                sockaddr_in peer{};
                std::memcpy(&peer, parts->name.data(), std::min(parts->name.size(), sizeof peer));
                g->ports.push_back(ntohs(peer.sin_port));
                g->truncated.push_back(parts->truncated);
                g->buffers->give_back(id);
            },
            &got);
    ring->recvmsg_multishot(multishot, server.get(), layout, 7);
    REQUIRE(run_until(*ring, [&] { return got.payloads.size() == 4; }));
    CHECK(multishot.in_kernel);  // Still armed for more.
    CHECK(got.payloads[0] == "datagram 0");
    CHECK(got.payloads[2] == "datagram 2");
    CHECK_FALSE(got.truncated[0]);
    CHECK(got.truncated[3]);
    CHECK(got.payloads[3].size() < 256);
    for (size_t i = 0; i < 3; ++i) {
        sockaddr_in own{};
        socklen_t own_length = sizeof own;
        REQUIRE(::getsockname(clients[i].get(), reinterpret_cast<sockaddr*>(&own), &own_length) ==
                0);
        CHECK(got.ports[i] == ntohs(own.sin_port));
    }
    ring->cancel(multishot);
    REQUIRE(run_until(*ring, [&] { return !multishot.in_kernel; }));
    CHECK(got.ended == 1);
}

TEST_CASE("ring: multishot poll reports every wake-up; splice moves socket bytes to a pipe") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd left(pair[0]), right(pair[1]);
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) == 0);
    UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);

    Recorder readable;
    ring->poll_multishot(readable.completion, right.get(), POLLIN);
    ring->run(0);
    CHECK(readable.results.empty());  // Idle: nothing to report, nothing running.
    REQUIRE(::write(left.get(), "abc", 3) == 3);
    REQUIRE(run_until(*ring, [&] { return readable.results.size() == 1; }));
    CHECK((readable.results[0] & POLLIN) != 0);

    Recorder spliced;
    ring->splice(spliced.completion, right.get(), pipe_write.get(), 4096, SPLICE_F_NONBLOCK);
    REQUIRE(run_until(*ring, [&] { return !spliced.results.empty(); }));
    CHECK(spliced.results[0] == 3);
    char out[8] = {};
    CHECK(::read(pipe_read.get(), out, sizeof(out)) == 3);
    CHECK(std::string(out) == "abc");

    // An empty nonblocking socket makes a splice answer EAGAIN at once (no parked thread).
    Recorder again;
    ring->splice(again.completion, right.get(), pipe_write.get(), 4096, SPLICE_F_NONBLOCK);
    REQUIRE(run_until(*ring, [&] { return !again.results.empty(); }));
    CHECK(again.results[0] == -EAGAIN);

    REQUIRE(::write(left.get(), "d", 1) == 1);
    REQUIRE(run_until(*ring, [&] { return readable.results.size() >= 2; }));
    if (ring->features().multishot_poll) {
        CHECK((readable.flags[0] & IORING_CQE_F_MORE) != 0);
        CHECK(readable.completion.in_kernel);
    }
    ring->cancel(readable.completion);
    REQUIRE(run_until(*ring, [&] { return !readable.completion.in_kernel; }));
    CHECK(ring->in_flight() == 0);
}

TEST_CASE("ring: cancelling a pending recv waits for its completion before memory is reused") {
    auto ring = make_ring();
    if (!ring) {
        return;
    }
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd left(pair[0]), right(pair[1]);
    auto buffer = std::make_unique<uint8_t[]>(256);
    Recorder receive;
    ring->recv(receive.completion, right.get(), std::span(buffer.get(), 256));
    ring->run(0);
    CHECK(receive.completion.in_kernel);  // Idle socket: the recv waits inside the kernel.
    CHECK(ring->in_flight() == 1);
    ring->cancel(receive.completion);
    // Until the recv's own CQE arrives, the buffer still belongs to the kernel.
    CHECK(receive.completion.in_kernel);
    REQUIRE(run_until(*ring, [&] { return !receive.completion.in_kernel; }));
    CHECK(receive.results == std::vector<int32_t>{-ECANCELED});
    CHECK(ring->in_flight() == 0);
    // Cancelling what is not in flight is a no-op.
    ring->cancel(receive.completion);
    CHECK(ring->run(0) == 0);
}

TEST_CASE("ring: msg_ring wakes another ring owned by another thread") {
    auto sender = make_ring();
    if (!sender) {
        return;
    }
    if (!sender->features().msg_ring) {
        MESSAGE("skipping: kernel lacks IORING_OP_MSG_RING");
        return;
    }
    // `message` belongs to the receiver's ring; the sender only names it, as a control thread
    // names a worker's wake-up completion.
    Recorder message;
    std::atomic<int> receiver_fd{-1};
    std::atomic<bool> received{false};
    std::atomic<uint32_t> receiver_in_flight{99};
    std::thread receiver([&] {
        auto ring = make_ring();
        if (!ring) {
            receiver_fd = -2;
            return;
        }
        receiver_fd = ring->fd();
        received = run_until(*ring, [&] { return !message.results.empty(); });
        receiver_in_flight = ring->in_flight();
    });
    while (receiver_fd.load() == -1) {
        std::this_thread::yield();
    }
    if (receiver_fd.load() < 0) {
        receiver.join();
        return;
    }
    sender->msg_ring(receiver_fd.load(), message.completion, 42);
    sender->submit();
    receiver.join();
    CHECK(received.load());
    REQUIRE(message.results.size() == 1);
    CHECK(message.results[0] == 42);
    // The message's target was never submitted on either ring: its state is untouched.
    CHECK_FALSE(message.completion.in_kernel);
    CHECK(receiver_in_flight.load() == 0);
    CHECK(sender->in_flight() == 0);
    sender->run(0);
}

TEST_CASE("ring: a full submission queue is submitted to make room, and counted") {
    auto ring = make_ring(4);
    if (!ring) {
        return;
    }
    std::vector<std::unique_ptr<Recorder>> nops;
    for (int i = 0; i < 50; ++i) {
        nops.push_back(std::make_unique<Recorder>());
        ring->nop(nops.back()->completion);
    }
    CHECK(ring->sqe_full_total() > 0);
    CHECK(ring->in_flight() == 50);
    REQUIRE(run_until(*ring, [&] { return ring->in_flight() == 0; }));
    for (auto& nop : nops) {
        CHECK(nop->results == std::vector<int32_t>{0});
    }
}

TEST_CASE("ring: a submit that frees no slot waits for completions instead of aborting") {
    // The kernel may take none of a full queue (-EAGAIN when it cannot allocate): the ring then
    // waits for completions and submits again, counting it, and the worker goes on.
    zt::uring::RingOptions options;
    options.sq_entries = 4;
    options.refused_room_submits_for_testing = 3;
    auto created = Ring::create(options);
    if (!created) {
        MESSAGE("skipping: io_uring unavailable");
        return;
    }
    Ring& ring = **created;
    // A timer in flight: its completion arrives while the ring waits for room.
    Recorder fired;
    Timer timer;
    timer.completion.callback = &Recorder::on_cqe;
    timer.completion.context = &fired;
    ring.arm_timer(timer, 2 * zt::kNanosPerMilli);
    ring.submit();
    std::vector<std::unique_ptr<Recorder>> nops;
    for (int i = 0; i < 40; ++i) {
        nops.push_back(std::make_unique<Recorder>());
        ring.nop(nops.back()->completion);  // must not abort when the queue stays full
    }
    CHECK(ring.sqe_full_total() > 0);
    CHECK(ring.sq_waits_total() == 3);
    CHECK(ring.in_flight() == 41);
    REQUIRE(run_until(ring, [&] { return ring.in_flight() == 0; }));
    CHECK(fired.results == std::vector<int32_t>{-ETIME});
    for (auto& nop : nops) {
        CHECK(nop->results == std::vector<int32_t>{0});  // each exactly once
    }
}
