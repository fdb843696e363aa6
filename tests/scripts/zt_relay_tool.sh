#!/usr/bin/env bash
# zt_relay_tool.sh checks the relay tool's command-line contract that the benchmark scripts rely
# on: `--listen 127.0.0.1:0` serves and prints exactly one `zt_relay: listening on IP:PORT` line,
# bytes cross it both ways over IPv4 and IPv6 loopback, and SIGTERM ends it with exit 0.
# Loopback only.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
relay=${BUILD:-build}/tools/zt_relay
py=/usr/bin/python3
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# An echo backend (reverses what it read) on a kernel-chosen port, left in echo_port. It runs
# in this shell, not in a $(...) subshell, so its pid reaches `pids` and the trap ends it.
start_echo() {
    local host=$1 family=$2
    "$py" -u -c "
import socket, sys
s = socket.socket(socket.$family)
s.bind(('$host', 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    data = b''
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        data += chunk
    c.sendall(data[::-1]); c.close()
" >"$work/echo-$family" &
    pids+=($!)
    for _ in $(seq 50); do [ -s "$work/echo-$family" ] && break; sleep 0.1; done
    echo_port=$(head -n1 "$work/echo-$family")
}

check_family() {
    local host=$1 bracketed=$2 family=$3
    start_echo "$host" "$family"
    local backend_port=$echo_port
    "$relay" --listen "$bracketed:0" --target "$bracketed:$backend_port" --workers 2 \
        >"$work/relay-$family.out" 2>"$work/relay-$family.err" &
    local relay_pid=$!
    pids+=($relay_pid)
    for _ in $(seq 50); do grep -q '^zt_relay: listening on ' "$work/relay-$family.out" && break; sleep 0.1; done
    local line
    line=$(cat "$work/relay-$family.out")
    [[ "$line" =~ ^zt_relay:\ listening\ on\ (.*):([0-9]+)$ ]] || { echo "bad line: '$line'"; exit 1; }
    local port=${BASH_REMATCH[2]}
    [ "$port" != 0 ] || { echo "port 0 was not resolved"; exit 1; }
    local answer
    answer=$(timeout 10 "$py" -c "
import socket
c = socket.create_connection(('$host', $port))
c.sendall(b'0123456789' * 100000); c.shutdown(socket.SHUT_WR)
data = b''
while True:
    chunk = c.recv(65536)
    if not chunk: break
    data += chunk
print('ok' if data == (b'0123456789' * 100000)[::-1] else 'mismatch %d' % len(data))
")
    [ "$answer" = ok ] || { echo "$family: $answer"; exit 1; }
    kill -TERM "$relay_pid"
    local rc=0
    timeout 10 tail --pid="$relay_pid" -f /dev/null || rc=$?
    wait "$relay_pid" || rc=$?
    [ "$rc" = 0 ] || { echo "$family: relay exited $rc"; cat "$work/relay-$family.err"; exit 1; }
    [ "$(wc -l <"$work/relay-$family.out")" = 1 ] || { echo "more than one stdout line"; exit 1; }
    grep -q 'completed=1' "$work/relay-$family.err" || { cat "$work/relay-$family.err"; exit 1; }
    echo "$family: ok"
}

check_family 127.0.0.1 127.0.0.1 AF_INET
check_family ::1 '[::1]' AF_INET6
