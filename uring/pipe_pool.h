#pragma once

// `PipePool` hands out kernel pipe pairs to relay directions on one worker thread. A direction
// takes a pipe only while bytes are in transit and gives it back when drained, so an idle
// connection holds no pipe. Pipes are created on demand up to a cap, resized once with
// F_SETPIPE_SZ, and a bounded number of empty ones is kept for reuse. Not thread-safe: one pool
// per worker.

#include <cstdint>
#include <vector>

#include "zt/result.h"

namespace zt::uring {

// KernelPipe is one pipe2() pair, both ends nonblocking. `capacity` is the size the kernel
// granted (F_SETPIPE_SZ may give less than asked, e.g. over the per-user pipe quota).
struct KernelPipe {
    int read_fd = -1;
    int write_fd = -1;
    uint32_t capacity = 0;

    bool valid() const { return read_fd >= 0; }
};

// PipePoolOptions bounds a pool: at most `pipes_max` pipes out at once, `size_bytes` asked for
// each, at most `free_max` empty ones kept open for reuse.
struct PipePoolOptions {
    uint32_t pipes_max = 2048;
    uint32_t size_bytes = 256 * 1024;
    uint32_t free_max = 64;
};

class PipePool {
public:
    // PipePool reserves its free list up front, so `take`/`give` never allocate.
    explicit PipePool(const PipePoolOptions& options);

    PipePool(const PipePool&) = delete;
    PipePool& operator=(const PipePool&) = delete;

    // ~PipePool closes the free pipes. Every pipe taken must have been given back.
    ~PipePool();

    // take returns an empty pipe, reused or new. It fails with `Errc::no_capacity` when
    // `pipes_max` pipes are out (counted in `exhausted_total`), or `Errc::sys` when pipe2 fails
    // (e.g. EMFILE). The caller owns the pipe until it calls `give`.
    Result<KernelPipe> take();

    // give returns `pipe`. `empty` says whether every byte written into it was read back out; a
    // pipe with leftover bytes is closed instead of reused, so no byte can reach another relay.
    void give(KernelPipe pipe, bool empty);

    uint32_t outstanding() const { return outstanding_; }

    uint32_t free_count() const { return uint32_t(free_.size()); }

    uint64_t created_total() const { return created_total_; }

    uint64_t exhausted_total() const { return exhausted_total_; }

private:
    PipePoolOptions options_;
    std::vector<KernelPipe> free_;
    uint32_t outstanding_ = 0;
    uint64_t created_total_ = 0;
    uint64_t exhausted_total_ = 0;
};

}  // namespace zt::uring
