#pragma once

// `Pipe` is one direction of a relay in docs/design.md's sense: source socket -> kernel pipe ->
// target socket. It is a pure state machine: it is told what happened (a readiness event, the
// result of a splice or a shutdown) and answers with the `Step` to take next. It never calls the
// ring or the kernel, so every transition is testable with plain numbers.

#include <cstdint>
#include <string_view>

namespace zt::uring {

// Step is what a `Pipe` wants done next.
enum class Step : uint8_t {
    wait,             // Nothing to do until a readiness event (see `Pipe::wants_writable`).
    splice_in,        // Splice from the source socket into the kernel pipe.
    splice_out,       // Splice `Pipe::buffered()` bytes from the kernel pipe to the target.
    shutdown_target,  // The source hit EOF and every byte was delivered: shutdown(SHUT_WR).
    done,             // Finished cleanly; the target has seen our FIN.
    failed,           // An error (`Pipe::error()`); the relay resets both sides.
};

// to_string names `step` for logs.
std::string_view to_string(Step step);

// PipeOp is the one operation a pipe may have outstanding at a time.
enum class PipeOp : uint8_t {
    none,        // Nothing outstanding.
    splice_in,   // A splice source -> kernel pipe is in flight.
    splice_out,  // A splice kernel pipe -> target is in flight.
    shutdown,    // shutdown(target, SHUT_WR) is in flight.
};

class Pipe {
public:
    // on_readable records a readiness event on the source (POLLIN, POLLRDHUP, POLLHUP or
    // POLLERR: each makes the next splice return data, 0 or the error). The source then stays
    // readable until a splice answers -EAGAIN.
    void on_readable();

    // on_writable records that the target can take bytes again.
    void on_writable();

    // begin_splice_in records that a splice of up to `length` bytes source -> kernel pipe was
    // issued. Only valid when `next()` returned `Step::splice_in`.
    void begin_splice_in(uint32_t length);

    // on_splice_in takes the splice's result: bytes moved, 0 for EOF, -EAGAIN for "not readable
    // after all" (wait for the next event, unless one arrived while the splice was in flight),
    // any other negative errno fails the pipe. A short read keeps the source readable: the
    // pipe can run out of slots before the socket runs out of bytes.
    Step on_splice_in(int32_t res);

    // begin_splice_out / on_splice_out do the same for kernel pipe -> target; -EAGAIN means the
    // target's buffer is full (wait for writability).
    void begin_splice_out();
    Step on_splice_out(int32_t res);

    // begin_shutdown / on_shutdown bracket shutdown(target, SHUT_WR). ENOTCONN (the target is
    // already gone) still ends the direction: there is nobody left to tell.
    void begin_shutdown();
    Step on_shutdown(int32_t res);

    // fail marks the pipe failed with `err` from outside (the relay is aborted).
    void fail(int err);

    // next answers what to do now, from the current state alone. While an operation is
    // outstanding the answer is `Step::wait`.
    Step next() const;

    // wants_writable says the pipe waits for the target to become writable (arm a POLLOUT).
    bool wants_writable() const {
        return op_ == PipeOp::none && buffered_ > 0 && !target_writable_ && !failed_;
    }

    // wants_readable says the pipe still reads its source (keep the source poll armed).
    bool wants_readable() const { return !source_eof_ && !failed_; }

    // needs_kernel_pipe says whether the pipe uses a kernel pipe right now. When false, an idle
    // relay can give its kernel pipe back to the pool.
    bool needs_kernel_pipe() const { return buffered_ > 0 || op_ == PipeOp::splice_in; }

    PipeOp op() const { return op_; }

    uint32_t buffered() const { return buffered_; }

    uint64_t bytes_delivered() const { return bytes_delivered_; }

    bool source_eof() const { return source_eof_; }

    bool is_done() const { return done_; }

    bool is_failed() const { return failed_; }

    int error() const { return error_; }

private:
    uint64_t bytes_delivered_ = 0;
    uint32_t buffered_ = 0;          // Bytes in the kernel pipe, not yet delivered.
    uint32_t splice_in_length_ = 0;  // What the outstanding splice_in asked for (for asserts).
    uint32_t readable_epoch_ = 0;    // Bumped by every readiness event.
    uint32_t splice_in_epoch_ = 0;   // `readable_epoch_` when the splice_in was issued.
    int error_ = 0;
    PipeOp op_ = PipeOp::none;
    bool source_readable_ = false;
    bool target_writable_ = true;  // A fresh connection has an empty send buffer.
    bool source_eof_ = false;
    bool done_ = false;
    bool failed_ = false;
};

}  // namespace zt::uring
