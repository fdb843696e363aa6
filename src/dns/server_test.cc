// Tests for one pod's DNS server on a real io_uring with real loopback sockets (ephemeral ports,
// nothing fixed): mesh names answered from the snapshot, other names forwarded to a small
// in-test upstream (UDP and TCP, its own thread) and relayed, TCP framing with several queries
// per connection, truncation and the TCP retry, the upstream down or silent (SERVFAIL within
// the deadline), malformed and oversized messages, the in-flight, connection and request-time
// limits, on-demand resolution, and a close that leaves no socket behind. Tests skip with a
// message when the kernel refuses io_uring.

#include "src/dns/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "tests/support/net.h"
#include "zt/clock.h"

namespace {

using zt::UniqueFd;
using zt::dns::Name;
using zt::dns::Transport;

constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns1/client", "name": "client", "namespace": "ns1",
     "canonicalName": "client", "canonicalRevision": "v1", "workloadIps": ["198.18.1.2"],
     "services": {}},
    {"uid": "c//Pod/ns1/db", "name": "db", "namespace": "ns1", "workloadIps": [],
     "hostname": "db.upstream.test", "services": {}}
  ],
  "services": [
    {"name": "productpage", "namespace": "ns1", "hostname": "productpage.ns1.svc.cluster.local",
     "vips": ["/198.19.9.9"], "ports": {"80": 80}}
  ]
})";

