// ring.cc sets up one io_uring per thread, probes what the kernel offers, queues SQEs for
// caller-owned completions and dispatches CQEs in batches. It knows nothing of connections or
// protocols, never allocates per operation and never touches a completion after handing it to
// its callback.

#include "uring/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "zt/log.h"

namespace zt::uring {

namespace {

// Messages posted by `msg_ring` carry this tag in the low bit of `user_data`: their target
// completion was never submitted on the receiving ring, so `in_kernel` must not be touched.
constexpr uint64_t kMessageTag = 1;

// The opcodes without which the project cannot run at all.
constexpr uint8_t kRequiredOpcodes[] = {
        IORING_OP_NOP,     IORING_OP_ACCEPT,  IORING_OP_CONNECT,        IORING_OP_RECV,
        IORING_OP_SEND,    IORING_OP_SPLICE,  IORING_OP_POLL_ADD,       IORING_OP_SHUTDOWN,
        IORING_OP_CLOSE,   IORING_OP_TIMEOUT, IORING_OP_TIMEOUT_REMOVE, IORING_OP_ASYNC_CANCEL,
        IORING_OP_SENDMSG,
};

int read_io_uring_disabled() {
    int fd = ::open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    char text[16] = {};
    ssize_t n = ::read(fd, text, sizeof(text) - 1);
    ::close(fd);
    if (n <= 0) {
        return -1;
    }
    return text[0] >= '0' && text[0] <= '9' ? text[0] - '0' : -1;
}

bool seccomp_filtered() {
    FILE* status = std::fopen("/proc/self/status", "re");
    if (status == nullptr) {
        return false;
    }
    char line[256];
    bool filtered = false;
    while (std::fgets(line, sizeof(line), status) != nullptr) {
        if (std::strncmp(line, "Seccomp:", 8) == 0) {
            filtered = std::strchr(line + 8, '2') != nullptr;
            break;
        }
    }
    std::fclose(status);
    return filtered;
}

// setup_ring tries the setup flags from fastest to plainest. SINGLE_ISSUER + DEFER_TASKRUN
// (6.1) run completion work only when this thread enters the kernel, which is what a
// one-ring-per-thread loop wants; COOP_TASKRUN (5.19) avoids IPIs; older kernels get neither.
int setup_ring(io_uring& ring, const RingOptions& options, uint32_t& flags_used) {
    const uint32_t cq_entries =
            options.cq_entries != 0 ? options.cq_entries : 4 * options.sq_entries;
    const uint32_t attempts[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
            0,
    };
    int rc = -EINVAL;
    for (uint32_t flags : attempts) {
        if (options.legacy_kernel && flags != 0) {
            continue;
        }
        io_uring_params params{};
        params.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        params.cq_entries = cq_entries;
        rc = io_uring_queue_init_params(options.sq_entries, &ring, &params);
        if (rc == 0) {
            flags_used = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
            return 0;
        }
        if (rc != -EINVAL) {
            return rc;  // Refused outright: no plainer flags will help.
        }
    }
    return rc;
}

}  // namespace

Errc classify_setup_errno(int err, int io_uring_disabled, bool seccomp_filtered_now) {
    if (err == EPERM) {
        if (io_uring_disabled >= 1) {
            return Errc::uring_sysctl;
        }
        return seccomp_filtered_now ? Errc::uring_seccomp : Errc::uring_unavailable;
    }
    if (err == ENOSYS) {
        // Some seccomp profiles answer ENOSYS for syscalls they do not know.
        return seccomp_filtered_now ? Errc::uring_seccomp : Errc::uring_too_old;
    }
    return Errc::uring_unavailable;
}

std::string_view setup_hint(Errc code) {
    switch (code) {
        case Errc::uring_sysctl:
            return "io_uring is disabled by sysctl kernel.io_uring_disabled (set it to 0, or to 1 "
                   "and add this user to kernel.io_uring_group)";
        case Errc::uring_seccomp:
            return "a seccomp profile blocks io_uring (container runtimes' RuntimeDefault does); "
                   "run with a profile that allows io_uring_setup/io_uring_enter/"
                   "io_uring_register";
        case Errc::uring_too_old:
            return "this kernel has no io_uring or lacks a feature it needs (Linux >= 5.19 is "
                   "required, 6.1 or newer recommended)";
        case Errc::uring_opcode:
            return "this kernel lacks an io_uring opcode ztunnel needs (Linux >= 5.19 required)";
        case Errc::uring_unavailable:
            return "io_uring_setup failed";
        default:
            return "";
    }
}

std::string_view opcode_name(uint8_t opcode) {
    switch (opcode) {
        case IORING_OP_NOP:
            return "nop";
        case IORING_OP_ACCEPT:
            return "accept";
        case IORING_OP_CONNECT:
            return "connect";
        case IORING_OP_RECV:
            return "recv";
        case IORING_OP_SEND:
            return "send";
        case IORING_OP_SENDMSG:
            return "sendmsg";
        case IORING_OP_RECVMSG:
            return "recvmsg";
        case IORING_OP_SPLICE:
            return "splice";
        case IORING_OP_POLL_ADD:
            return "poll_add";
        case IORING_OP_SHUTDOWN:
            return "shutdown";
        case IORING_OP_CLOSE:
            return "close";
        case IORING_OP_TIMEOUT:
            return "timeout";
        case IORING_OP_TIMEOUT_REMOVE:
            return "timeout_remove";
        case IORING_OP_ASYNC_CANCEL:
            return "async_cancel";
        case IORING_OP_MSG_RING:
            return "msg_ring";
        case IORING_OP_SOCKET:
            return "socket";
        default:
            return "other";
    }
}

Result<std::unique_ptr<Ring>> Ring::create(const RingOptions& options) {
    auto ring = std::make_unique<Ring>(PrivateTag{});
    uint32_t flags_used = 0;
    int rc = setup_ring(ring->ring_, options, flags_used);
    if (rc < 0) {
        Errc code = classify_setup_errno(-rc, read_io_uring_disabled(), seccomp_filtered());
        log::error("uring", "cannot create an io_uring",
                   {log::Field::str("cause", to_string(code)),
                    log::Field::str("error", std::strerror(-rc)),
                    log::Field::str("hint", setup_hint(code))});
        return fail(code, -rc);
    }
    ring->initialized_ = true;
    ring->features_.setup_flags = flags_used;
    ring->refused_room_submits_ = options.refused_room_submits_for_testing;

    // The probe answer has a flexible array of 256 ops; give it room on the stack.
    alignas(io_uring_probe)
            uint8_t probe_storage[sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op)] = {};
    auto* probe = reinterpret_cast<io_uring_probe*>(probe_storage);
    rc = io_uring_register_probe(&ring->ring_, probe, 256);
    if (rc < 0) {
        log::error("uring", "io_uring opcode probe failed (kernel older than 5.6)",
                   {log::Field::str("error", std::strerror(-rc)),
                    log::Field::str("hint", setup_hint(Errc::uring_too_old))});
        return fail(Errc::uring_too_old, -rc);
    }
    for (uint8_t opcode : kRequiredOpcodes) {
        if (!io_uring_opcode_supported(probe, opcode)) {
            log::error("uring", "the kernel lacks a required io_uring opcode",
                       {log::Field::str("opcode", opcode_name(opcode)),
                        log::Field::str("hint", setup_hint(Errc::uring_opcode))});
            return fail(Errc::uring_opcode, opcode);
        }
    }
    // Features without an opcode of their own arrived with ones that have: multishot accept in
    // 5.19 with IORING_OP_SOCKET, multishot poll in 5.13 (IORING_OP_MKDIRAT came in 5.15, a
    // conservative stand-in).
    RingFeatures& features = ring->features_;
    features.fast_poll = (ring->ring_.features & IORING_FEAT_FAST_POLL) != 0;
    features.ext_arg = (ring->ring_.features & IORING_FEAT_EXT_ARG) != 0;
    features.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    features.multishot_accept = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
    features.multishot_poll = io_uring_opcode_supported(probe, IORING_OP_MKDIRAT);
    if (options.legacy_kernel) {
        features.msg_ring = false;
        features.multishot_accept = false;
        features.multishot_poll = false;
    }
    return ring;
}

