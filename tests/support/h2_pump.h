#pragma once

// Joins two sans-I/O sessions in memory for tests and benchmarks: whatever one side has to send
// is copied, in chunks a `ChunkPolicy` picks (everything, one byte, random sizes — the async-BIO
// idea of docs/style.md §1.3), into the other side's `feed`. Works for any pair of types with
// `pending_output`/`consume_output`/`feed` (H2Session, and the TLS+H2 stack).

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "zt/bytes.h"
#include "zt/result.h"

namespace zt::test {

// ChunkMode is how many bytes each hop moves.
enum class ChunkMode : uint8_t { all, one_byte, random };

// ChunkPolicy picks chunk sizes; `random` draws 1..`max_random` from a seeded generator.
struct ChunkPolicy {
    ChunkMode mode = ChunkMode::all;
    size_t max_random = 4096;
    std::mt19937 rng{12345};

    size_t next(size_t available) {
        switch (mode) {
            case ChunkMode::all:
                return available;
            case ChunkMode::one_byte:
                return 1;
            case ChunkMode::random: {
                std::uniform_int_distribution<size_t> dist(1, max_random);
                return std::min(available, dist(rng));
            }
        }
        return available;
    }
};

// hop moves one chunk from `from` to `to`, copying it first so that `from` may reuse its buffer.
// `wire` is scratch space owned by the caller; data events of `to` borrow it until the next hop.
// Returns false when `from` had nothing to send; `feed_error` records the first feed failure.
template <class From, class To>
bool hop(From& from, To& to, ChunkPolicy& policy, std::vector<uint8_t>& wire,
         Result<void>& feed_error) {
    ByteSpan out = from.pending_output();
    if (out.empty()) {
        return false;
    }
    size_t n = policy.next(out.size());
    wire.assign(out.begin(), out.begin() + static_cast<ptrdiff_t>(n));
    from.consume_output(n);
    Result<void> fed = to.feed(wire);
    if (!fed && feed_error) {
        feed_error = fed;
    }
    return true;
}

}  // namespace zt::test
