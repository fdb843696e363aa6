// pipe_pool_test.cc checks the kernel pipe pool: reuse, the cap (counted), resizing, and that a
// pipe with leftover bytes is never handed to anyone else.

#include "uring/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <doctest/doctest.h>

using zt::uring::KernelPipe;
using zt::uring::PipePool;
using zt::uring::PipePoolOptions;

TEST_CASE("pipe_pool: pipes are resized, reused when empty, and capped with a count") {
    PipePool pool(PipePoolOptions{2, 128 * 1024, 4});
    auto first = pool.take();
    REQUIRE(first);
    CHECK(first->capacity == 128 * 1024);
    auto second = pool.take();
    REQUIRE(second);
    CHECK(pool.outstanding() == 2);
    auto third = pool.take();
    REQUIRE_FALSE(third);
    CHECK(third.error().code == zt::Errc::no_capacity);
    CHECK(pool.exhausted_total() == 1);

    const int reused_fd = first->read_fd;
    pool.give(*first, true);
    auto again = pool.take();
    REQUIRE(again);
    CHECK(again->read_fd == reused_fd);
    CHECK(pool.created_total() == 2);
    pool.give(*again, true);
    pool.give(*second, true);
    CHECK(pool.outstanding() == 0);
    CHECK(pool.free_count() == 2);
}

TEST_CASE("pipe_pool: a pipe returned with bytes in it is closed, not reused") {
    PipePool pool(PipePoolOptions{4, 64 * 1024, 4});
    auto pipe = pool.take();
    REQUIRE(pipe);
    REQUIRE(::write(pipe->write_fd, "left", 4) == 4);
    pool.give(*pipe, false);
    CHECK(pool.free_count() == 0);
    CHECK(::fcntl(pipe->read_fd, F_GETFD) == -1);  // Closed.
    auto fresh = pool.take();
    REQUIRE(fresh);
    char byte;
    CHECK(::read(fresh->read_fd, &byte, 1) == -1);  // Empty (EAGAIN), not "left".
    pool.give(*fresh, true);
}
