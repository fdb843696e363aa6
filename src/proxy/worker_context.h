#pragma once

// WorkerContext is what every unit on one worker thread shares: the ring, the relay engine, the
// buffers lent to reads, the options, the snapshot the pods were reconciled with, the sockets
// seam, and the deferred work that keeps completions from re-entering one another.
//
// The rule that makes the units simple: a completion callback handles its own unit's event and
// then calls `settle()`, and only `settle()` sends a link's output or frees a unit. A unit that
// produced output on a link asks for it with `flush_later`; a unit that closed asks to be freed
// with `free_later`, and is freed once none of its operations is in the kernel. So no handler
// ever flushes from inside another link's event handling, and no unit is freed while a caller up
// the stack still holds it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "src/proxy/limits.h"
#include "src/proxy/pod_sockets.h"
#include "src/proxy/pool.h"
#include "src/proxy/proxy_counters.h"
#include "src/proxy/worker.h"
#include "src/state/snapshot.h"
#include "uring/buffer_ring.h"
#include "uring/ring.h"
#include "uring/splice_relay.h"

namespace zt::proxy {

class Link;
class Pods;
class Tunnel;

// kLentReadBytes is the size of the buffers a worker lends to reads: a tunnel's read size until
// a read fills it (chatty and idle flows, the common case), and an idle link's receive size.
inline constexpr size_t kLentReadBytes = 4096;

class WorkerContext {
public:
    WorkerContext(int index, const WorkerOptions& options, const WorkerShared& shared,
                  uring::Ring& ring, uring::BufferRing* read_buffers, PodSockets& sockets,
                  std::atomic<uint32_t>& open_connections);

    WorkerContext(const WorkerContext&) = delete;
    WorkerContext& operator=(const WorkerContext&) = delete;

    const int index;  // Also the worker's metrics shard.
    const WorkerOptions& options;
    const WorkerShared& shared;
    uring::Ring& ring;
    // read_buffers lends small buffers to tunnel reads and idle links' receives; null when the
    // kernel has no provided-buffer rings (then everyone reads into its own buffer).
    uring::BufferRing* const read_buffers;
    // dns_buffers are the receive buffers every pod's DNS UDP sockets share on this worker (set
    // by the worker with DNS capture on; null: each socket receives into its own).
    uring::BufferRing* dns_buffers = nullptr;
    PodSockets& sockets;
    // relays and pods are set by the worker right after the context (both refer to it).
    uring::RelayEngine* relays = nullptr;
    Pods* pods = nullptr;

    // snapshot is the one the pods were reconciled with (null before the first).
    std::shared_ptr<const state::Snapshot> snapshot;
    bool draining = false;  // Listeners closed; new streams are refused.
    std::mt19937_64 random{std::random_device{}()};
    ProxyCounters counters;  // The worker's protection counts (its metrics shard).
    WorkerLimits limits;     // The worker's caps (handshakes, links, peers, descriptors).

    // pool_policy is the policy of every pod's link pool.
    PoolPolicy pool_policy() const;

    // connection_opened / connection_closed keep the count the control thread reads.
    void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }

    void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }

    uint32_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

    // read_buffers_exhausted counts (and now and then logs) a read that found every lent buffer
    // in use and fell back to the reader's own.
    void read_buffers_exhausted();

    // flush_later asks for `link`'s output to be sent when the current completion is settled.
    void flush_later(Link& link);

    // free_later asks for a closed unit to be freed once no operation of it is in the kernel.
    // Call it when the unit closes and again whenever a completion arrives for it after that.
    void free_later(Link& link);
    void free_later(Tunnel& tunnel);

    // settle ends the handling of a completion: it flushes the links that asked, then frees what
    // closed and left the kernel, then releases pods that emptied. Every completion callback of
    // src/proxy calls it last; a nested call (from inside a flush) returns at once.
    void settle();

private:
    std::atomic<uint32_t>& open_connections_;
    uint64_t read_buffers_exhausted_ = 0;
    std::vector<Link*> links_to_flush_;
    std::vector<Link*> links_to_free_;
    std::vector<Tunnel*> tunnels_to_free_;
    bool settling_ = false;
};

// on_completion adapts a unit's member handler to a `uring::Completion` callback: the unit is the
// completion's context, and the context is settled after the handler.
template <class Unit, void (Unit::*Handler)(int32_t res, uint32_t flags)>
void on_completion(uring::Completion& completion, int32_t res, uint32_t flags) {
    Unit& unit = *static_cast<Unit*>(completion.context);
    WorkerContext& context = unit.context();
    (unit.*Handler)(res, flags);
    context.settle();
}

}  // namespace zt::proxy
