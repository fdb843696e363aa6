// loopback_sockets.cc makes the in-process tests' pod sockets on loopback addresses with
// ephemeral ports, with the socket options production sets where loopback allows them.

#include "tests/support/loopback_sockets.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "src/proxy/sockaddr.h"
#include "src/proxy/sockopt.h"

namespace zt::test {

namespace {

// bind_to binds `fd` to `ip`:`port` (port 0: the kernel picks).
Result<void> bind_to(int fd, const state::IpAddr& ip, uint16_t port) {
    state::SocketAddr address{ip, port};
    sockaddr_storage storage;
    socklen_t length = proxy::to_sockaddr(address, storage);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        return fail_errno(errno);
    }
    return ok();
}

}  // namespace

void LoopbackSockets::add_pod(const std::string& uid, const state::IpAddr& ip) {
    std::lock_guard lock(mutex_);
    pod_ips_[uid] = ip;
    pod_of_ip_[ip] = uid;
}

void LoopbackSockets::alias(const state::IpAddr& ip, const std::string& uid) {
    std::lock_guard lock(mutex_);
    pod_of_ip_[ip] = uid;
}

state::SocketAddr LoopbackSockets::listener(const std::string& uid,
                                            proxy::ListenerKind kind) const {
    std::lock_guard lock(mutex_);
    state::SocketAddr out;
    auto ip = pod_ips_.find(uid);
    if (ip != pod_ips_.end()) {
        out.ip = ip->second;
    }
    auto port = ports_.find({uid, kind});
    if (port != ports_.end()) {
        out.port = port->second;
    }
    return out;
}

void LoopbackSockets::capture(const state::SocketAddr& client,
                              const state::SocketAddr& destination) {
    std::lock_guard lock(mutex_);
    captured_[client.to_string()] = destination;
}

void LoopbackSockets::assign_port(const std::string& uid, proxy::ListenerKind kind, uint16_t port) {
    std::lock_guard lock(mutex_);
    ports_[{uid, kind}] = port;
}

size_t LoopbackSockets::dials(const state::SocketAddr& target) const {
    std::lock_guard lock(mutex_);
    auto found = dials_.find(target.to_string());
    return found == dials_.end() ? 0 : found->second;
}

Result<UniqueFd> LoopbackSockets::listen(const proxy::PodNetwork& pod, proxy::ListenerKind kind,
                                         int backlog) {
    std::lock_guard lock(mutex_);
    auto ip = pod_ips_.find(pod.uid);
    if (ip == pod_ips_.end()) {
        return fail(Errc::not_found);
    }
    if (proxy::is_v6(kind)) {
        return fail_errno(EAFNOSUPPORT);  // As a pod whose loopback has no IPv6.
    }
    int type = proxy::is_udp(kind) ? SOCK_DGRAM : SOCK_STREAM;
    UniqueFd fd(::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail_errno(errno);
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Every worker's listener for one pod shares the port the first one got.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (proxy::captures(kind)) {
        (void)proxy::set_nodelay(fd.get());
        (void)proxy::set_keepalive(fd.get(), {});
    }
    uint16_t& port = ports_[{pod.uid, kind}];
    if (auto bound = bind_to(fd.get(), ip->second, port); !bound) {
        return fail(bound.error());
    }
    if (type == SOCK_STREAM && ::listen(fd.get(), backlog) != 0) {
        return fail_errno(errno);
    }
    port = proxy::local_address(fd.get()).port;
    return fd;
}

Result<UniqueFd> LoopbackSockets::socket(const proxy::PodNetwork&, int family, int type) {
    UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail_errno(errno);
    }
    return fd;
}

Result<state::SocketAddr> LoopbackSockets::original_destination(const proxy::PodNetwork&, int fd) {
    std::string client = proxy::peer_address(fd).to_string();
    std::lock_guard lock(mutex_);
    auto found = captured_.find(client);
    if (found == captured_.end()) {
        return proxy::local_address(fd);  // As production without a redirect (TPROXY).
    }
    return found->second;
}

Result<proxy::UpstreamSocket> LoopbackSockets::upstream(const proxy::PodNetwork& pod,
                                                        const state::SocketAddr& target,
                                                        const state::SocketAddr* client) {
    std::lock_guard lock(mutex_);
    auto own = pod_ips_.find(pod.uid);
    if (own == pod_ips_.end()) {
        return fail(Errc::not_found);
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail_errno(errno);
    }
    (void)proxy::set_nodelay(fd.get());
    (void)proxy::set_keepalive(fd.get(), {});
    (void)proxy::set_bind_address_no_port(fd.get());
    // From the pod's address, or the client's (every loopback address is ours to bind).
    if (auto bound = bind_to(fd.get(), client != nullptr ? client->ip : own->second, 0); !bound) {
        return fail(bound.error());
    }
    dials_[target.to_string()]++;
    state::SocketAddr to = target;
    auto pod_of_target = pod_of_ip_.find(target.ip);
    if (pod_of_target != pod_of_ip_.end()) {
        for (proxy::ListenerKind kind : proxy::kListenerKinds) {
            auto port = ports_.find({pod_of_target->second, kind});
            if (proxy::listener_port(kind) == target.port && port != ports_.end()) {
                to = {pod_ips_.at(pod_of_target->second), port->second};
            }
        }
    }
    proxy::UpstreamSocket out;
    out.fd = std::move(fd);
    out.length = proxy::to_sockaddr(to, out.address);
    return out;
}

}  // namespace zt::test
