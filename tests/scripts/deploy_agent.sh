#!/usr/bin/env bash
# deploy_agent.sh checks deploy/ztunnel-agent-daemonset.yaml and deploy/ztunnel-agent.service:
# the DaemonSet in the shape of Istio's ztunnel chart (ServiceAccount and DaemonSet `ztunnel` in
# istio-system, app=ztunnel, the projected token with audience istio-ca, the istio-ca-root-cert
# ConfigMap, the /var/run/ztunnel hostPath, Bidirectional propagation for the agent's pins and
# HostToContainer for ztunnel), the two containers' file hand-over (ztunnel reads what the agent
# writes), and that every environment variable either container sets is one its binary reads:
# a string literal (or a literal prefix such as ISTIO_META_) in that binary's sources. A second
# run on a copy with an invented variable must fail, so the check cannot pass by checking
# nothing.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml missing (scripts/install-deps.sh)"; exit 77; }

check() { # MANIFEST
    /usr/bin/python3 - "$1" <<'PY'
import glob, re, sys
import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
errors = []
def want(cond, what):
    if not cond:
        errors.append(what)

def sources(paths):
    text = ""
    for path in paths:
        if path.endswith("_test.cc"):
            continue
        text += open(path).read()
    return set(re.findall(r'"([A-Z][A-Z0-9_]*)"', text))

agent_src = sources(glob.glob("src/agent/*.cc"))
ztunnel_src = sources([p for p in glob.glob("src/**/*.cc", recursive=True)
                       if not p.startswith("src/agent/")])

def read_by(names, var):
    return var in names or any(n.endswith("_") and var.startswith(n) for n in names)

sa = next((d for d in docs if d["kind"] == "ServiceAccount"), None)
want(sa is not None and sa["metadata"]["name"] == "ztunnel"
     and sa["metadata"]["namespace"] == "istio-system", "ServiceAccount istio-system/ztunnel")
ds = next(d for d in docs if d["kind"] == "DaemonSet")
meta, pod = ds["metadata"], ds["spec"]["template"]
spec = pod["spec"]
want(meta["name"] == "ztunnel" and meta["namespace"] == "istio-system", "DaemonSet istio-system/ztunnel")
want(pod["metadata"]["labels"].get("app") == "ztunnel", "pod label app=ztunnel")
want(spec["serviceAccountName"] == "ztunnel", "serviceAccountName ztunnel")
containers = {c["name"]: c for c in spec["containers"]}
want(set(containers) == {"istio-proxy", "ztunnel-agent"}, "containers istio-proxy and ztunnel-agent")
volumes = {v["name"]: v for v in spec["volumes"]}
token = volumes.get("istio-token", {}).get("projected", {}).get("sources", [{}])[0]
want(token.get("serviceAccountToken", {}).get("audience") == "istio-ca", "token audience istio-ca")
want(volumes.get("istiod-ca-cert", {}).get("configMap", {}).get("name") == "istio-ca-root-cert",
     "istio-ca-root-cert ConfigMap")
want(volumes.get("cni-ztunnel-sock-dir", {}).get("hostPath", {}).get("path") == "/var/run/ztunnel",
     "hostPath /var/run/ztunnel")

def mounts(c):
    return {m["name"]: m for m in c.get("volumeMounts", [])}
def arg(c, flag):
    args = c.get("args", [])
    return args[args.index(flag) + 1] if flag in args else None

proxy, agent = containers.get("istio-proxy", {}), containers.get("ztunnel-agent", {})
am, pm = mounts(agent), mounts(proxy)
want(am.get("cni-ztunnel-sock-dir", {}).get("mountPropagation") == "Bidirectional",
     "agent mounts /var/run/ztunnel Bidirectional (pins reach the host)")
want(agent.get("securityContext", {}).get("privileged") is True,
     "agent privileged (Bidirectional propagation requires it)")
want(pm.get("cni-ztunnel-sock-dir", {}).get("mountPropagation") == "HostToContainer",
     "ztunnel mounts /var/run/ztunnel HostToContainer (sees the pins)")
want((arg(agent, "--netns-dir") or "").startswith(am.get("cni-ztunnel-sock-dir", {}).get("mountPath", "?")),
     "--netns-dir under the propagated mount")
want(arg(proxy, "--config") == arg(agent, "--config-out"), "ztunnel reads the agent's config file")
want(arg(proxy, "--cert-dir") == arg(agent, "--cert-dir"), "ztunnel reads the agent's certificates")
want("istio-token" in am and am["istio-token"]["mountPath"] + "/istio-token" == arg(agent, "--token-file"),
     "the agent's --token-file is the projected token")
want(proxy.get("readinessProbe", {}).get("httpGet", {}).get("port") == 15021, "ztunnel readiness 15021")
for name, c, names in (("istio-proxy", proxy, ztunnel_src), ("ztunnel-agent", agent, agent_src)):
    for e in c.get("env", []):
        want(read_by(names, e["name"]), f"{name}: env {e['name']} is not read by its binary")
agent_env = {e["name"] for e in agent.get("env", [])}
for var in ("XDS_ADDRESS", "CA_ADDRESS", "CLUSTER_ID", "TRUST_DOMAIN", "NODE_NAME", "POD_NAME",
            "POD_NAMESPACE", "INSTANCE_IP", "INPOD_UDS"):
    want(var in agent_env, "agent env " + var)
if errors:
    print("deploy check failed:", *errors, sep="\n  ")
    sys.exit(1)
print("agent daemonset ok")
PY
}

check deploy/ztunnel-agent-daemonset.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's/- name: SECRET_TTL/- name: SECRET_TTL_INVENTED/' deploy/ztunnel-agent-daemonset.yaml >"$work/bad.yaml"
if check "$work/bad.yaml" >"$work/out" 2>&1; then
    echo "FAIL: an environment variable no binary reads passed the check"
    exit 1
fi
grep -q 'SECRET_TTL_INVENTED is not read' "$work/out" || { cat "$work/out"; exit 1; }

unit=deploy/ztunnel-agent.service
grep -q '^ExecStart=/usr/local/bin/ztunnel-agent --config-out ' "$unit"
grep -q -- '--netns-dir ' "$unit"
grep -q '^AmbientCapabilities=CAP_SYS_ADMIN$' "$unit"
grep -q '^Type=notify$' "$unit"
echo "agent unit ok"
