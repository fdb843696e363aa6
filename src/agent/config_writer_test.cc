// Unit tests for the config writer on a real io_uring (skipped where the kernel refuses one):
// changes within the batch window make one write; content equal to the file (also a file left
// by an earlier run) is not written again; content the loader refuses is never written; the
// write is atomic (no temporary left, mode 0644); writes after an expensive one are spaced.

#include "src/agent/config_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/state/net.h"

using namespace zt::agent;

namespace {

struct TempDir {
    std::string path;

    TempDir() {
        char pattern[] = "/tmp/zt-writer-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path = pattern;
    }

    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!std::system(cmd.c_str());
    }
};

zt::state::Config config_with(size_t workloads) {
    zt::state::Config config;
    for (size_t i = 0; i < workloads; ++i) {
        zt::state::Workload w;
        w.uid = "c1//Pod/default/w" + std::to_string(i);
        w.name = "w" + std::to_string(i);
        w.namespace_ = "default";
        w.workload_ips.push_back(*zt::state::IpAddr::parse("198.18.3." + std::to_string(i + 1)));
        config.workloads.push_back(w);
    }
    return config;
}

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

ino_t inode_of(const std::string& path) {
    struct stat st {};

    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_ino;
}

// Harness runs a writer on a real loop; `content` is what compose returns.
struct Harness {
    TempDir dir;
    std::unique_ptr<zt::agent::StopRequest> stop = std::move(*StopRequest::create());
    std::unique_ptr<Loop> loop;
    AgentMetrics metrics;
    zt::state::Config content;
    int composes = 0;
    std::unique_ptr<ConfigWriter> writer;

    bool start(WriterOptions options) {
        auto made = Loop::create(zt::system_clock(), *stop);
        if (!made) {
            return false;
        }
        loop = std::move(*made);
        options.path = dir.path + "/config.json";
        writer = std::make_unique<ConfigWriter>(
                *loop, options,
                [this](FileComposer& file, std::vector<std::string>& warnings) {
                    composes++;
                    file.update(content, nullptr, warnings);
                },
                metrics);
        writer->init();
        return true;
    }

    // run turns the loop until `done` or about two seconds passed.
    template <class Done>
    void run(Done done) {
        for (int i = 0; i < 200 && !done(); i++) {
            loop->run_once(10'000'000);
        }
    }

    ~Harness() {
        if (writer) {
            writer->shutdown();
            run([this] { return writer->idle(); });
        }
    }

    std::string path() const { return dir.path + "/config.json"; }
};

}  // namespace

