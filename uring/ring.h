#pragma once

// `Ring` owns one io_uring and runs its completion loop. Operations are described by
// caller-owned, intrusive `Completion`s (TigerBeetle's `IO.Completion`): `user_data` is the
// completion's address, the ring never allocates per operation and never interprets `context`.
// One ring belongs to one thread for its whole life (it is created with SINGLE_ISSUER where the
// kernel has it); other threads reach it only through `msg_ring`.

#include <linux/time_types.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <liburing.h>

#include "zt/result.h"

namespace zt::uring {

// Completion is one operation's slot: what to call when its CQE arrives. The owner embeds it
// (usually in a connection) and must keep it alive and unmoved while `in_kernel` is true.
// `in_kernel` is set by every submitter and cleared by the ring just before the callback of the
// final CQE (a multishot CQE carrying IORING_CQE_F_MORE leaves it set). Destroying a completion
// that is still in the kernel is a bug and asserts.
struct Completion {
    // Callback runs on the ring's thread with the CQE's `res` (a byte count, an fd, 0, or a
    // negative errno) and `cqe_flags`. It may submit again, including on `self`.
    using Callback = void (*)(Completion& self, int32_t res, uint32_t cqe_flags);

    Callback callback = nullptr;
    void* context = nullptr;  // The owner; the ring never reads it.
    bool in_kernel = false;

    Completion() = default;

    Completion(Callback cb, void* ctx) : callback(cb), context(ctx) {}

    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;

    ~Completion() { ZT_ASSERT(!in_kernel); }
};

// Timer is a completion plus the timespec an IORING_OP_TIMEOUT reads at submission time. The
// callback sees `res == -ETIME` when the timer fired and `-ECANCELED` when it was cancelled.
struct Timer {
    Completion completion;
    __kernel_timespec spec{};
};

// RingOptions sizes a ring. `cq_entries` defaults to 4x `sq_entries` so that bursts of
// multishot CQEs rarely hit the overflow list.
struct RingOptions {
    uint32_t sq_entries = 256;
    uint32_t cq_entries = 0;  // 0 means 4 * sq_entries.
    // legacy_kernel makes the ring behave as on the oldest kernel it supports: plain setup
    // flags, one-shot accept and poll, no msg_ring. For tests of the fallback paths.
    bool legacy_kernel = false;
    // refused_room_submits_for_testing makes the next N submits that `Ring` makes to free a full
    // submission queue fail with -EAGAIN without entering the kernel, as a kernel short of
    // memory answers them. For tests of that path only.
    uint32_t refused_room_submits_for_testing = 0;
};

// RingFeatures is what the start-up probe found. Required opcodes are not listed: without one
// of them `Ring::create` fails. Each optional feature has a fallback the ring or its users take.
struct RingFeatures {
    uint32_t setup_flags = 0;       // The IORING_SETUP_* flags the ring was created with.
    bool fast_poll = false;         // recv/send/connect are poll-driven, not punted to io-wq.
    bool multishot_accept = false;  // Else accept re-arms after every connection.
    bool multishot_poll = false;    // Else a poll re-arms after every event.
    bool msg_ring = false;          // Else another thread must wake this ring some other way.
    bool ext_arg = false;           // A wait timeout without a timeout SQE.
};

// classify_setup_errno maps the errno of a failed io_uring_setup to the cause an operator can
// act on. `io_uring_disabled` is /proc/sys/kernel/io_uring_disabled (-1 when unreadable) and
// `seccomp_filtered` says whether /proc/self/status reports a seccomp filter (mode 2). Pure, so
// each cause is testable without the environment that produces it.
Errc classify_setup_errno(int err, int io_uring_disabled, bool seccomp_filtered);

// setup_hint returns an operator hint for the failure codes `Ring::create` returns, or "" for
// other codes.
std::string_view setup_hint(Errc code);

// opcode_name names an IORING_OP_* value for messages.
std::string_view opcode_name(uint8_t opcode);

// RecvmsgParts is one datagram of a multishot recvmsg, inside its provided buffer.
struct RecvmsgParts {
    std::span<const uint8_t> name;     // The sender's address (a sockaddr), maybe cut short.
    std::span<const uint8_t> payload;  // The datagram, cut to the buffer when `truncated`.
    bool truncated = false;            // MSG_TRUNC: the datagram did not fit the buffer.
};

// parse_recvmsg splits the first `length` bytes (a CQE's `res`) of a multishot recvmsg buffer
// laid out for `message`; std::nullopt when they are too short to hold its header and address.
std::optional<RecvmsgParts> parse_recvmsg(std::span<uint8_t> buffer, int32_t length,
                                          msghdr& message);

class Ring {
    struct PrivateTag {};

public:
    // Ring is constructed only by `create` (the tag keeps it private while letting
    // std::make_unique call it).
    explicit Ring(PrivateTag) {}

