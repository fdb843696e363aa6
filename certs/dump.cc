// dump.cc turns certificates into the strings of ztunnel's `certificates` dump. It renders no
// JSON (only src/config does) and never fails: a field it cannot read is left empty.

#include "certs/dump.h"

#include "certs/certified_key.h"
#include "certs/pem.h"

namespace zt::certs {

CertDump dump_cert(X509* cert) {
    CertDump out;
    auto pem = cert_to_pem(cert);
    if (pem) {
        out.pem = base64_encode(*pem);
    }
    out.serial_number = serial_decimal(cert);
    auto not_before = cert_not_before_unix(cert);
    auto not_after = cert_not_after_unix(cert);
    if (not_before) {
        out.valid_from = format_rfc3339(*not_before);
    }
    if (not_after) {
        out.expiration_time = format_rfc3339(*not_after);
    }
    return out;
}

void fill_chains(const CertifiedKey& key, CertificateDump& out) {
    out.cert_chain.clear();
    out.root_certs.clear();
    for (const auto& cert : key.certs()) {
        out.cert_chain.push_back(dump_cert(cert.get()));
    }
    for (const auto& root : key.roots().roots()) {
        out.root_certs.push_back(dump_cert(root.get()));
    }
}

}  // namespace zt::certs
