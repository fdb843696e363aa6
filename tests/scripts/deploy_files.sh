#!/usr/bin/env bash
# deploy_files.sh checks the deployment files against what Istio's tooling and docs/contract.md rely on:
# the DaemonSet's names, labels, capabilities, probe, grace period, env and seccomp profile (which
# must exist and must not block io_uring), and the systemd unit (systemd-analyze verify, when
# available, against the built binary).
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml missing"; exit 77; }

/usr/bin/python3 - <<'PY'
import json, os, sys
import yaml

docs = [d for d in yaml.safe_load_all(open("deploy/ztunnel-daemonset.yaml")) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
errors = []
def want(cond, what):
    if not cond:
        errors.append(what)

meta = ds["metadata"]
pod = ds["spec"]["template"]
spec = pod["spec"]
want(meta["name"] == "ztunnel" and meta["namespace"] == "istio-system", "DaemonSet istio-system/ztunnel")
want(ds["spec"]["selector"]["matchLabels"].get("app") == "ztunnel", "selector app=ztunnel")
want(pod["metadata"]["labels"].get("app") == "ztunnel", "pod label app=ztunnel")
want(pod["metadata"]["annotations"].get("prometheus.io/port") == "15020", "scrape annotation")
want(spec.get("terminationGracePeriodSeconds") == 30, "grace period 30 s")
c = spec["containers"][0]
want(c["name"] == "istio-proxy", "container istio-proxy")
want(c["args"][0] == "run" and "--config" in c["args"], "ztunnel run --config")
caps = c["securityContext"]["capabilities"]
want(sorted(caps["add"]) == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"], "capabilities")
want(caps["drop"] == ["ALL"], "drop ALL")
probe = c["readinessProbe"]["httpGet"]
want(probe["port"] == 15021 and probe["path"] == "/healthz/ready", "readiness probe")
want("livenessProbe" not in c, "no liveness probe (as Istio)")
env = {e["name"]: e for e in c["env"]}
for name in ["NODE_NAME", "TRUST_DOMAIN", "SECRET_TTL", "PACKET_MARK",
             "TERMINATION_GRACE_PERIOD_SECONDS", "RUST_LOG", "LOG_FORMAT"]:
    want(name in env, "env " + name)
want(env.get("TERMINATION_GRACE_PERIOD_SECONDS", {}).get("value") == "30", "grace env matches")
sp = c["securityContext"]["seccompProfile"]
want(sp["type"] in ("Localhost", "Unconfined"), "seccomp Localhost or Unconfined")
if sp["type"] == "Localhost":
    path = os.path.join("deploy/seccomp", sp["localhostProfile"])
    want(os.path.exists(path), "seccomp profile file " + path)
    prof = json.load(open(path))
    denied = set()
    for rule in prof["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":
            denied.update(rule["names"])
    allowed_default = prof["defaultAction"] == "SCMP_ACT_ALLOW"
    for call in ["io_uring_setup", "io_uring_enter", "io_uring_register", "setns"]:
        want(allowed_default and call not in denied, "seccomp allows " + call)
    for call in ["kexec_load", "init_module", "ptrace", "bpf"]:
        want(call in denied, "seccomp denies " + call)
if errors:
    print("deploy check failed:", *errors, sep="\n  ")
    sys.exit(1)
print("daemonset and seccomp profile ok")
PY

unit=deploy/ztunnel.service
grep -q '^ExecStart=/usr/local/bin/ztunnel run --config ' "$unit"
grep -q '^AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN$' "$unit"
grep -q '^TimeoutStopSec=35s$' "$unit"
if command -v systemd-analyze >/dev/null && [ -x "$BUILD/ztunnel" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    sed "s#/usr/local/bin/ztunnel#$(realpath "$BUILD/ztunnel")#" "$unit" >"$work/ztunnel.service"
    out=$(timeout 20 systemd-analyze verify "$work/ztunnel.service" 2>&1 || true)
    # Complaints about the environment (no systemd as PID 1 in a container) are not ours.
    if echo "$out" | grep -v -i 'bus\|connect\|not booted\|Failed to' | grep >/dev/null -i 'ztunnel.service'; then
        echo "$out"
        exit 1
    fi
    echo "systemd-analyze verify: ok"
fi
echo ok