Ring::~Ring() {
    ZT_ASSERT(in_flight_ == 0);
    if (initialized_) {
        io_uring_queue_exit(&ring_);
    }
}

io_uring_sqe* Ring::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) [[likely]] {
        return sqe;
    }
    // SQ full: hand what is queued to the kernel and take the slot that frees up.
    ++sqe_full_total_;
    (void)submit_for_room();
    sqe = io_uring_get_sqe(&ring_);
    return sqe != nullptr ? sqe : wait_for_sqe();
}

// wait_for_sqe is the rare path where a submit freed no slot: the kernel refused the queued
// entries for now (-EAGAIN when it cannot allocate, -EBUSY, -EINTR). Aborting the worker would
// drop every connection it owns; instead wait for completions (they release kernel resources and
// CQ room), set them aside for `run`, and submit again until a slot is free.
io_uring_sqe* Ring::wait_for_sqe() {
    for (;;) {
        ++sq_waits_total_;
        if (sq_waits_total_ == 1 || sq_waits_total_ % 1024 == 0) {
            log::warn("uring", "submission queue stays full; waiting for completions",
                      {log::Field::num("waits", sq_waits_total_)});
        }
        set_aside_completions();
        (void)submit_for_room();
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe != nullptr) {
            return sqe;
        }
    }
}