// UpstreamServer is a small authoritative server for the tests, on 127.0.0.1 (UDP and TCP,
// ephemeral ports), in its own thread. Names: `www.upstream.test` A 198.19.50.1;
// `big.upstream.test` 120 A records (truncated over UDP); `v6.upstream.test` AAAA only;
// `db.upstream.test` A 198.19.60.1 and AAAA 2001:db8::60; `ttl0.upstream.test` A 198.19.50.1 with
// TTL 0 (300 for the others); `silent.upstream.test` never answered;
// `fail.upstream.test` SERVFAIL; anything else NXDOMAIN.
class UpstreamServer {
public:
    UpstreamServer() {
        // UDP and TCP on the same port number, as a resolver has: the kernel picks the UDP
        // port; another TCP socket may hold that number, then try again.
        for (int attempt = 0; attempt < 100 && !tcp_.valid(); ++attempt) {
            udp_ = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            REQUIRE(udp_.valid());
            sockaddr_storage address{};
            socklen_t length = zt::test::loopback_address(AF_INET, 0, address);
            REQUIRE(::bind(udp_.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
            REQUIRE(::getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
            port_ = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
            UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (::bind(tcp.get(), reinterpret_cast<sockaddr*>(&address), length) == 0) {
                tcp_ = std::move(tcp);
            }
        }
        REQUIRE(tcp_.valid());
        REQUIRE(::listen(tcp_.get(), 16) == 0);
        REQUIRE(::pipe(stop_) == 0);
        thread_ = std::thread([this] { serve(); });
    }

    ~UpstreamServer() {
        char byte = 0;
        (void)::write(stop_[1], &byte, 1);
        thread_.join();
        ::close(stop_[0]);
        ::close(stop_[1]);
    }

    zt::state::SocketAddr address() const {
        return zt::state::SocketAddr{zt::state::IpAddr::v4(127, 0, 0, 1), port_};
    }

    std::atomic<int> udp_queries{0};
    std::atomic<int> tcp_queries{0};

    // asked says how many queries for `name` arrived, over either transport.
    int asked(const std::string& name) {
        std::lock_guard lock(mutex_);
        return names_[name];
    }

private:
    std::vector<uint8_t> answer(std::span<const uint8_t> request, bool over_udp) {
        auto query = zt::dns::parse_query(request);
        if (!query) {
            return {};
        }
        std::string name = query->name.to_lower();
        {
            std::lock_guard lock(mutex_);
            ++names_[name];
        }
        std::vector<zt::dns::Record> records;
        auto add = [&](const char* ip) {
            zt::dns::Record record;
            record.owner = query->name;
            record.address = *zt::state::IpAddr::parse(ip);
            record.type = record.address.v6 ? zt::dns::kTypeAaaa : zt::dns::kTypeA;
            record.ttl = name == "ttl0.upstream.test" ? 0 : 300;
            if (record.type == query->type) {
                records.push_back(record);
            }
        };
        if (name == "silent.upstream.test") {
            return {};
        }
        if (name == "fail.upstream.test") {
            return zt::dns::encode_error(*query, zt::dns::Rcode::servfail);
        }
        if (name == "www.upstream.test" || name == "ttl0.upstream.test") {
            add("198.19.50.1");
        } else if (name == "v6.upstream.test") {
            add("2001:db8::50");
        } else if (name == "db.upstream.test") {
            add("198.19.60.1");
            add("2001:db8::60");
        } else if (name == "big.upstream.test") {
            for (int i = 0; i < 120; ++i) {
                add(("198.19.51." + std::to_string(i)).c_str());
            }
        } else {
            return zt::dns::encode_error(*query, zt::dns::Rcode::nxdomain);
        }
        size_t limit = over_udp ? zt::dns::udp_payload_limit(*query) : zt::dns::kMaxMessageBytes;
        return zt::dns::encode_answer(*query, true, records, limit);
    }

    void serve() {
        std::vector<UniqueFd> connections;
        while (true) {
            std::vector<pollfd> fds = {
                    {stop_[0], POLLIN, 0}, {udp_.get(), POLLIN, 0}, {tcp_.get(), POLLIN, 0}};
            for (const auto& connection : connections) {
                fds.push_back({connection.get(), POLLIN, 0});
            }
            if (::poll(fds.data(), fds.size(), 1000) < 0) {
                return;
            }
            if (fds[0].revents != 0) {
                return;
            }
            if (fds[1].revents & POLLIN) {
                uint8_t buffer[4096];
                sockaddr_storage peer{};
                socklen_t peer_length = sizeof peer;
                ssize_t n = ::recvfrom(udp_.get(), buffer, sizeof buffer, 0,
                                       reinterpret_cast<sockaddr*>(&peer), &peer_length);
                if (n > 0) {
                    ++udp_queries;
                    auto out = answer(std::span<const uint8_t>(buffer, size_t(n)), true);
                    if (!out.empty()) {
                        ::sendto(udp_.get(), out.data(), out.size(), 0,
                                 reinterpret_cast<sockaddr*>(&peer), peer_length);
                    }
                }
            }
            if (fds[2].revents & POLLIN) {
                connections.push_back(
                        UniqueFd(::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC)));
            }
            for (size_t i = 3; i < fds.size(); ++i) {
                if (fds[i].revents == 0) {
                    continue;
                }
                uint8_t head[2];
                if (!zt::test::read_all(fds[i].fd, head)) {
                    connections[i - 3].reset();
                    continue;
                }
                std::vector<uint8_t> request(size_t(head[0] << 8 | head[1]));
                if (!zt::test::read_all(fds[i].fd, request)) {
                    connections[i - 3].reset();
                    continue;
                }
                ++tcp_queries;
                auto out = answer(request, false);
                if (out.empty()) {
                    continue;
                }
                uint8_t length[2] = {uint8_t(out.size() >> 8), uint8_t(out.size())};
                zt::test::write_all(fds[i].fd, length);
                zt::test::write_all(fds[i].fd, out);
            }
            std::erase_if(connections, [](const UniqueFd& fd) { return !fd.valid(); });
        }
    }

    UniqueFd udp_;
    UniqueFd tcp_;
    uint16_t port_ = 0;
    int stop_[2] = {-1, -1};
    std::mutex mutex_;
    std::map<std::string, int> names_;
    std::thread thread_;
};

// LoopbackSockets makes plain non-blocking sockets, as a pod does inside its namespace.
class LoopbackSockets final : public zt::dns::UpstreamSockets {
public:
    zt::Result<UniqueFd> open(Transport transport, const zt::state::SocketAddr& upstream) override {
        ++opened;
        if (fail_next) {
            fail_next = false;
            return zt::fail_errno(EMFILE);
        }
        int type = transport == Transport::udp ? SOCK_DGRAM : SOCK_STREAM;
        int fd = ::socket(upstream.ip.v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          0);
        if (fd < 0) {
            return zt::fail_errno(errno);
        }
        return UniqueFd(fd);
    }

    int opened = 0;
    bool fail_next = false;
};

// Fixture runs one server on a real ring with UDP and TCP sockets on 127.0.0.1.
struct Fixture {
    std::unique_ptr<zt::uring::Ring> ring;
    std::unique_ptr<zt::uring::BufferRing> buffers;  // The worker's shared UDP buffers, if set.
    zt::state::SnapshotStore snapshots;
    LoopbackSockets sockets;
    zt::dns::DnsMetrics metrics{1, 256};
    zt::dns::ServerConfig config;
    std::unique_ptr<zt::dns::Server> server;
    uint16_t udp_port = 0;
    uint16_t udp6_port = 0;
    uint16_t tcp_port = 0;

    explicit Fixture(std::vector<zt::state::SocketAddr> upstreams,
                     std::string uid = "c//Pod/ns1/client") {
        auto created = zt::uring::Ring::create(zt::uring::RingOptions{128, 0});
        if (!created) {
            MESSAGE("skipping: io_uring unavailable: " << zt::to_string(created.error().code));
            return;
        }
        ring = std::move(*created);
        auto loaded = zt::config::load_text(kMesh);
        REQUIRE(loaded.snapshot);
        snapshots.store(loaded.snapshot);
        config.forwarder.upstreams = std::move(upstreams);
        config.forwarder.attempt_timeout_ns = 150 * zt::kNanosPerMilli;
        config.forwarder.deadline_ns = 400 * zt::kNanosPerMilli;
        config.tcp_request_timeout_ns = 5 * zt::kNanosPerSecond;
        client_uid = std::move(uid);
    }

    std::string client_uid;

    // start opens the sockets and starts the server; `shared_buffers` gives it a buffer group
    // as a worker shares among its pods (multishot receives).
    void start(bool shared_buffers = false) {
        if (shared_buffers) {
            auto created = zt::uring::BufferRing::create(
                    *ring, 3, 16, uint32_t(zt::dns::udp_buffer_bytes(config)));
            REQUIRE(created);
            buffers = std::move(*created);
        }
        zt::dns::ServerListeners listeners;
        listeners.udp.push_back(bound(AF_INET, SOCK_DGRAM, udp_port));
        listeners.udp.push_back(bound(AF_INET6, SOCK_DGRAM, udp6_port));
        UniqueFd tcp = bound(AF_INET, SOCK_STREAM, tcp_port);
        REQUIRE(::listen(tcp.get(), 16) == 0);
        listeners.tcp.push_back(std::move(tcp));
        zt::dns::ServerContext context;
        context.ring = ring.get();
        context.snapshots = &snapshots;
        context.client_uid = client_uid;
        context.sockets = &sockets;
        context.metrics = &metrics;
        context.metrics_shard = 0;
        context.config = &config;
        context.shuffle_seed = 7;
        context.udp_buffers = buffers.get();
        server = zt::dns::Server::start(context, std::move(listeners));
    }

    ~Fixture() {
        if (server) {
            server->close();
            run_until([&] { return server->closed(); });
            CHECK(server->closed());
            server.reset();
        }
    }

    static UniqueFd bound(int family, int type, uint16_t& port) {
        UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        REQUIRE(fd.valid());
        sockaddr_storage address{};
        socklen_t length = zt::test::loopback_address(family, 0, address);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port)
                                 : ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
        return fd;
    }

    template <class Done>
    bool run_until(Done done, int64_t timeout_ns = 3 * zt::kNanosPerSecond) {
        const int64_t deadline = zt::monotonic_ns() + timeout_ns;
        while (!done()) {
            if (zt::monotonic_ns() > deadline) {
                return false;
            }
            ring->run(5 * zt::kNanosPerMilli);
        }
        return true;
    }

    // readable runs the ring until `fd` has something to read (or EOF), up to `timeout_ns`.
    bool readable(int fd, int64_t timeout_ns = 3 * zt::kNanosPerSecond) {
        return run_until(
                [&] {
                    pollfd p{fd, POLLIN, 0};
                    return ::poll(&p, 1, 0) == 1;
                },
                timeout_ns);
    }

    // udp_client returns a UDP socket connected to the server's 127.0.0.1 (or ::1) socket.
    UniqueFd udp_client(int family = AF_INET) {
        UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_storage address{};
        socklen_t length = zt::test::loopback_address(
                family, family == AF_INET ? udp_port : udp6_port, address);
        REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
        return fd;
    }

    // ask_udp sends `query` and returns the answer (empty when none came within the timeout).
    std::vector<uint8_t> ask_udp(std::span<const uint8_t> query, int family = AF_INET,
                                 int64_t timeout_ns = 3 * zt::kNanosPerSecond) {
        UniqueFd fd = udp_client(family);
        REQUIRE(::send(fd.get(), query.data(), query.size(), 0) == ssize_t(query.size()));
        if (!readable(fd.get(), timeout_ns)) {
            return {};
        }
        std::vector<uint8_t> out(65535);
        ssize_t n = ::recv(fd.get(), out.data(), out.size(), 0);
        REQUIRE(n > 0);
        out.resize(size_t(n));
        return out;
    }

    UniqueFd tcp_client() {
        UniqueFd fd = zt::test::connect_loopback(AF_INET, tcp_port);
        REQUIRE(fd.valid());
        return fd;
    }

    // read_tcp_answer reads one framed answer from `fd` while running the ring.
    std::vector<uint8_t> read_tcp_answer(int fd) {
        std::vector<uint8_t> out;
        uint8_t head[2];
        size_t have = 0;
        while (have < 2) {
            if (!readable(fd)) {
                return {};
            }
            ssize_t n = ::recv(fd, head + have, 2 - have, MSG_DONTWAIT);
            if (n <= 0) {
                return {};
            }
            have += size_t(n);
        }
        out.resize(size_t(head[0] << 8 | head[1]));
        have = 0;
        while (have < out.size()) {
            if (!readable(fd)) {
                return {};
            }
            ssize_t n = ::recv(fd, out.data() + have, out.size() - have, MSG_DONTWAIT);
            if (n <= 0) {
                return {};
            }
            have += size_t(n);
        }
        return out;
    }
};

std::vector<uint8_t> query(std::string_view name, uint16_t type = zt::dns::kTypeA,
                           uint16_t id = 0x5151) {
    return zt::dns::encode_query(*Name::parse(name), type, id);
}

std::vector<uint8_t> framed(std::span<const uint8_t> message) {
    std::vector<uint8_t> out(2 + message.size());
    out[0] = uint8_t(message.size() >> 8);
    out[1] = uint8_t(message.size());
    std::copy(message.begin(), message.end(), out.begin() + 2);
    return out;
}

std::vector<std::string> a_records(std::span<const uint8_t> answer, uint16_t type) {
    std::vector<std::string> out;
    auto found = zt::dns::answer_addresses(answer, type);
    if (found) {
        for (const auto& ip : found->ips) {
            out.push_back(ip.to_string());
        }
    }
    return out;
}

}  // namespace

