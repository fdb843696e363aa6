// In-process proxy tests: a client node and a server node (each one worker, as `ztunnel run`
// assembles it: src/proxy/worker.h) run in this process and speak HBONE over loopback, with
// their pods' sockets made by tests/support/loopback_sockets.h (loopback addresses, ephemeral
// ports, no namespace, no root) and certificates from a run-time CA. The application is an echo
// server in the server pod; the client is a socket in the client pod whose "captured"
// destination the test chooses. Each case checks what the application sees and what both nodes
// log and count: byte-exact HBONE, the pool, RBAC (401), an IP mismatch (400), a closed port
// (503), drain, a policy change closing a tunnel, and the protection counters README.md names
// (refusals, TLS handshake failures, certificate refusals, HTTP/2 misbehaviour). Every wait is
// bounded.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

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
using zt::test::LogCapture;
using zt::test::metric_sum;
using zt::test::pattern;
using zt::test::TestClient;

const std::string kClientUid = "c1//Pod/default/client";
const std::string kServerUid = "c1//Pod/default/server";
const IpAddr kClientIp = *IpAddr::parse("127.0.1.2");
const IpAddr kServerIp = *IpAddr::parse("127.0.2.2");
// kAliasIp reaches the server pod's listeners but is not the server pod's address.
const IpAddr kAliasIp = *IpAddr::parse("127.0.2.9");

constexpr std::string_view kDenyClient = R"([
  {"name": "deny-client", "namespace": "default", "scope": "Namespace", "action": "Deny",
   "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]]]}])";

// config is both nodes' view of the mesh, with `pod` as the node's only captured pod.
std::string config(const std::string& pod, std::string_view policies = "[]") {
    return R"({
  "workloads": [
    {"uid": "c1//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["127.0.1.2"], "protocol": "HBONE",
     "node": "node1", "services": {}},
    {"uid": "c1//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.2.2"], "protocol": "HBONE",
     "node": "node2", "services": {}},
    {"uid": "c1//Pod/default/elsewhere", "name": "elsewhere", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.2.9"], "protocol": "HBONE",
     "node": "node2", "services": {}}
  ],
  "policies": )" +
           std::string(policies) +
           R"(,
  "pods": [{"uid": ")" +
           pod +
           R"(", "netns": "/proc/self/ns/net"}]
})";
}

// Mesh is the two nodes, the application and the log of one test. With `foreign_client_ca`,
// the client node's certificates come from a CA the server does not trust (and the other way
// round).
struct Mesh {
    explicit Mesh(std::string_view server_policies = "[]", bool foreign_client_ca = false,
                  zt::proxy::WorkerOptions client_options = {},
                  zt::proxy::WorkerOptions server_options = {}) {
        sockets.add_pod(kClientUid, kClientIp);
        sockets.add_pod(kServerUid, kServerIp);
        sockets.alias(kAliasIp, kServerUid);
        client = std::make_unique<zt::test::ProxyNode>(sockets, foreign_client_ca ? foreign : pki,
                                                       client_options);
        server = std::make_unique<zt::test::ProxyNode>(sockets, pki, server_options);
        std::string errors;
        REQUIRE_MESSAGE(client->apply(config(kClientUid), &errors), errors);
        REQUIRE_MESSAGE(server->apply(config(kServerUid, server_policies), &errors), errors);
        REQUIRE(client->wait_listening(kClientUid));
        REQUIRE(server->wait_listening(kServerUid));
    }

    // connect opens an application connection in the client pod to `destination`, as the pod's
    // redirect would: to the client pod's 15001 with `destination` as its original destination.
    std::unique_ptr<TestClient> connect(const SocketAddr& destination) {
        auto connection = std::make_unique<TestClient>(kClientIp);
        sockets.capture(connection->local(), destination);
        REQUIRE(connection->connect(sockets.listener(kClientUid, ListenerKind::outbound)));
        return connection;
    }

    // settle waits until neither node has an open connection.
    void settle() {
        CHECK(client->wait_idle());
        CHECK(server->wait_idle());
    }

