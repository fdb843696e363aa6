#!/usr/bin/env bash
# check_citations.sh tests scripts/check-citations.sh on a scratch git repository holding a copy of
# the script and of docs/: a citation by an old name (wrapped or not), a path into ../shared and a
# docs/ citation of a section that does not exist must each fail it, with the offending line named;
# correct docs/ citations (sections, ranges, test IDs, quoted headings, wrapped lines) and the one
# allowed data path must pass. It does not check this tree itself, which may still carry old names
# until the rewrite of the round-2 merge (see scripts/check-citations.sh).
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v git >/dev/null || { echo "git missing"; exit 77; }
for doc in contract design ztunnel-reference reliability ecosystem style perf-anchors; do
    [ -f "docs/$doc.md" ] || { echo "docs/$doc.md missing"; exit 1; }
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/scripts" "$scratch/docs" "$scratch/src"
cp scripts/check-citations.sh "$scratch/scripts/"
for doc in contract design architecture ztunnel-reference reliability ecosystem style perf-anchors; do
    cp "docs/$doc.md" "$scratch/docs/"
done
git -C "$scratch" init -q

# check FILE_CONTENT EXPECTED_RC [EXPECTED_TEXT]: one file, one run of the check.
failures=0
check() {
    local content=$1 want_rc=$2 want_text=${3:-}
    printf '%s\n' "$content" >"$scratch/src/case.h"
    git -C "$scratch" add -A >/dev/null
    local out rc=0
    out=$("$scratch/scripts/check-citations.sh" 2>&1) || rc=$?
    if [ "$rc" != "$want_rc" ] || { [ -n "$want_text" ] && ! grep -qF -- "$want_text" <<<"$out"; }; then
        echo "FAIL: rc=$rc (want $want_rc), output: $out"
        echo "      for: $content"
        failures=$((failures + 1))
    fi
}

check '// fine: (docs/contract.md §2, §6; docs/ztunnel-reference.md §2.3–2.4)' 0
check '// fine: docs/reliability.md §6a A4–A10 and docs/reliability.md C1/F9' 0
check '// fine: (docs/design.md "A connection"; docs/architecture.md)' 0
check '// fine, wrapped: (docs/ecosystem.md
// §1.3–1.4)' 0
check 'for c in ../shared/reference/protos; do :; done  # the optional reference protos' 0
check '// the English word reliability, and a reliability budget' 0
check '// old: (SPEC.md §2)' 1 'src/case.h:1: cites SPEC.md'
check '// old: builds SPEC §9'"'"'s topology' 1 'cites SPEC.md'
check '// old: (ztunnel-behaviour §4.2)' 1 'cites ztunnel-behaviour.md'
check '// old: (reliability A7)' 1 'cites reliability.md'
check '// old, wrapped: (reliability
// §4)' 1 'src/case.h:1: cites reliability.md'
check '// old: style-anchors §3.6' 1 'cites style-anchors.md'
check '// old: as perf-anchors §2' 1 'cites perf-anchors.md'
check '// old: (DESIGN "Threads")' 1 'cites DESIGN.md'
check '# old: see ../shared/SPEC.md' 1 'cites'
check '// missing: docs/reliability.md §9.9' 1 'docs/reliability.md §9.9, which has no such section'
check '// missing, wrapped: (docs/ecosystem.md
// §1.9)' 1 'docs/ecosystem.md §1.9, which has no such section'
check '// missing: docs/design.md "Nope"' 1 'docs/design.md "Nope", which has no such section'

if [ "$failures" -ne 0 ]; then
    echo "check_citations: $failures case(s) wrong"
    exit 1
fi
echo "check_citations: 18 cases as expected"
