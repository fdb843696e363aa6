// splice_relay.cc runs the per-connection relay state machine on a ring: it arms the readiness
// polls, performs the steps each `Pipe` asks for (splices, shutdowns), and on teardown cancels
// what is in flight, waits for those completions, closes both fds and only then reports and
// frees the slot. It knows nothing above fds: no protocol, no policy, no workload.

#include "uring/splice_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uring/pipe.h"
#include "zt/clock.h"

namespace zt::uring {

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr uint32_t kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr uint32_t kReadEvents = POLLIN | POLLRDHUP;

}  // namespace

// RelayState is the life of one relay slot.
enum class RelayState : uint8_t {
    free,        // In the free list.
    connecting,  // The connect to the target is in flight; no polls yet.
    relaying,    // Both pipes run.
    closing,     // Cancelling what is in flight, then closing both fds, then release.
};

// Side is one of the relay's two sockets with the completions that watch it: `read_poll` feeds
// the pipe that reads this socket, `write_poll` the pipe that writes it.
struct Side {
    int fd = -1;
    Completion read_poll;
    Completion write_poll;
    Completion close_op;
    bool closed = false;
};

// Direction is one `Pipe` with its one operation slot and, while bytes are in transit, its
// kernel pipe. Direction 0 reads side 0 and writes side 1; direction 1 the reverse.
struct Direction {
    Pipe pipe;
    Completion op;  // splice (ring mode), shutdown, or a nop to yield (direct mode).
    KernelPipe kernel_pipe;
};

union TargetAddress {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

struct Relay {
    RelayEngine* engine = nullptr;
    RelayId id = 0;
    void* user = nullptr;
    Side sides[2];
    Direction directions[2];
    Timer timer;  // The connect timeout, then the idle check.
    Completion connect_op;
    TargetAddress target_address{};
    socklen_t target_length = 0;
    int64_t last_activity_ns = 0;
    uint32_t generation = 0;
    uint32_t next_free = kNoSlot;
    RelayState state = RelayState::free;
    RelayEnd end = RelayEnd::completed;
    int end_errno = 0;
    bool reset_on_close = false;
    bool cancels_sent = false;
    bool out_of_pipes = false;  // A pipe failed because no kernel pipe could be had.
};

// Every relay slot is allocated at start-up; an idle connection costs one slot and no pipe.
static_assert(sizeof(Relay) <= 512, "a relay slot must stay small: idle memory is a target");

void bind(Completion& completion, Completion::Callback callback, Relay& relay) {
    completion.callback = callback;
    completion.context = &relay;
}

std::string_view to_string(RelayEnd end) {
    switch (end) {
        case RelayEnd::completed:
            return "completed";
        case RelayEnd::reset:
            return "reset";
        case RelayEnd::idle_timeout:
            return "idle_timeout";
        case RelayEnd::connect_failed:
            return "connect_failed";
        case RelayEnd::connect_timeout:
            return "connect_timeout";
        case RelayEnd::aborted:
            return "aborted";
        case RelayEnd::drained:
            return "drained";
        case RelayEnd::no_resources:
            return "no_resources";
    }
    return "unknown";
}

// RelayOps holds the completion callbacks. Each casts `context`, records the result in the
// relay or a pipe, and calls `advance`: all decisions live in `advance`/`drive`.
struct RelayOps {
    static int side_of(Relay& relay, Completion& completion, Completion Side::*member) {
        return &completion == &(relay.sides[0].*member) ? 0 : 1;
    }

    static void on_read_poll(Completion& self, int32_t res, uint32_t flags) {
        Relay& relay = *static_cast<Relay*>(self.context);
        int side = side_of(relay, self, &Side::read_poll);
        Pipe& pipe = relay.directions[side].pipe;  // Direction `side` reads side `side`.
        ++relay.engine->counters_.readiness_events_total;
        if (res != -ECANCELED) {
            pipe.on_readable();  // Errors and hang-ups too: the next splice reports them.
        }
        if ((flags & IORING_CQE_F_MORE) == 0 && relay.state == RelayState::relaying &&
            pipe.wants_readable() && res != -ECANCELED) {
            relay.engine->ring_.poll_multishot(self, relay.sides[side].fd, kReadEvents);
        }
        relay.engine->advance(relay);
    }

