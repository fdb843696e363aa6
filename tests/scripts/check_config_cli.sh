#!/usr/bin/env bash
# check_config_cli.sh drives `ztunnel check-config FILE` as an operator would (docs/contract.md §1): it
# accepts ztunnel's examples/localhost.yaml written as JSON with a one-line summary and exit 0,
# rejects each broken variant with exit 1 and a message naming the JSON path, accepts a file with
# waypoints and every load-balancer mode and warns where a combination cannot work, and exits 2
# on usage errors. Variants are made at run time from the fixture with Debian's python3. No network.
# timeout: 60
set -euo pipefail

BIN=${BUILD:-build}/ztunnel
PY=/usr/bin/python3
FIXTURE=tests/fixtures/localhost.json
[ -x "$BIN" ] || { echo "missing $BIN (run make)"; exit 1; }
[ -x "$PY" ] || { echo "no $PY"; exit 77; }

tmp=$(mktemp -d /tmp/zt-check-config-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The example is accepted, with its counts.
out=$("$BIN" check-config "$FIXTURE" 2>"$tmp/err") || fail "fixture rejected: $(cat "$tmp/err")"
grep -qF "ok: 2 workloads, 2 services, 1 policies, 0 pods" <<<"$out" || fail "summary: $out"

# variant NAME PYTHON-EXPR EXPECTED: apply the statement to the parsed fixture `c`, expect exit 1
# and EXPECTED (a full error line) on stderr.
variant() {
    local name=$1 stmt=$2 expected=$3 rc=0
    "$PY" - "$FIXTURE" "$tmp/$name.json" "$stmt" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"))
PYEOF
    "$BIN" check-config "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
    [ "$rc" = 1 ] || fail "$name: exit $rc, want 1"
    grep -qxF -- "$expected" "$tmp/$name.err" || { cat "$tmp/$name.err"; fail "$name: no '$expected'"; }
    echo "ok  $name"
}

variant bad-ip 'c["workloads"][1]["workloadIps"][0] = "127.0.0.300"' \
    'workloads[1].workloadIps[0]: not an IP address: "127.0.0.300"'
variant typo-key 'c["workloads"][0]["protcol"] = c["workloads"][0].pop("protocol")' \
    'workloads[0].protcol: unknown key'
variant bad-enum 'c["workloads"][1]["protocol"] = "UDP"' \
    'workloads[1].protocol: unknown value "UDP" (expected one of: TCP, HBONE)'
variant port 'c["policies"][0]["rules"][0][0][0]["notDestinationPorts"][0] = 70000' \
    'policies[0].rules[0][0][0].notDestinationPorts[0]: 70000 is not a port'
variant spiffe 'c["services"][0]["subjectAltNames"][0] = "cluster.local/ns/default/sa/local"' \
    'services[0].subjectAltNames[0]: not a SPIFFE ID: "cluster.local/ns/default/sa/local"'
variant vip 'c["services"][1]["vips"][0] = "127.10.0.2"' \
    'services[1].vips[0]: not a network/ip address: "127.10.0.2"'
variant dup-uid 'c["workloads"][1]["uid"] = c["workloads"][0]["uid"]' \
    'workloads[1].uid: duplicate uid "cluster1//v1/Pod/default/local" (first at workloads[0])'
variant dup-ip 'c["workloads"][1]["workloadIps"] = ["127.0.0.1"]' \
    'workloads[1].workloadIps[0]: 127.0.0.1 on network "" is also an IP of workloads[0] (uid "cluster1//v1/Pod/default/local")'
variant netns 'c["pods"] = [{"uid": "x", "netns": "netns/zt-x"}]' \
    'pods[0].netns: not an absolute path: "netns/zt-x"'
variant missing 'del c["services"][0]["hostname"]' \
    'services[0]: missing required key "hostname"'

# Waypoints (by VIP, hostname and IP; weighted; a workload's), application tunnels and every
# load-balancer mode, preference and health policy are accepted.
WP=tests/fixtures/waypoints-lb.json
out=$("$BIN" check-config "$WP" 2>"$tmp/err") || fail "waypoints fixture rejected: $(cat "$tmp/err")"
grep -qF "ok: 5 workloads, 7 services, 0 policies, 3 pods" <<<"$out" || fail "summary: $out"
grep -qE '^warning: (services|workloads)\[[0-9]' "$tmp/err" && fail "waypoints fixture warns: $(cat "$tmp/err")"

# The keys ztunnel's serde requires are required here too (made from the waypoints fixture).
FIXTURE=$WP
variant no-subzone 'del c["workloads"][0]["locality"]["subzone"]' \
    'workloads[0].locality: missing required key "subzone"'
variant no-prefs 'del c["services"][2]["loadBalancer"]["routingPreferences"]' \
    'services[2].loadBalancer: missing required key "routingPreferences"'
variant no-health 'del c["services"][3]["loadBalancer"]["healthPolicy"]' \
    'services[3].loadBalancer: missing required key "healthPolicy"'
variant no-wp-port 'del c["workloads"][1]["waypoint"]["hboneMtlsPort"]' \
    'workloads[1].waypoint: missing required key "hboneMtlsPort"'
variant no-weight 'del c["services"][1]["weightedWaypoints"][1]["weight"]' \
    'services[1].weightedWaypoints[1]: missing required key "weight"'

# warns NAME PYTHON-EXPR EXPECTED: still valid (exit 0), with EXPECTED as a warning line.
warns() {
    local name=$1 stmt=$2 expected=$3
    "$PY" - "$WP" "$tmp/$name.json" "$stmt" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"))
PYEOF
    "$BIN" check-config "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
        fail "$name: rejected: $(cat "$tmp/$name.err")"
    grep -qxF -- "warning: $expected" "$tmp/$name.err" || { cat "$tmp/$name.err"; fail "$name: no '$expected'"; }
    echo "ok  $name"
}
warns strict-stranded 'c["workloads"][0]["node"] = "node3"' \
    'services[2].loadBalancer: Strict [Node]: no endpoint matches 1 of 3 client workloads ("Kubernetes//Pod/default/client"); their connections to it fail with no healthy upstream'
warns unknown-waypoint 'c["services"][1]["waypoint"]["destination"] = "/198.19.0.99"' \
    'services[1].waypoint: "/198.19.0.99" names no workload or service of this config; connections that need this waypoint fail (unknown waypoint)'
warns zero-weights 'del c["services"][1]["waypoint"]; [w.update(weight=0) for w in c["services"][1]["weightedWaypoints"]]' \
    'services[1].weightedWaypoints: every weight is 0 and there is no waypoint, so traffic to this service uses no waypoint at all'

# Not JSON at all, and a truncated file.
printf '{"workloads": [' >"$tmp/trunc.json"
rc=0; "$BIN" check-config "$tmp/trunc.json" 2>"$tmp/trunc.err" || rc=$?
[ "$rc" = 1 ] && grep -q '^(file): parse error' "$tmp/trunc.err" || fail "truncated: exit $rc"

# Usage errors exit 2; --help exits 0.
rc=0; "$BIN" check-config >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "no args: exit $rc"
rc=0; "$BIN" check-config a b >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "two args: exit $rc"
rc=0; "$BIN" check-config --bogus >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "flag: exit $rc"
"$BIN" check-config --help | grep >/dev/null 'usage: ztunnel check-config' || fail "--help"
rc=0; "$BIN" check-config "$tmp/does-not-exist.json" 2>/dev/null || rc=$?; [ "$rc" = 1 ] || fail "missing file: exit $rc"
echo "check-config CLI: all cases pass"
