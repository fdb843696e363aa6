// sockopt.cc sets the socket options ztunnel uses on proxy sockets and recovers the original
// destination of captured connections. Plain setsockopt/getsockopt calls, made once per socket at
// set-up, never per read or write.

#include "src/proxy/sockopt.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>

namespace zt::proxy {

namespace {

// SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST are both 80 (linux/netfilter_ipv4.h and
// linux/netfilter_ipv6/ip6_tables.h); those kernel headers clash with <netinet/in.h>, so the
// value is spelled here.
constexpr int kSoOriginalDst = 80;

struct IntOption {
    int level;
    int name;
    int value;
};

Result<void> set_int(int fd, int level, int name, int value) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        return fail_errno(errno);
    }
    return ok();
}

}  // namespace

Result<void> set_nodelay(int fd) {
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

Result<void> set_delayed_ack(int fd) {
    return set_int(fd, IPPROTO_TCP, TCP_QUICKACK, 0);
}

Result<void> set_keepalive(int fd, const Keepalive& settings) {
    const IntOption options[] = {{SOL_SOCKET, SO_KEEPALIVE, 1},
                                 {IPPROTO_TCP, TCP_KEEPIDLE, settings.time_s},
                                 {IPPROTO_TCP, TCP_KEEPINTVL, settings.interval_s},
                                 {IPPROTO_TCP, TCP_KEEPCNT, settings.probes}};
    for (const IntOption& option : options) {
        auto done = set_int(fd, option.level, option.name, option.value);
        if (!done) {
            return done;
        }
    }
    return ok();
}

Result<void> set_transparent(int fd, int family) {
    if (family == AF_INET6) {
        auto done = set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
        if (!done) {
            return done;
        }
        return set_int(fd, SOL_IPV6, IPV6_FREEBIND, 1);
    }
    auto done = set_int(fd, SOL_IP, IP_TRANSPARENT, 1);
    if (!done) {
        return done;
    }
    return set_int(fd, SOL_IP, IP_FREEBIND, 1);
}

Result<void> set_bind_address_no_port(int fd) {
    return set_int(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
}

void canonicalize(sockaddr_storage& addr) {
    if (addr.ss_family != AF_INET6) {
        return;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        return;
    }
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = v6->sin6_port;
    std::memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], 4);
    std::memset(&addr, 0, sizeof addr);
    std::memcpy(&addr, &v4, sizeof v4);
}

Result<sockaddr_storage> original_destination(int fd) {
    sockaddr_storage original{};
    socklen_t len = sizeof original;
    // IPv4 first, as ztunnel does: a dual-stack listener's IPv4 connections (v4-mapped local
    // address) carry their original destination in the IPv4 conntrack entry. The local address
    // is only needed when that fails, so a redirected IPv4 connection costs one call, not two.
    if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &original, &len) == 0) {
        canonicalize(original);
        return original;
    }
    sockaddr_storage local{};
    len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
        return fail_errno(errno);
    }
    len = sizeof original;
    bool got = local.ss_family == AF_INET6 &&
               ::getsockopt(fd, SOL_IPV6, kSoOriginalDst, &original, &len) == 0;
    // Without a nat REDIRECT (ENOENT) the local address is the destination, as with TPROXY.
    sockaddr_storage& result = got ? original : local;
    canonicalize(result);
    return result;
}

}  // namespace zt::proxy
