// limits.cc enforces a worker's caps on handshakes, links, peers and descriptors, counts each
// refusal and logs it once per burst, so that a flood is visible in the log without flooding it.

#include "src/proxy/limits.h"

#include <sys/resource.h>

#include "src/proxy/memory_pressure.h"
#include "src/proxy/proxy_counters.h"
#include "src/proxy/worker.h"
#include "zt/log.h"

namespace zt::proxy {

std::string_view to_string(Limit limit) {
    switch (limit) {
        case Limit::pending_handshakes:
            return "pending_handshakes_limit";
        case Limit::hbone_connections:
            return "hbone_connections_limit";
        case Limit::peer_connections:
            return "peer_connections_limit";
        case Limit::peer_streams:
            return "peer_streams_limit";
        case Limit::fd_reserve:
            return "fd_reserve";
        case Limit::memory_pressure:
            return kMemoryPressureReason;
    }
    return "unknown";
}

WorkerLimits::WorkerLimits(const WorkerOptions& options, ProxyCounters& counters, int worker,
                           ShedSignal* shed)
    : options_(options), counters_(counters), worker_(worker), shed_(shed) {
    refresh_fd_ceiling();
}

void WorkerLimits::refresh_fd_ceiling() {
    rlimit limit{};
    if (options_.fd_reserve == 0 || getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
        limit.rlim_cur == RLIM_INFINITY) {
        fd_ceiling_ = INT64_MAX;
        return;
    }
    // Never more than half the descriptors: a tiny limit still leaves the data path some.
    int64_t soft = int64_t(limit.rlim_cur);
    int64_t reserve = std::min<int64_t>(options_.fd_reserve, soft / 2);
    fd_ceiling_ = soft - reserve;
}

bool WorkerLimits::fd_in_reserve(int fd) {
    if (fd < fd_ceiling_) {
        return false;
    }
    refresh_fd_ceiling();
    if (fd < fd_ceiling_) {
        return false;
    }
    refused(Limit::fd_reserve);
    return true;
}

bool WorkerLimits::accepts_link(bool inbound) {
    if (options_.hbone_connections_max != 0 && links_ >= options_.hbone_connections_max) {
        refused(Limit::hbone_connections);
        return false;
    }
    if (inbound && options_.pending_handshakes_max != 0 &&
        handshakes_ >= options_.pending_handshakes_max) {
        refused(Limit::pending_handshakes);
        return false;
    }
    return true;
}

PeerUsage* WorkerLimits::add_peer_link(const std::string& identity) {
    PeerUsage& usage = peers_[identity];
    if (options_.peer_connections_max != 0 && usage.links >= options_.peer_connections_max) {
        if (usage.links == 0) {
            peers_.erase(identity);
        }
        refused(Limit::peer_connections);
        return nullptr;
    }
    ++usage.links;
    return &usage;
}

void WorkerLimits::release_peer(const std::string& identity, PeerUsage& usage) {
    ZT_ASSERT(usage.links > 0);
    if (--usage.links == 0 && usage.streams == 0) {
        peers_.erase(identity);
    }
}

bool WorkerLimits::accepts_stream(const PeerUsage& usage) {
    if (options_.peer_streams_max != 0 && usage.streams >= options_.peer_streams_max) {
        refused(Limit::peer_streams);
        return false;
    }
    return true;
}

bool WorkerLimits::sheds_new_work() {
    if (shed_ == nullptr || !shed_->shedding.load(std::memory_order_relaxed)) {
        return false;
    }
    counters_.connection_refused(to_string(Limit::memory_pressure));
    shed_->shed_total.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void WorkerLimits::refused(Limit limit) {
    counters_.connection_refused(to_string(limit));
    size_t i = size_t(limit);
    if (in_burst_[i]) {
        ++unlogged_[i];
        return;
    }
    in_burst_[i] = true;
    log::warn(
            "proxy", "connection refused at a limit",
            {log::Field::str("limit", std::string(to_string(limit))),
             log::Field::num("worker", uint64_t(worker_)), log::Field::num("links", links_),
             log::Field::num("handshakes", handshakes_),
             log::Field::num("fd_ceiling", uint64_t(fd_ceiling_ == INT64_MAX ? 0 : fd_ceiling_))});
}

void WorkerLimits::tick() {
    for (size_t i = 0; i < kLimitCount; ++i) {
        if (unlogged_[i] == 0) {
            in_burst_[i] = false;  // A quiet tick ends the burst: the next refusal is logged.
            continue;
        }
        log::warn("proxy", "more connections refused at a limit",
                  {log::Field::str("limit", std::string(to_string(Limit(i)))),
                   log::Field::num("worker", uint64_t(worker_)),
                   log::Field::num("refused", unlogged_[i])});
        unlogged_[i] = 0;
    }
}

}  // namespace zt::proxy
