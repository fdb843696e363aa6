#pragma once

// `RelayEngine` relays plaintext TCP between pairs of sockets on one worker's `Ring`, with no
// copy through user space: source socket -> kernel pipe -> target socket, one `Pipe` state
// machine per direction. It knows only fds. Sockets are nonblocking and a splice is issued only
// after a poll said the source is readable: a splice on an idle blocking socket would park an
// io-wq kernel thread (docs/design.md "A connection").
//
// Per connection: half-close propagates each way independently (EOF from one side becomes
// shutdown(SHUT_WR) on the other while the other direction keeps flowing), a reset or I/O error
// becomes a reset of both sides (SO_LINGER {1, 0} then close), an idle timeout, a connect
// timeout. Per worker: a limit on relays, counted when hit. Teardown cancels what is in flight
// and waits for every completion before the slot is reused or the fds closed.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "uring/pipe_pool.h"
#include "uring/ring.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::uring {

// SpliceMode chooses who runs the splices once a poll said a socket is ready.
enum class SpliceMode : uint8_t {
    // direct calls splice(2) and close(2) from the ring's thread: the sockets are nonblocking
    // and known ready, so it never blocks, and it saves the io-wq thread hop that every
    // IORING_OP_SPLICE takes.
    direct,
    // ring submits IORING_OP_SPLICE; the kernel runs each on an io-wq thread.
    ring,
};

// RelayEnd says how a relay ended.
enum class RelayEnd : uint8_t {
    completed,        // Both directions reached EOF and delivered every byte.
    reset,            // A peer reset or an I/O error; both sides were reset.
    idle_timeout,     // No byte moved for the idle timeout; both sides were reset.
    connect_failed,   // The connect to the target failed (`sys_errno` says why).
    connect_timeout,  // The connect to the target did not finish in time.
    aborted,          // `RelayEngine::abort` (a policy change); both sides were reset.
    drained,          // `RelayEngine::drain`; both sides were reset.
    no_resources,     // No kernel pipe could be had (pool cap, fd limit); both sides were reset.
};

// to_string names `end` for logs and metric labels.
std::string_view to_string(RelayEnd end);

// RelayId names one relay for `abort`; ids are never reused, so a stale id is harmless.
using RelayId = uint64_t;

// RelayReport is what a finished relay tells its owner. `source` is the first fd given to
// `relay`/`connect_and_relay` (the client), `target` the second.
struct RelayReport {
    RelayId id = 0;
    void* user = nullptr;  // The tag given when the relay started.
    uint64_t bytes_source_to_target = 0;
    uint64_t bytes_target_to_source = 0;
    RelayEnd end = RelayEnd::completed;
    int sys_errno = 0;  // For `reset` and `connect_failed`: the errno seen first, else 0.
};

// RelayDoneFn is called once per relay, on the ring's thread, after both fds are closed and every
// completion of the relay has arrived. It may start or abort other relays.
using RelayDoneFn = void (*)(void* context, const RelayReport& report);

// RelayOptions are the limits and sizes of one worker's relays.
struct RelayOptions {
    uint32_t relays_max = 1024;  // Concurrent relays; more are refused and counted.
    // F_SETPIPE_SZ for each kernel pipe. Pages are only used while bytes are in transit; a
    // large pipe means fewer splices when the relay falls behind (measured on loopback: 1 MiB
    // took a tenth of the splices of 64 KiB and about 15% less CPU per byte). Unprivileged
    // processes are held to fs.pipe-user-pages-soft in total; past it the kernel shrinks pipes.
    uint32_t pipe_size_bytes = 1024 * 1024;
    uint32_t pipes_free_max = 16;  // Empty pipes kept open for reuse.
    int64_t idle_timeout_ns = 0;   // 0 disables the idle timeout.
    int64_t connect_timeout_ns = 10'000'000'000;
    SpliceMode splice_mode = SpliceMode::direct;
    uint32_t splices_per_turn = 16;  // direct mode: splices per event before yielding the loop.
};

// RelayCounters are the worker's relay metrics; `*_total` only grow.
struct RelayCounters {
    uint64_t started_total = 0;
    uint64_t completed_total = 0;
    uint64_t reset_total = 0;
    uint64_t idle_timeout_total = 0;
    uint64_t connect_failed_total = 0;
    uint64_t aborted_total = 0;
    uint64_t limit_hit_total = 0;  // `relay`/`connect_and_relay` refused: `relays_max` reached.
    uint64_t no_resources_total = 0;
    uint64_t splices_total = 0;           // Splices issued (both kinds, both modes).
    uint64_t readiness_events_total = 0;  // Poll CQEs: how often the relay was woken.
    uint32_t active = 0;
};

struct Relay;

class RelayEngine {
public:
    // RelayEngine allocates every relay slot (`options.relays_max`) up front. `ring` must
    // outlive the engine; `on_done` is called with `context` for every finished relay.
    RelayEngine(Ring& ring, const RelayOptions& options, RelayDoneFn on_done, void* context);

    RelayEngine(const RelayEngine&) = delete;
    RelayEngine& operator=(const RelayEngine&) = delete;

    // ~RelayEngine asserts no relay is active: `drain` and run the ring until `active() == 0`.
    ~RelayEngine();

    // relay starts relaying between two connected, nonblocking sockets and takes ownership of
    // both. It fails with `Errc::no_capacity` (counted in `limit_hit_total`) when `relays_max`
    // relays are active; the fds are then closed.
    Result<RelayId> relay(UniqueFd source, UniqueFd target, void* user);

    // connect_and_relay connects nonblocking socket `target` to `address` (copied), bounded by
    // the connect timeout, then relays as `relay` does. Fails like `relay`.
    Result<RelayId> connect_and_relay(UniqueFd source, UniqueFd target, const sockaddr* address,
                                      socklen_t length, void* user);

    // abort ends relay `id` with `RelayEnd::aborted` (both sides reset). A no-op for an id that
    // has already ended.
    void abort(RelayId id);

    // drain ends every active relay with `RelayEnd::drained` (both sides reset). Reports follow
    // as their completions arrive; run the ring until `active() == 0`. A graceful drain is the
    // caller's: stop starting relays, run until `active() == 0` or a deadline, then `drain`.
    void drain();

    uint32_t active() const { return counters_.active; }

    const RelayCounters& counters() const { return counters_; }

    const PipePool& pipes() const { return pipes_; }

private:
    friend struct RelayOps;

    Relay* allocate(UniqueFd& source, UniqueFd& target, void* user);
    void start_relaying(Relay& relay);
    void advance(Relay& relay);
    void drive(Relay& relay, int direction);
    bool splice_in(Relay& relay, int direction);
    bool splice_out(Relay& relay, int direction);
    bool ensure_kernel_pipe(Relay& relay, int direction);
    void begin_close(Relay& relay, RelayEnd end, int sys_errno);
    void release(Relay& relay);

    Ring& ring_;
    RelayOptions options_;
    RelayDoneFn on_done_;
    void* context_;
    PipePool pipes_;
    std::unique_ptr<Relay[]> relays_;
    uint32_t free_head_;
    RelayCounters counters_{};
};

}  // namespace zt::uring
