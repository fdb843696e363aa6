#!/usr/bin/env bash
# ztunnel_signals.sh: the signals an operator or a supervisor sends to a running `ztunnel run`.
# SIGHUP re-reads and applies the config file (the daemon convention; its default action used to
# end the process without a drain), SIGUSR1 is ignored, and neither changes readiness; SIGTERM
# afterwards still drains and exits 0. A real ztunnel with no pods, on loopback.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/ztunnel
[ -x "$BIN" ] || { echo "missing $BIN (run make)"; exit 1; }
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }
WORK=$(mktemp -d /tmp/zt-signals-XXXXXX)
. tests/scripts/lib/local_ztunnel.sh
trap 'lz_stop; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK/zt.log" >&2; exit 1; }
alive() { kill -0 "$LZ_PID" 2>/dev/null; }
ready() { [ "$(curl --noproxy '*' -s --max-time 2 "http://127.0.0.1:$LZ_READY/healthz/ready")" = ready ]; }

lz_start --drain-timeout 1s || fail "start"
base=$(lz_applied)

# SIGHUP with the file unchanged: applied again (a forced reload), process and readiness intact.
kill -HUP "$LZ_PID"
for i in $(seq 50); do [ "$(lz_applied)" -gt "$base" ] && break; sleep 0.1; done
alive || fail "SIGHUP ended the process"
[ "$(lz_applied)" -gt "$base" ] || fail "SIGHUP did not reload the config"
grep -q 'SIGHUP: reloading the config file' "$WORK/zt.log" || fail "no SIGHUP log line"
ready || fail "not ready after SIGHUP"
echo "SIGHUP: config re-applied, still ready"

# SIGHUP after an edit: the new policies are in /config_dump at once (no need to wait for inotify).
lz_config '[{"name": "after-hup", "namespace": "default", "scope": "Namespace", "action": "Deny", "rules": [[]]}]'
kill -HUP "$LZ_PID"
for i in $(seq 50); do
    curl --noproxy '*' -s "http://127.0.0.1:$LZ_ADMIN/config_dump" | grep >/dev/null '"after-hup"' && break
    sleep 0.1
done
curl --noproxy '*' -s "http://127.0.0.1:$LZ_ADMIN/config_dump" | grep >/dev/null '"after-hup"' ||
    fail "the edited config is not applied after SIGHUP"

# SIGUSR1: ignored.
before=$(lz_applied)
kill -USR1 "$LZ_PID"
sleep 0.5
alive || fail "SIGUSR1 ended the process"
ready || fail "not ready after SIGUSR1"
[ "$(lz_applied)" = "$before" ] || fail "SIGUSR1 changed something"
echo "SIGUSR1: ignored"

# SIGTERM still drains and exits 0.
kill -TERM "$LZ_PID"
rc=0
timeout 5 tail -s 0.1 --pid="$LZ_PID" -f /dev/null || fail "no exit after SIGTERM"
wait "$LZ_PID" || rc=$?
LZ_PID=
[ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
grep -q 'shutdown complete' "$WORK/zt.log" || fail "no drain after SIGTERM"
echo "SIGTERM: drained, exit 0"
