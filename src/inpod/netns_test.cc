// Tests for netns.cc: a socket made "in" a namespace really lives there. Needs CAP_SYS_ADMIN to
// create a namespace (unshare); skipped with a message otherwise.

#include "src/inpod/netns.h"

#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include <doctest/doctest.h>

namespace {

// make_netns creates a fresh network namespace on a scratch thread and returns a handle to it.
std::optional<zt::inpod::Netns> make_netns() {
    std::optional<zt::inpod::Netns> result;
    std::thread([&] {
        if (::unshare(CLONE_NEWNET) != 0) {
            return;
        }
        auto ns = zt::inpod::Netns::current();
        if (ns) {
            result.emplace(std::move(*ns));
        }
    }).join();
    return result;
}

ino_t socket_netns_inode(int fd) {
    zt::UniqueFd ns(::ioctl(fd, SIOCGSKNS));

    struct stat st {};

    if (!ns || ::fstat(ns.get(), &st) != 0) {
        return 0;
    }
    return st.st_ino;
}

}  // namespace

TEST_CASE("inpod: a socket made in a pod netns lives there, and the thread comes back") {
    if (::geteuid() != 0) {
        MESSAGE("skipped: creating a network namespace needs root");
        return;
    }
    auto pod = make_netns();
    REQUIRE(pod.has_value());
    auto own = zt::inpod::Netns::current();
    REQUIRE(own);
    CHECK(own->inode() != pod->inode());

    auto sock = zt::inpod::socket_in(*pod, AF_INET, SOCK_STREAM, 0, 1337);
    REQUIRE(sock);
    CHECK(socket_netns_inode(sock->get()) == pod->inode());
    uint32_t mark = 0;
    socklen_t len = sizeof mark;
    REQUIRE(::getsockopt(sock->get(), SOL_SOCKET, SO_MARK, &mark, &len) == 0);
    CHECK(mark == 1337);

    auto after = zt::inpod::Netns::current();
    REQUIRE(after);
    CHECK(after->inode() == own->inode());
}

TEST_CASE("inpod: opening something that is not a network namespace fails cleanly") {
    auto missing = zt::inpod::Netns::open("/nonexistent/zt-netns");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == zt::Errc::not_found);
    auto not_ns = zt::inpod::Netns::open("/proc/self/status");
    REQUIRE_FALSE(not_ns);
    CHECK(not_ns.error().code == zt::Errc::invalid_argument);
}
