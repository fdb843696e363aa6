#pragma once

// AdsClient runs the delta ADS stream to istiod on the agent's loop, as ztunnel's xDS client
// does: connect (a fresh gRPC channel per attempt, the token file read again each time), open
// `DeltaAggregatedResources` with `authorization: Bearer <token>` and `clusterid`, send the
// session's initial requests (Address, then Authorization), answer every response with an ACK or
// NACK by nonce, and when the stream ends reconnect after ztunnel's backoff, counting each end
// in `istio_xds_connection_terminations_total{reason}`. Log target `xds`.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/agent/ads_session.h"
#include "src/agent/agent_metrics.h"
#include "src/agent/backoff.h"
#include "src/agent/grpc_channel.h"
#include "src/agent/loop.h"

namespace zt::agent {

// kDeltaAdsMethod is the gRPC path of the delta ADS call.
inline constexpr std::string_view kDeltaAdsMethod =
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

struct AdsClientOptions {
    grpc::ChannelOptions channel;
    // token_file holds istiod's audience token, read at every connection; missing: no
    // `authorization` header (as ztunnel without a token).
    std::string token_file;
    std::string cluster_id = "Kubernetes";
    // extra_metadata are the XDS_HEADER_<name> values (name lower-cased).
    std::vector<hbone::H2Field> extra_metadata;
};

// AdsClientState is where the client is, for /debug.
enum class AdsClientState : uint8_t {
    idle,         // Not started.
    connecting,   // A channel is being made; the stream is not established yet.
    established,  // The server answered the stream's headers.
    backing_off,  // The last stream ended; waiting to reconnect.
    stopping,     // shutdown() was called; the channel is closing.
    stopped,      // Nothing left in the kernel.
};

std::string_view to_string(AdsClientState state);

// AdsClientStatus is a copy of the client's state for /debug.
struct AdsClientStatus {
    AdsClientState state = AdsClientState::idle;
    std::string address;  // host:port
    std::string peer;     // the address connected to
    uint32_t connection_id = 0;
    int64_t established_unix_ns = 0;
    std::string last_error;
    int64_t last_error_unix_ns = 0;
    int64_t reconnect_in_ns = 0;
};

class AdsClient final : public grpc::ChannelObserver, public grpc::CallObserver {
public:
    // AdsClient drives `session` over gRPC on `loop`; `on_response` runs after each response was
    // applied and answered (the config writer is told there). Everything borrowed must outlive
    // the client.
    AdsClient(Loop& loop, AdsClientOptions options, AdsSession& session, AgentMetrics& metrics,
              std::function<void(const ResponseOutcome&)> on_response);

    ~AdsClient() override;

    // start makes the first connection.
    void start();

    // shutdown stops reconnecting and closes the channel (cancelling the stream).
    void shutdown();

    // stopped says whether nothing of the client is left in the kernel (after `shutdown`).
    bool stopped() const;

    AdsClientStatus status() const;

private:
    void connect();
    static void on_reconnect_timer(uring::Completion& self, int32_t res, uint32_t flags);

    void on_channel_closed(grpc::Channel& channel, std::string_view reason) override;
    void on_call_established(grpc::Call& call) override;
    void on_call_message(grpc::Call& call, std::string message) override;
    void on_call_closed(grpc::Call& call, const grpc::CallEnd& end) override;

    // metadata returns the stream's headers: authorization (when the token file has one),
    // clusterid, then the XDS_HEADER_* values.
    std::vector<hbone::H2Field> metadata();
    void set_error(std::string error);

    Loop& loop_;
    AdsClientOptions options_;
    AdsSession& session_;
    AgentMetrics& metrics_;
    std::function<void(const ResponseOutcome&)> on_response_;
    XdsBackoff backoff_;
    AdsClientState state_ = AdsClientState::idle;
    std::shared_ptr<grpc::Channel> channel_;
    grpc::Call* call_ = nullptr;
    uring::Timer reconnect_timer_;
    int64_t next_delay_ns_ = 0;
    uint32_t connection_id_ = 0;
    bool decode_failed_ = false;
    int64_t established_unix_ns_ = 0;
    int64_t reconnect_at_ns_ = 0;
    std::string last_error_;
    int64_t last_error_unix_ns_ = 0;
};

}  // namespace zt::agent
