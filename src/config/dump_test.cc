// Tests for the config part of `/config_dump`: ztunnel's rendering (sorted lists, endpoints
// filled in, empty optional fields skipped), `configStatus`, embedded sections, a round trip of
// `staticConfig` through the parser, and safety with invalid UTF-8 in error texts.

#include "src/config/dump.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "src/config/load.h"

namespace {

using json = nlohmann::json;

json dump_of(const zt::config::LoadResult& loaded, const zt::config::ReloadStats& stats,
             std::span<const zt::config::DumpSection> sections = {}) {
    std::string text =
            zt::config::dump_json(loaded.snapshot.get(), stats, "/etc/zt/config.json", sections);
    json parsed = json::parse(text, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    return parsed;
}

}  // namespace

TEST_CASE("config: the dump renders the snapshot as ztunnel does, sorted, endpoints filled in") {
    auto loaded = zt::config::load_file("tests/corpus/config/full.json");
    REQUIRE(loaded.snapshot);
    zt::config::ReloadStats stats;
    stats.success_total = 3;
    stats.failure_total = 1;
    stats.last_success_unix_ns = 1'700'000'000LL * zt::kNanosPerSecond;
    stats.applied_sha256 = loaded.sha256;
    stats.last_errors = {"workloads[0].uid: duplicate uid \"x\""};
    stats.unsupported = loaded.snapshot->config().unsupported;
    auto d = dump_of(loaded, stats);

    REQUIRE(d["workloads"].size() == 2);
    CHECK(d["workloads"][0]["uid"] == "Kubernetes//Pod/default/curl-1");  // Sorted by uid.
    CHECK(d["workloads"][0]["services"] == json::array({"default/curl.default.svc.cluster.local"}));
    CHECK(d["workloads"][0]["workloadIps"] == json::array({"198.18.1.12", "2001:db8::12"}));
    CHECK(d["workloads"][1].find("trustDomain") == d["workloads"][1].end());  // Empty: skipped.
    CHECK(d["workloads"][1]["serviceAccount"] == "default");
    CHECK(d["workloads"][1]["clusterId"] == "Kubernetes");

    REQUIRE(d["services"].size() == 1);
    const auto& eps = d["services"][0]["endpoints"];
    CHECK(eps.size() == 2);
    CHECK(eps["Kubernetes//Pod/default/srv"]["port"] == json({{"80", 9090}}));  // Explicit wins.
    CHECK(eps["Kubernetes//Pod/default/curl-1"]["status"] == "Healthy");
    CHECK(d["services"][0]["loadBalancer"]["mode"] == "Failover");

    REQUIRE(d["policies"].size() == 2);
    CHECK(d["policies"][0]["name"] == "allow-curl");  // default/allow-curl < default/deny-plaintext
    CHECK(d["policies"][1]["rules"][0][0][0]["notPrincipals"][0] ==
          json({{"Presence", json::array()}}));

    const auto& status = d["configStatus"];
    CHECK(status["ready"] == true);
    CHECK(status["path"] == "/etc/zt/config.json");
    CHECK(status["sha256"] == loaded.sha256);
    CHECK(status["reloads"]["success"] == 3);
    CHECK(status["reloads"]["failure"] == 1);
    CHECK(status["lastSuccessTime"] == "2023-11-14T22:13:20Z");
    CHECK(status["lastFailureTime"].is_null());
    CHECK(status["lastErrors"][0] == "workloads[0].uid: duplicate uid \"x\"");
    CHECK(status["unsupported"].size() == 4);
    CHECK(d["stagedServices"].empty());
}

TEST_CASE("config: staticConfig round-trips through the parser unchanged") {
    for (const char* file : {"tests/corpus/config/full.json", "tests/fixtures/localhost.json"}) {
        CAPTURE(file);
        auto first = zt::config::load_file(file);
        REQUIRE(first.snapshot);
        std::string once = zt::config::static_config_json(first.snapshot->config());
        auto second = zt::config::load_text(once);
        for (const auto& e : second.errors) {
            MESSAGE(e);
        }
        REQUIRE(second.snapshot);
        CHECK(zt::config::static_config_json(second.snapshot->config()) == once);
        CHECK(second.snapshot->workloads().size() == first.snapshot->workloads().size());
        CHECK(second.snapshot->policies().size() == first.snapshot->policies().size());
    }
}

TEST_CASE("config: the dump without a snapshot says not ready and embeds other sections") {
    zt::config::LoadResult none;
    zt::config::ReloadStats stats;
    stats.failure_total = 2;
    // A shortened quote can cut a UTF-8 character; the dump must not abort on it.
    stats.last_errors = {"(file): parse error: last read: '\xC3'"};
    const zt::config::DumpSection sections[] = {{"version", R"({"version": "0.1.0"})"},
                                                {"certificates", "not json"}};
    auto d = dump_of(none, stats, sections);
    CHECK(d["configStatus"]["ready"] == false);
    CHECK(d["workloads"].empty());
    CHECK(d["staticConfig"]["workloads"].empty());
    CHECK(d["version"]["version"] == "0.1.0");
    CHECK(d["certificates"]["error"] == "invalid JSON from certificates");
    CHECK(d["configStatus"]["lastErrors"][0].get<std::string>().ends_with("'\xEF\xBF\xBD'"));
}
