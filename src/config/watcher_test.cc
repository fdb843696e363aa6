// Tests for the config watcher on a real directory with real inotify: every write pattern an
// agent or Kubernetes uses (rename over, rewrite in place, `..data` symlink swap, delete and
// re-create), debounce, the stat-poll fallback, queue overflow, invalid files keeping the last
// good snapshot, and 100 rewrites in a second. Time is a FakeClock except in the burst test.

#include "src/config/watcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "src/config/parse.h"
#include "zt/log.h"

namespace {

using zt::config::Watcher;
using zt::config::WatcherOptions;

// QuietLogs turns logging off for one test and restores the filter after.
struct QuietLogs {
    zt::log::Filter saved = *zt::log::current_filter();

    QuietLogs() { zt::log::set_filter(zt::log::Filter(zt::log::Level::off)); }

    ~QuietLogs() { zt::log::set_filter(saved); }
};

struct TempDir {
    std::string path;

    TempDir() {
        char tmpl[] = "/tmp/zt-config-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }

    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }

    std::string file(std::string_view name) const { return path + "/" + std::string(name); }
};

std::string config_named(std::string_view name) {
    return R"({"workloads": [{"uid": "c//Pod/ns/w", "name": ")" + std::string(name) +
           R"(", "namespace": "ns", "workloadIps": ["198.18.0.1"], "services": {}}]})";
}

void write_in_place(const std::string& path, std::string_view text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == ssize_t(text.size()));
    ::close(fd);
}

// write_atomic is the agent contract: temp file in the same directory, then rename over.
void write_atomic(const std::string& path, std::string_view text) {
    std::string tmp = path + ".tmp";
    write_in_place(tmp, text);
    REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0);
}

std::string loaded_name(const zt::state::SnapshotStore& store) {
    auto snap = store.load();
    if (!snap || snap->workloads().empty()) {
        return "(none)";
    }
    return snap->workloads()[0].name;
}

struct Fixture {
    QuietLogs quiet;
    TempDir dir;
    std::string path = dir.file("config.json");
    zt::FakeClock clock;
    zt::state::SnapshotStore store;
    std::unique_ptr<Watcher> watcher;

    void start() {
        WatcherOptions options;
        options.path = path;
        auto created = Watcher::create(options, store, clock);
        REQUIRE(created);
        watcher = std::move(*created);
        REQUIRE(watcher->fd() >= 0);
    }

    // pump delivers pending events and lets the debounce expire.
    void pump() {
        watcher->process();
        clock.advance_ns(150 * zt::kNanosPerMilli);
        watcher->tick();
    }
};

}  // namespace

TEST_CASE("config: watcher is not ready without a file and becomes ready when it appears") {
    Fixture f;
    f.start();
    CHECK_FALSE(f.watcher->ready());
    CHECK(f.watcher->stats().failure_total == 1);
    CHECK(f.watcher->stats().last_errors.front().find("No such file") != std::string::npos);
    write_atomic(f.path, config_named("v1"));
    f.pump();
    CHECK(f.watcher->ready());
    CHECK(loaded_name(f.store) == "v1");
    CHECK(f.watcher->stats().success_total == 1);
    CHECK(f.watcher->stats().last_success_unix_ns == f.clock.unix_ns());
    CHECK(f.watcher->stats().applied_sha256 == zt::config::sha256_hex(config_named("v1")));
}

TEST_CASE("config: watcher reloads on rename over, in-place rewrite, and delete + re-create") {
    Fixture f;
    write_atomic(f.path, config_named("v1"));
    f.start();
    CHECK(loaded_name(f.store) == "v1");

    write_atomic(f.path, config_named("renamed"));
    f.pump();
    CHECK(loaded_name(f.store) == "renamed");

    write_in_place(f.path, config_named("in-place"));
    f.pump();
    CHECK(loaded_name(f.store) == "in-place");

    REQUIRE(::unlink(f.path.c_str()) == 0);
    f.pump();
    CHECK(loaded_name(f.store) == "in-place");  // Last good kept while the file is gone.
    CHECK(f.watcher->stats().failure_total == 1);
    write_in_place(f.path, config_named("re-created"));
    f.pump();
    CHECK(loaded_name(f.store) == "re-created");
    CHECK(f.watcher->stats().success_total == 4);
}

