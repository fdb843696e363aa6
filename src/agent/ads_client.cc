// ads_client.cc moves the ADS session's messages over a gRPC stream and decides, after every
// stream, when to reconnect. It owns at most one channel at a time; a closed channel is retired
// to the loop (never destroyed inside its own callback) and a new one made after the backoff.
// Log lines follow ztunnel's (`Stream established`, `received response`, `sending response`
// at error for a NACK, the reconnect reason).

#include "src/agent/ads_client.h"

#include <cerrno>

#include "certs/pem.h"
#include "zt/log.h"

namespace zt::agent {

namespace ds = envoy::service::discovery::v3;

namespace {

constexpr std::string_view kTarget = "xds";

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                             text.back() == '\t')) {
        text.pop_back();
    }
    size_t start = text.find_first_not_of(" \t\r\n");
    return start == std::string::npos ? std::string() : text.substr(start);
}

}  // namespace

std::string_view to_string(AdsClientState state) {
    switch (state) {
        case AdsClientState::idle:
            return "idle";
        case AdsClientState::connecting:
            return "connecting";
        case AdsClientState::established:
            return "established";
        case AdsClientState::backing_off:
            return "backing_off";
        case AdsClientState::stopping:
            return "stopping";
        case AdsClientState::stopped:
            return "stopped";
    }
    return "unknown";
}

AdsClient::AdsClient(Loop& loop, AdsClientOptions options, AdsSession& session,
                     AgentMetrics& metrics, std::function<void(const ResponseOutcome&)> on_response)
    : loop_(loop)
    , options_(std::move(options))
    , session_(session)
    , metrics_(metrics)
    , on_response_(std::move(on_response)) {
    reconnect_timer_.completion.callback = &AdsClient::on_reconnect_timer;
    reconnect_timer_.completion.context = this;
}

AdsClient::~AdsClient() {
    ZT_CHECK(!reconnect_timer_.completion.in_kernel);
    ZT_CHECK(channel_ == nullptr || channel_->state() == grpc::ChannelState::closed ||
             channel_->state() == grpc::ChannelState::idle);
}

void AdsClient::start() {
    ZT_ASSERT(state_ == AdsClientState::idle);
    connect();
}

std::vector<hbone::H2Field> AdsClient::metadata() {
    std::vector<hbone::H2Field> fields;
    if (!options_.token_file.empty()) {
        // A projected service-account JWT is about 1 KiB; the reader's 1 MiB cap bounds a
        // runaway file.
        auto token = certs::read_pem_file(options_.token_file);
        if (token) {
            std::string value = trim(std::move(*token));
            if (!value.empty()) {
                fields.push_back({"authorization", "Bearer " + value});
            }
        } else if (token.error().code != Errc::not_found) {
            log::warn(kTarget, "cannot read the token file; connecting without a token",
                      {log::Field::str("path", options_.token_file),
                       log::Field::str("error", to_string(token.error().code))});
        }
    }
    fields.push_back({"clusterid", options_.cluster_id});
    for (const hbone::H2Field& extra : options_.extra_metadata) {
        fields.push_back(extra);
    }
    return fields;
}

void AdsClient::connect() {
    connection_id_++;
    decode_failed_ = false;
    state_ = AdsClientState::connecting;
    call_ = nullptr;
    channel_ =
            std::make_shared<grpc::Channel>(loop_.ring(), loop_.clock(), options_.channel, *this);
    // The call waits inside the channel until TLS and HTTP/2 are up; its first messages with it.
    auto call = channel_->start_call(std::string(kDeltaAdsMethod), metadata(), 0, *this);
    ZT_CHECK(call.has_value());  // An idle channel always accepts a call.
    call_ = *call;
    for (const ds::DeltaDiscoveryRequest& request : session_.initial_requests()) {
        log::debug(
                kTarget, "sending initial request",
                {log::Field::str("type_url", request.type_url()),
                 log::Field::num("resources", uint64_t(request.initial_resource_versions_size())),
                 log::Field::num("id", connection_id_)});
        (void)call_->send(request.SerializeAsString());
    }
    // start may fail at once (roots unreadable); the observers then run before it returns.
    std::shared_ptr<grpc::Channel> keep = channel_;
    keep->start();
}

