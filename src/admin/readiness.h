#pragma once

// Readiness tracks the named tasks that must finish before ztunnel reports ready, as ztunnel's
// readiness tasks do (`state manager`, `proxy`, ...). `GET :15021/healthz/ready` answers
// `200 ready` when nothing is pending, else `500 not ready, pending: <sorted, comma-separated
// names>`. Drain adds a `draining` task so the probe fails at once when shutdown starts.
// Thread-safe: any thread may block or release.

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace zt::admin {

class Readiness {
public:
    // block adds one pending count for `name`. A name blocked twice needs two releases.
    void block(std::string_view name);

    // release removes one pending count for `name`; releasing a name that is not pending does
    // nothing (and returns false), so a double release cannot make another task look done.
    bool release(std::string_view name);

    // start_draining marks the process as shutting down: readiness fails from now on.
    void start_draining() { block("draining"); }

    // pending returns the names still pending, sorted, each once.
    std::vector<std::string> pending() const;

    bool ready() const;

    // probe_body returns the readiness response body (`ready\n` or `not ready, pending: ...\n`)
    // and sets `status` to 200 or 500.
    std::string probe_body(int& status) const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, int, std::less<>> pending_;
};

}  // namespace zt::admin