    LogCapture log;
    zt::test::LoopbackSockets sockets;
    zt::test::ProxyPki pki;
    zt::test::ProxyPki foreign;
    zt::test::EchoApp app{kServerIp};
    // The nodes go first: their workers stop before the sockets, the PKI and the app they use.
    std::unique_ptr<zt::test::ProxyNode> client;
    std::unique_ptr<zt::test::ProxyNode> server;
};

std::string hbone_addr(const SocketAddr& to) {
    return "dst.hbone_addr=" + to.to_string();
}

}  // namespace

TEST_CASE("proxy_inprocess: outbound to inbound HBONE is byte-exact and reported on both sides") {
    Mesh mesh;
    auto connection = mesh.connect(mesh.app.address());
    std::vector<uint8_t> bytes = pattern(1 << 20, 7);
    REQUIRE(connection->exchange(bytes));
    REQUIRE(connection->finish());
    mesh.settle();

    // The application saw the client pod's own address (ztunnel connected from it).
    auto peers = mesh.app.peers();
    REQUIRE(peers.size() == 1);
    CHECK(peers[0].ip == kClientIp);

    std::string to = hbone_addr(mesh.app.address());
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"", to,
                                     "dst.addr=127.0.2.2:15008", "src.workload=\"client\"",
                                     "dst.workload=\"server\"", "bytes_sent=1048576",
                                     "bytes_recv=1048576"}),
                  mesh.log.dump());
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"inbound\"", to,
                                     "src.identity=\"spiffe://cluster.local/ns/default/sa/client\"",
                                     "bytes_sent=1048576", "bytes_recv=1048576"}),
                  mesh.log.dump());
    CHECK(mesh.log.count({"connection complete", "error="}) == 0);

    std::string client = mesh.client->metrics();
    std::string server = mesh.server->metrics();
    const auto mtls = "connection_security_policy=\"mutual_tls\"";
    CHECK(metric_sum(client, "istio_tcp_connections_opened_total", {"reporter=\"source\"", mtls}) ==
          1);
    CHECK(metric_sum(client, "istio_tcp_connections_closed_total",
                     {"reporter=\"source\"", "response_flags=\"-\""}) == 1);
    CHECK(metric_sum(client, "istio_tcp_received_bytes_total") == bytes.size());
    CHECK(metric_sum(client, "istio_tcp_sent_bytes_total") == bytes.size());
    CHECK(metric_sum(server, "istio_tcp_connections_opened_total",
                     {"reporter=\"destination\"", mtls}) == 1);
    CHECK(metric_sum(server, "istio_tcp_connections_closed_total") == 1);
    CHECK(metric_sum(server, "istio_tcp_connections_failed_total") == 0);
}

TEST_CASE("proxy_inprocess: tunnels to one destination share one pooled link") {
    Mesh mesh;
    // Opened together: the second and third wait for the first one's handshake.
    std::vector<std::unique_ptr<TestClient>> connections;
    for (int i = 0; i < 3; ++i) {
        connections.push_back(mesh.connect(mesh.app.address()));
    }
    for (auto& connection : connections) {
        REQUIRE(connection->exchange(pattern(4096, 1)));
    }
    for (auto& connection : connections) {
        REQUIRE(connection->finish());
    }
    // A later one reuses the idle pooled link.
    auto later = mesh.connect(mesh.app.address());
    REQUIRE(later->exchange(pattern(4096, 2)));
    REQUIRE(later->finish());
    mesh.settle();
    CHECK(mesh.sockets.dials({kServerIp, zt::proxy::kInboundHbonePort}) == 1);
    CHECK(metric_sum(mesh.server->metrics(), "istio_tcp_connections_closed_total") == 4);
}

TEST_CASE("proxy_inprocess: a denied identity gets 401 and the application's connection closes") {
    Mesh mesh(kDenyClient);
    auto connection = mesh.connect(mesh.app.address());
    CHECK(connection->read_end() == "eof");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"http status: 401\""}),
                  mesh.log.dump());
    CHECK(mesh.log.count({"connection complete", "direction=\"inbound\"",
                          "error=\"connection closed due to policy rejection: explicitly denied "
                          "by: default/deny-client\""}) == 1);
    CHECK(mesh.app.peers().empty());
    CHECK(metric_sum(mesh.server->metrics(), "istio_tcp_connections_failed_total",
                     {"response_flags=\"DENY\""}) == 1);
    CHECK(metric_sum(mesh.client->metrics(), "istio_tcp_connections_failed_total",
                     {"response_flags=\"CONNECT\""}) == 1);
}

