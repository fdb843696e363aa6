#!/usr/bin/env bash
# config_dump_shape.sh checks the `/config_dump` document with an independent reader
# (check_config_dump.py, Python, written from ztunnel's serde attributes and istioctl's Go
# structs, not from our C++): a rich config rendered by build/tools/config_dump_render must
# pass, and so must the dump of a failed first load (no snapshot, `lastError` set). Then the
# checker itself is shown to fail on documents broken the ways a regression would break ours
# (unsorted keys, 4-space indent, a missing section, `Presence: null`, a hex serial, an
# unsorted list, an empty skipped field written out), so a pass means something. No network.
# timeout: 60
set -euo pipefail

TOOL=${BUILD:-build}/tools/config_dump_render
PY=/usr/bin/python3
CHECK=tests/scripts/check_config_dump.py
[ -x "$PY" ] || { echo "no Debian python3"; exit 77; }
[ -x "$TOOL" ] || { echo "missing $TOOL (run make)"; exit 1; }

tmp=$(mktemp -d /tmp/zt-config-dump-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

cat >"$tmp/config.json" <<'EOF'
{
  "workloads": [
    {"uid": "Kubernetes//Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["198.18.2.2", "2001:db8::2:2"],
     "protocol": "HBONE", "node": "node2", "canonicalName": "server",
     "locality": {"region": "r1", "zone": "z1", "subzone": ""},
     "services": {"default/server.default.svc.cluster.local": {"80": 8080}}},
    {"uid": "Kubernetes//Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["198.18.1.2"], "protocol": "HBONE",
     "node": "node1", "nativeTunnel": true, "applicationTunnel": {"protocol": "PROXY", "port": 15088},
     "services": {}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10", "net1/2001:db8::10"], "ports": {"80": 8080, "8443": 0},
     "cidrVips": [{"network": "", "cidr": "198.19.8.0/24"}],
     "subjectAltNames": ["spiffe://cluster.local/ns/default/sa/server"],
     "loadBalancer": {"routingPreferences": ["Region", "Zone"], "mode": "Standard",
                      "healthPolicy": "AllowAll"}},
    {"name": "api", "namespace": "apps", "hostname": "api.apps.svc.cluster.local",
     "vips": ["/198.19.0.11"], "ports": {"443": 8443}, "visibility": "Namespace"}
  ],
  "policies": [
    {"name": "deny-evil", "namespace": "default", "scope": "Namespace", "action": "Deny",
     "dryRun": false,
     "rules": [[[{"principals": [{"Suffix": "/sa/evil"}], "notNamespaces": [{"Exact": "ops"}]}]]]},
    {"name": "allow-all-match-kinds", "namespace": "default", "scope": "WorkloadSelector",
     "action": "Allow", "dryRun": true,
     "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"},
                                 {"Prefix": "cluster.local/ns/apps/"}],
                  "namespaces": [{"Presence": []}],
                  "notServiceAccounts": [{"namespace": "default", "serviceAccount": "bad"}],
                  "sourceIps": ["198.18.0.0/15"], "notSourceIps": ["2001:db8::/32"],
                  "destinationPorts": [8080], "notDestinationPorts": [22]}], [{}]], []]}
  ],
  "pods": [{"uid": "Kubernetes//Pod/default/client", "netns": "/var/run/netns/zt-pod-client"}]
}
EOF

# --- the real documents pass -------------------------------------------------------------------
"$TOOL" "$tmp/config.json" >"$tmp/good.json"
"$PY" "$CHECK" "$tmp/good.json" || fail "rich config dump rejected"
"$PY" - "$tmp/good.json" <<'EOF' || fail "rich config dump lacks expected content"
import json, sys
d = json.load(open(sys.argv[1]))
assert [w["uid"] for w in d["workloads"]] == ["Kubernetes//Pod/default/client",
                                               "Kubernetes//Pod/default/server"], "workload order"
assert [s["hostname"] for s in d["services"]][0] == "api.apps.svc.cluster.local", "service order"
assert d["services"][1]["vips"] == ["/198.19.0.10", "net1/2001:db8::10"], "vips"
assert d["services"][1]["loadBalancer"]["healthPolicy"] == "AllowAll", "loadBalancer"
assert d["services"][0]["visibility"] == "Namespace", "visibility"
m = d["policies"][0]["rules"][0][0][0]
assert m["namespaces"] == [{"Presence": []}], "Presence"
assert d["workloads"][0]["applicationTunnel"] == {"port": 15088, "protocol": "PROXY"}, "tunnel"
assert d["workloads"][1]["locality"] == {"region": "r1", "subzone": "", "zone": "z1"}, "locality"
assert d["configStatus"]["lastError"] is None and d["configStatus"]["lastLoaded"], "status"
assert len(d["configStatus"]["appliedSha256"]) == 64, "sha256"
assert d["staticConfig"]["workloads"][1]["services"] == {}, "LocalWorkload services map"
EOF

printf '{"workloads": [' >"$tmp/broken.json"
"$TOOL" "$tmp/broken.json" >"$tmp/failed.json"
"$PY" "$CHECK" "$tmp/failed.json" || fail "failed-load dump rejected"
"$PY" - "$tmp/failed.json" <<'EOF' || fail "failed-load dump has wrong status"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["configStatus"]
assert s["lastLoaded"] is None and s["lastFailure"] and s["lastError"], s
assert d["workloads"] == [] and d["staticConfig"]["workloads"] == [], "sections not empty"
EOF

# --- the checker catches each kind of breakage --------------------------------------------------
mutate() {  # mutate NAME PYTHON-EXPRESSION-ON-d-OR-TEXT
    local name=$1 code=$2
    "$PY" - "$tmp/good.json" "$tmp/$name.json" <<EOF
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
$code
open(sys.argv[2], "w").write(text)
EOF
    if "$PY" "$CHECK" "$tmp/$name.json" >"$tmp/$name.out"; then
        fail "checker accepted a dump with $name"
    fi
    [ -s "$tmp/$name.out" ] || fail "checker gave no reason for $name"
}
mutate unsorted_keys 'text = json.dumps(dict(reversed(list(d.items()))), indent=2)'
mutate indent4 'text = json.dumps(d, indent=4, sort_keys=True)'
mutate missing_section 'del d["stagedServices"]; text = json.dumps(d, indent=2, sort_keys=True)'
mutate presence_null 'text = text.replace("\"Presence\": []", "\"Presence\": null")'
mutate hex_serial 'd["certificates"][1]["certChain"][0]["serialNumber"] = "0x1f"; text = json.dumps(d, indent=2, sort_keys=True)'
mutate unsorted_workloads 'd["workloads"].reverse(); text = json.dumps(d, indent=2, sort_keys=True)'
mutate empty_skipped_field 'd["workloads"][0]["network"] = ""; text = json.dumps(d, indent=2, sort_keys=True)'
mutate vip_without_network 'd["services"][1]["vips"][0] = "198.19.0.10"; text = json.dumps(d, indent=2, sort_keys=True)'

echo "config_dump shape ok (2 documents, 8 breakages caught)"
