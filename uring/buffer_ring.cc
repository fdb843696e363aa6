// buffer_ring.cc maps, registers, refills and releases one provided-buffer ring. It writes the
// ring entries the way the kernel interface defines them (liburing 2.3 lacks the setup helper)
// and never touches a buffer the kernel currently owns.

#include "uring/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>

namespace zt::uring {

Result<std::unique_ptr<BufferRing>> BufferRing::create(Ring& ring, uint16_t group, uint32_t count,
                                                       uint32_t size_bytes) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size_bytes == 0) {
        return fail(Errc::invalid_argument);
    }
    auto buffers = std::make_unique<BufferRing>(PrivateTag{}, ring, group, count, size_bytes);
    if (buffers->ring_memory_ == nullptr) {
        return fail_errno(ENOMEM);
    }
    Result<void> registered = ring.register_buffer_ring(buffers->ring_memory_, count, group);
    if (!registered) {
        int err = registered.error().sys_errno;
        return err == EINVAL ? fail(Errc::unsupported, err) : fail_errno(err);
    }
    buffers->registered_ = true;
    io_uring_buf_ring_init(buffers->ring_memory_);
    const int mask = io_uring_buf_ring_mask(count);
    for (uint32_t id = 0; id < count; ++id) {
        io_uring_buf_ring_add(buffers->ring_memory_, buffers->buffer(uint16_t(id)).data(),
                              size_bytes, uint16_t(id), mask, int(id));
    }
    io_uring_buf_ring_advance(buffers->ring_memory_, int(count));
    return buffers;
}

BufferRing::BufferRing(PrivateTag, Ring& ring, uint16_t group, uint32_t count, uint32_t size_bytes)
    : ring_(ring), count_(count), size_bytes_(size_bytes), group_(group) {
    // One mapping: the ring entries (page-aligned, as the kernel requires) then the buffers.
    const size_t ring_bytes = (sizeof(io_uring_buf) * count + 4095) & ~size_t(4095);
    mapped_bytes_ = ring_bytes + size_t(count) * size_bytes;
    void* memory = ::mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        return;
    }
    ring_memory_ = static_cast<io_uring_buf_ring*>(memory);
    buffers_ = static_cast<uint8_t*>(memory) + ring_bytes;
}

BufferRing::~BufferRing() {
    if (registered_) {
        (void)ring_.unregister_buffer_ring(group_);
    }
    if (ring_memory_ != nullptr) {
        ::munmap(ring_memory_, mapped_bytes_);
    }
}

void BufferRing::give_back(uint16_t id) {
    ZT_ASSERT(id < count_);
    io_uring_buf_ring_add(ring_memory_, buffer(id).data(), size_bytes_, id,
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(ring_memory_, 1);
}

}  // namespace zt::uring