    // create sets up a ring, trying the fastest setup flags first and falling back to plainer
    // ones when the kernel refuses them, then probes the opcodes the project needs. It fails with
    // `Errc::uring_sysctl`, `uring_seccomp`, `uring_too_old` (ENOSYS), `uring_opcode` (a required
    // opcode is missing) or `uring_unavailable` (anything else, errno attached), and logs the
    // cause with `setup_hint`. The ring must then be used only by the calling thread.
    static Result<std::unique_ptr<Ring>> create(const RingOptions& options = {});

    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // ~Ring asserts that no operation is in flight: every owner must have cancelled its
    // operations and waited for their completions first (`run` until `in_flight() == 0`).
    ~Ring();

    const RingFeatures& features() const { return features_; }

    // fd is the ring's file descriptor, the address `msg_ring` senders use.
    int fd() const { return ring_.ring_fd; }

    // in_flight counts submitted operations whose final CQE has not yet been dispatched
    // (fire-and-forget cancels are not counted).
    uint32_t in_flight() const { return in_flight_; }

    // Submitters. Each queues one SQE (submitted by the next `run` or `submit`) whose completion
    // is `completion`; `completion` must not already be in the kernel. Memory the operation reads
    // or writes (buffers, addresses) must stay valid and untouched until the callback has run.

    // accept_multishot accepts connections on listening `fd` until cancelled or failed; each
    // CQE's `res` is a new fd (created with SOCK_NONBLOCK | SOCK_CLOEXEC) or a negative errno.
    // When the kernel lacks multishot accept this is a one-shot accept: the caller re-arms
    // whenever a CQE arrives without IORING_CQE_F_MORE (which it must do anyway).
    void accept_multishot(Completion& completion, int fd);
    void connect(Completion& completion, int fd, const sockaddr* address, socklen_t length);
    void recv(Completion& completion, int fd, std::span<uint8_t> buffer, int flags = 0);

    // recv_select receives into a buffer the kernel picks from provided-buffer group
    // `buffer_group` (see `BufferRing`): the CQE carries IORING_CQE_F_BUFFER and the buffer id
    // in `cqe_flags >> IORING_CQE_BUFFER_SHIFT`; -ENOBUFS means the group is empty
    // (back-pressure, not failure). `recv_multishot` keeps receiving until it fails or is
    // cancelled, one CQE per chunk, each with its own buffer.
    void recv_select(Completion& completion, int fd, uint16_t buffer_group);
    void recv_multishot(Completion& completion, int fd, uint16_t buffer_group);
    void send(Completion& completion, int fd, std::span<const uint8_t> buffer, int flags = 0);

    // sendmsg sends the gathered buffers of `message` (iovecs, no control data) in one
    // operation. `message`, its iovec array and the bytes they point to must stay valid and
    // unchanged until the callback has run.
    void sendmsg(Completion& completion, int fd, const msghdr& message, int flags = 0);

    // recvmsg receives one message into the buffers of `message` (iovecs; `msg_name` gets the
    // sender's address of a datagram socket, `msg_namelen` its length, `msg_flags` MSG_TRUNC
    // when the datagram was larger than the buffers). `message`, its iovec array, the buffers
    // and the address storage must stay valid and untouched until the callback has run.
    void recvmsg(Completion& completion, int fd, msghdr& message, int flags = 0);

