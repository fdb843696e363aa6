#pragma once

// ProxiedConnection is one application TCP connection ztunnel proxies, as the access log and
// Istio's metrics describe it: who and where, when it opened, its bytes, and why it ended. It is
// opened once the path is decided (counted opened, `connection opened` logged) and finished
// exactly once (`connection complete` logged with ztunnel's error text, counted closed). The
// transport that carries it is a splice relay (plaintext paths) or a `Tunnel` (HBONE paths).
// A connection refused before it could be recorded is reported by `refuse_connection`
// (`connection failed`).
//
// This file is the edge where close causes become ztunnel's strings and flags.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/proxy/close_cause.h"
#include "src/proxy/connection_labels.h"
#include "src/proxy/owned_set.h"
#include "src/proxy/rbac.h"
#include "src/telemetry/access_log.h"
#include "src/telemetry/traffic_metrics.h"
#include "uring/splice_relay.h"

namespace zt::proxy {

class Tunnel;
class WorkerContext;
struct Pod;

// ProxyPath is the path a connection takes through ztunnel.
enum class ProxyPath : uint8_t {
    outbound_tcp,       // 15001 -> plain TCP (a TCP workload, or passthrough).
    outbound_hbone,     // 15001 -> HBONE to the destination's ztunnel.
    inbound_plaintext,  // 15006 -> the pod's application.
    inbound_hbone,      // 15008 -> the pod's application.
};

std::string_view to_string(ProxyPath path);

struct ProxiedConnection : OwnedSet<ProxiedConnection>::Member {
    Pod* pod = nullptr;
    ProxyPath path = ProxyPath::outbound_tcp;
    uring::RelayId relay = 0;  // Plaintext paths: the relay carrying it, once it started.
    Tunnel* tunnel = nullptr;  // HBONE paths: the tunnel carrying it.
    int64_t start_ns = 0;
    std::string original_dst;     // For `/config_dump`: see `ConnectionSummary`.
    bool policy_tracked = false;  // Inbound: judged again by RBAC after each config change.
    RbacConnection rbac;          // What RBAC judges.
    telemetry::ConnectionLog log;
    telemetry::ConnectionMetrics metrics;
    // imposed is set when ztunnel ends the connection on purpose (policy change, pod removed,
    // drain): it wins over whatever the transport reports as the connection goes.
    CloseCause imposed;

    bool inbound() const {
        return path == ProxyPath::inbound_plaintext || path == ProxyPath::inbound_hbone;
    }

    bool hbone() const {
        return path == ProxyPath::outbound_hbone || path == ProxyPath::inbound_hbone;
    }
};

// open_connection makes `pod`'s record of a connection, counts it opened and logs `connection
// opened`. `src` and `dst` are the access log's addresses, `hbone_addr` the CONNECT authority
// (empty on plaintext paths).
ProxiedConnection& open_connection(WorkerContext& context, Pod& pod, ProxyPath path,
                                   const ConnectionParties& parties, const state::SocketAddr& src,
                                   const state::SocketAddr& dst, std::string_view hbone_addr,
                                   std::string original_dst);

// finish_connection reports `connection` ended by `cause` (its imposed cause wins): the bytes,
// `connection complete` with ztunnel's error text, closed (and failed, by the cause's flag). It
// then frees the record.
void finish_connection(WorkerContext& context, ProxiedConnection& connection,
                       const CloseCause& cause);

// refuse_connection reports a connection refused before it was recorded: `connection failed`
// with ztunnel's error text, counted in `ztunnel_connections_refused_total`.
void refuse_connection(WorkerContext& context, const state::SocketAddr& src,
                       const state::SocketAddr& dst, telemetry::Direction direction,
                       const CloseCause& cause);

}  // namespace zt::proxy
