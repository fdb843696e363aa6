// Unit tests of `/pods` (pods_view.h): each pod's state, `listeners` only when every worker
// listens, the pod's sha256 following the oldest snapshot the workers answered for, and removed
// pods draining until the workers freed them.

#include "src/config/pods_view.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace {

using zt::config::PodsAppliedPod;
using zt::config::PodsInputs;
using zt::config::PodsWorkerView;
using json = nlohmann::json;

// inputs is generation 2 applied (sha "b"), generation 1 was "a"; one pod with WorkloadInfo and
// no workload, seen by two workers as given.
PodsInputs inputs(PodsWorkerView first, PodsWorkerView second) {
    PodsInputs in;
    in.sha256 = "b";
    in.generation = 2;
    in.generations = {{1, "a"}, {2, "b"}};
    in.pods.push_back(PodsAppliedPod{"u1", "/run/netns/p1", false, true});
    in.workers = {{std::move(first)}, {std::move(second)}};
    return in;
}

PodsWorkerView view(uint64_t generation, bool listening) {
    PodsWorkerView out;
    out.uid = "u1";
    out.generation = generation;
    out.listening = listening;
    return out;
}

json pod_of(const PodsInputs& in, size_t index = 0) {
    json doc = json::parse(zt::config::render_pods(in));
    return doc["pods"][index];
}

}  // namespace

TEST_CASE("pods_view: up with listeners only when every worker listens") {
    json doc = json::parse(zt::config::render_pods(inputs(view(2, true), view(2, true))));
    CHECK(doc["config"]["sha256"] == "b");
    CHECK(doc["config"]["generation"] == 2);
    json pod = doc["pods"][0];
    CHECK(pod["uid"] == "u1");
    CHECK(pod["netns"] == "/run/netns/p1");
    CHECK(pod["state"] == "up");
    CHECK(pod["listeners"] == true);
    CHECK(pod["workloadKnown"] == false);
    CHECK(pod["error"] == "");
    CHECK(pod["sha256"] == "b");

    json half = pod_of(inputs(view(2, true), view(2, false)));
    CHECK(half["state"] == "pending");
    CHECK(half["listeners"] == false);
}

TEST_CASE("pods_view: a pod's sha256 advances only once every worker applied the snapshot") {
    json pod = pod_of(inputs(view(2, true), view(1, true)));
    CHECK(pod["listeners"] == true);
    CHECK(pod["sha256"] == "a");
    // A worker that has not reconciled a snapshot listing the pod: not listening anywhere yet.
    PodsInputs missing = inputs(view(2, true), view(2, true));
    missing.workers[1].clear();
    json waiting = pod_of(missing);
    CHECK(waiting["state"] == "pending");
    CHECK(waiting["listeners"] == false);
    CHECK(waiting["error"] == "waiting for the workers to apply the config");
}

TEST_CASE("pods_view: failed and pending say why") {
    PodsWorkerView failed = view(2, false);
    failed.failed = true;
    failed.error = "listen on port 15001: Address already in use (os error 98)";
    json pod = pod_of(inputs(view(2, true), failed));
    CHECK(pod["state"] == "failed");
    CHECK(pod["listeners"] == false);
    CHECK(pod["error"] == "listen on port 15001: Address already in use (os error 98)");

    PodsInputs bare = inputs(view(2, false), view(2, false));
    bare.pods[0].has_info = false;
    bare.workers = {{}, {}};
    json pending = pod_of(bare);
    CHECK(pending["state"] == "pending");
    CHECK(pending["listeners"] == false);
    CHECK(pending["error"].get<std::string>().starts_with("unknown workload"));
}

TEST_CASE("pods_view: a removed pod drains until the workers freed it, then disappears") {
    PodsInputs in = inputs(view(1, true), view(1, true));
    in.pods.clear();  // Generation 2 removed it; the workers still hold it.
    json pod = pod_of(in);
    CHECK(pod["uid"] == "u1");
    CHECK(pod["state"] == "draining");
    CHECK(pod["listeners"] == false);
    in.workers = {{}, {}};
    json doc = json::parse(zt::config::render_pods(in));
    CHECK(doc["pods"].empty());
    // Shutting down: every pod drains.
    PodsInputs stopping = inputs(view(2, true), view(2, true));
    stopping.draining = true;
    CHECK(pod_of(stopping)["state"] == "draining");
}
