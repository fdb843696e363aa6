#pragma once

// `SnapshotStore` is the one place the current `Snapshot` is published: the control thread
// stores a new one with a single atomic pointer swap, and each worker loads it once per new
// connection. A loaded snapshot stays alive (shared ownership) for as long as the connection
// holds it, even after a newer one replaced it.

#include <atomic>
#include <memory>

#include "src/state/snapshot.h"

namespace zt::state {

class SnapshotStore {
public:
    // load returns the current snapshot, or null before the first valid config. Safe from any
    // thread.
    std::shared_ptr<const Snapshot> load() const {
        return current_.load(std::memory_order_acquire);
    }

    // store publishes `snapshot` (which must not be null) for every later `load`.
    void store(std::shared_ptr<const Snapshot> snapshot) {
        current_.store(std::move(snapshot), std::memory_order_release);
    }

private:
    std::atomic<std::shared_ptr<const Snapshot>> current_;
};

}  // namespace zt::state
