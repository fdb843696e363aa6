#pragma once

// The forwarder: what the proxy does with a query that is not a mesh name, as a sans-I/O state
// machine. An `Exchange` is one forwarded query; it never touches a socket or a clock. Each
// transition takes what happened (an upstream's answer, a socket failure, a deadline, with the
// time) and returns the `Step` the driver must take next: send the query over UDP or TCP to an
// upstream, keep waiting, or send the reply to the client. The driver (server.cc) owns sockets
// and timers; tests drive the machine with byte vectors and made-up times.
//
// Policy, in the spirit of ztunnel's hickory resolver and glibc's stub resolver:
// - upstreams are tried in order, `attempts_per_upstream` rounds, each attempt with its own
//   timeout and a fresh socket, all within one overall deadline;
// - every attempt starts over UDP; an answer with TC set for a client that asked over TCP is
//   asked again over TCP (a UDP client gets the truncated answer, which fits its payload size,
//   and retries over TCP itself, as it would with the upstream directly);
// - an answer is relayed unchanged but for its message id (the upstream sees a fresh random id,
//   the client gets its own back), cut down with TC only if it exceeds a UDP client's size;
// - a datagram that is not the answer (wrong id, not a response, another question, unparseable)
//   is ignored and the attempt keeps waiting; a bad answer over TCP fails the attempt;
// - SERVFAIL, REFUSED or NOTIMP from one upstream moves on to the next one, if there is
//   another; the last such answer is relayed if none does better;
// - when attempts or the deadline run out: the last upstream error answer, else SERVFAIL.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "src/dns/message.h"
#include "src/state/net.h"
#include "zt/clock.h"

namespace zt::dns {

// Transport is how a DNS message travels.
enum class Transport : uint8_t { udp, tcp };

std::string_view to_string(Transport transport);

// ForwarderOptions are the run's forwarding settings, shared by every exchange.
struct ForwarderOptions {
    // upstreams are the resolvers to ask, in order (ztunnel's own resolv.conf nameservers by
    // default, `--dns-upstream` to override). With none, every forward fails with SERVFAIL.
    std::vector<state::SocketAddr> upstreams;
    // attempt_timeout_ns bounds one attempt (one upstream, one socket).
    int64_t attempt_timeout_ns = 2 * kNanosPerSecond;
    // deadline_ns bounds the whole exchange: SERVFAIL by then at the latest, before a stub
    // resolver's usual 5 s timeout makes it ask again.
    int64_t deadline_ns = 4500 * kNanosPerMilli;
    // attempts_per_upstream is how many rounds over the upstreams an exchange may make.
    uint32_t attempts_per_upstream = 2;
};

// ExchangeState is where one forwarded query stands.
enum class ExchangeState : uint8_t {
    idle,  // Not started (or reset).
    udp,   // An attempt over UDP is out: waiting for its answer, a failure or its deadline.
    tcp,   // An attempt over TCP is out: connecting, sending, or reading the framed answer.
    done,  // `reply()` holds what the client gets; nothing is out any more.
};

std::string_view to_string(ExchangeState state);

// Step is what the driver must do after a transition.
enum class Step : uint8_t {
    send_udp,  // End the current attempt's socket, if any; open UDP to `upstream()`, send
               // `upstream_query()`, and feed every datagram to `on_answer` until
               // `attempt_deadline_ns()`.
    send_tcp,  // The same over TCP: connect to `upstream()`, send `upstream_query_framed()`,
               // feed the one framed answer (without its length) to `on_answer`.
    wait,      // Keep the current attempt as it is (a datagram was not the answer).
    reply,     // End the current attempt; send `reply()` to the client. The exchange is done.
};

std::string_view to_string(Step step);

// Failure is why an attempt or the whole exchange failed, for the `dns` log's `result`.
enum class Failure : uint8_t {
    none,
    no_upstream,     // No upstream is configured.
    timed_out,       // An attempt's or the exchange's deadline passed.
    refused,         // The upstream refused the connection (ICMP port unreachable on UDP).
    unreachable,     // No route to the upstream.
    socket_error,    // The socket could not be made or failed otherwise.
    closed,          // TCP: the upstream closed before a whole answer.
    bad_answer,      // TCP: the answer was not one (wrong id, question, unparseable).
    upstream_error,  // The upstream answered SERVFAIL, REFUSED or NOTIMP.
};

std::string_view to_string(Failure failure);

// failure_of maps a socket errno to a Failure.
Failure failure_of(int err);

// Exchange is one forwarded query. It is reusable: `start` begins a new one.
class Exchange {
public:
    // start begins forwarding `message`, the client's query as received (parsed as `query`),
    // which arrived over `client_transport`; a UDP reply must fit `client_limit` bytes.
    // `upstream_id` is the fresh random message id the upstreams see. `options` must outlive
    // the exchange. Returns `send_udp` (or `reply` with SERVFAIL when there is no upstream).
    Step start(const Query& query, std::span<const uint8_t> message, Transport client_transport,
               size_t client_limit, uint16_t upstream_id, const ForwarderOptions& options,
               int64_t now_ns);

