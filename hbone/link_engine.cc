// link_engine.cc pumps bytes between TlsSession and H2Session for one HBONE link. It owns
// the record packing (whole frames per record, so a full DATA frame is one 16 KiB record) and the
// plaintext buffer that H2 data events borrow. It must not make syscalls or read clocks.

#include "hbone/link_engine.h"

#include <algorithm>

namespace zt::hbone {

namespace {

// kRecordPlaintextBytes is TLS's largest record payload.
constexpr size_t kRecordPlaintextBytes = 16384;

// kOutputHighWaterBytes bounds how much ciphertext `pending_output` builds before returning.
constexpr size_t kOutputHighWaterBytes = 64 * 1024;

}  // namespace

std::string_view to_string(LinkEngineState state) {
    switch (state) {
        case LinkEngineState::handshaking:
            return "handshaking";
        case LinkEngineState::open:
            return "open";
        case LinkEngineState::closing:
            return "closing";
        case LinkEngineState::closed:
            return "closed";
    }
    return "unknown";
}

Result<std::unique_ptr<LinkEngine>> LinkEngine::create(std::shared_ptr<const TlsContext> context,
                                                       std::vector<certs::Identity> expected_peers,
                                                       const TlsLimits& tls_limits,
                                                       const H2Limits& h2_limits, uint64_t now_ns,
                                                       int64_t now_unix) {
    std::unique_ptr<LinkEngine> c(new LinkEngine());
    Role role = context->role();
    auto tls = TlsSession::create(std::move(context), std::move(expected_peers), tls_limits, now_ns,
                                  now_unix);
    if (!tls) {
        return zt::fail(tls.error());
    }
    c->tls_ = std::move(*tls);
    auto h2 = H2Session::create(role, h2_limits, now_ns);
    if (!h2) {
        return zt::fail(h2.error());
    }
    c->h2_ = std::move(*h2);
    c->now_ns_ = now_ns;
    if (role == Role::client) {
        // The client speaks first; produce its ClientHello now.
        auto step = c->tls_->handshake();
        if (!step) {
            return zt::fail(step.error());
        }
    }
    return c;
}

Result<void> LinkEngine::fail(Error error) {
    if (!failed_) {
        failed_ = true;
        error_ = error;
    }
    return zt::fail(error);
}

Result<void> LinkEngine::feed(ByteSpan ciphertext) {
    if (failed_) {
        return zt::fail(error_);
    }
    bool lent = false;
    if (!tls_->is_done()) {
        Result<void> fed = tls_->feed_ciphertext(ciphertext);
        if (!fed) {
            return fail(fed.error());
        }
        auto step = tls_->handshake();
        if (!step) {
            return fail(step.error());
        }
        if (*step != TlsWant::done) {
            return ok();
        }
        h2_->restart_clocks(now_ns_);
    } else {
        // Steady state: BoringSSL reads the records straight from the caller's buffer; only a
        // trailing partial record is copied (by `settle`).
        tls_->lend(ciphertext);
        lent = true;
    }
    // Size the plaintext buffer once for everything this call can decrypt (the buffered
    // ciphertext plus one record BoringSSL may already hold), so it never moves while data
    // events point into it. It is not zero-filled (only the pages decryption writes become
    // resident) and its old bytes are not kept (the previous `feed`'s events are gone).
    if (plain_ != nullptr && plain_.use_count() > 1) {
        // A send still reads the previous plaintext (`plaintext_owner`): decrypt elsewhere. Two
        // buffers take turns while sends complete between feeds, the usual case.
        if (spare_ != nullptr && spare_.use_count() > 1) {
            spare_.reset();
        }
        plain_.swap(spare_);
    }
    if (plain_ == nullptr) {
        plain_ = std::make_shared<PlaintextBuffer>();
    }
    PlaintextBuffer& plain = *plain_;
    size_t cap = tls_->buffered_input() + 2 * kRecordPlaintextBytes;
    if (plain.size < cap) {
        plain.bytes = std::make_unique_for_overwrite<uint8_t[]>(cap);
        plain.size = cap;
    }
    size_t at = 0;
    Result<void> result = ok();
    for (;;) {
        if (plain.size - at < kRecordPlaintextBytes) {
            // Out of room this call: the rest stays buffered in TLS for the next `feed`.
            break;
        }
        auto n = tls_->decrypt(MutableByteSpan(plain.bytes.get(), plain.size).subspan(at));
        if (!n) {
            result = fail(n.error());
            break;
        }
        if (*n == 0) {
            break;
        }
        at += *n;
    }
    if (lent) {
        Result<void> settled = tls_->settle();
        if (!settled && result) {
            result = fail(settled.error());
        }
    }
    if (at > 0) {
        Result<void> h2 = h2_->feed(ByteSpan(plain.bytes.get(), at));
        if (!h2) {
            return fail(h2.error());
        }
    }
    return result;
}

Result<void> LinkEngine::encrypt_frames(ByteSpan frames) {
    // Pack whole frames into records: a record is cut before a frame that would not fit, so a
    // 16384-byte DATA frame (16375 payload) is sealed alone in one full record.
    size_t start = 0;
    size_t at = 0;
    while (at + 9 <= frames.size()) {
        size_t len =
                9 + ((size_t{frames[at]} << 16) | (size_t{frames[at + 1]} << 8) | frames[at + 2]);
        if (at > start && at - start + len > kRecordPlaintextBytes) {
            Result<void> sealed = tls_->encrypt(frames.subspan(start, at - start));
            if (!sealed) {
                return sealed;
            }
            start = at;
        }
        at += len;
    }
    if (start < frames.size()) {
        return tls_->encrypt(frames.subspan(start));
    }
    return ok();
}

ByteSpan LinkEngine::pending_output() {
    if (tls_->is_done() && !failed_) {
        while (tls_->pending_output().size() < kOutputHighWaterBytes) {
            ByteSpan frames = h2_->pending_output();
            if (frames.empty()) {
                break;
            }
            Result<void> sealed = encrypt_frames(frames);
            h2_->consume_output(frames.size());
            if (!sealed) {
                (void)fail(sealed.error());
                break;
            }
        }
    } else if (tls_->is_done() && h2_->state() == H2State::closing) {
        // A failed connection still flushes HTTP/2's final GOAWAY.
        ByteSpan frames = h2_->pending_output();
        if (!frames.empty() && encrypt_frames(frames)) {
            h2_->consume_output(frames.size());
        }
    }
    return tls_->pending_output();
}

void LinkEngine::consume_output(size_t n) {
    tls_->consume_output(n);
}

void LinkEngine::release_idle_buffers() {
    // A buffer a send still holds stays alive with that send (`plaintext_owner`).
    plain_.reset();
    spare_.reset();
    tls_->release_idle_buffers();
    h2_->release_idle_buffers();
}

void LinkEngine::take_output(ByteBuffer& out) {
    (void)pending_output();
    tls_->take_output(out);
}

Result<void> LinkEngine::tick(uint64_t now_ns) {
    if (failed_) {
        return zt::fail(error_);
    }
    now_ns_ = std::max(now_ns_, now_ns);
    Result<void> tls = tls_->tick(now_ns);
    if (!tls) {
        return fail(tls.error());
    }
    if (!tls_->is_done()) {
        return ok();
    }
    Result<void> h2 = h2_->tick(now_ns);
    if (!h2) {
        return fail(h2.error());
    }
    return ok();
}

LinkEngineState LinkEngine::state() {
    bool flushed = tls_->pending_output().empty();
    if (failed_) {
        return flushed && (!tls_->is_done() || h2_->pending_output().empty())
                       ? LinkEngineState::closed
                       : LinkEngineState::closing;
    }
    if (!tls_->is_done()) {
        return LinkEngineState::handshaking;
    }
    switch (h2_->state()) {
        case H2State::open:
        case H2State::draining:
            return LinkEngineState::open;
        case H2State::closing:
            return LinkEngineState::closing;
        case H2State::closed:
            return flushed ? LinkEngineState::closed : LinkEngineState::closing;
    }
    return LinkEngineState::closing;
}

}  // namespace zt::hbone
