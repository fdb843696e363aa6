// metrics_render prints a populated scrape of the standard registry, so that script tests can
// feed it to promtool: traffic series (ok, failed, with locality), config and pod metrics, limit
// counters with awkward label values. Usage: metrics_render [text|openmetrics]. It opens no
// sockets.

#include <cstdio>
#include <cstring>
#include <string>

#include "src/telemetry/standard_metrics.h"

using namespace zt::telemetry;

int main(int argc, char** argv) {
    Format format = Format::prometheus_text;
    if (argc > 1 && std::strcmp(argv[1], "openmetrics") == 0) {
        format = Format::openmetrics;
    } else if (argc > 1 && std::strcmp(argv[1], "text") != 0) {
        std::fprintf(stderr, "usage: metrics_render [text|openmetrics]\n");
        return 2;
    }
    StandardMetrics metrics({2, "1.24.0-zt", {}});
    TrafficLabels labels;
    labels.reporter = Reporter::source;
    labels.source_workload = "curl";
    labels.source_workload_namespace = "default";
    labels.source_principal = "spiffe://cluster.local/ns/default/sa/curl";
    labels.destination_service = "echo.default.svc.cluster.local";
    labels.destination_workload = "echo";
    labels.connection_security_policy = SecurityPolicy::mutual_tls;
    {
        ConnectionMetrics ok(metrics.traffic, 0, labels);
        ok.add_request_bytes(1234);
        ok.add_response_bytes(5678);
        ok.close();
        ConnectionMetrics denied(metrics.traffic, 1, labels);
        denied.close(ResponseFlag::deny);
    }
    labels.reporter = Reporter::destination;
    labels.with_locality = true;
    labels.source_region = "eu-west";
    ConnectionMetrics open(metrics.traffic, 1, labels);
    open.add_request_bytes(1);
    metrics.record_config_reload(true, 1700000000.5);
    metrics.record_config_reload(false, 0);
    metrics.set_pods(1, 2);
    metrics.connections_refused.cell(0, {"max_connections"})->increment();
    metrics.tls_handshake_failures.cell(1, {"quote\"back\\slash"})->add(2);
    metrics.http_refused.cell(metrics.control_shard(), {"admin", "request_too_large"})->increment();
    std::string body = metrics.render(format);
    std::fwrite(body.data(), 1, body.size(), stdout);
    return 0;
}
