#pragma once

// What the proxy records about one connection for Istio's metrics and ztunnel's access log,
// built from the snapshot's workloads and services at the moment the connection is decided
// (ztunnel's ConnectionOpen / CommonTrafficLabels, istio/ztunnel src/proxy/metrics.rs). The
// strings are copied, so a record outlives the snapshot it was made from.

#include <optional>
#include <string>

#include "certs/identity.h"
#include "src/state/net.h"
#include "src/state/snapshot.h"
#include "src/telemetry/access_log.h"
#include "src/telemetry/traffic_metrics.h"

namespace zt::proxy {

// ConnectionParties names the two ends of a connection as the snapshot knows them; any may be null.
struct ConnectionParties {
    const state::Workload* source = nullptr;
    const state::Workload* destination = nullptr;
    const state::Service* service = nullptr;
    // derived_source_identity is the TLS-verified peer identity (inbound HBONE) or our own
    // identity (outbound HBONE); it is the only source of `source_principal`.
    std::optional<certs::Identity> tls_source_identity;
    bool mutual_tls = false;
};

// traffic_labels fills ztunnel's CommonTrafficLabels for `parties`.
telemetry::TrafficLabels traffic_labels(telemetry::Reporter reporter,
                                        const ConnectionParties& parties,
                                        std::string_view default_trust_domain);

// connection_log fills the access-log record: `src_addr`, `dst_addr` (the L4 next hop) and
// `hbone_addr` (the CONNECT authority, empty for plain TCP) plus the names from `parties`.
telemetry::ConnectionLog connection_log(telemetry::Direction direction,
                                        const ConnectionParties& parties,
                                        const state::SocketAddr& src_addr,
                                        const state::SocketAddr& dst_addr,
                                        std::string_view hbone_addr,
                                        std::string_view default_trust_domain);

// guess_inbound_service is ztunnel's guess_inbound_service: the first of `workload`'s services
// whose target port for some service port (the endpoint's own mapping first) equals `port`.
const state::Service* guess_inbound_service(const state::Snapshot& snapshot,
                                            const state::Workload& workload, uint16_t port);

}  // namespace zt::proxy
