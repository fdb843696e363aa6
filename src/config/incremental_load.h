#pragma once

// IncrementalLoad gives `load_text`'s verdict on a large file that comes again and again with a
// few elements changed, parsing only the elements whose line it has not parsed before. Two
// users: the control agent (`render` then `load`: it validates the text it is about to write)
// and ztunnel's config watcher (`reload`: any file, usually one the agent rendered).
//
// Why the verdict is the same: `render` writes one element per line inside a fixed frame, and
// `parse` reads each element of a list on its own (its errors, its structs and its unsupported
// keys depend only on its own bytes; duplicate keys are checked per object). So parsing a line
// alone, framed as `{"workloads": [LINE]}`, gives the struct parsing the whole file would give
// for it. The structs of every line, cached by the line's exact bytes, then go through
// `state::Snapshot::build` and `combination_warnings`, the rest of `load_text`, unchanged. Any
// error in a line or in the build falls back to `load_text` on the whole text, so refused files
// report exactly what `ztunnel check-config` reports. A test compares both on every change.
//
// `reload` takes text from anywhere, so it first checks that the text is exactly that frame:
// `{`, the four sections in render's order, each `"name": [` and one element per line joined by
// `,` + newline, `}` and a final newline, nothing else (no other whitespace, no CR). A line that
// is not parsed from the cache must also be one object on its own: it opens with `{` and that
// brace closes at its last byte (strings skipped), so no line can close its section and open
// another one. Text outside the frame (a hand-written file, another writer's layout) goes to
// `load_text` whole.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/config/load.h"
#include "src/config/render.h"
#include "src/state/types.h"

namespace zt::config {

// section_of returns the list of `config` that holds elements of type T (chosen by the type of
// the null pointer passed), for code that handles the four sections alike.
std::vector<state::Workload>& section_of(state::Config& config, const state::Workload*);
std::vector<state::Service>& section_of(state::Config& config, const state::Service*);
std::vector<state::Policy>& section_of(state::Config& config, const state::Policy*);
std::vector<state::Pod>& section_of(state::Config& config, const state::Pod*);

// add_unsupported appends `keys` to `out` in first-seen order without repeats, as the parser
// keeps a whole file's unsupported keys.
void add_unsupported(const std::vector<std::string>& keys, std::vector<std::string>& out);

class IncrementalLoad {
public:
    // render returns `config::render(config)` and keeps each element's line for `load`.
    std::string render(const state::Config& config);

    // load returns what `load_text(text)` returns, where `text` is what the last `render`
    // returned. Lines parsed by the previous load are not parsed again; lines absent from
    // this file are forgotten.
    LoadResult load(std::string_view text);

    // reload returns what `load_text(text)` returns for any text. When the text is in render's
    // frame only its lines not parsed by the previous load are parsed; otherwise the whole text
    // is loaded (and, when valid, the cache emptied: the writer is no longer a renderer).
    // `sha256`, when not empty, is the caller's digest of `text` (saves hashing it twice).
    LoadResult reload(std::string_view text, std::string sha256 = {});

    // Of the last `load` or `reload`: lines parsed, lines whose structs came from the cache,
    // and whether the whole text went to `load_text` (out of the frame or a refused line).
    size_t parsed() const { return parsed_; }

    size_t reused() const { return reused_; }

    bool whole() const { return whole_; }

private:
    // Entry is what parsing one line gave: its struct and the unsupported keys it used, and
    // the number of the last load that used it.
    template <class T>
    struct Entry {
        T item;
        std::vector<std::string> unsupported;
        uint64_t used = 0;
    };

    // LineHash lets the caches be searched with a view of the file's bytes.
    struct LineHash {
        using is_transparent = void;

        size_t operator()(std::string_view line) const {
            return std::hash<std::string_view>{}(line);
        }
    };

    // Section is the cache of one list: every line kept, by its bytes, and the entries of the
    // last clean load in file order. A line equal to the one at its position last time (most
    // of them) is found without hashing it; entries of a node-based map never move, so the
    // pointers stay valid while the map grows.
    template <class T>
    struct Section {
        using Map = std::unordered_map<std::string, Entry<T>, LineHash, std::equal_to<>>;
        Map lines;
        std::vector<typename Map::value_type*> order, next_order;
        size_t used = 0;  // Distinct lines the current load used.
    };

    // Lines are one file's element lines, in the file's order, viewing the text or `lines_`.
    struct Lines {
        std::vector<std::string_view> workloads, services, policies, pods;
    };

    // take fills `out` with the structs of `lines` (section `name`), from `cache` or parsed,
    // marking every line used. False when a line has errors.
    template <class T>
    bool take(const std::vector<std::string_view>& lines, std::string_view name, Section<T>& cache,
              std::vector<T>& out, std::vector<std::string>& unsupported);

    // settle ends a load for one section: after a clean one, lines it did not use are
    // forgotten; after a refused line everything parsed so far is kept, as the next file is
    // most likely this one repaired.
    template <class T>
    void settle(Section<T>& cache, bool clean);

    // load_lines is `load` for the lines of `text`.
    LoadResult load_lines(const Lines& lines, std::string_view text, std::string sha256);

    void clear();

    RenderedLines lines_;
    Lines split_;
    Section<state::Workload> workloads_;
    Section<state::Service> services_;
    Section<state::Policy> policies_;
    Section<state::Pod> pods_;
    uint64_t loads_ = 0;
    size_t parsed_ = 0;
    size_t reused_ = 0;
    bool whole_ = false;
};

}  // namespace zt::config
