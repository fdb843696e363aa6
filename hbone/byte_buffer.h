#pragma once

// ByteBuffer is a growable byte array that never zero-fills: `std::vector<uint8_t>::resize`
// writes every new byte before we overwrite it, which showed up as a memset of every ciphertext
// byte in the benchmark. Growth is geometric and the storage is kept across `clear`, so a
// connection in steady state does not allocate.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "zt/assert.h"
#include "zt/bytes.h"

namespace zt::hbone {

class ByteBuffer {
public:
    // append copies `n` bytes from `bytes` to the end.
    void append(const void* bytes, size_t n) {
        reserve_more(n);
        std::memcpy(data_.get() + size_, bytes, n);
        size_ += n;
    }

    // append_uninitialized grows the buffer by `n` bytes whose contents the caller then writes,
    // and returns where they start.
    uint8_t* append_uninitialized(size_t n) {
        reserve_more(n);
        uint8_t* at = data_.get() + size_;
        size_ += n;
        return at;
    }

    // shrink_to drops bytes past `n` (n <= size).
    void shrink_to(size_t n) {
        ZT_ASSERT(n <= size_);
        size_ = n;
    }

    void clear() { size_ = 0; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    uint8_t* data() { return data_.get(); }
    const uint8_t* data() const { return data_.get(); }
    ByteSpan span() const { return {data_.get(), size_}; }

private:
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
