// Tests for sockopt.cc on loopback: options stick (and pass from a listener to what it accepts),
// IPv4-mapped addresses are canonicalized, a port-less bind defers the port to connect, and a
// connection that was not redirected reports its local address as the original destination.

#include "src/proxy/sockopt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <doctest/doctest.h>

#include "zt/unique_fd.h"

namespace {

int get_int(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
    return value;
}

// listen_on_loopback binds `fd` to 127.0.0.1 on a free port, listens, and returns the address.
sockaddr_in listen_on_loopback(int fd) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return addr;
}

}  // namespace

TEST_CASE("sockopt: nodelay and ztunnel's keepalive settings") {
    zt::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    REQUIRE(zt::proxy::set_nodelay(fd.get()));
    CHECK(get_int(fd.get(), IPPROTO_TCP, TCP_NODELAY) == 1);
    REQUIRE(zt::proxy::set_keepalive(fd.get(), {}));
    CHECK(get_int(fd.get(), SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(get_int(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE) == 180);
    CHECK(get_int(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL) == 180);
    CHECK(get_int(fd.get(), IPPROTO_TCP, TCP_KEEPCNT) == 9);
}

TEST_CASE("sockopt: IPv4-mapped IPv6 becomes IPv4") {
    sockaddr_storage addr{};
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(8080);
    REQUIRE(::inet_pton(AF_INET6, "::ffff:198.18.1.2", &v6->sin6_addr) == 1);
    zt::proxy::canonicalize(addr);
    REQUIRE(addr.ss_family == AF_INET);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    CHECK(std::string(text) == "198.18.1.2");
    CHECK(ntohs(v4->sin_port) == 8080);

    sockaddr_storage plain{};
    auto* p6 = reinterpret_cast<sockaddr_in6*>(&plain);
    p6->sin6_family = AF_INET6;
    REQUIRE(::inet_pton(AF_INET6, "2001:db8::1", &p6->sin6_addr) == 1);
    zt::proxy::canonicalize(plain);
    CHECK(plain.ss_family == AF_INET6);
}

TEST_CASE("sockopt: an unredirected connection's original destination is its local address") {
    zt::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    sockaddr_in addr = listen_on_loopback(listener.get());

    zt::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    zt::UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted);

    auto original = zt::proxy::original_destination(accepted.get());
    REQUIRE(original);
    REQUIRE(original->ss_family == AF_INET);
    auto* got = reinterpret_cast<sockaddr_in*>(&*original);
    CHECK(got->sin_port == addr.sin_port);
    CHECK(got->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

TEST_CASE("sockopt: accepted sockets inherit nodelay and keepalive from their listener") {
    // open_listener relies on this instead of setting them on every accepted connection.
    zt::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    REQUIRE(zt::proxy::set_nodelay(listener.get()));
    REQUIRE(zt::proxy::set_keepalive(listener.get(),
                                     {.time_s = 77, .interval_s = 33, .probes = 4}));
    sockaddr_in addr = listen_on_loopback(listener.get());
    zt::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    zt::UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted);
    CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_NODELAY) == 1);
    CHECK(get_int(accepted.get(), SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_KEEPIDLE) == 77);
    CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_KEEPINTVL) == 33);
    CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_KEEPCNT) == 4);
}

TEST_CASE("sockopt: bind without a port leaves the port to connect") {
    zt::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    sockaddr_in addr = listen_on_loopback(listener.get());

    zt::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(zt::proxy::set_bind_address_no_port(client.get()));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(client.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    REQUIRE(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0);
    CHECK(bound.sin_port == 0);  // a plain bind would have taken a port already
    CHECK(bound.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    len = sizeof bound;
    REQUIRE(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0);
    CHECK(bound.sin_port != 0);
    CHECK(bound.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

namespace {

// unacked is how many segments `fd` sent that its peer has not acknowledged yet (tcp_info).
uint32_t unacked(int fd) {
    tcp_info info{};
    socklen_t len = sizeof info;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0);
    return info.tcpi_unacked;
}

// ack_waits connects to a loopback listener and sends one byte to the accepted side, which reads
// it; returns whether the client's byte was still unacknowledged then (the accepted side held its
// ACK). The accepted side then answers, and the client's byte must be acknowledged by it.
bool ack_waits(bool delayed_ack) {
    zt::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    zt::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    zt::UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted);
    REQUIRE(zt::proxy::set_nodelay(accepted.get()));
    if (delayed_ack) {
        REQUIRE(zt::proxy::set_delayed_ack(accepted.get()));
        CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_QUICKACK) == 0);
    } else {
        CHECK(get_int(accepted.get(), IPPROTO_TCP, TCP_QUICKACK) == 1);
    }
    char byte = 'x';
    REQUIRE(::send(client.get(), &byte, 1, 0) == 1);
    REQUIRE(::recv(accepted.get(), &byte, 1, 0) == 1);
    bool waited = unacked(client.get()) == 1;
    REQUIRE(::send(accepted.get(), &byte, 1, 0) == 1);
    REQUIRE(::recv(client.get(), &byte, 1, 0) == 1);
    CHECK(unacked(client.get()) == 0);
    return waited;
}

}  // namespace

TEST_CASE("sockopt: a delayed ACK rides on the answer instead of going alone") {
    // On loopback the accepted side's quick ACK is sent while the client's send runs, before
    // recv returns, so this does not depend on timing (the delayed-ACK timer is 40 ms).
    CHECK_FALSE(ack_waits(false));
    CHECK(ack_waits(true));
}
