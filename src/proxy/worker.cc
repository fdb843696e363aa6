// worker.cc runs one data-plane thread: it creates the ring, the relay engine and the lent read
// buffers, then loops on completions. The control thread talks to it through atomics and an
// eventfd (`wake`): each wake-up reconciles the pods with the latest snapshot (or, when it did not
// change, hands on the connections that waited for a certificate just published), starts a drain or
// a forced close, or publishes the pods' status (and says so on the shared status eventfd, which
// ends a waiting `GET /pods` on the control thread). A one-second tick drives the links' timers and
// hands freed heap memory back after a large drop in connections. Everything a connection does
// happens in the units of the other files (pods.h, pod_listeners.h, link.h, tunnel.h, ...);
// docs/architecture.md walks through them.
//
// Nothing here blocks: sockets are nonblocking, setns+socket are immediate, and cross-thread
// requests arrive as atomics plus an eventfd wake-up.

#include "src/proxy/worker.h"

#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "src/dns/server.h"
#include "src/proxy/plaintext.h"
#include "src/proxy/pods.h"
#include "src/proxy/worker_context.h"
#include "uring/buffer_ring.h"
#include "uring/ring.h"
#include "uring/splice_relay.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

// kTickNs paces HBONE keepalive, handshake deadlines and pool eviction.
constexpr int64_t kTickNs = kNanosPerSecond;
// kReadBufferGroup is the provided-buffer group id of a worker's lent read buffers.
constexpr uint16_t kReadBufferGroup = 1;
// kDnsBufferGroup is the group of the receive buffers its pods' DNS UDP sockets share, and
// kDnsBufferCount their number: queries are small and answered at once, so a few dozen serve
// every pod of a worker (a burst beyond them waits in the socket, as a datagram queue does).
constexpr uint16_t kDnsBufferGroup = 2;
constexpr uint32_t kDnsBufferCount = 64;
// kTrimDropConnections is how far a worker's open connections must fall below their peak before
// it hands freed heap memory back to the kernel: glibc keeps freed chunks in the middle of its
// per-thread arenas (only the top of a heap is trimmed on free), so after a burst of closes the
// process would stay at its peak RSS. One trim walks the free chunks of every arena (measured
// 3.5 ms after 10,000 tunnels closed, 0.3 ms for a follow-up), paid once per large drop, never
// per connection.
constexpr uint32_t kTrimDropConnections = 1024;
// kTrimFollowups is how many ticks after such a drop trim again: what goes after the
// connections (links left without streams, closed on the next tick) is freed then.
constexpr uint32_t kTrimFollowups = 2;
// kTrimFreedBytes is how much the heap's free-but-held memory (mallinfo2's `fordblks`) must grow
// above its lowest point since the last trim before worker 0 trims too: a few connections can
// free a lot (100 tunnels whose slow readers had each buffered megabytes), with no drop in the
// connection count to see. Worker 0 alone asks, once per tick: mallinfo2 walks every arena's
// free lists under its lock, and one trim covers every arena.
constexpr size_t kTrimFreedBytes = size_t{4} << 20;

}  // namespace

struct Worker::Impl {
    Impl(int index_, WorkerOptions options_, WorkerShared shared_)
        : index(index_), options(std::move(options_)), shared(shared_) {}

    // --- control-thread side -----------------------------------------------------------------
    int index;
    WorkerOptions options;
    WorkerShared shared;
    std::thread thread;
    UniqueFd wake_fd;
    std::atomic<bool> drain_requested{false};
    std::atomic<bool> force_requested{false};
    std::atomic<bool> stop_requested{false};
    std::atomic<uint32_t> open_connections{0};
    std::atomic<const state::Snapshot*> reconciled{nullptr};
    std::atomic<uint64_t> status_requested{0};
    std::atomic<uint64_t> status_served{0};
    mutable std::mutex status_mutex;  // Guards `status`; taken once per reconcile, never per I/O.
    std::vector<PodStatus> status;
    const state::Snapshot* status_snapshot = nullptr;  // What `status` answers for.

    // --- worker-thread side ------------------------------------------------------------------
    std::unique_ptr<uring::Ring> ring;
    std::unique_ptr<uring::RelayEngine> relays;
    std::unique_ptr<uring::BufferRing> read_buffers;
    std::unique_ptr<uring::BufferRing> dns_buffers;
    std::unique_ptr<WorkerContext> context;
    std::unique_ptr<Pods> pods;
    uring::Completion wake_poll;
    uring::Timer tick_timer;
    bool forced = false;
    uint32_t trim_peak_connections = 0;  // Most open connections seen since the last trim.
    uint32_t trim_followups = 0;         // Trims still due on the next ticks.
    size_t trim_free_low = SIZE_MAX;     // Worker 0: least free heap seen since the last trim.
    size_t published_closing = 0;        // Removed pods in the last published status.
    uint64_t sq_waits_exported = 0;      // The ring's sq waits already in the metrics shard.

    WorkerContext& context_ref() { return *context; }

