// Tests for the forwarding state machine, driven without sockets or clocks: the id swap and the
// answer relayed byte for byte, stray datagrams ignored, TC handled per client transport, a
// too-large answer cut for a UDP client, timeouts and failures moving across upstreams within
// the deadline, upstream error answers, and SERVFAIL when everything fails.

#include "src/dns/forwarder.h"

#include <errno.h>

#include <vector>

#include <doctest/doctest.h>

using zt::dns::Exchange;
using zt::dns::ExchangeState;
using zt::dns::Failure;
using zt::dns::Rcode;
using zt::dns::Step;
using zt::dns::Transport;

namespace {

constexpr uint16_t kClientId = 0x1111;
constexpr uint16_t kUpstreamId = 0x7777;
constexpr int64_t kSecond = zt::kNanosPerSecond;

struct Fixture {
    zt::dns::ForwarderOptions options;
    std::vector<uint8_t> message;
    zt::dns::Query query;

    explicit Fixture(size_t upstreams = 1, std::string_view name = "www.example") {
        for (size_t i = 0; i < upstreams; ++i) {
            options.upstreams.push_back(
                    *zt::state::SocketAddr::parse("198.18.0." + std::to_string(53 + i) + ":53"));
        }
        message = zt::dns::encode_query(*zt::dns::Name::parse(name), zt::dns::kTypeA, kClientId);
        query = *zt::dns::parse_query(message);
    }

    // answer is what an upstream sends back: `count` A records for the question, with `id`.
    std::vector<uint8_t> answer(size_t count = 1, uint16_t id = kUpstreamId,
                                bool truncated = false) const {
        zt::dns::Query upstream = query;
        upstream.id = id;
        std::vector<zt::dns::Record> records;
        for (size_t i = 0; i < count; ++i) {
            zt::dns::Record record;
            record.owner = query.name;
            record.address = zt::state::IpAddr::v4(198, 19, uint8_t(i / 250), uint8_t(i % 250));
            records.push_back(record);
        }
        auto out = zt::dns::encode_answer(upstream, false, records, zt::dns::kMaxMessageBytes);
        if (truncated) {
            out[2] |= 0x02;
        }
        return out;
    }

    std::vector<uint8_t> error(Rcode rcode, uint16_t id = kUpstreamId) const {
        zt::dns::Query upstream = query;
        upstream.id = id;
        return zt::dns::encode_error(upstream, rcode);
    }
};

// same_but_id says whether `reply` is `upstream_answer` with the client's id.
bool same_but_id(std::span<const uint8_t> reply, std::vector<uint8_t> upstream_answer) {
    zt::dns::write_id(upstream_answer, kClientId);
    return std::vector<uint8_t>(reply.begin(), reply.end()) == upstream_answer;
}

}  // namespace

TEST_CASE("dns forwarder: the query goes upstream with a fresh id, the answer comes back as is") {
    Fixture f;
    Exchange exchange;
    CHECK(exchange.state() == ExchangeState::idle);
    Step step =
            exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 100);
    CHECK(step == Step::send_udp);
    CHECK(exchange.state() == ExchangeState::udp);
    CHECK(exchange.upstream().to_string() == "198.18.0.53:53");
    CHECK(exchange.attempt_deadline_ns() == 100 + f.options.attempt_timeout_ns);
    // Upstream sees the query with its own id; TCP framing is the length in front.
    auto sent = exchange.upstream_query();
    CHECK(zt::dns::read_header(sent)->id == kUpstreamId);
    CHECK(std::vector<uint8_t>(sent.begin() + 2, sent.end()) ==
          std::vector<uint8_t>(f.message.begin() + 2, f.message.end()));
    auto framed = exchange.upstream_query_framed();
    CHECK(size_t(framed[0] << 8 | framed[1]) == f.message.size());

    auto answer = f.answer(3);
    CHECK(exchange.on_answer(answer, 200) == Step::reply);
    CHECK(exchange.state() == ExchangeState::done);
    CHECK(same_but_id(exchange.reply(), answer));
    CHECK_FALSE(exchange.failed());
    CHECK(exchange.failure() == Failure::none);
    CHECK(exchange.answer_addresses() == 3);
    CHECK(exchange.attempts() == 1);
}