TEST_CASE("config: watcher follows a Kubernetes ..data symlink swap") {
    Fixture f;
    auto d = [&](const char* name) {
        return f.dir.file(name);
    };
    REQUIRE(::mkdir(d("..2026_01").c_str(), 0755) == 0);
    write_in_place(d("..2026_01/config.json"), config_named("cm-v1"));
    REQUIRE(::symlink("..2026_01", d("..data").c_str()) == 0);
    REQUIRE(::symlink("..data/config.json", f.path.c_str()) == 0);
    f.start();
    CHECK(loaded_name(f.store) == "cm-v1");

    // What kubelet's atomic writer does: new dir, new link, rename the link over ..data.
    REQUIRE(::mkdir(d("..2026_02").c_str(), 0755) == 0);
    write_in_place(d("..2026_02/config.json"), config_named("cm-v2"));
    REQUIRE(::symlink("..2026_02", d("..data_tmp").c_str()) == 0);
    REQUIRE(::rename(d("..data_tmp").c_str(), d("..data").c_str()) == 0);
    std::filesystem::remove_all(d("..2026_01"));
    f.pump();
    CHECK(loaded_name(f.store) == "cm-v2");
}

TEST_CASE("config: an invalid file keeps the last good snapshot and is counted once") {
    Fixture f;
    write_atomic(f.path, config_named("good"));
    f.start();
    auto good = f.store.load();
    REQUIRE(good);

    std::string bad = config_named("bad");
    bad.replace(bad.find("198.18.0.1"), 10, "10.0.0.300");
    write_atomic(f.path, bad);
    f.pump();
    CHECK(f.store.load() == good);
    CHECK(f.watcher->stats().failure_total == 1);
    REQUIRE(f.watcher->stats().last_errors.size() == 1);
    CHECK(f.watcher->stats().last_errors[0] ==
          "workloads[0].workloadIps[0]: not an IP address: \"10.0.0.300\"");
    CHECK(f.watcher->stats().last_failure_unix_ns == f.clock.unix_ns());

    // The same bad bytes again (a touch, a poll) are not a new failure.
    write_atomic(f.path, bad);
    f.pump();
    CHECK(f.watcher->stats().failure_total == 1);

    // Back to the applied bytes: no rebuild, but the status is healthy again.
    f.clock.advance_seconds(1);
    write_atomic(f.path, config_named("good"));
    f.pump();
    CHECK(f.store.load() == good);
    CHECK(f.watcher->stats().success_total == 2);
    CHECK(f.watcher->stats().last_success_unix_ns > f.watcher->stats().last_failure_unix_ns);

    write_atomic(f.path, config_named("fixed"));
    f.pump();
    CHECK(loaded_name(f.store) == "fixed");
    CHECK(f.watcher->stats().success_total == 3);
    CHECK(f.watcher->stats().last_errors.size() == 1);  // Kept for configStatus.
}

TEST_CASE("config: truncations of a valid file at every 7th byte are all rejected") {
    Fixture f;
    std::string text;
    {
        std::ifstream in("tests/fixtures/localhost.json");
        REQUIRE(in);
        text.assign(std::istreambuf_iterator<char>(in), {});
    }
    write_atomic(f.path, text);
    f.start();
    auto good = f.store.load();
    REQUIRE(good);
    size_t attempts = 0;
    for (size_t len = 0; len < text.size(); len += 7) {
        write_atomic(f.path, std::string_view(text).substr(0, len));
        f.pump();
        ++attempts;
        REQUIRE(f.store.load() == good);
    }
    CHECK(f.watcher->stats().failure_total == attempts);
    CHECK(f.watcher->stats().success_total == 1);
}