    void run(std::promise<Result<void>>& started);
    // on_wake acts on what the control thread asked for.
    void on_wake();
    void on_tick();
    // maybe_trim returns freed heap memory to the kernel once the open connections fell far
    // below their peak since the last trim, or the heap's free memory grew by kTrimFreedBytes
    // (glibc keeps it otherwise).
    void maybe_trim();
    // reconcile takes the latest snapshot, if it changed, and brings the pods in line.
    void reconcile();
    void publish_status(bool with_connections = false);

    bool finished() const { return stop_requested.load() && ring->in_flight() == 0; }
};

namespace {

void on_wake_cb(uring::Completion& completion, int32_t, uint32_t flags) {
    auto& impl = *static_cast<Worker::Impl*>(completion.context);
    uint64_t value;
    while (::read(impl.wake_fd.get(), &value, sizeof value) == sizeof value) {
    }
    if (!(flags & IORING_CQE_F_MORE) && !impl.stop_requested.load()) {
        impl.ring->poll_multishot(impl.wake_poll, impl.wake_fd.get(), POLLIN);
    }
    impl.on_wake();
    impl.context->settle();
}

void on_tick_cb(uring::Completion& completion, int32_t, uint32_t) {
    auto& impl = *static_cast<Worker::Impl*>(completion.context);
    impl.on_tick();
    impl.context->settle();
}

}  // namespace

void Worker::Impl::run(std::promise<Result<void>>& started) {
    uring::RingOptions ring_options;
    ring_options.sq_entries = options.ring_entries;
    ring_options.refused_room_submits_for_testing = options.ring_refused_submits_for_testing;
    auto created = uring::Ring::create(ring_options);
    if (!created) {
        started.set_value(fail(created.error()));
        return;
    }
    ring = std::move(*created);
    uring::RelayOptions relay_options;
    relay_options.relays_max = options.relays_max;
    relay_options.connect_timeout_ns = options.connect_timeout_ns;
    if (options.tunnel_read_buffers != 0) {
        auto buffers = uring::BufferRing::create(
                *ring, kReadBufferGroup, options.tunnel_read_buffers, uint32_t(kLentReadBytes));
        if (buffers) {
            read_buffers = std::move(*buffers);
        } else {
            // Tunnels read into their own buffers instead: correct, 4 KiB more per idle tunnel.
            log::warn("proxy", "no provided-buffer ring for tunnel reads",
                      {log::Field::str("error", std::string(to_string(buffers.error().code)))});
        }
    }
    context = std::make_unique<WorkerContext>(index, options, shared, *ring, read_buffers.get(),
                                              *shared.sockets, open_connections);
    if (shared.dns != nullptr) {
        auto buffers = uring::BufferRing::create(*ring, kDnsBufferGroup, kDnsBufferCount,
                                                 uint32_t(dns::udp_buffer_bytes(*shared.dns)));
        if (buffers) {
            dns_buffers = std::move(*buffers);
            context->dns_buffers = dns_buffers.get();
        }
        // Without them each DNS UDP socket keeps a receive with its own buffer: correct, 4 KiB
        // more per socket.
    }
    relays = std::make_unique<uring::RelayEngine>(*ring, relay_options, &on_relay_done,
                                                  context.get());
    pods = std::make_unique<Pods>(*context);
    context->relays = relays.get();
    context->pods = pods.get();
    wake_poll.callback = &on_wake_cb;
    wake_poll.context = this;
    ring->poll_multishot(wake_poll, wake_fd.get(), POLLIN);
    tick_timer.completion.callback = &on_tick_cb;
    tick_timer.completion.context = this;
    ring->arm_timer(tick_timer, kTickNs);
    started.set_value(ok());

    on_wake();
    context->settle();
    while (!finished()) {
        ring->run(-1);
        // Relay ends are reported from inside the relay engine's completions: the pods they
        // emptied are released here, once per batch.
        context->settle();
    }
    // Every operation has completed; the units, the relay engine, the buffers and the ring may
    // go, in that order.
    pods.reset();
    relays.reset();
    context.reset();
    dns_buffers.reset();
    read_buffers.reset();
    ring.reset();
}

void Worker::Impl::on_tick() {
    // A pod's listeners that came up on a retry may let readiness pass; a removed pod stays in
    // the status (`draining`) until it is freed. Either way, publish.
    bool listeners_retried = pods->tick(monotonic_ns());
    if (listeners_retried || pods->closing_count() != published_closing) {
        publish_status();
    }
    context->limits.tick();
    context->limits.refresh_fd_ceiling();  // prlimit may have changed it.
    uint64_t sq_waits = ring->sq_waits_total();
    context->counters.sq_waits(sq_waits - sq_waits_exported);
    sq_waits_exported = sq_waits;
    maybe_trim();
    if (!stop_requested.load()) {
        ring->arm_timer(tick_timer, kTickNs);
    }
}

