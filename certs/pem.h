#pragma once

// PEM and X.509 field helpers shared by the rest of certs/: parsing certificate chains and keys
// from PEM text, writing them back, and reading the fields the dump and the renewal logic need
// (validity as Unix seconds, the serial number in decimal), plus one capped file read. Nothing here
// reads the clock, and every function leaves BoringSSL's thread-local error queue empty.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "zt/result.h"

namespace zt::certs {

// kMaxPemBytes caps any PEM input (a chain, a key or a root bundle); larger input fails with
// `Errc::cert_parse` before it is parsed, so a runaway file cannot exhaust memory.
inline constexpr size_t kMaxPemBytes = 1 << 20;

// kMaxPemCerts caps the certificates in one PEM input (a root bundle during a rotation holds a few;
// a chain holds a leaf and a couple of intermediates).
inline constexpr size_t kMaxPemCerts = 64;

// X509Ptr owns one `X509`.
using X509Ptr = bssl::UniquePtr<X509>;

// KeyPtr owns one `EVP_PKEY`.
using KeyPtr = bssl::UniquePtr<EVP_PKEY>;

// parse_cert_chain_pem parses every `CERTIFICATE` block of `pem`, in order. It fails with
// `Errc::cert_parse` when there is none, when a block is malformed, when `pem` is larger than
// `kMaxPemBytes` or when it holds more than `kMaxPemCerts` certificates.
Result<std::vector<X509Ptr>> parse_cert_chain_pem(std::string_view pem);

// parse_private_key_pem parses the first private key of `pem` (PKCS#8 `PRIVATE KEY`, or
// `EC PRIVATE KEY` / `RSA PRIVATE KEY`). Fails with `Errc::cert_parse`.
Result<KeyPtr> parse_private_key_pem(std::string_view pem);

// cert_to_pem returns `cert` as one PEM `CERTIFICATE` block. Fails with `Errc::cert_parse` only if
// `cert` cannot be encoded.
Result<std::string> cert_to_pem(X509* cert);

// private_key_to_pem returns `key` as an unencrypted PKCS#8 `PRIVATE KEY` PEM block. The text is
// secret: write it only to files of mode 0600.
Result<std::string> private_key_to_pem(EVP_PKEY* key);

// cert_to_der returns the DER encoding of `cert` as a refcounted buffer, the form
// `SSL_CTX_set_chain_and_key` takes. Fails with `Errc::cert_parse`.
Result<bssl::UniquePtr<CRYPTO_BUFFER>> cert_to_buffer(X509* cert);

// asn1_time_to_unix converts an X.509 time to seconds since the Unix epoch. Fails with
// `Errc::cert_parse` on a malformed time.
Result<int64_t> asn1_time_to_unix(const ASN1_TIME* time);

// cert_not_before_unix returns `cert`'s notBefore in Unix seconds (`Errc::cert_parse` on failure).
Result<int64_t> cert_not_before_unix(const X509* cert);

// cert_not_after_unix returns `cert`'s notAfter in Unix seconds (`Errc::cert_parse` on failure).
Result<int64_t> cert_not_after_unix(const X509* cert);

// serial_decimal returns `cert`'s serial number as a decimal string, as ztunnel's dump shows it.
// Returns an empty string if the serial cannot be read.
std::string serial_decimal(const X509* cert);

// format_rfc3339 renders `unix_seconds` as `YYYY-MM-DDTHH:MM:SSZ` (UTC, seconds precision).
std::string format_rfc3339(int64_t unix_seconds);

// base64_encode returns standard, padded base64 of `data` (the dump's `pem` field is base64 of
// the PEM text).
std::string base64_encode(std::string_view data);

// read_pem_file reads the file at `path` (following symlinks: Kubernetes secret mounts swap a
// `..data` symlink). Fails with `Errc::not_found` when it does not exist,
// `Errc::invalid_argument` when it is not a regular file (a FIFO, a device, a directory: refused
// without waiting on it), `Errc::cert_parse` when it is larger than `kMaxPemBytes` (nothing is
// read then), or `Errc::sys` with the errno. It never blocks on what the path turns out to be.
Result<std::string> read_pem_file(const std::string& path);

// keys_match returns true when `key` is the private key of `cert`'s public key.
bool keys_match(X509* cert, EVP_PKEY* key);

}  // namespace zt::certs
