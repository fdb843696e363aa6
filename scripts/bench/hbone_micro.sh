#!/usr/bin/env bash
# hbone_micro.sh runs the hbone/ micro-benchmark (build/tools/hbone_bench): bytes per second through
# an in-memory HBONE client -> server pair (TLS 1.3 + HTTP/2, 1 and 100 streams) against raw
# AES-128-GCM seal+open in the same run, printed as the Markdown table docs/bench/hbone.md keeps.
# For scripts/bench/run.sh (`make bench`) to call; HBONE_BENCH_MIB and HBONE_BENCH_RUNS size it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
exec "$BUILD/tools/hbone_bench" "${HBONE_BENCH_MIB:-512}" "${HBONE_BENCH_RUNS:-3}"
