// net.cc implements the loopback helpers the ring and relay tests share. Only 127.0.0.1 and ::1
// are ever used; failures that make a test meaningless abort with a message.

#include "tests/support/net.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace zt::test {

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "test support: %s: %s\n", what, std::strerror(errno));
    std::abort();
}

}  // namespace

socklen_t loopback_address(int family, uint16_t port, sockaddr_storage& storage) {
    std::memset(&storage, 0, sizeof(storage));
    if (family == AF_INET6) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_loopback;
        v6->sin6_port = htons(port);
        return sizeof(sockaddr_in6);
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4->sin_port = htons(port);
    return sizeof(sockaddr_in);
}

UniqueFd listen_loopback(int family, uint16_t& port) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        die("socket");
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage address;
    socklen_t length = loopback_address(family, 0, address);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd.get(), 4096) != 0) {
        die("bind/listen");
    }
    length = sizeof(address);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    return fd;
}

UniqueFd connect_loopback(int family, uint16_t port) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        die("socket");
    }
    sockaddr_storage address;
    socklen_t length = loopback_address(family, port, address);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) {
        return UniqueFd();
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

UniqueFd accept_blocking(int fd) {
    return UniqueFd(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void fill_stream(uint64_t seed, uint64_t offset, std::span<uint8_t> out) {
    // Byte i of the stream is a hash of (seed, i / 8) picked apart: cheap, position-dependent, so
    // a dropped, duplicated or reordered chunk changes the digest.
    for (size_t i = 0; i < out.size(); ++i) {
        uint64_t position = offset + i;
        uint64_t x = (position / 8) * 0x9E3779B97F4A7C15ull ^ seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        out[i] = uint8_t(x >> (8 * (position % 8)));
    }
}

bool write_all(int fd, std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        bytes = bytes.subspan(size_t(n));
    }
    return true;
}

bool read_all(int fd, std::span<uint8_t> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::recv(fd, bytes.data(), bytes.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        bytes = bytes.subspan(size_t(n));
    }
    return true;
}

std::set<std::string> open_fds() {
    std::set<std::string> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        die("opendir /proc/self/fd");
    }
    int own = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.' || std::atoi(entry->d_name) == own) {
            continue;
        }
        char target[256] = {};
        std::string path = std::string("/proc/self/fd/") + entry->d_name;
        ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
        fds.insert(std::string(entry->d_name) + " -> " + (n > 0 ? target : "?"));
    }
    ::closedir(dir);
    return fds;
}

int thread_count() {
    int count = 0;
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) {
        die("opendir /proc/self/task");
    }
    while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') {
            ++count;
        }
    }
    ::closedir(dir);
    return count;
}

}  // namespace zt::test
