// server.cc is one pod's DNS server on the ring: the UDP sockets (one receive always armed,
// replies sent from a bounded pool), the TCP listeners and clients (two-byte framing, several
// queries per connection, the request timeout), and the dispatch of every query to `decide` and
// then to an answer, an error or a forward (upstream.cc). It never blocks and never touches
// memory the kernel still holds: every record is freed only once its completions are back.

#include "src/dns/server.h"

#include <errno.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "src/dns/server_impl.h"

namespace zt::dns {

namespace {

void on_udp_recv_cqe(uring::Completion& self, int32_t res, uint32_t flags) {
    auto* socket = static_cast<UdpSocket*>(self.context);
    if (socket->multishot) {
        socket->owner->on_udp_multishot(*socket, res, flags);
    } else {
        socket->owner->on_udp(*socket, res);
    }
}

void on_udp_sent_cqe(uring::Completion& self, int32_t, uint32_t) {
    auto* reply = static_cast<UdpReply*>(self.context);
    reply->socket->owner->on_udp_sent(*reply);
}

void on_accept_cqe(uring::Completion& self, int32_t res, uint32_t flags) {
    auto* listener = static_cast<TcpListener*>(self.context);
    listener->owner->on_accept(*listener, res, flags);
}

void on_rearm_cqe(uring::Completion& self, int32_t res, uint32_t) {
    auto* listener = static_cast<TcpListener*>(self.context);
    if (res == -ETIME && !listener->owner->closing) {
        listener->owner->arm_accept(*listener);
    }
}

void on_tcp_recv_cqe(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<TcpClient*>(self.context);
    client->owner->on_tcp_recv(*client, res);
}

void on_tcp_sent_cqe(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<TcpClient*>(self.context);
    client->owner->on_tcp_sent(*client, res);
}

void on_tcp_idle_cqe(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<TcpClient*>(self.context);
    client->owner->on_tcp_idle(*client, res);
}

bool client_busy(const TcpClient& client) {
    return client.recv.in_kernel || client.send.in_kernel || client.idle.completion.in_kernel;
}

}  // namespace

std::string_view to_string(TcpClientState state) {
    switch (state) {
        case TcpClientState::reading:
            return "reading";
        case TcpClientState::draining:
            return "draining";
        case TcpClientState::closing:
            return "closing";
    }
    return "closing";
}

socklen_t to_sockaddr(const state::SocketAddr& address, sockaddr_storage& storage) {
    std::memset(&storage, 0, sizeof storage);
    if (address.ip.v6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(address.port);
        std::memcpy(&in6->sin6_addr, address.ip.bytes.data(), 16);
        return sizeof(sockaddr_in6);
    }
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    std::memcpy(&in4->sin_addr, address.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
}

// --- Server ---------------------------------------------------------------------------------

std::unique_ptr<Server> Server::start(const ServerContext& context, ServerListeners sockets) {
    ZT_ASSERT(context.ring != nullptr && context.snapshots != nullptr &&
              context.sockets != nullptr && context.metrics != nullptr &&
              context.config != nullptr);
    auto impl = std::make_unique<Impl>();
    impl->context = context;
    impl->config = context.config;
    impl->random_state = context.shuffle_seed;
    for (UniqueFd& fd : sockets.udp) {
        auto socket = std::make_unique<UdpSocket>();
        socket->owner = impl.get();
        socket->fd = std::move(fd);
        socket->recv.callback = &on_udp_recv_cqe;
        socket->recv.context = socket.get();
        socket->multishot = context.udp_buffers != nullptr &&
                            context.udp_buffers->size_bytes() >= udp_buffer_bytes(*context.config);
        if (!socket->multishot) {
            socket->buffer.resize(context.config->udp_query_bytes_max);
        }
        impl->udp.push_back(std::move(socket));
    }
    for (UniqueFd& fd : sockets.tcp) {
        auto listener = std::make_unique<TcpListener>();
        listener->owner = impl.get();
        listener->fd = std::move(fd);
        listener->accept.callback = &on_accept_cqe;
        listener->accept.context = listener.get();
        listener->rearm.completion.callback = &on_rearm_cqe;
        listener->rearm.completion.context = listener.get();
        impl->listeners.push_back(std::move(listener));
    }
    for (auto& socket : impl->udp) {
        impl->arm_udp(*socket);
    }
    for (auto& listener : impl->listeners) {
        impl->arm_accept(*listener);
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    ZT_ASSERT(closed());
}

void Server::close() {
    Impl& impl = *impl_;
    if (impl.closing) {
        return;
    }
    impl.closing = true;
    uring::Ring& ring = *impl.context.ring;
    for (auto& socket : impl.udp) {
        ring.cancel(socket->recv);
    }
    for (auto& listener : impl.listeners) {
        ring.cancel(listener->accept);
        ring.cancel_timer(listener->rearm);
    }
    // close_client may free clients: walk a copy of the list.
    std::vector<TcpClient*> clients;
    for (auto& client : impl.clients) {
        clients.push_back(client.get());
    }
    for (TcpClient* client : clients) {
        impl.close_client(*client);
    }
    ring.cancel_timer(impl.tick);
    impl.abandon_flights();
    for (auto& socket : impl.udp) {
        if (!socket->recv.in_kernel && socket->replies_out == 0) {
            socket->fd.reset();
        }
    }
    for (auto& listener : impl.listeners) {
        if (!listener->accept.in_kernel && !listener->rearm.completion.in_kernel) {
            listener->fd.reset();
        }
    }
}

bool Server::closed() const {
    const Impl& impl = *impl_;
    if (!impl.closing) {
        return impl.udp.empty() && impl.listeners.empty();
    }
    for (const auto& socket : impl.udp) {
        if (socket->recv.in_kernel || socket->replies_out > 0) {
            return false;
        }
    }
    for (const auto& listener : impl.listeners) {
        if (listener->accept.in_kernel || listener->rearm.completion.in_kernel) {
            return false;
        }
    }
    if (!impl.clients.empty()) {
        return false;
    }
    for (const auto& flight : impl.flights) {
        if (flight->state != FlightState::free) {
            return false;
        }
    }
    return !impl.ready_notify.in_kernel && !impl.tick.completion.in_kernel;
}

ServerStats Server::stats() const {
    ServerStats stats;
    stats.in_flight = impl_->in_flight;
    stats.tcp_connections = uint32_t(impl_->clients.size());
    for (const auto& socket : impl_->udp) {
        stats.shared_receives += socket->multishot ? 1 : 0;
    }
    stats.queries = impl_->queries;
    stats.forwarded = impl_->forwarded;
    return stats;
}

// --- UDP ------------------------------------------------------------------------------------

size_t udp_buffer_bytes(const ServerConfig& config) {
    return sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_in6) + config.udp_query_bytes_max;
}

void Server::Impl::arm_udp(UdpSocket& socket) {
    if (socket.multishot) {
        socket.message = msghdr{};
        socket.message.msg_namelen = sizeof(sockaddr_in6);
        context.ring->recvmsg_multishot(socket.recv, socket.fd.get(), socket.message,
                                        context.udp_buffers->group());
        return;
    }
    socket.iov = iovec{socket.buffer.data(), socket.buffer.size()};
    socket.message = msghdr{};
    socket.message.msg_name = &socket.peer;
    socket.message.msg_namelen = sizeof socket.peer;
    socket.message.msg_iov = &socket.iov;
    socket.message.msg_iovlen = 1;
    context.ring->recvmsg(socket.recv, socket.fd.get(), socket.message);
}

void Server::Impl::on_udp(UdpSocket& socket, int32_t res) {
    if (closing) {
        if (socket.replies_out == 0) {
            socket.fd.reset();
        }
        return;
    }
    if (res >= 0) {
        // Everything the answer needs is copied out of the buffer before it is re-armed.
        take_datagram(socket, std::span<const uint8_t>(socket.buffer.data(), size_t(res)),
                      (socket.message.msg_flags & MSG_TRUNC) != 0,
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&socket.peer),
                                               socket.message.msg_namelen));
    }
    // Errors on an unconnected UDP socket (an ICMP error for an earlier reply) end nothing.
    arm_udp(socket);
}

