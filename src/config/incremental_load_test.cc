// Tests for IncrementalLoad: for every valid file of the corpus and for a series of changes to
// one (an element edited, added, removed, duplicated, made invalid and repaired), its text is
// `render`'s and its verdict is `load_text`'s on the same bytes (errors, warnings and the
// snapshot's structs), while only the lines it had not seen are parsed.

#include "src/config/incremental_load.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/config/parse.h"
#include "src/config/render.h"

namespace {

using zt::config::IncrementalLoad;

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// check_same renders `config` both ways and loads the text both ways; the results must agree.
void check_same(IncrementalLoad& incremental, const zt::state::Config& config) {
    std::string text = incremental.render(config);
    REQUIRE(text == zt::config::render(config));
    zt::config::LoadResult fast = incremental.load(text);
    zt::config::LoadResult full = zt::config::load_text(text);
    CHECK(fast.errors == full.errors);
    CHECK(fast.warnings == full.warnings);
    CHECK(fast.sha256 == full.sha256);
    CHECK(fast.bytes == full.bytes);
    REQUIRE(bool(fast.snapshot) == bool(full.snapshot));
    if (fast.snapshot) {
        CHECK(fast.snapshot->config() == full.snapshot->config());
    }
}

zt::state::Config parsed(const std::string& text) {
    auto result = zt::config::parse(text);
    REQUIRE(result.errors.empty());
    return result.config;
}

}  // namespace

TEST_CASE("incremental load: every valid corpus file gives render's text and load_text's verdict") {
    size_t valid = 0;
    for (const auto& entry : std::filesystem::directory_iterator("tests/corpus/config")) {
        std::string text = read_text(entry.path());
        auto result = zt::config::parse(text);
        if (!result.errors.empty()) {
            continue;
        }
        INFO(entry.path().string());
        IncrementalLoad incremental;
        check_same(incremental, result.config);
        check_same(incremental, result.config);  // Again, all from the cache.
        CHECK(incremental.parsed() == 0);
        ++valid;
    }
    CHECK(valid >= 10);
}

TEST_CASE("incremental load: a change parses only its line, and errors are load_text's") {
    zt::state::Config base = parsed(read_text("tests/corpus/config/full.json"));
    REQUIRE(base.workloads.size() >= 2);
    REQUIRE(!base.pods.empty());
    size_t lines =
            base.workloads.size() + base.services.size() + base.policies.size() + base.pods.size();
    IncrementalLoad incremental;
    check_same(incremental, base);
    CHECK(incremental.parsed() == lines);

    zt::state::Config edited = base;
    edited.workloads[1].canonical_revision = "v-next";
    check_same(incremental, edited);
    CHECK(incremental.parsed() == 1);
    CHECK(incremental.reused() == lines - 1);

    // A duplicate uid is a cross-object error: every line is cached, the build refuses it.
    zt::state::Config duplicated = edited;
    duplicated.workloads.push_back(duplicated.workloads[0]);
    check_same(incremental, duplicated);
    CHECK(incremental.parsed() == 0);
    CHECK(!incremental.load(incremental.render(duplicated)).errors.empty());

    // A line parse refuses: the errors (with their paths in the whole file) are load_text's.
    zt::state::Config bad = edited;
    bad.pods[0].netns = "not/absolute";
    check_same(incremental, bad);
    CHECK(!incremental.load(incremental.render(bad)).errors.empty());

    // Repaired: the lines parsed before the refusal are still cached.
    check_same(incremental, edited);
    CHECK(incremental.parsed() == 0);

    // Removed elements are forgotten: putting one back parses it again.
    zt::state::Config fewer = edited;
    fewer.workloads.pop_back();
    check_same(incremental, fewer);
    CHECK(incremental.parsed() == 0);
    check_same(incremental, edited);
    CHECK(incremental.parsed() == 1);
}
