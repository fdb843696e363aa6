// ca_client.cc runs the agent's Istio CA client: one gRPC channel shared by up to eight unary
// CreateCertificate calls, a tick that starts due requests, and per identity a small state
// machine (initializing → available ⇄ renewing, or unavailable after a failure with nothing
// valid left). A response is accepted only if its leaf proves exactly the requested identity with
// our key and verifies to the bundle it came with; then the roots and the identity's pair are
// written (cert_files.h) and the renewal is scheduled at the leaf's half-life.

#include "src/agent/ca_client.h"

#include <algorithm>
#include <cerrno>

#include "certs/issue.h"
#include "certs/pem.h"
#include "certs/verify.h"
#include "citadel.pb.h"
#include "src/agent/cert_files.h"
#include "zt/log.h"

namespace zt::agent {

namespace {

constexpr std::string_view kTarget = "ca";

std::string trim(std::string text) {
    size_t end = text.find_last_not_of(" \t\r\n");
    size_t start = text.find_first_not_of(" \t\r\n");
    return start == std::string::npos ? std::string() : text.substr(start, end - start + 1);
}

std::string errc_text(const Error& error) {
    std::string text(to_string(error.code));
    if (error.sys_errno != 0) {
        text += " (errno " + std::to_string(error.sys_errno) + ")";
    }
    return text;
}

}  // namespace

std::string_view to_string(CertEntryState state) {
    switch (state) {
        case CertEntryState::initializing:
            return "Initializing";
        case CertEntryState::available:
            return "Available";
        case CertEntryState::unavailable:
            return "Unavailable";
    }
    return "unknown";
}

CaClient::CaClient(Loop& loop, CaClientOptions options, AgentMetrics& metrics)
    : loop_(loop)
    , options_(std::move(options))
    , metrics_(metrics)
    , jitter_(uint64_t(loop.clock().monotonic_ns()) ^ 0xca11ca11ULL) {
    tick_timer_.completion.callback = &CaClient::on_tick;
    tick_timer_.completion.context = this;
}

CaClient::~CaClient() {
    ZT_CHECK(!tick_timer_.completion.in_kernel);
    ZT_CHECK(channel_ == nullptr || channel_->state() == grpc::ChannelState::closed ||
             channel_->state() == grpc::ChannelState::idle);
}

void CaClient::start() {
    started_ = true;
    pump();
    loop_.ring().arm_timer(tick_timer_, options_.tick_ns);
}

void CaClient::set_identities(const std::set<certs::Identity>& wanted, bool complete) {
    int64_t now_unix = loop_.clock().unix_ns() / kNanosPerSecond;
    int64_t now_mono = loop_.clock().monotonic_ns();
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (wanted.count(it->second.id) != 0) {
            ++it;
            continue;
        }
        // The last pod of this identity left the node: forget it, as ztunnel does.
        log::info(kTarget, "identity no longer on this node; certificate removed",
                  {log::Field::str("identity", it->first)});
        if (auto removed = remove_identity(options_.cert_dir, it->second.id); !removed) {
            log::warn(kTarget, "cannot remove the certificate folder",
                      {log::Field::str("identity", it->first),
                       log::Field::str("error", errc_text(removed.error()))});
        }
        it = entries_.erase(it);  // A call in flight for it is discarded when it ends.
    }
    for (const certs::Identity& id : wanted) {
        if (entries_.count(id.to_string()) != 0) {
            continue;
        }
        Entry& entry = entries_.emplace(id.to_string(), Entry(id)).first->second;
        entry.due_mono_ns = now_mono;
        // A certificate of an earlier run that is still valid is used until its half-life.
        auto on_disk = load_identity(options_.cert_dir, id, now_unix);
        if (on_disk) {
            entry.cert = *on_disk;
            entry.state = CertEntryState::available;
            int64_t wait_s = std::max<int64_t>(0, entry.cert->refresh_at_unix() - now_unix);
            entry.due_mono_ns = now_mono + wait_s * kNanosPerSecond;
            log::info(kTarget, "reusing the certificate on disk",
                      {log::Field::str("identity", id.to_string()),
                       log::Field::str("expires",
                                       certs::format_rfc3339(entry.cert->not_after_unix())),
                       log::Field::num("renew_in_s", uint64_t(wait_s))});
        }
    }
    if (complete && !swept_) {
        swept_ = true;
        std::string_view td = wanted.empty() ? std::string_view() : wanted.begin()->trust_domain();
        for (const certs::Identity& stale : identities_on_disk(options_.cert_dir, td)) {
            if (!td.empty() && entries_.count(stale.to_string()) == 0) {
                log::info(kTarget, "removing the certificate of an identity no longer on this node",
                          {log::Field::str("identity", stale.to_string())});
                (void)remove_identity(options_.cert_dir, stale);
            }
        }
    }
    update_gauges();
    if (started_ && !stopping_) {
        pump();
    }
}

