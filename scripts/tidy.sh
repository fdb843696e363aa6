#!/usr/bin/env bash
# tidy.sh is `make tidy`: the layering rule of docs/design.md checked over #include lines, plus the
# banned patterns of docs/style.md §3.9 (throw/catch, sprintf/strcpy/strcat, rand(), FIXME,
# std::function in uring/ and hbone/, `grep -q` reading a pipe in shell tests). Prints each violation and exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."
violations=0

report() {
    echo "tidy: $*"
    violations=$((violations + 1))
}

# forbid DIR PATTERN WHY: no file under DIR (tests excepted where noted) may include PATTERN.
forbid_include() {
    local dir=$1 pattern=$2 why=$3
    while IFS= read -r hit; do
        [ -n "$hit" ] && report "$hit: $why"
    done < <(grep -rnE "^\s*#\s*include\s*[<\"]($pattern)" "$dir" --include='*.h' --include='*.cc' 2>/dev/null)
}

# include/zt: only the C++ std library and libc.
forbid_include include/zt 'liburing|openssl/|nghttp2/|nlohmann/|uring/|certs/|hbone/|src/' \
    "include/zt/ is the base vocabulary and includes nothing above libc and std"
# uring/: no protocol, no mesh.
forbid_include uring 'openssl/|nghttp2/|nlohmann/|certs/|hbone/|src/' \
    "uring/ knows no protocol (layers only look down)"
# certs/: no sockets, no HTTP/2, no mesh.
forbid_include certs 'liburing|uring/|nghttp2/|nlohmann/|hbone/|src/' \
    "certs/ makes no network calls and knows no workload"
# hbone/: no syscalls layer, no mesh, no JSON.
forbid_include hbone 'liburing|uring/|nlohmann/|src/' \
    "hbone/ makes no syscalls and knows no workload"
# nlohmann-json only in src/config/.
while IFS= read -r hit; do
    case "$hit" in
        src/config/*) ;;
        *) [ -n "$hit" ] && report "$hit: only src/config/ reads JSON" ;;
    esac
done < <(grep -rnE '^\s*#\s*include\s*<nlohmann/' include uring certs hbone src tests 2>/dev/null)

# ldns (the DNS codec) only behind src/dns/message.*: the rest of src/dns/ sees plain values.
while IFS= read -r hit; do
    case "$hit" in
        src/dns/message.cc:* | src/dns/message.h:*) ;;
        *) [ -n "$hit" ] && report "$hit: only src/dns/message.* includes ldns" ;;
    esac
done < <(grep -rnE '^\s*#\s*include\s*<ldns/' include uring certs hbone src tests 2>/dev/null)
# The control agent and the proxy are separate programs: neither includes the other's code.
forbid_include src/agent 'src/proxy/' "the agent never includes the proxy (src/proxy/)"
while IFS= read -r hit; do
    case "$hit" in
        src/agent/*) ;;
        *) [ -n "$hit" ] && report "$hit: the proxy never includes the agent (src/agent/)" ;;
    esac
done < <(grep -rnE '^\s*#\s*include\s*"src/agent/' src --include='*.h' --include='*.cc' 2>/dev/null)

# hbone/ makes no syscalls: no socket, io or process calls.
while IFS= read -r hit; do
    [ -n "$hit" ] && report "$hit: hbone/ makes no syscalls"
done < <(grep -rnE '(^|[^a-z_:.>])(socket|connect|accept4?|recv|send|read|write|setsockopt|epoll_[a-z]+|io_uring_[a-z_]+)\s*\(' hbone \
    --include='*.cc' --include='*.h' 2>/dev/null | grep -v '_test.cc' | grep -v '^\S*:\s*//' |
    grep -vE '(BIO_|SSL_|nghttp2_|\.|->|::)(socket|connect|accept|recv|send|read|write)' || true)

# Banned patterns in the code modules (tests may use exceptions through doctest).
for dir in include uring certs hbone src; do
    while IFS= read -r hit; do
        [ -n "$hit" ] && report "$hit: banned (exceptions, unsafe string functions, rand(), FIXME)"
    done < <(grep -rnE '(^|[^a-z_])(throw|catch)\b|\bsprintf\s*\(|\bstrcpy\s*\(|\bstrcat\s*\(|(^|[^a-z_])rand\s*\(|FIXME' \
        "$dir" --include='*.h' --include='*.cc' 2>/dev/null | grep -v '_test.cc:' | grep -vE ':\s*//' || true)
done
for dir in uring hbone; do
    while IFS= read -r hit; do
        [ -n "$hit" ] && report "$hit: no std::function in $dir/ (plain function pointers and state machines)"
    done < <(grep -rn 'std::function' "$dir" --include='*.h' --include='*.cc' 2>/dev/null || true)
done

# Every .cc opens with a comment paragraph saying what it does.
while IFS= read -r file; do
    first=$(grep -m1 -v '^\s*$' "$file")
    case "$first" in
        //*) ;;
        *) report "$file: a .cc opens with a short paragraph (// ...) on its job" ;;
    esac
done < <(find include uring certs hbone src tests -name '*.cc' 2>/dev/null)

# Shell tests run with pipefail: a `grep -q` reading a pipe exits at the first match, the producer (curl
# writing a scrape, echo of one over 64 KiB) dies of SIGPIPE and the pipeline fails though the
# line was there. Tests write `producer | grep >/dev/null PATTERN`, which reads to the end.
while IFS= read -r hit; do
    report "$hit: grep -q at the end of a pipeline fails under pipefail when it exits first (use grep >/dev/null)"
done < <(
    grep -rnE '\|\s*grep\s+-[a-zA-Z]*q' scripts tests --include='*.sh' 2>/dev/null || true
    # The same pipeline continued on the next line: `producer |` then `grep -q` below it.
    find scripts tests -name '*.sh' -exec awk '
        FNR == 1 { piped = 0 }
        piped && /^[[:space:]]*grep[[:space:]]+-[a-zA-Z]*q/ { print FILENAME ":" FNR ":" $0 }
        { piped = ($0 ~ /[^|]\|[[:space:]]*$/) }' {} +
)

if [ "$violations" -gt 0 ]; then
    echo "tidy: $violations violation(s)"
    exit 1
fi
