#pragma once

// ByteBuffer is a growable byte array that never zero-fills: `std::vector<uint8_t>::resize`
// writes every new byte before we overwrite it, which showed up as a memset of every ciphertext
// byte in the benchmark. Growth is geometric and the storage is kept across `clear`, so a
// connection in steady state does not allocate.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "zt/assert.h"
#include "zt/bytes.h"

namespace zt::hbone {

// ByteBuffer owns its bytes; `data()`/`span()` are valid until the next call that grows it.
class ByteBuffer {
public:
    // append copies `n` bytes from `bytes` to the end.
    void append(const void* bytes, size_t n) {
        if (n == 0) {
            return;  // Also keeps memcpy away from a null `data_`.
        }
        reserve_more(n);
        std::memcpy(data_.get() + size_, bytes, n);
        size_ += n;
    }

    // drop_front removes the first `n` bytes (n <= size), moving the rest to the front, so a
    // buffer drained a little at a time does not grow without bound.
    void drop_front(size_t n) {
        ZT_ASSERT(n <= size_);
        if (n < size_) {
            std::memmove(data_.get(), data_.get() + n, size_ - n);
        }
        size_ -= n;
    }

    // swap exchanges the bytes and storage of two buffers (no copy, no allocation).
    void swap(ByteBuffer& other) {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
    }

    // clear empties the buffer and keeps its storage.
    void clear() { size_ = 0; }

    // release frees the storage of an empty buffer (an idle connection's buffers); a buffer
    // still holding bytes is left alone. The next append allocates again.
    void release() {
        if (size_ == 0) {
            data_.reset();
            capacity_ = 0;
        }
    }

    // size, capacity, empty, data and span describe the bytes held (borrowed views) and the
    // storage behind them.
    size_t size() const { return size_; }

    size_t capacity() const { return capacity_; }

    bool empty() const { return size_ == 0; }

    uint8_t* data() { return data_.get(); }

    const uint8_t* data() const { return data_.get(); }

    ByteSpan span() const { return {data_.get(), size_}; }

private:
    // reserve_more makes room for `n` more bytes, doubling the capacity as needed.
    void reserve_more(size_t n) {
        if (capacity_ - size_ >= n) {
            return;
        }
        size_t capacity = capacity_ == 0 ? 4096 : capacity_;
        while (capacity - size_ < n) {
            capacity *= 2;
        }
        auto grown = std::make_unique_for_overwrite<uint8_t[]>(capacity);
        if (size_ > 0) {
            std::memcpy(grown.get(), data_.get(), size_);
        }
        data_ = std::move(grown);
        capacity_ = capacity;
    }

    std::unique_ptr<uint8_t[]> data_;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

}  // namespace zt::hbone
