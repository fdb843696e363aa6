#pragma once

// Resolving a control-plane host name (`istiod.istio-system.svc`) without blocking the agent's
// ring: getaddrinfo runs on a short-lived thread of its own and signals an eventfd the ring
// polls. Address literals skip the thread. A lookup abandoned by its owner (the connection gave
// up) finishes on its thread and frees itself; nothing waits for it.

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::agent {

// SocketAddress is one resolved address in the form connect(2) takes.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }

    // to_string renders `ip:port` (`[ip]:port` for IPv6).
    std::string to_string() const;
};

// parse_address_literal returns `host` (an IPv4 or IPv6 literal, brackets already removed) with
// `port`, or std::nullopt when `host` is a name.
std::optional<SocketAddress> parse_address_literal(const std::string& host, uint16_t port);

// Resolution is one getaddrinfo lookup in flight. Share it: the lookup thread holds a reference
// until it is done, so the owner may drop its own at any time.
class Resolution {
public:
    // start begins resolving `host`:`port` (TCP, IPv4 and IPv6) on a new thread. Fails with
    // `Errc::sys` when the eventfd or the thread cannot be made.
    static Result<std::shared_ptr<Resolution>> start(std::string host, uint16_t port);

    ~Resolution();

    // fd becomes readable once the lookup is done (poll it for POLLIN); it stays open as long
    // as this object.
    int fd() const { return event_.get(); }

    // done says whether the results below may be read (after `fd` turned readable).
    bool done() const;

    // addresses are the results in getaddrinfo's order (valid once `done`).
    const std::vector<SocketAddress>& addresses() const { return addresses_; }

    // error is getaddrinfo's message when the lookup failed (valid once `done`).
    const std::string& error() const { return error_; }

private:
    // Job is what the lookup thread owns: a reference to the lookup and what to look up.
    struct Job {
        std::shared_ptr<Resolution> resolution;
        std::string host;
        uint16_t port;
    };

    Resolution() = default;
    static void* run_job(void* arg);
    void run(const std::string& host, uint16_t port);

    UniqueFd event_;
    std::vector<SocketAddress> addresses_;
    std::string error_;
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace zt::agent