std::vector<hbone::H2Field> CaClient::metadata() {
    std::vector<hbone::H2Field> fields;
    if (!options_.token_file.empty()) {
        auto token = certs::read_pem_file(options_.token_file);
        if (token) {
            std::string value = trim(std::move(*token));
            if (!value.empty()) {
                fields.push_back({"authorization", "Bearer " + value});
            }
        } else if (token.error().code != Errc::not_found) {
            log::warn(kTarget, "cannot read the token file; asking without a token",
                      {log::Field::str("path", options_.token_file),
                       log::Field::str("error", errc_text(token.error()))});
        }
    }
    fields.push_back({"clusterid", options_.cluster_id});
    return fields;
}

void CaClient::pump() {
    if (stopping_) {
        return;
    }
    int64_t now = loop_.clock().monotonic_ns();
    // Earliest due first, so a backlog (a node full of new pods) is served in arrival order.
    std::vector<Entry*> due;
    for (auto& [name, entry] : entries_) {
        if (!entry.in_flight && entry.due_mono_ns <= now) {
            due.push_back(&entry);
        }
    }
    std::sort(due.begin(), due.end(),
              [](const Entry* a, const Entry* b) { return a->due_mono_ns < b->due_mono_ns; });
    for (Entry* entry : due) {
        if (calls_.size() >= options_.max_in_flight) {
            break;
        }
        if (auto started = request(*entry); !started) {
            failed(*entry, "cannot start the request: " + errc_text(started.error()));
        }
    }
}

Result<void> CaClient::request(Entry& entry) {
    auto key = certs::generate_p256_key();
    if (!key) {
        return fail(key.error().code);
    }
    auto csr = certs::make_csr_pem(key->get(), entry.id);
    if (!csr) {
        return fail(csr.error().code);
    }
    istio::v1::auth::IstioCertificateRequest message;
    message.set_csr(*csr);
    message.set_validity_duration(options_.secret_ttl_s);
    (*message.mutable_metadata()->mutable_fields())["ImpersonatedIdentity"].set_string_value(
            entry.id.to_string());
    if (channel_ == nullptr) {
        channel_ = std::make_shared<grpc::Channel>(loop_.ring(), loop_.clock(), options_.channel,
                                                   *this);
        std::shared_ptr<grpc::Channel> keep = channel_;
        keep->start();  // May fail at once (roots unreadable): on_channel_closed has run then.
        if (channel_ == nullptr) {
            return fail(Errc::h2_refused);
        }
    }
    int64_t now = loop_.clock().monotonic_ns();
    auto call = channel_->start_call(std::string(kCreateCertificateMethod), metadata(),
                                     now + options_.request_timeout_ns, *this);
    if (!call) {
        // Draining (GOAWAY) or closing: the next attempt makes a new channel.
        channel_->shutdown();
        return fail(call.error().code);
    }
    Pending& pending = calls_[*call];
    pending.identity = entry.id.to_string();
    pending.key = std::move(*key);
    pending.started_mono_ns = now;
    entry.in_flight = true;
    (void)(*call)->send(message.SerializeAsString());
    (*call)->close_send();
    log::debug(kTarget, "requesting a certificate",
               {log::Field::str("identity", entry.id.to_string()),
                log::Field::num("ttl_s", uint64_t(options_.secret_ttl_s))});
    return {};
}

void CaClient::on_call_message(grpc::Call& call, std::string message) {
    auto it = calls_.find(&call);
    if (it != calls_.end()) {
        it->second.response = std::move(message);
        it->second.has_response = true;
    }
}

