#!/usr/bin/env bash
# ops_metrics.sh: after one known transfer (client on node 1 → server on node 2 over HBONE,
# 1,000,000 bytes each way), both ztunnels report exactly the series ztunnel would: every label of
# CommonTrafficLabels in ztunnel's order with `unknown` for what the config does not say, Istio's
# byte directions (received = client → server), opened == closed == 1, no failure series; and
# each access-log line carries ztunnel's tokens in ztunnel's order (Kiali greps them).
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up metrics

out=$(mesh_xfer 1 client 198.18.2.2:8080 1000000) || mesh_fail "transfer: $out"
mesh_wait_log 1 'connection complete.*direction="outbound"' || mesh_fail "node1 log"
mesh_wait_log 2 'connection complete.*direction="inbound"' || mesh_fail "node2 log"

labels() { # reporter service-labels
    printf '%s' "reporter=\"$1\",source_workload=\"unknown\",source_canonical_service=\"unknown\",source_canonical_revision=\"unknown\",source_workload_namespace=\"default\",source_principal=\"$3\",source_app=\"unknown\",source_version=\"unknown\",source_cluster=\"Kubernetes\",$2,destination_workload=\"unknown\",destination_canonical_service=\"unknown\",destination_canonical_revision=\"unknown\",destination_workload_namespace=\"default\",destination_principal=\"spiffe://cluster.local/ns/default/sa/server\",destination_app=\"unknown\",destination_version=\"unknown\",destination_cluster=\"Kubernetes\",request_protocol=\"tcp\",response_flags=\"-\",connection_security_policy=\"mutual_tls\",source_region=\"unknown\",source_zone=\"unknown\",destination_region=\"unknown\",destination_zone=\"unknown\""
}
client_id=spiffe://cluster.local/ns/default/sa/client
# Outbound to a pod IP: no destination service. Inbound: ztunnel guesses the service by port.
src_labels=$(labels source 'destination_service="unknown",destination_service_namespace="unknown",destination_service_name="unknown"' "$client_id")
dst_labels=$(labels destination 'destination_service="server.default.svc.cluster.local",destination_service_namespace="default",destination_service_name="server"' "$client_id")
check() { # node labels
    local m
    m=$(mesh_metrics "$1")
    for line in "istio_tcp_connections_opened_total{$2} 1" "istio_tcp_connections_closed_total{$2} 1" \
        "istio_tcp_received_bytes_total{$2} 1000000" "istio_tcp_sent_bytes_total{$2} 1000000"; do
        echo "$m" | grep >/dev/null -xF "$line" || mesh_fail "node$1 lacks: $line
$(echo "$m" | grep '^istio_tcp')"
    done
    [ "$(echo "$m" | grep -c '^istio_tcp_connections_opened_total{')" = 1 ] || mesh_fail "node$1: extra series"
    if echo "$m" | grep >/dev/null '^istio_tcp_connections_failed_total{'; then
        mesh_fail "node$1 counted a failure"
    fi
}
check 1 "$src_labels"
check 2 "$dst_labels"

tokens='src.addr=198.18.1.2:[0-9]+ src.workload="client" src.namespace="default" src.identity="spiffe://cluster.local/ns/default/sa/client" src.cluster="Kubernetes" dst.addr=DSTADDR dst.hbone_addr=198.18.2.2:8080 (dst.service="server.default.svc.cluster.local" )?dst.workload="server" dst.namespace="default" dst.identity="spiffe://cluster.local/ns/default/sa/server" dst.cluster="Kubernetes" direction="DIR" bytes_sent=1000000 bytes_recv=1000000 duration="[0-9]+ms"$'
t1=${tokens/DSTADDR/198.18.2.2:15008}
grep -Eq "	info	access	connection complete	${t1/DIR/outbound}" "$MESH_WORK/zt1.log" ||
    mesh_fail "node1 access log tokens: $(grep 'connection complete' "$MESH_WORK/zt1.log")"
# Inbound too, as ztunnel logs it: dst.addr is the pod's HBONE address the client connected to.
t2=${tokens/DSTADDR/198.18.2.2:15008}
grep -Eq "	info	access	connection complete	${t2/DIR/inbound}" "$MESH_WORK/zt2.log" ||
    mesh_fail "node2 access log tokens: $(grep 'connection complete' "$MESH_WORK/zt2.log")"
echo "metrics and access logs: ok"
