// upstream.cc executes forwards on the ring: each `Flight` runs one `Exchange`, opening the
// upstream socket its step asks for (from the pod's `UpstreamSockets`), connecting, sending the
// query, reading the answer (a datagram, or a length-prefixed TCP message) under the attempt's
// timer, and feeding what happened back to the exchange. A leg is torn down by cancelling what
// is in flight and waiting for those completions before its socket closes. On-demand
// resolutions of hostname-only workloads are flights whose answer goes back to a `Resolution`.

#include <errno.h>

#include <algorithm>

#include <openssl/rand.h>

#include "src/dns/server.h"
#include "src/dns/server_impl.h"

namespace zt::dns {

namespace {

Flight& flight_of(uring::Completion& completion) {
    return *static_cast<Flight*>(completion.context);
}

void on_connect_cqe(uring::Completion& self, int32_t res, uint32_t) {
    Flight& flight = flight_of(self);
    flight.owner->on_leg_connect(flight, res);
}

void on_send_cqe(uring::Completion& self, int32_t res, uint32_t) {
    Flight& flight = flight_of(self);
    flight.owner->on_leg_send(flight, res);
}

void on_recv_cqe(uring::Completion& self, int32_t res, uint32_t) {
    Flight& flight = flight_of(self);
    flight.owner->on_leg_recv(flight, res);
}

void on_tick_cqe(uring::Completion& self, int32_t res, uint32_t) {
    static_cast<Server::Impl*>(self.context)->on_tick(res);
}

void on_ready_cqe(uring::Completion& self, int32_t, uint32_t) {
    static_cast<Server::Impl*>(self.context)->run_ready_resolutions();
}

// random_id is a message id nobody off the path can guess (RFC 5452).
uint16_t random_id() {
    uint8_t bytes[2];
    RAND_bytes(bytes, sizeof bytes);
    return uint16_t(bytes[0] << 8 | bytes[1]);
}

}  // namespace

std::string_view to_string(LegState state) {
    switch (state) {
        case LegState::idle:
            return "idle";
        case LegState::connecting:
            return "connecting";
        case LegState::exchanging:
            return "exchanging";
        case LegState::closing:
            return "closing";
    }
    return "idle";
}

std::string_view to_string(FlightState state) {
    switch (state) {
        case FlightState::free:
            return "free";
        case FlightState::running:
            return "running";
        case FlightState::finishing:
            return "finishing";
    }
    return "free";
}

Flight* Server::Impl::acquire_flight(bool bounded) {
    if (bounded && in_flight >= config->max_in_flight) {
        return nullptr;
    }
    Flight* flight = nullptr;
    if (!free_flights.empty()) {
        flight = free_flights.back();
        free_flights.pop_back();
    } else {
        flights.push_back(std::make_unique<Flight>());
        flight = flights.back().get();
        flight->owner = this;
        flight->connect.callback = &on_connect_cqe;
        flight->connect.context = flight;
        flight->send.callback = &on_send_cqe;
        flight->send.context = flight;
        flight->recv.callback = &on_recv_cqe;
        flight->recv.context = flight;
    }
    ZT_ASSERT(flight->state == FlightState::free && flight->leg == LegState::idle);
    flight->state = FlightState::running;
    flight->pending.reset();
    flight->have = 0;
    flight->sent = 0;
    ++in_flight;
    arm_tick();
    return flight;
}

void Server::Impl::arm_tick() {
    if (tick.completion.in_kernel || closing) {
        return;
    }
    if (tick.completion.callback == nullptr) {
        tick.completion.callback = &on_tick_cqe;
        tick.completion.context = this;
    }
    context.ring->arm_timer(tick, kTickNs);
}

void Server::Impl::on_tick(int32_t res) {
    if (res != -ETIME || closing) {
        return;
    }
    const int64_t now = monotonic_ns();
    bool running = false;
    // Index loop: a deadline may start a resolution's next stage, which may add a flight.
    for (size_t i = 0; i < flights.size(); ++i) {
        Flight& flight = *flights[i];
        if (flight.state != FlightState::running) {
            continue;
        }
        running = true;
        bool attempt_out = flight.leg == LegState::connecting || flight.leg == LegState::exchanging;
        if (attempt_out && now >= flight.exchange.attempt_deadline_ns()) {
            run(flight, flight.exchange.on_deadline(now));
        }
    }
    if (running) {
        arm_tick();
    }
}

void Server::Impl::release(Flight& flight) {
    ZT_ASSERT(!leg_busy(flight));
    flight.state = FlightState::free;
    flight.leg = LegState::idle;
    flight.fd.reset();
    flight.origin = Origin{};
    flight.snapshot.reset();
    flight.client = nullptr;
    flight.series = nullptr;
    --in_flight;
    free_flights.push_back(&flight);
}

void Server::Impl::forward(const Origin& origin, const Query& query,
                           std::span<const uint8_t> message, Transport transport, size_t limit,
                           std::shared_ptr<const state::Snapshot> snapshot,
                           const state::Workload* client, DnsSeries* series) {
    Flight* flight = acquire_flight(true);
    if (flight == nullptr) {
        context.metrics->count_refusal(context.metrics_shard, Refusal::in_flight_limit);
        log_query(client, query, "forwarding failed (too many queries in flight)", 0);
        respond(origin, encode_error(query, Rcode::servfail));
        return;
    }
    series->upstream_requests.increment();
    ++forwarded;
    flight->origin = origin;
    flight->snapshot = std::move(snapshot);
    flight->client = client;
    flight->series = series;
    if (origin.kind == OriginKind::tcp) {
        ++origin.tcp->outstanding;
    }
    Step step = flight->exchange.start(query, message, transport, limit, random_id(),
                                       config->forwarder, monotonic_ns());
    run(*flight, step);
}

void Server::Impl::run(Flight& flight, Step step) {
    switch (step) {
        case Step::send_udp:
        case Step::send_tcp:
            if (leg_busy(flight)) {
                // The old attempt's operations come back first; then the new one opens.
                flight.pending = step;
                close_leg(flight);
                return;
            }
            open_leg(flight, step);
            return;
        case Step::wait:
            flight.have = 0;
            arm_leg_recv(flight);
            return;
        case Step::reply:
            deliver(flight);
            flight.state = FlightState::finishing;
            flight.pending.reset();
            if (leg_busy(flight)) {
                close_leg(flight);
            } else {
                release(flight);
            }
            return;
    }
}

void Server::Impl::open_leg(Flight& flight, Step step) {
    flight.fd.reset();
    flight.leg = LegState::idle;
    flight.leg_transport = step == Step::send_udp ? Transport::udp : Transport::tcp;
    const state::SocketAddr& upstream = flight.exchange.upstream();
    auto socket = context.sockets->open(flight.leg_transport, upstream);
    if (!socket) {
        int err = socket.error().sys_errno != 0 ? socket.error().sys_errno : EIO;
        run(flight, flight.exchange.on_failure(err, monotonic_ns()));
        return;
    }
    flight.fd = std::move(*socket);
    flight.upstream_length = to_sockaddr(upstream, flight.upstream);
    flight.have = 0;
    flight.sent = 0;
    flight.leg = LegState::connecting;
    if (flight.leg_transport == Transport::udp) {
        // Connecting a UDP socket only fixes its peer (no packet, never blocks); it makes the
        // kernel drop datagrams from anyone else and report ICMP errors as ECONNREFUSED.
        if (::connect(flight.fd.get(), reinterpret_cast<const sockaddr*>(&flight.upstream),
                      flight.upstream_length) != 0) {
            run(flight, flight.exchange.on_failure(errno, monotonic_ns()));
            return;
        }
        on_leg_connect(flight, 0);
        return;
    }
    context.ring->connect(flight.connect, flight.fd.get(),
                          reinterpret_cast<const sockaddr*>(&flight.upstream),
                          flight.upstream_length);
}

bool Server::Impl::leg_busy(const Flight& flight) const {
    return flight.connect.in_kernel || flight.send.in_kernel || flight.recv.in_kernel;
}

void Server::Impl::close_leg(Flight& flight) {
    flight.leg = LegState::closing;
    context.ring->cancel(flight.connect);
    context.ring->cancel(flight.send);
    context.ring->cancel(flight.recv);
    maybe_leg_closed(flight);
}

void Server::Impl::maybe_leg_closed(Flight& flight) {
    if (leg_busy(flight)) {
        return;
    }
    flight.fd.reset();
    flight.leg = LegState::idle;
    if (flight.state == FlightState::finishing) {
        release(flight);
        return;
    }
    if (flight.pending) {
        Step step = *flight.pending;
        flight.pending.reset();
        open_leg(flight, step);
    }
}

void Server::Impl::on_leg_connect(Flight& flight, int32_t res) {
    if (flight.leg == LegState::closing) {
        maybe_leg_closed(flight);
        return;
    }
    if (res < 0) {
        run(flight, flight.exchange.on_failure(-res, monotonic_ns()));
        return;
    }
    flight.leg = LegState::exchanging;
    if (flight.leg_transport == Transport::udp) {
        context.ring->send(flight.send, flight.fd.get(), flight.exchange.upstream_query());
        // The upstream answers a UDP query within the payload size the query offers.
        flight.buffer.resize(udp_payload_limit(flight.exchange.query()));
    } else {
        context.ring->send(flight.send, flight.fd.get(), flight.exchange.upstream_query_framed(),
                           MSG_NOSIGNAL);
        flight.buffer.resize(2 + kMinUdpPayload);
    }
    flight.have = 0;
    arm_leg_recv(flight);
}

void Server::Impl::on_leg_send(Flight& flight, int32_t res) {
    if (flight.leg == LegState::closing) {
        maybe_leg_closed(flight);
        return;
    }
    if (res < 0) {
        run(flight, flight.exchange.on_failure(-res, monotonic_ns()));
        return;
    }
    if (flight.leg_transport == Transport::tcp) {
        flight.sent += size_t(res);
        auto framed = flight.exchange.upstream_query_framed();
        if (flight.sent < framed.size()) {
            context.ring->send(flight.send, flight.fd.get(), framed.subspan(flight.sent),
                               MSG_NOSIGNAL);
        }
    }
}

void Server::Impl::arm_leg_recv(Flight& flight) {
    if (flight.leg_transport == Transport::udp) {
        // MSG_TRUNC: the result is the datagram's whole length, so an oversized one shows.
        context.ring->recv(flight.recv, flight.fd.get(), flight.buffer, MSG_TRUNC);
        return;
    }
    context.ring->recv(flight.recv, flight.fd.get(),
                       std::span<uint8_t>(flight.buffer).subspan(flight.have));
}

void Server::Impl::on_leg_recv(Flight& flight, int32_t res) {
    if (flight.leg == LegState::closing) {
        maybe_leg_closed(flight);
        return;
    }
    const int64_t now = monotonic_ns();
    if (res < 0) {
        run(flight, flight.exchange.on_failure(-res, now));
        return;
    }
    if (flight.leg_transport == Transport::udp) {
        if (size_t(res) > flight.buffer.size()) {
            run(flight, flight.exchange.on_failure(EMSGSIZE, now));
            return;
        }
        run(flight, flight.exchange.on_answer(
                            std::span<const uint8_t>(flight.buffer.data(), size_t(res)), now));
        return;
    }
    if (res == 0) {
        run(flight, flight.exchange.on_failure(0, now));
        return;
    }
    flight.have += size_t(res);
    if (flight.have >= 2) {
        size_t length = size_t(flight.buffer[0]) << 8 | flight.buffer[1];
        if (length == 0) {
            run(flight, flight.exchange.on_failure(EPROTO, now));
            return;
        }
        if (flight.buffer.size() < 2 + length) {
            flight.buffer.resize(2 + length);
        }
        if (flight.have >= 2 + length) {
            run(flight, flight.exchange.on_answer(
                                std::span<const uint8_t>(flight.buffer.data() + 2, length), now));
            return;
        }
    }
    arm_leg_recv(flight);
}

void Server::Impl::deliver(Flight& flight) {
    const Exchange& exchange = flight.exchange;
    switch (flight.origin.kind) {
        case OriginKind::udp:
            send_udp_reply(*flight.origin.udp, flight.origin.peer, flight.origin.peer_length,
                           exchange.reply());
            break;
        case OriginKind::tcp: {
            TcpClient& client = *flight.origin.tcp;
            --client.outstanding;
            if (client.state == TcpClientState::closing) {
                maybe_free_client(client);
            } else {
                queue_tcp_answer(client, exchange.reply());
            }
            break;
        }
        case OriginKind::resolution:
            finish_resolution(flight);
            return;
    }
    flight.series->observe_upstream(monotonic_ns() - exchange.started_ns());
    if (exchange.failed()) {
        flight.series->upstream_failures.increment();
        std::string result = "forwarding failed (";
        result += to_string(exchange.failure());
        result += ")";
        log_query(flight.client, exchange.query(), result, 0);
    } else {
        log_query(flight.client, exchange.query(), "forwarded", exchange.answer_addresses());
    }
}

bool Server::Impl::start_resolution_stage(Resolution& resolution, uint16_t type, bool bounded) {
    auto name = Name::parse(resolution.hostname);
    if (!name) {
        return false;
    }
    std::vector<uint8_t> message = encode_query(*name, type, random_id());
    if (message.empty()) {
        return false;
    }
    auto query = parse_query(message);
    ZT_ASSERT(query.has_value());
    Flight* flight = acquire_flight(bounded);
    if (flight == nullptr) {
        context.metrics->count_refusal(context.metrics_shard, Refusal::in_flight_limit);
        return false;
    }
    resolution.stage_type = type;
    flight->origin.kind = OriginKind::resolution;
    flight->origin.resolution = &resolution;
    // The proxy's own question: it takes any answer size, so a truncated one goes to TCP.
    Step step = flight->exchange.start(*query, message, Transport::tcp, kMaxMessageBytes,
                                       random_id(), config->forwarder, monotonic_ns());
    run(*flight, step);
    return true;
}

void Server::Impl::finish_resolution(Flight& flight) {
    Resolution* resolution = flight.origin.resolution;
    if (resolution == nullptr) {
        return;  // Cancelled while the query was out.
    }
    const Exchange& exchange = flight.exchange;
    auto header = read_header(exchange.reply());
    resolution->rcode = header ? Rcode(header->rcode) : Rcode::servfail;
    if (exchange.failed()) {
        resolution->failure =
                exchange.failure() == Failure::none ? Failure::upstream_error : exchange.failure();
        complete_resolution(*resolution);
        return;
    }
    auto found = answer_addresses(exchange.reply(), resolution->stage_type);
    if (found && !found->ips.empty()) {
        cache_resolution(*resolution, found->ips, found->min_ttl);
        choose_address(*resolution, found->ips);
        complete_resolution(*resolution);
        return;
    }
    if (resolution->stage_type == kTypeA && resolution->rcode == Rcode::noerror) {
        // hickory's default lookup strategy (ztunnel's): AAAA only when there is no A record.
        // The second stage replaces the first, so it does not count against the bound again.
        flight.origin.resolution = nullptr;
        if (start_resolution_stage(*resolution, kTypeAaaa, false)) {
            return;
        }
    }
    complete_resolution(*resolution);
}

void Server::Impl::choose_address(Resolution& resolution, std::span<const state::IpAddr> ips) {
    // ztunnel's choice: at random among the addresses of the original destination's family,
    // else among the others.
    std::vector<state::IpAddr> matching;
    std::vector<state::IpAddr> others;
    for (const state::IpAddr& ip : ips) {
        (ip.v6 == resolution.prefer_v6 ? matching : others).push_back(ip);
    }
    const auto& pool = matching.empty() ? others : matching;
    resolution.address = pool[next_random() % pool.size()];
}

void Server::Impl::cache_resolution(const Resolution& resolution,
                                    std::span<const state::IpAddr> ips, uint32_t ttl_seconds) {
    if (ttl_seconds == 0) {
        return;  // TTL 0: the owner of the name asked not to be cached.
    }
    const int64_t now = monotonic_ns();
    std::string hostname = Name::parse(resolution.hostname)->to_lower();
    CachedResolution* slot = nullptr;
    for (CachedResolution& entry : resolutions) {
        if (entry.hostname == hostname || entry.expires_ns <= now) {
            slot = &entry;
            break;
        }
    }
    if (slot == nullptr && resolutions.size() < kResolutionCacheEntries) {
        slot = &resolutions.emplace_back();
    }
    if (slot == nullptr) {
        slot = &*std::min_element(
                resolutions.begin(), resolutions.end(),
                [](const auto& a, const auto& b) { return a.expires_ns < b.expires_ns; });
    }
    slot->hostname = std::move(hostname);
    slot->ips.assign(ips.begin(), ips.end());
    slot->expires_ns = now + std::min(int64_t(ttl_seconds) * kNanosPerSecond, kResolutionTtlMaxNs);
}

const CachedResolution* Server::Impl::cached_resolution(std::string_view hostname) {
    auto name = Name::parse(hostname);
    if (!name) {
        return nullptr;
    }
    const std::string key = name->to_lower();
    const int64_t now = monotonic_ns();
    for (const CachedResolution& entry : resolutions) {
        if (entry.hostname == key && entry.expires_ns > now) {
            return &entry;
        }
    }
    return nullptr;
}

void Server::Impl::complete_resolution(Resolution& resolution) {
    ready.push_back(&resolution);
    if (!ready_notify.in_kernel) {
        if (ready_notify.callback == nullptr) {
            ready_notify.callback = &on_ready_cqe;
            ready_notify.context = this;
        }
        context.ring->nop(ready_notify);
    }
}

void Server::Impl::run_ready_resolutions() {
    std::vector<Resolution*> due;
    due.swap(ready);
    for (Resolution* resolution : due) {
        // A callback may cancel a later resolution of this batch: skip those.
        if (!resolution->pending) {
            continue;
        }
        resolution->pending = false;
        resolution->callback(*resolution);
    }
}

void Server::Impl::abandon_flights() {
    for (auto& entry : flights) {
        Flight& flight = *entry;
        if (flight.state != FlightState::running) {
            continue;
        }
        flight.state = FlightState::finishing;
        flight.pending.reset();
        if (flight.origin.kind == OriginKind::tcp) {
            TcpClient& client = *flight.origin.tcp;
            --client.outstanding;
            maybe_free_client(client);
        } else if (flight.origin.kind == OriginKind::resolution &&
                   flight.origin.resolution != nullptr) {
            flight.origin.resolution->failure = Failure::socket_error;
            complete_resolution(*flight.origin.resolution);
        }
        if (leg_busy(flight)) {
            close_leg(flight);
        } else {
            release(flight);
        }
    }
}

// --- Server: resolutions --------------------------------------------------------------------

void Server::resolve(Resolution& resolution, const state::Workload& source,
                     std::string_view source_principal) {
    Impl& impl = *impl_;
    ZT_ASSERT(!resolution.pending && resolution.callback != nullptr);
    impl.context.metrics->count_on_demand(impl.context.metrics_shard, source, source_principal,
                                          resolution.hostname);
    resolution.pending = true;
    resolution.address.reset();
    resolution.failure = Failure::none;
    resolution.rcode = Rcode::noerror;
    if (const CachedResolution* cached = impl.cached_resolution(resolution.hostname)) {
        impl.choose_address(resolution, cached->ips);
        impl.complete_resolution(resolution);
        return;
    }
    if (impl.closing || !impl.start_resolution_stage(resolution, kTypeA, true)) {
        resolution.failure = Failure::socket_error;
        impl.complete_resolution(resolution);
    }
}

void Server::cancel(Resolution& resolution) {
    Impl& impl = *impl_;
    if (!resolution.pending) {
        return;
    }
    resolution.pending = false;
    impl.ready.erase(std::remove(impl.ready.begin(), impl.ready.end(), &resolution),
                     impl.ready.end());
    for (auto& flight : impl.flights) {
        if (flight->origin.kind == OriginKind::resolution &&
            flight->origin.resolution == &resolution) {
            flight->origin.resolution = nullptr;  // The flight runs on; its answer goes nowhere.
        }
    }
}

}  // namespace zt::dns