    static void on_write_poll(Completion& self, int32_t res, uint32_t) {
        Relay& relay = *static_cast<Relay*>(self.context);
        int side = side_of(relay, self, &Side::write_poll);
        ++relay.engine->counters_.readiness_events_total;
        if (res != -ECANCELED) {
            relay.directions[1 - side].pipe.on_writable();  // Direction 1-side writes `side`.
        }
        relay.engine->advance(relay);
    }

    static void on_op(Completion& self, int32_t res, uint32_t) {
        Relay& relay = *static_cast<Relay*>(self.context);
        Direction& direction =
                &self == &relay.directions[0].op ? relay.directions[0] : relay.directions[1];
        switch (direction.pipe.op()) {
            case PipeOp::splice_in:
                direction.pipe.on_splice_in(res);
                break;
            case PipeOp::splice_out:
                if (res > 0) {
                    relay.last_activity_ns = monotonic_ns();
                }
                direction.pipe.on_splice_out(res);
                break;
            case PipeOp::shutdown:
                direction.pipe.on_shutdown(res);
                break;
            case PipeOp::none:
                break;  // A yield (nop) in direct mode.
        }
        relay.engine->advance(relay);
    }

    static void on_connect(Completion& self, int32_t res, uint32_t) {
        Relay& relay = *static_cast<Relay*>(self.context);
        RelayEngine& engine = *relay.engine;
        if (relay.state == RelayState::connecting) {
            if (res < 0) {
                engine.begin_close(relay, RelayEnd::connect_failed, -res);
                return;
            }
            engine.ring_.cancel_timer(relay.timer);  // on_timer re-arms it as the idle check.
            engine.start_relaying(relay);
            if (engine.options_.splice_mode == SpliceMode::direct) {
                // The client usually spoke while we connected: try it now rather than wait a
                // loop turn for the poll just queued to report it (an empty socket costs one
                // -EAGAIN splice; the poll, armed after, still reports anything that arrives).
                relay.directions[0].pipe.on_readable();
            }
        }
        engine.advance(relay);
    }

    static void on_timer(Completion& self, int32_t res, uint32_t) {
        Relay& relay = *static_cast<Relay*>(self.context);
        RelayEngine& engine = *relay.engine;
        const int64_t idle_ns = engine.options_.idle_timeout_ns;
        if (relay.state == RelayState::connecting && res == -ETIME) {
            engine.begin_close(relay, RelayEnd::connect_timeout, ETIMEDOUT);
            return;
        }
        if (relay.state == RelayState::relaying && idle_ns > 0) {
            int64_t left_ns = relay.last_activity_ns + idle_ns - monotonic_ns();
            if (res == -ETIME && left_ns <= 0) {
                engine.begin_close(relay, RelayEnd::idle_timeout, 0);
                return;
            }
            engine.ring_.arm_timer(relay.timer, left_ns > 0 ? left_ns : idle_ns);
        }
        engine.advance(relay);
    }

