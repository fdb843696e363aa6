#!/usr/bin/env bash
# abort_cleanup.sh: aborted connections release everything (docs/contract.md §5: RST maps to RST_STREAM
# and back). 1,000 connections from the captured client on node 1 to the captured server on
# node 2 each send 128 KiB, check the first half of the echo, then reset (SO_LINGER 0), 16 at a
# time. Afterwards: no connection is left established in either pod (the application's side
# and ztunnel's sockets inside the pods), each ztunnel counted 1,000 opened and as many closed,
# and the fds are back to the baseline plus the pooled HBONE connections.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up aborts

n=1000
fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)
started=$SECONDS
out=$(zt_in "$(zt_ns_pod 1 client)" timeout 90 /usr/bin/python3 "$here_mesh/tests/peers/load_peer.py" \
    --connect 198.18.2.2:8080 --tunnels 0 --short 0 --aborts "$n" --short-bytes 131072 \
    --concurrency 16 --seed "$RANDOM") || mesh_fail "aborts: $out"
echo "aborts: $out ($((SECONDS - started)) s)"

established() { # NODE POD FILTER
    zt_in "$(zt_ns_pod "$1" "$2")" ss -Htn state established "$3" | wc -l
}
left_server=0
left_client=0
for i in $(seq 100); do
    left_server=$(established 2 server '( sport = :8080 or dport = :8080 )')
    left_client=$(established 1 client '( dport = :8080 or sport = :15001 )')
    [ "$left_server" = 0 ] && [ "$left_client" = 0 ] && break
    sleep 0.1
done
[ "$left_server" = 0 ] || mesh_fail "$left_server connections left established in the server pod"
[ "$left_client" = 0 ] || mesh_fail "$left_client connections left established in the client pod"

mesh_expect_counted "$n"

pooled1=$(zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l)
pooled2=$(zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l)
after1=$fds1
after2=$fds2
for i in $(seq 50); do
    after1=$(mesh_fds 1)
    after2=$(mesh_fds 2)
    [ "$after1" -le $((fds1 + pooled1)) ] && [ "$after2" -le $((fds2 + pooled2)) ] && break
    sleep 0.1
done
echo "fds: node1 $fds1 -> $after1 ($pooled1 pooled), node2 $fds2 -> $after2 ($pooled2 pooled)"
[ "$after1" -le $((fds1 + pooled1)) ] || mesh_fail "node1 leaked fds: $fds1 -> $after1 with $pooled1 pooled"
[ "$after2" -le $((fds2 + pooled2)) ] || mesh_fail "node2 leaked fds: $fds2 -> $after2 with $pooled2 pooled"
# The pool still works after all those resets.
out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "after the aborts: $out"
echo "abort cleanup: ok"
