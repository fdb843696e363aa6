// dns_serve runs one pod's DNS proxy (`zt::dns::Server`, the unit every captured pod will own)
// on its own io_uring, outside ztunnel: the DNS benchmark and the standalone DNS scenario run it
// inside a pod's network namespace until the workers serve DNS themselves.
//
//   dns_serve --config FILE --client UID --listen IP:PORT [--listen IP:PORT ...]
//             [--upstream IP[:PORT],...] [--log-level SPEC] [--metrics-out FILE]
//             [--shared-buffers N]
//       serves UDP and TCP on every --listen address as the pod whose workload is UID, with the
//       mesh of FILE (the ztunnel config format); forwards to --upstream (default: the
//       nameservers of /etc/resolv.conf). Prints "dns_serve: serving" once listening, runs until
//       SIGTERM or SIGINT, then closes cleanly and writes the metrics exposition to
//       --metrics-out.
//   dns_serve --memory-pods N [--shared-buffers N]
//       opens N servers (UDP and TCP on 127.0.0.1 and ::1, ephemeral ports) on one ring and
//       prints the process's resident memory per server: the DNS listeners' cost per pod.
// --shared-buffers N gives the UDP sockets a group of N receive buffers shared as a worker
// shares them among its pods (multishot receives); without it each socket has its own.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "src/config/load.h"
#include "src/dns/resolv_conf.h"
#include "src/dns/server.h"
#include "src/telemetry/metrics.h"
#include "zt/log.h"

namespace {

std::atomic<bool> stop_requested{false};

void on_signal(int) {
    stop_requested = true;
}

class PlainSockets final : public zt::dns::UpstreamSockets {
public:
    zt::Result<zt::UniqueFd> open(zt::dns::Transport transport,
                                  const zt::state::SocketAddr& upstream) override {
        int type = transport == zt::dns::Transport::udp ? SOCK_DGRAM : SOCK_STREAM;
        int fd = ::socket(upstream.ip.v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          0);
        if (fd < 0) {
            return zt::fail_errno(errno);
        }
        return zt::UniqueFd(fd);
    }
};

zt::UniqueFd bind_socket(const zt::state::SocketAddr& address, int type) {
    int family = address.ip.v6 ? AF_INET6 : AF_INET;
    zt::UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return fd;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) {
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    sockaddr_storage storage{};
    socklen_t length = zt::dns::to_sockaddr(address, storage);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        std::fprintf(stderr, "dns_serve: bind %s: %s\n", address.to_string().c_str(),
                     std::strerror(errno));
        return zt::UniqueFd();
    }
    if (type == SOCK_STREAM && ::listen(fd.get(), 128) != 0) {
        return zt::UniqueFd();
    }
    return fd;
}

long resident_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

// shared_buffers makes the group of `count` UDP buffers a worker would share, or null.
std::unique_ptr<zt::uring::BufferRing> shared_buffers(zt::uring::Ring& ring, int count,
                                                      const zt::dns::ServerConfig& config) {
    if (count <= 0) {
        return nullptr;
    }
    auto created = zt::uring::BufferRing::create(ring, 1, uint32_t(count),
                                                 uint32_t(zt::dns::udp_buffer_bytes(config)));
    if (!created) {
        std::fprintf(stderr, "dns_serve: no shared buffers: %s\n",
                     zt::to_string(created.error().code).data());
        return nullptr;
    }
    return std::move(*created);
}

