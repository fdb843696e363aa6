// agent_metrics.cc registers the agent's families once, with their names, labels and HELP texts
// in one place; components count into the agent thread's shard.

#include "src/agent/agent_metrics.h"

#include "src/telemetry/standard_metrics.h"

namespace zt::agent {

namespace {

using telemetry::FamilyInfo;
using telemetry::MetricType;
using telemetry::Stability;

double open_fds(const void*) {
    return double(telemetry::count_open_fds());
}

double max_fds(const void*) {
    return double(telemetry::max_fds());
}

}  // namespace

AgentMetrics::AgentMetrics()
    : registry_(2)
    , xds_terminations(registry_.counter({"istio_xds_connection_terminations",
                                          "The total number of completed connections to xds server",
                                          {"reason"},
                                          Stability::unstable}))
    , xds_messages(registry_.counter({"istio_xds_message",
                                      "Total number of messages received",
                                      {"url"},
                                      Stability::unstable}))
    , xds_message_bytes(registry_.counter({"istio_xds_message_bytes",
                                           "Total number of bytes received",
                                           {"url"},
                                           Stability::unstable}))
    , xds_acks(registry_.counter({"ztunnel_agent_xds_acks",
                                  "xDS responses answered, by type URL and ACK or NACK",
                                  {"url", "result"},
                                  Stability::unstable}))
    , xds_rejected(registry_.counter({"ztunnel_agent_xds_rejected_resources",
                                      "xDS resources rejected (named in a NACK), by type URL",
                                      {"url"},
                                      Stability::unstable}))
    , xds_connected(registry_.gauge({"ztunnel_agent_xds_connected",
                                     "1 while the agent's ADS stream to istiod is established",
                                     {},
                                     Stability::unstable}))
    , config_writes(registry_.counter(
              {"ztunnel_agent_config_writes",
               "Config file write attempts: written, unchanged (content as on disk), invalid "
               "(refused by validation), error (I/O)",
               {"result"},
               Stability::unstable}))
    , config_last_write(registry_.gauge({"ztunnel_agent_config_last_write_timestamp_seconds",
                                         "Unix time the config file was last written",
                                         {},
                                         Stability::unstable}))
    , ca_requests(registry_.counter({"ztunnel_agent_ca_requests",
                                     "Certificate requests to the Istio CA: issued (accepted and "
                                     "written) or failed",
                                     {"result"},
                                     Stability::unstable}))
    , ca_certificates(registry_.gauge({"ztunnel_agent_ca_certificates",
                                       "Identities of this node's pods, by certificate state",
                                       {"state"},
                                       Stability::unstable}))
    , zds_acks(registry_.counter({"ztunnel_agent_zds_acks",
                                  "Answers to istio-cni's ZDS requests: ack or nack",
                                  {"result"},
                                  Stability::unstable})) {
    registry_.callback({"process_open_fds", "Number of open file descriptors", {}},
                       MetricType::gauge, &open_fds, nullptr);
    registry_.callback({"process_max_fds", "Maximum number of open file descriptors", {}},
                       MetricType::gauge, &max_fds, nullptr);
}

}  // namespace zt::agent
