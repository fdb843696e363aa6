// sockaddr.cc converts between `state::SocketAddr` and kernel socket addresses; nothing else.

#include "src/proxy/sockaddr.h"

#include <netinet/in.h>

#include <cstring>

#include "src/proxy/sockopt.h"

namespace zt::proxy {

state::SocketAddr to_socket_addr(const sockaddr_storage& raw) {
    sockaddr_storage addr = raw;
    canonicalize(addr);
    state::SocketAddr result;
    if (addr.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
        std::memcpy(result.ip.bytes.data(), &v4->sin_addr, 4);
        result.ip.v6 = false;
        result.port = ntohs(v4->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        std::memcpy(result.ip.bytes.data(), &v6->sin6_addr, 16);
        result.ip.v6 = true;
        result.port = ntohs(v6->sin6_port);
    }
    return result;
}

socklen_t to_sockaddr(const state::SocketAddr& addr, sockaddr_storage& out) {
    std::memset(&out, 0, sizeof out);
    if (addr.ip.v6) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(addr.port);
        std::memcpy(&v6->sin6_addr, addr.ip.bytes.data(), 16);
        return sizeof(sockaddr_in6);
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(addr.port);
    std::memcpy(&v4->sin_addr, addr.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
}

state::SocketAddr peer_address(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return {};
    }
    return to_socket_addr(addr);
}

state::SocketAddr local_address(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return {};
    }
    return to_socket_addr(addr);
}

}  // namespace zt::proxy
