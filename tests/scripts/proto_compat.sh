#!/usr/bin/env bash
# proto_compat.sh: the project's own .proto files (src/agent/proto/) are the agent's wire contract
# with istiod and istio-cni, so every message, field, enum value and RPC they declare must match
# the reference definitions (Istio's and ztunnel's public files) in full name, number, type,
# label and referenced type. Both sides are compiled with protoc into descriptor sets and compared
# by tests/scripts/proto_compat.py. The references live outside the repository, in
# `<repo>/../shared/reference/protos` (a worktree one level deeper is looked for too, and
# ZT_REFERENCE_PROTOS overrides both); where they are absent the test skips (exit 77). A second
# check feeds the comparison a deliberately broken copy and expects it to fail, so the test
# cannot pass by comparing nothing.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."

ref=${ZT_REFERENCE_PROTOS:-}
if [ -z "$ref" ]; then
    for candidate in ../shared/reference/protos ../../shared/reference/protos; do
        if [ -d "$candidate/ztunnel" ]; then
            ref=$candidate
            break
        fi
    done
fi
if [ -z "$ref" ] || [ ! -d "$ref/ztunnel" ]; then
    echo "skip: no reference protos (../shared/reference/protos; set ZT_REFERENCE_PROTOS)"
    exit 77
fi
command -v protoc >/dev/null || { echo "protoc missing (scripts/install-deps.sh)"; exit 1; }
PY=/usr/bin/python3

tmp=$(mktemp -d /tmp/zt-proto-compat-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ours=(src/agent/proto/*.proto)
[ -e "${ours[0]}" ] || { echo "FAIL: no project .proto files in src/agent/proto"; exit 1; }
protoc -Isrc/agent/proto --include_imports --descriptor_set_out="$tmp/ours.pb" "${ours[@]}"

# ztunnel's copies import each other by bare file name.
(cd "$ref/ztunnel" && protoc -I. --include_imports --descriptor_set_out="$tmp/ztunnel.pb" \
    xds.proto workload.proto authorization.proto citadel.proto zds.proto)
# istio/istio's copies (istiod's and istio-cni's side) expect the workload API under
# `workloadapi/`; lay them out that way.
mkdir -p "$tmp/istio/workloadapi"
cp "$ref/istio-istio/workload.proto" "$tmp/istio/workloadapi/workload.proto"
cp "$ref/istio-istio/authorization.proto" "$ref/istio-istio/zds.proto" "$tmp/istio/"
(cd "$tmp/istio" && protoc -I. -I"$OLDPWD/$ref/ztunnel" --include_imports \
    --descriptor_set_out="$tmp/istio.pb" workloadapi/workload.proto authorization.proto zds.proto)

"$PY" tests/scripts/proto_compat.py "$tmp/ours.pb" "$tmp/ztunnel.pb" "$tmp/istio.pb"

# The checker must notice a wrong number and a wrong type: renumber one field of xds.proto and
# retype another, and expect a failure naming both.
mkdir -p "$tmp/broken"
cp "${ours[@]}" "$tmp/broken/"
sed -i -e 's/string response_nonce = 6;/string response_nonce = 16;/' \
    -e 's/string type_url = 2;/bytes type_url = 2;/' "$tmp/broken/xds.proto"
(cd "$tmp/broken" && protoc -I. --include_imports --descriptor_set_out="$tmp/broken.pb" ./*.proto)
if "$PY" tests/scripts/proto_compat.py "$tmp/broken.pb" "$tmp/ztunnel.pb" "$tmp/istio.pb" \
        >"$tmp/broken.out"; then
    echo "FAIL: a renumbered and a retyped field passed the check"
    exit 1
fi
grep -q 'DeltaDiscoveryRequest.response_nonce: number 16, reference 6' "$tmp/broken.out" ||
    { echo "FAIL: renumbering not reported:"; cat "$tmp/broken.out"; exit 1; }
grep -q 'DeltaDiscoveryRequest.type_url: type TYPE_BYTES, reference TYPE_STRING' "$tmp/broken.out" ||
    { echo "FAIL: retyping not reported:"; cat "$tmp/broken.out"; exit 1; }
echo "proto compatibility: ok"
