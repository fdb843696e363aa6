// http_server.cc runs the operator HTTP servers on the control thread with non-blocking sockets
// and poll(). It owns sockets and deadlines; parsing is http.cc's and answers are the handler's.
// It must never block: every socket is non-blocking and every wait is bounded by a deadline.

#include "src/admin/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
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

Result<UniqueFd> bind_listener(const ParsedAddress& address, int backlog) {
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
    if (::listen(fd.get(), backlog) != 0) {
        return fail_errno(errno);
    }
    return fd;
}

// source_key names a client by its address alone (not its port), the unit of the per-source
// cap. An IPv4 client of a dual-stack listener arrives IPv4-mapped; it is folded to plain IPv4
// so one client has one key whichever listener it reached.
std::string source_key(const sockaddr_storage& peer) {
    if (peer.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
        return std::string(reinterpret_cast<const char*>(&v4->sin_addr), 4);
    }
    if (peer.ss_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
        const char* bytes = reinterpret_cast<const char*>(&v6->sin6_addr);
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            return std::string(bytes + 12, 4);
        }
        return std::string(bytes, 16);
    }
    return std::string();
}

// open_spare opens the descriptor kept in reserve for fd exhaustion.
UniqueFd open_spare() {
    return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
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
        held,       // the handler holds the request (`request`) until it can answer
        writing,    // sending `out` from `written`
        lingering,  // response sent and write side shut; reading until the client closes
    };

    UniqueFd fd;
    State state = State::reading;
    RequestParser parser;
    HttpRequest request;  // while `held`: the request, asked again
    std::string out;
    size_t written = 0;
    int64_t deadline_ms = 0;
    uint64_t sequence = 0;     // accept order: a lower number is an older connection
    std::string source;        // the client address, a `per_source_` key
    bool holds_spare = false;  // accepted in place of the spare descriptor

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
    auto fd = bind_listener(*parsed, options.listen_backlog);
    if (!fd && parsed->wildcard_v6 && fd.error().sys_errno == EAFNOSUPPORT) {
        auto fallback = parse_address(
                "0.0.0.0:" +
                std::to_string(
                        ntohs(reinterpret_cast<const sockaddr_in6*>(&parsed->storage)->sin6_port)));
        if (fallback) {
            fd = bind_listener(*fallback, options.listen_backlog);
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
    , shard_(shard)
    , spare_(open_spare()) {}

HttpServer::~HttpServer() = default;

void HttpServer::collect_pollfds(std::vector<pollfd>& fds) const {
    if (listener_ && now_ms() >= accept_paused_until_ms_) {
        fds.push_back({listener_.get(), POLLIN, 0});
    }
    for (const auto& [fd, connection] : connections_) {
        short events = connection->state == Connection::State::writing ? POLLOUT : POLLIN;
        fds.push_back({fd, events, 0});
    }
}

bool HttpServer::owns(int fd) const {
    return (listener_ && fd == listener_.get()) || connections_.count(fd) != 0;
}

void HttpServer::on_poll(const pollfd& entry) {
    if (entry.revents == 0) {
        return;
    }
    if (listener_ && entry.fd == listener_.get()) {
        accept_ready();
        return;
    }
    auto found = connections_.find(entry.fd);
    if (found == connections_.end()) {
        return;  // closed earlier in this round
    }
    Connection& connection = *found->second;
    if (connection.state == Connection::State::writing) {
        on_writable(connection);
    } else {
        on_readable(connection);
    }
    if (!connection.fd) {
        close(entry.fd);
    }
}

void HttpServer::count_refusal(std::string_view reason) {
    if (refused_ != nullptr) {
        refused_->cell(shard_, {options_.name, reason})->increment();
    }
    // One line per burst at most: a flood must not flood the log too.
    int64_t now = now_ms();
    if (now - last_refusal_log_ms_ >= 10'000) {
        last_refusal_log_ms_ = now;
        log::warn(kLogTarget, "refused or dropped connections (counted; logged once per 10 s)",
                  {log::Field::str("server", options_.name), log::Field::str("reason", reason),
                   log::Field::num("connections", connections_.size()),
                   log::Field::num("sources", per_source_.size())});
    }
}

void HttpServer::accept_ready() {
    // Accept what is queued now, a bounded number per wakeup so other servers stay responsive;
    // refusing is cheap (a close), so a flood drains quickly and the backlog keeps room.
    for (int i = 0; i < options_.accepts_per_wakeup; ++i) {
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        UniqueFd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &length,
                              SOCK_NONBLOCK | SOCK_CLOEXEC));
        int err = fd ? 0 : errno;
        bool holds_spare = false;
        if (!fd && (err == EMFILE || err == ENFILE) && spare_) {
            // Out of descriptors: give the spare back so that this one client (typically the
            // kubelet's probe) is still answered.
            spare_.reset();
            length = sizeof peer;
            fd = UniqueFd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &length,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC));
            err = fd ? 0 : errno;
            holds_spare = fd.valid();
            if (!holds_spare) {
                restore_spare();
            }
        }
        if (!fd) {
            switch (err) {
                case EAGAIN:
                    return;
                case EINTR:
                case ECONNABORTED:
                case EPROTO:
                case EPERM:
                    continue;  // this one client is gone or refused; the next may be fine
                case EMFILE:
                case ENFILE:
                case ENOBUFS:
                case ENOMEM:
                    // Out of a resource while the listener stays readable: pause polling it
                    // instead of spinning on it, and count it.
                    ++stats_.fd_exhausted;
                    count_refusal("fd_limit");
                    accept_paused_until_ms_ = now_ms() + options_.accept_pause_ms;
                    return;
                default:
                    ++stats_.io_errors;
                    return;
            }
        }
        ++stats_.accepted;
        admit(std::move(fd), peer, holds_spare);
    }
}

