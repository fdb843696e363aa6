// In-process tests of a worker's caps (src/proxy/limits.h): one server node (one worker, as
// `ztunnel run` assembles it) on loopback with an echo application, and peers that a hostile pod
// would be: TCP sockets that never send a ClientHello, and raw HBONE clients (real mutual TLS
// with run-time certificates) that open more links or streams than allowed. Each case provokes a
// cap, reads its count from the node's `/metrics` body, and checks that what stays under the cap
// still works. Every wait is bounded.

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "src/proxy/ports.h"
#include "tests/support/echo_app.h"
#include "tests/support/h2_frames.h"
#include "tests/support/log_capture.h"
#include "tests/support/loopback_sockets.h"
#include "tests/support/proxy_node.h"
#include "tests/support/raw_hbone_client.h"

namespace {

using zt::proxy::ListenerKind;
using zt::state::IpAddr;
using zt::state::SocketAddr;
using zt::test::metric_sum;
using zt::test::RawHboneClient;
using zt::test::TestClient;

const std::string kServerUid = "c1//Pod/default/server";
const IpAddr kServerIp = *IpAddr::parse("127.0.3.2");
const IpAddr kPeerIp = *IpAddr::parse("127.0.3.9");
const std::string kClientIdentity = "spiffe://cluster.local/ns/default/sa/client";
const std::string kOtherIdentity = "spiffe://cluster.local/ns/default/sa/other";

std::string config() {
    return R"({
  "workloads": [
    {"uid": "c1//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.3.2"], "protocol": "HBONE",
     "node": "node2", "services": {}}
  ],
  "policies": [],
  "pods": [{"uid": "c1//Pod/default/server", "netns": "/proc/self/ns/net"}]
})";
}

// Server is one node with `options` whose only pod is the echo application's.
struct Server {
    explicit Server(zt::proxy::WorkerOptions options) {
        sockets.add_pod(kServerUid, kServerIp);
        node = std::make_unique<zt::test::ProxyNode>(sockets, pki, options);
        std::string errors;
        REQUIRE_MESSAGE(node->apply(config(), &errors), errors);
        REQUIRE(node->wait_listening(kServerUid));
    }

    SocketAddr hbone() const { return sockets.listener(kServerUid, ListenerKind::inbound_hbone); }

    // peer makes a raw HBONE client proving `identity`, its handshake done (null on failure),
    // `with_finished` sent in the same write as its Finished.
    std::unique_ptr<RawHboneClient> peer(const std::string& identity,
                                         zt::ByteSpan with_finished = {}) {
        return RawHboneClient::connect(
                kPeerIp, hbone(), pki.client_context(identity),
                zt::certs::Identity::parse("spiffe://cluster.local/ns/default/sa/server").value(),
                with_finished);
    }

    // refused waits until `reason` was counted `count` times and returns the last scrape's count.
    uint64_t refused(std::string_view reason, uint64_t count) {
        std::string label = "reason=\"" + std::string(reason) + "\"";
        uint64_t seen = 0;
        for (int i = 0; i < 500 && seen < count; ++i) {
            seen = metric_sum(node->metrics(), "ztunnel_connections_refused_total", {label});
            if (seen < count) {
                ::usleep(10000);
            }
        }
        return seen;
    }

    zt::test::LogCapture log;
    zt::test::LoopbackSockets sockets;
    zt::test::ProxyPki pki;
    zt::test::EchoApp app{kServerIp};
    std::unique_ptr<zt::test::ProxyNode> node;
};

// stalled opens a TCP connection to the node's 15008 that sends nothing (a handshake that
// never starts), with `timeout_ms` for reads.
std::unique_ptr<TestClient> stalled(Server& server, int timeout_ms = 10000) {
    auto client = std::make_unique<TestClient>(kPeerIp, timeout_ms);
    REQUIRE(client->connect(server.hbone()));
    return client;
}

}  // namespace

TEST_CASE("proxy_limits: pending TLS handshakes are capped per worker and counted") {
    zt::proxy::WorkerOptions options;
    options.pending_handshakes_max = 2;
    Server server(options);
    auto first = stalled(server);
    auto second = stalled(server);
    auto third = stalled(server);
    // The third is over the cap: closed at once, without a TLS byte.
    CHECK(third->read_end() == "eof");
    CHECK(server.refused("pending_handshakes_limit", 1) == 1);
    // One stalled handshake goes: there is room for another, which the node keeps.
    first.reset();
    uint64_t failures = 0;
    for (int i = 0; i < 500 && failures == 0; ++i) {
        failures = metric_sum(server.node->metrics(), "ztunnel_tls_handshake_failures_total");
        ::usleep(10000);
    }
    REQUIRE(failures == 1);
    auto fourth = stalled(server, 500);
    CHECK(fourth->read_end() == "timeout");
    CHECK(server.refused("pending_handshakes_limit", 1) == 1);
    // The log says it once for the burst.
    CHECK(server.log.wait_for({"connection refused at a limit", "pending_handshakes_limit"}));
}

