// Tests of the agent's reading of ztunnel's `/pods` answer.

#include "src/config/pods_status.h"

#include <doctest/doctest.h>

using zt::config::parse_pods_status;

TEST_CASE("pods_status: ztunnel's /pods answer is read field by field") {
    auto status = parse_pods_status(R"({"config": {"sha256": "ab12", "generation": 7},
        "pods": [{"uid": "Kubernetes//Pod/default/client", "netns": "/var/run/ztunnel/netns/u1",
                  "state": "up", "listeners": true, "workloadKnown": false, "error": "",
                  "sha256": "ab12", "extra": 1},
                 {"uid": "Kubernetes//Pod/default/server", "state": "failed",
                  "error": "netns: not a network namespace"}]})");
    REQUIRE(status.has_value());
    CHECK(status->config_sha256 == "ab12");
    CHECK(status->generation == 7);
    REQUIRE(status->pods.size() == 2);
    CHECK(status->pods[0].uid == "Kubernetes//Pod/default/client");
    CHECK(status->pods[0].listeners);
    CHECK_FALSE(status->pods[0].workload_known);
    CHECK(status->pods[0].sha256 == "ab12");
    CHECK(status->pods[1].state == "failed");
    CHECK_FALSE(status->pods[1].listeners);
    CHECK(status->pods[1].error == "netns: not a network namespace");
}

TEST_CASE("pods_status: a body that is not the /pods shape is an error, not an exception") {
    CHECK_FALSE(parse_pods_status("").has_value());
    CHECK_FALSE(parse_pods_status("{\"pods\": 3}").has_value());
    CHECK_FALSE(parse_pods_status("{\"pods\": [1]}").has_value());
    CHECK_FALSE(parse_pods_status("[]").has_value());
    CHECK(parse_pods_status("{\"pods\": [], \"config\": \"x\"}").has_value());
}