int Ring::submit_for_room() {
    if (refused_room_submits_ > 0) {
        --refused_room_submits_;
        return -EAGAIN;
    }
    return io_uring_submit(&ring_);
}

// set_aside_completions waits up to 1 ms for completions (entering the kernel, which also runs
// deferred task work) and copies every available CQE into `set_aside_`, advancing the CQ.
void Ring::set_aside_completions() {
    __kernel_timespec ts{};
    ts.tv_nsec = 1'000'000;
    io_uring_cqe* unused = nullptr;
    (void)io_uring_wait_cqes(&ring_, &unused, 1, &ts, nullptr);
    io_uring_cqe* cqe = nullptr;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        set_aside_.push_back(*cqe);
        ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
}

uint32_t Ring::dispatch_set_aside() {
    uint32_t dispatched = 0;
    while (!set_aside_.empty()) {
        // Callbacks may submit, and a submit may set more aside: take the batch out first.
        std::vector<io_uring_cqe> batch;
        batch.swap(set_aside_);
        for (const io_uring_cqe& cqe : batch) {
            dispatch(cqe);
        }
        dispatched += uint32_t(batch.size());
    }
    return dispatched;
}

io_uring_sqe* Ring::prepare(Completion& completion) {
    ZT_ASSERT(!completion.in_kernel);
    ZT_ASSERT(completion.callback != nullptr);
    io_uring_sqe* sqe = get_sqe();
    completion.in_kernel = true;
    ++in_flight_;
    return sqe;
}

void Ring::accept_multishot(Completion& completion, int fd) {
    io_uring_sqe* sqe = prepare(completion);
    if (features_.multishot_accept) {
        io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
        io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::connect(Completion& completion, int fd, const sockaddr* address, socklen_t length) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_connect(sqe, fd, address, length);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::recv(Completion& completion, int fd, std::span<uint8_t> buffer, int flags) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_recv(sqe, fd, buffer.data(), buffer.size(), flags);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::recv_select(Completion& completion, int fd, uint16_t buffer_group) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::recv_multishot(Completion& completion, int fd, uint16_t buffer_group) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data(sqe, &completion);
}

Result<void> Ring::register_buffer_ring(void* ring_memory, uint32_t entries, uint16_t group) {
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<uint64_t>(ring_memory);
    registration.ring_entries = entries;
    registration.bgid = group;
    int rc = io_uring_register_buf_ring(&ring_, &registration, 0);
    if (rc < 0) {
        return fail_errno(-rc);
    }
    return ok();
}

Result<void> Ring::unregister_buffer_ring(uint16_t group) {
    int rc = io_uring_unregister_buf_ring(&ring_, group);
    if (rc < 0) {
        return fail_errno(-rc);
    }
    return ok();
}

void Ring::send(Completion& completion, int fd, std::span<const uint8_t> buffer, int flags) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_send(sqe, fd, buffer.data(), buffer.size(), flags);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::sendmsg(Completion& completion, int fd, const msghdr& message, int flags) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_sendmsg(sqe, fd, &message, unsigned(flags));
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::recvmsg(Completion& completion, int fd, msghdr& message, int flags) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_recvmsg(sqe, fd, &message, unsigned(flags));
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::recvmsg_multishot(Completion& completion, int fd, msghdr& message,
                             uint16_t buffer_group) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_recvmsg_multishot(sqe, fd, &message, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data(sqe, &completion);
}

std::optional<RecvmsgParts> parse_recvmsg(std::span<uint8_t> buffer, int32_t length,
                                          msghdr& message) {
    if (length < 0 || size_t(length) > buffer.size()) {
        return std::nullopt;
    }
    io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buffer.data(), length, &message);
    if (out == nullptr) {
        return std::nullopt;
    }
    RecvmsgParts parts;
    auto* name = static_cast<const uint8_t*>(io_uring_recvmsg_name(out));
    parts.name =
            std::span<const uint8_t>(name, std::min<size_t>(out->namelen, message.msg_namelen));
    auto* payload = static_cast<const uint8_t*>(io_uring_recvmsg_payload(out, &message));
    parts.payload = std::span<const uint8_t>(
            payload, io_uring_recvmsg_payload_length(out, length, &message));
    parts.truncated = (out->flags & MSG_TRUNC) != 0;
    return parts;
}