void Server::Impl::on_udp_multishot(UdpSocket& socket, int32_t res, uint32_t flags) {
    uring::BufferRing& buffers = *context.udp_buffers;
    if (res >= 0 && (flags & IORING_CQE_F_BUFFER) != 0) {
        uint16_t id = uring::BufferRing::buffer_id(flags);
        if (!closing) {
            auto parts = uring::parse_recvmsg(buffers.buffer(id), res, socket.message);
            if (parts) {
                take_datagram(socket, parts->payload, parts->truncated, parts->name);
            }
        }
        // The datagram was copied where it is needed: the buffer goes back at once.
        buffers.give_back(id);
    }
    if ((flags & IORING_CQE_F_MORE) != 0) {
        return;
    }
    if (closing) {
        if (socket.replies_out == 0) {
            socket.fd.reset();
        }
        return;
    }
    if (res < 0 && res != -ENOBUFS) {
        // The kernel refuses multishot recvmsg (or it failed otherwise): one receive at a time
        // with a buffer of this socket's own from now on.
        socket.multishot = false;
        socket.buffer.resize(config->udp_query_bytes_max);
    }
    arm_udp(socket);
}

void Server::Impl::take_datagram(UdpSocket& socket, std::span<const uint8_t> payload,
                                 bool truncated, std::span<const uint8_t> peer) {
    if (truncated) {
        ++queries;
        context.metrics->count_refusal(context.metrics_shard, Refusal::oversized);
        return;
    }
    Origin origin;
    origin.kind = OriginKind::udp;
    origin.udp = &socket;
    origin.peer_length = socklen_t(std::min(peer.size(), sizeof origin.peer));
    std::memcpy(&origin.peer, peer.data(), origin.peer_length);
    handle_query(payload, origin, Transport::udp);
}

