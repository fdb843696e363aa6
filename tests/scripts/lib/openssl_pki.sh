# openssl_pki.sh: certificates made with the openssl command line, for tests that need a PKI
# independent of our own certs/ code (an interop peer must not trust what it is testing). Source
# it from a directory where the files may be written.
#   pki_make_ca NAME                  NAME.key, NAME.pem: a self-signed P-256 root
#   pki_make_leaf CA NAME SPIFFE_ID   NAME.key (PKCS#8), NAME.pem: a leaf with the SPIFFE URI SAN
#                                     (critical), both EKUs and critical digitalSignature
#   pki_make_server CA NAME SAN       NAME.key, NAME.pem: a server certificate (istiod's kind)

pki_make_ca() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "/O=$1" -days 2 -out "$1.pem" 2>/dev/null
}

pki_make_leaf() {
    local ext
    ext=$(mktemp)
    cat >"$ext" <<CNF
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$3
CNF
    openssl ecparam -name prime256v1 -genkey -noout -out "$2.ec"
    openssl pkcs8 -topk8 -nocrypt -in "$2.ec" -out "$2.key"
    openssl req -new -key "$2.key" -subj / -out "$2.csr" 2>/dev/null
    openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 1 \
        -extfile "$ext" -extensions leaf -out "$2.pem" 2>/dev/null
    rm -f "$ext" "$2.ec" "$2.csr"
}

# pki_make_server CA NAME SAN: NAME.key, NAME.pem: a TLS server certificate (serverAuth) for a
# control-plane server such as istiod, SAN in openssl's form ("DNS:istiod.istio-system.svc,
# IP:198.18.0.1"), no SPIFFE ID.
pki_make_server() {
    local ext
    ext=$(mktemp)
    cat >"$ext" <<CNF
[server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$3
CNF
    openssl ecparam -name prime256v1 -genkey -noout -out "$2.ec"
    openssl pkcs8 -topk8 -nocrypt -in "$2.ec" -out "$2.key"
    openssl req -new -key "$2.key" -subj "/CN=$2" -out "$2.csr" 2>/dev/null
    openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 1 \
        -extfile "$ext" -extensions server -out "$2.pem" 2>/dev/null
    rm -f "$ext" "$2.ec" "$2.csr"
}
