#pragma once

// ztunnel's access-log records (docs/ztunnel-reference.md §6.2, docs/ecosystem.md §3.3,
// docs/contract.md §8), target `access`, with exactly ztunnel's messages, field names and field
// order, because Kiali and operators grep for the tokens (`src.workload="…"`, `dst.service="…"`,
// `direction="…"`):
//
//   connection opened    debug  src.* dst.* direction
//   connection complete  info   src.* dst.* direction bytes_sent bytes_recv duration
//                        error  ... then error="<text>" when the connection failed
//   connection failed    warn   src.addr dst.addr direction error   (early deny)
//
// The proxy fills a plain `ConnectionLog`; these functions build the fields and hand them to
// `zt::log::write`, which queues them for the control thread.

#include <cstdint>
#include <string>
#include <string_view>

namespace zt::telemetry {

// Direction is the access log's `direction`: outbound for connections our local workload made,
// inbound for connections to it.
enum class Direction : uint8_t { outbound, inbound };

std::string_view to_string(Direction direction);

// ConnectionLog is what one access-log record says about a connection. Leave a string empty
// when unknown: the field is then omitted, as ztunnel omits absent values.
struct ConnectionLog {
    Direction direction = Direction::outbound;
    std::string src_addr;      // ip:port, rendered unquoted
    std::string src_workload;  // pod name, falling back to the canonical service
    std::string src_namespace;
    std::string src_identity;  // shown only when `mutual_tls`
    std::string src_cluster;
    std::string dst_addr;        // L4 next hop, e.g. pod:15008; unquoted
    std::string dst_hbone_addr;  // the CONNECT authority; unquoted
    std::string dst_service;
    std::string dst_workload;
    std::string dst_namespace;
    std::string dst_identity;  // shown only when `mutual_tls`
    std::string dst_cluster;
    bool mutual_tls = false;
    uint64_t request_bytes = 0;   // client→server
    uint64_t response_bytes = 0;  // server→client
};

// log_connection_opened writes `connection opened` at debug.
void log_connection_opened(const ConnectionLog& log);

// log_connection_complete writes `connection complete`: at info when `error` is empty, else at
// error with `error="<error>"` last. Bytes are un-flipped for the log, as ztunnel does: they are
// from the local workload's view (outbound `bytes_sent` = request bytes; inbound `bytes_sent` =
// response bytes). `duration_ns` renders as `duration="<N>ms"`.
void log_connection_complete(const ConnectionLog& log, int64_t duration_ns,
                             std::string_view error = {});

// log_connection_failed writes `connection failed` at warn for a connection refused before
// enough was known for a full record (and before any metric was counted).
void log_connection_failed(std::string_view src_addr, std::string_view dst_addr,
                           Direction direction, std::string_view error);

}  // namespace zt::telemetry