TEST_CASE("dns forwarder: datagrams that are not the answer are ignored") {
    Fixture f;
    Exchange exchange;
    exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    CHECK(exchange.on_answer(f.answer(1, kUpstreamId + 1), 1) == Step::wait);  // Wrong id.
    CHECK(exchange.on_answer(f.message, 1) == Step::wait);                     // Not a response.
    Fixture other(1, "www.elsewhere");
    CHECK(exchange.on_answer(other.answer(), 1) == Step::wait);  // Another question.
    std::vector<uint8_t> garbage = f.answer();
    garbage.resize(20);
    CHECK(exchange.on_answer(garbage, 1) == Step::wait);
    CHECK(exchange.on_answer(std::vector<uint8_t>(3, 0xff), 1) == Step::wait);
    CHECK(exchange.state() == ExchangeState::udp);
    auto answer = f.answer();
    CHECK(exchange.on_answer(answer, 2) == Step::reply);
    CHECK(same_but_id(exchange.reply(), answer));
}

TEST_CASE("dns forwarder: a truncated answer is asked again over TCP for a TCP client only") {
    Fixture f;
    Exchange tcp_client;
    tcp_client.start(f.query, f.message, Transport::tcp, zt::dns::kMaxMessageBytes, kUpstreamId,
                     f.options, 0);
    CHECK(tcp_client.on_answer(f.answer(0, kUpstreamId, true), kSecond) == Step::send_tcp);
    CHECK(tcp_client.state() == ExchangeState::tcp);
    CHECK(tcp_client.upstream().to_string() == "198.18.0.53:53");
    CHECK(tcp_client.attempt_deadline_ns() == kSecond + f.options.attempt_timeout_ns);
    auto big = f.answer(100);
    CHECK(tcp_client.on_answer(big, kSecond + 1) == Step::reply);
    CHECK(same_but_id(tcp_client.reply(), big));
    CHECK(tcp_client.answer_addresses() == 100);
    CHECK(tcp_client.attempts() == 1);

    // A UDP client gets the truncated answer (it fits its size) and retries over TCP itself.
    Exchange udp_client;
    udp_client.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    auto truncated = f.answer(0, kUpstreamId, true);
    CHECK(udp_client.on_answer(truncated, 1) == Step::reply);
    CHECK(same_but_id(udp_client.reply(), truncated));
    CHECK(zt::dns::read_header(udp_client.reply())->truncated);
}

TEST_CASE("dns forwarder: an answer larger than the UDP client's size is cut with TC") {
    Fixture f;
    Exchange exchange;
    exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    CHECK(exchange.on_answer(f.answer(100), 1) == Step::reply);
    CHECK(exchange.reply().size() <= 512);
    auto header = zt::dns::read_header(exchange.reply());
    CHECK(header->truncated);
    CHECK(header->id == kClientId);
    CHECK(header->answer_count > 0);
}

TEST_CASE("dns forwarder: a timeout moves to the next upstream; the deadline ends it") {
    Fixture f(2);
    Exchange exchange;
    exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    CHECK(exchange.upstream().to_string() == "198.18.0.53:53");
    int64_t now = exchange.attempt_deadline_ns();
    CHECK(exchange.on_deadline(now) == Step::send_udp);
    CHECK(exchange.upstream().to_string() == "198.18.0.54:53");
    auto answer = f.answer();
    CHECK(exchange.on_answer(answer, now + 1) == Step::reply);
    CHECK(same_but_id(exchange.reply(), answer));
    CHECK(exchange.attempts() == 2);

    // Nobody answers: attempts until the overall deadline, then SERVFAIL, never later.
    Exchange silent;
    Step step = silent.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    int attempts = 0;
    while (step != Step::reply) {
        CHECK(step == Step::send_udp);
        ++attempts;
        CHECK(silent.attempt_deadline_ns() <= f.options.deadline_ns);
        step = silent.on_deadline(silent.attempt_deadline_ns());
    }
    CHECK(attempts == 3);  // 2 s, 2 s, then the 0.5 s left of 4.5 s.
    CHECK(silent.failed());
    CHECK(silent.failure() == Failure::timed_out);
    auto header = zt::dns::read_header(silent.reply());
    CHECK(header->rcode == uint8_t(Rcode::servfail));
    CHECK(header->id == kClientId);
    CHECK(header->question_count == 1);
}

