// certs_bench measures the per-operation cost of the certs/ paths that run per handshake or per
// renewal: SPIFFE parsing, SVID verification of a leaf + intermediate chain (the custom-verify
// callback's work), issuing a leaf in local-CA mode, and validating a chain + key for publication.
// Each runs for about `--ms` milliseconds (default 300) on one thread; the machine is shared, so
// treat the numbers as orders of magnitude.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <openssl/stack.h>

#include "certs/certified_key.h"
#include "certs/identity.h"
#include "certs/issue.h"
#include "certs/verify.h"
#include "tests/support/test_ca.h"

namespace {

template <class F>
void bench(const char* name, int64_t budget_ms, F&& op) {
    using Clock = std::chrono::steady_clock;
    auto start = Clock::now();
    auto deadline = start + std::chrono::milliseconds(budget_ms);
    uint64_t n = 0;
    while (Clock::now() < deadline) {
        for (int i = 0; i < 16; ++i) {
            if (!op()) {
                std::fprintf(stderr, "%s: operation failed\n", name);
                std::exit(1);
            }
        }
        n += 16;
    }
    double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start)
                               .count()) /
                double(n);
    std::printf("%-44s %12.0f ns/op  (%llu ops)\n", name, ns, static_cast<unsigned long long>(n));
}

}  // namespace

int main(int argc, char** argv) {
    int64_t budget_ms = 300;
    if (argc == 3 && std::strcmp(argv[1], "--ms") == 0) {
        budget_ms = std::atoll(argv[2]);
    }
    const std::string id_text = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage";
    bench("Identity::parse", budget_ms,
          [&] { return zt::certs::Identity::parse(id_text).has_value(); });

    auto root = zt::testing::TestCa::root();
    auto inter = root.intermediate();
    auto leaf = inter.issue_leaf(id_text);
    auto bundle = root.bundle();
    auto buffers = leaf.chain_buffers();
    bench("verify_svid (leaf + intermediate, DER)", budget_ms, [&] {
        return zt::certs::verify_svid(*bundle, buffers.get(), zt::certs::PeerRole::client,
                                      root.now_unix())
                .has_value();
    });

    auto ca = zt::certs::LocalCa::create("cluster.local", root.now_unix());
    auto id = zt::certs::Identity::parse(id_text).value();
    bench("LocalCa::issue (P-256 key, CSR, sign)", budget_ms,
          [&] { return ca->issue(id, root.now_unix(), 86400).has_value(); });

    bench("CertifiedKey::make (parse, key match, verify x2)", budget_ms, [&] {
        return zt::certs::CertifiedKey::make(id, leaf.chain_pem, leaf.key_pem, bundle,
                                             root.now_unix())
                .has_value();
    });
    return 0;
}
