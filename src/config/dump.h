#pragma once

// `/config_dump` in ztunnel's shape (docs/ecosystem.md §1.3): one JSON document, 2-space indent,
// every object's keys sorted, top-level `certificates`, `config`, `policies`, `services`,
// `stagedServices`, `staticConfig`, `version`, `workloads`, `workloadState`, plus ours:
// `configStatus` and `unsupported`. `istioctl ztunnel-config` parses it, so field names and
// encodings follow ztunnel's serde output exactly. The caller gathers the inputs on the control
// thread; rendering is a pure function of them.

#include <cstdint>
#include <string>
#include <vector>

#include "certs/dump.h"
#include "src/state/snapshot.h"

namespace zt::config {

// DumpConnection is one entry of `workloadState.<uid>.connections.{inbound,outbound}`: addresses
// as `ip:port`, `original_dst` empty when unknown (rendered as null), `protocol` `TCP` or `HBONE`.
struct DumpConnection {
    std::string src;
    std::string original_dst;
    std::string actual_dst;
    std::string protocol;
};

// DumpPod is one node-local pod's `workloadState` entry.
struct DumpPod {
    std::string uid;
    bool up = false;  // "Up" when every worker listens in the pod, else "Pending".
    std::string name;
    std::string namespace_name;
    std::string service_account;
    std::vector<DumpConnection> inbound;
    std::vector<DumpConnection> outbound;
};

// DumpStatus is our `configStatus`: the config file's reload state.
struct DumpStatus {
    std::string path;
    int64_t last_loaded_unix_ns = 0;  // 0: never.
    std::string applied_sha256;
    uint64_t reloads_success_total = 0;
    uint64_t reloads_failure_total = 0;
    int64_t last_failure_unix_ns = 0;      // 0: never.
    std::vector<std::string> last_errors;  // Rendered as `lastError` (joined) and `lastErrors`.
    std::vector<std::string> warnings;
};

// DumpSetting is one `config` entry: a camelCase key and its value, already JSON-encoded
// (`"\"127.0.0.1:15000\""`, `"2"`, `"{\"secs\":5,\"nanos\":0}"`).
struct DumpSetting {
    std::string key;
    std::string json_value;
};

// DumpInputs is everything the dump shows. `snapshot` may be null (no valid config yet: the
// mesh sections are empty). `static_config` is the config file as last read, parsed again for
// `staticConfig` (null when it does not parse).
struct DumpInputs {
    const state::Snapshot* snapshot = nullptr;
    const state::Snapshot* static_config = nullptr;
    std::vector<certs::CertificateDump> certificates;
    std::vector<DumpPod> pods;
    std::vector<DumpSetting> settings;
    std::string version;
    std::string git_revision;
    std::string crypto_provider;  // e.g. "BoringSSL (Debian android-libboringssl)" or "... FIPS".
    std::string istio_version;
    DumpStatus status;
    std::vector<std::string> unsupported;
};

// render_config_dump renders the whole document.
std::string render_config_dump(const DumpInputs& inputs);

}  // namespace zt::config
