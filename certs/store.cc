// store.cc implements the per-identity certificate state machine of store.h: issue/renew with
// backoff (issuer mode) or stat/reload/refuse (file mode), and the atomic publication of each new
// `CertifiedKey`. It must never drop a still-valid certificate because a renewal or a rotated file
// is bad, never block `get` on signing (the issuer runs outside the lock), and never make a
// network call or start a thread.

#include "certs/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "zt/log.h"

namespace zt::certs {
namespace {

constexpr std::string_view kLogTarget = "certs";

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

}  // namespace

// FileStamp identifies one version of a file cheaply, so an unchanged file is not re-read.
struct CertStore::FileStamp {
    bool seen = false;  // stat has run at least once
    bool exists = false;
    uint64_t dev = 0;
    uint64_t ino = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;

    static FileStamp of(const std::string& path) {
        FileStamp stamp;
        stamp.seen = true;
        struct stat st;
        if (::stat(path.c_str(), &st) == 0) {
            stamp.exists = true;
            stamp.dev = st.st_dev;
            stamp.ino = st.st_ino;
            stamp.size = st.st_size;
            stamp.mtime_ns = int64_t(st.st_mtim.tv_sec) * kNanosPerSecond + st.st_mtim.tv_nsec;
        }
        return stamp;
    }

    friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// Entry is one identity's state. Guarded by `mu_`.
struct CertStore::Entry {
    CertState state = CertState::initializing;
    Errc last_error = Errc::not_found;
    std::shared_ptr<const CertifiedKey> current;
    int64_t due_mono_ns = 0;
    uint32_t failures = 0;
    bool forced = false;
    // retrying_not_yet_valid is set while unchanged files that were refused as not yet valid
    // are re-read every poll: the refusal was logged and counted once already.
    bool retrying_not_yet_valid = false;
    FileStamp chain_stamp;
    FileStamp key_stamp;
};

std::string_view to_string(CertState state) {
    switch (state) {
        case CertState::initializing:
            return "Initializing";
        case CertState::available:
            return "Available";
        case CertState::unavailable:
            return "Unavailable";
    }
    return "Unavailable";
}

LocalCaIssuer::LocalCaIssuer(LocalCa ca, int64_t ttl_seconds)
    : ca_(std::move(ca))
    , ttl_seconds_(ttl_seconds)
    , roots_(TrustBundle::from_pem(ca_.root_pem())) {}

Result<std::shared_ptr<const CertifiedKey>> LocalCaIssuer::issue(const Identity& id,
                                                                 int64_t now_unix) {
    if (!roots_) {
        return fail(roots_.error());
    }
    auto issued = ca_.issue(id, now_unix, ttl_seconds_);
    if (!issued) {
        return fail(issued.error());
    }
    auto key_pem = private_key_to_pem(issued->key.get());
    if (!key_pem) {
        return fail(Errc::cert_issue);
    }
    auto check = chain_verified_ ? CertifiedKey::ChainCheck::issued_by_verified_ca
                                 : CertifiedKey::ChainCheck::full;
    auto made = CertifiedKey::make(id, issued->chain_pem, *key_pem, *roots_, now_unix, check);
    if (made) {
        chain_verified_ = true;
    }
    return made;
}

CertStore::CertStore(const Clock& clock, StoreOptions options)
    : clock_(clock)
    , options_(options)
    , roots_stamp_(std::make_unique<FileStamp>())
    , rng_state_(options.jitter_seed) {}

CertStore::~CertStore() = default;

std::unique_ptr<CertStore> CertStore::with_issuer(std::unique_ptr<Issuer> issuer,
                                                  const Clock& clock, StoreOptions options) {
    ZT_ASSERT(issuer != nullptr);
    std::unique_ptr<CertStore> store(new CertStore(clock, options));
    store->issuer_ = std::move(issuer);
    return store;
}

std::unique_ptr<CertStore> CertStore::with_files(std::string cert_dir, const Clock& clock,
                                                 StoreOptions options) {
    std::unique_ptr<CertStore> store(new CertStore(clock, options));
    store->cert_dir_ = std::move(cert_dir);
    return store;
}

std::shared_ptr<const CertifiedKey> CertStore::want(const Identity& id) {
    std::lock_guard lock(mu_);
    auto [it, inserted] = entries_.try_emplace(id, nullptr);
    if (inserted) {
        it->second = std::make_unique<Entry>();
        it->second->due_mono_ns = clock_.monotonic_ns();
        if (!issuer_ && !file_roots_) {
            // Its certificate needs the roots too: they are looked for on this tick as well.
            roots_due_mono_ns_ = std::min(roots_due_mono_ns_, it->second->due_mono_ns);
        }
    }
    return it->second->current;
}

void CertStore::forget(const Identity& id) {
    std::lock_guard lock(mu_);
    entries_.erase(id);
}

std::shared_ptr<const CertifiedKey> CertStore::get(const Identity& id) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second->current;
}

std::pair<CertState, Errc> CertStore::state(const Identity& id) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
        return {CertState::initializing, Errc::not_found};
    }
    return {it->second->state, it->second->last_error};
}