void Server::Impl::send_udp_reply(UdpSocket& socket, const sockaddr_storage& to,
                                  socklen_t to_length, std::span<const uint8_t> bytes) {
    UdpReply* reply = nullptr;
    if (!socket.free_replies.empty()) {
        reply = socket.free_replies.back();
        socket.free_replies.pop_back();
    } else if (socket.replies.size() < config->udp_replies_max) {
        socket.replies.push_back(std::make_unique<UdpReply>());
        reply = socket.replies.back().get();
        reply->socket = &socket;
        reply->send.callback = &on_udp_sent_cqe;
        reply->send.context = reply;
    } else {
        context.metrics->count_refusal(context.metrics_shard, Refusal::reply_queue_full);
        return;
    }
    reply->bytes.assign(bytes.begin(), bytes.end());
    reply->to = to;
    reply->iov = iovec{reply->bytes.data(), reply->bytes.size()};
    reply->message = msghdr{};
    reply->message.msg_name = &reply->to;
    reply->message.msg_namelen = to_length;
    reply->message.msg_iov = &reply->iov;
    reply->message.msg_iovlen = 1;
    ++socket.replies_out;
    context.ring->sendmsg(reply->send, socket.fd.get(), reply->message, MSG_DONTWAIT);
}

void Server::Impl::on_udp_sent(UdpReply& reply) {
    UdpSocket& socket = *reply.socket;
    --socket.replies_out;
    socket.free_replies.push_back(&reply);
    if (closing && socket.replies_out == 0 && !socket.recv.in_kernel) {
        socket.fd.reset();
    }
}

// --- TCP ------------------------------------------------------------------------------------

void Server::Impl::arm_accept(TcpListener& listener) {
    context.ring->accept_multishot(listener.accept, listener.fd.get());
}

void Server::Impl::on_accept(TcpListener& listener, int32_t res, uint32_t flags) {
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (res >= 0) {
        UniqueFd fd(res);
        if (closing) {
            fd.reset();
        } else if (clients.size() >= config->max_tcp_connections) {
            context.metrics->count_refusal(context.metrics_shard, Refusal::tcp_connections);
            fd.reset();
        } else {
            auto client = std::make_unique<TcpClient>();
            client->owner = this;
            client->fd = std::move(fd);
            client->recv.callback = &on_tcp_recv_cqe;
            client->recv.context = client.get();
            client->send.callback = &on_tcp_sent_cqe;
            client->send.context = client.get();
            client->idle.completion.callback = &on_tcp_idle_cqe;
            client->idle.completion.context = client.get();
            client->in.resize(2 + kMinUdpPayload);
            client->last_query_ns = monotonic_ns();
            TcpClient& ref = *client;
            clients.push_back(std::move(client));
            arm_tcp_recv(ref);
            context.ring->arm_timer(ref.idle, config->tcp_request_timeout_ns);
        }
    }
    if (more) {
        return;
    }
    if (closing) {
        if (!listener.rearm.completion.in_kernel) {
            listener.fd.reset();
        }
        return;
    }
    if (res < 0 && res != -ECANCELED) {
        // Back off briefly so fd exhaustion does not become a busy loop.
        context.ring->arm_timer(listener.rearm, 50 * kNanosPerMilli);
        return;
    }
    arm_accept(listener);
}

