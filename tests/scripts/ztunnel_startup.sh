#!/usr/bin/env bash
# ztunnel_startup.sh: what a real `ztunnel run` tells an operator at start and what README.md
# promises about it. The start log names the nghttp2 protections the linked library has
# (detected by symbol: Debian backports them under an unchanged version), and the same shows as
# ztunnel_nghttp2_protection{protection} (unstable) on /metrics, matching `nm -D` on the library
# when nm is there. Every `POST /logging` form README.md documents is accepted by the server
# (the reset form included), and resets to the start-up level. No pods, no root.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/ztunnel
[ -x "$BIN" ] || { echo "missing $BIN (run make)"; exit 1; }
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }
WORK=$(mktemp -d /tmp/zt-startup-XXXXXX)
. tests/scripts/lib/local_ztunnel.sh
trap 'lz_stop; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK/zt.log" >&2; exit 1; }

lz_start --log-level warn,app=info || fail "start"

# 1. nghttp2 protections: a start-up log line and a gauge per protection.
line=$(grep 'nghttp2 protections' "$WORK/zt.log") || fail "no start-up line about nghttp2 protections"
echo "$line"
metrics=$(curl --noproxy '*' -s "http://127.0.0.1:$LZ_METRICS/metrics")
grep -q '^# HELP ztunnel_nghttp2_protection .*(unstable)' <<<"$metrics" || fail "no unstable HELP"
lib=$(ldd "$BIN" | awk '/libnghttp2/ {print $3}')
symbols=
if command -v nm >/dev/null && [ -n "$lib" ]; then
    symbols=$(nm -D "$lib")
fi
for pair in stream_reset_rate_limit:nghttp2_option_set_stream_reset_rate_limit \
    max_continuations:nghttp2_option_set_max_continuations; do
    name=${pair%%:*}
    symbol=${pair#*:}
    value=$(grep "^ztunnel_nghttp2_protection{protection=\"$name\"}" <<<"$metrics" | awk '{print $NF}')
    [ -n "$value" ] || fail "no ztunnel_nghttp2_protection series for $name"
    grep -q "$name=$([ "$value" = 1 ] && echo yes || echo no)" <<<"$line" || fail "log and metric disagree on $name"
    if [ -n "$symbols" ]; then
        want=0
        grep -qw "$symbol" <<<"$symbols" && want=1
        [ "$value" = "$want" ] || fail "$name: metric $value, but nm says $want for $lib"
    fi
    echo "$name: $value"
done

# 2. README.md's /logging forms are what the server accepts.
forms=$(grep -o 'POST /logging[^`]*' README.md | sort -u)
[ -n "$forms" ] || fail "README.md documents no POST /logging form"
echo "README forms: $(echo $forms)"
admin() { curl --noproxy '*' -s -w ' %{http_code}' -X POST "http://127.0.0.1:$LZ_ADMIN$1"; }
out=$(admin '/logging?level=access:debug')
[ "$out" = "current log level is warn,app=info,access=debug
 200" ] || fail "level change: $out"
# Every documented query, with its placeholders filled in, must be accepted.
while read -r form; do
    query=${form#POST /logging}
    query=${query//SPEC/info,access=debug}  # the placeholder becomes a real spec
    out=$(admin "/logging$query")
    [ "${out##* }" = 200 ] || fail "README form '$form' sent as '/logging$query' got: $out"
done <<<"$forms"
# The reset form ends at the start-up levels (istioctl sends `?level=info&reset`).
out=$(admin '/logging?reset')
[ "$out" = "current log level is warn,app=info
 200" ] || fail "reset: $out"
out=$(admin '/logging?level=info&reset')
[ "$out" = "current log level is info,app=info
 200" ] || fail "istioctl's reset: $out"
echo ok