TEST_CASE("proxy_inprocess: an authority that is not the pod's address gets 400") {
    Mesh mesh;
    SocketAddr elsewhere{kAliasIp, mesh.app.address().port};
    auto connection = mesh.connect(elsewhere);
    CHECK(connection->read_end() == "eof");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"http status: 400\""}),
                  mesh.log.dump());
    CHECK(mesh.log.count({"connection failed", "direction=\"inbound\"",
                          "error=\"ip mismatch: 127.0.2.9 != 127.0.2.2\""}) == 1);
    CHECK(mesh.app.peers().empty());
    CHECK(metric_sum(mesh.server->metrics(), "ztunnel_connections_refused_total",
                     {"reason=\"ip_mismatch\""}) == 1);
}

TEST_CASE("proxy_inprocess: a port nothing listens on gets 503") {
    Mesh mesh;
    SocketAddr closed = zt::test::closed_port(kServerIp);
    auto connection = mesh.connect(closed);
    CHECK(connection->read_end() == "eof");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"http status: 503\""}),
                  mesh.log.dump());
    CHECK(mesh.log.count({"connection complete", "direction=\"inbound\"",
                          "error=\"Connection refused (os error 111)\""}) == 1);
    CHECK(metric_sum(mesh.server->metrics(), "istio_tcp_connections_failed_total",
                     {"response_flags=\"CONNECT\""}) == 1);
}

TEST_CASE("proxy_inprocess: a drain lets open connections finish and takes no new ones") {
    Mesh mesh;
    auto open = mesh.connect(mesh.app.address());
    REQUIRE(open->exchange(pattern(65536, 3)));
    SocketAddr outbound = mesh.sockets.listener(kClientUid, ListenerKind::outbound);

    mesh.client->worker().begin_drain();
    mesh.server->worker().begin_drain();
    bool closed = false;
    for (int i = 0; i < 500 && !closed; ++i) {
        REQUIRE(mesh.client->worker().refresh_status(zt::kNanosPerSecond));
        closed = !mesh.client->worker().pod_status().at(0).listening;
    }
    REQUIRE(closed);
    TestClient late(kClientIp);
    if (late.connect(outbound)) {
        // The kernel queued it as the listener was closing: it is closed, never proxied.
        CHECK(late.read_end() != "data");
    }

    // The open connection goes on to its end over its (drained) link.
    CHECK(open->exchange(pattern(65536, 4)));
    CHECK(open->finish());
    mesh.settle();
    CHECK(mesh.log.count({"connection complete", "error="}) == 0);
    CHECK(metric_sum(mesh.client->metrics(), "istio_tcp_connections_opened_total") == 1);
    CHECK(metric_sum(mesh.client->metrics(), "istio_tcp_connections_closed_total") == 1);
}

TEST_CASE("proxy_inprocess: a policy change closes an open tunnel") {
    Mesh mesh;
    auto connection = mesh.connect(mesh.app.address());
    REQUIRE(connection->exchange(pattern(4096, 5)));
    REQUIRE(mesh.server->apply(config(kServerUid, kDenyClient)));
    // The server resets the stream; the client's ztunnel resets the application's socket.
    CHECK(connection->read_end() == "reset");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"inbound\"",
                                     "error=\"connection closed due to policy change\""}),
                  mesh.log.dump());
    CHECK(metric_sum(mesh.server->metrics(), "istio_tcp_connections_closed_total",
                     {"response_flags=\"DENY\""}) == 1);
}

TEST_CASE("proxy_inprocess: a loop to one of ztunnel's own ports is refused and counted") {
    Mesh mesh;
    auto connection = mesh.connect({*IpAddr::parse("127.0.0.1"), zt::proxy::kOutboundPort});
    CHECK(connection->read_end() == "eof");
    CHECK_MESSAGE(mesh.log.wait_for({"connection failed", "dst.addr=127.0.0.1:15001",
                                     "error=\"attempted recursive call to ourselves\""}),
                  mesh.log.dump());
    CHECK(metric_sum(mesh.client->metrics(), "ztunnel_connections_refused_total",
                     {"reason=\"self_call\""}) == 1);
    // Refused before anything was decided: no traffic metric counts it.
    CHECK(metric_sum(mesh.client->metrics(), "istio_tcp_connections_opened_total") == 0);
}

