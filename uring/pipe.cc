// pipe.cc holds the transitions of one relay direction. They are pure: no ring, no syscalls,
// no clock. Whoever owns the pipe performs the step it returns and reports the result back.

#include "uring/pipe.h"

#include <errno.h>

#include "zt/assert.h"

namespace zt::uring {

std::string_view to_string(Step step) {
    switch (step) {
        case Step::wait:
            return "wait";
        case Step::splice_in:
            return "splice_in";
        case Step::splice_out:
            return "splice_out";
        case Step::shutdown_target:
            return "shutdown_target";
        case Step::done:
            return "done";
        case Step::failed:
            return "failed";
    }
    return "unknown";
}

void Pipe::on_readable() {
    source_readable_ = true;
    ++readable_epoch_;
}

void Pipe::on_writable() {
    target_writable_ = true;
}

void Pipe::begin_splice_in(uint32_t length) {
    ZT_ASSERT(next() == Step::splice_in);
    ZT_ASSERT(length > 0);
    op_ = PipeOp::splice_in;
    splice_in_length_ = length;
    splice_in_epoch_ = readable_epoch_;
}

Step Pipe::on_splice_in(int32_t res) {
    ZT_ASSERT(op_ == PipeOp::splice_in);
    op_ = PipeOp::none;
    if (res > 0) {
        // A short read does not prove the socket drained: the pipe may have run out of slots
        // (one per skb fragment) before bytes. Only -EAGAIN says the socket is empty.
        ZT_ASSERT(uint32_t(res) <= splice_in_length_);
        buffered_ += uint32_t(res);
    } else if (res == 0) {
        source_eof_ = true;
    } else if (res == -EAGAIN) {
        // Empty, unless a readiness event arrived while the splice was in flight (ring mode).
        if (splice_in_epoch_ == readable_epoch_) {
            source_readable_ = false;
        }
    } else {
        fail(-res);
    }
    return next();
}

void Pipe::begin_splice_out() {
    ZT_ASSERT(next() == Step::splice_out);
    op_ = PipeOp::splice_out;
}

Step Pipe::on_splice_out(int32_t res) {
    ZT_ASSERT(op_ == PipeOp::splice_out);
    op_ = PipeOp::none;
    if (res > 0) {
        ZT_ASSERT(uint32_t(res) <= buffered_);
        buffered_ -= uint32_t(res);
        bytes_delivered_ += uint32_t(res);
    } else if (res == -EAGAIN) {
        target_writable_ = false;
    } else if (res == 0) {
        // A splice of a non-empty pipe that moves nothing: the target cannot take data.
        fail(EPIPE);
    } else {
        fail(-res);
    }
    return next();
}

void Pipe::begin_shutdown() {
    ZT_ASSERT(next() == Step::shutdown_target);
    op_ = PipeOp::shutdown;
}

Step Pipe::on_shutdown(int32_t res) {
    ZT_ASSERT(op_ == PipeOp::shutdown);
    op_ = PipeOp::none;
    if (res < 0 && res != -ENOTCONN) {
        fail(-res);
    } else {
        done_ = true;
    }
    return next();
}

void Pipe::fail(int err) {
    if (!failed_ && !done_) {
        failed_ = true;
        error_ = err;
    }
}

Step Pipe::next() const {
    if (failed_) {
        return Step::failed;
    }
    if (done_) {
        return Step::done;
    }
    if (op_ != PipeOp::none) {
        return Step::wait;
    }
    if (buffered_ > 0) {
        return target_writable_ ? Step::splice_out : Step::wait;
    }
    if (source_eof_) {
        return Step::shutdown_target;
    }
    return source_readable_ ? Step::splice_in : Step::wait;
}

}  // namespace zt::uring
