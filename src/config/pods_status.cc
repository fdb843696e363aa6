// pods_status.cc reads ztunnel's `/pods` JSON for the agent with nlohmann's non-throwing calls
// only (`parse(..., false)`, typed `value` lookups after type checks): a malformed body is an
// error value, never an exception.

#include "src/config/pods_status.h"

#include <nlohmann/json.hpp>

namespace zt::config {

namespace {

using json = nlohmann::json;

std::string string_at(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool bool_at(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

Result<PodsStatus> parse_pods_status(std::string_view body) {
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return fail(Errc::parse);
    }
    PodsStatus status;
    auto config = parsed.find("config");
    if (config != parsed.end() && config->is_object()) {
        status.config_sha256 = string_at(*config, "sha256");
        auto generation = config->find("generation");
        if (generation != config->end() && generation->is_number_unsigned()) {
            status.generation = generation->get<uint64_t>();
        }
    }
    auto pods = parsed.find("pods");
    if (pods == parsed.end() || !pods->is_array()) {
        return fail(Errc::parse);
    }
    for (const json& pod : *pods) {
        if (!pod.is_object()) {
            return fail(Errc::parse);
        }
        PodStatus p;
        p.uid = string_at(pod, "uid");
        p.netns = string_at(pod, "netns");
        p.state = string_at(pod, "state");
        p.listeners = bool_at(pod, "listeners");
        p.workload_known = bool_at(pod, "workloadKnown");
        p.error = string_at(pod, "error");
        p.sha256 = string_at(pod, "sha256");
        status.pods.push_back(std::move(p));
    }
    return status;
}

}  // namespace zt::config
