#!/usr/bin/env bash
# promtool_metrics.sh renders a populated registry (build/tools/metrics_render) in both formats
# and has Prometheus' own parsers judge it: `promtool check metrics` lints the classic text
# format; OpenMetrics goes through promtool's strict OpenMetrics parser (`tsdb
# create-blocks-from openmetrics`, which needs a timestamp on every sample, so one is appended).
# A body with its `# EOF` removed must be refused, so the check can fail.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
command -v promtool >/dev/null || { echo "promtool not installed (Debian package prometheus)"; exit 77; }
tool="$BUILD/tools/metrics_render"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$tool" text >"$work/text.prom"
grep -q '^istio_tcp_connections_opened_total{reporter="source",' "$work/text.prom"
timeout 20 promtool check metrics <"$work/text.prom"
echo "classic text: promtool check metrics passed"

"$tool" openmetrics >"$work/om.txt"
tail -n 1 "$work/om.txt" | grep >/dev/null -x '# EOF'
# Add a timestamp (seconds) to every sample line so the backfill parser accepts it.
awk '/^#/ {print; next} {print $0 " 1700000000"}' "$work/om.txt" >"$work/om-ts.txt"
timeout 20 promtool tsdb create-blocks-from openmetrics "$work/om-ts.txt" "$work/blocks" >/dev/null
echo "openmetrics: promtool's OpenMetrics parser accepted the body"

grep -v '^# EOF' "$work/om-ts.txt" >"$work/om-bad.txt"
if timeout 20 promtool tsdb create-blocks-from openmetrics "$work/om-bad.txt" "$work/bad" >/dev/null 2>&1; then
    echo "promtool accepted an OpenMetrics body without # EOF; the check proves nothing" >&2
    exit 1
fi
echo "ok"
