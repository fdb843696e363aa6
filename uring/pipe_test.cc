// pipe_test.cc checks the pure transitions of one relay direction, with no ring and no socket:
// each case feeds events and results and checks the step the pipe asks for.

#include "uring/pipe.h"

#include <errno.h>

#include <doctest/doctest.h>

using zt::uring::Pipe;
using zt::uring::PipeOp;
using zt::uring::Step;

TEST_CASE("pipe: a fresh pipe waits for readability and holds no kernel pipe") {
    Pipe pipe;
    CHECK(pipe.next() == Step::wait);
    CHECK_FALSE(pipe.needs_kernel_pipe());
    CHECK_FALSE(pipe.wants_writable());
    CHECK(pipe.wants_readable());
    pipe.on_readable();
    CHECK(pipe.next() == Step::splice_in);
}

TEST_CASE("pipe: a full read keeps reading after the bytes are delivered") {
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(65536);
    CHECK(pipe.next() == Step::wait);  // One operation at a time.
    CHECK(pipe.needs_kernel_pipe());
    CHECK(pipe.on_splice_in(65536) == Step::splice_out);
    CHECK(pipe.buffered() == 65536);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(65536) == Step::splice_in);
    CHECK(pipe.bytes_delivered() == 65536);
    CHECK_FALSE(pipe.needs_kernel_pipe());
}

TEST_CASE("pipe: a short read keeps reading; only EAGAIN means the socket is empty") {
    // A pipe holds one skb fragment per slot, so it can fill up before the socket is drained:
    // trusting a short read to mean "empty" would wait for a wake-up that never comes.
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(65536);
    CHECK(pipe.on_splice_in(1000) == Step::splice_out);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(1000) == Step::splice_in);
    pipe.begin_splice_in(65536);
    CHECK(pipe.on_splice_in(-EAGAIN) == Step::wait);
    CHECK_FALSE(pipe.needs_kernel_pipe());
    pipe.on_readable();
    CHECK(pipe.next() == Step::splice_in);
}

TEST_CASE("pipe: a readiness event during a splice that finds nothing is not lost") {
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(65536);
    pipe.on_readable();  // Data arrived while the splice (ring mode) was in flight.
    CHECK(pipe.on_splice_in(-EAGAIN) == Step::splice_in);
}

TEST_CASE("pipe: EAGAIN on read waits; EAGAIN on write waits for writability") {
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(4096);
    CHECK(pipe.on_splice_in(-EAGAIN) == Step::wait);
    CHECK_FALSE(pipe.wants_writable());
    pipe.on_readable();
    pipe.begin_splice_in(4096);
    CHECK(pipe.on_splice_in(4096) == Step::splice_out);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(1096) == Step::splice_out);  // Short write: try the rest.
    CHECK(pipe.buffered() == 3000);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(-EAGAIN) == Step::wait);
    CHECK(pipe.wants_writable());
    CHECK(pipe.needs_kernel_pipe());  // Bytes are in transit: the kernel pipe stays.
    pipe.on_writable();
    CHECK(pipe.next() == Step::splice_out);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(3000) == Step::splice_in);
    CHECK(pipe.bytes_delivered() == 4096);
}

TEST_CASE("pipe: EOF delivers what is buffered, then shuts the target down, then is done") {
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(4096);
    CHECK(pipe.on_splice_in(10) == Step::splice_out);
    pipe.on_readable();
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(10) == Step::splice_in);
    pipe.begin_splice_in(4096);
    CHECK(pipe.on_splice_in(0) == Step::shutdown_target);
    CHECK(pipe.source_eof());
    CHECK_FALSE(pipe.wants_readable());
    pipe.begin_shutdown();
    CHECK(pipe.next() == Step::wait);
    CHECK(pipe.on_shutdown(0) == Step::done);
    CHECK(pipe.is_done());
    pipe.on_readable();
    CHECK(pipe.next() == Step::done);
}

TEST_CASE("pipe: EOF with bytes still stuck waits for writability before the shutdown") {
    Pipe pipe;
    pipe.on_readable();
    pipe.begin_splice_in(4096);
    pipe.on_splice_in(100);
    pipe.begin_splice_out();
    CHECK(pipe.on_splice_out(-EAGAIN) == Step::wait);
    pipe.on_readable();
    CHECK(pipe.next() == Step::wait);  // Never read more while the target is stuck.
    pipe.on_writable();
    pipe.begin_splice_out();
    pipe.on_splice_out(100);
    pipe.begin_splice_in(4096);
    CHECK(pipe.on_splice_in(0) == Step::shutdown_target);
}

TEST_CASE("pipe: errors fail the pipe with their errno; a gone target still ends cleanly") {
    Pipe reset;
    reset.on_readable();
    reset.begin_splice_in(4096);
    CHECK(reset.on_splice_in(-ECONNRESET) == Step::failed);
    CHECK(reset.error() == ECONNRESET);
    CHECK_FALSE(reset.wants_readable());

    Pipe broken;
    broken.on_readable();
    broken.begin_splice_in(4096);
    broken.on_splice_in(5);
    broken.begin_splice_out();
    CHECK(broken.on_splice_out(-EPIPE) == Step::failed);
    CHECK(broken.error() == EPIPE);

    Pipe gone;
    gone.on_readable();
    gone.begin_splice_in(4096);
    gone.on_splice_in(0);
    gone.begin_shutdown();
    CHECK(gone.on_shutdown(-ENOTCONN) == Step::done);
}

TEST_CASE("pipe: an outside failure sticks, but does not undo a clean finish") {
    Pipe pipe;
    pipe.fail(ECANCELED);
    CHECK(pipe.next() == Step::failed);
    pipe.fail(EPIPE);
    CHECK(pipe.error() == ECANCELED);

    Pipe done;
    done.on_readable();
    done.begin_splice_in(1);
    done.on_splice_in(0);
    done.begin_shutdown();
    done.on_shutdown(0);
    done.fail(ECANCELED);
    CHECK(done.next() == Step::done);
    CHECK_FALSE(done.is_failed());
}