void Server::Impl::arm_tcp_recv(TcpClient& client) {
    if (client.in_have == client.in.size()) {
        client.in.resize(client.in.size() * 2);
    }
    context.ring->recv(client.recv, client.fd.get(),
                       std::span<uint8_t>(client.in).subspan(client.in_have));
}

void Server::Impl::on_tcp_recv(TcpClient& client, int32_t res) {
    if (client.state == TcpClientState::closing) {
        maybe_free_client(client);
        return;
    }
    if (client.state == TcpClientState::draining) {
        // The receive cancelled by the request timeout (or one that beat the cancel): no more
        // queries are taken; the answers owed still go out.
        if (client.outstanding == 0 && client.out.empty()) {
            close_client(client);
        }
        return;
    }
    if (res < 0) {
        close_client(client);
        return;
    }
    if (res == 0) {
        // The client is done sending (it may have half-closed): answer what it asked, then close.
        client.state = TcpClientState::draining;
        if (client.outstanding == 0 && client.out.empty()) {
            close_client(client);
        }
        return;
    }
    client.in_have += size_t(res);
    size_t consumed = 0;
    while (client.state == TcpClientState::reading && client.in_have - consumed >= 2) {
        size_t length = size_t(client.in[consumed]) << 8 | client.in[consumed + 1];
        if (length == 0) {
            // An empty message is no query; the framing cannot be trusted any more.
            context.metrics->count_refusal(context.metrics_shard, Refusal::malformed);
            close_client(client);
            return;
        }
        if (client.in_have - consumed < 2 + length) {
            if (client.in.size() < 2 + length) {
                // Make room for the whole message (at most 64 KiB, the framing's limit).
                std::memmove(client.in.data(), client.in.data() + consumed,
                             client.in_have - consumed);
                client.in_have -= consumed;
                consumed = 0;
                client.in.resize(2 + length);
            }
            break;
        }
        client.last_query_ns = monotonic_ns();
        Origin origin;
        origin.kind = OriginKind::tcp;
        origin.tcp = &client;
        handle_query(std::span<const uint8_t>(client.in.data() + consumed + 2, length), origin,
                     Transport::tcp);
        consumed += 2 + length;
    }
    if (client.state == TcpClientState::closing) {
        return;
    }
    if (consumed > 0) {
        std::memmove(client.in.data(), client.in.data() + consumed, client.in_have - consumed);
        client.in_have -= consumed;
    }
    if (client.state == TcpClientState::reading) {
        arm_tcp_recv(client);
    }
}

void Server::Impl::on_tcp_idle(TcpClient& client, int32_t res) {
    if (client.state == TcpClientState::closing) {
        maybe_free_client(client);
        return;
    }
    if (res != -ETIME || client.state != TcpClientState::reading) {
        return;
    }
    int64_t quiet_ns = monotonic_ns() - client.last_query_ns;
    if (quiet_ns < config->tcp_request_timeout_ns) {
        context.ring->arm_timer(client.idle, config->tcp_request_timeout_ns - quiet_ns);
        return;
    }
    // No whole query for the request timeout: stop reading; close once owed answers are sent.
    context.metrics->count_refusal(context.metrics_shard, Refusal::tcp_idle_timeout);
    if (client.outstanding == 0 && client.out.empty()) {
        close_client(client);
        return;
    }
    client.state = TcpClientState::draining;
    context.ring->cancel(client.recv);
}

void Server::Impl::queue_tcp_answer(TcpClient& client, std::span<const uint8_t> bytes) {
    if (client.state == TcpClientState::closing) {
        return;
    }
    std::vector<uint8_t> framed(2 + bytes.size());
    framed[0] = uint8_t(bytes.size() >> 8);
    framed[1] = uint8_t(bytes.size());
    std::copy(bytes.begin(), bytes.end(), framed.begin() + 2);
    client.out.push_back(std::move(framed));
    pump_tcp_send(client);
}