TEST_CASE("proxy_inprocess: a TLS handshake that fails is counted") {
    Mesh mesh;
    TestClient garbage(kClientIp);
    REQUIRE(garbage.connect(mesh.sockets.listener(kServerUid, ListenerKind::inbound_hbone)));
    std::string hello = "hello world\r\n\r\n";
    REQUIRE(::send(garbage.fd(), hello.data(), hello.size(), MSG_NOSIGNAL) ==
            ssize_t(hello.size()));
    CHECK(garbage.read_end() == "data");  // A TLS alert, then the end.
    bool counted = false;
    for (int i = 0; i < 500 && !counted; ++i) {
        counted = metric_sum(mesh.server->metrics(), "ztunnel_tls_handshake_failures_total",
                             {"reason=\"tls_handshake\""}) == 1;
        ::usleep(10000);
    }
    CHECK_MESSAGE(counted, mesh.server->metrics());
}

TEST_CASE("proxy_inprocess: a peer certificate from an unknown CA is refused and counted") {
    Mesh mesh("[]", /*foreign_client_ca=*/true);
    auto connection = mesh.connect(mesh.app.address());
    CHECK(connection->read_end() == "eof");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"cert_unknown_ca"}),
                  mesh.log.dump());
    CHECK(metric_sum(mesh.client->metrics(), "ztunnel_certificate_refusals_total",
                     {"reason=\"cert_unknown_ca\""}) == 1);
    CHECK(metric_sum(mesh.client->metrics(), "ztunnel_tls_handshake_failures_total",
                     {"reason=\"cert_unknown_ca\""}) == 1);
    // The server saw the client give up on the handshake.
    bool counted = false;
    for (int i = 0; i < 500 && !counted; ++i) {
        counted = metric_sum(mesh.server->metrics(), "ztunnel_tls_handshake_failures_total") == 1;
        ::usleep(10000);
    }
    CHECK_MESSAGE(counted, mesh.server->metrics());
    CHECK(mesh.app.peers().empty());
}

TEST_CASE("proxy_inprocess: HTTP/2 misbehaviour by a peer is counted by kind") {
    Mesh mesh;
    auto peer = zt::test::RawHboneClient::connect(
            kClientIp, mesh.sockets.listener(kServerUid, ListenerKind::inbound_hbone),
            mesh.pki.client_context("spiffe://cluster.local/ns/default/sa/client"),
            zt::certs::Identity::parse("spiffe://cluster.local/ns/default/sa/server").value());
    REQUIRE(peer != nullptr);
    std::vector<uint8_t> frames = zt::test::client_preface();
    zt::test::append_settings(frames, {});  // A SETTINGS frame beyond the first.
    const uint8_t priority[5] = {0, 0, 0, 0, 16};
    for (int i = 0; i < 3; ++i) {
        zt::test::append_frame(frames, zt::test::kFramePriority, 0, 1, zt::ByteSpan(priority, 5));
    }
    REQUIRE(peer->send(frames));
    (void)peer->receive(200);
    peer.reset();  // The link ends: its misbehaviour is counted at once.
    // The worker adds the kinds one after another while this thread scrapes, so wait for all
    // of them rather than read one kind from a scrape that only had the first.
    bool counted = false;
    std::string scrape;
    for (int i = 0; i < 500 && !counted; ++i) {
        scrape = mesh.server->metrics();
        counted =
                metric_sum(scrape, "ztunnel_h2_glitches_total", {"kind=\"priority_frame\""}) == 3 &&
                metric_sum(scrape, "ztunnel_h2_glitches_total", {"kind=\"extra_settings\""}) == 1;
        ::usleep(10000);
    }
    CHECK_MESSAGE(counted, scrape);
    CHECK(metric_sum(scrape, "ztunnel_h2_glitches_total") == 4);
}

