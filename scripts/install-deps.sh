#!/usr/bin/env bash
# install-deps.sh installs, with apt-get, every Debian package that building, testing, the demo
# and the benchmarks need. It is idempotent: packages already present are skipped, and with
# nothing missing it makes no network call. Run as root (CI and the dev machines are root).
set -euo pipefail

packages=(
    # build
    build-essential g++ make pkg-config
    liburing-dev libnghttp2-dev nlohmann-json3-dev doctest-dev android-libboringssl-dev
    zlib1g-dev
    # fuzzing and sanitizers (clang's libFuzzer runtime)
    clang libclang-rt-14-dev
    # network-namespace tests and the demo
    iproute2 iptables procps psmisc util-linux kmod curl openssl
    # independent HBONE peers and HTTP/2 tools
    python3 python3-h2 python3-hyperframe python3-hpack nghttp2-client nghttp2-proxy
    # metrics checks (promtool); the deployment-file check reads YAML
    prometheus python3-yaml
    # benchmarks: the peers we compare against, load tools and the plot
    haproxy socat iperf3 gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (sudo $0) to install them" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps the prometheus server's web assets and friends out; services
# that packages would start (haproxy, prometheus) are stopped again below, since tests start
# their own instances on their own ports.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for svc in haproxy prometheus iperf3; do
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop "$svc" >/dev/null 2>&1 || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
done
pkill -x prometheus 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true
echo "install-deps: done"