int memory_pods(int count, zt::uring::Ring& ring, int buffer_count) {
    zt::state::SnapshotStore snapshots;
    PlainSockets sockets;
    zt::dns::DnsMetrics metrics(1, 64);
    zt::dns::ServerConfig config;
    auto buffers = shared_buffers(ring, buffer_count, config);
    std::vector<std::unique_ptr<zt::dns::Server>> servers;
    zt::state::SocketAddr v4{zt::state::IpAddr::v4(127, 0, 0, 1), 0};
    zt::state::SocketAddr v6{*zt::state::IpAddr::parse("::1"), 0};
    // One warm-up server first, so the ring's and the allocator's fixed costs are not counted.
    long before = 0;
    for (int i = 0; i <= count; ++i) {
        if (i == 1) {
            ring.run(0);
            before = resident_kib();
        }
        zt::dns::ServerListeners listeners;
        for (const auto& address : {v4, v6}) {
            zt::UniqueFd udp = bind_socket(address, SOCK_DGRAM);
            zt::UniqueFd tcp = bind_socket(address, SOCK_STREAM);
            if (!udp.valid() || !tcp.valid()) {
                return 1;
            }
            listeners.udp.push_back(std::move(udp));
            listeners.tcp.push_back(std::move(tcp));
        }
        zt::dns::ServerContext context;
        context.ring = &ring;
        context.snapshots = &snapshots;
        context.client_uid = "pod-" + std::to_string(i);
        context.sockets = &sockets;
        context.metrics = &metrics;
        context.config = &config;
        context.udp_buffers = buffers.get();
        servers.push_back(zt::dns::Server::start(context, std::move(listeners)));
        ring.submit();
    }
    ring.run(0);
    long after = resident_kib();
    std::printf("dns_serve: %d servers, %ld bytes resident per server (4 sockets each, %s)\n",
                count, (after - before) * 1024 / count,
                buffers ? "shared receive buffers" : "a receive buffer per UDP socket");
    for (auto& server : servers) {
        server->close();
    }
    for (int i = 0; i < 1000 && ring.in_flight() > 0; ++i) {
        ring.run(10 * zt::kNanosPerMilli);
    }
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: dns_serve --config FILE --client UID --listen IP:PORT... "
                 "[--upstream LIST] [--log-level SPEC] [--metrics-out FILE] "
                 "[--shared-buffers N]\n"
                 "       dns_serve --memory-pods N [--shared-buffers N]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path, client_uid, upstreams, log_level = "info", metrics_out;
    std::vector<zt::state::SocketAddr> listens;
    int pods = 0;
    int buffer_count = 0;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (i + 1 >= argc) {
            return usage();
        }
        std::string value = argv[++i];
        if (arg == "--config") {
            config_path = value;
        } else if (arg == "--client") {
            client_uid = value;
        } else if (arg == "--listen") {
            auto address = zt::state::SocketAddr::parse(value);
            if (!address) {
                return usage();
            }
            listens.push_back(*address);
        } else if (arg == "--upstream") {
            upstreams = value;
        } else if (arg == "--log-level") {
            log_level = value;
        } else if (arg == "--metrics-out") {
            metrics_out = value;
        } else if (arg == "--memory-pods") {
            pods = std::atoi(value.c_str());
        } else if (arg == "--shared-buffers") {
            buffer_count = std::atoi(value.c_str());
        } else {
            return usage();
        }
    }
    auto filter = zt::log::Filter::parse(log_level);
    if (!filter) {
        return usage();
    }
    zt::log::set_filter(*filter);
    auto ring = zt::uring::Ring::create(zt::uring::RingOptions{1024, 0});
    if (!ring) {
        std::fprintf(stderr, "dns_serve: io_uring unavailable\n");
        return 1;
    }
    if (pods > 0) {
        return memory_pods(pods, **ring, buffer_count);
    }
    if (config_path.empty() || client_uid.empty() || listens.empty()) {
        return usage();
    }

    zt::dns::ServerConfig config;
    if (!upstreams.empty()) {
        auto list = zt::dns::parse_upstreams(upstreams);
        if (!list) {
            return usage();
        }
        config.forwarder.upstreams = *list;
    } else if (auto conf = zt::dns::read_resolv_conf(std::string(zt::dns::kDefaultResolvConf))) {
        config.forwarder.upstreams = conf->nameservers;
    }
    auto loaded = zt::config::load_file(config_path);
    if (!loaded.snapshot) {
        for (const auto& error : loaded.errors) {
            std::fprintf(stderr, "dns_serve: %s\n", error.c_str());
        }
        return 1;
    }
    zt::state::SnapshotStore snapshots;
    snapshots.store(loaded.snapshot);

    zt::dns::ServerListeners listeners;
    for (const auto& address : listens) {
        zt::UniqueFd udp = bind_socket(address, SOCK_DGRAM);
        zt::UniqueFd tcp = bind_socket(address, SOCK_STREAM);
        if (!udp.valid() || !tcp.valid()) {
            return 1;
        }
        listeners.udp.push_back(std::move(udp));
        listeners.tcp.push_back(std::move(tcp));
    }
    auto buffers = shared_buffers(**ring, buffer_count, config);
    zt::telemetry::Registry registry(1);
    auto& metrics = registry.add(std::make_unique<zt::dns::DnsMetrics>(1, 4096));
    PlainSockets sockets;
    zt::dns::ServerContext context;
    context.ring = ring->get();
    context.snapshots = &snapshots;
    context.client_uid = client_uid;
    context.sockets = &sockets;
    context.metrics = &metrics;
    context.config = &config;
    context.shuffle_seed = uint64_t(zt::monotonic_ns());
    context.udp_buffers = buffers.get();
    auto server = zt::dns::Server::start(context, std::move(listeners));

    struct sigaction action {};

    action.sa_handler = &on_signal;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    std::printf("dns_serve: serving\n");
    std::fflush(stdout);
    while (!stop_requested) {
        (*ring)->run(100 * zt::kNanosPerMilli);
    }
    server->close();
    for (int i = 0; i < 500 && !server->closed(); ++i) {
        (*ring)->run(10 * zt::kNanosPerMilli);
    }
    if (!metrics_out.empty()) {
        std::ofstream out(metrics_out);
        out << registry.render(zt::telemetry::Format::prometheus_text);
    }
    if (!server->closed()) {
        // Operations are still in the kernel: leave without running destructors.
        std::fprintf(stderr, "dns_serve: did not close in time\n");
        std::fflush(stdout);
        _exit(1);
    }
    return 0;
}