    // recvmsg_multishot receives datagrams on `fd` until cancelled or failed, one CQE each, into
    // buffers the kernel picks from provided-buffer group `buffer_group` (Linux 6.0). Each
    // buffer starts with an `io_uring_recvmsg_out` header, then the sender's address, then the
    // payload: read them with `parse_recvmsg`. Only `message.msg_namelen` (the room for the
    // address) and `msg_controllen` are read from `message`, which must stay valid and untouched
    // until the final CQE (one without IORING_CQE_F_MORE). -ENOBUFS ends it when the group ran
    // dry; -EINVAL means the kernel lacks it (use `recvmsg`).
    void recvmsg_multishot(Completion& completion, int fd, msghdr& message, uint16_t buffer_group);

    // splice moves up to `length` bytes from `fd_in` to `fd_out`, one of which is a pipe.
    // The kernel runs every splice on an io-wq thread: only splice from a socket that is
    // nonblocking and known to be readable (docs/design.md "A connection").
    void splice(Completion& completion, int fd_in, int fd_out, uint32_t length, uint32_t flags);

    // poll_multishot reports `events` (POLLIN, ...) on `fd` on every wake-up until cancelled;
    // without kernel support it is one-shot and the caller re-arms when IORING_CQE_F_MORE is
    // absent. `poll` is always one-shot.
    void poll_multishot(Completion& completion, int fd, uint32_t events);
    void poll(Completion& completion, int fd, uint32_t events);
    void shutdown(Completion& completion, int fd, int how);
    void close(Completion& completion, int fd);
    void nop(Completion& completion);

    // arm_timer fires `timer` after `delay_ns` (res -ETIME), unless cancelled first.
    void arm_timer(Timer& timer, int64_t delay_ns);

    // cancel asks the kernel to cancel `target` if it is in flight. The cancel itself is
    // fire-and-forget: only `target`'s own CQE (usually -ECANCELED, or its normal result if it
    // won the race) tells the owner that the operation is over. A no-op when not in flight.
    void cancel(Completion& target);

    // cancel_timer cancels an armed `timer` (fire-and-forget, as `cancel`).
    void cancel_timer(Timer& timer);

    // msg_ring posts a CQE on the ring whose fd is `target_ring_fd`: `target` (a completion
    // owned by that ring's thread) is called there with `res == value` and without touching its
    // `in_kernel`. `target` must outlive the message. Fire-and-forget on this ring. Requires
    // `features().msg_ring`.
    void msg_ring(int target_ring_fd, Completion& target, int32_t value);

    // register_buffer_ring / unregister_buffer_ring wrap IORING_REGISTER_PBUF_RING for
    // `BufferRing`; they fail with the kernel's errno (EINVAL before Linux 5.19).
    Result<void> register_buffer_ring(void* ring_memory, uint32_t entries, uint16_t group);
    Result<void> unregister_buffer_ring(uint16_t group);

    // submit hands queued SQEs to the kernel without waiting.
    void submit();

    // run submits queued SQEs, waits up to `timeout_ns` (negative: forever, 0: not at all) for
    // at least one CQE, then dispatches every available CQE in one batch and advances the CQ
    // once. Returns how many CQEs it dispatched.
    uint32_t run(int64_t timeout_ns = -1);

    // sqe_full_total counts how often the SQ was full and had to be submitted to make room.
    uint64_t sqe_full_total() const { return sqe_full_total_; }

    // sq_waits_total counts how often submitting did not free a slot (the kernel took nothing:
    // -EAGAIN under memory pressure, -EBUSY, ...) and the ring waited for completions instead.
    // Completions reaped while waiting are set aside and dispatched by the next `run`, never from
    // inside a submitter. A worker exports it as a metric.
    uint64_t sq_waits_total() const { return sq_waits_total_; }

private:
    io_uring_sqe* get_sqe();
    io_uring_sqe* wait_for_sqe();
    int submit_for_room();
    void set_aside_completions();
    uint32_t dispatch_set_aside();
    io_uring_sqe* prepare(Completion& completion);
    void dispatch(const io_uring_cqe& cqe);

    io_uring ring_{};
    bool initialized_ = false;
    RingFeatures features_{};
    uint32_t in_flight_ = 0;
    uint64_t sqe_full_total_ = 0;
    uint64_t sq_waits_total_ = 0;
    uint32_t refused_room_submits_ = 0;  // RingOptions::refused_room_submits_for_testing
    // set_aside_ holds completions reaped while a submitter waited for a free SQ slot, in
    // arrival order, until `run` dispatches them.
    std::vector<io_uring_cqe> set_aside_;
};

}  // namespace zt::uring
