// Unit tests for certs/store driven by a FakeClock: issue ahead of need, half-life renewal,
// backoff while a valid certificate stays in use, expiry, file-mode loading, rotation and the
// refusals that keep the last good certificate (docs/contract.md §4, docs/reliability.md §3.4), and
// the dump.

#include "certs/store.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "certs/pem.h"
#include "tests/support/test_ca.h"
#include "zt/unique_fd.h"

using zt::Errc;
using zt::FakeClock;
using zt::kNanosPerSecond;
using zt::certs::CertifiedKey;
using zt::certs::CertState;
using zt::certs::CertStore;
using zt::certs::Identity;
using zt::testing::TestCa;

namespace {

constexpr int64_t kDay = 86400;

Identity id(const char* text) {
    return Identity::parse(text).value();
}

// FlakyIssuer fails while `failing` is set, else delegates to a LocalCaIssuer.
class FlakyIssuer final : public zt::certs::Issuer {
public:
    FlakyIssuer(bool* failing, zt::certs::LocalCa ca, int64_t ttl)
        : failing_(failing), inner_(std::move(ca), ttl) {}

    zt::Result<std::shared_ptr<const CertifiedKey>> issue(const Identity& who,
                                                          int64_t now_unix) override {
        ++calls;
        if (*failing_) {
            return zt::fail(Errc::cert_issue);
        }
        return inner_.issue(who, now_unix);
    }

    int calls = 0;

private:
    bool* failing_;
    zt::certs::LocalCaIssuer inner_;
};

struct IssuerFixture {
    FakeClock clock;
    bool failing = false;
    FlakyIssuer* issuer = nullptr;  // owned by the store
    std::unique_ptr<CertStore> store;

    explicit IssuerFixture(int64_t ttl = kDay) {
        auto ca = zt::certs::LocalCa::create("cluster.local", clock.unix_seconds());
        REQUIRE(ca);
        auto owned = std::make_unique<FlakyIssuer>(&failing, std::move(ca).value(), ttl);
        issuer = owned.get();
        store = CertStore::with_issuer(std::move(owned), clock);
    }

    int64_t due_in_ns() const { return store->next_due_mono_ns() - clock.monotonic_ns(); }
};

// TempDir is a fresh directory under /tmp, removed with everything in it.
struct TempDir {
    std::filesystem::path path;

    TempDir() {
        char templ[] = "/tmp/zt-certs-test-XXXXXX";
        REQUIRE(mkdtemp(templ) != nullptr);
        path = templ;
    }

    ~TempDir() { std::filesystem::remove_all(path); }

    // write replaces `name` atomically (write then rename), as agents and kubelet do.
    void write(const std::string& name, const std::string& text) const {
        auto target = path / name;
        std::filesystem::create_directories(target.parent_path());
        auto tmp = target;
        tmp += ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << text;
        }
        std::filesystem::rename(tmp, target);
    }
};

}  // namespace

TEST_CASE("certs: issuer mode issues ahead of need and publishes a verified certificate") {
    IssuerFixture f;
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    CHECK(f.store->want(who) == nullptr);
    CHECK(f.store->state(who).first == CertState::initializing);
    CHECK(f.store->get(who) == nullptr);
    CHECK(f.due_in_ns() <= 0);

    f.store->tick();
    auto ck = f.store->get(who);
    REQUIRE(ck);
    CHECK(f.store->state(who).first == CertState::available);
    CHECK(ck->identity() == who);
    CHECK(ck->chain().size() == 1);
    CHECK(f.store->want(who) == ck);  // a second want is a lookup
    auto verified = zt::certs::verify_svid(ck->roots(),
                                           std::span<X509* const>(std::vector<X509*>{ck->leaf()}),
                                           zt::certs::PeerRole::server, f.clock.unix_seconds());
    REQUIRE(verified);
    CHECK(*verified == who);
    CHECK(f.store->stats().issued_total == 1);
    CHECK(f.store->stats().earliest_expiry_unix == ck->not_after_unix());
}

