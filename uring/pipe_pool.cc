// pipe_pool.cc creates, resizes, recycles and closes kernel pipe pairs for one worker. It
// never hands out a pipe that may still hold another relay's bytes.

#include "uring/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace zt::uring {

namespace {

void close_pipe(const KernelPipe& pipe) {
    ::close(pipe.read_fd);
    ::close(pipe.write_fd);
}

}  // namespace

PipePool::PipePool(const PipePoolOptions& options) : options_(options) {
    free_.reserve(options_.free_max);
}

PipePool::~PipePool() {
    ZT_ASSERT(outstanding_ == 0);
    for (const KernelPipe& pipe : free_) {
        close_pipe(pipe);
    }
}

Result<KernelPipe> PipePool::take() {
    if (!free_.empty()) {
        KernelPipe pipe = free_.back();
        free_.pop_back();
        ++outstanding_;
        return pipe;
    }
    if (outstanding_ >= options_.pipes_max) {
        ++exhausted_total_;
        return fail(Errc::no_capacity);
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return fail_errno(errno);
    }
    KernelPipe pipe{fds[0], fds[1], 0};
    // Larger pipes mean fewer splices per megabyte. The kernel may refuse (per-user pipe
    // quota); then the default size it reports is what we use.
    int size = ::fcntl(fds[1], F_SETPIPE_SZ, int(options_.size_bytes));
    if (size < 0) {
        size = ::fcntl(fds[1], F_GETPIPE_SZ);
    }
    pipe.capacity = size > 0 ? uint32_t(size) : 4096;
    ++created_total_;
    ++outstanding_;
    return pipe;
}

void PipePool::give(KernelPipe pipe, bool empty) {
    ZT_ASSERT(pipe.valid());
    ZT_ASSERT(outstanding_ > 0);
    --outstanding_;
    if (empty && free_.size() < options_.free_max) {
        free_.push_back(pipe);
        return;
    }
    close_pipe(pipe);
}

}  // namespace zt::uring
