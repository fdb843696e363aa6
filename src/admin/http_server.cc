// http_server.cc runs the operator HTTP servers on the control thread with non-blocking sockets
// and poll(). It owns sockets and deadlines; parsing is http.cc's and answers are the handler's.
// It must never block: every socket is non-blocking and every wait is bounded by a deadline.

#include "src/admin/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "zt/clock.h"
#include "zt/log.h"

namespace zt::admin {

namespace {

constexpr std::string_view kLogTarget = "admin";

int64_t now_ms() {
    return monotonic_ns() / kNanosPerMilli;
}

struct ParsedAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;
    bool wildcard_v6 = false;
};

Result<ParsedAddress> parse_address(std::string_view address) {
    ParsedAddress parsed;
    std::string host;
    std::string_view port_text;
    if (!address.empty() && address[0] == '[') {
        size_t close = address.find(']');
        if (close == std::string_view::npos || close + 1 >= address.size() ||
            address[close + 1] != ':') {
            return fail(Errc::invalid_argument);
        }
        host = std::string(address.substr(1, close - 1));
        port_text = address.substr(close + 2);
    } else {
        size_t colon = address.rfind(':');
        if (colon == std::string_view::npos) {
            return fail(Errc::invalid_argument);
        }
        host = std::string(address.substr(0, colon));
        port_text = address.substr(colon + 1);
    }
    uint16_t port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty()) {
        return fail(Errc::invalid_argument);
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&parsed.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&parsed.storage);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        parsed.length = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        parsed.length = sizeof(sockaddr_in6);
        parsed.wildcard_v6 = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
    } else {
        return fail(Errc::invalid_argument);
    }
    return parsed;
}

Result<UniqueFd> bind_listener(const ParsedAddress& address) {
    int family = address.storage.ss_family;
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail_errno(errno);
    }
    int one = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6 && address.wildcard_v6) {
        // `[::]` serves IPv4 too, as ztunnel's wildcard listeners do.
        int zero = 0;
        (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) !=
        0) {
        return fail_errno(errno);
    }
    if (::listen(fd.get(), 128) != 0) {
        return fail_errno(errno);
    }
    return fd;
}

}  // namespace

bool is_loopback_address(std::string_view address) {
    auto parsed = parse_address(address);
    if (!parsed) {
        return false;
    }
    if (parsed->storage.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&parsed->storage);
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&parsed->storage);
    return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
}

// Connection is one accepted client. `state` says what it waits for.
struct HttpServer::Connection {
    enum class State : uint8_t {
        reading,    // collecting the request
        writing,    // sending `out` from `written`
        lingering,  // response sent and write side shut; reading until the client closes
    };

    UniqueFd fd;
    State state = State::reading;
    RequestParser parser;
    std::string out;
    size_t written = 0;
    int64_t deadline_ms = 0;

    Connection(UniqueFd socket, HttpLimits limits, int64_t deadline)
        : fd(std::move(socket)), parser(limits), deadline_ms(deadline) {}
};

Result<std::unique_ptr<HttpServer>> HttpServer::listen(std::string_view address,
                                                       HttpServerOptions options,
                                                       HttpHandler& handler,
                                                       telemetry::ShardedFamily* refused,
                                                       size_t shard) {
    auto parsed = parse_address(address);
    if (!parsed) {
        return fail(parsed.error());
    }
    auto fd = bind_listener(*parsed);
    if (!fd && parsed->wildcard_v6 && fd.error().sys_errno == EAFNOSUPPORT) {
        auto fallback = parse_address(
                "0.0.0.0:" +
                std::to_string(
                        ntohs(reinterpret_cast<const sockaddr_in6*>(&parsed->storage)->sin6_port)));
        if (fallback) {
            fd = bind_listener(*fallback);
        }
    }
    if (!fd) {
        return fail(fd.error());
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        return fail_errno(errno);
    }
    uint16_t port = bound.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return std::unique_ptr<HttpServer>(
            new HttpServer(std::move(*fd), port, std::move(options), handler, refused, shard));
}

HttpServer::HttpServer(UniqueFd listener, uint16_t port, HttpServerOptions options,
                       HttpHandler& handler, telemetry::ShardedFamily* refused, size_t shard)
    : listener_(std::move(listener))
    , port_(port)
    , options_(std::move(options))
    , handler_(handler)
    , refused_(refused)
    , shard_(shard) {}

HttpServer::~HttpServer() = default;

void HttpServer::collect_pollfds(std::vector<pollfd>& fds) const {
    if (listener_) {
        fds.push_back({listener_.get(), POLLIN, 0});
    }
    for (const auto& connection : connections_) {
        short events = connection->state == Connection::State::writing ? POLLOUT : POLLIN;
        fds.push_back({connection->fd.get(), events, 0});
    }
}

void HttpServer::on_poll(const pollfd& entry) {
    if (entry.revents == 0) {
        return;
    }
    if (listener_ && entry.fd == listener_.get()) {
        accept_ready();
        return;
    }
    for (size_t i = 0; i < connections_.size(); ++i) {
        Connection& connection = *connections_[i];
        if (connection.fd.get() != entry.fd) {
            continue;
        }
        if (connection.state == Connection::State::writing) {
            on_writable(connection);
        } else {
            on_readable(connection);
        }
        if (!connection.fd) {
            close(i);
        }
        return;
    }
}

