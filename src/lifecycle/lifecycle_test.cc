// Unit tests for the lifecycle helpers: signals
// through a real signalfd (thread-directed, so no other test thread can be hit), the
// RLIMIT_NOFILE raise and a real systemd-style notify socket.

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <doctest/doctest.h>

#include "src/lifecycle/process.h"
#include "zt/clock.h"
#include "zt/unique_fd.h"

using namespace zt::lifecycle;

TEST_CASE("lifecycle: first signal drains, a second SIGINT exits now") {
    sigset_t old_mask;
    REQUIRE(pthread_sigmask(SIG_SETMASK, nullptr, &old_mask) == 0);
    auto signals = ShutdownSignals::open();
    REQUIRE(signals.has_value());
    CHECK(signals->on_readable() == ShutdownRequest::none);
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::graceful);
    CHECK(signals->draining());
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::none);  // already draining
    REQUIRE(pthread_kill(pthread_self(), SIGINT) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::immediate);
    // Nothing is left pending, so restoring the mask cannot deliver a signal.
    REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, nullptr) == 0);
}

TEST_CASE("lifecycle: SIGPIPE is ignored and RLIMIT_NOFILE goes to the hard limit") {
    ignore_sigpipe();
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    zt::UniqueFd a(pair[0]), b(pair[1]);
    b.reset();
    CHECK(::write(a.get(), "x", 1) == -1);  // EPIPE, and the process is still here
    auto raised = raise_nofile_limit();
    REQUIRE(raised.has_value());
    rlimit limit;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
    CHECK(limit.rlim_cur == limit.rlim_max);
    CHECK(*raised == uint64_t(limit.rlim_cur));
}

TEST_CASE("lifecycle: systemd notification goes to NOTIFY_SOCKET") {
    unsetenv("NOTIFY_SOCKET");
    CHECK_FALSE(notify_systemd("READY=1"));
    std::string path = "/tmp/zt-notify-" + std::to_string(getpid());
    unlink(path.c_str());
    zt::UniqueFd listener(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
    CHECK(notify_systemd("READY=1"));
    char buf[64] = {};
    CHECK(::recv(listener.get(), buf, sizeof buf, MSG_DONTWAIT) == 7);
    CHECK(std::string(buf) == "READY=1");
    unsetenv("NOTIFY_SOCKET");
    unlink(path.c_str());
}

TEST_CASE("lifecycle: SIGHUP asks for a reload and SIGUSR1 is ignored; neither drains or kills") {
    sigset_t old_mask;
    REQUIRE(pthread_sigmask(SIG_SETMASK, nullptr, &old_mask) == 0);
    auto signals = ShutdownSignals::open();
    REQUIRE(signals.has_value());
    sigset_t mask;
    REQUIRE(pthread_sigmask(SIG_SETMASK, nullptr, &mask) == 0);
    // Unblocked, either signal's default action would end the whole process (no drain).
    REQUIRE(sigismember(&mask, SIGHUP) == 1);
    REQUIRE(sigismember(&mask, SIGUSR1) == 1);
    REQUIRE(pthread_kill(pthread_self(), SIGHUP) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::none);
    CHECK(signals->take_reload());
    CHECK_FALSE(signals->take_reload());  // taken once
    REQUIRE(pthread_kill(pthread_self(), SIGUSR1) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::none);
    CHECK_FALSE(signals->take_reload());
    CHECK_FALSE(signals->draining());
    // A SIGTERM after them still drains.
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0);
    CHECK(signals->on_readable() == ShutdownRequest::graceful);
    sigset_t pending;
    REQUIRE(sigpending(&pending) == 0);
    CHECK(sigismember(&pending, SIGHUP) == 0);
    CHECK(sigismember(&pending, SIGUSR1) == 0);
    REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, nullptr) == 0);
}
