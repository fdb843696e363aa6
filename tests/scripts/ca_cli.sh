#!/usr/bin/env bash
# ca_cli.sh checks `ztunnel ca init` and `ztunnel ca issue` with an independent reader (OpenSSL's
# CLI): the root is a P-256 CA for 10 years, the leaf has exactly the SPIFFE URI SAN, both EKUs,
# critical digitalSignature, a P-256 key, a 128-bit serial and the requested validity, both verify
# as an SSL client and server against root-cert.pem, and keys are mode 0600. No network.
# timeout: 60
set -euo pipefail

BIN=${BUILD:-build}/ztunnel
command -v openssl >/dev/null || { echo "openssl CLI not installed"; exit 77; }
[ -x "$BIN" ] || { echo "missing $BIN (run make)"; exit 1; }

tmp=$(mktemp -d /tmp/zt-ca-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
want() { grep -qF -- "$2" <<<"$1" || fail "missing '$2' in $3"; }
mode_of() { stat -c %a "$1"; }
enddate() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }

# --- ca init ---------------------------------------------------------------------------------
"$BIN" ca init "$tmp/ca" --trust-domain example.org
for f in ca-cert.pem ca-key.pem root-cert.pem; do [ -s "$tmp/ca/$f" ] || fail "no $f"; done
[ "$(mode_of "$tmp/ca/ca-key.pem")" = 600 ] || fail "ca-key.pem mode $(mode_of "$tmp/ca/ca-key.pem")"
root=$(openssl x509 -in "$tmp/ca/root-cert.pem" -noout -text)
want "$root" "CA:TRUE" root
want "$root" "Certificate Sign" root
want "$root" "NIST CURVE: P-256" root
want "$root" "URI:spiffe://example.org" root
years=$(( ($(enddate "$tmp/ca/root-cert.pem") - $(date -u +%s)) / 86400 / 365 ))
[ "$years" -ge 9 ] && [ "$years" -le 10 ] || fail "root validity ${years}y, want 10y"
cmp -s "$tmp/ca/ca-cert.pem" "$tmp/ca/root-cert.pem" || fail "a self-signed CA is its own root"
# Refuses to overwrite a CA key.
if "$BIN" ca init "$tmp/ca" 2>/dev/null; then fail "ca init replaced an existing CA"; fi

# --- ca issue ---------------------------------------------------------------------------------
id=spiffe://example.org/ns/default/sa/app
before=$(date -u +%s)
"$BIN" ca issue --ca-dir "$tmp/ca" --identity "$id" --out "$tmp/out" --ttl 2h
for f in cert-chain.pem key.pem; do [ -s "$tmp/out/$f" ] || fail "no $f"; done
[ "$(mode_of "$tmp/out/key.pem")" = 600 ] || fail "key.pem mode $(mode_of "$tmp/out/key.pem")"
leaf=$(openssl x509 -in "$tmp/out/cert-chain.pem" -noout -text)
want "$leaf" "URI:$id" leaf
[ "$(grep -c 'URI:' <<<"$leaf")" = 1 ] || fail "want exactly one URI SAN"
want "$leaf" "TLS Web Server Authentication, TLS Web Client Authentication" leaf
want "$leaf" "NIST CURVE: P-256" leaf
want "$leaf" "CA:FALSE" leaf
grep -A1 'X509v3 Key Usage: critical' <<<"$leaf" | grep >/dev/null 'Digital Signature' ||
    fail "key usage is not critical digitalSignature"
grep -q 'Certificate Sign' <<<"$leaf" && fail "leaf may sign certificates"
left=$(( $(enddate "$tmp/out/cert-chain.pem") - before ))
[ "$left" -ge 7200 ] && [ "$left" -le 7210 ] || fail "leaf notAfter is ${left}s away, want 7200"
serial=$(openssl x509 -in "$tmp/out/cert-chain.pem" -noout -serial | cut -d= -f2)
[ "${#serial}" -ge 31 ] && [ "${#serial}" -le 32 ] || fail "serial $serial is not ~128 bits"
for purpose in sslclient sslserver; do
    openssl verify -purpose "$purpose" -CAfile "$tmp/ca/root-cert.pem" "$tmp/out/cert-chain.pem" ||
        fail "leaf does not verify as $purpose"
done
[ "$(openssl pkey -in "$tmp/out/key.pem" -pubout)" = \
  "$(openssl x509 -in "$tmp/out/cert-chain.pem" -noout -pubkey)" ] || fail "key.pem does not match"

# Default TTL is 24h.
"$BIN" ca issue --ca-dir "$tmp/ca" --identity "$id" --out "$tmp/out24"
left=$(( $(enddate "$tmp/out24/cert-chain.pem") - $(date -u +%s) ))
[ "$left" -ge 86390 ] && [ "$left" -le 86410 ] || fail "default ttl gives ${left}s"

# --- refusals: usage errors exit 2, runtime errors 1 ------------------------------------------
rc() { set +e; "$@" >/dev/null 2>&1; echo $?; set -e; }
[ "$(rc "$BIN" ca issue --ca-dir "$tmp/ca" --identity spiffe://example.org/ns//sa/x --out "$tmp/x")" = 2 ] ||
    fail "malformed identity not a usage error"
[ "$(rc "$BIN" ca issue --ca-dir "$tmp/ca" --identity "$id" --out "$tmp/x" --ttl 5)" = 2 ] ||
    fail "unit-less ttl not a usage error"
[ "$(rc "$BIN" ca issue --ca-dir "$tmp/nope" --identity "$id" --out "$tmp/x")" = 1 ] ||
    fail "missing CA dir not a runtime error"
[ "$(rc "$BIN" ca issue --ca-dir "$tmp/ca" --identity "$id" --out "$tmp/x" --ttl 100000h)" = 1 ] ||
    fail "a leaf outliving the CA was issued"
[ "$(rc "$BIN" ca issue --ca-dir "$tmp/ca" --identity spiffe://other.org/ns/a/sa/b --out "$tmp/x")" = 1 ] ||
    fail "the CA signed an identity of another trust domain"
[ "$(rc "$BIN" ca init "$tmp/ca2" --bogus)" = 2 ] || fail "unknown flag not a usage error"
[ "$(rc "$BIN" ca init "$tmp/ca3" --trust-domain Bad.TD)" = 2 ] || fail "bad trust domain accepted"
[ ! -e "$tmp/x/key.pem" ] || fail "a refused issue wrote a key"
echo "ok"
