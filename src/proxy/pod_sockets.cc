// pod_sockets.cc makes the production proxy's sockets inside pods' network namespaces, with the
// socket options ztunnel sets. Nothing here blocks: setns and socket(2) are immediate and every
// socket is nonblocking.

#include "src/proxy/pod_sockets.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

#include "src/proxy/sockaddr.h"
#include "src/proxy/sockopt.h"
#include "zt/log.h"

namespace zt::proxy {

namespace {

// bind_client_address binds `fd` to `client`'s address, so that the connection to `target`
// leaves from it (ztunnel's freebind_connect). Without CAP_NET_ADMIN the connect is not spoofed,
// and a warning says so once.
void bind_client_address(int fd, const state::SocketAddr& client, const state::SocketAddr& target) {
    if (client.ip == target.ip) {
        return;
    }
    int family = target.ip.v6 ? AF_INET6 : AF_INET;
    if (client.ip.v6 == target.ip.v6 && set_transparent(fd, family)) {
        // The port is left to connect(2) (see set_bind_address_no_port); best effort.
        (void)set_bind_address_no_port(fd);
        state::SocketAddr from = client;
        from.port = 0;
        sockaddr_storage address;
        socklen_t length = to_sockaddr(from, address);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) {
            return;
        }
    }
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
        log::warn("proxy",
                  "cannot connect from the original source address; "
                  "the application will see ztunnel's address");
    }
}

}  // namespace

Result<std::unique_ptr<InPodSockets>> InPodSockets::create(uint32_t packet_mark) {
    auto own = inpod::Netns::current();
    if (!own) {
        return fail(own.error());
    }
    return std::unique_ptr<InPodSockets>(new InPodSockets(std::move(*own), packet_mark));
}

Result<UniqueFd> InPodSockets::listen(const PodNetwork& pod, ListenerKind kind, int backlog) {
    if (is_dns(kind)) {
        return listen_dns(pod, kind, backlog);
    }
    uint16_t port = listener_port(kind);
    // A dual-stack [::] listener takes IPv4 too; a pod without IPv6 gets 0.0.0.0.
    for (int family : {AF_INET6, AF_INET}) {
        auto sock = inpod::socket_in(pod.netns, own_, family, SOCK_STREAM | SOCK_NONBLOCK, 0,
                                     packet_mark_);
        if (!sock) {
            if (family == AF_INET6) {
                continue;
            }
            return sock;
        }
        int one = 1;
        int zero = 0;
        ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        // SO_REUSEPORT lets every worker (and an upgrading second ztunnel) bind the same port.
        ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (family == AF_INET6) {
            ::setsockopt(sock->get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        // Best effort, as ztunnel's maybe_set_transparent: lets TPROXY-style captures through.
        (void)set_transparent(sock->get(), family);
        if (captures(kind)) {
            // Captured connections get ztunnel's TCP_NODELAY and keepalive by inheriting them
            // from their listener: set once here instead of five calls per new connection.
            (void)set_nodelay(sock->get());
            (void)set_keepalive(sock->get(), {});
        }
        state::SocketAddr any;
        any.ip.v6 = family == AF_INET6;
        any.port = port;
        sockaddr_storage address;
        socklen_t length = to_sockaddr(any, address);
        if (::bind(sock->get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
            ::listen(sock->get(), backlog) != 0) {
            int err = errno;
            if (family == AF_INET6 && (err == EADDRNOTAVAIL || err == EAFNOSUPPORT)) {
                continue;
            }
            return fail_errno(err);
        }
        return std::move(*sock);
    }
    return fail(Errc::unsupported);
}

// listen_dns binds one of the DNS proxy's sockets to the pod's loopback: 127.0.0.1:15053 or
// [::1]:15053 (IPV6_V6ONLY, so the two never overlap), SO_REUSEPORT so every worker has its own.
Result<UniqueFd> InPodSockets::listen_dns(const PodNetwork& pod, ListenerKind kind, int backlog) {
    int family = is_v6(kind) ? AF_INET6 : AF_INET;
    int type = is_udp(kind) ? SOCK_DGRAM : SOCK_STREAM;
    auto sock = inpod::socket_in(pod.netns, own_, family, type | SOCK_NONBLOCK, 0, packet_mark_);
    if (!sock) {
        return sock;
    }
    int one = 1;
    ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(sock->get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    state::SocketAddr loopback;
    if (family == AF_INET6) {
        ::setsockopt(sock->get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        loopback.ip.v6 = true;
        loopback.ip.bytes[15] = 1;  // ::1
    } else {
        loopback.ip = state::IpAddr::v4(127, 0, 0, 1);
    }
    loopback.port = listener_port(kind);
    sockaddr_storage address;
    socklen_t length = to_sockaddr(loopback, address);
    if (::bind(sock->get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        (type == SOCK_STREAM && ::listen(sock->get(), backlog) != 0)) {
        return fail_errno(errno);
    }
    return std::move(*sock);
}

Result<UniqueFd> InPodSockets::socket(const PodNetwork& pod, int family, int type) {
    return inpod::socket_in(pod.netns, own_, family, type | SOCK_NONBLOCK, 0, packet_mark_);
}

Result<state::SocketAddr> InPodSockets::original_destination(const PodNetwork&, int fd) {
    auto original = proxy::original_destination(fd);
    if (!original) {
        return fail(original.error());
    }
    return to_socket_addr(*original);
}

Result<UpstreamSocket> InPodSockets::upstream(const PodNetwork& pod,
                                              const state::SocketAddr& target,
                                              const state::SocketAddr* client) {
    int family = target.ip.v6 ? AF_INET6 : AF_INET;
    auto sock =
            inpod::socket_in(pod.netns, own_, family, SOCK_STREAM | SOCK_NONBLOCK, 0, packet_mark_);
    if (!sock) {
        return fail(sock.error());
    }
    (void)set_nodelay(sock->get());
    (void)set_keepalive(sock->get(), {});
    if (client != nullptr) {
        bind_client_address(sock->get(), *client, target);
    }
    UpstreamSocket out;
    out.fd = std::move(*sock);
    out.length = to_sockaddr(target, out.address);
    return out;
}

}  // namespace zt::proxy
