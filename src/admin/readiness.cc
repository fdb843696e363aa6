// readiness.cc keeps the set of pending readiness tasks behind a mutex. It is touched at
// startup, on config loads and on probes, never per connection.

#include "src/admin/readiness.h"

namespace zt::admin {

void Readiness::block(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto found = pending_.find(name);
    if (found == pending_.end()) {
        pending_.emplace(std::string(name), 1);
    } else {
        ++found->second;
    }
}

bool Readiness::release(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto found = pending_.find(name);
    if (found == pending_.end()) {
        return false;
    }
    if (--found->second == 0) {
        pending_.erase(found);
    }
    return true;
}

std::vector<std::string> Readiness::pending() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    names.reserve(pending_.size());
    for (const auto& entry : pending_) {
        names.push_back(entry.first);  // std::map iterates sorted
    }
    return names;
}

bool Readiness::ready() const {
    std::lock_guard lock(mutex_);
    return pending_.empty();
}

std::string Readiness::probe_body(int& status) const {
    std::vector<std::string> names = pending();
    if (names.empty()) {
        status = 200;
        return "ready\n";
    }
    status = 500;
    std::string body = "not ready, pending: ";
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) {
            body += ", ";
        }
        body += names[i];
    }
    body += '\n';
    return body;
}

}  // namespace zt::admin
