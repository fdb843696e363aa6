// raw_hbone_client.cc drives a client TlsSession over a blocking socket: the handshake in turns,
// then records of hand-made HTTP/2 frames.

#include "tests/support/raw_hbone_client.h"

#include <poll.h>
#include <sys/socket.h>

#include "src/proxy/sockaddr.h"
#include "tests/support/net.h"
#include "zt/clock.h"

namespace zt::test {

std::unique_ptr<RawHboneClient> RawHboneClient::connect(
        const state::IpAddr& from, const state::SocketAddr& to,
        std::shared_ptr<const hbone::TlsContext> context, const certs::Identity& server,
        ByteSpan with_finished) {
    std::unique_ptr<RawHboneClient> client(new RawHboneClient());
    client->fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!client->fd_) {
        return nullptr;
    }
    timeval tv{5, 0};
    ::setsockopt(client->fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(client->fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_storage storage;
    socklen_t length = proxy::to_sockaddr({from, 0}, storage);
    if (::bind(client->fd_.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        return nullptr;
    }
    length = proxy::to_sockaddr(to, storage);
    if (::connect(client->fd_.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        return nullptr;
    }
    auto tls = hbone::TlsSession::create(std::move(context), {server}, hbone::TlsLimits{},
                                         uint64_t(monotonic_ns()), unix_ns() / kNanosPerSecond);
    if (!tls) {
        return nullptr;
    }
    client->tls_ = std::move(*tls);
    for (int round = 0; round < 16; ++round) {
        auto step = client->tls_->handshake();
        if (!step) {
            return nullptr;
        }
        if (*step == hbone::TlsWant::done && !with_finished.empty() &&
            !client->tls_->encrypt(with_finished)) {
            return nullptr;
        }
        if (!client->flush()) {
            return nullptr;
        }
        if (*step == hbone::TlsWant::done) {
            return client;
        }
        uint8_t buffer[16384];
        ssize_t n = ::recv(client->fd_.get(), buffer, sizeof buffer, 0);
        if (n <= 0 || !client->tls_->feed_ciphertext(ByteSpan(buffer, size_t(n)))) {
            return nullptr;
        }
    }
    return nullptr;
}

bool RawHboneClient::flush() {
    ByteSpan out = tls_->pending_output();
    if (!out.empty() && !write_all(fd_.get(), out)) {
        return false;
    }
    tls_->consume_output(out.size());
    return true;
}

bool RawHboneClient::send(ByteSpan frames) {
    return tls_->encrypt(frames).has_value() && flush();
}

std::vector<uint8_t> RawHboneClient::receive(int timeout_ms) {
    std::vector<uint8_t> plaintext;
    int64_t deadline = monotonic_ns() + int64_t(timeout_ms) * kNanosPerMilli;
    for (;;) {
        int left_ms = int((deadline - monotonic_ns()) / kNanosPerMilli);
        pollfd pfd{fd_.get(), POLLIN, 0};
        if (left_ms <= 0 || ::poll(&pfd, 1, left_ms) <= 0) {
            return plaintext;
        }
        uint8_t buffer[16384];
        ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
        if (n <= 0 || !tls_->feed_ciphertext(ByteSpan(buffer, size_t(n)))) {
            return plaintext;
        }
        uint8_t out[16384];
        for (;;) {
            auto got = tls_->decrypt(MutableByteSpan(out, sizeof out));
            if (!got || *got == 0) {
                break;
            }
            plaintext.insert(plaintext.end(), out, out + *got);
        }
    }
}

}  // namespace zt::test
