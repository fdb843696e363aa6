// echo_server: the benchmark's and tests' TCP echo peer. One thread, epoll, non-blocking sockets:
// every byte read is written back; a peer's FIN is answered with FIN once its bytes are echoed.
// Usage: echo_server [IP:]PORT. Prints "echo_server: listening on IP:PORT" once serving and runs
// until killed. It must stay cheap per idle connection (no buffer is held while nothing is
// pending), so the idle-connection memory benchmark measures the relay, not this peer.

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "tests/support/bench_net.h"

namespace {

// Conn holds the bytes read but not yet written back (only while the peer is slow to read).
struct Conn {
    std::string pending;
    bool peer_closed = false;
};

void set_nonblocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: echo_server [IP:]PORT\n");
        return 2;
    }
    zt::bench::Endpoint ep;
    if (!zt::bench::parse_endpoint(argv[1], ep)) {
        std::fprintf(stderr, "echo_server: bad address %s\n", argv[1]);
        return 2;
    }
    zt::bench::raise_nofile();
    int lfd = zt::bench::listen_tcp(ep, 4096);
    if (lfd < 0) {
        std::fprintf(stderr, "echo_server: listen %s: %s\n", argv[1], std::strerror(-lfd));
        return 1;
    }
    set_nonblocking(lfd);
    int ep_fd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    ::epoll_ctl(ep_fd, EPOLL_CTL_ADD, lfd, &ev);
    std::printf("echo_server: listening on %s\n", zt::bench::endpoint_string(ep).c_str());
    std::fflush(stdout);

    std::unordered_map<int, std::unique_ptr<Conn>> conns;
    static char buf[256 * 1024];
    epoll_event events[256];
    auto drop = [&](int fd) {
        ::epoll_ctl(ep_fd, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        conns.erase(fd);
    };
    // flush writes what is pending; returns false when the connection is gone.
    auto flush = [&](int fd, Conn& c) {
        while (!c.pending.empty()) {
            ssize_t n = ::write(fd, c.pending.data(), c.pending.size());
            if (n < 0 && errno == EAGAIN) {
                break;
            }
            if (n <= 0) {
                return false;
            }
            c.pending.erase(0, static_cast<size_t>(n));
        }
        epoll_event mod{};
        mod.data.fd = fd;
        mod.events = c.pending.empty() ? EPOLLIN : EPOLLOUT;
        if (c.pending.empty()) {
            std::string().swap(c.pending);
            if (c.peer_closed) {
                ::shutdown(fd, SHUT_WR);
                return false;
            }
        }
        ::epoll_ctl(ep_fd, EPOLL_CTL_MOD, fd, &mod);
        return true;
    };
    for (;;) {
        int n = ::epoll_wait(ep_fd, events, 256, -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) {
                        break;
                    }
                    epoll_event add{};
                    add.events = EPOLLIN;
                    add.data.fd = cfd;
                    ::epoll_ctl(ep_fd, EPOLL_CTL_ADD, cfd, &add);
                    conns[cfd] = std::make_unique<Conn>();
                }
                continue;
            }
            auto it = conns.find(fd);
            if (it == conns.end()) {
                continue;
            }
            Conn& c = *it->second;
            if ((events[i].events & EPOLLOUT) != 0) {
                if (!flush(fd, c)) {
                    drop(fd);
                }
                continue;
            }
            ssize_t got = ::read(fd, buf, sizeof buf);
            if (got < 0 && errno == EAGAIN) {
                continue;
            }
            if (got <= 0) {
                c.peer_closed = true;
                if (c.pending.empty() || got < 0) {
                    if (got == 0) {
                        ::shutdown(fd, SHUT_WR);
                    }
                    drop(fd);
                }
                continue;
            }
            ssize_t put = ::write(fd, buf, static_cast<size_t>(got));
            if (put < 0 && errno != EAGAIN) {
                drop(fd);
                continue;
            }
            if (put < got) {
                c.pending.assign(buf + (put > 0 ? put : 0), buf + got);
                if (!flush(fd, c)) {
                    drop(fd);
                }
            }
        }
    }
}