TEST_CASE("certs: the local CA checks later leaves as leaves only once its chain verified") {
    FakeClock clock;
    int64_t now = clock.unix_seconds();
    auto ca = zt::certs::LocalCa::create("cluster.local", now);
    REQUIRE(ca);
    auto copy = [](const zt::certs::LocalCa& from, const std::string& root_pem) {
        return zt::certs::LocalCa::load(from.cert_pem(), from.key_pem(), root_pem);
    };
    auto same = copy(*ca, ca->root_pem());
    REQUIRE(same);
    zt::certs::LocalCaIssuer issuer(std::move(same).value(), kDay);
    // Every leaf, the first (fully checked) and the later ones (leaf checks only), is one a peer
    // accepts in either role.
    for (const char* who :
         {"spiffe://cluster.local/ns/a/sa/one", "spiffe://cluster.local/ns/b/sa/two",
          "spiffe://cluster.local/ns/c/sa/three"}) {
        auto ck = issuer.issue(id(who), now);
        REQUIRE(ck);
        CHECK((*ck)->identity() == id(who));
        for (auto role : {zt::certs::PeerRole::server, zt::certs::PeerRole::client}) {
            auto verified = zt::certs::verify_svid(
                    (*ck)->roots(), std::span<X509* const>(std::vector<X509*>{(*ck)->leaf()}), role,
                    now);
            REQUIRE(verified);
            CHECK(*verified == id(who));
        }
    }
    // A CA whose certificate does not chain to the roots it hands out never earns the shortcut:
    // every issue is refused, not only the first.
    auto other = zt::certs::LocalCa::create("cluster.local", now);
    REQUIRE(other);
    auto mismatched = copy(*ca, other->root_pem());
    REQUIRE(mismatched);
    zt::certs::LocalCaIssuer wrong(std::move(mismatched).value(), kDay);
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto refused = wrong.issue(id("spiffe://cluster.local/ns/a/sa/one"), now);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == Errc::cert_unknown_ca);
    }
    // The leaf-only check still refuses a leaf outside its validity window.
    auto first = issuer.issue(id("spiffe://cluster.local/ns/a/sa/one"), now);
    REQUIRE(first);
    auto key_pem = zt::certs::private_key_to_pem((*first)->private_key());
    REQUIRE(key_pem);
    auto late = CertifiedKey::make(id("spiffe://cluster.local/ns/a/sa/one"), (*first)->chain_pem(),
                                   *key_pem, (*first)->roots_ptr(), now + 2 * kDay,
                                   CertifiedKey::ChainCheck::issued_by_verified_ca);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::cert_expired);
}

TEST_CASE("certs: a certificate is renewed at half-life and the old one stays usable") {
    IssuerFixture f;
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    f.store->want(who);
    f.store->tick();
    auto first = f.store->get(who);
    REQUIRE(first);
    int64_t half_life_s = first->refresh_at_unix() - f.clock.unix_seconds();
    CHECK(half_life_s ==
          (kDay + zt::certs::kLeafBackdateSeconds) / 2 - zt::certs::kLeafBackdateSeconds);
    CHECK(f.due_in_ns() == half_life_s * kNanosPerSecond);

    f.clock.advance_seconds(half_life_s - 1);
    f.store->tick();
    CHECK(f.store->get(who) == first);
    CHECK(f.issuer->calls == 1);

    f.clock.advance_seconds(1);
    f.store->tick();
    auto second = f.store->get(who);
    REQUIRE(second);
    CHECK(second != first);
    CHECK(f.issuer->calls == 2);
    CHECK(zt::certs::serial_decimal(second->leaf()) != zt::certs::serial_decimal(first->leaf()));
    CHECK(second->not_after_unix() > first->not_after_unix());
    // A handshake that loaded `first` still holds a complete, valid object.
    CHECK(first->chain().size() == 1);
    CHECK(first->private_key() != nullptr);
}

