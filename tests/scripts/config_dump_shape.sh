#!/usr/bin/env bash
# config_dump_shape.sh tests the /config_dump structure checker (tests/scripts/lib/
# check_config_dump.py) that the live dump is run through: a realistic dump (with a certificate
# generated here by openssl) passes, and each kind of deviation istioctl or Kiali would trip on
# (unsorted keys, wrong indent, missing key, hex serial, bad state, unsorted workloads, unknown
# connection protocol) is reported with its path.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v openssl >/dev/null || { echo "openssl missing"; exit 77; }
check=tests/scripts/lib/check_config_dump.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/O=zt-test" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

/usr/bin/python3 - "$work" <<'PY'
import base64, json, subprocess, sys, datetime
work = sys.argv[1]
pem = open(f"{work}/cert.pem").read()
def x509(flag):
    return subprocess.check_output(["openssl", "x509", "-noout", flag, "-in", f"{work}/cert.pem"],
                                   text=True).strip().split("=", 1)[1]
def rfc3339(text):
    t = datetime.datetime.strptime(text.replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
cert = {"pem": base64.b64encode(pem.encode()).decode(),
        "serialNumber": str(int(x509("-serial"), 16)),
        "validFrom": rfc3339(x509("-startdate")),
        "expirationTime": rfc3339(x509("-enddate"))}
dump = {
    "certificates": [
        {"identity": "spiffe://cluster.local/ns/a/sa/x", "state": "Available",
         "certChain": [cert], "rootCerts": [cert]},
        {"identity": "spiffe://cluster.local/ns/b/sa/y", "state": "Unavailable: no CA", "certChain": [],
         "rootCerts": []},
    ],
    "config": {"adminAddr": {"Localhost": [True, 15000]}},
    "configStatus": {"lastError": None, "lastLoaded": "2026-11-26T05:00:00Z", "unsupported": []},
    "policies": [{"name": "allow", "namespace": "a"}, {"name": "deny", "namespace": "b"}],
    "services": [{"hostname": "a.svc", "vips": ["/198.19.0.1"]}, {"hostname": "b.svc", "vips": []}],
    "stagedServices": {},
    "staticConfig": {"policies": [], "services": [], "workloads": []},
    "version": {"gitRevision": "x", "version": "0.1.0"},
    "workloadState": {"Kubernetes//Pod/a/x-1": {
        "connections": {"inbound": [], "outbound": [
            {"actualDst": "198.18.2.3:15008", "originalDst": "198.19.0.1:80", "protocol": "HBONE",
             "src": "198.18.1.2:4000"}]},
        "info": {"name": "x-1", "namespace": "a", "serviceAccount": "x"}, "state": "Up"}},
    "workloads": [
        {"name": "x-1", "namespace": "a", "protocol": "HBONE", "uid": "Kubernetes//Pod/a/x-1",
         "workloadIps": ["198.18.1.2"]},
        {"name": "y-1", "namespace": "b", "protocol": "TCP", "uid": "Kubernetes//Pod/b/y-1",
         "workloadIps": ["198.18.1.3"]},
    ],
}
def save(name, value, indent=2, sort=True):
    with open(f"{work}/{name}.json", "w") as f:
        f.write(json.dumps(value, indent=indent, sort_keys=sort))
save("good", dump)
save("indent4", dump, indent=4)
raw = json.dumps(dump, indent=2, sort_keys=True)
with open(f"{work}/unsorted.json", "w") as f:  # swap two top-level keys in the text
    f.write("{\n  \"config\"" + raw[raw.index("\"config\"") + 8: raw.index(",\n  \"configStatus\"")] +
            ",\n  \"certificates\"" + raw[raw.index("\"certificates\"") + 14: raw.index(",\n  \"config\"")] +
            raw[raw.index(",\n  \"configStatus\""):])
import copy
def variant(name, mutate):
    d = copy.deepcopy(dump)
    mutate(d)
    save(name, d)
variant("missing", lambda d: d.pop("workloads"))
variant("hexserial", lambda d: d["certificates"][0]["certChain"][0].update(serialNumber="0x1F"))
variant("badstate", lambda d: d["certificates"][1].update(state="Broken"))
variant("unsortedworkloads", lambda d: d["workloads"].reverse())
variant("badprotocol", lambda d: d["workloadState"]["Kubernetes//Pod/a/x-1"]["connections"]["outbound"][0].update(protocol="QUIC"))
variant("noours", lambda d: d.pop("configStatus"))
PY

/usr/bin/python3 "$check" "$work/good.json" --require-ours
echo "good dump: accepted"
expect_fail() {  # NAME PATTERN
    local out
    if out=$(/usr/bin/python3 "$check" "$work/$1.json" --require-ours); then
        echo "checker accepted $1" >&2
        exit 1
    fi
    echo "$out" | grep -q -- "$2" || { echo "$1: want '$2' in: $out" >&2; exit 1; }
    echo "$1: refused ($(echo "$out" | head -n 1))"
}
expect_fail unsorted 'keys not sorted'
expect_fail indent4 'not 2-space pretty JSON'
expect_fail missing '^workloads: missing'
expect_fail hexserial 'serialNumber: not a decimal string'
expect_fail badstate "certificates\[1\].state: unexpected 'Broken'"
expect_fail unsortedworkloads '^workloads: not sorted'
expect_fail badprotocol "outbound\[0\].protocol: unexpected 'QUIC'"
expect_fail noours '^configStatus: missing'
echo ok
