#!/usr/bin/env bash
# proxy_pod_listener_retry.sh: a pod whose listeners cannot open is retried with backoff. Node 1's
# ztunnel is restarted while another process in pod client2's namespace holds port 15006 (bound
# on [::] without SO_REUSEPORT, so ztunnel's bind fails with EADDRINUSE). Meanwhile: the failure
# is logged with its retry, readiness answers 500 naming the pod, and the other pod (client)
# works. Once the port is freed, the next retry (at most 16 s later) opens all of client2's
# listeners without any config change: readiness passes and client2's traffic flows again.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up lretry

client2_ns=$(zt_ns_pod 1 client2)
kill "$MESH_ZT1_PID"
wait "$MESH_ZT1_PID" 2>/dev/null || true
zt_bg "$client2_ns" "$MESH_WORK/holder.out" /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 15006))
s.listen(1)
print("holding 15006", flush=True)
time.sleep(120)'
holder_pid=$ZT_BG_LAST
zt_wait_listen "$client2_ns" 15006 10 || mesh_fail "the holder is not listening"

mesh_zt_start 1
mesh_wait_log 1 'cannot open pod listener.*client2.*Address already in use.*retry_in_ms=' ||
    mesh_fail "the failed listener was not logged with its retry"
named=
for i in $(seq 50); do
    ready=$(zt_in "$(zt_ns_node 1)" curl -s -w ' %{http_code}' http://127.0.0.1:15021/healthz/ready)
    case $ready in
        *'pod c1//v1/Pod/default/client2'*' 500') named=1; break ;;
    esac
    sleep 0.1
done
[ -n "$named" ] || mesh_fail "readiness does not name the failed pod: $ready"
# The other pod is not held back by it.
for i in $(seq 50); do zt_wait_listen "$(zt_ns_pod 1 client)" 15001 1 && break; done
out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "pod client while client2 failed: $out"
retries=$(grep -c 'cannot open pod listener.*client2' "$MESH_WORK/zt1.log" || true)

kill "$holder_pid"
wait "$holder_pid" 2>/dev/null || true
freed=$SECONDS
mesh_wait_log 1 'pod listeners up.*client2' 20 || mesh_fail "client2 was not retried after the port was freed"
took=$((SECONDS - freed))
mesh_wait_ready 1 || mesh_fail "not ready after the retry"
out=$(mesh_xfer 1 client2 198.18.2.2:8080 65536) || mesh_fail "pod client2 after the retry: $out"
echo "listener retried ($retries failure(s) logged before the port was freed), up ${took}s after it was"
echo "proxy_pod_listener_retry: ok"