void CertStore::reload(const Identity& id) {
    std::lock_guard lock(mu_);
    roots_forced_ = true;
    roots_due_mono_ns_ = 0;
    auto it = entries_.find(id);
    if (it != entries_.end()) {
        it->second->forced = true;
        it->second->due_mono_ns = 0;
    }
}

int64_t CertStore::next_due_mono_ns() const {
    std::lock_guard lock(mu_);
    int64_t next = issuer_ ? INT64_MAX : roots_due_mono_ns_;
    int64_t now_unix = clock_.unix_seconds();
    int64_t now_mono = clock_.monotonic_ns();
    for (const auto& [id, entry] : entries_) {
        next = std::min(next, entry->due_mono_ns);
        if (entry->current) {
            // Expiry of a published certificate is work too (it must be retired).
            int64_t left_s = std::max<int64_t>(0, entry->current->not_after_unix() - now_unix);
            next = std::min(next, now_mono + left_s * kNanosPerSecond);
        }
    }
    return next;
}

int64_t CertStore::backoff_ns(uint32_t failures) {
    int64_t base_ms = options_.backoff_initial_ms;
    for (uint32_t i = 1; i < failures && base_ms < options_.backoff_max_ms; ++i) {
        base_ms *= 2;
    }
    base_ms = std::min(base_ms, options_.backoff_max_ms);
    // Jitter uniformly within ±backoff_jitter_percent, so many identities failing together do
    // not retry together.
    int64_t span_ms = base_ms * options_.backoff_jitter_percent / 100;
    int64_t jitter_ms = 0;
    if (span_ms > 0) {
        jitter_ms = int64_t(splitmix64(rng_state_) % uint64_t(2 * span_ms + 1)) - span_ms;
    }
    int64_t delay_ms = std::min(base_ms + jitter_ms, options_.backoff_max_ms);
    return std::max<int64_t>(delay_ms, 1) * kNanosPerMilli;
}

void CertStore::count_refusal(Errc code) {
    stats_.refusals_by_reason[code] += 1;
}

int64_t CertStore::poll_interval_ns(const Entry& entry) const {
    bool missing = entry.current == nullptr && !entry.retrying_not_yet_valid;
    return (missing ? options_.missing_poll_interval_ms : options_.file_poll_interval_ms) *
           kNanosPerMilli;
}

void CertStore::tick_roots(int64_t now_mono, int64_t now_unix) {
    if (now_mono < roots_due_mono_ns_ && !roots_forced_) {
        return;
    }
    // Without roots no identity can have a certificate: while one is wanted they are looked for
    // as often as its own files.
    bool missing = !file_roots_ && !entries_.empty();
    roots_due_mono_ns_ = now_mono + (missing ? options_.missing_poll_interval_ms
                                             : options_.file_poll_interval_ms) *
                                            kNanosPerMilli;
    std::string path = cert_dir_ + "/root-cert.pem";
    FileStamp stamp = FileStamp::of(path);
    if (stamp == *roots_stamp_ && !roots_forced_) {
        return;
    }
    roots_forced_ = false;
    *roots_stamp_ = stamp;
    auto text = read_pem_file(path);
    Result<std::shared_ptr<const TrustBundle>> bundle =
            text ? TrustBundle::from_pem(*text)
                 : Result<std::shared_ptr<const TrustBundle>>(fail(text.error()));
    if (!bundle && bundle.error().code == Errc::not_found && !file_roots_) {
        // The agent has not written the roots yet: that is "not yet", not a refusal.
        log::debug(kLogTarget, "waiting for root certificates", {log::Field::str("path", path)});
        return;
    }
    if (!bundle) {
        stats_.files_refused_total += 1;
        count_refusal(bundle.error().code);
        log::warn(kLogTarget, "refused root certificates; keeping the last good ones",
                  {log::Field::str("path", path),
                   log::Field::display("reason", zt::to_string(bundle.error().code))});
        return;
    }
    file_roots_ = std::move(bundle).value();
    roots_due_mono_ns_ = now_mono + options_.file_poll_interval_ms * kNanosPerMilli;
    log::info(
            kLogTarget, "loaded root certificates",
            {log::Field::str("path", path), log::Field::num("roots", file_roots_->roots().size())});
    // Every CertifiedKey embeds the roots its handshakes verify peers against. Re-publish each
    // current one with the new bundle at once, whatever state its files are in, so no new
    // handshake trusts a root that was just removed. An identity whose own leaf does not chain to
    // the new roots cannot keep its certificate either: it becomes unavailable (readiness names
    // it) until a leaf that matches the new roots is written. Its files are re-read below in any
    // case (the agent may have written the new leaf already).
    for (auto& [id, entry] : entries_) {
        entry->forced = true;
        entry->due_mono_ns = 0;
        if (!entry->current) {
            continue;
        }
        auto rebound = entry->current->with_roots(file_roots_, now_unix);
        if (rebound) {
            entry->current = std::move(rebound).value();
            continue;
        }
        entry->current.reset();
        entry->state = CertState::unavailable;
        entry->last_error = rebound.error().code;
        stats_.roots_mismatch_total += 1;
        log::error(kLogTarget,
                   "certificate does not chain to the new root certificates; identity unavailable "
                   "until a matching certificate is written",
                   {log::Field::str("identity", id.to_string()),
                    log::Field::display("reason", zt::to_string(rebound.error().code))});
    }
}

