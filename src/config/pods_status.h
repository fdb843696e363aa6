#pragma once

// PodsStatus is ztunnel's `GET /pods` answer (README.md, "Admin endpoints"), as the agent reads
// it to decide when a ZDS add may be acked: the config snapshot applied and, per pod, whether
// its listeners are open in every worker and for which config content. Parsing lives here
// because src/config/ is the one place that reads JSON.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zt/result.h"

namespace zt::config {

struct PodStatus {
    std::string uid;
    std::string netns;
    std::string state;  // up | pending | failed | draining
    bool listeners = false;
    bool workload_known = false;
    std::string error;
    std::string sha256;
};

struct PodsStatus {
    std::string config_sha256;
    uint64_t generation = 0;
    std::vector<PodStatus> pods;
};

// parse_pods_status parses the body of `GET /pods`. Unknown keys are ignored; a body that is not
// JSON, or whose `pods` is not a list of objects, fails with `Errc::parse`.
Result<PodsStatus> parse_pods_status(std::string_view body);

}  // namespace zt::config
