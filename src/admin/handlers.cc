// handlers.cc maps paths and methods of the admin, metrics and readiness servers to answers,
// matching ztunnel's status codes and bodies. It holds no state of its own: config, levels,
// metrics and readiness come from the objects it is given.

#include "src/admin/handlers.h"

#include "src/telemetry/exposition.h"

namespace zt::admin {

namespace {

HttpResponse empty(int status) {
    HttpResponse response;
    response.status = status;
    response.content_type.clear();
    return response;
}

constexpr std::string_view kIndex =
        "ztunnel admin\n"
        "\n"
        "/config_dump        dump the current configuration, workloads and certificates (JSON)\n"
        "/pods               captured pods: state, listeners on every worker, config content "
        "(JSON)\n"
        "                    ?wait=<sha256>[&timeout_ms=N]: once the workers answered for that "
        "content\n"
        "/logging            POST: show or change log levels (?level=<spec>, ?reset)\n"
        "/quitquitquit       POST: shut down gracefully\n"
        "\n"
        "metrics:   :15020/metrics, :15020/stats/prometheus\n"
        "readiness: :15021/healthz/ready\n";

}  // namespace

HttpResponse AdminHandler::handle(const HttpRequest& request) {
    const std::string& path = request.path;
    if (path == "/") {
        return text_response(200, std::string(kIndex));
    }
    if (path == "/config_dump") {
        if (!hooks_.config_dump) {
            return text_response(503, "config dump not available yet\n");
        }
        HttpResponse response;
        response.content_type = "application/json";
        response.body = hooks_.config_dump();
        return response;
    }
    if (path == "/pods") {
        if (request.method != "GET") {
            return empty(405);
        }
        if (!hooks_.pods) {
            return text_response(503, "pods not available yet\n");
        }
        PodsWaitQuery query = parse_pods_wait(request.query);
        if (!query.error.empty()) {
            return text_response(400, query.error + "\n");
        }
        if (query.wait && query.timeout_ms > 0 && hooks_.pods_progress && !request.hold.expired) {
            PodsProgress progress = hooks_.pods_progress();
            // The wait's start is kept in the held request: reloads after it settle the wait.
            uint64_t start = request.hold.held ? request.hold.context : progress.reload_attempts;
            if (!pods_wait_over(progress, query.sha256, start)) {
                return HttpResponse::hold(query.timeout_ms, start);
            }
        }
        HttpResponse response;
        response.content_type = "application/json";
        response.body = hooks_.pods(query.pods);
        return response;
    }
    if (path == "/logging") {
        return levels_.handle(request);
    }
    if (path == "/quitquitquit") {
        if (request.method != "POST") {
            return empty(405);
        }
        if (hooks_.shutdown) {
            hooks_.shutdown();
        }
        return text_response(200, "shutdown now\n");
    }
    return empty(404);
}

HttpResponse MetricsHandler::handle(const HttpRequest& request) {
    if (request.path != "/metrics" && request.path != "/stats/prometheus") {
        return empty(404);
    }
    telemetry::Format format = telemetry::negotiate_format(request.header("accept"));
    HttpResponse response;
    response.content_type = std::string(telemetry::content_type(format));
    response.body = registry_.render(format);
    response.headers.emplace_back("vary", "accept, accept-encoding");
    if (telemetry::accepts_gzip(request.header("accept-encoding"))) {
        auto zipped = telemetry::gzip_compress(response.body);
        // Without memory for zlib, send the body uncompressed rather than fail the scrape.
        if (zipped) {
            response.body = std::move(*zipped);
            response.headers.emplace_back("content-encoding", "gzip");
        }
    }
    return response;
}

HttpResponse ReadinessHandler::handle(const HttpRequest& request) {
    if (request.path != "/healthz/ready") {
        return empty(404);
    }
    // Only GET, as ztunnel: the kubelet probes with GET and anything else is a mistake.
    if (request.method != "GET") {
        return empty(405);
    }
    int status = 200;
    std::string body = readiness_.probe_body(status);
    return text_response(status, std::move(body));
}

}  // namespace zt::admin
