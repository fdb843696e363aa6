#pragma once

// LinkEngine stacks the two HBONE engines of one HBONE link (one TCP connection carrying mutual
// TLS 1.3 and HTTP/2 between two ztunnels): ciphertext in, `TlsSession` (handshake, then records),
// `H2Session` (frames, events), and back out the same way. It is what src/ drives per link:
// `feed` what the socket received, send `pending_output`, drain `h2()` events, call `tick` from
// a timer. Sans-I/O like its parts: no syscalls, no clocks, no callbacks. (Named for the link so
// that "connection" keeps one meaning in src/proxy: the application's TCP connection.)

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "hbone/h2_session.h"
#include "hbone/tls_session.h"
#include "zt/bytes.h"
#include "zt/result.h"

namespace zt::hbone {

// LinkEngineState is the stack's life cycle.
enum class LinkEngineState : uint8_t {
    handshaking,  // TLS handshake in progress; HTTP/2 not started.
    open,         // TLS done and peer verified; HTTP/2 running (it may be draining).
    closing,      // A fatal error or the end of HTTP/2: flush `pending_output`, then close.
    closed,       // Nothing more to send; close the socket.
};

// to_string returns a stable lowercase name for `state`, for logs.
std::string_view to_string(LinkEngineState state);

// LinkEngine is the protocol state of one HBONE link, client or server (the role of its
// `TlsContext`).
class LinkEngine {
public:
    // create makes the TLS and HTTP/2 sessions (see `TlsSession::create`, `H2Session::create`).
    static Result<std::unique_ptr<LinkEngine>> create(std::shared_ptr<const TlsContext> context,
                                                      std::vector<certs::Identity> expected_peers,
                                                      const TlsLimits& tls_limits,
                                                      const H2Limits& h2_limits, uint64_t now_ns,
                                                      int64_t now_unix);

    // feed processes ciphertext from the peer: handshake progress, then decrypted records into
    // HTTP/2. `h2()` events borrow an internal plaintext buffer that stays valid until the next
    // `feed`. Fails with the `TlsSession::handshake` reasons, `Errc::eof` (close_notify),
    // `Errc::tls_protocol`, or the `H2Session::feed` reasons; after a failure, flush
    // `pending_output` (it may hold an alert or GOAWAY) and close.
    Result<void> feed(ByteSpan ciphertext);

    // pending_output moves what HTTP/2 has to send through TLS and returns the ciphertext not yet
    // consumed. Whole HTTP/2 frames are packed into records so that a full DATA frame is exactly
    // one 16 KiB record.
    ByteSpan pending_output();

    // release_idle_buffers frees the plaintext buffer and whichever TLS and HTTP/2 buffers are
    // empty, so an idle pooled connection holds only its protocol state (measured ~290 KB
    // before). Call it only once every event of the last `feed` was polled; the next `feed` or
    // output allocates again. Never fails.
    void release_idle_buffers();

    // buffer_bytes is the storage the connection's byte buffers hold (plaintext, TLS input and
    // output, HTTP/2 output), not counting BoringSSL's and nghttp2's internal state.
    size_t buffer_bytes() const {
        return (plain_ ? plain_->size : 0) + (spare_ ? spare_->size : 0) + tls_->buffer_bytes() +
               h2_->buffer_bytes();
    }

    // consume_output marks the first `n` bytes of `pending_output` as sent.
    void consume_output(size_t n);

    // take_output is `pending_output` followed by `TlsSession::take_output`: the ciphertext moves
    // into `out` (which must be empty) by a buffer swap, not a copy, and counts as consumed.
    // The transport may send from `out` while the connection goes on producing output.
    void take_output(ByteBuffer& out);

    // PlaintextBuffer is storage `feed` decrypts into (never zero-filled); `data` events point
    // into one.
    struct PlaintextBuffer {
        std::unique_ptr<uint8_t[]> bytes;
        size_t size = 0;
    };

    // plaintext_owner shares the buffer the pending `data` events borrow. While anyone else
    // holds it (a socket send in flight straight from the decrypted bytes), its contents stay
    // valid and unchanged: the next `feed` decrypts into another buffer instead. Never fails.
    std::shared_ptr<const PlaintextBuffer> plaintext_owner() const { return plain_; }

    // tick passes time to both layers (handshake deadline, PING, glitch refill).
    Result<void> tick(uint64_t now_ns);

    // state is the connection's life-cycle state.
    LinkEngineState state();

    // h2 and tls expose the engines (borrowed, live as long as this connection).
    H2Session& h2() { return *h2_; }

    TlsSession& tls() { return *tls_; }

    // error is why the connection is closing (valid once `state()` is closing or closed).
    Error error() const { return error_; }

private:
    LinkEngine() = default;
    // fail records the first failure and returns it.
    Result<void> fail(Error error);
    // encrypt_frames seals whole HTTP/2 frames, cutting records only between frames.
    Result<void> encrypt_frames(ByteSpan frames);

    std::unique_ptr<TlsSession> tls_;
    std::unique_ptr<H2Session> h2_;
    // plain_ is the buffer `feed` decrypts into (shared only through `plaintext_owner`);
    // spare_ is a former one kept for reuse once nobody else holds it. Both are dropped by
    // `release_idle_buffers`.
    std::shared_ptr<PlaintextBuffer> plain_;
    std::shared_ptr<PlaintextBuffer> spare_;
    uint64_t now_ns_ = 0;  // The latest time passed in (create, tick).
    bool failed_ = false;
    Error error_{};
};

}  // namespace zt::hbone