TEST_CASE("config: a burst of in-place writes is debounced into one reload") {
    Fixture f;
    write_atomic(f.path, config_named("v0"));
    f.start();
    for (int i = 1; i <= 5; ++i) {
        write_in_place(f.path, config_named("burst-" + std::to_string(i)));
        f.watcher->process();
        f.clock.advance_ns(20 * zt::kNanosPerMilli);
        f.watcher->tick();
        CHECK(loaded_name(f.store) == "v0");  // Still inside the debounce window.
    }
    CHECK(f.watcher->next_deadline_ns() <= f.clock.monotonic_ns() + 100 * zt::kNanosPerMilli);
    f.clock.advance_ns(100 * zt::kNanosPerMilli);
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "burst-5");
    CHECK(f.watcher->stats().success_total == 2);
}

TEST_CASE("config: a rename into place is read at once, without the debounce") {
    Fixture f;
    write_atomic(f.path, config_named("v0"));
    f.start();
    write_atomic(f.path, config_named("renamed"));
    f.watcher->process();
    // Due now: the clock has not moved, and the debounce would put it 100 ms away.
    CHECK(f.watcher->next_deadline_ns() <= f.clock.monotonic_ns());
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "renamed");
    CHECK(f.watcher->stats().success_total == 2);

    // A rename followed by an in-place write of the new file is not whole yet: debounced.
    write_atomic(f.path, config_named("renamed-2"));
    write_in_place(f.path, config_named("then-in-place"));
    f.watcher->process();
    CHECK(f.watcher->next_deadline_ns() > f.clock.monotonic_ns());
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "renamed");
    f.clock.advance_ns(100 * zt::kNanosPerMilli);
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "then-in-place");

    // An in-place write then a rename over it: the rename put a whole file in place last.
    write_in_place(f.path, config_named("in-place"));
    write_atomic(f.path, config_named("renamed-last"));
    f.watcher->process();
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "renamed-last");
    CHECK(f.watcher->stats().success_total == 4);
}

TEST_CASE("config: the stat poll catches a change whose event was missed") {
    Fixture f;
    write_atomic(f.path, config_named("v1"));
    f.start();
    write_atomic(f.path, config_named("v2"));
    // No process(): as if inotify had said nothing (NFS, a lost watch).
    f.clock.advance_ns(4 * zt::kNanosPerSecond);
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "v1");
    f.clock.advance_ns(2 * zt::kNanosPerSecond);
    f.watcher->tick();
    CHECK(loaded_name(f.store) == "v2");
}

TEST_CASE("config: an inotify queue overflow forces a full reload") {
    Fixture f;
    write_atomic(f.path, config_named("v1"));
    f.start();
    long max_events = 16384;
    if (FILE* proc = std::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
        if (std::fscanf(proc, "%ld", &max_events) != 1) {
            max_events = 16384;
        }
        std::fclose(proc);
    }
    if (max_events > 200000) {
        MESSAGE("max_queued_events too large to overflow quickly; skipped");
        return;
    }
    // Fill the queue with events for other names (alternating, so inotify cannot merge them),
    // then change the config: its own event is lost to the overflow.
    std::string a = f.dir.file("noise-a");
    std::string b = f.dir.file("noise-b");
    for (long i = 0; i < max_events + 10; ++i) {
        int fd = ::open((i % 2 ? a : b).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        ::close(fd);
    }
    write_atomic(f.path, config_named("after-overflow"));
    f.pump();
    CHECK(f.watcher->stats().inotify_overflow_total >= 1);
    CHECK(loaded_name(f.store) == "after-overflow");
}

TEST_CASE("config: a file above the size cap is rejected before it is read") {
    Fixture f;
    write_atomic(f.path, config_named("v1"));
    f.start();
    std::string big = f.dir.file("big.tmp");
    int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, off_t(zt::config::kMaxFileBytes) + 1) == 0);  // Sparse: no disk.
    ::close(fd);
    REQUIRE(::rename(big.c_str(), f.path.c_str()) == 0);
    f.pump();
    CHECK(loaded_name(f.store) == "v1");
    CHECK(f.watcher->stats().too_large_total == 1);
    CHECK(f.watcher->stats().last_errors[0].find("64 MiB") != std::string::npos);
}

