#pragma once

// CaClient keeps a certificate for every identity of a pod on this node, from the Istio CA
// (`istio.v1.auth.IstioCertificateService/CreateCertificate`) over the agent's own gRPC, and
// writes them as ztunnel's certificate folder (docs/contract.md §4, `cert_files.h`), as ztunnel's
// SecretManager and CaClient do (shared mode):
//
//  - per identity a fresh ECDSA P-256 key and a CSR whose only URI SAN is the SPIFFE ID, with
//    `validity_duration` = SECRET_TTL and `metadata {ImpersonatedIdentity: <spiffe id>}`, and the
//    headers `authorization: Bearer <token>` (token file read at every call) and `clusterid`;
//  - the response: leaf first, intermediates, and the root bundle last (every root of it is
//    written); the leaf must carry exactly the requested identity, match the key and verify to
//    the bundle, or the response is refused;
//  - renewal at half-life; after a failure, per-identity backoff from 1 s doubling with ±20 %
//    jitter up to 150 s, a still-valid certificate staying in place meanwhile;
//  - at most `max_in_flight` (8) requests at once; identities no longer wanted are forgotten
//    and their folder removed; a still-valid certificate on disk is reused at start.
//
// The owner says which identities are wanted (`set_identities`); everything runs on the agent's
// loop. Log target `ca`.

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "certs/certified_key.h"
#include "certs/identity.h"
#include "src/agent/agent_metrics.h"
#include "src/agent/grpc_channel.h"
#include "src/agent/loop.h"

namespace zt::agent {

// kCreateCertificateMethod is the gRPC path of the CA call.
inline constexpr std::string_view kCreateCertificateMethod =
        "/istio.v1.auth.IstioCertificateService/CreateCertificate";

struct CaClientOptions {
    grpc::ChannelOptions channel;
    std::string token_file;  // Read at every call; missing: no `authorization` header.
    std::string cluster_id = "Kubernetes";
    std::string cert_dir;  // Where ztunnel's certificate folder is written.
    int64_t secret_ttl_s = 24 * 3600;
    size_t max_in_flight = 8;
    int64_t backoff_initial_ns = 1 * kNanosPerSecond;
    int64_t backoff_max_ns = 150 * kNanosPerSecond;
    uint32_t backoff_jitter_percent = 20;
    int64_t request_timeout_ns = 10 * kNanosPerSecond;
    // tick_ns is how often due renewals are looked for (completions also start the next ones).
    int64_t tick_ns = 100 * kNanosPerMilli;
};

// CertEntryState is one identity's state, as ztunnel's SecretManager names them.
enum class CertEntryState : uint8_t {
    initializing,  // No certificate yet; the first request is due or in flight.
    available,     // A valid certificate is written (a renewal may be failing).
    unavailable,   // The last request failed and no valid certificate is left.
};

std::string_view to_string(CertEntryState state);

// CertStatus is one identity's state for /debug.
struct CertStatus {
    std::string identity;
    CertEntryState state = CertEntryState::initializing;
    int64_t not_after_unix = 0;
    int64_t refresh_at_unix = 0;
    int64_t retry_in_ns = 0;  // Until the next attempt (0 when due or in flight).
    bool in_flight = false;
    uint64_t issued = 0;
    std::string last_error;
};

class CaClient final : public grpc::ChannelObserver, public grpc::CallObserver {
public:
    // CaClient borrows `loop` and `metrics`, which must outlive it.
    CaClient(Loop& loop, CaClientOptions options, AgentMetrics& metrics);
    ~CaClient() override;

    // start arms the client's tick.
    void start();

    // set_identities says which identities are wanted now; new ones are requested (or taken
    // from disk when still valid), ones left out are forgotten and their files removed. The
    // first call with `complete` (the owner knows every pod of the node) also removes identity
    // folders left on disk by an earlier run for identities nobody wants.
    void set_identities(const std::set<certs::Identity>& wanted, bool complete);

    // shutdown cancels what is in flight and stops the tick; `stopped` says when nothing of the
    // client is left in the kernel.
    void shutdown();
    bool stopped() const;

    // all_available says whether every wanted identity has a valid certificate.
    bool all_available() const;

    std::vector<CertStatus> status() const;

private:
    struct Entry {
        explicit Entry(certs::Identity id_in) : id(std::move(id_in)) {}

        certs::Identity id;
        std::shared_ptr<const certs::CertifiedKey> cert;
        CertEntryState state = CertEntryState::initializing;
        int64_t due_mono_ns = 0;
        int64_t backoff_ns = 0;  // 0: the next failure starts at the initial backoff.
        bool in_flight = false;
        uint64_t issued = 0;
        std::string last_error;
    };

    struct Pending {
        std::string identity;
        certs::KeyPtr key;
        std::string response;
        bool has_response = false;
        int64_t started_mono_ns = 0;
    };

    static void on_tick(uring::Completion& self, int32_t res, uint32_t flags);
    void on_channel_closed(grpc::Channel& channel, std::string_view reason) override;
    void on_call_message(grpc::Call& call, std::string message) override;
    void on_call_closed(grpc::Call& call, const grpc::CallEnd& end) override;

    // pump starts due requests up to the in-flight limit.
    void pump();
    Result<void> request(Entry& entry);
    // accept checks and writes a response; the error text says why it was refused.
    Result<std::shared_ptr<const certs::CertifiedKey>> accept(const Entry& entry, Pending& pending,
                                                              std::string& error);
    void succeeded(Entry& entry, std::shared_ptr<const certs::CertifiedKey> cert);
    void failed(Entry& entry, const std::string& error);
    std::vector<hbone::H2Field> metadata();
    void update_gauges();

    Loop& loop_;
    CaClientOptions options_;
    AgentMetrics& metrics_;
    std::map<std::string, Entry> entries_;  // By SPIFFE ID.
    std::map<grpc::Call*, Pending> calls_;
    std::shared_ptr<grpc::Channel> channel_;
    uring::Timer tick_timer_;
    std::mt19937_64 jitter_;
    bool started_ = false;
    bool stopping_ = false;
    bool swept_ = false;  // Stale folders of an earlier run removed.
};

}  // namespace zt::agent