void CaClient::on_call_closed(grpc::Call& call, const grpc::CallEnd& end) {
    auto it = calls_.find(&call);
    if (it == calls_.end()) {
        return;
    }
    Pending pending = std::move(it->second);
    calls_.erase(it);
    auto entry_it = entries_.find(pending.identity);
    if (entry_it == entries_.end()) {
        return;  // Forgotten while in flight.
    }
    Entry& entry = entry_it->second;
    entry.in_flight = false;
    if (stopping_) {
        return;
    }
    if (!end.status.ok()) {
        failed(entry, std::string(end.from_server ? "the CA refused: " : "call failed: ") +
                              std::string(grpc::to_string(end.status.code)) + ": " +
                              end.status.message);
    } else if (!pending.has_response) {
        failed(entry, "the CA answered OK without a response message");
    } else {
        std::string error;
        auto accepted = accept(entry, pending, error);
        if (accepted) {
            succeeded(entry, std::move(*accepted));
        } else {
            failed(entry, error);
        }
    }
    pump();
}

Result<std::shared_ptr<const certs::CertifiedKey>> CaClient::accept(const Entry& entry,
                                                                    Pending& pending,
                                                                    std::string& error) {
    istio::v1::auth::IstioCertificateResponse response;
    if (!response.ParseFromString(pending.response)) {
        error = "the response does not decode as IstioCertificateResponse";
        return fail(Errc::parse);
    }
    if (response.cert_chain_size() < 2) {
        // Leaf first and the root bundle last: fewer than two leaves us without trust anchors.
        error = "the response holds " + std::to_string(response.cert_chain_size()) +
                " element(s); a leaf and a root bundle are needed";
        return fail(Errc::cert_parse);
    }
    std::string chain_pem;
    for (int i = 0; i + 1 < response.cert_chain_size(); ++i) {
        chain_pem += response.cert_chain(i);
        if (!chain_pem.empty() && chain_pem.back() != '\n') {
            chain_pem += '\n';
        }
    }
    std::string roots_pem = response.cert_chain(response.cert_chain_size() - 1);
    if (!roots_pem.empty() && roots_pem.back() != '\n') {
        roots_pem += '\n';
    }
    auto roots = certs::TrustBundle::from_pem(roots_pem);
    if (!roots) {
        error = "the root bundle is invalid: " + errc_text(roots.error());
        return fail(roots.error().code);
    }
    auto key_pem = certs::private_key_to_pem(pending.key.get());
    if (!key_pem) {
        error = "cannot encode our key";
        return fail(key_pem.error().code);
    }
    int64_t now_unix = loop_.clock().unix_ns() / kNanosPerSecond;
    // make checks that the leaf's only URI SAN is exactly the identity asked for (SanError in
    // ztunnel), that it is our key's, and that the chain verifies to the bundle.
    auto cert = certs::CertifiedKey::make(entry.id, chain_pem, *key_pem, *roots, now_unix);
    if (!cert) {
        error = "the issued certificate is refused: " + errc_text(cert.error());
        return fail(cert.error().code);
    }
    if (auto written = write_roots(options_.cert_dir, roots_pem); !written) {
        error = "cannot write root-cert.pem: " + errc_text(written.error());
        return fail(written.error().code);
    }
    if (auto written = write_identity(options_.cert_dir, entry.id, (*cert)->chain_pem(), *key_pem);
        !written) {
        error = "cannot write the certificate files: " + errc_text(written.error());
        return fail(written.error().code);
    }
    return cert;
}

void CaClient::succeeded(Entry& entry, std::shared_ptr<const certs::CertifiedKey> cert) {
    int64_t now_unix = loop_.clock().unix_ns() / kNanosPerSecond;
    entry.cert = std::move(cert);
    entry.state = CertEntryState::available;
    entry.backoff_ns = 0;
    entry.last_error.clear();
    entry.issued++;
    // Renewal at half-life; a certificate whose half-life is already past (notBefore in the
    // future, a tiny TTL) waits at least one initial backoff instead of spinning.
    int64_t wait_ns =
            std::max<int64_t>((entry.cert->refresh_at_unix() - now_unix) * kNanosPerSecond,
                              options_.backoff_initial_ns);
    entry.due_mono_ns = loop_.clock().monotonic_ns() + wait_ns;
    metrics_.ca_requests.cell(AgentMetrics::kAgentShard, {"issued"})->increment();
    log::info(kTarget, "certificate issued",
              {log::Field::str("identity", entry.id.to_string()),
               log::Field::str("expires", certs::format_rfc3339(entry.cert->not_after_unix())),
               log::Field::num("renew_in_s", uint64_t(wait_ns / kNanosPerSecond))});
    update_gauges();
}

