// echo_app.cc is the loopback application and client of in-process proxy tests: blocking
// sockets with timeouts on loopback addresses, threads for the server side.

#include "tests/support/echo_app.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "src/proxy/sockaddr.h"
#include "tests/support/net.h"
#include "zt/assert.h"

namespace zt::test {

namespace {

void bind_or_die(int fd, const state::SocketAddr& address) {
    sockaddr_storage storage;
    socklen_t length = proxy::to_sockaddr(address, storage);
    ZT_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0);
}

void set_timeouts(int fd, int timeout_ms) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void echo(UniqueFd fd) {
    set_timeouts(fd.get(), 30000);
    uint8_t buffer[16384];
    for (;;) {
        ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        if (!write_all(fd.get(), std::span(buffer, size_t(n)))) {
            return;
        }
    }
    ::shutdown(fd.get(), SHUT_WR);
}

}  // namespace

EchoApp::EchoApp(const state::IpAddr& ip) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ZT_CHECK(listener_);
    bind_or_die(listener_.get(), {ip, 0});
    ZT_CHECK(::listen(listener_.get(), 64) == 0);
    address_ = proxy::local_address(listener_.get());
    stop_.reset(::eventfd(0, EFD_CLOEXEC));
    ZT_CHECK(stop_);
    acceptor_ = std::thread([this] { serve(); });
}

EchoApp::~EchoApp() {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    acceptor_.join();
    for (std::thread& connection : connections_) {
        connection.join();
    }
}

void EchoApp::serve() {
    for (;;) {
        pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
            return;
        }
        if (fds[1].revents != 0) {
            return;
        }
        if (fds[0].revents == 0) {
            continue;
        }
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) {
            continue;
        }
        std::lock_guard lock(mutex_);
        peers_.push_back(proxy::peer_address(client.get()));
        connections_.emplace_back([fd = std::move(client)]() mutable { echo(std::move(fd)); });
    }
}

std::vector<state::SocketAddr> EchoApp::peers() const {
    std::lock_guard lock(mutex_);
    return peers_;
}

state::SocketAddr closed_port(const state::IpAddr& ip) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ZT_CHECK(fd);
    bind_or_die(fd.get(), {ip, 0});
    return proxy::local_address(fd.get());
}

TestClient::TestClient(const state::IpAddr& ip, int timeout_ms) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ZT_CHECK(fd_);
    bind_or_die(fd_.get(), {ip, 0});
    set_timeouts(fd_.get(), timeout_ms);
}

state::SocketAddr TestClient::local() const {
    return proxy::local_address(fd_.get());
}

bool TestClient::connect(const state::SocketAddr& to) {
    sockaddr_storage storage;
    socklen_t length = proxy::to_sockaddr(to, storage);
    return ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&storage), length) == 0;
}

bool TestClient::exchange(const std::vector<uint8_t>& bytes) {
    // Write and read in turns so that neither side's buffers fill up: the echo comes back as
    // the bytes go out.
    std::vector<uint8_t> back(bytes.size());
    size_t sent = 0;
    size_t received = 0;
    while (received < bytes.size()) {
        if (sent < bytes.size()) {
            size_t chunk = std::min<size_t>(65536, bytes.size() - sent);
            if (!write_all(fd_.get(), std::span(bytes.data() + sent, chunk))) {
                return false;
            }
            sent += chunk;
        }
        size_t want = sent - received;
        if (!read_all(fd_.get(), std::span(back.data() + received, want))) {
            return false;
        }
        received += want;
    }
    return back == bytes;
}

bool TestClient::finish() {
    if (::shutdown(fd_.get(), SHUT_WR) != 0) {
        return false;
    }
    return read_end() == "eof";
}

std::string TestClient::read_end() {
    uint8_t buffer[4096];
    bool data = false;
    for (;;) {
        ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
        if (n > 0) {
            data = true;
            continue;
        }
        if (n == 0) {
            return data ? "data" : "eof";
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return "timeout";
        }
        return "reset";
    }
}

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
    std::vector<uint8_t> out(n);
    fill_stream(seed, 0, out);
    return out;
}

}  // namespace zt::test