    // on_answer takes one message the current attempt received: a datagram (UDP) or the framed
    // answer's body (TCP).
    Step on_answer(std::span<const uint8_t> message, int64_t now_ns);

    // on_failure takes the failure of the current attempt's socket (a positive errno: connect
    // refused, unreachable, a receive error; or 0 for a TCP connection closed before a whole
    // answer).
    Step on_failure(int err, int64_t now_ns);

    // on_deadline is called once `attempt_deadline_ns()` has passed.
    Step on_deadline(int64_t now_ns);

    ExchangeState state() const { return state_; }

    // upstream is the current attempt's resolver.
    const state::SocketAddr& upstream() const;

    // upstream_query is the client's query with the upstream id; upstream_query_framed is the
    // same with TCP's two-byte length in front. Valid while the exchange is not reset.
    std::span<const uint8_t> upstream_query() const {
        return std::span<const uint8_t>(upstream_message_).subspan(2);
    }

    std::span<const uint8_t> upstream_query_framed() const { return upstream_message_; }

    // attempt_deadline_ns is when `on_deadline` is due for the current attempt.
    int64_t attempt_deadline_ns() const { return attempt_deadline_ns_; }

    // reply is what the client gets once `state()` is `done`.
    std::span<const uint8_t> reply() const { return reply_; }

    // The outcome, for logs and metrics, once done.
    // failed: the reply is not an upstream's usable answer (SERVFAIL made here, or an upstream's
    // own SERVFAIL, REFUSED or NOTIMP relayed).
    bool failed() const { return failed_; }

    Failure failure() const { return failure_; }

    // answer_addresses counts the A/AAAA records of the relayed answer (the log's `endpoints`).
    uint16_t answer_addresses() const { return answer_addresses_; }

    uint32_t attempts() const { return attempts_; }

    Transport client_transport() const { return client_transport_; }

    uint16_t client_id() const { return query_.id; }

    const Query& query() const { return query_; }

    int64_t started_ns() const { return started_ns_; }

private:
    Step next_attempt(int64_t now_ns);
    Step finish_with_answer(std::span<const uint8_t> message, uint16_t addresses);
    Step finish_failed(Failure failure);
    Step reject(Failure failure, int64_t now_ns);

    const ForwarderOptions* options_ = nullptr;
    ExchangeState state_ = ExchangeState::idle;
    Query query_;
    Transport client_transport_ = Transport::udp;
    size_t client_limit_ = kMinUdpPayload;
    uint16_t upstream_id_ = 0;
    std::vector<uint8_t> upstream_message_;  // Two length bytes, then the query.
    std::vector<uint8_t> reply_;
    std::vector<uint8_t> fallback_;  // The last upstream error answer, relayed if nothing better.
    int64_t started_ns_ = 0;
    int64_t attempt_deadline_ns_ = 0;
    uint32_t attempts_ = 0;
    size_t upstream_index_ = 0;
    bool tcp_needed_ = false;
    bool failed_ = false;
    Failure failure_ = Failure::none;
    uint16_t answer_addresses_ = 0;
};

}  // namespace zt::dns
