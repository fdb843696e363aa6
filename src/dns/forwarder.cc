// forwarder.cc is the forwarding state machine: attempts over UDP and TCP across the upstreams,
// answer checks, retry and deadline rules, the reply the client gets. It must not perform I/O or
// read clocks: every transition is given the time and returns the next step, so its tests need
// no kernel.

#include "src/dns/forwarder.h"

#include <errno.h>

#include <algorithm>

namespace zt::dns {

std::string_view to_string(Transport transport) {
    return transport == Transport::udp ? "udp" : "tcp";
}

std::string_view to_string(ExchangeState state) {
    switch (state) {
        case ExchangeState::idle:
            return "idle";
        case ExchangeState::udp:
            return "udp";
        case ExchangeState::tcp:
            return "tcp";
        case ExchangeState::done:
            return "done";
    }
    return "idle";
}

std::string_view to_string(Step step) {
    switch (step) {
        case Step::send_udp:
            return "send_udp";
        case Step::send_tcp:
            return "send_tcp";
        case Step::wait:
            return "wait";
        case Step::reply:
            return "reply";
    }
    return "wait";
}

std::string_view to_string(Failure failure) {
    switch (failure) {
        case Failure::none:
            return "none";
        case Failure::no_upstream:
            return "no upstream resolver configured";
        case Failure::timed_out:
            return "request timed out";
        case Failure::refused:
            return "connection refused";
        case Failure::unreachable:
            return "upstream unreachable";
        case Failure::socket_error:
            return "socket error";
        case Failure::closed:
            return "connection closed before an answer";
        case Failure::bad_answer:
            return "malformed answer";
        case Failure::upstream_error:
            return "upstream error";
    }
    return "none";
}

Failure failure_of(int err) {
    switch (err) {
        case 0:
            return Failure::closed;
        case ECONNREFUSED:
            return Failure::refused;
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EADDRNOTAVAIL:
            return Failure::unreachable;
        case ETIMEDOUT:
            return Failure::timed_out;
        default:
            return Failure::socket_error;
    }
}

Step Exchange::start(const Query& query, std::span<const uint8_t> message,
                     Transport client_transport, size_t client_limit, uint16_t upstream_id,
                     const ForwarderOptions& options, int64_t now_ns) {
    ZT_ASSERT(message.size() >= kHeaderBytes && message.size() <= kMaxMessageBytes);
    options_ = &options;
    query_ = query;
    client_transport_ = client_transport;
    client_limit_ = client_limit;
    upstream_id_ = upstream_id;
    upstream_message_.resize(2 + message.size());
    upstream_message_[0] = uint8_t(message.size() >> 8);
    upstream_message_[1] = uint8_t(message.size());
    std::copy(message.begin(), message.end(), upstream_message_.begin() + 2);
    write_id(std::span<uint8_t>(upstream_message_).subspan(2), upstream_id);
    reply_.clear();
    fallback_.clear();
    started_ns_ = now_ns;
    attempt_deadline_ns_ = now_ns;
    attempts_ = 0;
    upstream_index_ = 0;
    tcp_needed_ = false;
    failed_ = false;
    failure_ = Failure::none;
    answer_addresses_ = 0;
    if (options.upstreams.empty()) {
        return finish_failed(Failure::no_upstream);
    }
    return next_attempt(now_ns);
}

const state::SocketAddr& Exchange::upstream() const {
    ZT_ASSERT(options_ != nullptr && !options_->upstreams.empty());
    return options_->upstreams[upstream_index_];
}

Step Exchange::on_answer(std::span<const uint8_t> message, int64_t now_ns) {
    ZT_ASSERT(state_ == ExchangeState::udp || state_ == ExchangeState::tcp);
    std::optional<Header> header = read_header(message);
    if (!header || !header->response || header->id != upstream_id_) {
        return reject(Failure::bad_answer, now_ns);
    }
    auto info = inspect_answer(query_, message);
    if (!info) {
        return reject(Failure::bad_answer, now_ns);
    }
    // An error answer may leave the question out (FORMERR from a server that could not read it).
    bool error_without_question = header->question_count == 0 && info->rcode != Rcode::noerror;
    if (!info->question_matches && !error_without_question) {
        return reject(Failure::bad_answer, now_ns);
    }
    if (header->truncated && state_ == ExchangeState::udp && client_transport_ == Transport::tcp) {
        // The client can take the whole answer: ask this upstream again over TCP.
        tcp_needed_ = true;
        state_ = ExchangeState::tcp;
        attempt_deadline_ns_ = std::min(now_ns + options_->attempt_timeout_ns,
                                        started_ns_ + options_->deadline_ns);
        return Step::send_tcp;
    }
    bool upstream_error = info->rcode == Rcode::servfail || info->rcode == Rcode::refused ||
                          info->rcode == Rcode::notimp;
    if (upstream_error) {
        failure_ = Failure::upstream_error;
        fallback_.assign(message.begin(), message.end());
        if (options_->upstreams.size() > 1) {
            return next_attempt(now_ns);
        }
    }
    return finish_with_answer(message, info->address_count);
}

Step Exchange::on_failure(int err, int64_t now_ns) {
    ZT_ASSERT(state_ == ExchangeState::udp || state_ == ExchangeState::tcp);
    failure_ = failure_of(err);
    return next_attempt(now_ns);
}

Step Exchange::on_deadline(int64_t now_ns) {
    ZT_ASSERT(state_ == ExchangeState::udp || state_ == ExchangeState::tcp);
    failure_ = Failure::timed_out;
    return next_attempt(now_ns);
}

Step Exchange::reject(Failure failure, int64_t now_ns) {
    if (state_ == ExchangeState::udp) {
        // Anyone can send a datagram to our port: a stray or spoofed one is not the answer.
        return Step::wait;
    }
    failure_ = failure;
    return next_attempt(now_ns);
}

Step Exchange::next_attempt(int64_t now_ns) {
    const size_t upstream_count = options_->upstreams.size();
    const int64_t deadline = started_ns_ + options_->deadline_ns;
    const uint32_t max_attempts =
            std::max<uint32_t>(1, options_->attempts_per_upstream) * uint32_t(upstream_count);
    if (attempts_ >= max_attempts || now_ns >= deadline) {
        if (!fallback_.empty()) {
            // An error answer is a failure too; `failure_` keeps why the last attempt ended.
            return finish_with_answer(fallback_, 0);
        }
        return finish_failed(failure_ == Failure::none ? Failure::timed_out : failure_);
    }
    upstream_index_ = attempts_ % upstream_count;
    ++attempts_;
    attempt_deadline_ns_ = std::min(now_ns + options_->attempt_timeout_ns, deadline);
    state_ = tcp_needed_ ? ExchangeState::tcp : ExchangeState::udp;
    return tcp_needed_ ? Step::send_tcp : Step::send_udp;
}

Step Exchange::finish_with_answer(std::span<const uint8_t> message, uint16_t addresses) {
    reply_.assign(message.begin(), message.end());
    write_id(reply_, query_.id);
    if (client_transport_ == Transport::udp && reply_.size() > client_limit_) {
        auto cut = truncate_to_fit(reply_, client_limit_);
        if (cut) {
            reply_ = std::move(*cut);
        } else {
            reply_ = encode_error(query_, Rcode::servfail);
        }
    }
    auto header = read_header(reply_);
    Rcode rcode = header ? Rcode(header->rcode) : Rcode::servfail;
    failed_ = rcode == Rcode::servfail || rcode == Rcode::refused || rcode == Rcode::notimp;
    if (!failed_) {
        failure_ = Failure::none;
    }
    answer_addresses_ = addresses;
    state_ = ExchangeState::done;
    return Step::reply;
}

Step Exchange::finish_failed(Failure failure) {
    reply_ = encode_error(query_, Rcode::servfail);
    failed_ = true;
    failure_ = failure;
    answer_addresses_ = 0;
    state_ = ExchangeState::done;
    return Step::reply;
}

}  // namespace zt::dns