TEST_CASE("config: 100 rewrites in a second end in the right final state") {
    QuietLogs quiet;
    TempDir dir;
    std::string path = dir.file("config.json");
    write_atomic(path, config_named("gen-0"));
    zt::state::SnapshotStore store;
    WatcherOptions options;
    options.path = path;
    auto created = Watcher::create(options, store, zt::system_clock());
    REQUIRE(created);
    auto& watcher = **created;
    for (int i = 1; i <= 100; ++i) {
        write_atomic(path, config_named("gen-" + std::to_string(i)));
        std::this_thread::sleep_for(std::chrono::milliseconds(9));
        watcher.process();
        watcher.tick();
        // Whatever is published at any moment is one of the versions written, never a mix.
        std::string name = loaded_name(store);
        CHECK(name.starts_with("gen-"));
    }
    int64_t deadline = zt::monotonic_ns() + 3 * zt::kNanosPerSecond;
    while (loaded_name(store) != "gen-100" && zt::monotonic_ns() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        watcher.process();
        watcher.tick();
    }
    CHECK(loaded_name(store) == "gen-100");
    CHECK(watcher.stats().failure_total == 0);
    CHECK(watcher.stats().success_total >= 2);
    CHECK(watcher.stats().success_total <= 101);
}

TEST_CASE("config: a removed and re-created directory is watched again; last good kept between") {
    Fixture f;
    std::string sub = f.dir.file("etc");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
    std::string path = sub + "/config.json";
    write_atomic(path, config_named("v1"));
    WatcherOptions options;
    options.path = path;
    auto created = Watcher::create(options, f.store, f.clock);
    REQUIRE(created);
    auto& watcher = **created;
    auto pump = [&] {
        watcher.process();
        f.clock.advance_ns(150 * zt::kNanosPerMilli);
        watcher.tick();
    };
    std::filesystem::remove_all(sub);
    pump();
    CHECK(loaded_name(f.store) == "v1");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
    write_atomic(path, config_named("v2"));
    pump();  // The watch is re-added here; the file was written before, so the poll must see it.
    f.clock.advance_ns(6 * zt::kNanosPerSecond);
    watcher.tick();
    CHECK(loaded_name(f.store) == "v2");
    // And from now on events flow again.
    write_atomic(path, config_named("v3"));
    pump();
    CHECK(loaded_name(f.store) == "v3");
}

TEST_CASE("config: readers keep the snapshot they loaded while the store swaps underneath") {
    QuietLogs quiet;
    zt::state::SnapshotStore store;
    auto first = zt::config::load_text(config_named("first")).snapshot;
    REQUIRE(first);
    store.store(first);
    std::weak_ptr<const zt::state::Snapshot> weak = first;
    auto held = store.load();
    first.reset();
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread reader([&] {
        while (!stop.load()) {
            auto snap = store.load();
            if (!snap || snap->workloads().size() != 1) {
                bad.fetch_add(1);
            }
        }
    });
    for (int i = 0; i < 200; ++i) {
        store.store(zt::config::load_text(config_named("gen-" + std::to_string(i))).snapshot);
    }
    stop = true;
    reader.join();
    CHECK(bad.load() == 0);
    CHECK(held->workloads()[0].name == "first");  // Still alive: the worker holds it.
    CHECK_FALSE(weak.expired());
    held.reset();
    CHECK(weak.expired());  // Freed once the last holder lets go.
    CHECK(loaded_name(store) == "gen-199");
}