void HttpServer::admit(UniqueFd fd, const sockaddr_storage& peer, bool holds_spare) {
    std::string source = source_key(peer);
    auto counted = per_source_.find(source);
    size_t from_source = counted == per_source_.end() ? 0 : counted->second;
    if (options_.max_connections_per_source > 0 &&
        from_source >= options_.max_connections_per_source) {
        ++stats_.refused_per_source;
        refuse(std::move(fd), "per_source_limit", holds_spare);
        return;
    }
    if (connections_.size() >= options_.max_connections && !evict_one()) {
        ++stats_.refused_connection_limit;
        refuse(std::move(fd), "connection_limit", holds_spare);
        return;
    }
    int key = fd.get();
    auto connection = std::make_unique<Connection>(std::move(fd), options_.limits,
                                                   now_ms() + options_.request_timeout_ms);
    connection->sequence = ++accept_sequence_;
    connection->source = std::move(source);
    connection->holds_spare = holds_spare;
    per_source_[connection->source] += 1;
    connections_.emplace(key, std::move(connection));
    connection_count_.store(connections_.size(), std::memory_order_relaxed);
}

void HttpServer::refuse(UniqueFd fd, std::string_view reason, bool holds_spare) {
    count_refusal(reason);
    std::string busy = serialize(text_response(503, "too many connections\n"));
    (void)::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    fd.reset();
    if (holds_spare) {
        restore_spare();
    }
}

bool HttpServer::evict_one() {
    // The victim is a connection still waiting for its request (an answered one is nearly done),
    // from the address holding the most connections, the oldest of those: whoever opens many
    // idle sockets loses them first, and a newcomer from elsewhere always gets a slot.
    Connection* victim = nullptr;
    size_t victim_source_count = 0;
    for (const auto& [fd, connection] : connections_) {
        if (connection->state != Connection::State::reading) {
            continue;
        }
        size_t count = per_source_[connection->source];
        if (victim == nullptr || count > victim_source_count ||
            (count == victim_source_count && connection->sequence < victim->sequence)) {
            victim = connection.get();
            victim_source_count = count;
        }
    }
    if (victim == nullptr) {
        return false;
    }
    ++stats_.evicted;
    count_refusal("evicted");
    close(victim->fd.get());
    return true;
}