TEST_CASE("dns server: a mesh name is answered from the snapshot, over UDP on v4 and v6") {
    for (bool shared : {false, true}) {
        CAPTURE(shared);
        UpstreamServer upstream;
        Fixture f({upstream.address()});
        if (!f.ring) {
            return;
        }
        f.start(shared);
        for (int family : {AF_INET, AF_INET6}) {
            CAPTURE(family);
            auto answer = f.ask_udp(query("productpage.ns1.svc.cluster.local"), family);
            auto header = zt::dns::read_header(answer);
            REQUIRE(header);
            CHECK(header->id == 0x5151);
            CHECK(header->rcode == 0);
            CHECK((answer[2] & 0x04) != 0);  // Authoritative: answered here.
            CHECK(a_records(answer, zt::dns::kTypeA) == std::vector<std::string>{"198.19.9.9"});
        }
        CHECK(f.sockets.opened == 0);
        CHECK(upstream.udp_queries == 0);
        CHECK(f.metrics.totals().requests == 2);
        CHECK(f.metrics.totals().upstream_requests == 0);
    }
}

TEST_CASE("dns server: with the worker's shared buffers a burst of datagrams is taken at once") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start(true);
    // More queries than the group has buffers, all sent before the ring runs: the multishot
    // receive runs dry (ENOBUFS), is armed again, and every query is answered.
    UniqueFd client = f.udp_client();
    for (uint16_t id = 1; id <= 40; ++id) {
        auto q = query("productpage.ns1.svc.cluster.local", zt::dns::kTypeA, id);
        REQUIRE(::send(client.get(), q.data(), q.size(), 0) == ssize_t(q.size()));
    }
    std::vector<bool> answered(41, false);
    int count = 0;
    while (count < 40 && f.readable(client.get())) {
        uint8_t buffer[512];
        ssize_t n = ::recv(client.get(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n <= 0) {
            continue;
        }
        auto header = zt::dns::read_header(std::span<const uint8_t>(buffer, size_t(n)));
        REQUIRE(header);
        REQUIRE(header->id <= 40);
        if (!answered[header->id]) {
            answered[header->id] = true;
            ++count;
        }
    }
    CHECK(count == 40);
    CHECK(f.metrics.totals().requests == 40);
    if (f.server->stats().shared_receives == 0) {
        MESSAGE("this kernel refused multishot recvmsg: the sockets fell back to one receive each");
    } else {
        CHECK(f.server->stats().shared_receives == 2);
    }
}