TEST_CASE("certs: failures back off x2 with jitter up to 150 s") {
    IssuerFixture f;
    f.failing = true;
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    f.store->want(who);
    int64_t base_ms = 1000;
    for (int attempt = 1; attempt <= 12; ++attempt) {
        CAPTURE(attempt);
        f.store->tick();
        CHECK(f.issuer->calls == attempt);
        auto [state, reason] = f.store->state(who);
        CHECK(state == CertState::unavailable);
        CHECK(reason == Errc::cert_issue);
        int64_t delay_ms = f.due_in_ns() / zt::kNanosPerMilli;
        int64_t expect_ms = std::min<int64_t>(base_ms, 150'000);
        CHECK(delay_ms >= expect_ms * 80 / 100);
        CHECK(delay_ms <= std::min<int64_t>(expect_ms * 120 / 100, 150'000));
        base_ms *= 2;
        // Nothing happens before the retry is due.
        f.clock.advance_ns(f.due_in_ns() - 1);
        f.store->tick();
        CHECK(f.issuer->calls == attempt);
        f.clock.advance_ns(1);
    }
    f.failing = false;
    f.store->tick();
    CHECK(f.store->state(who).first == CertState::available);
    CHECK(f.store->get(who) != nullptr);
    CHECK(f.store->stats().issue_failures_total == 12);
    CHECK(f.store->stats().refusals_by_reason.at(Errc::cert_issue) == 12);
    // Success resets the backoff: the next wait is the half-life again.
    CHECK(f.due_in_ns() > 3600 * kNanosPerSecond);
}

TEST_CASE("certs: a failing renewal keeps the valid certificate until it expires") {
    IssuerFixture f(/*ttl=*/600);
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    f.store->want(who);
    f.store->tick();
    auto good = f.store->get(who);
    REQUIRE(good);
    f.failing = true;
    int guard = 0;
    while (f.clock.unix_seconds() < good->not_after_unix() && guard++ < 1000) {
        f.clock.advance_ns(std::max<int64_t>(f.due_in_ns(), 1));
        f.store->tick();
        if (f.clock.unix_seconds() < good->not_after_unix()) {
            CHECK(f.store->get(who) == good);
            CHECK(f.store->state(who).first == CertState::available);
            // Retries are never scheduled past the expiry of the certificate in use.
            CHECK(f.store->next_due_mono_ns() <=
                  f.clock.monotonic_ns() +
                          (good->not_after_unix() - f.clock.unix_seconds()) * kNanosPerSecond);
        }
    }
    CHECK(guard < 1000);
    CHECK(f.issuer->calls > 3);
    CHECK(f.store->get(who) == nullptr);
    auto [state, reason] = f.store->state(who);
    CHECK(state == CertState::unavailable);
    CHECK((reason == Errc::cert_expired || reason == Errc::cert_issue));
    CHECK(f.store->stats().expired_total == 1);
    // The retries continue, and the first success makes it available again.
    f.failing = false;
    f.clock.advance_ns(std::max<int64_t>(f.due_in_ns(), 0));
    f.store->tick();
    CHECK(f.store->get(who) != nullptr);
}

TEST_CASE("certs: the dump lists identities in order with ztunnel's fields") {
    IssuerFixture f;
    auto b = id("spiffe://cluster.local/ns/b/sa/b");
    auto a = id("spiffe://cluster.local/ns/a/sa/a");
    f.store->want(b);
    f.store->want(a);
    auto before = f.store->dump();
    REQUIRE(before.size() == 2);
    CHECK(before[0].identity == a.to_string());
    CHECK(before[0].state == "Initializing");
    CHECK(before[0].cert_chain.empty());

    f.store->tick();
    f.store->forget(b);
    auto after = f.store->dump();
    REQUIRE(after.size() == 1);
    CHECK(after[0].state == "Available");
    REQUIRE(after[0].cert_chain.size() == 1);
    REQUIRE(after[0].root_certs.size() == 1);
    auto ck = f.store->get(a);
    REQUIRE(ck);
    const auto& leaf = after[0].cert_chain[0];
    CHECK(leaf.serial_number == zt::certs::serial_decimal(ck->leaf()));
    CHECK(leaf.valid_from == zt::certs::format_rfc3339(ck->not_before_unix()));
    CHECK(leaf.expiration_time == zt::certs::format_rfc3339(ck->not_after_unix()));
    CHECK(leaf.pem == zt::certs::base64_encode(ck->chain_pem()));
    CHECK(leaf.pem.starts_with("LS0tLS1CRUdJTi"));  // base64 of "-----BEGIN"
    CHECK(leaf.valid_from.size() == 20);
    CHECK(leaf.valid_from.back() == 'Z');

    f.failing = true;
    auto c = id("spiffe://cluster.local/ns/c/sa/c");
    f.store->want(c);
    f.store->tick();
    auto failed = f.store->dump();
    REQUIRE(failed.size() == 2);
    CHECK(failed[1].state == "Unavailable: cert_issue");
}

TEST_CASE("certs: file mode loads, rotates, and refuses bad files keeping the last good") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    const std::string sub = "default/app/";

    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->tick();
    CHECK(store->state(who).first == CertState::initializing);  // nothing written yet

    dir.write("root-cert.pem", ca.root_pem());
    auto first_leaf = ca.issue_leaf(who.to_string());
    dir.write(sub + "cert-chain.pem", first_leaf.chain_pem);
    dir.write(sub + "key.pem", first_leaf.key_pem);
    clock.advance_seconds(1);
    store->tick();
    auto first = store->get(who);
    REQUIRE(first);
    CHECK(store->state(who).first == CertState::available);
    CHECK(zt::certs::serial_decimal(first->leaf()) ==
          zt::certs::serial_decimal(first_leaf.cert.get()));

    // Unchanged files are not reloaded.
    clock.advance_seconds(1);
    store->tick();
    CHECK(store->get(who) == first);
    CHECK(store->stats().files_loaded_total == 1);

    // A rotation is picked up on the next poll.
    auto second_leaf = ca.issue_leaf(who.to_string());
    dir.write(sub + "cert-chain.pem", second_leaf.chain_pem);
    dir.write(sub + "key.pem", second_leaf.key_pem);
    clock.advance_seconds(1);
    store->tick();
    auto second = store->get(who);
    REQUIRE(second);
    CHECK(second != first);
    CHECK(zt::certs::serial_decimal(second->leaf()) ==
          zt::certs::serial_decimal(second_leaf.cert.get()));

    auto refuse = [&](const zt::testing::TestCert& cert, const std::string& key_pem, Errc want) {
        dir.write(sub + "cert-chain.pem", cert.chain_pem);
        dir.write(sub + "key.pem", key_pem);
        clock.advance_seconds(1);
        store->tick();
        CHECK(store->get(who) == second);  // the last good one stays in use
        CHECK(store->state(who).first == CertState::available);
        CHECK(store->state(who).second == want);
        CHECK(store->stats().refusals_by_reason[want] >= 1);
    };
    SUBCASE("filed under another identity") {
        auto other = ca.issue_leaf("spiffe://cluster.local/ns/default/sa/other");
        refuse(other, other.key_pem, Errc::identity_mismatch);
    }
    SUBCASE("expired") {
        auto spec = ca.leaf_spec(who.to_string());
        spec.not_before_unix = clock.unix_seconds() - 2 * kDay;
        spec.not_after_unix = clock.unix_seconds() - kDay;
        auto old = ca.issue(spec);
        refuse(old, old.key_pem, Errc::cert_expired);
    }
    SUBCASE("a key that does not match") {
        auto third = ca.issue_leaf(who.to_string());
        refuse(third, second_leaf.key_pem, Errc::cert_key_mismatch);
    }
    SUBCASE("from a CA we do not trust") {
        TestCa stranger = TestCa::root("cluster.local", clock.unix_seconds());
        auto foreign = stranger.issue_leaf(who.to_string());
        refuse(foreign, foreign.key_pem, Errc::cert_unknown_ca);
    }
    SUBCASE("half-written garbage") {
        auto third = ca.issue_leaf(who.to_string());
        third.chain_pem = third.chain_pem.substr(0, third.chain_pem.size() / 2);
        refuse(third, third.key_pem, Errc::cert_parse);
    }
    SUBCASE("a root rotation to a bundle of old and new roots") {
        TestCa next = TestCa::root("cluster.local", clock.unix_seconds());
        dir.write("root-cert.pem", ca.root_pem() + next.root_pem());
        auto from_next = next.intermediate().issue_leaf(who.to_string());
        dir.write(sub + "cert-chain.pem", from_next.chain_pem);
        dir.write(sub + "key.pem", from_next.key_pem);
        clock.advance_seconds(1);
        store->tick();
        auto rotated = store->get(who);
        REQUIRE(rotated);
        CHECK(rotated != second);
        CHECK(rotated->chain().size() == 2);
        CHECK(rotated->roots().roots().size() == 2);
    }
}

TEST_CASE("certs: file mode refuses a bad first certificate and retires an expired one") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/prod/sa/api");
    dir.write("root-cert.pem", ca.root_pem());
    auto other = ca.issue_leaf("spiffe://cluster.local/ns/prod/sa/not-api");
    dir.write("prod/api/cert-chain.pem", other.chain_pem);
    dir.write("prod/api/key.pem", other.key_pem);

    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->tick();
    CHECK(store->get(who) == nullptr);
    CHECK(store->state(who).first == CertState::unavailable);
    CHECK(store->dump().at(0).state == "Unavailable: identity_mismatch");

    auto spec = ca.leaf_spec(who.to_string());
    spec.not_after_unix = clock.unix_seconds() + 120;
    auto short_lived = ca.issue(spec);
    dir.write("prod/api/cert-chain.pem", short_lived.chain_pem);
    dir.write("prod/api/key.pem", short_lived.key_pem);
    store->reload(who);  // as an inotify watch would, without waiting for the poll
    store->tick();
    REQUIRE(store->get(who) != nullptr);

    clock.advance_seconds(121);
    store->tick();
    CHECK(store->get(who) == nullptr);
    CHECK(store->dump().at(0).state == "Unavailable: cert_expired");
    CHECK(store->stats().expired_total == 1);
}

TEST_CASE("certs: reload renews at once in issuer mode; forget and want start over") {
    IssuerFixture f;
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    f.store->want(who);
    f.store->tick();
    auto first = f.store->get(who);
    REQUIRE(first);
    f.store->reload(who);
    CHECK(f.due_in_ns() <= 0);
    f.store->tick();
    auto second = f.store->get(who);
    REQUIRE(second);
    CHECK(second != first);

    f.store->forget(who);
    CHECK(f.store->get(who) == nullptr);
    CHECK(f.store->dump().empty());
    CHECK(f.store->want(who) == nullptr);
    CHECK(f.store->state(who).first == CertState::initializing);
    f.store->tick();
    CHECK(f.store->get(who) != nullptr);
    CHECK(f.issuer->calls == 3);
}

namespace {

// tick_bounded runs `store.tick()` on a scratch thread and says whether it returned within 2 s.
// A tick stuck opening a FIFO (opened for reading, it waits for a writer) is released by opening
// the write end of every path in `fifos`, so the thread can be joined either way.
bool tick_bounded(CertStore& store, const std::vector<std::filesystem::path>& fifos) {
    std::promise<void> done;
    auto finished = done.get_future();
    std::thread ticker([&] {
        store.tick();
        done.set_value();
    });
    bool in_time = finished.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    while (!in_time &&
           finished.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
        for (const auto& fifo : fifos) {
            zt::UniqueFd writer(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        }
    }
    ticker.join();
    return in_time;
}

}  // namespace

TEST_CASE("certs: a FIFO as key.pem or root-cert.pem is refused at once, never waited on") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    dir.write("root-cert.pem", ca.root_pem());
    auto leaf = ca.issue_leaf(who.to_string());
    dir.write("default/app/cert-chain.pem", leaf.chain_pem);
    dir.write("default/app/key.pem", leaf.key_pem);
    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->tick();
    auto good = store->get(who);
    REQUIRE(good);

    SUBCASE("key.pem") {
        auto key = dir.path / "default/app/key.pem";
        std::filesystem::remove(key);
        REQUIRE(::mkfifo(key.c_str(), 0600) == 0);
        clock.advance_seconds(1);
        REQUIRE_MESSAGE(tick_bounded(*store, {key}), "tick blocked on a FIFO key.pem");
        CHECK(store->get(who) == good);  // the last good certificate stays
        CHECK(store->state(who).second == Errc::invalid_argument);
        CHECK(store->stats().refusals_by_reason[Errc::invalid_argument] == 1);
    }
    SUBCASE("root-cert.pem") {
        auto roots = dir.path / "root-cert.pem";
        std::filesystem::remove(roots);
        REQUIRE(::mkfifo(roots.c_str(), 0600) == 0);
        clock.advance_seconds(1);
        REQUIRE_MESSAGE(tick_bounded(*store, {roots}), "tick blocked on a FIFO root-cert.pem");
        CHECK(store->get(who) == good);
        CHECK(store->stats().files_refused_total == 1);
        CHECK(store->stats().refusals_by_reason[Errc::invalid_argument] == 1);
    }
    SUBCASE("a directory as cert-chain.pem") {
        auto chain = dir.path / "default/app/cert-chain.pem";
        std::filesystem::remove(chain);
        std::filesystem::create_directory(chain);
        clock.advance_seconds(1);
        REQUIRE(tick_bounded(*store, {}));
        CHECK(store->get(who) == good);
        CHECK(store->state(who).second == Errc::invalid_argument);
    }
}

TEST_CASE("certs: read_pem_file reads regular files only, without blocking") {
    TempDir dir;
    auto fifo = dir.path / "fifo.pem";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::promise<zt::Result<std::string>> result;
    auto read = result.get_future();
    std::thread reader([&] { result.set_value(zt::certs::read_pem_file(fifo.string())); });
    bool in_time = read.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    if (!in_time) {
        zt::UniqueFd writer(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    }
    reader.join();
    REQUIRE_MESSAGE(in_time, "read_pem_file blocked on a FIFO");
    auto text = read.get();
    REQUIRE_FALSE(text);
    CHECK(text.error().code == Errc::invalid_argument);
    CHECK(zt::certs::read_pem_file((dir.path / "missing").string()).error().code ==
          Errc::not_found);
}

TEST_CASE("certs: roots that drop an identity's CA make it unavailable until a matching leaf") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa old_ca = TestCa::root("cluster.local", clock.unix_seconds());
    TestCa new_ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    auto bystander = id("spiffe://cluster.local/ns/default/sa/bystander");
    dir.write("root-cert.pem", old_ca.root_pem());
    auto old_leaf = old_ca.issue_leaf(who.to_string());
    dir.write("default/app/cert-chain.pem", old_leaf.chain_pem);
    dir.write("default/app/key.pem", old_leaf.key_pem);
    // The bystander already moved to the new CA while both roots were trusted.
    dir.write("root-cert.pem", old_ca.root_pem() + new_ca.root_pem());
    auto bystander_leaf = new_ca.issue_leaf(bystander.to_string());
    dir.write("default/bystander/cert-chain.pem", bystander_leaf.chain_pem);
    dir.write("default/bystander/key.pem", bystander_leaf.key_pem);
    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->want(bystander);
    store->tick();
    auto before = store->get(who);
    REQUIRE(before);
    REQUIRE(store->get(bystander));
    CHECK(before->roots().roots().size() == 2);

    // The old root leaves; app's leaf (old CA) stays on disk unchanged.
    dir.write("root-cert.pem", new_ca.root_pem());
    clock.advance_seconds(1);
    store->tick();
    CHECK(store->get(who) == nullptr);  // no more handshakes trusting the removed root
    CHECK(store->state(who).first == CertState::unavailable);
    CHECK(store->state(who).second == Errc::cert_unknown_ca);
    CHECK(store->stats().roots_mismatch_total == 1);
    CHECK(store->dump().at(0).state == "Unavailable: cert_unknown_ca");
    // The bystander's leaf chains to the new root: it stays, now trusting only the new root.
    auto moved = store->get(bystander);
    REQUIRE(moved);
    CHECK(moved->roots().roots().size() == 1);
    CHECK(store->state(bystander).first == CertState::available);

    // A matching leaf arrives: available again, with the new root.
    auto new_leaf = new_ca.issue_leaf(who.to_string());
    dir.write("default/app/cert-chain.pem", new_leaf.chain_pem);
    dir.write("default/app/key.pem", new_leaf.key_pem);
    clock.advance_seconds(1);
    store->tick();
    auto after = store->get(who);
    REQUIRE(after);
    CHECK(store->state(who).first == CertState::available);
    CHECK(after->roots().roots().size() == 1);
    CHECK(zt::certs::serial_decimal(after->leaf()) ==
          zt::certs::serial_decimal(new_leaf.cert.get()));
}

TEST_CASE("certs: new roots reach every identity at once, even with its files unreadable") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    TestCa next = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    dir.write("root-cert.pem", ca.root_pem());
    auto leaf = ca.issue_leaf(who.to_string());
    dir.write("default/app/cert-chain.pem", leaf.chain_pem);
    dir.write("default/app/key.pem", leaf.key_pem);
    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->tick();
    REQUIRE(store->get(who));
    // The key file is being rewritten (half a key) when the bundle grows: the leaf in use still
    // chains to the bundle, so it is published again with both roots.
    dir.write("default/app/key.pem", leaf.key_pem.substr(0, 20));
    dir.write("root-cert.pem", ca.root_pem() + next.root_pem());
    clock.advance_seconds(1);
    store->tick();
    auto current = store->get(who);
    REQUIRE(current);
    CHECK(current->roots().roots().size() == 2);
    CHECK(store->state(who).first == CertState::available);
}

