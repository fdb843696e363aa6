// hbone_pki.cc issues the run-time certificates hbone/ tests and the benchmark use, through
// certs/'s TestCa and CertifiedKey (no second CA or verifier here).

#include "tests/support/hbone_pki.h"

#include "zt/assert.h"

namespace zt::test {

std::shared_ptr<const certs::CertifiedKey> certified(const testing::TestCa& ca,
                                                     std::string_view spiffe_id) {
    testing::TestCert cert = ca.issue_leaf(spiffe_id);
    auto id = certs::Identity::parse(spiffe_id);
    ZT_CHECK(id.has_value());
    auto ck = certs::CertifiedKey::make(*id, cert.chain_pem, cert.key_pem, ca.bundle(),
                                        ca.now_unix());
    ZT_CHECK(ck.has_value());
    return std::move(ck).value();
}

HbonePki::HbonePki() {
    auto client = hbone::TlsContext::create(hbone::Role::client, certified(ca, kClientSpiffe));
    auto server = hbone::TlsContext::create(hbone::Role::server, certified(ca, kServerSpiffe));
    ZT_CHECK(client.has_value() && server.has_value());
    client_ctx = std::move(client).value();
    server_ctx = std::move(server).value();
}

}  // namespace zt::test