TEST_CASE("dns server: other names are forwarded and relayed with the client's id") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start();
    auto answer = f.ask_udp(query("www.upstream.test", zt::dns::kTypeA, 0x0a0b));
    auto header = zt::dns::read_header(answer);
    REQUIRE(header);
    CHECK(header->id == 0x0a0b);
    CHECK(header->rcode == 0);
    CHECK(a_records(answer, zt::dns::kTypeA) == std::vector<std::string>{"198.19.50.1"});
    auto nxdomain = f.ask_udp(query("nowhere.upstream.test"));
    CHECK(zt::dns::read_header(nxdomain)->rcode == uint8_t(zt::dns::Rcode::nxdomain));
    // A type ztunnel never answers itself goes upstream even for a mesh name.
    auto mx = f.ask_udp(query("productpage.ns1.svc.cluster.local", 15));
    CHECK(zt::dns::read_header(mx)->rcode == uint8_t(zt::dns::Rcode::nxdomain));
    CHECK(upstream.udp_queries == 3);
    auto totals = f.metrics.totals();
    CHECK(totals.requests == 3);
    CHECK(totals.upstream_requests == 3);
    CHECK(totals.upstream_failures == 0);
    CHECK(totals.duration_count == 3);
    CHECK(f.run_until([&] { return f.server->stats().in_flight == 0; }));
}

