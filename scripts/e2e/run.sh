#!/usr/bin/env bash
# run.sh runs the network-namespace scenarios of scripts/e2e/, each with its timeout, and ends
# with the plain summary line. `run.sh NAME...` runs only the named scenarios (`make e2e T=name`).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
. scripts/lib/runner.sh

if [ $# -gt 0 ]; then
    for name in "$@"; do
        script="scripts/e2e/${name%.sh}.sh"
        if [ ! -f "$script" ]; then
            echo "no such scenario: $name" >&2
            exit 2
        fi
        run_script "$script"
    done
else
    for script in scripts/e2e/*.sh; do
        [ "$(basename "$script")" = run.sh ] && continue
        run_script "$script"
    done
fi
run_summary
