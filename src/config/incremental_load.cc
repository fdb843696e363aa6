// incremental_load.cc renders a config line by line and validates it with load_text's own steps,
// parsing only lines it has not parsed before (the reasoning is in incremental_load.h). The
// cache holds the lines of one file: each `load` keeps only the lines it used.

#include "src/config/incremental_load.h"

#include <algorithm>
#include <utility>

#include "src/config/lint.h"
#include "src/config/parse.h"
#include "src/state/snapshot.h"

namespace zt::config {

namespace {

// section_of returns the list of `config` that holds elements of type T.
std::vector<state::Workload>& section_of(state::Config& config, const state::Workload*) {
    return config.workloads;
}

std::vector<state::Service>& section_of(state::Config& config, const state::Service*) {
    return config.services;
}

std::vector<state::Policy>& section_of(state::Config& config, const state::Policy*) {
    return config.policies;
}

std::vector<state::Pod>& section_of(state::Config& config, const state::Pod*) {
    return config.pods;
}

template <class T>
void render_all(const std::vector<T>& items, std::vector<std::string>& lines) {
    lines.clear();
    lines.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        render_line(lines[i], items[i]);
    }
}

void add_unsupported(const std::vector<std::string>& keys, std::vector<std::string>& out) {
    // In first-seen order without repeats, as the parser keeps them for a whole file.
    for (const std::string& key : keys) {
        if (std::find(out.begin(), out.end(), key) == out.end()) {
            out.push_back(key);
        }
    }
}

}  // namespace

std::string IncrementalLoad::render(const state::Config& config) {
    render_all(config.workloads, lines_.workloads);
    render_all(config.services, lines_.services);
    render_all(config.policies, lines_.policies);
    render_all(config.pods, lines_.pods);
    return render_lines(lines_);
}

template <class T>
bool IncrementalLoad::take(const std::vector<std::string>& lines, std::string_view name,
                           Cache<T>& cache, Cache<T>& next, std::vector<T>& out,
                           std::vector<std::string>& unsupported) {
    out.reserve(lines.size());
    std::string framed;
    for (const std::string& line : lines) {
        const Entry<T>* entry = nullptr;
        if (auto found = next.find(line); found != next.end()) {
            entry = &found->second;  // The same line twice in one file.
            ++reused_;
        } else if (auto cached = cache.find(line); cached != cache.end()) {
            entry = &next.insert(cache.extract(cached)).position->second;
            ++reused_;
        } else {
            // The frame puts the line at the depth and in the section it has in the file.
            framed.clear();
            framed.append("{\"");
            framed.append(name);
            framed.append("\": [\n");
            framed.append(line);
            framed.append("\n]}");
            ParseResult parsed = parse(framed);
            ++parsed_;
            std::vector<T>& items = section_of(parsed.config, static_cast<const T*>(nullptr));
            if (!parsed.errors.empty() || items.size() != 1) {
                return false;
            }
            Entry<T> fresh{std::move(items.front()), std::move(parsed.config.unsupported)};
            entry = &next.emplace(line, std::move(fresh)).first->second;
        }
        out.push_back(entry->item);
        add_unsupported(entry->unsupported, unsupported);
    }
    return true;
}

LoadResult IncrementalLoad::load(std::string_view text) {
    parsed_ = 0;
    reused_ = 0;
    state::Config config;
    bool clean = take(lines_.workloads, "workloads", workloads_, next_workloads_, config.workloads,
                      config.unsupported) &&
                 take(lines_.services, "services", services_, next_services_, config.services,
                      config.unsupported) &&
                 take(lines_.policies, "policies", policies_, next_policies_, config.policies,
                      config.unsupported) &&
                 take(lines_.pods, "pods", pods_, next_pods_, config.pods, config.unsupported);
    auto rotate = [clean](auto& cache, auto& next) {
        // Keep the lines of this file only; after a refused line keep everything parsed so
        // far, as the next file is most likely this one repaired.
        if (clean) {
            cache.swap(next);
        } else {
            cache.merge(next);
        }
        next.clear();
    };
    rotate(workloads_, next_workloads_);
    rotate(services_, next_services_);
    rotate(policies_, next_policies_);
    rotate(pods_, next_pods_);
    if (!clean) {
        return load_text(text);  // Every error, with its path in the whole file.
    }
    state::BuildResult built = state::Snapshot::build(std::move(config));
    LoadResult result;
    result.bytes = text.size();
    result.sha256 = sha256_hex(text);
    result.errors = std::move(built.errors);
    if (result.errors.empty()) {
        result.warnings = std::move(built.warnings);
        std::vector<std::string> combinations = combination_warnings(*built.snapshot);
        result.warnings.insert(result.warnings.end(), combinations.begin(), combinations.end());
        result.snapshot = std::move(built.snapshot);
    }
    return result;
}

}  // namespace zt::config