TEST_CASE("proxy_limits: HBONE connections are capped per worker and counted") {
    zt::proxy::WorkerOptions options;
    options.hbone_connections_max = 1;
    Server server(options);
    auto first = server.peer(kClientIdentity);
    REQUIRE(first != nullptr);
    auto second = stalled(server);
    CHECK(second->read_end() == "eof");
    CHECK(server.refused("hbone_connections_limit", 1) == 1);
}

TEST_CASE("proxy_limits: HBONE connections of one peer identity are capped and counted") {
    zt::proxy::WorkerOptions options;
    options.peer_connections_max = 1;
    Server server(options);
    auto first = server.peer(kClientIdentity);
    REQUIRE(first != nullptr);
    // Its second link is closed once its identity is known; another identity is not affected.
    auto second = server.peer(kClientIdentity);
    if (second != nullptr) {
        (void)second->receive(5000);  // Until the node closes it.
    }
    CHECK(server.refused("peer_connections_limit", 1) == 1);
    auto other = server.peer(kOtherIdentity);
    REQUIRE(other != nullptr);
    std::vector<uint8_t> frames = zt::test::client_preface();
    zt::test::append_connect(frames, 1, server.app.address().to_string());
    REQUIRE(other->send(frames));
    auto received = zt::test::parse_frames(other->receive(2000));
    CHECK(zt::test::count_frames(received, zt::test::kFrameHeaders) == 1);
    CHECK(server.refused("peer_connections_limit", 1) == 1);
}

TEST_CASE("proxy_limits: a link over its peer's cap starts none of the streams it sent") {
    // The refused link's CONNECT arrives with its Finished, so the server decodes the request in
    // the read that refuses the link: no tunnel may start on the closing link.
    zt::proxy::WorkerOptions options;
    options.peer_connections_max = 1;
    Server server(options);
    auto first = server.peer(kClientIdentity);
    REQUIRE(first != nullptr);
    std::vector<uint8_t> frames = zt::test::client_preface();
    zt::test::append_connect(frames, 1, server.app.address().to_string());
    auto second = server.peer(kClientIdentity, frames);
    if (second != nullptr) {
        auto received = zt::test::parse_frames(second->receive(5000));  // Until it is closed.
        CHECK(zt::test::count_frames(received, zt::test::kFrameHeaders) == 0);
    }
    CHECK(server.refused("peer_connections_limit", 1) == 1);
    CHECK(server.node->wait_idle());
    CHECK(server.app.peers().empty());
    // The node still serves the identity on its first link.
    REQUIRE(first->send(frames));
    auto answered = zt::test::parse_frames(first->receive(2000));
    CHECK(zt::test::count_frames(answered, zt::test::kFrameHeaders) == 1);
}

TEST_CASE("proxy_limits: inbound streams of one peer identity are capped and counted") {
    zt::proxy::WorkerOptions options;
    options.peer_streams_max = 2;
    Server server(options);
    auto peer = server.peer(kClientIdentity);
    REQUIRE(peer != nullptr);
    std::vector<uint8_t> frames = zt::test::client_preface();
    for (int32_t stream = 1; stream <= 5; stream += 2) {
        zt::test::append_connect(frames, stream, server.app.address().to_string());
    }
    REQUIRE(peer->send(frames));
    CHECK(server.refused("peer_streams_limit", 1) == 1);
    // Two reached the application; the third got its answer (503) without a socket.
    std::vector<zt::test::H2Frame> received;
    for (int i = 0; i < 50 && zt::test::count_frames(received, zt::test::kFrameHeaders) < 3; ++i) {
        auto more = zt::test::parse_frames(peer->receive(100));
        received.insert(received.end(), more.begin(), more.end());
    }
    CHECK(zt::test::count_frames(received, zt::test::kFrameHeaders) == 3);
    for (int i = 0; i < 500 && server.app.peers().size() < 2; ++i) {
        ::usleep(10000);
    }
    CHECK(server.app.peers().size() == 2);
    // A stream that ends gives its place back.
    peer.reset();
    CHECK(server.node->wait_idle());
    auto again = server.peer(kClientIdentity);
    REQUIRE(again != nullptr);
    frames = zt::test::client_preface();
    zt::test::append_connect(frames, 1, server.app.address().to_string());
    REQUIRE(again->send(frames));
    for (int i = 0; i < 500 && server.app.peers().size() < 3; ++i) {
        ::usleep(10000);
    }
    CHECK(server.app.peers().size() == 3);
    CHECK(server.refused("peer_streams_limit", 1) == 1);
}