TEST_CASE(
        "proxy_inprocess: a pooled link out of stream ids leaves the pool; the next tunnel dials") {
    zt::proxy::WorkerOptions client_options;
    client_options.first_stream_id = INT32_MAX - 2;  // Each link has two stream ids.
    Mesh mesh("[]", false, client_options);
    for (int i = 0; i < 3; ++i) {
        auto connection = mesh.connect(mesh.app.address());
        REQUIRE(connection->exchange(pattern(4096, uint8_t(10 + i))));
        REQUIRE(connection->finish());
    }
    mesh.settle();
    // The first link carried two tunnels and left the pool with its last id; the third tunnel
    // got a new link instead of a refused stream.
    CHECK(mesh.sockets.dials({kServerIp, zt::proxy::kInboundHbonePort}) == 2);
    CHECK(mesh.log.count({"connection complete", "direction=\"outbound\"", "error="}) == 0);
    CHECK(metric_sum(mesh.client->metrics(), "istio_tcp_connections_closed_total",
                     {"response_flags=\"-\""}) == 3);
}

TEST_CASE(
        "proxy_inprocess: an application that never accepts the connect gets 503 at the deadline") {
    // A listener whose accept queue is full drops new SYNs: a connect to it hangs, as to a
    // blackholed address, until the kernel gives up after ~2 minutes.
    zt::UniqueFd blackhole(::socket(AF_INET, SOCK_STREAM, 0));
    REQUIRE(blackhole);
    SocketAddr hole{kServerIp, 0};
    sockaddr_in address{};
    address.sin_family = AF_INET;
    std::memcpy(&address.sin_addr, kServerIp.bytes.data(), 4);
    REQUIRE(::bind(blackhole.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(blackhole.get(), 0) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(blackhole.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    hole.port = ntohs(address.sin_port);
    TestClient filler(kClientIp, 2000);  // Takes the one place of the accept queue.
    REQUIRE(filler.connect(hole));

    zt::proxy::WorkerOptions server_options;
    server_options.connect_timeout_ns = 1 * zt::kNanosPerSecond;  // ztunnel's is 10 s.
    Mesh mesh("[]", false, {}, server_options);
    auto connection = mesh.connect(hole);
    // The CONNECT is answered 503 once the deadline passes; the application's connection closes.
    CHECK(connection->read_end() == "eof");
    mesh.settle();
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"inbound\"",
                                     "error=\"connection timed out\""}),
                  mesh.log.dump());
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"http status: 503\""}),
                  mesh.log.dump());
    CHECK(metric_sum(mesh.server->metrics(), "istio_tcp_connections_failed_total",
                     {"response_flags=\"CONNECT\""}) == 1);
}

TEST_CASE("proxy_inprocess: a pod whose listener port is taken is retried until it listens") {
    LogCapture log;
    zt::test::LoopbackSockets sockets;
    zt::test::ProxyPki pki;
    sockets.add_pod(kServerUid, kServerIp);
    // Another socket in the pod holds the port the pod's 15008 listener must bind (no
    // SO_REUSEPORT): the bind fails with EADDRINUSE.
    zt::UniqueFd holder(::socket(AF_INET, SOCK_STREAM, 0));
    REQUIRE(holder);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    std::memcpy(&address.sin_addr, kServerIp.bytes.data(), 4);
    REQUIRE(::bind(holder.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(holder.get(), 1) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    sockets.assign_port(kServerUid, ListenerKind::inbound_hbone, ntohs(address.sin_port));

    zt::test::ProxyNode server(sockets, pki);
    REQUIRE(server.apply(config(kServerUid)));
    CHECK_FALSE(server.wait_listening(kServerUid, 1500));
    bool named = false;
    for (const zt::proxy::PodStatus& pod : server.worker().pod_status()) {
        named = named || (pod.uid == kServerUid && !pod.listening &&
                          pod.error.find("Address already in use") != std::string::npos);
    }
    CHECK_MESSAGE(named, log.dump());
    CHECK(log.wait_for({"cannot open pod listener", "retry_in_ms="}));

    holder.reset();  // The port is free again: the next retry opens every listener.
    CHECK_MESSAGE(server.wait_listening(kServerUid, 20000), log.dump());
    CHECK(log.wait_for({"pod listeners up"}));
}
