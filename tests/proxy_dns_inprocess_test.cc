// In-process tests of the DNS proxy wired into a worker's pods: one node (a worker as
// `ztunnel run` assembles it, tests/support/proxy_node.h) with DNS capture on, its pod's sockets
// made by tests/support/loopback_sockets.h (the pod's address and an ephemeral port stand for
// 127.0.0.1:15053). A real UDP client asks the pod's proxy: a mesh name is answered from the
// config and counted in the node's `/metrics`; a name forwarded to an upstream that is a plain
// UDP socket of the test comes back with the upstream's answer; once the pod is removed its DNS
// socket is gone. Every wait is bounded.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/proxy/ports.h"
#include "src/proxy/sockaddr.h"
#include "tests/support/loopback_sockets.h"
#include "tests/support/proxy_node.h"

namespace {

using zt::proxy::ListenerKind;
using zt::state::IpAddr;
using zt::state::SocketAddr;

const std::string kPodUid = "c1//Pod/default/dnsclient";

std::string config(bool with_pod) {
    std::string pods = with_pod ? R"({"uid": ")" + kPodUid + R"(", "netns": "/proc/self/ns/net"})"
                                : std::string();
    return R"({
  "workloads": [
    {"uid": ")" +
           kPodUid +
           R"(", "name": "dnsclient", "namespace": "default",
     "canonicalName": "dnsclient", "canonicalRevision": "v1",
     "serviceAccount": "client", "workloadIps": ["127.0.3.2"], "protocol": "HBONE",
     "services": {}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10"], "ports": {"80": 8080}}
  ],
  "pods": [)" +
           pods +
           R"(]
})";
}

// query is a DNS query for `name` (dotted, no trailing dot) of type A with message id `id`.
std::vector<uint8_t> query(uint16_t id, const std::string& name) {
    std::vector<uint8_t> out = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string::npos) {
            dot = name.size();
        }
        out.push_back(uint8_t(dot - start));
        out.insert(out.end(), name.begin() + long(start), name.begin() + long(dot));
        start = dot + 1;
    }
    out.push_back(0);
    out.insert(out.end(), {0, 1, 0, 1});  // A, IN
    return out;
}

// udp_socket is a UDP socket bound to 127.0.0.1 on an ephemeral port.
zt::UniqueFd udp_socket() {
    zt::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    SocketAddr any{IpAddr::v4(127, 0, 0, 1), 0};
    sockaddr_storage storage;
    socklen_t length = zt::proxy::to_sockaddr(any, storage);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) == 0);
    return fd;
}

// receive waits up to 5 s for one datagram on `fd` (empty on timeout or error); `from` gets the
// sender.
std::vector<uint8_t> receive(int fd, SocketAddr* from = nullptr) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
        return {};
    }
    std::vector<uint8_t> buffer(4096);
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    ssize_t n = ::recvfrom(fd, buffer.data(), buffer.size(), 0,
                           reinterpret_cast<sockaddr*>(&storage), &length);
    if (n < 0) {
        return {};
    }
    if (from != nullptr) {
        *from = zt::proxy::to_socket_addr(storage);
    }
    buffer.resize(size_t(n));
    return buffer;
}

void send_to(int fd, const std::vector<uint8_t>& message, const SocketAddr& to) {
    sockaddr_storage storage;
    socklen_t length = zt::proxy::to_sockaddr(to, storage);
    REQUIRE(::sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&storage),
                     length) == ssize_t(message.size()));
}

// last_a is the address in the last 4 bytes of an answer whose last record is an A record.
std::string last_a(const std::vector<uint8_t>& answer) {
    if (answer.size() < 16) {
        return "";
    }
    IpAddr ip = IpAddr::v4(answer[answer.size() - 4], answer[answer.size() - 3],
                           answer[answer.size() - 2], answer[answer.size() - 1]);
    return ip.to_string();
}

}  // namespace

TEST_CASE("proxy dns: a captured pod's DNS proxy answers, forwards, counts and goes with the pod") {
    zt::UniqueFd upstream = udp_socket();
    zt::dns::ServerConfig dns;
    dns.forwarder.upstreams = {zt::proxy::local_address(upstream.get())};
    dns.forwarder.attempt_timeout_ns = 2 * zt::kNanosPerSecond;
    zt::test::LoopbackSockets sockets;
    sockets.add_pod(kPodUid, IpAddr::v4(127, 0, 3, 2));
    zt::test::ProxyPki pki;
    zt::test::ProxyNode node(sockets, pki, {}, &dns);
    REQUIRE(node.apply(config(true)));
    REQUIRE(node.wait_listening(kPodUid));
    SocketAddr proxy = sockets.listener(kPodUid, ListenerKind::dns_udp_v4);
    REQUIRE(proxy.port != 0);
    zt::UniqueFd client = udp_socket();

    // A mesh name: answered from the config, with the client's id.
    send_to(client.get(), query(0x1234, "server.default.svc.cluster.local"), proxy);
    std::vector<uint8_t> answer = receive(client.get());
    REQUIRE(answer.size() > 12);
    CHECK(answer[0] == 0x12);
    CHECK(answer[1] == 0x34);
    CHECK((answer[3] & 0x0f) == 0);  // NOERROR
    CHECK(answer[7] == 1);           // One answer.
    CHECK(last_a(answer) == "198.19.0.10");

    // Another name: forwarded to the upstream, whose answer comes back under the client's id.
    send_to(client.get(), query(0x4321, "www.upstream.test"), proxy);
    SocketAddr forwarder;
    std::vector<uint8_t> forwarded = receive(upstream.get(), &forwarder);
    REQUIRE(forwarded.size() > 12);
    std::vector<uint8_t> reply = forwarded;
    reply[2] = 0x81;  // QR, RD
    reply[3] = 0x80;  // RA, NOERROR
    reply[7] = 1;     // One answer: www.upstream.test A 198.19.50.1, TTL 60.
    reply.insert(reply.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 19, 50, 1});
    send_to(upstream.get(), reply, forwarder);
    answer = receive(client.get());
    REQUIRE(answer.size() > 12);
    CHECK(answer[0] == 0x43);
    CHECK(answer[1] == 0x21);
    CHECK(last_a(answer) == "198.19.50.1");

    std::string scrape = node.metrics();
    CHECK(zt::test::metric_sum(
                  scrape, "istio_dns_requests_total",
                  {R"(request_protocol="udp")", R"(source_canonical_service="dnsclient")"}) == 2);
    CHECK(zt::test::metric_sum(scrape, "istio_dns_upstream_requests_total") == 1);

    // The pod removed: its DNS socket closes with its other listeners.
    REQUIRE(node.apply(config(false)));
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {
        zt::UniqueFd probe(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_storage storage;
        socklen_t length = zt::proxy::to_sockaddr(proxy, storage);
        gone = ::bind(probe.get(), reinterpret_cast<sockaddr*>(&storage), length) == 0;
        if (!gone) {
            ::usleep(10000);
        }
    }
    CHECK(gone);  // The address is free again: no socket of the pod holds it.
}
