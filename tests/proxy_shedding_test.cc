// In-process tests of what a worker does when it cannot take more work: memory pressure (the
// control thread's signal of src/proxy/memory_pressure.h, raised here by hand as the watch
// raises it near the cgroup's limit) and a kernel whose accept fails for lack of descriptors (a
// lowered RLIMIT_NOFILE with every descriptor under it taken, so the accept returns EMFILE). A
// client node and a server node, each one worker, speak HBONE on loopback with run-time
// certificates; the application is an echo server. Each case checks what the applications see,
// what the nodes log and what they count, and that work is taken again once the cause is gone.
// Every wait is bounded.

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

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
using zt::test::metric_sum;
using zt::test::pattern;
using zt::test::TestClient;

const std::string kClientUid = "c1//Pod/default/client";
const std::string kServerUid = "c1//Pod/default/server";
const IpAddr kClientIp = *IpAddr::parse("127.0.5.2");
const IpAddr kServerIp = *IpAddr::parse("127.0.6.2");
const IpAddr kPeerIp = *IpAddr::parse("127.0.6.9");

// config is both nodes' view of the mesh, with `pod` as the node's only captured pod.
std::string config(const std::string& pod) {
    return R"({
  "workloads": [
    {"uid": "c1//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["127.0.5.2"], "protocol": "HBONE",
     "node": "node1", "services": {}},
    {"uid": "c1//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["127.0.6.2"], "protocol": "HBONE",
     "node": "node2", "services": {}}
  ],
  "policies": [],
  "pods": [{"uid": ")" +
           pod + R"(", "netns": "/proc/self/ns/net"}]
})";
}

struct Mesh {
    Mesh() {
        sockets.add_pod(kClientUid, kClientIp);
        sockets.add_pod(kServerUid, kServerIp);
        client = std::make_unique<zt::test::ProxyNode>(sockets, pki);
        server = std::make_unique<zt::test::ProxyNode>(sockets, pki);
        std::string errors;
        REQUIRE_MESSAGE(client->apply(config(kClientUid), &errors), errors);
        REQUIRE_MESSAGE(server->apply(config(kServerUid), &errors), errors);
        REQUIRE(client->wait_listening(kClientUid));
        REQUIRE(server->wait_listening(kServerUid));
    }

    // connect opens an application connection in the client pod to the echo application, as
    // the pod's redirect would: to the client pod's 15001.
    std::unique_ptr<TestClient> connect() {
        auto connection = std::make_unique<TestClient>(kClientIp);
        sockets.capture(connection->local(), app.address());
        REQUIRE(connection->connect(sockets.listener(kClientUid, ListenerKind::outbound)));
        return connection;
    }

    zt::test::LogCapture log;
    zt::test::LoopbackSockets sockets;
    zt::test::ProxyPki pki;
    zt::test::EchoApp app{kServerIp};
    // The nodes go first: their workers stop before the sockets, the PKI and the app they use.
    std::unique_ptr<zt::test::ProxyNode> client;
    std::unique_ptr<zt::test::ProxyNode> server;
};

uint64_t shed_count(const zt::test::ProxyNode& node) {
    return metric_sum(node.metrics(), "ztunnel_connections_refused_total",
                      {"reason=\"memory_pressure\""});
}

// wait_count waits up to 5 s until `read()` reaches `want`, and returns the last value.
template <class Read>
uint64_t wait_count(Read read, uint64_t want) {
    uint64_t seen = 0;
    for (int i = 0; i < 500; ++i) {
        seen = read();
        if (seen >= want) {
            break;
        }
        ::usleep(10000);
    }
    return seen;
}

// NofileLimit gives the process a soft RLIMIT_NOFILE of `headroom` descriptors above those open
// now, and puts the old limit back when it goes, even when a check failed. It must exist before
// the listeners arm their accepts: io_uring reads the limit when an accept is prepared, not when
// it runs.
struct NofileLimit {
    rlimit saved{};

    explicit NofileLimit(int headroom) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
        rlimit lowered = saved;
        lowered.rlim_cur = rlim_t(lowest_free() + headroom);
        REQUIRE(lowered.rlim_cur <= saved.rlim_cur);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }

    ~NofileLimit() { (void)::setrlimit(RLIMIT_NOFILE, &saved); }

    static int lowest_free() {
        int fd = ::dup(0);
        REQUIRE(fd >= 0);
        ::close(fd);
        return fd;
    }
};

// exhaust_descriptors opens descriptors until the process has none left under its limit, and
// returns them: while they are held, the next descriptor anyone asks for is refused (EMFILE).
std::vector<zt::UniqueFd> exhaust_descriptors() {
    std::vector<zt::UniqueFd> held;
    while (held.size() < 100000) {
        int fd = ::dup(0);
        if (fd < 0) {
            REQUIRE(errno == EMFILE);
            break;
        }
        held.emplace_back(fd);
    }
    return held;
}

}  // namespace