void Server::Impl::pump_tcp_send(TcpClient& client) {
    if (client.send.in_kernel || client.out.empty() || client.state == TcpClientState::closing) {
        return;
    }
    auto& front = client.out.front();
    context.ring->send(client.send, client.fd.get(),
                       std::span<const uint8_t>(front).subspan(client.out_offset), MSG_NOSIGNAL);
}

void Server::Impl::on_tcp_sent(TcpClient& client, int32_t res) {
    if (client.state == TcpClientState::closing) {
        maybe_free_client(client);
        return;
    }
    if (res <= 0) {
        close_client(client);
        return;
    }
    client.out_offset += size_t(res);
    if (client.out_offset == client.out.front().size()) {
        client.out.pop_front();
        client.out_offset = 0;
    }
    if (!client.out.empty()) {
        pump_tcp_send(client);
        return;
    }
    if (client.state == TcpClientState::draining && client.outstanding == 0) {
        close_client(client);
    }
}

void Server::Impl::close_client(TcpClient& client) {
    if (client.state == TcpClientState::closing) {
        return;
    }
    client.state = TcpClientState::closing;
    context.ring->cancel(client.recv);
    context.ring->cancel(client.send);
    context.ring->cancel_timer(client.idle);
    // `out` stays until the client is freed: a cancelled send may still be reading its front.
    maybe_free_client(client);
}

void Server::Impl::maybe_free_client(TcpClient& client) {
    if (client_busy(client) || client.outstanding > 0) {
        return;
    }
    auto it = std::find_if(clients.begin(), clients.end(),
                           [&](const auto& entry) { return entry.get() == &client; });
    ZT_ASSERT(it != clients.end());
    std::swap(*it, clients.back());
    clients.pop_back();  // Closes the socket.
}

// --- Dispatch -------------------------------------------------------------------------------

uint64_t Server::Impl::next_random() {
    random_state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = random_state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void Server::Impl::respond(const Origin& origin, std::span<const uint8_t> bytes) {
    switch (origin.kind) {
        case OriginKind::udp:
            send_udp_reply(*origin.udp, origin.peer, origin.peer_length, bytes);
            break;
        case OriginKind::tcp:
            queue_tcp_answer(*origin.tcp, bytes);
            break;
        case OriginKind::resolution:
            ZT_ASSERT(false);
            break;
    }
}

void Server::Impl::handle_query(std::span<const uint8_t> message, const Origin& origin,
                                Transport transport) {
    ++queries;
    if (message.size() < kHeaderBytes) {
        // Not even a header: there is no id to answer to.
        context.metrics->count_refusal(context.metrics_shard, Refusal::malformed);
        return;
    }
    auto query = parse_query(message);
    if (!query) {
        respond(origin, encode_header_error(message, Rcode::formerr));
        return;
    }
    std::shared_ptr<const state::Snapshot> snapshot = context.snapshots->load();
    const state::Workload* client =
            snapshot ? snapshot->workload_by_uid(context.client_uid) : nullptr;
    Decision decision = decide(snapshot.get(), client, *query, config->answer, next_random());
    size_t limit = transport == Transport::udp ? udp_payload_limit(*query) : kMaxMessageBytes;
    switch (decision.verdict) {
        case Verdict::formerr:
        case Verdict::notimp:
            // ztunnel's handler answers these before its lookup, which counts requests.
            respond(origin, encode_decision(*query, decision, limit));
            return;
        case Verdict::servfail:
        case Verdict::answer: {
            DnsSeries* series =
                    context.metrics->series(context.metrics_shard, query->type, transport, client);
            series->requests.increment();
            if (decision.verdict == Verdict::answer) {
                log_query(client, *query, decision.result, decision.endpoints);
            }
            respond(origin, encode_decision(*query, decision, limit));
            return;
        }
        case Verdict::forward: {
            DnsSeries* series =
                    context.metrics->series(context.metrics_shard, query->type, transport, client);
            series->requests.increment();
            forward(origin, *query, message, transport, limit, std::move(snapshot), client, series);
            return;
        }
    }
}

}  // namespace zt::dns
