// worker_context.cc holds the deferred work of one worker: flushing the links that produced
// output and freeing the units that closed, once the completion being handled is done.

#include "src/proxy/worker_context.h"

#include "src/proxy/link.h"
#include "src/proxy/pod.h"
#include "src/proxy/pods.h"
#include "src/proxy/tunnel.h"
#include "zt/log.h"

namespace zt::proxy {

WorkerContext::WorkerContext(int index_, const WorkerOptions& options_, const WorkerShared& shared_,
                             uring::Ring& ring_, uring::BufferRing* read_buffers_,
                             PodSockets& sockets_, std::atomic<uint32_t>& open_connections)
    : index(index_)
    , options(options_)
    , shared(shared_)
    , ring(ring_)
    , read_buffers(read_buffers_)
    , sockets(sockets_)
    , counters(shared_.metrics, size_t(index_))
    , limits(options_, counters, index_, shared_.shed)
    , open_connections_(open_connections) {}

PoolPolicy WorkerContext::pool_policy() const {
    PoolPolicy policy;
    policy.streams_per_link = options.pool_streams_max;
    return policy;
}

void WorkerContext::read_buffers_exhausted() {
    read_buffers_exhausted_++;
    counters.read_buffers_exhausted();
    if ((read_buffers_exhausted_ & (read_buffers_exhausted_ - 1)) == 0) {
        // Logged at 1, 2, 4, 8, ...: visible without flooding the log in a burst.
        log::debug("proxy", "every lent read buffer is in use; reading into own buffers",
                   {log::Field::num("worker", uint64_t(index)),
                    log::Field::num("tunnel_read_buffers", options.tunnel_read_buffers),
                    log::Field::num("exhausted_total", read_buffers_exhausted_)});
    }
}

void WorkerContext::flush_later(Link& link) {
    if (!link.flush_queued_) {
        link.flush_queued_ = true;
        links_to_flush_.push_back(&link);
    }
}

// A unit is queued to be freed when it closes and again on each completion that arrives after
// that; `settle` runs after every completion, so each is queued at most once per list.
void WorkerContext::free_later(Link& link) {
    links_to_free_.push_back(&link);
}

void WorkerContext::free_later(Tunnel& tunnel) {
    tunnels_to_free_.push_back(&tunnel);
}

void WorkerContext::settle() {
    if (settling_) {
        return;
    }
    settling_ = true;
    // Flushing hands framing's events to tunnels, which may ask for more flushes (of the same
    // link, whose send is then in flight and returns at once) and close tunnels.
    while (!links_to_flush_.empty()) {
        Link* link = links_to_flush_.back();
        links_to_flush_.pop_back();
        link->flush_queued_ = false;
        link->flush();
    }
    for (Tunnel* tunnel : tunnels_to_free_) {
        if (!tunnel->in_kernel()) {
            tunnel->pod().tunnels.destroy(*tunnel);
        }
    }
    tunnels_to_free_.clear();
    for (Link* link : links_to_free_) {
        if (link->state().phase() == LinkPhase::closed && !link->in_kernel()) {
            link->pod().links.destroy(*link);
        }
    }
    links_to_free_.clear();
    if (pods != nullptr) {
        pods->release_closed();
    }
    settling_ = false;
}

}  // namespace zt::proxy