void Ring::splice(Completion& completion, int fd_in, int fd_out, uint32_t length, uint32_t flags) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_splice(sqe, fd_in, -1, fd_out, -1, length, flags);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::poll_multishot(Completion& completion, int fd, uint32_t events) {
    io_uring_sqe* sqe = prepare(completion);
    if (features_.multishot_poll) {
        io_uring_prep_poll_multishot(sqe, fd, events);
    } else {
        io_uring_prep_poll_add(sqe, fd, events);
    }
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::poll(Completion& completion, int fd, uint32_t events) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::shutdown(Completion& completion, int fd, int how) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_shutdown(sqe, fd, how);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::close(Completion& completion, int fd) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::nop(Completion& completion) {
    io_uring_sqe* sqe = prepare(completion);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, &completion);
}

void Ring::arm_timer(Timer& timer, int64_t delay_ns) {
    ZT_ASSERT(delay_ns >= 0);
    timer.spec.tv_sec = delay_ns / 1'000'000'000;
    timer.spec.tv_nsec = delay_ns % 1'000'000'000;
    io_uring_sqe* sqe = prepare(timer.completion);
    io_uring_prep_timeout(sqe, &timer.spec, 0, 0);
    io_uring_sqe_set_data(sqe, &timer.completion);
}

void Ring::cancel(Completion& target) {
    if (!target.in_kernel) {
        return;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel(sqe, &target, 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::cancel_timer(Timer& timer) {
    if (!timer.completion.in_kernel) {
        return;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_timeout_remove(sqe, reinterpret_cast<uint64_t>(&timer.completion), 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::msg_ring(int target_ring_fd, Completion& target, int32_t value) {
    ZT_ASSERT(features_.msg_ring);
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_msg_ring(sqe, target_ring_fd, uint32_t(value),
                           reinterpret_cast<uint64_t>(&target) | kMessageTag, 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::submit() {
    io_uring_submit(&ring_);
}

uint32_t Ring::run(int64_t timeout_ns) {
    // Completions a submitter set aside are older than anything in the CQ: dispatch them first,
    // and do not sleep while they wait.
    uint32_t dispatched = dispatch_set_aside();
    if (dispatched > 0) {
        timeout_ns = 0;
    }
    if (timeout_ns < 0) {
        io_uring_submit_and_wait(&ring_, 1);
    } else if (timeout_ns == 0) {
        // Also enter the kernel when nothing is queued: with DEFER_TASKRUN completions are only
        // posted while this thread is inside io_uring_enter.
        io_uring_submit(&ring_);
        io_uring_get_events(&ring_);
    } else {
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ns / 1'000'000'000;
        ts.tv_nsec = timeout_ns % 1'000'000'000;
        io_uring_cqe* unused = nullptr;
        io_uring_submit_and_wait_timeout(&ring_, &unused, 1, &ts, nullptr);
    }
    // Copy a batch out, release the CQ slots with one advance, then dispatch: callbacks may
    // submit more work, and the kernel can post into the freed slots meanwhile.
    constexpr unsigned kBatch = 64;
    for (;;) {
        io_uring_cqe* cqes[kBatch];
        unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
        if (n == 0) {
            break;
        }
        io_uring_cqe copies[kBatch];
        for (unsigned i = 0; i < n; ++i) {
            copies[i] = *cqes[i];
        }
        io_uring_cq_advance(&ring_, n);
        for (unsigned i = 0; i < n; ++i) {
            dispatch(copies[i]);
        }
        dispatched += n;
        if (n < kBatch) {
            break;
        }
    }
    return dispatched + dispatch_set_aside();
}

void Ring::dispatch(const io_uring_cqe& cqe) {
    if (cqe.user_data == 0 || cqe.user_data == LIBURING_UDATA_TIMEOUT) {
        // A fire-and-forget cancel or message that failed (its target reports itself), or
        // liburing's own wait timeout on kernels without IORING_FEAT_EXT_ARG.
        return;
    }
    if ((cqe.user_data & kMessageTag) != 0) {
        auto* target = reinterpret_cast<Completion*>(cqe.user_data & ~kMessageTag);
        target->callback(*target, cqe.res, cqe.flags);
        return;
    }
    auto* completion = reinterpret_cast<Completion*>(cqe.user_data);
    ZT_ASSERT(completion->in_kernel);
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        completion->in_kernel = false;
        ZT_ASSERT(in_flight_ > 0);
        --in_flight_;
    }
    completion->callback(*completion, cqe.res, cqe.flags);
}

}  // namespace zt::uring
