#pragma once

// Run-time PKI for hbone/ tests and the benchmark: a test CA (certs/'s `TestCa`), a client and a
// server identity with their `CertifiedKey`s, and TLS contexts for both roles. Nothing secret is
// committed; every run makes fresh keys.

#include <memory>
#include <string_view>

#include "certs/certified_key.h"
#include "certs/identity.h"
#include "hbone/tls_session.h"
#include "tests/support/test_ca.h"

namespace zt::test {

// kClientSpiffe and kServerSpiffe are the identities `HbonePki` issues.
inline constexpr std::string_view kClientSpiffe = "spiffe://cluster.local/ns/a/sa/client";
inline constexpr std::string_view kServerSpiffe = "spiffe://cluster.local/ns/b/sa/server";

// certified issues a leaf for `spiffe_id` from `ca` and wraps it as a `CertifiedKey` trusting
// `ca`'s root. Aborts (ZT_CHECK) on failure: a bug in the test or certs/.
std::shared_ptr<const certs::CertifiedKey> certified(const testing::TestCa& ca,
                                                     std::string_view spiffe_id);

// HbonePki holds one CA and ready client/server TLS contexts.
struct HbonePki {
    testing::TestCa ca = testing::TestCa::root();
    certs::Identity client_id = certs::Identity::parse(kClientSpiffe).value();
    certs::Identity server_id = certs::Identity::parse(kServerSpiffe).value();
    std::shared_ptr<const hbone::TlsContext> client_ctx;
    std::shared_ptr<const hbone::TlsContext> server_ctx;

    HbonePki();
};

}  // namespace zt::test
