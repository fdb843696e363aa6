#!/usr/bin/env bash
# ldns-codec.sh ARCHIVE OUT builds OUT, one relocatable object holding Debian's static libldns
# (ARCHIVE, libldns-dev's libldns.a) that needs nothing but libc. The DNS proxy (src/dns/) takes
# its message codec from ldns, but Debian builds ldns against OpenSSL 3: libldns.so.3 loads
# libssl.so.3 and libcrypto.so.3, whose symbols clash with BoringSSL's in one process (the
# Makefile's check-linkage refuses that), and the codec objects of the static archive reference
# the DNSSEC ones (rr.o needs dnssec.o), which reference OpenSSL. ztunnel never calls ldns's
# DNSSEC, key or TSIG code, so every OpenSSL function that code names is renamed to
# `zt_ldns_ossl_<name>` and bound to one function that aborts: such a call, if one were ever
# made, stops the process at once instead of running BoringSSL code behind an OpenSSL ABI.
# Uses binutils only (ld, nm, objcopy) and a C compiler for the one abort function.
set -euo pipefail
archive=$1
out=$2
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ld -r --whole-archive "$archive" -o "$work/all.o"

# Every symbol the archive needs that libc does not define comes from OpenSSL.
libc=$("$cc" -print-file-name=libc.so.6)
nm -D --defined-only "$libc" | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' | sort -u \
    >"$work/libc.txt"
nm -u "$work/all.o" | awk '{ print $2 }' | grep -v '^_GLOBAL_OFFSET_TABLE_$' | sort -u \
    >"$work/undefined.txt"
comm -23 "$work/undefined.txt" "$work/libc.txt" >"$work/foreign.txt"

awk '{ print $1 " zt_ldns_ossl_" $1 }' "$work/foreign.txt" >"$work/rename.txt"
objcopy --redefine-syms="$work/rename.txt" "$work/all.o" "$work/renamed.o"
awk '{ print "zt_ldns_ossl_" $1 " = zt_ldns_openssl_unavailable;" }' "$work/foreign.txt" \
    >"$work/aliases.ld"
cat >"$work/unavailable.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
__attribute__((visibility("hidden"), noreturn)) void zt_ldns_openssl_unavailable(void) {
    fputs("ldns: an OpenSSL-backed ldns function was called; ztunnel links ldns without "
          "OpenSSL (scripts/ldns-codec.sh)\n", stderr);
    abort();
}
EOF
"$cc" -O2 -fPIC -c "$work/unavailable.c" -o "$work/unavailable.o"
ld -r "$work/renamed.o" "$work/unavailable.o" "$work/aliases.ld" -o "$out.tmp"

# The result must need libc alone.
leftover=$(nm -u "$out.tmp" | awk '{ print $2 }' | grep -v '^_GLOBAL_OFFSET_TABLE_$' | sort -u |
    comm -23 - "$work/libc.txt" || true)
if [ -n "$leftover" ]; then
    echo "ldns-codec: symbols left unresolved: $leftover" >&2
    rm -f "$out.tmp"
    exit 1
fi
mv "$out.tmp" "$out"
