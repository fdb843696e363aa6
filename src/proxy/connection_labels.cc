// connection_labels.cc turns the snapshot's view of a connection into metric labels and access-log
// fields exactly as ztunnel derives them: `*_workload` labels from `workloadName`, the log's
// `*.workload` from the pod name, `destination_principal` from the destination workload and
// `source_principal` only from a TLS identity.

#include "src/proxy/connection_labels.h"

namespace zt::proxy {

namespace {

std::string principal_of(const state::Workload& workload, std::string_view default_td) {
    return workload.identity(default_td);
}

}  // namespace

telemetry::TrafficLabels traffic_labels(telemetry::Reporter reporter,
                                        const ConnectionParties& parties,
                                        std::string_view default_trust_domain) {
    telemetry::TrafficLabels labels;
    labels.reporter = reporter;
    labels.connection_security_policy = parties.mutual_tls ? telemetry::SecurityPolicy::mutual_tls
                                                           : telemetry::SecurityPolicy::unknown;
    if (parties.tls_source_identity) {
        labels.source_principal = parties.tls_source_identity->to_string();
        labels.source_workload_namespace =
                std::string(parties.tls_source_identity->namespace_name());
    }
    if (const state::Workload* w = parties.source) {
        labels.source_workload = w->workload_name;
        labels.source_canonical_service = w->canonical_name;
        labels.source_canonical_revision = w->canonical_revision;
        labels.source_workload_namespace = w->namespace_;
        labels.source_app = w->canonical_name;
        labels.source_version = w->canonical_revision;
        labels.source_cluster = w->cluster_id;
        labels.with_locality = true;
        if (w->locality) {
            labels.source_region = w->locality->region;
            labels.source_zone = w->locality->zone;
        }
    }
    if (const state::Workload* w = parties.destination) {
        labels.destination_workload = w->workload_name;
        labels.destination_canonical_service = w->canonical_name;
        labels.destination_canonical_revision = w->canonical_revision;
        labels.destination_workload_namespace = w->namespace_;
        labels.destination_principal = principal_of(*w, default_trust_domain);
        labels.destination_app = w->canonical_name;
        labels.destination_version = w->canonical_revision;
        labels.destination_cluster = w->cluster_id;
        labels.with_locality = true;
        if (w->locality) {
            labels.destination_region = w->locality->region;
            labels.destination_zone = w->locality->zone;
        }
    }
    if (const state::Service* s = parties.service) {
        labels.destination_service = s->hostname;
        labels.destination_service_name = s->name;
        labels.destination_service_namespace = s->namespace_;
    }
    return labels;
}

telemetry::ConnectionLog connection_log(telemetry::Direction direction,
                                        const ConnectionParties& parties,
                                        const state::SocketAddr& src_addr,
                                        const state::SocketAddr& dst_addr,
                                        std::string_view hbone_addr,
                                        std::string_view default_trust_domain) {
    telemetry::ConnectionLog log;
    log.direction = direction;
    log.src_addr = src_addr.to_string();
    log.dst_addr = dst_addr.to_string();
    log.dst_hbone_addr = hbone_addr;
    log.mutual_tls = parties.mutual_tls;
    if (const state::Workload* w = parties.source) {
        log.src_workload = w->name.empty() ? w->canonical_name : w->name;
        log.src_namespace = w->namespace_;
        log.src_cluster = w->cluster_id;
    }
    if (parties.tls_source_identity) {
        log.src_identity = parties.tls_source_identity->to_string();
        if (log.src_namespace.empty()) {
            log.src_namespace = std::string(parties.tls_source_identity->namespace_name());
        }
    }
    if (const state::Workload* w = parties.destination) {
        log.dst_workload = w->name.empty() ? w->canonical_name : w->name;
        log.dst_namespace = w->namespace_;
        log.dst_cluster = w->cluster_id;
        if (parties.mutual_tls) {
            log.dst_identity = principal_of(*w, default_trust_domain);
        }
    }
    if (const state::Service* s = parties.service) {
        log.dst_service = s->hostname;
    }
    return log;
}

const state::Service* guess_inbound_service(const state::Snapshot& snapshot,
                                            const state::Workload& workload, uint16_t port) {
    for (const state::WorkloadService& entry : workload.services) {
        const state::Service* service =
                snapshot.service_by_key(entry.service.namespace_, entry.service.hostname);
        if (service == nullptr) {
            continue;
        }
        for (const auto& [service_port, target] : service->ports) {
            std::optional<uint16_t> endpoint_target = state::find_port(entry.ports, service_port);
            uint16_t effective = endpoint_target ? *endpoint_target : target;
            if (effective == port) {
                return service;
            }
        }
    }
    return nullptr;
}

}  // namespace zt::proxy
