// locality.cc maps a routing preference to the workload field it compares. It holds no ranking
// rule: load balancing (src/proxy/route.cc) and the config lint decide what a match means.

#include "src/state/locality.h"

namespace zt::state {

std::string_view scope_of(RoutingPreference preference, const Workload& workload) {
    const Locality* locality = workload.locality ? &*workload.locality : nullptr;
    switch (preference) {
        case RoutingPreference::region:
            return locality ? std::string_view(locality->region) : std::string_view();
        case RoutingPreference::zone:
            return locality ? std::string_view(locality->zone) : std::string_view();
        case RoutingPreference::subzone:
            return locality ? std::string_view(locality->subzone) : std::string_view();
        case RoutingPreference::node:
            return workload.node;
        case RoutingPreference::cluster:
            return workload.cluster_id;
        case RoutingPreference::network:
            return workload.network;
    }
    return {};
}

}  // namespace zt::state
