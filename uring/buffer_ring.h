#pragma once

// `BufferRing` is a provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19): a group of
// equal buffers the kernel picks from when a `Ring::recv_select` or `recv_multishot` completes,
// so a connection waiting for data holds no buffer. liburing 2.3 has no
// io_uring_setup_buf_ring, so this maps and registers the ring itself. One per ring's thread.

#include <cstdint>
#include <memory>
#include <span>

#include "uring/ring.h"
#include "zt/result.h"

namespace zt::uring {

class BufferRing {
    struct PrivateTag {};

public:
    // create maps `count` (a power of two, at most 32768) buffers of `size_bytes` each plus the
    // ring that lists them, registers them with `ring` as group `group`, and hands them all to
    // the kernel. Fails with `Errc::invalid_argument` for a bad count, `Errc::unsupported` when
    // the kernel lacks provided-buffer rings (use plain `recv` then), or `Errc::sys`. `ring`
    // must outlive the result.
    static Result<std::unique_ptr<BufferRing>> create(Ring& ring, uint16_t group, uint32_t count,
                                                      uint32_t size_bytes);

    BufferRing(PrivateTag, Ring& ring, uint16_t group, uint32_t count, uint32_t size_bytes);
    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;

    // ~BufferRing unregisters the group and unmaps the memory. No operation selecting from this
    // group may still be in flight.
    ~BufferRing();

    uint16_t group() const { return group_; }

    uint32_t size_bytes() const { return size_bytes_; }

    // buffer_id extracts the buffer id from a CQE's flags; only valid with IORING_CQE_F_BUFFER.
    static uint16_t buffer_id(uint32_t cqe_flags) {
        return uint16_t(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    }

    // buffer is the memory of buffer `id`. It belongs to the caller from the CQE that named it
    // until `give_back(id)`.
    std::span<uint8_t> buffer(uint16_t id) {
        ZT_ASSERT(id < count_);
        return std::span(buffers_ + size_t(id) * size_bytes_, size_bytes_);
    }

    // give_back returns buffer `id` to the kernel for the next receive.
    void give_back(uint16_t id);

private:
    Ring& ring_;
    io_uring_buf_ring* ring_memory_ = nullptr;
    uint8_t* buffers_ = nullptr;
    size_t mapped_bytes_ = 0;
    uint32_t count_;
    uint32_t size_bytes_;
    uint16_t group_;
    bool registered_ = false;
};

}  // namespace zt::uring