void AdsClient::on_call_established(grpc::Call&) {
    state_ = AdsClientState::established;
    established_unix_ns_ = loop_.clock().unix_ns();
    metrics_.xds_connected.set({}, 1);
    log::info(
            kTarget, "Stream established",
            {log::Field::display("xds", channel_->peer()), log::Field::num("id", connection_id_)});
}

void AdsClient::on_call_message(grpc::Call& call, std::string message) {
    ds::DeltaDiscoveryResponse response;
    if (!response.ParseFromString(message)) {
        decode_failed_ = true;
        set_error("a response does not decode as DeltaDiscoveryResponse");
        log::error(
                kTarget, "cannot decode a response; reconnecting",
                {log::Field::num("bytes", message.size()), log::Field::num("id", connection_id_)});
        call.cancel();
        return;
    }
    const std::string& url = response.type_url();
    uint64_t payload_bytes = 0;
    for (const ds::Resource& resource : response.resources()) {
        payload_bytes += resource.resource().value().size();
    }
    metrics_.xds_messages.cell(AgentMetrics::kAgentShard, {url})->increment();
    metrics_.xds_message_bytes.cell(AgentMetrics::kAgentShard, {url})->add(payload_bytes);
    log::info(kTarget, "received response",
              {log::Field::str("type_url", url),
               log::Field::num("size", uint64_t(response.resources_size())),
               log::Field::num("removes", uint64_t(response.removed_resources_size())),
               log::Field::str("nonce", response.nonce()), log::Field::num("id", connection_id_)});
    ResponseOutcome outcome = session_.on_response(response, loop_.clock().unix_ns());
    if (outcome.unknown_type) {
        log::error(kTarget, "unknown type", {log::Field::str("type_url", url)});
    }
    if (outcome.ack) {
        log::debug(kTarget, "sending response",
                   {log::Field::str("type_url", url), log::Field::str("nonce", response.nonce()),
                    log::Field::display("type", "ACK")});
    } else {
        log::error(kTarget, "sending response",
                   {log::Field::str("type_url", url), log::Field::str("nonce", response.nonce()),
                    log::Field::display("type", "NACK"), log::Field::str("error", outcome.error)});
        metrics_.xds_rejected.cell(AgentMetrics::kAgentShard, {url})->add(outcome.rejected);
    }
    metrics_.xds_acks.cell(AgentMetrics::kAgentShard, {url, outcome.ack ? "ack" : "nack"})
            ->increment();
    (void)call.send(outcome.reply.SerializeAsString());
    if (outcome.became_ready) {
        log::info(kTarget, "every watched type was ACKed; xDS is ready");
    }
    on_response_(outcome);
}