TEST_CASE("proxy_limits: the ring's submission-queue waits reach /metrics from the worker") {
    // A submission queue of 2 overflows when the pod's three listeners arm their accepts (in one
    // reconcile, before any submit), and the first three submits for room are refused, as a
    // kernel short of memory does: the worker waits for completions three times, and its tick
    // adds them to its shard.
    zt::proxy::WorkerOptions options;
    options.ring_entries = 2;
    options.ring_refused_submits_for_testing = 3;
    Server server(options);
    std::string scrape;
    uint64_t waits = 0;
    for (int i = 0; i < 500 && waits < 3; ++i) {
        scrape = server.node->metrics();
        waits = metric_sum(scrape, "ztunnel_uring_sq_waits_total");
        ::usleep(10000);
    }
    CHECK_MESSAGE(waits == 3, scrape);
    CHECK(scrape.find("# HELP ztunnel_uring_sq_waits_total") != std::string::npos);
    // The worker still serves: a stalled handshake is taken, not refused.
    auto client = stalled(server, 300);
    CHECK(client->read_end() == "timeout");
}

namespace {

// two_node_config is a client pod on node 1 and the server pod on node 2, `pod` captured.
std::string two_node_config(const std::string& pod) {
    return R"({
  "workloads": [
    {"uid": "c1//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["127.0.3.3"], "protocol": "HBONE",
     "node": "node1", "services": {}},
    {"uid": "c1//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.3.2"], "protocol": "HBONE",
     "node": "node2", "services": {}}
  ],
  "policies": [],
  "pods": [{"uid": ")" +
           pod + R"(", "netns": "/proc/self/ns/net"}]
})";
}

}  // namespace

TEST_CASE("proxy_limits: reads that find every lent buffer taken are counted and lose nothing") {
    // Reliability F18: one lent buffer per worker, eight tunnels streaming at once. A read that
    // finds it taken (-ENOBUFS) is re-armed into the reader's own buffer and counted.
    const std::string client_uid = "c1//Pod/default/client";
    const IpAddr client_ip = *IpAddr::parse("127.0.3.3");
    zt::test::LogCapture log;
    zt::test::LoopbackSockets sockets;
    sockets.add_pod(client_uid, client_ip);
    sockets.add_pod(kServerUid, kServerIp);
    zt::test::ProxyPki pki;
    zt::test::EchoApp app{kServerIp};
    zt::proxy::WorkerOptions options;
    options.tunnel_read_buffers = 1;
    auto client = std::make_unique<zt::test::ProxyNode>(sockets, pki, options);
    auto server = std::make_unique<zt::test::ProxyNode>(sockets, pki, options);
    std::string errors;
    REQUIRE_MESSAGE(client->apply(two_node_config(client_uid), &errors), errors);
    REQUIRE_MESSAGE(server->apply(two_node_config(kServerUid), &errors), errors);
    REQUIRE(client->wait_listening(client_uid));
    REQUIRE(server->wait_listening(kServerUid));

    constexpr int kTunnels = 8;
    std::vector<std::unique_ptr<TestClient>> connections;
    for (int i = 0; i < kTunnels; ++i) {
        auto connection = std::make_unique<TestClient>(client_ip);
        sockets.capture(connection->local(), app.address());
        REQUIRE(connection->connect(sockets.listener(client_uid, ListenerKind::outbound)));
        connections.push_back(std::move(connection));
    }
    std::vector<char> intact(kTunnels, 0);  // Not vector<bool>: one byte per thread.
    std::vector<std::thread> threads;
    for (int i = 0; i < kTunnels; ++i) {
        threads.emplace_back([&, i] {
            intact[size_t(i)] =
                    connections[size_t(i)]->exchange(zt::test::pattern(512 * 1024, uint64_t(i))) &&
                    connections[size_t(i)]->finish();
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (int i = 0; i < kTunnels; ++i) {
        CHECK(intact[size_t(i)]);
    }
    CHECK(client->wait_idle());
    CHECK(server->wait_idle());
    uint64_t exhausted = metric_sum(client->metrics(), "ztunnel_read_buffers_exhausted_total") +
                         metric_sum(server->metrics(), "ztunnel_read_buffers_exhausted_total");
    CHECK(exhausted > 0);
    server.reset();
    client.reset();
}
