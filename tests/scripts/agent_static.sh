#!/usr/bin/env bash
# agent_static.sh: ztunnel-agent with xDS turned off (--xds-address ""), as a cluster without
# istiod access or a test drives it: the file it writes is the --static file, rendered and
# validated (ztunnel check-config accepts it), written once at start and again when the static
# file changes; an invalid change keeps the last good file; /ready and /debug say so; SIGTERM
# exits 0; an invalid --static file at start exits 1, a usage error 2. Loopback only, admin on
# port 0 (the bound port is read from the log), no root needed.
# timeout: 60
set -euo pipefail
BUILD=${BUILD:-build}
AGENT=$BUILD/ztunnel-agent
ZT=$BUILD/ztunnel
[ -x "$AGENT" ] || { echo "missing $AGENT (run make)"; exit 1; }
tmp=$(mktemp -d /tmp/zt-agent-static-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/agent.log" ] && tail -20 "$tmp/agent.log"; exit 1; }
wait_for() { # SECONDS COMMAND...
    local limit=$1
    shift
    for _ in $(seq $((limit * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

rc=0
"$AGENT" --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "usage error exited $rc"
echo '{"workloads": [{"uid": "x"}]}' >"$tmp/bad.json"
rc=0
"$AGENT" --config-out "$tmp/never.json" --static "$tmp/bad.json" --xds-address "" \
    --admin-addr 127.0.0.1:0 >"$tmp/bad.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "an invalid --static file exited $rc"
grep -q 'the --static file is invalid' "$tmp/bad.log" || fail "no reason logged: $(cat "$tmp/bad.log")"
[ ! -e "$tmp/never.json" ] || fail "a file was written from an invalid --static file"

cp tests/fixtures/localhost.json "$tmp/static.json"
"$AGENT" --config-out "$tmp/config.json" --static "$tmp/static.json" --xds-address "" \
    --admin-addr 127.0.0.1:0 --log-level debug >"$tmp/agent.log" 2>&1 &
pid=$!
wait_for 10 grep -q 'ztunnel-agent started' "$tmp/agent.log" || fail "did not start"
admin=$(sed -nE 's/.*ztunnel-agent started.*admin=([^ ]+).*/\1/p' "$tmp/agent.log")
wait_for 10 test -s "$tmp/config.json" || fail "no file written"
"$ZT" check-config "$tmp/config.json" | grep >/dev/null 'ok: 2 workloads, 2 services, 1 policies' ||
    fail "written file: $("$ZT" check-config "$tmp/config.json" 2>&1)"
wait_for 5 bash -c "[ \"\$(curl -s http://$admin/ready)\" = ready ]" ||
    fail "/ready: $(curl -s "http://$admin/ready")"
curl -s "http://$admin/debug" | jq -e '(.xds.enabled | not) and .configFile.current and
    .configFile.written == 1 and .ready' >/dev/null || fail "/debug: $(curl -s "http://$admin/debug")"
curl -s "http://$admin/metrics" | grep >/dev/null '^ztunnel_agent_config_writes_total{result="written"} 1' ||
    fail "metrics"

# A change to the static file is written; an invalid one keeps the last good file.
python3 - "$tmp/static.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["policies"] = []
json.dump(c, open(sys.argv[1] + ".tmp", "w"))
PY
mv "$tmp/static.json.tmp" "$tmp/static.json"
wait_for 10 bash -c "'$ZT' check-config '$tmp/config.json' | grep >/dev/null '0 policies'" ||
    fail "the static change was not written"
good=$(sha256sum <"$tmp/config.json")
echo '{"workloads": "not a list"}' >"$tmp/static.json.tmp"
mv "$tmp/static.json.tmp" "$tmp/static.json"
wait_for 10 grep -q 'the --static file is invalid' "$tmp/agent.log" || fail "invalid change not reported"
sleep 0.5
[ "$(sha256sum <"$tmp/config.json")" = "$good" ] || fail "the file changed on an invalid static file"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "SIGTERM exited $rc"
grep -q 'ztunnel-agent stopped' "$tmp/agent.log" || fail "no clean stop"
echo "agent static: ok"
