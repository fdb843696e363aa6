// In-process tests of pods whose workload arrives after their listeners
// (src/proxy/workload_wait.h): a pod entry with name, namespace and service account (what istio-cni
// says over ZDS) gets its listeners and certificate at once; each of its connections waits up to 5
// s for the workload. Two nodes (tests/support/proxy_node.h, one worker each) speak HBONE over
// loopback: the client pod's outbound connection waits for its own workload, the server pod's
// inbound HBONE connection for the server's; a workload that never comes ends the connection after
// 5 s with ztunnel's error, logged and counted. Every wait is bounded.

#include <memory>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "src/proxy/ports.h"
#include "tests/support/echo_app.h"
#include "tests/support/log_capture.h"
#include "tests/support/loopback_sockets.h"
#include "tests/support/proxy_node.h"
#include "zt/clock.h"

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
const IpAddr kClientIp = *IpAddr::parse("127.0.3.2");
const IpAddr kServerIp = *IpAddr::parse("127.0.4.2");

constexpr std::string_view kClientWorkload = R"(
    {"uid": "c1//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["127.0.3.2"], "protocol": "HBONE",
     "node": "node1", "services": {}})";
constexpr std::string_view kServerWorkload = R"(
    {"uid": "c1//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.4.2"], "protocol": "HBONE",
     "node": "node2", "services": {}})";

// config is a node's file: `workloads` (joined), and `pod` as its only captured pod, with what
// ZDS says of it (name, namespace, service account).
std::string config(std::initializer_list<std::string_view> workloads, const std::string& pod,
                   std::string_view name) {
    std::string list;
    for (std::string_view workload : workloads) {
        list += (list.empty() ? "" : ",") + std::string(workload);
    }
    return R"({"workloads": [)" + list + R"(],
  "pods": [{"uid": ")" +
           pod + R"(", "netns": "/proc/self/ns/net", "name": ")" + std::string(name) +
           R"(", "namespace": "default", "serviceAccount": ")" + std::string(name) + R"("}]})";
}

// apply_pod applies `config(workloads, pod, name)` to `node`; without `with_certificates` the
// pod's certificate is left for later, as while its agent still asks the CA.
void apply_pod(zt::test::ProxyNode& node, std::initializer_list<std::string_view> workloads,
               const std::string& pod, std::string_view name, bool with_certificates = true) {
    std::string errors;
    REQUIRE_MESSAGE(node.apply(config(workloads, pod, name), &errors, with_certificates), errors);
}

struct Nodes {
    explicit Nodes(const zt::proxy::WorkerOptions& options = {}) {
        sockets.add_pod(kClientUid, kClientIp);
        sockets.add_pod(kServerUid, kServerIp);
        client = std::make_unique<zt::test::ProxyNode>(sockets, pki, options);
        server = std::make_unique<zt::test::ProxyNode>(sockets, pki, options);
    }

    // connect opens an application connection in the client pod to the echo app, as the pod's
    // redirect would (to the client pod's 15001, the app as original destination).
    std::unique_ptr<TestClient> connect() {
        auto connection = std::make_unique<TestClient>(kClientIp, 15000);
        sockets.capture(connection->local(), app.address());
        REQUIRE(connection->connect(sockets.listener(kClientUid, ListenerKind::outbound)));
        return connection;
    }

    // exchange_while connects as `connect` does, starts `start_later()` (a thread that, after a
    // while, publishes what the wait waits for), exchanges `size` bytes of pattern `seed` and
    // finishes the connection; both nodes must then go idle.
    template <typename StartLater>
    void exchange_while(StartLater start_later, size_t size, uint8_t seed) {
        auto connection = connect();
        std::thread later = start_later();
        std::vector<uint8_t> bytes = pattern(size, seed);
        bool exchanged = connection->exchange(bytes);
        later.join();
        REQUIRE(exchanged);
        REQUIRE(connection->finish());
        CHECK(client->wait_idle());
        CHECK(server->wait_idle());
    }

    // connect_until_closed opens a connection as `connect` does and waits until ztunnel closes
    // it without writing anything back; it returns how long that took, in ms. The timer cannot
    // fire before a wait's deadline, so that is a lower bound, never an upper one.
    int64_t connect_until_closed() {
        int64_t start = zt::monotonic_ns();
        auto connection = connect();
        std::string end = connection->read_end();
        CHECK((end == "eof" || end == "reset"));
        return (zt::monotonic_ns() - start) / zt::kNanosPerMilli;
    }