TEST_CASE("certs: a file-mode certificate refused as not yet valid is retried until it is") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    dir.write("root-cert.pem", ca.root_pem());
    // The CA's clock runs 5 s ahead of this node's: the leaf starts in the node's future.
    auto spec = ca.leaf_spec(who.to_string());
    spec.not_before_unix = clock.unix_seconds() + 5;
    spec.not_after_unix = clock.unix_seconds() + kDay;
    auto early = ca.issue(spec);
    dir.write("default/app/cert-chain.pem", early.chain_pem);
    dir.write("default/app/key.pem", early.key_pem);
    auto store = CertStore::with_files(dir.path.string(), clock);
    store->want(who);
    store->tick();
    CHECK(store->get(who) == nullptr);
    CHECK(store->state(who).first == CertState::unavailable);
    CHECK(store->state(who).second == Errc::cert_not_yet_valid);

    // The files do not change; time passes. Each poll retries, and the first one after notBefore
    // publishes the certificate.
    for (int second = 1; second <= 4; ++second) {
        clock.advance_seconds(1);
        store->tick();
        CHECK(store->get(who) == nullptr);
    }
    CHECK(store->stats().refusals_by_reason[Errc::cert_not_yet_valid] == 1);  // logged once
    clock.advance_seconds(2);
    store->tick();
    auto ck = store->get(who);
    REQUIRE(ck);
    CHECK(store->state(who).first == CertState::available);
    CHECK(zt::certs::serial_decimal(ck->leaf()) == zt::certs::serial_decimal(early.cert.get()));
}

