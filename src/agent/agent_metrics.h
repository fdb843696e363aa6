#pragma once

// AgentMetrics registers the agent's metric families (served on its admin port's /metrics):
// ztunnel's xDS client metrics under their Istio names and labels, and the agent's own, each
// marked `(unstable)` as ztunnel marks every non-core metric. Two counting shards: the agent
// thread's (xDS, config writes) and the main thread's.

#include <cstddef>

#include "src/telemetry/metrics.h"

namespace zt::agent {

class AgentMetrics {
    // Declared first: the family references below are initialised from it.
    telemetry::Registry registry_;

public:
    static constexpr size_t kAgentShard = 0;
    static constexpr size_t kMainShard = 1;

    AgentMetrics();

    AgentMetrics(const AgentMetrics&) = delete;
    AgentMetrics& operator=(const AgentMetrics&) = delete;

    telemetry::Registry& registry() { return registry_; }

    // istio_xds_connection_terminations_total{reason}: ConnectionError, Error, Reconnect,
    // Complete (ztunnel's).
    telemetry::ShardedFamily& xds_terminations;
    // istio_xds_message_total{url} and istio_xds_message_bytes_total{url}: responses received
    // per type URL and the bytes of their resources (ztunnel's).
    telemetry::ShardedFamily& xds_messages;
    telemetry::ShardedFamily& xds_message_bytes;
    // ztunnel_agent_xds_acks_total{url,result="ack|nack"}: answers sent.
    telemetry::ShardedFamily& xds_acks;
    // ztunnel_agent_xds_rejected_resources_total{url}: resources rejected inside NACKs.
    telemetry::ShardedFamily& xds_rejected;
    // ztunnel_agent_xds_connected: 1 while an ADS stream is established.
    telemetry::GaugeFamily& xds_connected;
    // ztunnel_agent_config_writes_total{result="written|unchanged|invalid|error"}.
    telemetry::ShardedFamily& config_writes;
    // ztunnel_agent_config_last_write_timestamp_seconds: when the file was last written.
    telemetry::GaugeFamily& config_last_write;
    // ztunnel_agent_ca_requests_total{result="issued|failed"}: CreateCertificate outcomes.
    telemetry::ShardedFamily& ca_requests;
    // ztunnel_agent_ca_certificates{state="Initializing|Available|Unavailable"}: identities.
    telemetry::GaugeFamily& ca_certificates;
    // ztunnel_agent_zds_acks_total{result="ack|nack"}: answers to istio-cni.
    telemetry::ShardedFamily& zds_acks;
};

}  // namespace zt::agent
