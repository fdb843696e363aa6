// zt_relay is the test and benchmark tool for the splice relay (not the installed product):
//
//   zt_relay --listen IP:PORT --target IP:PORT [--workers N] [--max-conns N]
//            [--idle-timeout DUR] [--connect-timeout DUR] [--pipe-size BYTES]
//            [--splice direct|ring]
//
// N worker threads each own a Ring, a SO_REUSEPORT listener and a RelayEngine; each accepted
// connection is connected to the target and relayed. Once every worker serves, it prints exactly
// one line `zt_relay: listening on IP:PORT` to stdout. SIGINT/SIGTERM drain every relay and exit
// 0. Counters go to stderr at exit. It must not grow features the product does not need.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "uring/ring.h"
#include "uring/splice_relay.h"
#include "zt/duration.h"
#include "zt/unique_fd.h"

namespace {

using zt::UniqueFd;
using zt::uring::Completion;
using zt::uring::RelayEngine;
using zt::uring::RelayOptions;
using zt::uring::RelayReport;
using zt::uring::Ring;

union Address {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

struct Endpoint {
    Address address{};
    socklen_t length = 0;
    int family = AF_INET;
};

// parse_endpoint reads `IP:PORT` or `[IPv6]:PORT`.
bool parse_endpoint(std::string_view text, Endpoint& out) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    std::string host(text.substr(0, colon));
    std::string_view port_text = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
        return false;
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (::inet_pton(AF_INET, host.c_str(), &out.address.v4.sin_addr) == 1) {
        out.family = AF_INET;
        out.address.v4.sin_family = AF_INET;
        out.address.v4.sin_port = htons(uint16_t(port));
        out.length = sizeof(sockaddr_in);
        return true;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &out.address.v6.sin6_addr) == 1) {
        out.family = AF_INET6;
        out.address.v6.sin6_family = AF_INET6;
        out.address.v6.sin6_port = htons(uint16_t(port));
        out.length = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

std::string format_endpoint(const Endpoint& endpoint) {
    char host[INET6_ADDRSTRLEN] = {};
    if (endpoint.family == AF_INET6) {
        ::inet_ntop(AF_INET6, &endpoint.address.v6.sin6_addr, host, sizeof(host));
        return "[" + std::string(host) +
               "]:" + std::to_string(ntohs(endpoint.address.v6.sin6_port));
    }
    ::inet_ntop(AF_INET, &endpoint.address.v4.sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(endpoint.address.v4.sin_port));
}

// Worker is one thread: a ring, a listener, a relay engine, and a wake-up completion the main
// thread reaches with msg_ring (or an eventfd poll where the kernel lacks msg_ring).
struct Worker {
    const Endpoint* target = nullptr;
    RelayOptions options;
    UniqueFd listener;
    UniqueFd wake_fd;              // eventfd fallback.
    std::atomic<int> ring_fd{-1};  // -2: the ring could not be created.
    std::atomic<bool> uses_msg_ring{false};
    bool stopping = false;
    Ring* ring = nullptr;
    RelayEngine* engine = nullptr;
    Completion accept;
    Completion wake;                // The msg_ring target.
    Completion wake_poll;           // The eventfd poll, armed always: the fallback path.
    zt::uring::Timer accept_retry;  // Re-arms accept after an error such as EMFILE.
    uint64_t accept_errors_total = 0;
    zt::uring::RelayCounters counters{};
    std::thread thread;
};

void on_done(void*, const RelayReport&) {}

void on_accept(Completion& self, int32_t res, uint32_t flags) {
    Worker& worker = *static_cast<Worker*>(self.context);
    if (res >= 0) {
        UniqueFd client(res);
        UniqueFd target(
                ::socket(worker.target->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (target) {
            // The client inherited TCP_NODELAY from the listener (see make_listener).
            int one = 1;
            ::setsockopt(target.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            // Over the limit the engine closes both fds and counts it.
            (void)worker.engine->connect_and_relay(std::move(client), std::move(target),
                                                   &worker.target->address.any,
                                                   worker.target->length, nullptr);
        } else {
            ++worker.accept_errors_total;  // No fd for the target: the client is closed.
        }
    } else if (res != -ECANCELED) {
        ++worker.accept_errors_total;  // EMFILE and friends: shed, keep accepting.
    }
    if ((flags & IORING_CQE_F_MORE) == 0 && !worker.stopping) {
        if (res < 0) {
            // An error ends a multishot accept; re-arming at once would spin while the error
            // (say, no fds left) lasts. Try again shortly.
            worker.ring->arm_timer(worker.accept_retry, 10'000'000);
        } else {
            worker.ring->accept_multishot(self, worker.listener.get());
        }
    }
}

void on_accept_retry(Completion& self, int32_t, uint32_t) {
    Worker& worker = *static_cast<Worker*>(self.context);
    if (!worker.stopping) {
        worker.ring->accept_multishot(worker.accept, worker.listener.get());
    }
}

void on_wake(Completion& self, int32_t, uint32_t) {
    Worker& worker = *static_cast<Worker*>(self.context);
    if (worker.stopping) {
        return;
    }
    worker.stopping = true;
    worker.ring->cancel(worker.accept);
    worker.ring->cancel(worker.wake_poll);
    worker.ring->cancel_timer(worker.accept_retry);
    worker.engine->drain();
}

void run_worker(Worker& worker) {
    auto ring = Ring::create();
    if (!ring) {
        worker.ring_fd = -2;
        return;
    }
    RelayEngine engine(**ring, worker.options, &on_done, &worker);
    worker.ring = ring->get();
    worker.engine = &engine;
    worker.accept.callback = &on_accept;
    worker.accept.context = &worker;
    worker.wake.callback = &on_wake;
    worker.wake.context = &worker;
    worker.accept_retry.completion.callback = &on_accept_retry;
    worker.accept_retry.completion.context = &worker;
    worker.wake_poll.callback = &on_wake;
    worker.wake_poll.context = &worker;
    worker.ring->accept_multishot(worker.accept, worker.listener.get());
    worker.ring->poll(worker.wake_poll, worker.wake_fd.get(), POLLIN);
    worker.uses_msg_ring = worker.ring->features().msg_ring;
    worker.ring_fd = worker.ring->fd();
    while (!worker.stopping || engine.active() > 0 || worker.ring->in_flight() > 0) {
        worker.ring->run();
    }
    worker.counters = engine.counters();
    worker.engine = nullptr;
    worker.ring = nullptr;
}

UniqueFd make_listener(const Endpoint& endpoint) {
    UniqueFd fd(::socket(endpoint.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fd;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here instead of
    // one per connection.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::bind(fd.get(), &endpoint.address.any, endpoint.length) != 0 ||
        ::listen(fd.get(), 4096) != 0) {
        return UniqueFd();
    }
    return fd;
}

// raise_fd_limit lifts the soft fd limit to the hard one (and, as root, higher): each relayed
// connection holds two sockets, and benchmarks keep 10,000 of them open.
void raise_fd_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return;
    }
    rlimit wanted{1 << 20, 1 << 20};
    if (limit.rlim_max < wanted.rlim_max && ::setrlimit(RLIMIT_NOFILE, &wanted) == 0) {
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

int usage() {
    std::fprintf(stderr,
                 "usage: zt_relay --listen IP:PORT --target IP:PORT [--workers N] "
                 "[--max-conns N] [--idle-timeout DUR] [--connect-timeout DUR] "
                 "[--pipe-size BYTES] [--splice direct|ring]\n");
    return 2;
}

bool parse_u32(std::string_view text, uint32_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

// Config is the command line.
struct Config {
    Endpoint listen_at;
    Endpoint target;
    uint32_t workers = 1;
    RelayOptions options;
};

// parse_args fills `config` from the command line; false (after a message) on any error.
bool parse_args(int argc, char** argv, Config& config) {
    bool have_listen = false, have_target = false;
    RelayOptions& options = config.options;
    options.relays_max = 16384;
    for (int i = 1; i < argc; i += 2) {
        std::string_view flag = argv[i];
        if (i + 1 >= argc) {
            return false;
        }
        std::string_view value = argv[i + 1];
        bool ok = true;
        if (flag == "--listen") {
            ok = have_listen = parse_endpoint(value, config.listen_at);
        } else if (flag == "--target") {
            ok = have_target = parse_endpoint(value, config.target);
        } else if (flag == "--workers") {
            ok = parse_u32(value, config.workers) && config.workers > 0 && config.workers <= 256;
        } else if (flag == "--max-conns") {
            ok = parse_u32(value, options.relays_max) && options.relays_max > 0;
        } else if (flag == "--pipe-size") {
            ok = parse_u32(value, options.pipe_size_bytes) && options.pipe_size_bytes >= 4096;
        } else if (flag == "--idle-timeout" || flag == "--connect-timeout") {
            auto ns = zt::parse_duration_ns(value);
            ok = ns.has_value();
            if (ok) {
                (flag == "--idle-timeout" ? options.idle_timeout_ns : options.connect_timeout_ns) =
                        *ns;
            }
        } else if (flag == "--splice") {
            ok = value == "direct" || value == "ring";
            options.splice_mode =
                    value == "ring" ? zt::uring::SpliceMode::ring : zt::uring::SpliceMode::direct;
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "zt_relay: bad value for %s: %s\n", argv[i], argv[i + 1]);
            return false;
        }
    }
    return have_listen && have_target;
}

// wake_workers tells every running worker to stop: msg_ring from a small ring of our own, else
// the eventfd each worker also polls.
void wake_workers(std::vector<std::unique_ptr<Worker>>& workers) {
    auto waker = Ring::create(zt::uring::RingOptions{8, 0});
    for (auto& worker : workers) {
        if (worker->ring_fd.load() < 0) {
            continue;
        }
        if (worker->uses_msg_ring && waker && (*waker)->features().msg_ring) {
            (*waker)->msg_ring(worker->ring_fd.load(), worker->wake, 0);
        } else {
            uint64_t one = 1;
            (void)!::write(worker->wake_fd.get(), &one, sizeof(one));
        }
    }
    if (waker) {
        (*waker)->submit();
    }
}

void print_counters(const Worker& worker) {
    const auto& c = worker.counters;
    std::fprintf(stderr,
                 "zt_relay: worker started=%llu completed=%llu reset=%llu idle=%llu "
                 "connect_failed=%llu limit_hit=%llu accept_errors=%llu splices=%llu "
                 "wakeups=%llu\n",
                 (unsigned long long)c.started_total, (unsigned long long)c.completed_total,
                 (unsigned long long)c.reset_total, (unsigned long long)c.idle_timeout_total,
                 (unsigned long long)c.connect_failed_total, (unsigned long long)c.limit_hit_total,
                 (unsigned long long)worker.accept_errors_total,
                 (unsigned long long)c.splices_total, (unsigned long long)c.readiness_events_total);
}

}  // namespace

int main(int argc, char** argv) {
    Config config;
    if (!parse_args(argc, argv, config)) {
        return usage();
    }
    raise_fd_limit();

    // Signals are taken synchronously by the main thread; workers never see them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::vector<std::unique_ptr<Worker>> workers;
    for (uint32_t i = 0; i < config.workers; ++i) {
        auto worker = std::make_unique<Worker>();
        worker->target = &config.target;
        worker->options = config.options;
        worker->listener = make_listener(config.listen_at);
        if (!worker->listener) {
            std::fprintf(stderr, "zt_relay: cannot listen on %s: %s\n",
                         format_endpoint(config.listen_at).c_str(), std::strerror(errno));
            return 1;
        }
        if (i == 0) {
            // Port 0: every further worker binds the port the first one got.
            socklen_t length = sizeof(config.listen_at.address);
            ::getsockname(worker->listener.get(), &config.listen_at.address.any, &length);
        }
        worker->wake_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        workers.push_back(std::move(worker));
    }
    bool failed = false;
    for (auto& worker : workers) {
        worker->thread = std::thread(run_worker, std::ref(*worker));
        while (worker->ring_fd.load() == -1) {
            std::this_thread::yield();
        }
        failed = failed || worker->ring_fd.load() < 0;
    }
    if (!failed) {
        std::printf("zt_relay: listening on %s\n", format_endpoint(config.listen_at).c_str());
        std::fflush(stdout);
        int signal_number = 0;
        sigwait(&signals, &signal_number);
    }
    wake_workers(workers);
    for (auto& worker : workers) {
        worker->thread.join();
        print_counters(*worker);
    }
    if (failed) {
        std::fprintf(stderr, "zt_relay: io_uring is unavailable (see the error above)\n");
        return 1;
    }
    return 0;
}