TEST_CASE("dns server: TCP carries several framed queries on one connection") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start();
    UniqueFd client = f.tcp_client();
    // Three queries in one write, the third split across two writes.
    auto first = framed(query("productpage.ns1.svc.cluster.local", zt::dns::kTypeA, 1));
    auto second = framed(query("www.upstream.test", zt::dns::kTypeA, 2));
    auto third = framed(query("productpage.ns1", zt::dns::kTypeA, 3));
    std::vector<uint8_t> burst = first;
    burst.insert(burst.end(), second.begin(), second.end());
    burst.insert(burst.end(), third.begin(), third.begin() + 5);
    REQUIRE(zt::test::write_all(client.get(), burst));
    f.run_until([] { return false; }, 20 * zt::kNanosPerMilli);
    REQUIRE(zt::test::write_all(client.get(), std::span<const uint8_t>(third).subspan(5)));
    std::map<uint16_t, std::vector<std::string>> answers;
    for (int i = 0; i < 3; ++i) {
        auto answer = f.read_tcp_answer(client.get());
        REQUIRE_FALSE(answer.empty());
        answers[zt::dns::read_header(answer)->id] = a_records(answer, zt::dns::kTypeA);
    }
    CHECK(answers[1] == std::vector<std::string>{"198.19.9.9"});
    CHECK(answers[2] == std::vector<std::string>{"198.19.50.1"});
    CHECK(answers[3] == std::vector<std::string>{"198.19.9.9"});
    CHECK(f.server->stats().tcp_connections == 1);
    // The client closes: so does the server's side.
    client.reset();
    CHECK(f.run_until([&] { return f.server->stats().tcp_connections == 0; }));
}

TEST_CASE("dns server: a big answer is truncated over UDP and whole over TCP") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start();
    auto udp = f.ask_udp(query("big.upstream.test"));
    auto header = zt::dns::read_header(udp);
    REQUIRE(header);
    CHECK(header->truncated);
    CHECK(udp.size() <= 512);
    CHECK(upstream.tcp_queries == 0);  // A UDP client retries over TCP itself.

    UniqueFd client = f.tcp_client();
    REQUIRE(zt::test::write_all(client.get(), framed(query("big.upstream.test"))));
    auto tcp = f.read_tcp_answer(client.get());
    REQUIRE_FALSE(tcp.empty());
    CHECK_FALSE(zt::dns::read_header(tcp)->truncated);
    CHECK(a_records(tcp, zt::dns::kTypeA).size() == 120);
    CHECK(upstream.tcp_queries == 1);  // UDP first, then TCP after TC.
    CHECK(upstream.udp_queries == 2);
}