    LogCapture log;
    zt::test::LoopbackSockets sockets;
    zt::test::ProxyPki pki;
    zt::test::EchoApp app{kServerIp};
    std::unique_ptr<zt::test::ProxyNode> client;
    std::unique_ptr<zt::test::ProxyNode> server;
};

// apply_later applies `text` to `node` after `delay_ms` on another thread, as the agent writes
// the workload once istiod sends it.
std::thread apply_later(zt::test::ProxyNode& node, std::string text, int delay_ms) {
    return std::thread([&node, text = std::move(text), delay_ms] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        CHECK(node.apply(text));
    });
}

}  // namespace

TEST_CASE("workload_wait: an outbound connection waits for its pod's workload, then succeeds") {
    Nodes nodes;
    // The client node knows the server but not yet its own pod's workload.
    apply_pod(*nodes.client, {kServerWorkload}, kClientUid, "client");
    apply_pod(*nodes.server, {kClientWorkload, kServerWorkload}, kServerUid, "server");
    REQUIRE(nodes.client->wait_listening(kClientUid));
    REQUIRE(nodes.server->wait_listening(kServerUid));

    nodes.exchange_while(
            [&] {
                return apply_later(*nodes.client,
                                   config({kClientWorkload, kServerWorkload}, kClientUid, "client"),
                                   1000);
            },
            256 << 10, 3);

    CHECK_MESSAGE(nodes.log.wait_for({"connection complete", "direction=\"outbound\"",
                                      "src.workload=\"client\"", "bytes_sent=262144",
                                      "bytes_recv=262144"}),
                  nodes.log.dump());
    std::string metrics = nodes.client->metrics();
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"found\""}) == 1);
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"timed_out\""}) == 0);
    CHECK(metrics.find("# HELP ztunnel_workload_waits_total") != std::string::npos);
}

TEST_CASE("workload_wait: an inbound HBONE connection waits for the server pod's workload") {
    Nodes nodes;
    apply_pod(*nodes.client, {kClientWorkload, kServerWorkload}, kClientUid, "client");
    // The server node does not know its own pod's workload yet: it listens with the identity the
    // pod entry gives (spiffe://cluster.local/ns/default/sa/server).
    apply_pod(*nodes.server, {kClientWorkload}, kServerUid, "server");
    REQUIRE(nodes.client->wait_listening(kClientUid));
    REQUIRE(nodes.server->wait_listening(kServerUid));

    nodes.exchange_while(
            [&] {
                return apply_later(*nodes.server,
                                   config({kClientWorkload, kServerWorkload}, kServerUid, "server"),
                                   1000);
            },
            64 << 10, 5);
    CHECK_MESSAGE(
            nodes.log.wait_for({"connection complete", "direction=\"inbound\"",
                                "dst.workload=\"server\"", "bytes_sent=65536", "bytes_recv=65536"}),
            nodes.log.dump());
    CHECK(metric_sum(nodes.server->metrics(), "ztunnel_workload_waits_total",
                     {"result=\"found\""}) == 1);
}

TEST_CASE("workload_wait: a workload that never arrives fails the connection after 5 s, counted") {
    Nodes nodes;
    apply_pod(*nodes.client, {kServerWorkload}, kClientUid, "client");
    apply_pod(*nodes.server, {kClientWorkload, kServerWorkload}, kServerUid, "server");
    REQUIRE(nodes.client->wait_listening(kClientUid));

    CHECK(nodes.connect_until_closed() >= 5000);
    CHECK_MESSAGE(nodes.log.wait_for({"connection failed", "direction=\"outbound\"",
                                      "error=\"failed to fetch information about local "
                                      "workload: client.default (client)\""}),
                  nodes.log.dump());
    std::string metrics = nodes.client->metrics();
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"timed_out\""}) == 1);
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"found\""}) == 0);
    CHECK(metric_sum(metrics, "ztunnel_connections_refused_total",
                     {"reason=\"local_workload_timeout\""}) == 1);
    CHECK(metric_sum(metrics, "istio_tcp_connections_opened_total") == 0);
}

