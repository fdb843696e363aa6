#pragma once

// CertStore keeps one certificate entry per local identity and publishes each as an immutable
// `std::shared_ptr<const CertifiedKey>` for hbone/ (ztunnel's SecretManager, `src/identity/
// manager.rs`). Two sources:
//
//  - Issuer mode (`--ca-dir`, and later a remote CA client in src/): certificates are requested
//    ahead of need (`want`) for every identity of a local pod, renewed at half-life, and retried
//    after a failure with capped exponential backoff (~1 s x2 ±20 %, at most 150 s) while a
//    still-valid certificate stays in use.
//  - File mode (`--cert-dir`, docs/contract.md §4): a control agent writes `DIR/root-cert.pem` and
//    `DIR/<ns>/<sa>/{cert-chain.pem,key.pem}`. Each `tick` stats the files (every
//    `file_poll_interval_ms`; every `missing_poll_interval_ms` for an identity that is wanted
//    and has no certificate yet, and for the roots while there are none, so a new pod's first
//    certificate is picked up soon after the agent wrote it); a change is loaded for new
//    handshakes at once. A certificate filed
//    under another identity, an expired one, a key that does not match or a chain that does not
//    verify is refused and logged, and the last good one stays in use; one refused only as not
//    yet valid (the CA's clock ahead of ours) is read again at every poll until it is valid. A
//    new root bundle re-verifies every published certificate at once; one whose leaf no longer
//    chains to it is withdrawn (the identity is unavailable until a matching leaf arrives).
//    src/ may add an inotify watch and call `reload` to react faster than the poll.
//
// Time and threading: the store makes no network calls and starts no thread. The owner (src/)
// calls `tick()` from one control thread whenever `next_due_mono_ns()` passes; `get`, `want`,
// `forget`, `dump` and `stats` may be called from any thread. The clock is injected so tests drive
// renewal with a `FakeClock`; timers use its monotonic reading, validity its wall time. In file
// mode `tick` reads the (small, capped) files under the lock; in issuer mode it signs outside it.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "certs/certified_key.h"
#include "certs/dump.h"
#include "certs/identity.h"
#include "certs/issue.h"
#include "certs/verify.h"
#include "zt/clock.h"
#include "zt/result.h"

namespace zt::certs {

// CertState is an entry's state, as ztunnel reports it in `/config_dump`.
enum class CertState : uint8_t {
    initializing,  // Nothing obtained yet (first request in flight, or files not written yet).
    available,     // A valid certificate is published (possibly while a renewal is failing).
    unavailable,   // The last attempt failed and no valid certificate is left; see the reason.
};

// to_string returns "Initializing", "Available" or "Unavailable".
std::string_view to_string(CertState state);

// Issuer produces certificates for the store in issuer mode. `issue` runs on the thread calling
// `CertStore::tick`, outside the store's lock.
class Issuer {
public:
    virtual ~Issuer() = default;

    // issue returns a new, validated certificate for `id` at wall time `now_unix`, or the reason
    // it could not.
    virtual Result<std::shared_ptr<const CertifiedKey>> issue(const Identity& id,
                                                              int64_t now_unix) = 0;
};

// LocalCaIssuer signs with an in-process `LocalCa` (local-CA mode) and trusts its roots.
class LocalCaIssuer final : public Issuer {
public:
    // LocalCaIssuer issues leaves valid for `ttl_seconds`. Fails (at issue time) with
    // `Errc::cert_parse` if the CA's root PEM is not a valid bundle.
    LocalCaIssuer(LocalCa ca, int64_t ttl_seconds);