Result<std::shared_ptr<const CertifiedKey>> CertStore::attempt(const Identity& id, Entry& entry,
                                                               int64_t now_unix, bool& unchanged) {
    unchanged = false;
    std::string dir = cert_dir_ + "/" + std::string(id.namespace_name()) + "/" +
                      std::string(id.service_account());
    // Safe to join: SPIFFE segments contain no `/` and are never `.` or `..`.
    std::string chain_path = dir + "/cert-chain.pem";
    std::string key_path = dir + "/key.pem";
    FileStamp chain_stamp = FileStamp::of(chain_path);
    FileStamp key_stamp = FileStamp::of(key_path);
    bool same_files = chain_stamp == entry.chain_stamp && key_stamp == entry.key_stamp;
    if (!entry.forced && same_files) {
        unchanged = true;
        return fail(Errc::would_block);
    }
    if (!same_files) {
        entry.retrying_not_yet_valid = false;
    }
    entry.forced = false;
    entry.chain_stamp = chain_stamp;
    entry.key_stamp = key_stamp;
    if (!file_roots_) {
        return fail(Errc::not_found);
    }
    auto chain = read_pem_file(chain_path);
    if (!chain) {
        return fail(chain.error());
    }
    auto key = read_pem_file(key_path);
    if (!key) {
        return fail(key.error());
    }
    return CertifiedKey::make(id, *chain, *key, file_roots_, now_unix);
}