    static void on_close(Completion& self, int32_t, uint32_t) {
        Relay& relay = *static_cast<Relay*>(self.context);
        relay.engine->advance(relay);
    }
};

RelayEngine::RelayEngine(Ring& ring, const RelayOptions& options, RelayDoneFn on_done,
                         void* context)
    : ring_(ring)
    , options_(options)
    , on_done_(on_done)
    , context_(context)
    , pipes_(PipePoolOptions{2 * options.relays_max, options.pipe_size_bytes,
                             options.pipes_free_max})
    , relays_(std::make_unique<Relay[]>(options.relays_max))
    , free_head_(options.relays_max > 0 ? 0 : kNoSlot) {
    ZT_ASSERT(options_.splices_per_turn > 0);
    for (uint32_t i = 0; i < options_.relays_max; ++i) {
        Relay& relay = relays_[i];
        relay.engine = this;
        relay.next_free = i + 1 < options_.relays_max ? i + 1 : kNoSlot;
        for (Side& side : relay.sides) {
            bind(side.read_poll, &RelayOps::on_read_poll, relay);
            bind(side.write_poll, &RelayOps::on_write_poll, relay);
            bind(side.close_op, &RelayOps::on_close, relay);
        }
        for (Direction& direction : relay.directions) {
            bind(direction.op, &RelayOps::on_op, relay);
        }
        bind(relay.timer.completion, &RelayOps::on_timer, relay);
        bind(relay.connect_op, &RelayOps::on_connect, relay);
    }
}

RelayEngine::~RelayEngine() {
    ZT_CHECK(counters_.active == 0);
}

Relay* RelayEngine::allocate(UniqueFd& source, UniqueFd& target, void* user) {
    if (free_head_ == kNoSlot) {
        ++counters_.limit_hit_total;
        return nullptr;
    }
    Relay& relay = relays_[free_head_];
    ZT_ASSERT(relay.state == RelayState::free);
    free_head_ = relay.next_free;
    relay.next_free = kNoSlot;
    ++relay.generation;
    relay.id = (RelayId(relay.generation) << 32) | RelayId(&relay - relays_.get());
    relay.user = user;
    relay.sides[0].fd = source.release();
    relay.sides[1].fd = target.release();
    for (Side& side : relay.sides) {
        side.closed = false;
    }
    for (Direction& direction : relay.directions) {
        direction.pipe = Pipe();
        ZT_ASSERT(!direction.kernel_pipe.valid());
    }
    relay.end = RelayEnd::completed;
    relay.end_errno = 0;
    relay.reset_on_close = false;
    relay.cancels_sent = false;
    relay.out_of_pipes = false;
    ++counters_.started_total;
    ++counters_.active;
    return &relay;
}

Result<RelayId> RelayEngine::relay(UniqueFd source, UniqueFd target, void* user) {
    ZT_ASSERT((::fcntl(source.get(), F_GETFL) & O_NONBLOCK) != 0);
    ZT_ASSERT((::fcntl(target.get(), F_GETFL) & O_NONBLOCK) != 0);
    Relay* relay = allocate(source, target, user);
    if (relay == nullptr) {
        return fail(Errc::no_capacity);
    }
    RelayId id = relay->id;
    start_relaying(*relay);
    if (options_.idle_timeout_ns > 0) {
        ring_.arm_timer(relay->timer, options_.idle_timeout_ns);
    }
    return id;
}

Result<RelayId> RelayEngine::connect_and_relay(UniqueFd source, UniqueFd target,
                                               const sockaddr* address, socklen_t length,
                                               void* user) {
    ZT_ASSERT(length <= sizeof(TargetAddress));
    // No fcntl(F_GETFL) check of O_NONBLOCK here, unlike `relay`: this is the per-connection
    // hot path and the caller has just created the socket (nonblocking, as documented); the
    // debug check was one syscall per connection in strace -c.
    Relay* relay = allocate(source, target, user);
    if (relay == nullptr) {
        return fail(Errc::no_capacity);
    }
    std::memcpy(&relay->target_address, address, length);
    relay->target_length = length;
    relay->state = RelayState::connecting;
    ring_.connect(relay->connect_op, relay->sides[1].fd, &relay->target_address.any, length);
    ring_.arm_timer(relay->timer, options_.connect_timeout_ns);
    return relay->id;
}

void RelayEngine::start_relaying(Relay& relay) {
    relay.state = RelayState::relaying;
    relay.last_activity_ns = monotonic_ns();
    for (Side& side : relay.sides) {
        ring_.poll_multishot(side.read_poll, side.fd, kReadEvents);
    }
}

void RelayEngine::abort(RelayId id) {
    uint32_t index = uint32_t(id);
    if (index >= options_.relays_max) {
        return;
    }
    Relay& relay = relays_[index];
    if (relay.id == id &&
        (relay.state == RelayState::relaying || relay.state == RelayState::connecting)) {
        begin_close(relay, RelayEnd::aborted, 0);
    }
}

void RelayEngine::drain() {
    for (uint32_t i = 0; i < options_.relays_max; ++i) {
        Relay& relay = relays_[i];
        if (relay.state == RelayState::relaying || relay.state == RelayState::connecting) {
            begin_close(relay, RelayEnd::drained, 0);
        }
    }
}

bool RelayEngine::ensure_kernel_pipe(Relay& relay, int direction_index) {
    Direction& direction = relay.directions[direction_index];
    if (direction.kernel_pipe.valid()) {
        return true;
    }
    Result<KernelPipe> pipe = pipes_.take();
    if (!pipe) {
        // `advance` sees the failed pipe and closes the relay; closing here, in the middle of
        // `drive`, could release the slot under our caller's feet.
        direction.pipe.fail(pipe.error().sys_errno != 0 ? pipe.error().sys_errno : ENOBUFS);
        relay.out_of_pipes = true;
        return false;
    }
    direction.kernel_pipe = *pipe;
    return true;
}

// splice_in runs one `Step::splice_in`. Returns true when the result is already in the pipe
// (direct mode) so `drive` may continue, false when it must wait (ring mode, or no pipe).
bool RelayEngine::splice_in(Relay& relay, int index) {
    Direction& direction = relay.directions[index];
    if (!ensure_kernel_pipe(relay, index)) {
        return false;
    }
    const KernelPipe& kernel_pipe = direction.kernel_pipe;
    const int source_fd = relay.sides[index].fd;
    direction.pipe.begin_splice_in(kernel_pipe.capacity);
    ++counters_.splices_total;
    if (options_.splice_mode == SpliceMode::ring) {
        ring_.splice(direction.op, source_fd, kernel_pipe.write_fd, kernel_pipe.capacity,
                     kSpliceFlags);
        return false;
    }
    ssize_t n = ::splice(source_fd, nullptr, kernel_pipe.write_fd, nullptr, kernel_pipe.capacity,
                         kSpliceFlags);
    direction.pipe.on_splice_in(n >= 0 ? int32_t(n) : -errno);
    return true;
}

// splice_out runs one `Step::splice_out`, answering like `splice_in`.
bool RelayEngine::splice_out(Relay& relay, int index) {
    Direction& direction = relay.directions[index];
    const int target_fd = relay.sides[1 - index].fd;
    const uint32_t length = direction.pipe.buffered();
    direction.pipe.begin_splice_out();
    ++counters_.splices_total;
    if (options_.splice_mode == SpliceMode::ring) {
        ring_.splice(direction.op, direction.kernel_pipe.read_fd, target_fd, length, kSpliceFlags);
        return false;
    }
    ssize_t n = ::splice(direction.kernel_pipe.read_fd, nullptr, target_fd, nullptr, length,
                         kSpliceFlags);
    if (n > 0) {
        relay.last_activity_ns = monotonic_ns();
    }
    direction.pipe.on_splice_out(n >= 0 ? int32_t(n) : -errno);
    return true;
}

// drive performs the steps one direction asks for until it must wait for the kernel. In direct
// mode a splice is a plain nonblocking syscall whose result goes straight back into the pipe;
// after `splices_per_turn` of them the direction yields with a nop so other relays get a turn.
void RelayEngine::drive(Relay& relay, int index) {
    Direction& direction = relay.directions[index];
    Pipe& pipe = direction.pipe;
    Side& target = relay.sides[1 - index];
    for (uint32_t turn = 0; !direction.op.in_kernel; ++turn) {
        const Step step = pipe.next();
        if (turn >= options_.splices_per_turn &&
            (step == Step::splice_in || step == Step::splice_out)) {
            ring_.nop(direction.op);  // Yield: the nop's completion brings us back.
            return;
        }
        switch (step) {
            case Step::wait:
                if (pipe.wants_writable() && !target.write_poll.in_kernel) {
                    ring_.poll(target.write_poll, target.fd, POLLOUT);
                }
                if (!pipe.needs_kernel_pipe() && direction.kernel_pipe.valid()) {
                    pipes_.give(direction.kernel_pipe, true);
                    direction.kernel_pipe = KernelPipe();
                }
                return;
            case Step::splice_in:
                if (!splice_in(relay, index)) {
                    return;
                }
                break;
            case Step::splice_out:
                if (!splice_out(relay, index)) {
                    return;
                }
                break;
            case Step::shutdown_target:
                // The source is at EOF: stop watching it, tell the target.
                ring_.cancel(relay.sides[index].read_poll);
                pipe.begin_shutdown();
                // Through the ring in both modes, although IORING_OP_SHUTDOWN always goes to an
                // io-wq worker: shutdown(2) inline costs ~20% less relay CPU per connection, but
                // then the FIN's loopback delivery runs on this thread, in front of the next
                // accept. Interleaved A/B, connrate 1 thread: inline 5092/s, p50 163 us; io-wq
                // 5539/s, p50 157 us. A new connection's latency is what we optimise here.
                ring_.shutdown(direction.op, target.fd, SHUT_WR);
                return;
            case Step::done:
            case Step::failed:
                return;
        }
    }
}

// advance is the one function that moves a relay forward after any event.
void RelayEngine::advance(Relay& relay) {
    if (relay.state == RelayState::relaying) {
        drive(relay, 0);
        drive(relay, 1);
        for (Direction& direction : relay.directions) {
            if (direction.pipe.is_failed() && relay.state == RelayState::relaying) {
                begin_close(relay, relay.out_of_pipes ? RelayEnd::no_resources : RelayEnd::reset,
                            direction.pipe.error());
                return;
            }
        }
        if (relay.directions[0].pipe.is_done() && relay.directions[1].pipe.is_done()) {
            begin_close(relay, RelayEnd::completed, 0);
        }
        return;
    }
    if (relay.state != RelayState::closing) {
        return;
    }
    // Closing: first every operation must be back from the kernel, then both fds are closed,
    // then the slot is released. Nothing is freed or reused while the kernel may touch it.
    Completion* in_flight[] = {&relay.sides[0].read_poll, &relay.sides[0].write_poll,
                               &relay.sides[1].read_poll, &relay.sides[1].write_poll,
                               &relay.directions[0].op,   &relay.directions[1].op,
                               &relay.connect_op};
    bool busy = relay.timer.completion.in_kernel;
    for (Completion* completion : in_flight) {
        busy = busy || completion->in_kernel;
    }
    if (busy) {
        if (!relay.cancels_sent) {
            relay.cancels_sent = true;
            for (Completion* completion : in_flight) {
                ring_.cancel(*completion);
            }
            ring_.cancel_timer(relay.timer);
        }
        return;
    }
    bool closing = false;
    for (Side& side : relay.sides) {
        if (!side.closed) {
            side.closed = true;
            if (relay.reset_on_close) {
                linger reset{1, 0};  // close() then sends RST instead of FIN.
                ::setsockopt(side.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
            }
            if (options_.splice_mode == SpliceMode::ring) {
                ring_.close(side.close_op, side.fd);
            } else {
                // Nothing of the relay is in the kernel any more, so a plain close(2) is safe
                // and spares a completion and a loop turn before the slot is released.
                ::close(side.fd);
            }
        }
        closing = closing || side.close_op.in_kernel;
    }
    if (!closing) {
        release(relay);
    }
}

void RelayEngine::begin_close(Relay& relay, RelayEnd end, int sys_errno) {
    ZT_ASSERT(relay.state == RelayState::relaying || relay.state == RelayState::connecting);
    relay.state = RelayState::closing;
    relay.end = end;
    relay.end_errno = sys_errno;
    // Only a clean finish (or a failed connect, where the target never opened) closes with FIN.
    relay.reset_on_close = end != RelayEnd::completed && end != RelayEnd::connect_failed &&
                           end != RelayEnd::connect_timeout;
    advance(relay);
}

void RelayEngine::release(Relay& relay) {
    // The kernel must hold nothing of this slot any more: it is about to be reused.
    for (const Side& side : relay.sides) {
        ZT_ASSERT(!side.read_poll.in_kernel && !side.write_poll.in_kernel);
        ZT_ASSERT(!side.close_op.in_kernel && side.closed);
    }
    for (const Direction& direction : relay.directions) {
        ZT_ASSERT(!direction.op.in_kernel);
    }
    ZT_ASSERT(!relay.timer.completion.in_kernel && !relay.connect_op.in_kernel);
    for (Direction& direction : relay.directions) {
        if (direction.kernel_pipe.valid()) {
            pipes_.give(direction.kernel_pipe, direction.pipe.buffered() == 0);
            direction.kernel_pipe = KernelPipe();
        }
    }
    switch (relay.end) {
        case RelayEnd::completed:
            ++counters_.completed_total;
            break;
        case RelayEnd::reset:
            ++counters_.reset_total;
            break;
        case RelayEnd::idle_timeout:
            ++counters_.idle_timeout_total;
            break;
        case RelayEnd::connect_failed:
        case RelayEnd::connect_timeout:
            ++counters_.connect_failed_total;
            break;
        case RelayEnd::aborted:
        case RelayEnd::drained:
            ++counters_.aborted_total;
            break;
        case RelayEnd::no_resources:
            ++counters_.no_resources_total;
            break;
    }
    RelayReport report;
    report.id = relay.id;
    report.user = relay.user;
    report.bytes_source_to_target = relay.directions[0].pipe.bytes_delivered();
    report.bytes_target_to_source = relay.directions[1].pipe.bytes_delivered();
    report.end = relay.end;
    report.sys_errno = relay.end_errno;
    relay.state = RelayState::free;
    relay.sides[0].fd = -1;
    relay.sides[1].fd = -1;
    relay.next_free = free_head_;
    free_head_ = uint32_t(&relay - relays_.get());
    --counters_.active;
    on_done_(context_, report);
}

}  // namespace zt::uring
