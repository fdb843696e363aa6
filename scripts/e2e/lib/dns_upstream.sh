# dns_upstream.sh: Debian's dnsmasq as the real upstream resolver of the DNS scenarios and the
# DNS benchmark, and as the forwarder the benchmark compares the proxy with. Source it after
# scripts/netns/lib.sh (or scripts/e2e/lib/mesh.sh). Each dnsmasq reads only its own config file
# (--conf-file; no /etc/dnsmasq.conf, no /etc/resolv.conf, no /etc/hosts), listens only on the
# addresses it is given, runs under zt_bg (so zt_cleanup stops it) and logs to a file.
#
# The test zone, every address inside 198.18.0.0/15 or 2001:db8::/32:
#   www.upstream.test   A 198.19.50.1, AAAA 2001:db8:50::1
#   v6.upstream.test    AAAA 2001:db8:50::6 only
#   db.upstream.test    A $DNS_UPSTREAM_DB_IP (default 198.19.60.1): a hostname-only workload's
#                       name, pointed at a real pod by the scenario that connects to it
#   big.upstream.test   100 A records 198.19.51.1-100 (1.6 KB: TC over UDP, whole over TCP)
#   txt.upstream.test   eight TXT records of 250 bytes (TC over UDP, whole over TCP)
#   any other name: NXDOMAIN (it is authoritative for everything and recurses nowhere, so a
#   stub resolver walking its search list moves on, as with cluster DNS)
#
# Functions:
#   dns_upstream_conf FILE ADDR...       write the zone's config, listening on ADDR...
#   dns_upstream_start NS LOG ADDR...    run it in NS (whose interfaces carry ADDR...), wait until
#                                        it answers; DNS_UPSTREAM_PID is its pid
#   dns_forwarder_start NS LOG LISTEN PORT UPSTREAM...
#                                        dnsmasq as a plain forwarder on LISTEN:PORT to the
#                                        UPSTREAMs, its cache off, so every query goes upstream
#                                        (the benchmark's reference); DNS_FORWARDER_PID
#   dns_wait_answer NS SERVER PORT NAME [SECS]
#                                        wait until SERVER:PORT answers NAME from NS

DNS_UPSTREAM_DB_IP=${DNS_UPSTREAM_DB_IP:-198.19.60.1}

dns_upstream_conf() {
    local file=${1:?dns_upstream_conf FILE ADDR...}
    shift
    {
        echo "# dnsmasq as the DNS tests' upstream (scripts/e2e/lib/dns_upstream.sh)"
        echo "port=53"
        for addr in "$@"; do
            echo "listen-address=$addr"
        done
        echo "bind-interfaces"
        echo "no-resolv"
        echo "no-hosts"
        echo "no-negcache"
        echo "local=/#/"
        echo "host-record=www.upstream.test,198.19.50.1,2001:db8:50::1"
        echo "host-record=v6.upstream.test,2001:db8:50::6"
        echo "host-record=db.upstream.test,$DNS_UPSTREAM_DB_IP"
        local i
        for i in $(seq 1 100); do
            echo "host-record=big.upstream.test,198.19.51.$i"
        done
        # Eight TXT records of 250 bytes (dnsmasq reads config lines of about 1 KB at most).
        local chunk
        chunk=$(printf 'z%.0s' $(seq 1 249))
        for i in $(seq 1 8); do
            echo "txt-record=txt.upstream.test,\"$i$chunk\""
        done
    } >"$file"
}

# dns_wait_answer NS SERVER PORT NAME [SECS]: dig from NS until SERVER answers (any rcode).
dns_wait_answer() {
    local ns=$1 server=$2 port=$3 name=$4 secs=${5:-$ZT_WAIT_SECS}
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if zt_in "$ns" dig +time=1 +tries=1 -p "$port" "@$server" "$name" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    echo "dns_wait_answer: $server:$port did not answer $name from $ns after ${secs}s" >&2
    return 1
}

dns_upstream_start() {
    local ns=${1:?dns_upstream_start NS LOG ADDR...} log=${2:?log file}
    shift 2
    local conf="${log%.log}.conf"
    dns_upstream_conf "$conf" "$@" || return 1
    zt_bg "$ns" "$log" dnsmasq --keep-in-foreground --conf-file="$conf" --pid-file= \
        --log-facility=- --user=root
    DNS_UPSTREAM_PID=$ZT_BG_LAST
    dns_wait_answer "$ns" "$1" 53 www.upstream.test
}

dns_forwarder_start() {
    local ns=${1:?dns_forwarder_start NS LOG LISTEN PORT UPSTREAM...} log=${2:?log file}
    local listen=${3:?listen address} port=${4:?port}
    shift 4
    local conf="${log%.log}.conf"
    {
        echo "# dnsmasq as a plain forwarder, cache off (scripts/e2e/lib/dns_upstream.sh)"
        echo "port=$port"
        echo "listen-address=$listen"
        echo "bind-interfaces"
        echo "no-resolv"
        echo "no-hosts"
        echo "cache-size=0"
        # As many queries in flight as the proxy allows a pod by default.
        echo "dns-forward-max=256"
        for upstream in "$@"; do
            echo "server=$upstream"
        done
    } >"$conf"
    zt_bg "$ns" "$log" dnsmasq --keep-in-foreground --conf-file="$conf" --pid-file= \
        --log-facility=- --user=root
    DNS_FORWARDER_PID=$ZT_BG_LAST
    dns_wait_answer "$ns" "$listen" "$port" www.upstream.test
}
