// netns.cc opens network namespaces and creates sockets inside them with setns(2). setns only
// moves the calling thread, so the switch, the socket() call and the switch back happen on one
// thread with nothing in between that could block or run other work. Paths come from the config
// file and run on data-plane workers: nothing here may block on what a path turns out to be.

#include "src/inpod/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <string>

namespace zt::inpod {

namespace {

Result<Netns> open_path(const std::string& path, std::string display) {
    // A path from the config is looked at before anything opens it for reading: a FIFO opened
    // O_RDONLY blocks until a writer appears, and a device open may have side effects. O_PATH
    // opens nothing but the name, so a FIFO, a device, a directory or a regular file is refused
    // here without ever blocking the worker that asked.
    UniqueFd path_fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!path_fd) {
        return errno == ENOENT ? fail(Errc::not_found, ENOENT) : fail_errno(errno);
    }
    struct statfs fs;
    if (::fstatfs(path_fd.get(), &fs) != 0) {
        return fail_errno(errno);
    }
    if (fs.f_type != NSFS_MAGIC) {
        return fail(Errc::invalid_argument, EINVAL);
    }
    // Only now open it for real, through the descriptor already checked (not the path again,
    // which could have been swapped meanwhile). An nsfs file never blocks an open.
    std::string self = "/proc/self/fd/" + std::to_string(path_fd.get());
    UniqueFd fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return fail_errno(errno);
    }
    // NS_GET_NSTYPE answers CLONE_NEWNET for a network namespace; a mount, pid or other
    // namespace file is refused.
    int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
    if (type != CLONE_NEWNET) {
        return fail(Errc::invalid_argument, type < 0 ? errno : EINVAL);
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

bool Netns::names_same_namespace(const std::string& path) const {
    // stat follows the name without opening it, so a FIFO or device at the path never blocks.
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        return true;
    }
    return st.st_ino == inode_ && st.st_dev == device_;
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
