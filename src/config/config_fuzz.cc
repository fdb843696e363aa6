// config_fuzz.cc is the libFuzzer target for the whole config path (JSON reader, schema reader,
// cross-object checks, index build): any bytes in, a verdict out, never a crash, a hang or a
// stack overflow; and every valid input renders (`config::render`) to text that parses back to
// the same structs. `make test` replays tests/corpus/config/ through it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/config/load.h"
#include "src/config/parse.h"
#include "src/config/render.h"
#include "src/proxy/route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    zt::config::LoadResult result = zt::config::load_text(text);
    if (result.snapshot == nullptr) {
        ZT_CHECK(!result.errors.empty());
        return 0;
    }
    ZT_CHECK(result.errors.empty());
    // The writer is the parser's inverse (`unsupported` is derived, in the order keys are met).
    zt::state::Config config = result.snapshot->config();
    zt::config::ParseResult again = zt::config::parse(zt::config::render(config));
    ZT_CHECK(again.errors.empty());
    std::sort(config.unsupported.begin(), config.unsupported.end());
    std::sort(again.config.unsupported.begin(), again.config.unsupported.end());
    ZT_CHECK(again.config == config);
    // Exercise the lookups over whatever the input built: every workload routes to every
    // workload IP and service VIP it has, without crashing.
    const auto& snap = *result.snapshot;
    // With a source IP and a waypoint sample, so the waypoint and locality lookups (hostname
    // scans, unscoped VIPs, weighted samples) run over every input too.
    zt::proxy::RouteOptions options;
    options.default_trust_domain = "td";
    options.random = size;
    options.waypoint_random = size / 2;
    for (const auto& source : snap.workloads()) {
        options.source_ip = std::nullopt;
        if (!source.workload_ips.empty()) {
            options.source_ip = source.workload_ips.front();
        }
        for (const auto& service : snap.services()) {
            for (const auto& vip : service.vips) {
                for (const auto& [port, target] : service.ports) {
                    (void)target;
                    (void)zt::proxy::plan_outbound(snap, source, {vip.ip, port}, options);
                }
            }
        }
        for (const auto& target : snap.workloads()) {
            for (const auto& ip : target.workload_ips) {
                (void)zt::proxy::plan_outbound(snap, source, {ip, 80});
                (void)zt::proxy::plan_outbound(snap, source, {ip, 80}, options);
            }
        }
        (void)snap.policies_for(source);
    }
    return 0;
}