TEST_CASE(
        "proxy_shedding: under memory pressure new work is refused and counted, open work "
        "flows") {
    Mesh mesh;
    auto open = mesh.connect();
    REQUIRE(open->exchange(pattern(256 * 1024, 1)));

    // The server node sheds: the client node's next connection rides the pooled HBONE
    // connection, whose new CONNECT is answered 503 (the client application sees its connection
    // closed; the client node logs ztunnel's failure), and a new connection to 15008 is closed
    // before any TLS byte.
    mesh.server->shed().shedding = true;
    auto refused_stream = mesh.connect();
    CHECK(refused_stream->read_end() == "eof");
    CHECK_MESSAGE(mesh.log.wait_for({"connection complete", "direction=\"outbound\"",
                                     "error=\"http status: 503\""}),
                  mesh.log.dump());
    TestClient new_link(kPeerIp);
    REQUIRE(new_link.connect(mesh.sockets.listener(kServerUid, ListenerKind::inbound_hbone)));
    CHECK(new_link.read_end() == "eof");
    CHECK(wait_count([&] { return shed_count(*mesh.server); }, 2) == 2);
    CHECK(mesh.server->shed().shed_total.load() == 2);

    // The client node sheds too: its application's new connection is closed at accept, before
    // anything is read or planned (no access log line: it was never a proxied connection).
    mesh.client->shed().shedding = true;
    auto refused_accept = mesh.connect();
    CHECK(refused_accept->read_end() == "eof");
    CHECK(wait_count([&] { return shed_count(*mesh.client); }, 1) == 1);
    CHECK(mesh.log.count({"connection complete", "direction=\"outbound\""}) == 1);

    // The connection that was open before keeps flowing, byte for byte, through it all.
    CHECK(open->exchange(pattern(1024 * 1024, 2)));

    // Pressure over: new connections are carried again, and nothing more was refused.
    mesh.client->shed().shedding = false;
    mesh.server->shed().shedding = false;
    auto after = mesh.connect();
    CHECK(after->exchange(pattern(256 * 1024, 3)));
    CHECK(after->finish());
    CHECK(open->finish());
    CHECK(mesh.client->wait_idle());
    CHECK(mesh.server->wait_idle());
    CHECK(shed_count(*mesh.server) == 2);
    CHECK(shed_count(*mesh.client) == 1);
    // Shedding logs nothing per connection: the control thread logs the episode.
    CHECK(mesh.log.count({"connection refused at a limit"}) == 0);
}

TEST_CASE(
        "proxy_shedding: an accept that fails with EMFILE is counted, logged once, backed off "
        "and resumed") {
    NofileLimit limit(256);
    Mesh mesh;
    SocketAddr hbone = mesh.sockets.listener(kServerUid, ListenerKind::inbound_hbone);
    // The socket is made while descriptors are free; it connects once none is left, so the
    // kernel completes its handshake and the node's accept is what fails.
    TestClient waiting(kPeerIp, 5000);
    auto failures = [&] {
        return metric_sum(mesh.server->metrics(), "ztunnel_accept_failures_total",
                          {"error=\"EMFILE\""});
    };
    int64_t started_ns = zt::monotonic_ns();
    std::vector<zt::UniqueFd> held = exhaust_descriptors();
    bool connected = waiting.connect(hbone);
    // Until at least four accepts failed: after 50, 100 and 200 ms of backoff.
    uint64_t failed = wait_count(failures, 4);
    int64_t elapsed_ms = (zt::monotonic_ns() - started_ns) / zt::kNanosPerMilli;
    held.clear();
    REQUIRE(connected);
    CHECK(failed >= 4);
    // No spin: the backoff is at least 50 ms before every retry, so the failures cannot
    // outnumber the 50 ms periods that passed (a busy loop would count thousands).
    CHECK_MESSAGE(failed <= uint64_t(1 + elapsed_ms / 50),
                  failed << " failed accepts in " << elapsed_ms << " ms");
    // Logged once for the whole run of failures.
    CHECK_MESSAGE(
            mesh.log.count({"accept failed; backing off", "error=\"Too many open files"}) == 1,
            mesh.log.dump());

    // Descriptors again: the listener re-arms (within 800 ms), takes the waiting connection
    // (which, sending garbage instead of a ClientHello, is then closed by the handshake) and
    // new connections are carried end to end.
    REQUIRE(::write(waiting.fd(), "not TLS\r\n\r\n", 11) == 11);
    CHECK(waiting.read_end() != "timeout");
    auto after = mesh.connect();
    CHECK(after->exchange(pattern(64 * 1024, 4)));
    CHECK(after->finish());
    CHECK(mesh.client->wait_idle());
    CHECK(mesh.server->wait_idle());
    CHECK(mesh.log.count({"accept failed; backing off"}) == 1);
    CHECK(metric_sum(mesh.client->metrics(), "ztunnel_accept_failures_total") == 0);
}