void AdsClient::on_call_closed(grpc::Call&, const grpc::CallEnd& end) {
    call_ = nullptr;
    metrics_.xds_connected.set({}, 0);
    if (state_ == AdsClientState::stopping) {
        return;
    }
    ReconnectPlan plan = backoff_.on_stream_end(end);
    if (decode_failed_) {
        // ztunnel: a response it cannot decode is a gRPC error (backed off, reason Error).
        plan.reason = TerminationReason::error;
        plan.delay_ns = backoff_.current_ns();
    }
    metrics_.xds_terminations.cell(AgentMetrics::kAgentShard, {to_string(plan.reason)})
            ->increment();
    std::string detail = std::string(grpc::to_string(end.status.code)) +
                         (end.status.message.empty() ? "" : ": " + end.status.message);
    uint64_t delay_ms = uint64_t(plan.delay_ns / kNanosPerMilli);
    switch (plan.reason) {
        case TerminationReason::connection_error:
            set_error(end.status.message);
            log::warn(kTarget, "XDS client connection error, retrying",
                      {log::Field::str("error", detail), log::Field::num("retry_ms", delay_ms),
                       log::Field::num("id", connection_id_)});
            break;
        case TerminationReason::error:
            set_error(detail);
            log::warn(kTarget, "XDS client error, retrying",
                      {log::Field::str("error", detail), log::Field::num("retry_ms", delay_ms),
                       log::Field::num("id", connection_id_)});
            break;
        case TerminationReason::reconnect:
            log::debug(kTarget, "XDS client terminated, retrying",
                       {log::Field::str("error", detail), log::Field::num("retry_ms", delay_ms),
                        log::Field::num("id", connection_id_)});
            break;
        case TerminationReason::complete:
            log::warn(kTarget, "XDS client complete", {log::Field::num("id", connection_id_)});
            break;
    }
    next_delay_ns_ = plan.delay_ns;
    state_ = AdsClientState::backing_off;
    if (channel_ != nullptr) {
        channel_->shutdown();  // The reconnect waits for the old channel to close.
    }
}

void AdsClient::on_channel_closed(grpc::Channel& channel, std::string_view) {
    ZT_ASSERT(&channel == channel_.get());
    loop_.retire(std::move(channel_));
    channel_ = nullptr;
    if (state_ == AdsClientState::stopping) {
        if (!reconnect_timer_.completion.in_kernel) {
            state_ = AdsClientState::stopped;
        }
        return;
    }
    // The stream's end was classified in `on_call_closed`; now the socket is gone too.
    reconnect_at_ns_ = loop_.clock().monotonic_ns() + next_delay_ns_;
    loop_.ring().arm_timer(reconnect_timer_, std::max<int64_t>(next_delay_ns_, 1));
}

void AdsClient::on_reconnect_timer(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<AdsClient*>(self.context);
    if (client->state_ == AdsClientState::stopping) {
        if (client->channel_ == nullptr) {
            client->state_ = AdsClientState::stopped;
        }
        return;
    }
    if (res == -ETIME) {
        client->connect();
    }
}

void AdsClient::shutdown() {
    if (state_ == AdsClientState::idle) {
        state_ = AdsClientState::stopped;
        return;
    }
    if (state_ == AdsClientState::stopping || state_ == AdsClientState::stopped) {
        return;
    }
    state_ = AdsClientState::stopping;
    if (reconnect_timer_.completion.in_kernel) {
        loop_.ring().cancel_timer(reconnect_timer_);
    }
    if (channel_ != nullptr) {
        channel_->shutdown();
    } else if (!reconnect_timer_.completion.in_kernel) {
        state_ = AdsClientState::stopped;
    }
}

bool AdsClient::stopped() const {
    return state_ == AdsClientState::stopped ||
           (state_ == AdsClientState::stopping && channel_ == nullptr &&
            !reconnect_timer_.completion.in_kernel);
}

void AdsClient::set_error(std::string error) {
    last_error_ = std::move(error);
    last_error_unix_ns_ = loop_.clock().unix_ns();
}

AdsClientStatus AdsClient::status() const {
    AdsClientStatus status;
    status.state = state_;
    status.address = options_.channel.host + ":" + std::to_string(options_.channel.port);
    status.peer = channel_ != nullptr ? channel_->peer() : std::string();
    status.connection_id = connection_id_;
    status.established_unix_ns = state_ == AdsClientState::established ? established_unix_ns_ : 0;
    status.last_error = last_error_;
    status.last_error_unix_ns = last_error_unix_ns_;
    if (state_ == AdsClientState::backing_off && reconnect_timer_.completion.in_kernel) {
        status.reconnect_in_ns =
                std::max<int64_t>(0, reconnect_at_ns_ - loop_.clock().monotonic_ns());
    }
    return status;
}

}  // namespace zt::agent
