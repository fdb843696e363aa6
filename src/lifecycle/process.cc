// process.cc holds the process-wide setup `ztunnel run` does once at start: signals, file
// descriptor limits and the systemd notification. It owns no threads and starts no drain; it
// only reports what was asked.

#include "src/lifecycle/process.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace zt::lifecycle {

void ignore_sigpipe() {
    struct sigaction action {};

    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    (void)sigaction(SIGPIPE, &action, nullptr);
}

Result<uint64_t> raise_nofile_limit() {
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return fail_errno(errno);
    }
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            return fail_errno(errno);
        }
    }
    return uint64_t(limit.rlim_cur);
}

Result<ShutdownSignals> ShutdownSignals::open() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (rc != 0) {
        return fail_errno(rc);
    }
    UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) {
        return fail_errno(errno);
    }
    return ShutdownSignals(std::move(fd));
}

ShutdownRequest ShutdownSignals::on_readable() {
    ShutdownRequest request = ShutdownRequest::none;
    signalfd_siginfo info;
    for (;;) {
        ssize_t n = ::read(fd_.get(), &info, sizeof info);
        if (n != ssize_t(sizeof info)) {
            break;  // EAGAIN: nothing more queued
        }
        if (info.ssi_signo == SIGHUP) {
            reload_ = true;
            continue;
        }
        if (info.ssi_signo == SIGUSR1) {
            continue;  // Ignored: it has no meaning here and must not end the process.
        }
        if (info.ssi_signo == SIGINT && draining_) {
            return ShutdownRequest::immediate;
        }
        if (!draining_) {
            draining_ = true;
            request = ShutdownRequest::graceful;
        }
    }
    return request;
}

bool notify_systemd(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || path[0] == '\0') {
        return false;
    }
    size_t path_len = std::strlen(path);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_len >= sizeof addr.sun_path) {
        return false;
    }
    std::memcpy(addr.sun_path, path, path_len);
    // A leading '@' names an abstract socket.
    if (addr.sun_path[0] == '@') {
        addr.sun_path[0] = '\0';
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return false;
    }
    socklen_t length = socklen_t(offsetof(sockaddr_un, sun_path) + path_len);
    ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&addr), length);
    return n == ssize_t(state.size());
}

}  // namespace zt::lifecycle
