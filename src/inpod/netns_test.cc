// Tests for netns.cc: a socket made "in" a namespace really lives there. Needs CAP_SYS_ADMIN to
// create a namespace (unshare); skipped with a message otherwise.

#include "src/inpod/netns.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
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

namespace {

// open_bounded runs `Netns::open(path)` on a scratch thread and waits up to 2 s for it. A call
// that blocks (a FIFO opened for reading waits for a writer) fails the test, and is then released
// by opening the FIFO's write end so the thread can be joined.
std::optional<zt::Result<zt::inpod::Netns>> open_bounded(const std::string& path, bool is_fifo) {
    std::promise<zt::Result<zt::inpod::Netns>> promise;
    auto future = promise.get_future();
    std::thread opener([&] { promise.set_value(zt::inpod::Netns::open(path)); });
    bool in_time = future.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    if (!in_time && is_fifo) {
        zt::UniqueFd writer(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        future.wait();
    }
    opener.join();
    if (!in_time) {
        return std::nullopt;
    }
    return future.get();
}

}  // namespace

TEST_CASE(
        "inpod: a FIFO, a regular file or a directory as netns path is refused without blocking") {
    char dir_template[] = "/tmp/zt-netns-test.XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    std::string dir = dir_template;
    std::string fifo = dir + "/fifo";
    std::string file = dir + "/file";
    std::string subdir = dir + "/dir";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    { zt::UniqueFd created(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)); }
    REQUIRE(::mkdir(subdir.c_str(), 0700) == 0);

    for (const std::string& path : {fifo, file, subdir, std::string("/proc/self/ns/mnt")}) {
        CAPTURE(path);
        auto opened = open_bounded(path, path == fifo);
        REQUIRE_MESSAGE(opened.has_value(), "Netns::open blocked on " << path);
        REQUIRE_FALSE(*opened);
        CHECK(opened->error().code == zt::Errc::invalid_argument);
    }
    ::unlink(fifo.c_str());
    ::unlink(file.c_str());
    ::rmdir(subdir.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("inpod: names_same_namespace tells a path that now names another namespace") {
    auto own = zt::inpod::Netns::current();
    REQUIRE(own);
    // The thread's own namespace is what /proc/thread-self/ns/net names; a missing path is not
    // taken for a replacement (nothing could replace the pod's namespace with it).
    CHECK(own->names_same_namespace("/proc/thread-self/ns/net"));
    CHECK(own->names_same_namespace("/nonexistent/zt-netns"));
    // Another namespace file (a mount namespace's here, a recreated pod's in life) does not.
    CHECK_FALSE(own->names_same_namespace("/proc/self/ns/mnt"));
    if (::geteuid() != 0) {
        MESSAGE("skipped the second half: creating a network namespace needs root");
        return;
    }
    auto pod = make_netns();
    REQUIRE(pod.has_value());
    std::string path = "/proc/self/fd/" + std::to_string(pod->fd());
    CHECK(pod->names_same_namespace(path));
    CHECK_FALSE(own->names_same_namespace(path));
}