TEST_CASE("dns server: a down upstream gives SERVFAIL at once, a silent one at the deadline") {
    // A port nobody listens on: ICMP port unreachable, connection refused.
    uint16_t closed_port = 0;
    { UniqueFd probe = Fixture::bound(AF_INET, SOCK_DGRAM, closed_port); }
    UpstreamServer upstream;
    Fixture f({zt::state::SocketAddr{zt::state::IpAddr::v4(127, 0, 0, 1), closed_port}});
    if (!f.ring) {
        return;
    }
    f.start();
    int64_t start = zt::monotonic_ns();
    auto down = f.ask_udp(query("www.upstream.test"));
    REQUIRE_FALSE(down.empty());
    CHECK(zt::dns::read_header(down)->rcode == uint8_t(zt::dns::Rcode::servfail));
    // Refused at once: both attempts fail before the first attempt's timeout would.
    CHECK(zt::monotonic_ns() - start < f.config.forwarder.deadline_ns);
    CHECK(f.sockets.opened == 2);  // Two attempts, each on a fresh socket.

    f.config.forwarder.upstreams = {upstream.address()};
    start = zt::monotonic_ns();
    auto silent = f.ask_udp(query("silent.upstream.test"));
    int64_t took = zt::monotonic_ns() - start;
    REQUIRE_FALSE(silent.empty());
    CHECK(zt::dns::read_header(silent)->rcode == uint8_t(zt::dns::Rcode::servfail));
    // Two attempts of 150 ms on the one upstream, within the 400 ms deadline.
    CHECK(took >= 2 * f.config.forwarder.attempt_timeout_ns);
    CHECK(took < f.config.forwarder.deadline_ns + zt::kNanosPerSecond);
    CHECK(upstream.udp_queries == 2);

    auto fail = f.ask_udp(query("fail.upstream.test"));
    CHECK(zt::dns::read_header(fail)->rcode == uint8_t(zt::dns::Rcode::servfail));
    CHECK(f.metrics.totals().upstream_failures == 3);
    CHECK(f.run_until([&] { return f.server->stats().in_flight == 0; }));
}

TEST_CASE("dns server: malformed and oversized messages are dropped or FORMERR; service goes on") {
    for (bool shared : {false, true}) {
        CAPTURE(shared);
        UpstreamServer upstream;
        Fixture f({upstream.address()});
        if (!f.ring) {
            return;
        }
        f.config.udp_query_bytes_max = 512;
        f.start(shared);
        // Shorter than a header: nothing to answer to.
        CHECK(f.ask_udp(std::vector<uint8_t>{1, 2, 3}, AF_INET, 100 * zt::kNanosPerMilli).empty());
        // A header and garbage: FORMERR with the id.
        std::vector<uint8_t> garbage = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 'x'};
        auto formerr = f.ask_udp(garbage);
        REQUIRE_FALSE(formerr.empty());
        CHECK(zt::dns::read_header(formerr)->id == 0x1234);
        CHECK(zt::dns::read_header(formerr)->rcode == uint8_t(zt::dns::Rcode::formerr));
        // A response sent as a query: FORMERR; an unknown opcode: NOTIMP.
        auto response = query("www.upstream.test");
        response[2] |= 0x80;
        CHECK(zt::dns::read_header(f.ask_udp(response))->rcode == uint8_t(zt::dns::Rcode::formerr));
        auto notify = query("www.upstream.test");
        notify[2] = uint8_t((notify[2] & 0x87) | (4 << 3));
        CHECK(zt::dns::read_header(f.ask_udp(notify))->rcode == uint8_t(zt::dns::Rcode::notimp));
        // Larger than the receive buffer: dropped.
        std::vector<uint8_t> huge = query("www.upstream.test");
        huge.resize(2000, 0);
        CHECK(f.ask_udp(huge, AF_INET, 100 * zt::kNanosPerMilli).empty());
        // A zero-length TCP frame ends that connection.
        UniqueFd client = f.tcp_client();
        REQUIRE(zt::test::write_all(client.get(), std::vector<uint8_t>{0, 0}));
        REQUIRE(f.readable(client.get()));
        uint8_t byte;
        CHECK(::recv(client.get(), &byte, 1, MSG_DONTWAIT) == 0);

        CHECK(f.metrics.refusals(zt::dns::Refusal::malformed) == 2);
        CHECK(f.metrics.refusals(zt::dns::Refusal::oversized) == 1);
        // Still serving.
        auto answer = f.ask_udp(query("www.upstream.test"));
        CHECK(a_records(answer, zt::dns::kTypeA) == std::vector<std::string>{"198.19.50.1"});
    }
}

TEST_CASE("dns server: a pod whose workload is unknown gets SERVFAIL") {
    UpstreamServer upstream;
    Fixture f({upstream.address()}, "c//Pod/ns1/not-yet-known");
    if (!f.ring) {
        return;
    }
    f.start();
    auto answer = f.ask_udp(query("www.upstream.test"));
    CHECK(zt::dns::read_header(answer)->rcode == uint8_t(zt::dns::Rcode::servfail));
    CHECK(upstream.udp_queries == 0);
    CHECK(f.metrics.totals().requests == 1);
}

