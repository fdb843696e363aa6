#!/usr/bin/env bash
# check_config_cli.sh drives `ztunnel check-config FILE` as an operator would (SPEC.md §1): it
# accepts ztunnel's examples/localhost.yaml written as JSON with a one-line summary and exit 0,
# rejects each broken variant with exit 1 and a message naming the JSON path, and exits 2 on
# usage errors. Variants are made at run time from the fixture with Debian's python3. No network.
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

# Not JSON at all, and a truncated file.
printf '{"workloads": [' >"$tmp/trunc.json"
rc=0; "$BIN" check-config "$tmp/trunc.json" 2>"$tmp/trunc.err" || rc=$?
[ "$rc" = 1 ] && grep -q '^(file): parse error' "$tmp/trunc.err" || fail "truncated: exit $rc"

# Usage errors exit 2; --help exits 0.
rc=0; "$BIN" check-config >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "no args: exit $rc"
rc=0; "$BIN" check-config a b >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "two args: exit $rc"
rc=0; "$BIN" check-config --bogus >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "flag: exit $rc"
"$BIN" check-config --help | grep -q 'usage: ztunnel check-config' || fail "--help"
rc=0; "$BIN" check-config "$tmp/does-not-exist.json" 2>/dev/null || rc=$?; [ "$rc" = 1 ] || fail "missing file: exit $rc"
echo "check-config CLI: all cases pass"
