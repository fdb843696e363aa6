// Tests for IncrementalLoad: for every valid file of the corpus and for a series of changes to
// one (an element edited, added, removed, duplicated, made invalid and repaired), its text is
// `render`'s and its verdict is `load_text`'s on the same bytes (errors, warnings and the
// snapshot's structs), while only the lines it had not seen are parsed. The file mode (`reload`,
// the watcher's) gets the same series on the rendered text, plus every corpus file as it is
// (hand-written layouts, broken files) and texts that are almost render's frame: a line that
// moves sections, a line that closes its section and opens another, CRLF, a missing newline.

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

// check_reload loads `text` with `reload` and with `load_text`; the results must agree.
void check_reload(IncrementalLoad& incremental, std::string_view text) {
    zt::config::LoadResult fast = incremental.reload(text);
    zt::config::LoadResult full = zt::config::load_text(text);
    CHECK(fast.errors == full.errors);
    CHECK(fast.warnings == full.warnings);
    CHECK(fast.sha256 == full.sha256);
    CHECK(fast.bytes == full.bytes);
    CHECK(fast.too_deep == full.too_deep);
    REQUIRE(bool(fast.snapshot) == bool(full.snapshot));
    if (fast.snapshot) {
        CHECK(fast.snapshot->config() == full.snapshot->config());
    }
}

// replace_once returns `text` with its one occurrence of `from` replaced by `to`.
std::string replace_once(std::string text, std::string_view from, std::string_view to) {
    size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(text.find(from, at + 1) == std::string::npos);
    return text.replace(at, from.size(), to);
}

std::string line_of(const zt::state::Workload& workload) {
    std::string line;
    zt::config::render_line(line, workload);
    return line;
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

TEST_CASE("incremental reload: every corpus file as it is gets load_text's verdict") {
    size_t whole = 0;
    size_t lines = 0;
    for (const auto& entry : std::filesystem::directory_iterator("tests/corpus/config")) {
        INFO(entry.path().string());
        std::string text = read_text(entry.path());
        IncrementalLoad incremental;
        check_reload(incremental, text);
        check_reload(incremental, text);  // Again, after a cache that may hold its lines.
        (incremental.whole() ? whole : lines) += 1;
        // The same config as the agent renders it is in the frame: parsed line by line.
        auto result = zt::config::parse(text);
        if (result.errors.empty()) {
            std::string rendered = zt::config::render(result.config);
            check_reload(incremental, rendered);
            CHECK(!incremental.whole());
        }
    }
    CHECK(whole >= 10);  // The corpus is hand-written and fuzzed: mostly not render's layout.
}

TEST_CASE("incremental reload: a change parses only its line, and errors are load_text's") {
    zt::state::Config base = parsed(read_text("tests/corpus/config/full.json"));
    REQUIRE(base.workloads.size() >= 2);
    REQUIRE(!base.pods.empty());
    size_t lines =
            base.workloads.size() + base.services.size() + base.policies.size() + base.pods.size();
    IncrementalLoad incremental;
    check_reload(incremental, zt::config::render(base));
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() == lines);

    zt::state::Config edited = base;
    edited.workloads[1].canonical_revision = "v-next";
    check_reload(incremental, zt::config::render(edited));
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() == 1);
    CHECK(incremental.reused() == lines - 1);

    // Strings full of the frame's own bytes (braces, brackets, quotes, a backslash, a newline)
    // stay inside their line.
    zt::state::Config tricky = edited;
    tricky.workloads[0].name = "a}], \"services\": [{\\\n";
    tricky.workloads[0].canonical_revision = "}";
    check_reload(incremental, zt::config::render(tricky));
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() == 1);

    // A duplicate uid is a cross-object error: every line is cached, the build refuses it.
    zt::state::Config duplicated = edited;
    duplicated.workloads.push_back(duplicated.workloads[0]);
    check_reload(incremental, zt::config::render(duplicated));
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() == 1);  // tricky's workload 0 was forgotten; edited's is back.
    CHECK(!incremental.reload(zt::config::render(duplicated)).errors.empty());
    CHECK(incremental.parsed() == 0);

    // A line parse refuses: the errors (with their paths in the whole file) are load_text's.
    zt::state::Config bad = edited;
    bad.pods[0].netns = "not/absolute";
    check_reload(incremental, zt::config::render(bad));
    CHECK(incremental.whole());
    CHECK(!incremental.reload(zt::config::render(bad)).errors.empty());

    // A line that is not JSON: the whole file is refused with the parser's own message.
    std::string text = zt::config::render(edited);
    std::string broken =
            replace_once(text, line_of(edited.workloads[1]), "{\"uid\": \"cut-off\", ");
    check_reload(incremental, broken);
    CHECK(incremental.whole());
    REQUIRE(!incremental.reload(broken).errors.empty());

    // Repaired: the lines parsed before the refusals are still cached.
    check_reload(incremental, text);
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() == 0);

    // Removed elements are forgotten: putting one back parses it again.
    zt::state::Config fewer = edited;
    fewer.workloads.pop_back();
    check_reload(incremental, zt::config::render(fewer));
    CHECK(incremental.parsed() == 0);
    check_reload(incremental, text);
    CHECK(incremental.parsed() == 1);
}

TEST_CASE("incremental reload: texts almost in the frame go to load_text whole") {
    zt::state::Config base = parsed(read_text("tests/corpus/config/full.json"));
    REQUIRE(base.workloads.size() >= 2);
    REQUIRE(!base.services.empty());
    std::string text = zt::config::render(base);
    IncrementalLoad incremental;
    check_reload(incremental, text);
    REQUIRE(!incremental.whole());
    std::string workload = line_of(base.workloads.back());

    // A workload's line (cached as a workload) moved into the services section: a service
    // parse of those bytes, refused with load_text's errors.
    std::string service_line;
    zt::config::render_line(service_line, base.services.front());
    std::string moved = replace_once(text, service_line, workload);
    check_reload(incremental, moved);
    CHECK(incremental.whole());

    // The last workload's line also closes the workloads list and opens `services`: parsed
    // alone in the frame it is one workload, but the file has `services` twice. The line is
    // not one object, so the file goes whole and is refused as check-config refuses it.
    std::string closing = workload + "], \"services\": [" + service_line;
    std::string smuggled = replace_once(text, workload + "\n]", closing + "\n]");
    check_reload(incremental, smuggled);
    CHECK(incremental.whole());
    CHECK(!incremental.reload(smuggled).errors.empty());

    // Layouts render never writes: valid, so loaded whole with the same verdict (and the
    // cache dropped: the next rendered file parses every line again).
    std::string crlf;
    for (char c : text) {
        crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    }
    std::string no_final_newline = text.substr(0, text.size() - 1);
    std::string spaced = replace_once(text, "\"pods\": [", "\"pods\" : [");
    for (const std::string& other : {crlf, no_final_newline, spaced}) {
        check_reload(incremental, other);
        CHECK(incremental.whole());
    }
    check_reload(incremental, text);
    CHECK(!incremental.whole());
    CHECK(incremental.parsed() ==
          base.workloads.size() + base.services.size() + base.policies.size() + base.pods.size());

    // Sections in another order, or missing: valid files, loaded whole.
    check_reload(incremental, "{\"services\": [],\n\"workloads\": []}\n");
    CHECK(incremental.whole());
    check_reload(incremental, "{\n\"workloads\": [],\n\"services\": [],\n\"policies\": []\n}\n");
    CHECK(incremental.whole());
    // The empty frame itself is in the frame.
    check_reload(incremental, zt::config::render({}));
    CHECK(!incremental.whole());
}
