#pragma once

// WorkerLimits holds the caps one worker enforces so that no peer, and no flood of connections,
// can make it hold unbounded memory or take every file descriptor of the process:
//   - pending inbound TLS handshakes (server links not yet through their handshake);
//   - HBONE links (client and server) on the worker;
//   - server links and inbound streams per peer identity (beyond ztunnel, which has no such cap);
//   - a reserve of descriptors: a data-path socket whose number reaches the soft RLIMIT_NOFILE
//     minus the reserve is closed at once, so listeners and the operator servers always find
//     free descriptors;
//   - memory pressure: while the control thread says the cgroup's memory is near its limit
//     (memory_pressure.h), new connections and streams are shed.
// Each refusal is counted as `ztunnel_connections_refused_total{reason}` with the limit's name
// and logged once per burst (the first refusal, then at most one summary per tick).
//
// The descriptor test is exact and free: Linux gives a new descriptor the lowest free number, so
// a socket numbered N means 0..N-1 were all taken when it was made.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace zt::proxy {

class ProxyCounters;
struct ShedSignal;
struct WorkerOptions;

// Limit names one cap; `to_string` is its `reason` label.
enum class Limit : uint8_t {
    pending_handshakes,  // --max-pending-handshakes
    hbone_connections,   // --max-hbone-connections
    peer_connections,    // --max-peer-connections
    peer_streams,        // --max-peer-streams
    fd_reserve,          // --fd-reserve
    memory_pressure,     // --memory-shed-ratio (logged per episode by the control thread)
};
inline constexpr size_t kLimitCount = 6;

std::string_view to_string(Limit limit);

// PeerUsage is what one peer identity holds on this worker: server links and inbound streams.
struct PeerUsage {
    uint32_t links = 0;
    uint32_t streams = 0;
};

class WorkerLimits {
public:
    // `shed` (may be null: never shed) must outlive the limits.
    WorkerLimits(const WorkerOptions& options, ProxyCounters& counters, int worker,
                 ShedSignal* shed = nullptr);

    WorkerLimits(const WorkerLimits&) = delete;
    WorkerLimits& operator=(const WorkerLimits&) = delete;

    // --- descriptors --------------------------------------------------------------------------
    // refresh_fd_ceiling re-reads RLIMIT_NOFILE (it may change at run time: prlimit).
    void refresh_fd_ceiling();
    // fd_in_reserve says whether data-path socket `fd` took a descriptor of the reserve. Before
    // refusing, the limit is read again, in case it was raised.
    bool fd_in_reserve(int fd);

    // fd_ceiling is the first descriptor number of the reserve.
    int64_t fd_ceiling() const { return fd_ceiling_; }

    // --- links and handshakes -----------------------------------------------------------------
    void link_opened() {
        if (++links_ > links_peak_) {
            links_peak_ = links_;
        }
    }

    void link_closed() { --links_; }

    void handshake_started() { ++handshakes_; }

    void handshake_ended() { --handshakes_; }

    uint32_t links() const { return links_; }

    uint32_t handshakes() const { return handshakes_; }

    // take_links_peak returns the most links open at once since the last call (a burst shorter
    // than a tick is seen too) and starts the next period at the current count.
    uint32_t take_links_peak() { return std::exchange(links_peak_, links_); }

    // accepts_link says whether a new link may start: the worker's link cap, and for a server
    // link (`inbound`) the pending-handshake cap. A refusal is counted.
    bool accepts_link(bool inbound);

    // --- peers --------------------------------------------------------------------------------
    // add_peer_link records a server link of `identity` that finished its handshake; null (and
    // counted) when that identity is at its cap. The usage stays valid until `release_peer`.
    PeerUsage* add_peer_link(const std::string& identity);
    // release_peer forgets one link of `identity` (its streams must have been released).
    void release_peer(const std::string& identity, PeerUsage& usage);
    // accepts_stream says whether `usage`'s peer may open another inbound stream (counted when
    // not).
    bool accepts_stream(const PeerUsage& usage);

    // --- memory ------------------------------------------------------------------------------
    // sheds_new_work says whether a new connection or stream must be refused because memory is
    // near the cgroup's limit: one relaxed atomic load. A refusal is counted here; the control
    // thread logs the episode, so nothing is logged per refusal.
    bool sheds_new_work();

    // refused counts one refusal at `limit` and logs the first of a burst.
    void refused(Limit limit);

    // tick ends bursts: one summary line per limit refused since the last one.
    void tick();

private:
    const WorkerOptions& options_;
    ProxyCounters& counters_;
    int worker_;
    ShedSignal* shed_;
    int64_t fd_ceiling_ = INT64_MAX;
    uint32_t links_ = 0;
    uint32_t links_peak_ = 0;
    uint32_t handshakes_ = 0;
    std::unordered_map<std::string, PeerUsage> peers_;
    // A burst per limit: whether one is under way and how many refusals are not logged yet.
    bool in_burst_[kLimitCount] = {};
    uint64_t unlogged_[kLimitCount] = {};
};

}  // namespace zt::proxy