TEST_CASE("dns server: the in-flight bound answers SERVFAIL and counts") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.config.max_in_flight = 1;
    f.start();
    UniqueFd waiting = f.udp_client();
    auto silent = query("silent.upstream.test", zt::dns::kTypeA, 1);
    REQUIRE(::send(waiting.get(), silent.data(), silent.size(), 0) > 0);
    CHECK(f.run_until([&] { return f.server->stats().in_flight == 1; }));
    auto refused = f.ask_udp(query("www.upstream.test", zt::dns::kTypeA, 2));
    CHECK(zt::dns::read_header(refused)->rcode == uint8_t(zt::dns::Rcode::servfail));
    CHECK(f.metrics.refusals(zt::dns::Refusal::in_flight_limit) == 1);
    CHECK(upstream.asked("www.upstream.test") == 0);  // The refused one never went upstream.
    // The first one ends (SERVFAIL at its deadline); the bound frees up.
    CHECK(f.readable(waiting.get()));
    auto later = f.ask_udp(query("www.upstream.test", zt::dns::kTypeA, 3));
    CHECK(a_records(later, zt::dns::kTypeA) == std::vector<std::string>{"198.19.50.1"});
}

TEST_CASE("dns server: TCP connections are bounded and closed after the request timeout") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.config.max_tcp_connections = 1;
    f.config.tcp_request_timeout_ns = 200 * zt::kNanosPerMilli;
    f.start();
    UniqueFd first = f.tcp_client();
    CHECK(f.run_until([&] { return f.server->stats().tcp_connections == 1; }));
    UniqueFd second = f.tcp_client();
    REQUIRE(f.readable(second.get()));
    uint8_t byte;
    CHECK(::recv(second.get(), &byte, 1, MSG_DONTWAIT) <= 0);  // Closed (EOF or reset).
    CHECK(f.metrics.refusals(zt::dns::Refusal::tcp_connections) == 1);
    // The first sends nothing: it is closed after the request timeout.
    int64_t start = zt::monotonic_ns();
    REQUIRE(f.readable(first.get()));
    CHECK(::recv(first.get(), &byte, 1, MSG_DONTWAIT) == 0);
    CHECK(zt::monotonic_ns() - start >= 150 * zt::kNanosPerMilli);
    CHECK(f.metrics.refusals(zt::dns::Refusal::tcp_idle_timeout) == 1);
    CHECK(f.run_until([&] { return f.server->stats().tcp_connections == 0; }));
}

TEST_CASE("dns server: a TCP client past the request timeout still gets the answers it is owed") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.config.tcp_request_timeout_ns = 100 * zt::kNanosPerMilli;
    f.start();
    UniqueFd client = f.tcp_client();
    // Answered with SERVFAIL after two 150 ms attempts, well after the 100 ms request timeout.
    REQUIRE(zt::test::write_all(client.get(), framed(query("silent.upstream.test"))));
    auto answer = f.read_tcp_answer(client.get());
    REQUIRE_FALSE(answer.empty());
    CHECK(zt::dns::read_header(answer)->rcode == uint8_t(zt::dns::Rcode::servfail));
    // Then the server closes the connection.
    REQUIRE(f.readable(client.get()));
    uint8_t byte;
    CHECK(::recv(client.get(), &byte, 1, MSG_DONTWAIT) == 0);
    CHECK(f.metrics.refusals(zt::dns::Refusal::tcp_idle_timeout) == 1);
    CHECK(f.run_until([&] { return f.server->stats().tcp_connections == 0; }));
}

