#pragma once

// IncrementalLoad is `render` followed by `load_text` for a writer that produces the same large
// file again and again with a few elements changed (the control agent): it gives the same text
// and the same verdict, but parses only the elements whose line it has not parsed before.
//
// Why the verdict is the same: `render` writes one element per line inside a fixed frame, and
// `parse` reads each element of a list on its own (its errors, its structs and its unsupported
// keys depend only on its own bytes; duplicate keys are checked per object). So parsing a line
// alone, framed as `{"workloads": [LINE]}`, gives the struct parsing the whole file would give
// for it. The structs of every line, cached by the line's exact bytes, then go through
// `state::Snapshot::build` and `combination_warnings`, the rest of `load_text`, unchanged. Any
// error in a line or in the build falls back to `load_text` on the whole text, so refused files
// report exactly what `ztunnel check-config` reports. A test compares both on every change.

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/config/load.h"
#include "src/config/render.h"
#include "src/state/types.h"

namespace zt::config {

class IncrementalLoad {
public:
    // render returns `config::render(config)` and keeps each element's line for `load`.
    std::string render(const state::Config& config);

    // load returns what `load_text(text)` returns, where `text` is what the last `render`
    // returned. Lines parsed by the previous `load` are not parsed again; lines absent from
    // this file are forgotten.
    LoadResult load(std::string_view text);

    // Of the last `load`: lines parsed, and lines whose structs came from the cache.
    size_t parsed() const { return parsed_; }

    size_t reused() const { return reused_; }

private:
    // Entry is what parsing one line gave: its struct and the unsupported keys it used.
    template <class T>
    struct Entry {
        T item;
        std::vector<std::string> unsupported;
    };

    template <class T>
    using Cache = std::unordered_map<std::string, Entry<T>>;

    // take fills `out` with the structs of `lines` (section `name`), from `cache` or parsed,
    // moving every line used into `next`. False when a line has errors.
    template <class T>
    bool take(const std::vector<std::string>& lines, std::string_view name, Cache<T>& cache,
              Cache<T>& next, std::vector<T>& out, std::vector<std::string>& unsupported);

    RenderedLines lines_;
    Cache<state::Workload> workloads_, next_workloads_;
    Cache<state::Service> services_, next_services_;
    Cache<state::Policy> policies_, next_policies_;
    Cache<state::Pod> pods_, next_pods_;
    size_t parsed_ = 0;
    size_t reused_ = 0;
};

}  // namespace zt::config