void HttpServer::count_refusal(std::string_view reason) {
    if (refused_ != nullptr) {
        refused_->cell(shard_, {options_.name, reason})->increment();
    }
}

void HttpServer::accept_ready() {
    // Accept what is queued now; a bounded number per wakeup keeps other servers responsive.
    for (int i = 0; i < 64; ++i) {
        UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EINTR) {
                ++stats_.io_errors;
            }
            return;
        }
        ++stats_.accepted;
        if (connections_.size() >= options_.max_connections) {
            ++stats_.refused_connection_limit;
            count_refusal("connection_limit");
            std::string busy = serialize(text_response(503, "too many connections\n"));
            (void)::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;  // `fd` closes here
        }
        connections_.push_back(std::make_unique<Connection>(
                std::move(fd), options_.limits, now_ms() + options_.request_timeout_ms));
        connection_count_.store(connections_.size(), std::memory_order_relaxed);
    }
}

void HttpServer::on_readable(Connection& connection) {
    char buffer[4096];
    ssize_t n = ::recv(connection.fd.get(), buffer, sizeof buffer, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        ++stats_.io_errors;
        connection.fd.reset();
        return;
    }
    if (connection.state == Connection::State::lingering) {
        if (n == 0) {
            connection.fd.reset();
        }
        return;  // discard whatever the client still sends
    }
    if (n == 0) {
        // The client closed before finishing its request: nothing to answer.
        connection.fd.reset();
        return;
    }
    auto status = connection.parser.feed(std::string_view(buffer, size_t(n)));
    if (status == RequestParser::Status::need_more) {
        return;
    }
    if (status == RequestParser::Status::error) {
        ++stats_.bad_requests;
        int code = connection.parser.error_status();
        count_refusal(code == 413 || code == 431 ? "request_too_large" : "bad_request");
        log::debug(kLogTarget, "refused request",
                   {log::Field::str("server", options_.name),
                    log::Field::num("status", uint64_t(code)),
                    log::Field::str("reason", connection.parser.error_reason())});
        respond(connection,
                text_response(code, std::string(connection.parser.error_reason()) + "\n"), false);
        return;
    }
    ++stats_.requests;
    const HttpRequest& request = connection.parser.request();
    HttpResponse response = handler_.handle(request);
    if (response.body.size() > options_.max_response_bytes) {
        response = text_response(500, "response too large\n");
    }
    respond(connection, response, request.method == "HEAD");
}

void HttpServer::respond(Connection& connection, const HttpResponse& response, bool head_only) {
    connection.out = serialize(response, head_only);
    connection.written = 0;
    connection.state = Connection::State::writing;
    on_writable(connection);
}

void HttpServer::on_writable(Connection& connection) {
    while (connection.written < connection.out.size()) {
        ssize_t n = ::send(connection.fd.get(), connection.out.data() + connection.written,
                           connection.out.size() - connection.written, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;  // poll for POLLOUT
            }
            ++stats_.io_errors;
            connection.fd.reset();
            return;
        }
        connection.written += size_t(n);
    }
    ::shutdown(connection.fd.get(), SHUT_WR);
    connection.out.clear();
    connection.out.shrink_to_fit();
    connection.state = Connection::State::lingering;
    connection.deadline_ms = now_ms() + options_.linger_timeout_ms;
}

void HttpServer::close(size_t index) {
    connections_[index] = std::move(connections_.back());
    connections_.pop_back();
    connection_count_.store(connections_.size(), std::memory_order_relaxed);
}

void HttpServer::expire(int64_t now) {
    for (size_t i = 0; i < connections_.size();) {
        Connection& connection = *connections_[i];
        if (now < connection.deadline_ms) {
            ++i;
            continue;
        }
        if (connection.state != Connection::State::lingering) {
            ++stats_.timeouts;
            count_refusal("timeout");
        }
        close(i);
    }
}

int HttpServer::next_timeout_ms(int64_t now) const {
    int64_t best = -1;
    for (const auto& connection : connections_) {
        int64_t wait = connection->deadline_ms - now;
        if (wait < 0) {
            wait = 0;
        }
        if (best < 0 || wait < best) {
            best = wait;
        }
    }
    return best > INT32_MAX ? INT32_MAX : int(best);
}

Result<void> HttpServer::poll_once(int timeout_ms) {
    std::vector<pollfd> fds;
    collect_pollfds(fds);
    int wait = next_timeout_ms(now_ms());
    if (wait < 0 || (timeout_ms >= 0 && timeout_ms < wait)) {
        wait = timeout_ms;
    }
    int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
    if (ready < 0) {
        if (errno == EINTR) {
            return ok();
        }
        return fail_errno(errno);
    }
    for (const pollfd& entry : fds) {
        on_poll(entry);
    }
    expire(now_ms());
    return ok();
}

void HttpServer::stop_accepting() {
    listener_.reset();
}

}  // namespace zt::admin
