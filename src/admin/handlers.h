#pragma once

// The handlers of the three operator servers (docs/contract.md §6, §7; docs/ztunnel-reference.md
// §7):
//   admin (127.0.0.1:15000)  `/` index, `/config_dump`, `/pods`, `POST /logging`, `POST
//   /quitquitquit`,
//                            404 otherwise, 405 for a wrong method where ztunnel gives one;
//   metrics ([::]:15020)     `/metrics` and `/stats/prometheus`, negotiated format, gzip;
//   readiness ([::]:15021)   `GET /healthz/ready`.
// They run on the control thread inside `HttpServer`; hooks must return quickly. The one request
// that waits, `GET /pods?wait=`, is held by the server (`HttpResponse::hold`), not here.

#include <functional>
#include <string>

#include "src/admin/http_server.h"
#include "src/admin/logging.h"
#include "src/admin/pods_wait.h"
#include "src/admin/readiness.h"
#include "src/telemetry/metrics.h"

namespace zt::admin {

// AdminHooks connects the admin server to the rest of the process. Either may be empty.
struct AdminHooks {
    // config_dump returns the `/config_dump` JSON text (built by src/config). Empty: 503.
    std::function<std::string()> config_dump;
    // pods returns the `/pods` JSON text (per pod: listeners open on every worker, for which
    // config content). Empty: 503.
    std::function<std::string(const std::vector<std::string>& only)> pods;
    // pods_progress says how far config and workers are, for `GET /pods?wait=<sha256>`
    // (pods_wait.h). Empty: the wait form answers at once, as the plain form.
    std::function<PodsProgress()> pods_progress;
    // shutdown starts a graceful drain and returns at once; `/quitquitquit` answers after it.
    std::function<void()> shutdown;
};

class AdminHandler final : public HttpHandler {
public:
    // AdminHandler answers with `hooks`; `levels` must outlive it.
    AdminHandler(AdminHooks hooks, LogLevels& levels) : hooks_(std::move(hooks)), levels_(levels) {}

    HttpResponse handle(const HttpRequest& request) override;

private:
    AdminHooks hooks_;
    LogLevels& levels_;
};

class MetricsHandler final : public HttpHandler {
public:
    // MetricsHandler scrapes `registry`, which must outlive it.
    explicit MetricsHandler(const telemetry::Registry& registry) : registry_(registry) {}

    HttpResponse handle(const HttpRequest& request) override;

private:
    const telemetry::Registry& registry_;
};

class ReadinessHandler final : public HttpHandler {
public:
    // ReadinessHandler answers from `readiness`, which must outlive it.
    explicit ReadinessHandler(const Readiness& readiness) : readiness_(readiness) {}

    HttpResponse handle(const HttpRequest& request) override;

private:
    const Readiness& readiness_;
};

}  // namespace zt::admin