namespace {

const std::string kClientIdentity = "spiffe://cluster.local/ns/default/sa/client";
const std::string kServerIdentity = "spiffe://cluster.local/ns/default/sa/server";

// publish_later publishes `identity`'s certificate on `node` after `delay_ms` on another thread,
// as the control thread does once the agent's file was read.
std::thread publish_later(zt::test::ProxyNode& node, std::string identity, int delay_ms) {
    return std::thread([&node, identity = std::move(identity), delay_ms] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        node.publish_certificates({identity});
    });
}

}  // namespace

// long_wait makes the wait far longer than the test client's 10 s timeouts: a connection that
// succeeds was handed on when the certificate was published (the worker's wake-up), not when the
// wait's timer ended it.
zt::proxy::WorkerOptions long_wait() {
    zt::proxy::WorkerOptions options;
    options.workload_wait_ns = 60 * zt::kNanosPerSecond;
    return options;
}

TEST_CASE("workload_wait: an outbound connection waits for its pod's certificate, then succeeds") {
    Nodes nodes(long_wait());
    // The client node knows its pod's workload, but the pod's certificate is not there yet (the
    // agent still asks the CA).
    apply_pod(*nodes.client, {kClientWorkload, kServerWorkload}, kClientUid, "client",
              /*with_certificates=*/false);
    apply_pod(*nodes.server, {kClientWorkload, kServerWorkload}, kServerUid, "server");
    REQUIRE(nodes.client->wait_listening(kClientUid));
    REQUIRE(nodes.server->wait_listening(kServerUid));

    nodes.exchange_while([&] { return publish_later(*nodes.client, kClientIdentity, 1000); },
                         128 << 10, 7);

    CHECK_MESSAGE(nodes.log.wait_for({"connection complete", "direction=\"outbound\"",
                                      "src.workload=\"client\"", "bytes_sent=131072",
                                      "bytes_recv=131072"}),
                  nodes.log.dump());
    CHECK(nodes.log.count({"no certificate for identity"}) == 0);
    std::string metrics = nodes.client->metrics();
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"found\""}) == 1);
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total",
                     {"result=\"certificate_timed_out\""}) == 0);
}

TEST_CASE("workload_wait: an inbound HBONE connection waits for the server pod's certificate") {
    Nodes nodes(long_wait());
    apply_pod(*nodes.client, {kClientWorkload, kServerWorkload}, kClientUid, "client");
    apply_pod(*nodes.server, {kClientWorkload, kServerWorkload}, kServerUid, "server",
              /*with_certificates=*/false);
    REQUIRE(nodes.client->wait_listening(kClientUid));
    REQUIRE(nodes.server->wait_listening(kServerUid));

    nodes.exchange_while([&] { return publish_later(*nodes.server, kServerIdentity, 1000); },
                         64 << 10, 9);
    CHECK_MESSAGE(
            nodes.log.wait_for({"connection complete", "direction=\"inbound\"",
                                "dst.workload=\"server\"", "bytes_sent=65536", "bytes_recv=65536"}),
            nodes.log.dump());
    CHECK(nodes.log.count({"no certificate for identity"}) == 0);
    CHECK(metric_sum(nodes.server->metrics(), "ztunnel_workload_waits_total",
                     {"result=\"found\""}) == 1);
}

TEST_CASE("workload_wait: a certificate that never comes fails the connection after 5 s") {
    Nodes nodes;
    apply_pod(*nodes.client, {kClientWorkload, kServerWorkload}, kClientUid, "client",
              /*with_certificates=*/false);
    apply_pod(*nodes.server, {kClientWorkload, kServerWorkload}, kServerUid, "server");
    REQUIRE(nodes.client->wait_listening(kClientUid));

    CHECK(nodes.connect_until_closed() >= 5000);
    CHECK_MESSAGE(
            nodes.log.wait_for({"direction=\"outbound\"",
                                "error=\"no certificate for identity " + kClientIdentity + "\""}),
            nodes.log.dump());
    std::string metrics = nodes.client->metrics();
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total",
                     {"result=\"certificate_timed_out\""}) == 1);
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"found\""}) == 0);
    CHECK(metric_sum(metrics, "ztunnel_workload_waits_total", {"result=\"timed_out\""}) == 0);
    // Nothing reached the server.
    CHECK(metric_sum(nodes.server->metrics(), "istio_tcp_connections_opened_total") == 0);
    CHECK(nodes.client->wait_idle());
}