TEST_CASE("dns server: a hostname-only workload is resolved on demand through the forwarder") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start();
    auto snapshot = f.snapshots.load();
    const auto* source = snapshot->workload_by_uid("c//Pod/ns1/client");
    REQUIRE(source);

    struct Waiter {
        zt::dns::Resolution resolution;
        int calls = 0;
    };

    auto make = [](Waiter& waiter, std::string hostname, bool v6) {
        waiter.resolution.hostname = std::move(hostname);
        waiter.resolution.prefer_v6 = v6;
        waiter.resolution.context = &waiter;
        waiter.resolution.callback = [](zt::dns::Resolution& self) {
            ++static_cast<Waiter*>(self.context)->calls;
        };
    };
    Waiter v4, v6, only_v6, missing, cancelled;
    make(v4, "db.upstream.test", false);
    make(v6, "db.upstream.test", true);
    make(only_v6, "v6.upstream.test", false);
    make(missing, "nowhere.upstream.test", false);
    make(cancelled, "www.upstream.test", false);
    std::string principal = source->identity("cluster.local");
    for (Waiter* waiter : {&v4, &v6, &only_v6, &missing, &cancelled}) {
        f.server->resolve(waiter->resolution, *source, principal);
        CHECK(waiter->calls == 0);  // Never inside resolve.
    }
    f.server->cancel(cancelled.resolution);
    CHECK(f.run_until([&] {
        return v4.calls + v6.calls + only_v6.calls + missing.calls == 4 &&
               f.server->stats().in_flight == 0;
    }));
    CHECK(v4.resolution.address->to_string() == "198.19.60.1");
    // ztunnel asks A first; AAAA only without A records, so a v6 connection may get a v4 one.
    CHECK(v6.resolution.address->to_string() == "198.19.60.1");
    CHECK(only_v6.resolution.address->to_string() == "2001:db8::50");
    CHECK_FALSE(missing.resolution.address.has_value());
    CHECK(missing.resolution.rcode == zt::dns::Rcode::nxdomain);
    CHECK(cancelled.calls == 0);
    CHECK(f.metrics.on_demand_total() == 5);
    // Resolutions are not client queries.
    CHECK(f.metrics.totals().requests == 0);
}

TEST_CASE("dns server: on-demand answers are cached by their TTL") {
    UpstreamServer upstream;
    Fixture f({upstream.address()});
    if (!f.ring) {
        return;
    }
    f.start();
    const auto* source = f.snapshots.load()->workload_by_uid("c//Pod/ns1/client");
    int done = 0;
    auto resolve = [&](const char* hostname) {
        zt::dns::Resolution resolution;
        resolution.hostname = hostname;
        resolution.context = &done;
        resolution.callback = [](zt::dns::Resolution& self) {
            ++*static_cast<int*>(self.context);
        };
        int before = done;
        f.server->resolve(resolution, *source, "spiffe://cluster.local/ns/ns1/sa/default");
        REQUIRE(f.run_until([&] { return done == before + 1; }));
        return resolution.address ? resolution.address->to_string() : std::string("none");
    };
    CHECK(resolve("www.upstream.test") == "198.19.50.1");
    CHECK(resolve("WWW.upstream.test.") == "198.19.50.1");  // The same name: from the cache.
    CHECK(upstream.asked("www.upstream.test") == 1);
    CHECK(resolve("ttl0.upstream.test") == "198.19.50.1");
    CHECK(resolve("ttl0.upstream.test") == "198.19.50.1");
    CHECK(upstream.asked("ttl0.upstream.test") == 2);  // TTL 0 is never cached.
    CHECK(f.metrics.on_demand_total() == 4);           // Cached or not, each is counted.
}

TEST_CASE("dns server: close ends forwards, connections and sockets; no descriptor is left") {
    UpstreamServer upstream;
    auto before = zt::test::open_fds();
    {
        Fixture f({upstream.address()});
        if (!f.ring) {
            return;
        }
        f.start();
        UniqueFd client = f.tcp_client();
        REQUIRE(zt::test::write_all(client.get(), framed(query("silent.upstream.test"))));
        UniqueFd udp = f.udp_client();
        auto silent = query("silent.upstream.test");
        REQUIRE(::send(udp.get(), silent.data(), silent.size(), 0) > 0);
        CHECK(f.run_until([&] { return f.server->stats().in_flight == 2; }));
        f.sockets.fail_next = true;  // A socket that cannot be made is one failed attempt.
        zt::dns::Resolution resolution;
        int called = 0;
        resolution.hostname = "silent.upstream.test";
        resolution.context = &called;
        resolution.callback = [](zt::dns::Resolution& self) {
            ++*static_cast<int*>(self.context);
        };
        f.server->resolve(resolution, *f.snapshots.load()->workload_by_uid("c//Pod/ns1/client"),
                          "spiffe://cluster.local/ns/ns1/sa/default");
        f.server->close();
        CHECK(f.run_until([&] { return f.server->closed(); }));
        CHECK(called == 1);
        CHECK(resolution.failure == zt::dns::Failure::socket_error);
        // The TCP client sees its connection end.
        REQUIRE(f.readable(client.get()));
        uint8_t byte;
        CHECK(::recv(client.get(), &byte, 1, MSG_DONTWAIT) <= 0);
    }
    CHECK(zt::test::open_fds() == before);
}
