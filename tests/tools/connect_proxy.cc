// connect_proxy: the HTTP/1.1 CONNECT backend behind `nghttpx --http2-proxy` in the HBONE
// benchmark (nghttpx forwards each HTTP/2 CONNECT stream to its backend as an HTTP/1.1 CONNECT
// and expects a forward proxy there, e.g. Squid). It reads "CONNECT host:port HTTP/1.1" plus
// headers, dials host:port (an IP literal), answers 200 and then splices bytes both ways, one
// thread per direction. Usage: connect_proxy [IP:]PORT. Prints "connect_proxy: listening on
// IP:PORT" once serving and runs until killed. It is tool code for benchmarks only: it must
// never be pointed at anything but addresses inside the benchmark's namespaces, and it keeps the
// relay cheap (splice, no user-space copy) so the benchmark measures nghttpx, not this backend.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "tests/support/bench_net.h"

namespace {

// pump moves bytes from `in` to `out` through a pipe with splice until EOF or an error, then
// half-closes `out` so the other side sees the FIN.
void pump(int in, int out) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        ::shutdown(out, SHUT_WR);
        return;
    }
    ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    for (;;) {
        ssize_t n = ::splice(in, nullptr, p[1], nullptr, 1 << 20, SPLICE_F_MOVE);
        if (n <= 0) {
            break;
        }
        while (n > 0) {
            ssize_t w =
                    ::splice(p[0], nullptr, out, nullptr, static_cast<size_t>(n), SPLICE_F_MOVE);
            if (w <= 0) {
                n = -1;
                break;
            }
            n -= w;
        }
        if (n < 0) {
            break;
        }
    }
    ::shutdown(out, SHUT_WR);
    ::close(p[0]);
    ::close(p[1]);
}

// serve handles one backend connection from nghttpx: the CONNECT request, then the tunnel.
void serve(int client) {
    std::string head;
    char buf[4096];
    size_t end = std::string::npos;
    while (end == std::string::npos && head.size() < 16384) {
        ssize_t n = ::read(client, buf, sizeof buf);
        if (n <= 0) {
            ::close(client);
            return;
        }
        head.append(buf, static_cast<size_t>(n));
        end = head.find("\r\n\r\n");
    }
    zt::bench::Endpoint target;
    int upstream = -1;  // -errno once a connect was tried
    if (end != std::string::npos && head.rfind("CONNECT ", 0) == 0) {
        size_t sp = head.find(' ', 8);
        if (sp != std::string::npos && zt::bench::parse_endpoint(head.substr(8, sp - 8), target)) {
            upstream = zt::bench::connect_tcp(target);
        }
    }
    if (upstream < 0) {
        std::fprintf(stderr, "connect_proxy: refused (%s): %.80s\n",
                     upstream == -1 ? "bad request" : std::strerror(-upstream), head.c_str());
        static const char kBad[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
        (void)::write(client, kBad, sizeof kBad - 1);
        ::close(client);
        return;
    }
    static const char kOk[] = "HTTP/1.1 200 OK\r\n\r\n";
    std::string rest = head.substr(end + 4);
    if (::write(client, kOk, sizeof kOk - 1) != static_cast<ssize_t>(sizeof kOk - 1) ||
        (!rest.empty() &&
         ::write(upstream, rest.data(), rest.size()) != static_cast<ssize_t>(rest.size()))) {
        ::close(client);
        ::close(upstream);
        return;
    }
    std::thread back(pump, upstream, client);
    pump(client, upstream);
    back.join();
    ::close(client);
    ::close(upstream);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: connect_proxy [IP:]PORT\n");
        return 2;
    }
    zt::bench::Endpoint ep;
    if (!zt::bench::parse_endpoint(argv[1], ep)) {
        std::fprintf(stderr, "connect_proxy: bad address %s\n", argv[1]);
        return 2;
    }
    // A peer that resets mid-tunnel must end that tunnel (EPIPE), not the process.
    ::signal(SIGPIPE, SIG_IGN);
    zt::bench::raise_nofile();
    int lfd = zt::bench::listen_tcp(ep, 1024);
    if (lfd < 0) {
        std::fprintf(stderr, "connect_proxy: listen %s: %s\n", argv[1], std::strerror(-lfd));
        return 1;
    }
    std::printf("connect_proxy: listening on %s\n", zt::bench::endpoint_string(ep).c_str());
    std::fflush(stdout);
    for (;;) {
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        std::thread(serve, fd).detach();
    }
}