void Worker::Impl::maybe_trim() {
    // Links count too: a flood of handshakes that never became connections (ClientHello only)
    // leaves the same freed memory behind.
    uint32_t connections = open_connections.load(std::memory_order_relaxed);
    uint32_t open = connections + context->limits.links();
    trim_peak_connections =
            std::max(trim_peak_connections, connections + context->limits.take_links_peak());
    bool dropped = trim_peak_connections - open >= kTrimDropConnections &&
                   open <= trim_peak_connections / 2;
    bool freed = false;
    size_t free_held = 0;
    if (index == 0) {
        free_held = ::mallinfo2().fordblks;
        trim_free_low = std::min(trim_free_low, free_held);
        freed = free_held - trim_free_low >= kTrimFreedBytes;
    }
    if (!dropped && !freed && trim_followups == 0) {
        return;
    }
    trim_free_low = free_held;
    trim_followups = dropped ? kTrimFollowups : trim_followups - (trim_followups > 0 ? 1 : 0);
    uint32_t peak = std::exchange(trim_peak_connections, open);
    int64_t start_ns = monotonic_ns();
    ::malloc_trim(0);
    log::debug("proxy", "returned freed memory to the kernel",
               {log::Field::num("connections.peak", peak), log::Field::num("connections", open),
                log::Field::num("heap.free", free_held),
                log::Field::num("duration.us", uint64_t(monotonic_ns() - start_ns) / 1000)});
}

void Worker::Impl::on_wake() {
    if (stop_requested.load()) {
        // Stop implies force: end everything, then let the loop run dry.
        force_requested.store(true);
        drain_requested.store(true);
    }
    if (drain_requested.load() && !context->draining) {
        context->draining = true;
        pods->drain();
    }
    if (force_requested.load() && !forced) {
        forced = true;
        pods->end_all(CloseCause::of(CloseReason::drained));
    }
    if (stop_requested.load()) {
        ring->cancel(wake_poll);
        ring->cancel_timer(tick_timer);
        // Pods without listeners or connections go at once; the rest follow as their
        // completions arrive.
        pods->close_all();
        return;
    }
    reconcile();
    uint64_t requested = status_requested.load();
    if (status_served.load() != requested) {
        publish_status(true);
        status_served.store(requested);
    }
}

void Worker::Impl::reconcile() {
    std::shared_ptr<const state::Snapshot> latest = shared.snapshots->load();
    if (latest == nullptr || latest == context->snapshot) {
        // The control thread also wakes the workers when it published new TLS contexts: a
        // connection waiting for its pod's certificate may go on now.
        if (context->snapshot != nullptr) {
            pods->resume_waits();
        }
        publish_status();
        return;
    }
    context->snapshot = std::move(latest);
    pods->reconcile();
    reconciled.store(context->snapshot.get());
    publish_status();
}

void Worker::Impl::publish_status(bool with_connections) {
    std::vector<PodStatus> fresh = pods->status(with_connections);
    published_closing = pods->closing_count();
    {
        std::lock_guard lock(status_mutex);
        status = std::move(fresh);
        status_snapshot = context->snapshot.get();
    }
    if (shared.status_fd >= 0) {
        uint64_t one = 1;
        (void)!::write(shared.status_fd, &one, sizeof one);
    }
}

// --- Worker (control-thread API) ----------------------------------------------------------------

Worker::Worker(int index, WorkerOptions options, WorkerShared shared)
    : impl_(std::make_unique<Impl>(index, std::move(options), shared)) {}

Worker::~Worker() {
    if (impl_->thread.joinable()) {
        stop();
    }
}

Result<void> Worker::start() {
    ZT_CHECK(impl_->shared.sockets != nullptr);
    impl_->wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!impl_->wake_fd) {
        return fail_errno(errno);
    }
    std::promise<Result<void>> started;
    auto result = started.get_future();
    impl_->thread = std::thread([this, &started] { impl_->run(started); });
    Result<void> outcome = result.get();
    if (!outcome) {
        impl_->thread.join();
    }
    return outcome;
}

void Worker::wake() {
    uint64_t one = 1;
    (void)!::write(impl_->wake_fd.get(), &one, sizeof one);
}

void Worker::begin_drain() {
    impl_->drain_requested.store(true);
    wake();
}

void Worker::force_close() {
    impl_->force_requested.store(true);
    wake();
}

void Worker::stop() {
    impl_->stop_requested.store(true);
    wake();
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

uint32_t Worker::connections() const {
    return impl_->open_connections.load(std::memory_order_relaxed);
}

const state::Snapshot* Worker::reconciled_snapshot() const {
    return impl_->reconciled.load();
}

bool Worker::refresh_status(int64_t timeout_ns) {
    uint64_t ticket = impl_->status_requested.fetch_add(1) + 1;
    wake();
    int64_t deadline = monotonic_ns() + timeout_ns;
    while (impl_->status_served.load() < ticket) {
        if (monotonic_ns() >= deadline) {
            return false;
        }
        ::usleep(500);
    }
    return true;
}

const state::Snapshot* Worker::published_snapshot() const {
    std::lock_guard lock(impl_->status_mutex);
    return impl_->status_snapshot;
}

std::vector<PodStatus> Worker::pod_status() const {
    std::lock_guard lock(impl_->status_mutex);
    return impl_->status;
}

}  // namespace zt::proxy
