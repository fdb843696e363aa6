#!/usr/bin/env bash
# redirect-inpod.sh NETNS: installs inside one pod network namespace the capture rules Istio's CNI
# installs for ambient (shared) mode (docs/ztunnel-reference.md §12.1): mangle and nat chains
# ISTIO_PRERT/ISTIO_OUTPUT, ztunnel's packet mark 0x539, the connection mark 0x111 for the
# original-source return path, REDIRECT of outbound TCP to 15001 and inbound TCP to 15006 (15008
# untouched), DNS to 15053, and policy routing of 0x111-marked packets to table 100 (local). The
# same for IPv6 with ip6tables, with ::1 for 127.0.0.1 and Istio's IPv6 probe SNAT address.
# It is a test fixture: it only ever runs inside the namespace it is given, applies its rules with
# `iptables-restore --noflush` (the pod's other rules stay); run it once per namespace.
#
# Environment: ZT_IPTABLES=nft (default) or legacy selects Debian's iptables-nft or
# iptables-legacy; both were checked to work inside a netns on this kernel (6.18).
set -euo pipefail

ns=${1:?usage: redirect-inpod.sh NETNS}
backend=${ZT_IPTABLES:-nft}
case $backend in
    nft|legacy) ;;
    *) echo "redirect-inpod.sh: ZT_IPTABLES must be nft or legacy" >&2; exit 2 ;;
esac
if [ ! -e "/run/netns/$ns" ]; then
    echo "redirect-inpod.sh: no network namespace $ns" >&2
    exit 1
fi

in_ns() { ip netns exec "$ns" "$@"; }

# rules LOOPBACK PROBE_SNAT: the iptables-restore input for one family.
rules() {
    local lo=$1 probe=$2 udp_dns=$3
    cat <<RULES
*mangle
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
COMMIT
*nat
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A OUTPUT -j ISTIO_OUTPUT
-A PREROUTING -j ISTIO_PRERT
-A ISTIO_OUTPUT -d $probe -p tcp -m tcp -j ACCEPT
$udp_dns
-A ISTIO_OUTPUT ! -d $lo -p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d $lo -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d $lo -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
-A ISTIO_PRERT -s $probe -p tcp -m tcp -j ACCEPT
-A ISTIO_PRERT ! -d $lo -p tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006
COMMIT
RULES
}

udp_dns='-A ISTIO_OUTPUT ! -o lo -p udp -m mark ! --mark 0x539/0xfff -m udp --dport 53 -j REDIRECT --to-ports 15053'

# 169.254.7.127 is the kubelet probe SNAT address; fd16:9254:7127:1337:ffff:ffff:ffff:ffff is the
# IPv6 one istio-cni uses. Both are exempt both ways.
rules 127.0.0.1/32 169.254.7.127/32 "$udp_dns" | in_ns "iptables-$backend-restore" --noflush
rules ::1/128 fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128 "$udp_dns" |
    in_ns "ip6tables-$backend-restore" --noflush

in_ns ip route add local 0.0.0.0/0 dev lo table 100
in_ns ip rule add fwmark 0x111/0xfff pref 32764 lookup 100
in_ns ip -6 route add local ::/0 dev lo table 100
in_ns ip -6 rule add fwmark 0x111/0xfff pref 32764 lookup 100
