// netns.cc opens network namespaces and creates sockets inside them with setns(2). setns only
// moves the calling thread, so the switch, the socket() call and the switch back happen on one
// thread with nothing in between that could block or run other work.

#include "src/inpod/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

namespace zt::inpod {

namespace {

Result<Netns> open_path(const std::string& path, std::string display) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return errno == ENOENT ? fail(Errc::not_found, ENOENT) : fail_errno(errno);
    }
    // NS_GET_NSTYPE answers CLONE_NEWNET for a network namespace; any other file is refused.
    int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
    if (type != CLONE_NEWNET) {
        return fail(Errc::invalid_argument, type < 0 ? errno : 0);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
        return fail_errno(errno);
    }
    return Netns(std::move(fd), st.st_ino, st.st_dev, std::move(display));
}

}  // namespace

Result<Netns> Netns::open(std::string_view path) {
    std::string owned(path);
    return open_path(owned, owned);
}

Result<Netns> Netns::current() {
    return open_path("/proc/thread-self/ns/net", "self");
}

Result<UniqueFd> socket_in(const Netns& netns, int domain, int type, int protocol, uint32_t mark) {
    auto own = Netns::current();
    if (!own) {
        return fail(own.error());
    }
    return socket_in(netns, *own, domain, type, protocol, mark);
}

Result<UniqueFd> socket_in(const Netns& netns, const Netns& own_ns, int domain, int type,
                           int protocol, uint32_t mark) {
    const Netns* own = &own_ns;
    bool same = own->inode() == netns.inode() && own->device() == netns.device();
    if (!same && ::setns(netns.fd(), CLONE_NEWNET) != 0) {
        return fail_errno(errno);
    }
    UniqueFd sock(::socket(domain, type | SOCK_CLOEXEC, protocol));
    int socket_errno = errno;
    if (!same) {
        ZT_CHECK(::setns(own->fd(), CLONE_NEWNET) == 0);
    }
    if (!sock) {
        return fail_errno(socket_errno);
    }
    if (mark != 0 && ::setsockopt(sock.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
        return fail_errno(errno);
    }
    return sock;
}

}  // namespace zt::inpod