TEST_CASE("dns forwarder: refused connections use up the attempts at once, then SERVFAIL") {
    Fixture f(2);
    Exchange exchange;
    Step step = exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    int attempts = 0;
    while (step != Step::reply) {
        ++attempts;
        step = exchange.on_failure(ECONNREFUSED, 10);
    }
    CHECK(attempts == 4);  // Two rounds over two upstreams.
    CHECK(exchange.failed());
    CHECK(exchange.failure() == Failure::refused);
    CHECK(zt::dns::read_header(exchange.reply())->rcode == uint8_t(Rcode::servfail));
}

TEST_CASE("dns forwarder: an upstream error answer tries the next upstream, else is relayed") {
    Fixture two(2);
    Exchange exchange;
    exchange.start(two.query, two.message, Transport::udp, 512, kUpstreamId, two.options, 0);
    CHECK(exchange.on_answer(two.error(Rcode::servfail), 1) == Step::send_udp);
    CHECK(exchange.upstream().to_string() == "198.18.0.54:53");
    auto nxdomain = two.error(Rcode::nxdomain);
    CHECK(exchange.on_answer(nxdomain, 2) == Step::reply);
    CHECK(same_but_id(exchange.reply(), nxdomain));
    CHECK_FALSE(exchange.failed());  // NXDOMAIN is an answer, not a failure.

    // Every upstream fails: the last error answer is relayed.
    Exchange both;
    both.start(two.query, two.message, Transport::udp, 512, kUpstreamId, two.options, 0);
    Step step = both.on_answer(two.error(Rcode::servfail), 1);
    auto refused = two.error(Rcode::refused);
    for (int i = 0; step != Step::reply && i < 10; ++i) {
        step = both.on_answer(refused, 2);
    }
    CHECK(step == Step::reply);
    CHECK(same_but_id(both.reply(), refused));
    CHECK(both.failed());
    CHECK(both.failure() == Failure::upstream_error);

    // With one upstream its error answer is relayed at once.
    Fixture one;
    Exchange single;
    single.start(one.query, one.message, Transport::udp, 512, kUpstreamId, one.options, 0);
    auto servfail = one.error(Rcode::servfail);
    CHECK(single.on_answer(servfail, 1) == Step::reply);
    CHECK(same_but_id(single.reply(), servfail));
    CHECK(single.failed());
    CHECK(single.attempts() == 1);
}

TEST_CASE("dns forwarder: an error answer without the question is accepted") {
    Fixture f;
    Exchange exchange;
    exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0);
    auto formerr = zt::dns::encode_header_error(f.message, Rcode::formerr);
    zt::dns::write_id(formerr, kUpstreamId);
    CHECK(exchange.on_answer(formerr, 1) == Step::reply);
    CHECK(zt::dns::read_header(exchange.reply())->rcode == uint8_t(Rcode::formerr));
}

TEST_CASE("dns forwarder: over TCP a bad answer or a close fails the attempt") {
    Fixture f(2);
    Exchange exchange;
    exchange.start(f.query, f.message, Transport::tcp, zt::dns::kMaxMessageBytes, kUpstreamId,
                   f.options, 0);
    CHECK(exchange.on_answer(f.answer(0, kUpstreamId, true), 1) == Step::send_tcp);
    // Over TCP a wrong id is not a stray datagram: the attempt fails and the next one, on the
    // next upstream, is over TCP straight away.
    CHECK(exchange.on_answer(f.answer(1, 0x0bad), 2) == Step::send_tcp);
    CHECK(exchange.upstream().to_string() == "198.18.0.54:53");
    CHECK(exchange.on_failure(0, 3) == Step::send_tcp);
    CHECK(exchange.failure() == Failure::closed);
    auto answer = f.answer(2);
    CHECK(exchange.on_answer(answer, 4) == Step::reply);
    CHECK(same_but_id(exchange.reply(), answer));
}

TEST_CASE("dns forwarder: without upstreams every forward is SERVFAIL at once") {
    Fixture f(0);
    Exchange exchange;
    CHECK(exchange.start(f.query, f.message, Transport::udp, 512, kUpstreamId, f.options, 0) ==
          Step::reply);
    CHECK(exchange.failed());
    CHECK(exchange.failure() == Failure::no_upstream);
    CHECK(zt::dns::read_header(exchange.reply())->rcode == uint8_t(Rcode::servfail));
    CHECK(zt::dns::to_string(Failure::timed_out) == "request timed out");
    CHECK(zt::dns::failure_of(EHOSTUNREACH) == Failure::unreachable);
}