TEST_CASE("config writer: changes within the batch go out in one atomic, valid write") {
    Harness h;
    WriterOptions options;
    options.cost_factor = 0;
    options.min_interval_ns = 0;
    if (!h.start(options)) {
        MESSAGE("skipped: io_uring unavailable");
        return;
    }
    h.content = config_with(2);
    h.writer->changed();
    h.writer->changed();
    h.content = config_with(3);
    h.writer->changed();
    CHECK(h.writer->status().pending);
    h.run([&] { return h.writer->status().written == 1; });
    CHECK(h.composes == 1);
    CHECK(h.writer->status().written == 1);
    CHECK_FALSE(h.writer->status().pending);
    auto loaded = zt::config::load_file(h.path());
    REQUIRE(loaded.errors.empty());
    CHECK(loaded.snapshot->config().workloads.size() == 3);
    CHECK(h.writer->status().sha256 == loaded.sha256);

    struct stat st {};

    REQUIRE(::stat(h.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    // Only the file itself: the temporary was renamed, not left behind.
    std::string listing;
    std::string cmd = "ls -A '" + h.dir.path + "'";
    FILE* ls = ::popen(cmd.c_str(), "r");
    char buf[256];
    while (ls != nullptr && std::fgets(buf, sizeof buf, ls) != nullptr) {
        listing += buf;
    }
    if (ls != nullptr) {
        ::pclose(ls);
    }
    CHECK(listing == "config.json\n");
    CHECK(h.metrics.config_writes.value({"written"}) == 1);
}

TEST_CASE("config writer: equal content is not written again, also across restarts") {
    WriterOptions options;
    options.cost_factor = 0;
    options.min_interval_ns = 0;
    Harness h;
    if (!h.start(options)) {
        MESSAGE("skipped: io_uring unavailable");
        return;
    }
    h.content = config_with(1);
    CHECK(h.writer->write_now() == WriteResult::written);
    ino_t inode = inode_of(h.path());
    h.writer->changed();
    h.run([&] { return h.writer->status().unchanged == 1; });
    CHECK(h.writer->write_now() == WriteResult::unchanged);
    CHECK(inode_of(h.path()) == inode);

    // A new writer (an agent restart) finds the same content on disk and leaves the file.
    ConfigWriter again(
            *h.loop, WriterOptions{h.path(), 100'000'000, 0, 0},
            [&h](FileComposer& file, std::vector<std::string>& warnings) {
                file.update(h.content, nullptr, warnings);
            },
            h.metrics);
    again.init();
    CHECK(again.write_now() == WriteResult::unchanged);
    CHECK(inode_of(h.path()) == inode);
    CHECK(again.status().current);
}

TEST_CASE("config writer: invalid content is refused and the last good file kept") {
    WriterOptions options;
    options.cost_factor = 0;
    options.min_interval_ns = 0;
    Harness h;
    if (!h.start(options)) {
        MESSAGE("skipped: io_uring unavailable");
        return;
    }
    h.content = config_with(2);
    REQUIRE(h.writer->write_now() == WriteResult::written);
    std::string good = read(h.path());
    // A duplicate pod uid (compose keeps the pods it is given; duplicate workloads it would
    // resolve).
    zt::state::Pod pod;
    pod.uid = h.content.workloads[0].uid;
    pod.netns = "/var/run/netns/pod0";
    h.content.pods = {pod, pod};
    CHECK(h.writer->write_now() == WriteResult::invalid);
    CHECK(read(h.path()) == good);
    CHECK_FALSE(h.writer->status().current);
    CHECK(h.writer->status().last_error.find("duplicate pod uid") != std::string::npos);
    CHECK(h.metrics.config_writes.value({"invalid"}) == 1);
}

TEST_CASE("config writer: after an expensive write the next waits a multiple of its cost") {
    WriterOptions options;
    options.batch_ns = 10'000'000;
    options.cost_factor = 1e6;  // Any real write cost becomes a long spacing.
    options.max_spacing_ns = 300'000'000;
    options.min_interval_ns = 0;
    Harness h;
    if (!h.start(options)) {
        MESSAGE("skipped: io_uring unavailable");
        return;
    }
    h.content = config_with(1);
    REQUIRE(h.writer->write_now() == WriteResult::written);
    int64_t written_at = zt::monotonic_ns();
    h.content = config_with(2);
    h.writer->changed();
    h.run([&] { return h.writer->status().written == 2; });
    REQUIRE(h.writer->status().written == 2);
    // Batched for at least the capped spacing, not just the 10 ms batch window.
    CHECK(zt::monotonic_ns() - written_at >= 300'000'000);
}

TEST_CASE("config writer: writes start at least the minimum interval apart, however cheap") {
    WriterOptions options;
    options.batch_ns = 10'000'000;
    options.cost_factor = 0;
    options.min_interval_ns = 400'000'000;
    Harness h;
    if (!h.start(options)) {
        MESSAGE("skipped: io_uring unavailable");
        return;
    }
    int64_t started = zt::monotonic_ns();
    h.content = config_with(1);
    REQUIRE(h.writer->write_now() == WriteResult::written);
    h.content = config_with(2);
    h.writer->changed();
    h.run([&] { return h.writer->status().written == 2; });
    REQUIRE(h.writer->status().written == 2);
    CHECK(zt::monotonic_ns() - started >= 400'000'000);
}