    Result<std::shared_ptr<const CertifiedKey>> issue(const Identity& id,
                                                      int64_t now_unix) override;

private:
    LocalCa ca_;
    int64_t ttl_seconds_;
    Result<std::shared_ptr<const TrustBundle>> roots_;
    // chain_verified: one issued leaf passed the full check against `roots_`, so the CA's path
    // to them is known good and later leaves are checked as leaves only (a third of the cost).
    bool chain_verified_ = false;
};

// StoreOptions are the store's limits; the defaults are ztunnel's.
struct StoreOptions {
    int64_t backoff_initial_ms = 1000;
    int64_t backoff_max_ms = 150'000;
    uint32_t backoff_jitter_percent = 20;
    int64_t file_poll_interval_ms = 1000;
    // missing_poll_interval_ms is the file-mode poll of an identity without a certificate (never
    // had one, or refused; not one refused only as not yet valid, re-read every
    // `file_poll_interval_ms`) and of a missing root bundle while an identity is wanted: a new
    // pod's connections wait for its first certificate (src/proxy/workload_wait.h), so it is
    // looked for more often; a look is two stats, the files are read only when they changed.
    int64_t missing_poll_interval_ms = 100;
    // min_refresh_ms floors the time to the next attempt after a success, so a certificate whose
    // half-life is already past (notBefore in the future, a tiny TTL) cannot make `tick` spin.
    int64_t min_refresh_ms = 1000;
    uint64_t jitter_seed = 0x5eed;
};

// StoreStats are the store's counters since creation, for metrics.
struct StoreStats {
    uint64_t issued_total = 0;          // certificates obtained from the issuer
    uint64_t issue_failures_total = 0;  // failed issuer attempts
    uint64_t files_loaded_total = 0;    // certificate files accepted (first load or rotation)
    uint64_t files_refused_total = 0;   // certificate or root files refused
    uint64_t expired_total = 0;         // published certificates that expired unreplaced
    // roots_mismatch_total counts identities made unavailable because a new root bundle no
    // longer verifies their leaf (file mode).
    uint64_t roots_mismatch_total = 0;
    std::map<Errc, uint64_t> refusals_by_reason;  // issue failures and refusals, by reason
    // earliest_expiry_unix is the soonest notAfter among published certificates (0 when none),
    // for a `cert_expiry_timestamp_seconds` gauge that alerts before expiry.
    int64_t earliest_expiry_unix = 0;
};

class CertStore {
public:
    // with_issuer makes an issuer-mode store. Borrows `clock`, which must outlive the store.
    static std::unique_ptr<CertStore> with_issuer(std::unique_ptr<Issuer> issuer,
                                                  const Clock& clock, StoreOptions options = {});

    // with_files makes a file-mode store reading `cert_dir` (docs/contract.md §4). Borrows `clock`.
    static std::unique_ptr<CertStore> with_files(std::string cert_dir, const Clock& clock,
                                                 StoreOptions options = {});

    // want registers `id` (a local pod's identity) so its certificate is obtained ahead of need,
    // due at once. Returns the published certificate if there is one already (so an on-demand
    // caller can use it), else null. Idempotent.
    std::shared_ptr<const CertifiedKey> want(const Identity& id);

    // forget drops `id` (its last local pod left). Handshakes holding its certificate keep it.
    void forget(const Identity& id);

    // get returns the certificate published for `id`, or null when there is none (unknown
    // identity, initializing, or unavailable). Lock held only to copy the pointer.
    std::shared_ptr<const CertifiedKey> get(const Identity& id) const;

    // state returns `id`'s state and, when unavailable (or a renewal is failing), the last
    // failure. Unknown identities report `initializing` with `Errc::not_found`.
    std::pair<CertState, Errc> state(const Identity& id) const;

    // tick does all work that is due at the clock's current time: issuing and renewing (issuer
    // mode), stat-ing and reloading files (file mode), and retiring expired certificates.
    void tick();

    // reload makes `id` due on the next `tick`: in file mode a forced re-read of its files and of
    // the root bundle even if they look unchanged (for an inotify watch in src/); in issuer mode
    // an immediate renewal (e.g. after the CA was rotated).
    void reload(const Identity& id);

    // next_due_mono_ns is the monotonic time at which `tick` next has work, or INT64_MAX.
    int64_t next_due_mono_ns() const;

    // dump returns the `certificates` section of `/config_dump`, sorted by identity.
    std::vector<CertificateDump> dump() const;

    // stats returns a copy of the counters.
    StoreStats stats() const;

    ~CertStore();

private:
    struct FileStamp;
    struct Entry;

    CertStore(const Clock& clock, StoreOptions options);

    int64_t backoff_ns(uint32_t failures);
    void count_refusal(Errc code);
    Result<std::shared_ptr<const CertifiedKey>> attempt(const Identity& id, Entry& entry,
                                                        int64_t now_unix, bool& unchanged);
    void apply(const Identity& id, Entry& entry, Result<std::shared_ptr<const CertifiedKey>> result,
               int64_t now_mono, int64_t now_unix);
    void tick_roots(int64_t now_mono, int64_t now_unix);
    // poll_interval_ns is how soon file mode looks at `entry`'s files again.
    int64_t poll_interval_ns(const Entry& entry) const;

    const Clock& clock_;
    StoreOptions options_;
    std::unique_ptr<Issuer> issuer_;  // issuer mode
    std::string cert_dir_;            // file mode
    mutable std::mutex mu_;
    std::map<Identity, std::unique_ptr<Entry>> entries_;
    std::shared_ptr<const TrustBundle> file_roots_;  // file mode: the last good root bundle
    std::unique_ptr<FileStamp> roots_stamp_;
    int64_t roots_due_mono_ns_ = 0;
    bool roots_forced_ = false;
    uint64_t rng_state_;
    StoreStats stats_;
};

}  // namespace zt::certs
