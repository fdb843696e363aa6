#!/usr/bin/env bash
# topology.sh up|down|status [TAG]: builds (or removes) docs/contract.md §9's two-node test topology by
# hand, for the demo and for poking at it interactively; tests build their own with lib.sh under
# their own tag. `up` makes the fabric, nodes 1 and 2, and on each node the pods `client`
# (198.18.N.2) and `server` (198.18.N.3); `down` removes every zt-TAG-* namespace, which is all
# that `up` made. The default tag is `topo`. It never touches anything outside zt-TAG-*.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh

cmd=${1:-}
tag=${2:-${ZT_TAG:-topo}}
zt_require_root
zt_init "$tag"

case $cmd in
    up)
        if [ -n "$(zt_list)" ]; then
            echo "topology.sh: namespaces for tag '$tag' exist already; run: $0 down $tag" >&2
            exit 1
        fi
        trap 'echo "topology.sh: up failed, removing what was made" >&2; zt_cleanup' ERR
        for n in 1 2; do
            zt_node_create "$n"
        done
        for n in 1 2; do
            zt_pod_create "$n" client 2
            zt_pod_create "$n" server 3
        done
        trap - ERR
        for ns in $(zt_list); do
            printf '%-28s %s\n' "$ns" \
                "$(ip -n "$ns" -br addr show | awk '$1 != "lo" {$2=""; print}' | tr -s ' ' |
                    tr '\n' ' ')"
        done
        ;;
    down)
        zt_cleanup
        ;;
    status)
        zt_list
        ;;
    *)
        echo "usage: $0 up|down|status [TAG]" >&2
        exit 2
        ;;
esac
