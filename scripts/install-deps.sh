#!/usr/bin/env bash
# install-deps.sh installs, with apt-get, every Debian package that building, testing, the demo
# and the benchmarks need. It is idempotent: packages already present are skipped, and with
# nothing missing it makes no network call. Run as root (CI and the dev machines are root).
# It never stops or kills a process it did not start: services that packages would start on
# install (haproxy, prometheus, dnsmasq, ...) are kept from starting by a policy-rc.d for the
# duration of the install, since tests start their own instances on their own ports.
set -euo pipefail

packages=(
    # build
    build-essential g++ make pkg-config
    liburing-dev libnghttp2-dev nlohmann-json3-dev doctest-dev android-libboringssl-dev
    zlib1g-dev
    # the control agent's messages (protoc at build time) and the DNS proxy's codec
    libprotobuf-dev protobuf-compiler libldns-dev
    # the pinned formatter (make format, make format-check)
    clang-format-16
    # fuzzing and sanitizers (clang's libFuzzer runtime)
    clang libclang-rt-14-dev
    # network-namespace tests and the demo
    iproute2 iptables procps psmisc util-linux kmod curl openssl
    # independent HBONE peers and HTTP/2 tools
    python3 python3-h2 python3-hyperframe python3-hpack nghttp2-client nghttp2-proxy
    # metrics checks (promtool); the deployment-file check reads YAML
    prometheus python3-yaml
    # independent control-plane peers for the agent's tests (xDS server, Istio CA, ZDS server)
    python3-grpcio python3-protobuf python3-cryptography jq
    # the DNS proxy's tests: a real upstream resolver and real clients
    dnsmasq dnsutils
    # benchmarks: the peers we compare against, load tools and the plot
    haproxy socat iperf3 gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep >/dev/null 'install ok installed'; then
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
# A policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d from starting the services
# of the packages being installed; it is removed again, and one that was already there is kept.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
fi
remove_policy() {
    if [ "$own_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
}
trap remove_policy EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
