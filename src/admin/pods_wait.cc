// pods_wait.cc parses the waiting form of `GET /pods` and decides when such a wait is over
// (pods_wait.h says why the rule is what it is). No state: the handler keeps the wait's start
// in the held request.

#include "src/admin/pods_wait.h"

#include <charconv>

#include "src/admin/http.h"

namespace zt::admin {

namespace {

bool is_sha256_hex(std::string_view text) {
    if (text.size() != 64) {
        return false;
    }
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

}  // namespace

PodsWaitQuery parse_pods_wait(std::string_view query) {
    PodsWaitQuery parsed;
    for (const auto& [key, value] : parse_query(query)) {
        if (key == "wait") {
            parsed.wait = true;
            parsed.sha256 = value;
            if (!is_sha256_hex(value)) {
                parsed.error =
                        "wait: expected the sha256 of a config file (64 lower-case hex "
                        "digits)";
            }
        } else if (key == "timeout_ms") {
            int64_t ms = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
            if (ec != std::errc() || end != value.data() + value.size() || ms < 0 ||
                ms > kPodsWaitMaxMs) {
                parsed.error = "timeout_ms: expected milliseconds from 0 to " +
                               std::to_string(kPodsWaitMaxMs);
            } else {
                parsed.timeout_ms = ms;
            }
        } else if (key == "pod") {
            if (value.empty()) {
                parsed.error = "pod: expected a pod's uid";
            } else if (parsed.pods.size() >= kPodsFilterMax) {
                parsed.error = "pod: at most " + std::to_string(kPodsFilterMax) + " pods";
            } else {
                parsed.pods.push_back(value);
            }
        }
    }
    return parsed;
}

bool pods_wait_over(const PodsProgress& now, std::string_view sha256, uint64_t attempts_at_start) {
    if (now.generations.empty()) {
        return false;  // Nothing applied yet: the first valid file ends the wait.
    }
    // The newest generation with that content: the same bytes may have been applied twice.
    for (auto it = now.generations.rbegin(); it != now.generations.rend(); ++it) {
        if (it->second == sha256) {
            return now.published >= it->first;
        }
    }
    if (now.reload_attempts > attempts_at_start) {
        return now.published >= now.generations.back().first;
    }
    return false;
}

}  // namespace zt::admin