TEST_CASE("certs: file mode looks for a wanted identity's missing files every 100 ms") {
    TempDir dir;
    FakeClock clock(zt::unix_ns());
    TestCa ca = TestCa::root("cluster.local", clock.unix_seconds());
    auto who = id("spiffe://cluster.local/ns/default/sa/app");
    auto store = CertStore::with_files(dir.path.string(), clock);
    auto due_in_ms = [&] {
        return (store->next_due_mono_ns() - clock.monotonic_ns()) / zt::kNanosPerMilli;
    };
    // Nothing wanted: the (missing) roots are looked for once a second.
    store->tick();
    CHECK(due_in_ms() == 1000);

    // Wanted: due at once, then every 100 ms while neither the roots nor its files exist.
    store->want(who);
    CHECK(due_in_ms() == 0);
    store->tick();
    CHECK(store->state(who).first == CertState::initializing);
    CHECK(due_in_ms() == 100);

    // The agent writes the roots and the certificate: the next look, 100 ms on, publishes it.
    dir.write("root-cert.pem", ca.root_pem());
    auto leaf = ca.issue_leaf(who.to_string());
    dir.write("default/app/cert-chain.pem", leaf.chain_pem);
    dir.write("default/app/key.pem", leaf.key_pem);
    clock.advance_ns(99 * zt::kNanosPerMilli);
    CHECK(store->next_due_mono_ns() > clock.monotonic_ns());
    clock.advance_ns(1 * zt::kNanosPerMilli);
    store->tick();
    REQUIRE(store->get(who) != nullptr);
    CHECK(store->stats().files_loaded_total == 1);
    // With a certificate (and roots), once a second again.
    CHECK(due_in_ms() == 1000);

    // A second identity whose files are refused (filed under another identity) is looked for
    // every 100 ms too; a corrected file is picked up at the next look. The first stays at 1 s.
    auto api = id("spiffe://cluster.local/ns/default/sa/api");
    auto wrong = ca.issue_leaf("spiffe://cluster.local/ns/default/sa/other");
    dir.write("default/api/cert-chain.pem", wrong.chain_pem);
    dir.write("default/api/key.pem", wrong.key_pem);
    store->want(api);
    store->tick();
    CHECK(store->state(api).first == CertState::unavailable);
    CHECK(due_in_ms() == 100);
    clock.advance_ns(100 * zt::kNanosPerMilli);
    store->tick();  // unchanged files: only looked at
    CHECK(due_in_ms() == 100);
    CHECK(store->stats().files_refused_total == 1);
    auto right = ca.issue_leaf(api.to_string());
    dir.write("default/api/cert-chain.pem", right.chain_pem);
    dir.write("default/api/key.pem", right.key_pem);
    clock.advance_ns(100 * zt::kNanosPerMilli);
    store->tick();
    REQUIRE(store->get(api) != nullptr);
    CHECK(store->stats().files_loaded_total == 2);
    // Both have certificates: the earliest look is the first identity's, 1 s after its load.
    CHECK(due_in_ms() == 800);
}