void HttpServer::restore_spare() {
    if (!spare_) {
        spare_ = open_spare();
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
    if (connection.state == Connection::State::lingering ||
        connection.state == Connection::State::held) {
        // A client that gives up on a held request closes: its slot is freed at once.
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
    answer(connection, connection.parser.request());
}

void HttpServer::answer(Connection& connection, HttpRequest request) {
    HttpResponse response = handler_.handle(request);
    if (response.hold_ms > 0 && !request.hold.expired) {
        if (connection.state != Connection::State::held) {
            if (held_ >= options_.max_held) {
                // Every hold slot is taken: answer with what there is now, as at the end of a
                // hold, rather than let long polls take every connection.
                ++stats_.held_over_limit;
                count_refusal("wait_limit");
                request.hold = {true, true, response.hold_context};
                answer(connection, std::move(request));
                return;
            }
            ++held_;
            ++stats_.held;
            connection.state = Connection::State::held;
            connection.deadline_ms = now_ms() + std::min(response.hold_ms, options_.max_hold_ms);
        }
        request.hold.held = true;
        request.hold.context = response.hold_context;
        connection.request = std::move(request);
        return;
    }
    if (response.hold_ms > 0) {
        // A handler must answer once the hold is over; never keep the client waiting on a bug.
        response = text_response(500, "the handler gave no answer\n");
    }
    if (connection.state == Connection::State::held) {
        --held_;
        connection.request = HttpRequest();
    }
    if (response.body.size() > options_.max_response_bytes) {
        response = text_response(500, "response too large\n");
    }
    respond(connection, response, request.method == "HEAD");
}

void HttpServer::wake_held() {
    if (held_ == 0) {
        return;
    }
    std::vector<int> held;
    for (const auto& [fd, connection] : connections_) {
        if (connection->state == Connection::State::held) {
            held.push_back(fd);
        }
    }
    for (int fd : held) {
        Connection& connection = *connections_.at(fd);
        HttpRequest request = std::move(connection.request);
        request.hold.expired = false;
        answer(connection, std::move(request));
        if (!connection.fd) {
            close(fd);
        }
    }
}

void HttpServer::respond(Connection& connection, const HttpResponse& response, bool head_only) {
    connection.out = serialize(response, head_only);
    connection.written = 0;
    connection.state = Connection::State::writing;
    connection.deadline_ms = now_ms() + options_.response_timeout_ms;
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

void HttpServer::close(int fd) {
    auto found = connections_.find(fd);
    if (found == connections_.end()) {
        return;
    }
    std::unique_ptr<Connection> connection = std::move(found->second);
    connections_.erase(found);
    if (connection->state == Connection::State::held) {
        --held_;
    }
    auto counted = per_source_.find(connection->source);
    if (counted != per_source_.end() && --counted->second == 0) {
        per_source_.erase(counted);
    }
    connection_count_.store(connections_.size(), std::memory_order_relaxed);
    bool held_spare = connection->holds_spare;
    connection.reset();  // closes the socket first, so the spare can take its number back
    if (held_spare) {
        restore_spare();
    }
}

void HttpServer::expire(int64_t now) {
    std::vector<int> due;
    std::vector<int> hold_over;
    for (const auto& [fd, connection] : connections_) {
        if (now < connection->deadline_ms) {
            continue;
        }
        if (connection->state == Connection::State::held) {
            hold_over.push_back(fd);  // answered now with what there is, not closed
            continue;
        }
        if (connection->state != Connection::State::lingering) {
            ++stats_.timeouts;
            count_refusal("timeout");
        }
        due.push_back(fd);
    }
    for (int fd : due) {
        close(fd);
    }
    for (int fd : hold_over) {
        Connection& connection = *connections_.at(fd);
        HttpRequest request = std::move(connection.request);
        request.hold.expired = true;
        answer(connection, std::move(request));
        if (!connection.fd) {
            close(fd);
        }
    }
}

int HttpServer::next_timeout_ms(int64_t now) const {
    int64_t best = -1;
    if (listener_ && accept_paused_until_ms_ > now) {
        best = accept_paused_until_ms_ - now;
    }
    for (const auto& [fd, connection] : connections_) {
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
