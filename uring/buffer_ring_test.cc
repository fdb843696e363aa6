// buffer_ring_test.cc checks provided-buffer rings on a real ring: the kernel picks a buffer per
// receive, multishot receive keeps going, an exhausted group answers -ENOBUFS (back-pressure),
// and a buffer given back is used again.

#include "uring/buffer_ring.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "zt/clock.h"
#include "zt/unique_fd.h"

using zt::UniqueFd;
using zt::uring::BufferRing;
using zt::uring::Completion;
using zt::uring::Ring;

namespace {

struct Received {
    Completion completion{&Received::on_recv, this};
    std::vector<int32_t> results;
    std::vector<uint32_t> flags;

    static void on_recv(Completion& self, int32_t res, uint32_t cqe_flags) {
        auto* received = static_cast<Received*>(self.context);
        received->results.push_back(res);
        received->flags.push_back(cqe_flags);
    }
};

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

TEST_CASE("buffer_ring: the kernel picks buffers; an empty group pushes back with ENOBUFS") {
    auto ring = Ring::create();
    if (!ring) {
        MESSAGE("skipping: io_uring unavailable");
        return;
    }
    CHECK_FALSE(BufferRing::create(**ring, 1, 3, 4096));  // Not a power of two.
    auto buffers = BufferRing::create(**ring, 7, 2, 4096);
    if (!buffers && buffers.error().code == zt::Errc::unsupported) {
        MESSAGE("skipping: kernel lacks provided-buffer rings");
        return;
    }
    REQUIRE(buffers);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd left(pair[0]), right(pair[1]);

    Received first;
    REQUIRE(::write(left.get(), "first", 5) == 5);
    (*ring)->recv_select(first.completion, right.get(), (*buffers)->group());
    REQUIRE(run_until(**ring, [&] { return !first.results.empty(); }));
    REQUIRE(first.results[0] == 5);
    REQUIRE((first.flags[0] & IORING_CQE_F_BUFFER) != 0);
    const uint16_t first_id = BufferRing::buffer_id(first.flags[0]);
    CHECK(std::string(reinterpret_cast<char*>((*buffers)->buffer(first_id).data()), 5) == "first");

    // Multishot: every chunk its own CQE and buffer; the second buffer is the last one free.
    Received stream;
    (*ring)->recv_multishot(stream.completion, right.get(), (*buffers)->group());
    REQUIRE(::write(left.get(), "second", 6) == 6);
    REQUIRE(run_until(**ring, [&] { return !stream.results.empty(); }));
    CHECK(stream.results[0] == 6);
    CHECK((stream.flags[0] & IORING_CQE_F_MORE) != 0);
    const uint16_t second_id = BufferRing::buffer_id(stream.flags[0]);
    CHECK(second_id != first_id);
    // No buffer left: the next chunk ends the multishot with -ENOBUFS, the data stays queued.
    REQUIRE(::write(left.get(), "third", 5) == 5);
    REQUIRE(run_until(**ring, [&] { return !stream.completion.in_kernel; }));
    CHECK(stream.results.back() == -ENOBUFS);

    // Giving a buffer back lets the queued bytes in.
    (*buffers)->give_back(first_id);
    Received again;
    (*ring)->recv_select(again.completion, right.get(), (*buffers)->group());
    REQUIRE(run_until(**ring, [&] { return !again.results.empty(); }));
    CHECK(again.results[0] == 5);
    CHECK(BufferRing::buffer_id(again.flags[0]) == first_id);
    CHECK(std::string(reinterpret_cast<char*>((*buffers)->buffer(first_id).data()), 5) == "third");
    CHECK((*ring)->in_flight() == 0);
}
