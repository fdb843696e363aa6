#pragma once

// The `certificates` section of `/config_dump` in ztunnel's shape (docs/ecosystem.md §1.3), as
// plain strings: src/config renders the JSON (`identity`, `state`, `certChain`, `rootCerts`; each
// cert
// `{pem, serialNumber, validFrom, expirationTime}`).

#include <string>
#include <vector>

#include <openssl/x509.h>

namespace zt::certs {

class CertifiedKey;

// CertDump is one certificate: `pem` is base64 of the PEM text, `serial_number` decimal, the
// times RFC 3339 UTC at seconds precision (`2025-06-15T15:06:40Z`).
struct CertDump {
    std::string pem;
    std::string serial_number;
    std::string valid_from;
    std::string expiration_time;
};

// CertificateDump is one identity's entry. `state` is "Initializing", "Available" or
// "Unavailable: <reason>"; the chains are empty when nothing is published.
struct CertificateDump {
    std::string identity;
    std::string state;
    std::vector<CertDump> cert_chain;
    std::vector<CertDump> root_certs;
};

// dump_cert describes `cert` (borrowed).
CertDump dump_cert(X509* cert);

// fill_chains sets `out.cert_chain` (leaf first) and `out.root_certs` from `key`.
void fill_chains(const CertifiedKey& key, CertificateDump& out);

}  // namespace zt::certs
