// proxy_counters.cc turns the proxy's protection events into counts in the worker's metric
// shard. A count looks its series up by label (one hash lookup): these events are rare next to
// the traffic, and a flood of them is exactly what the counts are for.

#include "src/proxy/proxy_counters.h"

#include <cerrno>

#include "src/telemetry/standard_metrics.h"

namespace zt::proxy {

H2Misbehaviour H2Misbehaviour::of(const hbone::H2Counters& c) {
    H2Misbehaviour m;
    m.empty_data_frames = c.empty_data_frames;
    m.priority_frames = c.priority_frames;
    m.extra_settings = c.settings_frames > 0 ? c.settings_frames - 1 : 0;
    m.invalid_frames = c.invalid_frames;
    m.header_lists_too_large = c.header_list_too_large;
    m.bad_requests = c.bad_requests;
    m.streams_reset_by_codec = c.resets_sent_by_codec;
    m.reset_floods = c.reset_rate_limited;
    m.continuation_floods = c.continuation_limit;
    m.ack_floods = c.flooded;
    m.budgets_spent = c.glitch_goaways;
    return m;
}

uint64_t H2Misbehaviour::total() const {
    return empty_data_frames + priority_frames + extra_settings + invalid_frames +
           header_lists_too_large + bad_requests + streams_reset_by_codec + reset_floods +
           continuation_floods + ack_floods + budgets_spent;
}

void ProxyCounters::connection_refused(std::string_view reason) {
    if (metrics_ != nullptr) {
        metrics_->connections_refused.cell(shard_, {reason})->increment();
    }
}

void ProxyCounters::workload_wait(std::string_view result) {
    if (metrics_ != nullptr) {
        metrics_->workload_waits.cell(shard_, {result})->increment();
    }
}

void ProxyCounters::handshake_failed(const CloseCause& cause) {
    if (metrics_ == nullptr) {
        return;
    }
    metrics_->tls_handshake_failures.cell(shard_, {handshake_failure_reason(cause)})->increment();
    if (cause.reason == CloseReason::engine_failed && is_certificate_refusal(Errc(cause.code))) {
        metrics_->certificate_refusals.cell(shard_, {to_string(Errc(cause.code))})->increment();
    }
}

void ProxyCounters::h2_misbehaved(const H2Misbehaviour& before, const H2Misbehaviour& now) {
    if (metrics_ == nullptr) {
        return;
    }
    auto add = [this](std::string_view kind, uint64_t from, uint64_t to) {
        if (to > from) {
            metrics_->h2_glitches.cell(shard_, {kind})->add(to - from);
        }
    };
    add("empty_data_frame", before.empty_data_frames, now.empty_data_frames);
    add("priority_frame", before.priority_frames, now.priority_frames);
    add("extra_settings", before.extra_settings, now.extra_settings);
    add("invalid_frame", before.invalid_frames, now.invalid_frames);
    add("header_list_too_large", before.header_lists_too_large, now.header_lists_too_large);
    add("bad_request", before.bad_requests, now.bad_requests);
    add("stream_reset_by_codec", before.streams_reset_by_codec, now.streams_reset_by_codec);
    add("reset_flood", before.reset_floods, now.reset_floods);
    add("continuation_flood", before.continuation_floods, now.continuation_floods);
    add("ack_flood", before.ack_floods, now.ack_floods);
    add("glitch_budget_spent", before.budgets_spent, now.budgets_spent);
}

void ProxyCounters::accept_failed(int err) {
    if (metrics_ == nullptr) {
        return;
    }
    std::string_view error = err == EMFILE    ? "EMFILE"
                             : err == ENFILE  ? "ENFILE"
                             : err == ENOMEM  ? "ENOMEM"
                             : err == ENOBUFS ? "ENOBUFS"
                                              : "other";
    metrics_->accept_failures.cell(shard_, {error})->increment();
}

void ProxyCounters::sq_waits(uint64_t waits) {
    if (metrics_ != nullptr && waits > 0) {
        metrics_->uring_sq_waits.cell(shard_, {})->add(waits);
    }
}

void ProxyCounters::read_buffers_exhausted() {
    if (metrics_ != nullptr) {
        metrics_->read_buffers_exhausted.cell(shard_, {})->increment();
    }
}

std::string_view handshake_failure_reason(const CloseCause& cause) {
    switch (cause.reason) {
        case CloseReason::engine_failed:
        case CloseReason::tls_start_failed:
            return to_string(Errc(cause.code));
        case CloseReason::keepalive_timeout:
            return "timed_out";
        case CloseReason::peer_closed:
            return "eof";
        case CloseReason::os_error:
            return "io_error";
        default:
            return to_string(cause.reason);
    }
}

bool is_certificate_refusal(Errc code) {
    switch (code) {
        case Errc::cert_parse:
        case Errc::cert_unknown_ca:
        case Errc::cert_expired:
        case Errc::cert_not_yet_valid:
        case Errc::cert_bad_san:
        case Errc::cert_is_ca:
        case Errc::cert_key_usage:
        case Errc::cert_key_cert_sign:
        case Errc::cert_eku:
        case Errc::identity_mismatch:
        case Errc::trust_domain_mismatch:
        case Errc::bad_identity:
        case Errc::cert_no_uri_san:
        case Errc::cert_many_uri_sans:
        case Errc::cert_chain_too_long:
        case Errc::cert_chain_invalid:
            return true;
        default:
            return false;
    }
}

}  // namespace zt::proxy
