// lint.cc finds combinations in a valid config that cannot work as written (see lint.h). It reads
// a built snapshot and only reports: it never changes the config or rejects it. Each check is
// linear in the objects it looks at, so a large file costs no more than its indexing.

#include "src/config/lint.h"

#include <algorithm>
#include <unordered_set>

#include "src/state/locality.h"

namespace zt::config {

namespace {

using state::quote_text;

std::string at(std::string_view list, size_t index) {
    return std::string(list) + "[" + std::to_string(index) + "]";
}

std::string preference_list(const std::vector<state::RoutingPreference>& preferences) {
    std::string out = "[";
    for (size_t i = 0; i < preferences.size(); ++i) {
        out += (i ? ", " : "");
        out.append(state::to_string(preferences[i]));
    }
    return out + "]";
}

std::string describe(const state::GatewayAddress& gateway) {
    if (gateway.address) {
        return quote_text(gateway.address->to_string());
    }
    return gateway.host ? quote_text(gateway.host->to_string()) : std::string("\"\"");
}

// Lint collects warnings up to the cap and counts the rest.
class Lint {
public:
    explicit Lint(const state::Snapshot& snapshot) : snapshot_(snapshot) {}

    void warn(std::string warning) {
        if (warnings_.size() < kMaxLintWarnings) {
            warnings_.push_back(std::move(warning));
        } else {
            ++dropped_;
        }
    }

    void check_gateway(const std::string& path, const state::GatewayAddress& gateway) {
        state::AddressMatch match = snapshot_.find_gateway(gateway);
        if (match.workload == nullptr && match.service == nullptr) {
            warn(path + ": " + describe(gateway) +
                 " names no workload or service of this config; connections that need this "
                 "waypoint fail (unknown waypoint)");
        }
        if (gateway.hbone_mtls_port == 0) {
            warn(path + ".hboneMtlsPort: 0 is not a port anything listens on");
        }
    }

    void check_waypoints(size_t index, const state::Service& service) {
        std::string path = at("services", index);
        if (service.waypoint) {
            check_gateway(path + ".waypoint", *service.waypoint);
        }
        uint64_t total = 0;
        for (size_t k = 0; k < service.weighted_waypoints.size(); ++k) {
            check_gateway(path + ".weightedWaypoints[" + std::to_string(k) + "].destination",
                          service.weighted_waypoints[k].destination);
            total += service.weighted_waypoints[k].weight;
        }
        if (!service.weighted_waypoints.empty() && total == 0 && !service.waypoint) {
            warn(path +
                 ".weightedWaypoints: every weight is 0 and there is no waypoint, so "
                 "traffic to this service uses no waypoint at all");
        }
    }

    void check_load_balancer(size_t index, const state::Service& service,
                             const std::vector<const state::Workload*>& clients) {
        if (!service.load_balancer) {
            return;
        }
        const state::LoadBalancer& balancer = *service.load_balancer;
        std::string path = at("services", index) + ".loadBalancer";
        const auto& preferences = balancer.routing_preferences;
        bool ranked = balancer.mode == state::LoadBalancerMode::strict ||
                      balancer.mode == state::LoadBalancerMode::failover;
        if (!ranked) {
            if (!preferences.empty()) {
                warn(path + ".routingPreferences: ignored in mode " +
                     std::string(state::to_string(balancer.mode)));
            }
            return;
        }
        for (size_t i = 0; i < preferences.size(); ++i) {
            if (std::find(preferences.begin(), preferences.begin() + ptrdiff_t(i),
                          preferences[i]) != preferences.begin() + ptrdiff_t(i)) {
                warn(path + ".routingPreferences[" + std::to_string(i) +
                     "]: " + std::string(state::to_string(preferences[i])) + " appears twice");
            }
        }
        if (balancer.mode == state::LoadBalancerMode::strict && !preferences.empty()) {
            check_strict(index, service, clients);
        }
    }

    // check_strict warns when some clients share no endpoint's scopes on every preference: a
    // key of the scope values per endpoint, then one lookup per client.
    void check_strict(size_t index, const state::Service& service,
                      const std::vector<const state::Workload*>& clients) {
        auto endpoints = snapshot_.endpoints(service);
        if (endpoints.empty()) {
            return;  // No endpoint at all fails for everyone; not a locality combination.
        }
        const auto& preferences = service.load_balancer->routing_preferences;
        auto key_of = [&](const state::Workload& workload) {
            std::string key;
            for (state::RoutingPreference preference : preferences) {
                key.append(state::scope_of(preference, workload));
                key.push_back('\0');
            }
            return key;
        };
        std::unordered_set<std::string> reachable;
        for (const state::Endpoint& endpoint : endpoints) {
            reachable.insert(key_of(*endpoint.workload));
        }
        size_t stranded = 0;
        std::string examples;
        for (const state::Workload* client : clients) {
            if (reachable.contains(key_of(*client))) {
                continue;
            }
            if (++stranded <= 3) {
                examples += (examples.empty() ? "" : ", ") + quote_text(client->uid);
            }
        }
        if (stranded == 0) {
            return;
        }
        warn(at("services", index) + ".loadBalancer: Strict " + preference_list(preferences) +
             ": no endpoint matches " + std::to_string(stranded) + " of " +
             std::to_string(clients.size()) + " client workloads (" + examples +
             (stranded > 3 ? ", ..." : "") +
             "); their connections to it fail with no healthy upstream");
    }

    std::vector<std::string> take() {
        if (dropped_ > 0) {
            warnings_.push_back("(file): " + std::to_string(dropped_) +
                                " more combination warnings not shown");
        }
        return std::move(warnings_);
    }

private:
    const state::Snapshot& snapshot_;
    std::vector<std::string> warnings_;
    size_t dropped_ = 0;
};

// clients returns the workloads whose connections this node routes: those of `pods`, or every
// workload when the file lists no pods (a mesh-wide file).
std::vector<const state::Workload*> clients(const state::Snapshot& snapshot) {
    std::vector<const state::Workload*> out;
    for (const state::Pod& pod : snapshot.pods()) {
        if (const state::Workload* workload = snapshot.workload_by_uid(pod.uid)) {
            out.push_back(workload);
        }
    }
    if (snapshot.pods().empty()) {
        for (const state::Workload& workload : snapshot.workloads()) {
            out.push_back(&workload);
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> combination_warnings(const state::Snapshot& snapshot) {
    Lint lint(snapshot);
    std::vector<const state::Workload*> client_workloads = clients(snapshot);
    auto workloads = snapshot.workloads();
    for (size_t i = 0; i < workloads.size(); ++i) {
        if (workloads[i].waypoint) {
            lint.check_gateway(at("workloads", i) + ".waypoint", *workloads[i].waypoint);
        }
    }
    auto services = snapshot.services();
    for (size_t i = 0; i < services.size(); ++i) {
        lint.check_waypoints(i, services[i]);
        lint.check_load_balancer(i, services[i], client_workloads);
    }
    return lint.take();
}

}  // namespace zt::config
