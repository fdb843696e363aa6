// proxied_connection.cc opens and finishes the records of proxied connections: the access log
// (`connection opened`, `connection complete`, `connection failed`) and Istio's traffic metrics,
// with each close cause rendered as ztunnel's error text here and nowhere else.

#include "src/proxy/proxied_connection.h"

#include "src/proxy/pod.h"
#include "src/proxy/worker_context.h"
#include "src/telemetry/standard_metrics.h"

namespace zt::proxy {

std::string_view to_string(ProxyPath path) {
    switch (path) {
        case ProxyPath::outbound_tcp:
            return "outbound_tcp";
        case ProxyPath::outbound_hbone:
            return "outbound_hbone";
        case ProxyPath::inbound_plaintext:
            return "inbound_plaintext";
        case ProxyPath::inbound_hbone:
            return "inbound_hbone";
    }
    return "unknown";
}

ProxiedConnection& open_connection(WorkerContext& context, Pod& pod, ProxyPath path,
                                   const ConnectionParties& parties, const state::SocketAddr& src,
                                   const state::SocketAddr& dst, std::string_view hbone_addr,
                                   std::string original_dst) {
    ProxiedConnection& connection = pod.connections.adopt(std::make_unique<ProxiedConnection>());
    connection.pod = &pod;
    connection.path = path;
    connection.start_ns = monotonic_ns();
    connection.original_dst = std::move(original_dst);
    bool outbound = !connection.inbound();
    connection.log = connection_log(
            outbound ? telemetry::Direction::outbound : telemetry::Direction::inbound, parties, src,
            dst, hbone_addr, context.options.trust_domain);
    if (context.shared.metrics != nullptr) {
        // Opened is counted here, after the decision, as ztunnel counts it.
        connection.metrics = telemetry::ConnectionMetrics(
                context.shared.metrics->traffic, size_t(context.index),
                traffic_labels(
                        outbound ? telemetry::Reporter::source : telemetry::Reporter::destination,
                        parties, context.options.trust_domain));
    }
    telemetry::log_connection_opened(connection.log);
    context.connection_opened();
    return connection;
}

void finish_connection(WorkerContext& context, ProxiedConnection& connection,
                       const CloseCause& cause) {
    const CloseCause& reported = connection.imposed.is_error() ? connection.imposed : cause;
    connection.metrics.add_request_bytes(connection.log.request_bytes);
    connection.metrics.add_response_bytes(connection.log.response_bytes);
    connection.metrics.close(reported.flag);
    telemetry::log_connection_complete(connection.log, monotonic_ns() - connection.start_ns,
                                       error_text(reported));
    context.connection_closed();
    connection.pod->connections.destroy(connection);
}

void refuse_connection(WorkerContext& context, const state::SocketAddr& src,
                       const state::SocketAddr& dst, telemetry::Direction direction,
                       const CloseCause& cause) {
    telemetry::log_connection_failed(src.to_string(), dst.to_string(), direction,
                                     error_text(cause));
    context.counters.connection_refused(to_string(cause.reason));
}

}  // namespace zt::proxy
