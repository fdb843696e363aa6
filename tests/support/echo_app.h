#pragma once

// EchoApp stands in for a pod's application in in-process tests: a TCP server on a loopback
// address and an ephemeral port that echoes every byte back, answers the client's FIN with its
// own, and remembers the address each client came from (to check that ztunnel connected from the
// original client's address). One thread accepts; each connection gets a thread.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/state/net.h"
#include "zt/unique_fd.h"

namespace zt::test {

class EchoApp {
public:
    // EchoApp listens on `ip` (port 0) and starts serving.
    explicit EchoApp(const state::IpAddr& ip);
    ~EchoApp();
    EchoApp(const EchoApp&) = delete;
    EchoApp& operator=(const EchoApp&) = delete;

    const state::SocketAddr& address() const { return address_; }

    // peers returns the client address of every connection accepted so far.
    std::vector<state::SocketAddr> peers() const;

private:
    void serve();

    state::SocketAddr address_;
    UniqueFd listener_;
    UniqueFd stop_;  // An eventfd that ends `serve`.
    std::thread acceptor_;
    mutable std::mutex mutex_;
    std::vector<state::SocketAddr> peers_;
    std::vector<std::thread> connections_;
};

// closed_port returns an address on `ip` where nothing listens (a port bound, then released).
state::SocketAddr closed_port(const state::IpAddr& ip);

// TestClient is an application's client socket in a pod: bound to the pod's address, blocking,
// with send and receive timeouts so that a bug fails a test instead of hanging it.
class TestClient {
public:
    // TestClient binds to `ip` (port 0); connect() connects it later.
    explicit TestClient(const state::IpAddr& ip, int timeout_ms = 10000);

    // local is the address the socket is bound to.
    state::SocketAddr local() const;

    // connect connects to `to`; false on failure (refused, ...).
    bool connect(const state::SocketAddr& to);

    // exchange sends `bytes`, then reads as many back; false on any error or early end.
    bool exchange(const std::vector<uint8_t>& bytes);

    // finish half-closes, then reads until the peer's FIN; false on an error.
    bool finish();

    // read_end reads until the connection ends and says how: "eof" (FIN with no byte), "reset",
    // "data" (bytes came first) or "timeout".
    std::string read_end();

    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
};

// pattern returns `n` bytes of a fixed, position-dependent pattern (offset `seed`).
std::vector<uint8_t> pattern(size_t n, uint64_t seed = 0);

}  // namespace zt::test