void CaClient::failed(Entry& entry, const std::string& error) {
    int64_t now_unix = loop_.clock().unix_ns() / kNanosPerSecond;
    entry.last_error = error;
    entry.backoff_ns = entry.backoff_ns == 0
                               ? options_.backoff_initial_ns
                               : std::min(entry.backoff_ns * 2, options_.backoff_max_ns);
    // ±jitter around the current step, as ztunnel's backoff.
    int64_t spread = entry.backoff_ns * int64_t(options_.backoff_jitter_percent) / 100;
    int64_t delay = entry.backoff_ns;
    if (spread > 0) {
        delay += int64_t(jitter_() % uint64_t(2 * spread + 1)) - spread;
    }
    bool valid = entry.cert != nullptr && entry.cert->not_after_unix() > now_unix;
    if (valid) {
        // Keep the valid certificate; try again before it expires at the latest.
        delay = std::min(delay, (entry.cert->not_after_unix() - now_unix) * kNanosPerSecond);
    } else {
        entry.state = CertEntryState::unavailable;
    }
    entry.due_mono_ns = loop_.clock().monotonic_ns() + std::max<int64_t>(delay, 0);
    metrics_.ca_requests.cell(AgentMetrics::kAgentShard, {"failed"})->increment();
    log::warn(kTarget,
              valid ? "certificate request failed; keeping the valid certificate"
                    : "certificate request failed",
              {log::Field::str("identity", entry.id.to_string()), log::Field::str("error", error),
               log::Field::num("retry_ms", uint64_t(delay / kNanosPerMilli))});
    update_gauges();
}

void CaClient::on_channel_closed(grpc::Channel& channel, std::string_view reason) {
    if (&channel != channel_.get()) {
        return;
    }
    if (!reason.empty() && !stopping_) {
        log::debug(kTarget, "CA connection closed", {log::Field::str("reason", reason)});
    }
    loop_.retire(std::move(channel_));
    channel_ = nullptr;
}

void CaClient::on_tick(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<CaClient*>(self.context);
    if (res != -ETIME || client->stopping_) {
        return;
    }
    client->pump();
    client->loop_.ring().arm_timer(client->tick_timer_, client->options_.tick_ns);
}

void CaClient::shutdown() {
    stopping_ = true;
    if (tick_timer_.completion.in_kernel) {
        loop_.ring().cancel_timer(tick_timer_);
    }
    if (channel_ != nullptr) {
        channel_->shutdown();
    }
}

bool CaClient::stopped() const {
    return channel_ == nullptr && !tick_timer_.completion.in_kernel;
}

bool CaClient::all_available() const {
    for (const auto& [name, entry] : entries_) {
        if (entry.state != CertEntryState::available) {
            return false;
        }
    }
    return true;
}

void CaClient::update_gauges() {
    int64_t counts[3] = {0, 0, 0};
    for (const auto& [name, entry] : entries_) {
        counts[size_t(entry.state)]++;
    }
    for (CertEntryState state :
         {CertEntryState::initializing, CertEntryState::available, CertEntryState::unavailable}) {
        metrics_.ca_certificates.set({to_string(state)}, counts[size_t(state)]);
    }
}

std::vector<CertStatus> CaClient::status() const {
    std::vector<CertStatus> out;
    int64_t now = loop_.clock().monotonic_ns();
    for (const auto& [name, entry] : entries_) {
        CertStatus s;
        s.identity = name;
        s.state = entry.state;
        if (entry.cert != nullptr) {
            s.not_after_unix = entry.cert->not_after_unix();
            s.refresh_at_unix = entry.cert->refresh_at_unix();
        }
        s.in_flight = entry.in_flight;
        s.retry_in_ns = entry.in_flight ? 0 : std::max<int64_t>(0, entry.due_mono_ns - now);
        s.issued = entry.issued;
        s.last_error = entry.last_error;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace zt::agent
