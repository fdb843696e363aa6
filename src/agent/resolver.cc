// resolver.cc runs getaddrinfo off the agent's ring thread. Each lookup owns an eventfd and a
// detached thread that holds a reference to the lookup until it has written its results and
// signalled the fd, so neither side ever waits for the other and nothing is freed under the
// other's feet.

#include "src/agent/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include <atomic>
#include <cstring>

namespace zt::agent {

struct Resolution::State {
    std::atomic<bool> done{false};
};

std::string SocketAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
    }
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
}

std::optional<SocketAddress> parse_address_literal(const std::string& host, uint16_t port) {
    SocketAddress address;
    auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        address.length = sizeof(sockaddr_in);
        return address;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        address.length = sizeof(sockaddr_in6);
        return address;
    }
    return std::nullopt;
}

Result<std::shared_ptr<Resolution>> Resolution::start(std::string host, uint16_t port) {
    std::shared_ptr<Resolution> resolution(new Resolution());
    resolution->state_ = std::make_unique<State>();
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        return fail(Errc::sys, errno);
    }
    resolution->event_.reset(fd);
    // The thread keeps `resolution` alive until it has signalled: the owner may let go first.
    // pthread rather than std::thread, whose failure to start would throw (abort here).
    auto job = std::make_unique<Job>(Job{resolution, std::move(host), port});
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, &Resolution::run_job, job.get());
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        return fail(Errc::sys, rc);
    }
    (void)job.release();  // The thread owns it now (`run_job`).
    return resolution;
}

void* Resolution::run_job(void* arg) {
    std::unique_ptr<Job> job(static_cast<Job*>(arg));
    job->resolution->run(job->host, job->port);
    return nullptr;
}

Resolution::~Resolution() = default;

bool Resolution::done() const {
    return state_->done.load(std::memory_order_acquire);
}

void Resolution::run(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) {
        error_ = gai_strerror(rc);
    } else {
        for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
            if (entry->ai_addrlen > sizeof(sockaddr_storage) ||
                (entry->ai_family != AF_INET && entry->ai_family != AF_INET6)) {
                continue;
            }
            SocketAddress address;
            std::memcpy(&address.storage, entry->ai_addr, entry->ai_addrlen);
            address.length = entry->ai_addrlen;
            addresses_.push_back(address);
        }
        ::freeaddrinfo(found);
        if (addresses_.empty()) {
            error_ = "no IPv4 or IPv6 address";
        }
    }
    state_->done.store(true, std::memory_order_release);
    uint64_t one = 1;
    // The fd lives as long as this object, which this thread keeps alive; a full counter (never
    // with one write) is the only failure and would still leave the fd readable.
    (void)!::write(event_.get(), &one, sizeof one);
}

}  // namespace zt::agent
