// incremental_load.cc renders a config line by line, cuts a file in render's frame back into its
// lines, and validates either with load_text's own steps, parsing only lines it has not parsed
// before (the reasoning is in incremental_load.h). The cache holds the lines of one file: each
// load keeps only the lines it used.

#include "src/config/incremental_load.h"

#include <algorithm>
#include <utility>

#include "src/config/lint.h"
#include "src/config/parse.h"
#include "src/state/snapshot.h"

namespace zt::config {

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

void add_unsupported(const std::vector<std::string>& keys, std::vector<std::string>& out) {
    // In first-seen order without repeats, as the parser keeps them for a whole file.
    for (const std::string& key : keys) {
        if (std::find(out.begin(), out.end(), key) == out.end()) {
            out.push_back(key);
        }
    }
}

namespace {

template <class T>
void render_all(const std::vector<T>& items, std::vector<std::string>& lines) {
    lines.clear();
    lines.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        render_line(lines[i], items[i]);
    }
}

void view_all(const std::vector<std::string>& lines, std::vector<std::string_view>& views) {
    views.assign(lines.begin(), lines.end());
}

// consume removes `token` from the front of `text`; false (and `text` unchanged) when it is not
// there.
bool consume(std::string_view& text, std::string_view token) {
    if (!text.starts_with(token)) {
        return false;
    }
    text.remove_prefix(token.size());
    return true;
}

// split_section cuts one section of render's frame, `"name": [` up to its `]`, into its lines.
bool split_section(std::string_view& text, std::string_view name,
                   std::vector<std::string_view>& lines) {
    lines.clear();
    if (!consume(text, "\"") || !consume(text, name) || !consume(text, "\": [")) {
        return false;
    }
    if (consume(text, "]")) {
        return true;  // Empty.
    }
    if (!consume(text, "\n")) {
        return false;
    }
    for (;;) {
        size_t end = text.find('\n');
        if (end == std::string_view::npos) {
            return false;
        }
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end + 1);
        if (consume(text, "]")) {
            lines.push_back(line);  // The last element: no comma.
            return true;
        }
        if (!line.ends_with(',')) {
            return false;
        }
        line.remove_suffix(1);
        lines.push_back(line);
    }
}

// is_one_object says whether `line` opens with `{` and that brace closes at its last byte
// (strings skipped). A line that also parses is then exactly one JSON object: it cannot close
// its section and open another, so it is an element of the section it is in.
bool is_one_object(std::string_view line) {
    if (line.size() < 2 || line.front() != '{' || line.back() != '}') {
        return false;
    }
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (in_string) {
            if (c == '\\') {
                ++i;  // The escaped byte cannot end the string.
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || (--depth == 0 && i + 1 != line.size())) {
                return false;
            }
        }
    }
    return depth == 0 && !in_string;
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
bool IncrementalLoad::take(const std::vector<std::string_view>& lines, std::string_view name,
                           Section<T>& cache, std::vector<T>& out,
                           std::vector<std::string>& unsupported) {
    out.reserve(lines.size());
    cache.next_order.clear();
    cache.next_order.reserve(lines.size());
    cache.used = 0;
    std::string framed;
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        typename Section<T>::Map::value_type* entry = nullptr;
        if (i < cache.order.size() && cache.order[i]->first == line) {
            entry = cache.order[i];
            ++reused_;
        } else if (auto cached = cache.lines.find(line); cached != cache.lines.end()) {
            entry = &*cached;
            ++reused_;
        } else {
            if (!is_one_object(line)) {
                return false;
            }
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
            entry = &*cache.lines.emplace(std::string(line), std::move(fresh)).first;
        }
        if (entry->second.used != loads_) {
            entry->second.used = loads_;
            ++cache.used;
        }
        cache.next_order.push_back(entry);
        out.push_back(entry->second.item);
        add_unsupported(entry->second.unsupported, unsupported);
    }
    return true;
}

template <class T>
void IncrementalLoad::settle(Section<T>& cache, bool clean) {
    if (!clean) {
        return;  // Nothing forgotten, so the last clean order still points at live entries.
    }
    if (cache.lines.size() != cache.used) {
        std::erase_if(cache.lines, [this](const auto& kv) { return kv.second.used != loads_; });
    }
    cache.order.swap(cache.next_order);
}

LoadResult IncrementalLoad::load(std::string_view text) {
    view_all(lines_.workloads, split_.workloads);
    view_all(lines_.services, split_.services);
    view_all(lines_.policies, split_.policies);
    view_all(lines_.pods, split_.pods);
    return load_lines(split_, text, {});
}

LoadResult IncrementalLoad::reload(std::string_view text, std::string sha256) {
    std::string_view rest = text;
    bool framed = consume(rest, "{\n") && split_section(rest, "workloads", split_.workloads) &&
                  consume(rest, ",\n") && split_section(rest, "services", split_.services) &&
                  consume(rest, ",\n") && split_section(rest, "policies", split_.policies) &&
                  consume(rest, ",\n") && split_section(rest, "pods", split_.pods) &&
                  consume(rest, "\n}\n") && rest.empty();
    if (framed) {
        return load_lines(split_, text, std::move(sha256));
    }
    parsed_ = 0;
    reused_ = 0;
    whole_ = true;
    LoadResult result = load_text(text);
    if (result.snapshot) {
        clear();  // A valid file from another writer: the cached lines will not come back soon.
    }
    return result;
}

void IncrementalLoad::clear() {
    workloads_ = {};
    services_ = {};
    policies_ = {};
    pods_ = {};
}

LoadResult IncrementalLoad::load_lines(const Lines& lines, std::string_view text,
                                       std::string sha256) {
    parsed_ = 0;
    reused_ = 0;
    whole_ = false;
    ++loads_;
    state::Config config;
    bool clean =
            take(lines.workloads, "workloads", workloads_, config.workloads, config.unsupported) &&
            take(lines.services, "services", services_, config.services, config.unsupported) &&
            take(lines.policies, "policies", policies_, config.policies, config.unsupported) &&
            take(lines.pods, "pods", pods_, config.pods, config.unsupported);
    settle(workloads_, clean);
    settle(services_, clean);
    settle(policies_, clean);
    settle(pods_, clean);
    if (!clean) {
        whole_ = true;
        return load_text(text);  // Every error, with its path in the whole file.
    }
    state::BuildResult built = state::Snapshot::build(std::move(config));
    LoadResult result;
    result.bytes = text.size();
    result.sha256 = sha256.empty() ? sha256_hex(text) : std::move(sha256);
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