void CertStore::apply(const Identity& id, Entry& entry,
                      Result<std::shared_ptr<const CertifiedKey>> result, int64_t now_mono,
                      int64_t now_unix) {
    const std::string& name = id.to_string();
    if (result) {
        std::shared_ptr<const CertifiedKey> fresh = std::move(result).value();
        bool rotated = entry.current != nullptr;
        entry.current = fresh;
        entry.state = CertState::available;
        entry.failures = 0;
        entry.retrying_not_yet_valid = false;
        if (issuer_) {
            stats_.issued_total += 1;
            int64_t refresh_ns = (fresh->refresh_at_unix() - now_unix) * kNanosPerSecond;
            entry.due_mono_ns =
                    now_mono + std::max(refresh_ns, options_.min_refresh_ms * kNanosPerMilli);
        } else {
            stats_.files_loaded_total += 1;
            entry.due_mono_ns = now_mono + poll_interval_ns(entry);
        }
        log::info(kLogTarget, rotated ? "certificate renewed" : "certificate available",
                  {log::Field::str("identity", name),
                   log::Field::str("expires", format_rfc3339(fresh->not_after_unix()))});
        return;
    }
    Errc code = result.error().code;
    entry.last_error = code;
    if (issuer_) {
        count_refusal(code);
        stats_.issue_failures_total += 1;
        entry.failures += 1;
        int64_t retry = now_mono + backoff_ns(entry.failures);
        if (entry.current) {
            // Keep serving the still-valid certificate; retry before it expires at the latest.
            int64_t left_ns = (entry.current->not_after_unix() - now_unix) * kNanosPerSecond;
            retry = std::min(retry, now_mono + std::max<int64_t>(left_ns, 0));
        } else {
            entry.state = CertState::unavailable;
        }
        entry.due_mono_ns = retry;
        log::warn(kLogTarget, "certificate request failed; will retry",
                  {log::Field::str("identity", name),
                   log::Field::display("reason", zt::to_string(code)),
                   log::Field::num("failures", entry.failures)});
        return;
    }
    // Files refused only as not yet valid are read again every poll anyway (below); other
    // failures leave an identity without a certificate looked for sooner.
    bool keep_poll = entry.current != nullptr || code == Errc::cert_not_yet_valid;
    entry.due_mono_ns = now_mono + (keep_poll ? options_.file_poll_interval_ms
                                              : options_.missing_poll_interval_ms) *
                                           kNanosPerMilli;
    if (code == Errc::cert_not_yet_valid) {
        // The CA's clock runs ahead of ours: the same files become valid by themselves, so they
        // are read again at every poll (not only when they change) until they are.
        entry.forced = true;
        if (entry.retrying_not_yet_valid) {
            log::debug(kLogTarget, "certificate still not yet valid; will retry",
                       {log::Field::str("identity", name)});
            return;
        }
        entry.retrying_not_yet_valid = true;
    }
    if (code == Errc::not_found && entry.state == CertState::initializing) {
        // Files an agent has not written yet are "not yet", not a refusal.
        log::debug(kLogTarget, "waiting for certificate files",
                   {log::Field::str("identity", name), log::Field::str("dir", cert_dir_)});
        return;
    }
    stats_.files_refused_total += 1;
    count_refusal(code);
    if (!entry.current) {
        entry.state = CertState::unavailable;
    }
    log::warn(kLogTarget,
              entry.current ? "refused certificate files; keeping the last good certificate"
                            : "refused certificate files",
              {log::Field::str("identity", name), log::Field::str("dir", cert_dir_),
               log::Field::display("reason", zt::to_string(code))});
}

void CertStore::tick() {
    const int64_t now_mono = clock_.monotonic_ns();
    const int64_t now_unix = clock_.unix_seconds();
    std::vector<Identity> due;
    {
        std::lock_guard lock(mu_);
        if (!issuer_) {
            tick_roots(now_mono, now_unix);
        }
        for (auto& [id, entry] : entries_) {
            if (entry->current && now_unix >= entry->current->not_after_unix()) {
                entry->current.reset();
                entry->state = CertState::unavailable;
                entry->last_error = Errc::cert_expired;
                stats_.expired_total += 1;
                entry->due_mono_ns = std::min(entry->due_mono_ns, now_mono);
                log::error(kLogTarget, "certificate expired with no replacement",
                           {log::Field::str("identity", id.to_string())});
            }
            if (entry->due_mono_ns > now_mono) {
                continue;
            }
            if (issuer_) {
                due.push_back(id);
                continue;
            }
            bool unchanged = false;
            auto result = attempt(id, *entry, now_unix, unchanged);
            if (unchanged) {
                entry->due_mono_ns = now_mono + poll_interval_ns(*entry);
            } else {
                apply(id, *entry, std::move(result), now_mono, now_unix);
            }
        }
    }
    // Issuer mode: sign outside the lock so `get` never waits for a signature.
    for (const Identity& id : due) {
        auto result = issuer_->issue(id, now_unix);
        std::lock_guard lock(mu_);
        auto it = entries_.find(id);
        if (it != entries_.end()) {
            apply(id, *it->second, std::move(result), now_mono, now_unix);
        }
    }
}

std::vector<CertificateDump> CertStore::dump() const {
    std::lock_guard lock(mu_);
    std::vector<CertificateDump> out;
    for (const auto& [id, entry] : entries_) {
        CertificateDump item;
        item.identity = id.to_string();
        item.state = std::string(to_string(entry->state));
        if (entry->state == CertState::unavailable) {
            item.state += ": ";
            item.state += zt::to_string(entry->last_error);
        }
        if (entry->current) {
            fill_chains(*entry->current, item);
        }
        out.push_back(std::move(item));
    }
    return out;  // std::map iterates in identity order, as ztunnel sorts.
}

StoreStats CertStore::stats() const {
    std::lock_guard lock(mu_);
    StoreStats out = stats_;
    for (const auto& [id, entry] : entries_) {
        if (entry->current && (out.earliest_expiry_unix == 0 ||
                               entry->current->not_after_unix() < out.earliest_expiry_unix)) {
            out.earliest_expiry_unix = entry->current->not_after_unix();
        }
    }
    return out;
}

}  // namespace zt::certs
