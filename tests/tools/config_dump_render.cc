// config_dump_render prints the `/config_dump` document for a config file, with the other
// inputs (a certificate chain issued at run time, settings, one pod with connections, the
// reload status) filled in, so that script tests can check the shape with an independent reader
// (tests/scripts/check_config_dump.py) without starting a proxy. Usage:
// config_dump_render CONFIG.json. It opens no sockets; a config that does not load is rendered
// as a failed first load (no snapshot, `lastError` set), which is a shape worth checking too.

#include <cstdio>
#include <string>

#include "certs/dump.h"
#include "src/config/dump.h"
#include "src/config/load.h"
#include "tests/support/test_ca.h"
#include "zt/clock.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: config_dump_render CONFIG.json\n");
        return 2;
    }
    zt::config::LoadResult loaded = zt::config::load_file(argv[1]);

    zt::config::DumpInputs inputs;
    inputs.snapshot = loaded.snapshot.get();
    inputs.static_config = loaded.snapshot.get();
    inputs.version = "0.0.0-test";
    inputs.git_revision = "0000000";
    inputs.istio_version = "1.29.0";
    inputs.crypto_provider = "BoringSSL (Debian android-libboringssl)";
    if (loaded.snapshot) {
        inputs.unsupported = loaded.snapshot->config().unsupported;
    }
    inputs.settings = {{"adminAddr", R"({"Localhost":[true,15000]})"},
                       {"statsAddr", R"({"SocketAddr":"[::]:15020"})"},
                       {"numWorkerThreads", "2"},
                       {"drainTimeout", R"({"secs":5,"nanos":0})"}};

    auto ca = zt::testing::TestCa::root();
    auto intermediate = ca.intermediate();
    auto leaf = intermediate.issue_leaf("spiffe://cluster.local/ns/default/sa/client");
    zt::certs::CertificateDump available;
    available.identity = "spiffe://cluster.local/ns/default/sa/client";
    available.state = "Available";
    for (X509* cert : leaf.chain()) {
        available.cert_chain.push_back(zt::certs::dump_cert(cert));
    }
    available.root_certs.push_back(zt::certs::dump_cert(ca.cert()));
    zt::certs::CertificateDump waiting;
    waiting.identity = "spiffe://cluster.local/ns/apps/sa/api";
    waiting.state = "Initializing";
    inputs.certificates = {available, waiting};

    zt::config::DumpPod pod;
    pod.uid = "Kubernetes//Pod/default/client";
    pod.up = true;
    pod.name = "client";
    pod.namespace_name = "default";
    pod.service_account = "client";
    pod.outbound.push_back({"198.18.1.2:43210", "198.19.0.10:80", "198.18.2.2:15008", "HBONE"});
    pod.inbound.push_back({"198.18.2.2:40000", "", "198.18.1.2:8080", "TCP"});
    inputs.pods.push_back(pod);

    int64_t now_ns = zt::unix_ns();
    inputs.status.path = argv[1];
    if (loaded.snapshot) {
        inputs.status.last_loaded_unix_ns = now_ns;
        inputs.status.applied_sha256 = loaded.sha256;
        inputs.status.reloads_success_total = 1;
    } else {
        inputs.status.last_failure_unix_ns = now_ns;
        inputs.status.reloads_failure_total = 1;
        inputs.status.last_errors = loaded.errors;
    }
    inputs.status.warnings = loaded.warnings;

    std::string text = zt::config::render_config_dump(inputs);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}
