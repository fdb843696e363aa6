#pragma once

// The log interface shared by every module. A log line has a level, a target (`access`,
// `proxy`, `config`, `certs`, `uring`, ...), a message and key=value fields, as ztunnel's
// `tracing` events do (docs/contract.md §8). Modules only call `zt::log::write`; where lines go is
// decided by `src/`, which installs a sink that queues them for the control thread so the data path
// never blocks on stdout. Until then the default sink writes plain lines to stderr synchronously.
//
// Filtering follows RUST_LOG's `Targets` syntax: `info`, `warn,access=debug`, `off`. A target
// matches a directive when it equals it or starts with it followed by `::` or `.`.

#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zt/clock.h"
#include "zt/result.h"

namespace zt::log {

// Level orders verbosity; a filter at `info` lets `error`, `warn` and `info` through.
enum class Level : uint8_t { off = 0, error, warn, info, debug, trace };

constexpr std::string_view to_string(Level level) {
    switch (level) {
        case Level::off:
            return "off";
        case Level::error:
            return "error";
        case Level::warn:
            return "warn";
        case Level::info:
            return "info";
        case Level::debug:
            return "debug";
        case Level::trace:
            return "trace";
    }
    return "off";
}

// parse_level parses a lowercase or uppercase level name.
inline Result<Level> parse_level(std::string_view text) {
    std::string lower(text);
    for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') {
            c = char(c - 'A' + 'a');
        }
    }
    for (Level level :
         {Level::off, Level::error, Level::warn, Level::info, Level::debug, Level::trace}) {
        if (lower == to_string(level)) {
            return level;
        }
    }
    if (lower == "warning") {
        return Level::warn;
    }
    return fail(Errc::parse);
}

// Field is one key=value pair of a log line. `text` values are quoted in the plain format
// (ztunnel's Debug formatting), `display` values (addresses, enums) are not, numbers are numbers.
// A Field borrows its strings; they must outlive the `write` call.
struct Field {
    enum class Kind : uint8_t { text, display, number };

    std::string_view key;
    std::string_view text;
    uint64_t number = 0;
    Kind kind = Kind::text;

    static Field str(std::string_view key, std::string_view value) {
        return {key, value, 0, Kind::text};
    }

    static Field display(std::string_view key, std::string_view value) {
        return {key, value, 0, Kind::display};
    }

    static Field num(std::string_view key, uint64_t value) {
        return {key, {}, value, Kind::number};
    }
};

// Record is one log event as a sink sees it. Everything it points to lives only for the duration
// of the sink call; a queueing sink must format or copy it.
struct Record {
    Level level;
    std::string_view target;
    std::string_view message;
    std::span<const Field> fields;
    int64_t unix_ns;
};

// Filter is an immutable RUST_LOG-style filter: a default level plus per-target levels.
class Filter {
public:
    Filter() = default;

    explicit Filter(Level default_level) : default_level_(default_level) {}

    // parse reads `spec` (`level` or `level,target=level,...`; `target:level` is accepted too,
    // as docs/contract.md's admin endpoint allows). Directives later in the list win.
    static Result<Filter> parse(std::string_view spec) {
        Filter filter(Level::info);
        size_t pos = 0;
        while (pos <= spec.size()) {
            size_t comma = spec.find(',', pos);
            if (comma == std::string_view::npos) {
                comma = spec.size();
            }
            std::string_view directive = trim(spec.substr(pos, comma - pos));
            pos = comma + 1;
            if (directive.empty()) {
                if (comma == spec.size()) {
                    break;
                }
                continue;
            }
            size_t sep = separator(directive);
            if (sep == std::string_view::npos) {
                auto level = parse_level(directive);
                if (!level) {
                    return fail(Errc::parse);
                }
                filter.default_level_ = *level;
                filter.has_default_ = true;
                continue;
            }
            std::string_view target = trim(directive.substr(0, sep));
            auto level = parse_level(trim(directive.substr(sep + 1)));
            if (target.empty() || !level) {
                return fail(Errc::parse);
            }
            filter.set_target(target, *level);
        }
        return filter;
    }

    // with returns a copy of this filter with `other`'s directives applied on top, as
    // `POST /logging?level=` appends to the current filter. `other`'s default level applies only
    // if its spec named one.
    Filter with(const Filter& other) const {
        Filter merged = *this;
        if (other.has_default_) {
            merged.default_level_ = other.default_level_;
        }
        for (const auto& [target, level] : other.targets_) {
            merged.set_target(target, level);
        }
        return merged;
    }

    bool enabled(Level level, std::string_view target) const {
        Level limit = default_level_;
        size_t best = 0;
        for (const auto& [name, target_level] : targets_) {
            if (name.size() >= best && matches(name, target)) {
                best = name.size();
                limit = target_level;
            }
        }
        return level != Level::off && level <= limit;
    }

    // max_level is the most verbose level any target may log at.
    Level max_level() const {
        Level max = default_level_;
        for (const auto& entry : targets_) {
            if (entry.second > max) {
                max = entry.second;
            }
        }
        return max;
    }

    Level default_level() const { return default_level_; }

    // to_string renders the filter back in RUST_LOG syntax, default level first.
    std::string to_string() const {
        std::string out(log::to_string(default_level_));
        for (const auto& [name, level] : targets_) {
            out += ',';
            out += name;
            out += '=';
            out += log::to_string(level);
        }
        return out;
    }

private:
    static std::string_view trim(std::string_view text) {
        while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
            text.remove_prefix(1);
        }
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
            text.remove_suffix(1);
        }
        return text;
    }

    // separator finds where a directive's target ends: at the first `=`, else at a lone `:`
    // (`access:debug`), never inside a `::` path (`ztunnel::proxy=warn`).
    static size_t separator(std::string_view directive) {
        size_t eq = directive.find('=');
        if (eq != std::string_view::npos) {
            return eq;
        }
        size_t colon = directive.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || directive[colon - 1] == ':') {
            return std::string_view::npos;
        }
        return colon;
    }

    static bool matches(std::string_view directive, std::string_view target) {
        if (target.substr(0, directive.size()) != directive) {
            return false;
        }
        if (target.size() == directive.size()) {
            return true;
        }
        char next = target[directive.size()];
        return next == ':' || next == '.';
    }

    void set_target(std::string_view target, Level level) {
        // Our targets are ztunnel's with the crate prefix stripped (`proxy`, not
        // `ztunnel::proxy`), so operators' RUST_LOG lines written for ztunnel still apply.
        constexpr std::string_view kCrate = "ztunnel::";
        if (target.substr(0, kCrate.size()) == kCrate && target.size() > kCrate.size()) {
            target.remove_prefix(kCrate.size());
        }
        for (auto& entry : targets_) {
            if (entry.first == target) {
                entry.second = level;
                return;
            }
        }
        targets_.emplace_back(std::string(target), level);
    }

    Level default_level_ = Level::info;
    bool has_default_ = false;
    std::vector<std::pair<std::string, Level>> targets_;
};

// Sink receives every record that passed the filter. It must be thread-safe.
using Sink = void (*)(const Record&);

namespace detail {

// utf8_sequence_length returns the length (1 to 4) of the well-formed UTF-8 sequence that starts
// `text`, or 0 when the bytes there are not one: a stray continuation byte, an overlong form, a
// UTF-16 surrogate, a code point above U+10FFFF or a truncated sequence (RFC 3629, Unicode table
// 3-7). `text` must not be empty.
inline size_t utf8_sequence_length(std::string_view text) {
    auto byte = [&](size_t at) {
        return at < text.size() ? uint8_t(text[at]) : uint8_t(0);
    };
    auto tail = [&](size_t at) {
        return (byte(at) & 0xc0) == 0x80;
    };
    uint8_t lead = byte(0);
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xc2 && lead <= 0xdf) {
        return tail(1) ? 2 : 0;
    }
    if (lead >= 0xe0 && lead <= 0xef) {
        // E0 needs A0..BF next (shorter forms are overlong); ED needs 80..9F (A0..BF would be
        // a surrogate).
        uint8_t lo = lead == 0xe0 ? 0xa0 : 0x80;
        uint8_t hi = lead == 0xed ? 0x9f : 0xbf;
        return byte(1) >= lo && byte(1) <= hi && tail(2) ? 3 : 0;
    }
    if (lead >= 0xf0 && lead <= 0xf4) {
        // F0 needs 90..BF next (overlong otherwise); F4 needs 80..8F (above U+10FFFF otherwise).
        uint8_t lo = lead == 0xf0 ? 0x90 : 0x80;
        uint8_t hi = lead == 0xf4 ? 0x8f : 0xbf;
        return byte(1) >= lo && byte(1) <= hi && tail(2) && tail(3) ? 4 : 0;
    }
    return 0;
}

// append_escaped appends `text` so that the result is valid UTF-8 on one line whatever `text`
// holds (config values and peer bytes end up in logs): `"` and `\` escaped when `quoting`;
// newline, CR and tab as `\n`, `\r`, `\t`; other control bytes and DEL as `\u00XX`; well-formed
// UTF-8 kept; each byte of an invalid sequence as the four characters `\xNN`, so its value stays
// readable. A JSON string cannot name a byte that is not a character, so with `json` that
// backslash is itself escaped (`\\xNN` in the line, `\xNN` once decoded).
inline void append_escaped(std::string& out, std::string_view text, bool quoting, bool json) {
    constexpr char kHex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < text.size()) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(text.substr(i));
            if (n > 0) {
                out.append(text.data() + i, n);
                i += n;
                continue;
            }
            out += json ? "\\\\x" : "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
            ++i;
            continue;
        }
        ++i;
        switch (c) {
            case '"':
                out += quoting ? "\\\"" : "\"";
                break;
            case '\\':
                out += quoting ? "\\\\" : "\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 15];
                } else {
                    out += char(c);
                }
        }
    }
}

inline void append_quoted(std::string& out, std::string_view text, bool json = false) {
    out += '"';
    append_escaped(out, text, true, json);
    out += '"';
}

}  // namespace detail

// format_time renders `unix_ns` as RFC 3339 UTC with microseconds, `2026-11-26T05:39:28.123456Z`.
inline std::string format_time(int64_t unix_ns) {
    time_t seconds = time_t(unix_ns / kNanosPerSecond);
    unsigned micros = unsigned((unix_ns % kNanosPerSecond) / 1000) % 1'000'000u;
    tm parts;
    gmtime_r(&seconds, &parts);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                  micros);
    return buf;
}

// format_plain renders `record` as ztunnel's plain format, without the trailing newline:
// `<time>\t<level>\t<target>\t<message>\t<k=v k=v ...>`.
inline std::string format_plain(const Record& record) {
    std::string out = format_time(record.unix_ns);
    out += '\t';
    out += to_string(record.level);
    out += '\t';
    out += record.target;
    out += '\t';
    out += record.message;
    if (!record.fields.empty()) {
        out += '\t';
        bool first = true;
        for (const Field& field : record.fields) {
            if (!first) {
                out += ' ';
            }
            first = false;
            out += field.key;
            out += '=';
            switch (field.kind) {
                case Field::Kind::text:
                    detail::append_quoted(out, field.text);
                    break;
                case Field::Kind::display:
                    detail::append_escaped(out, field.text, false, false);
                    break;
                case Field::Kind::number:
                    out += std::to_string(field.number);
                    break;
            }
        }
    }
    return out;
}

// format_json renders `record` as one JSON object (no newline) with `level`, `time`, `scope`,
// `message`, then the fields in order.
inline std::string format_json(const Record& record) {
    std::string out = "{\"level\":\"";
    out += to_string(record.level);
    out += "\",\"time\":\"";
    out += format_time(record.unix_ns);
    out += "\",\"scope\":";
    detail::append_quoted(out, record.target, true);
    out += ",\"message\":";
    detail::append_quoted(out, record.message, true);
    for (const Field& field : record.fields) {
        out += ',';
        detail::append_quoted(out, field.key, true);
        out += ':';
        if (field.kind == Field::Kind::number) {
            out += std::to_string(field.number);
        } else {
            detail::append_quoted(out, field.text, true);
        }
    }
    out += '}';
    return out;
}

namespace detail {

inline void stderr_sink(const Record& record) {
    std::string line = format_plain(record);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

struct State {
    std::atomic<Sink> sink{&stderr_sink};
    std::atomic<uint8_t> max_level{uint8_t(Level::info)};
    std::atomic<std::shared_ptr<const Filter>> filter{std::make_shared<const Filter>(Level::info)};
};

inline State& state() {
    static State instance;
    return instance;
}

}  // namespace detail

// set_sink installs `sink` for all later records.
inline void set_sink(Sink sink) {
    detail::state().sink.store(sink, std::memory_order_release);
}

// set_filter installs `filter` for all later records.
inline void set_filter(Filter filter) {
    auto& state = detail::state();
    state.max_level.store(uint8_t(filter.max_level()), std::memory_order_relaxed);
    state.filter.store(std::make_shared<const Filter>(std::move(filter)));
}

// current_filter returns the filter in force.
inline std::shared_ptr<const Filter> current_filter() {
    return detail::state().filter.load();
}

// enabled says whether a record at `level` for `target` would be written. The common "too
// verbose for anyone" case costs one relaxed atomic load.
inline bool enabled(Level level, std::string_view target) {
    auto& state = detail::state();
    if (uint8_t(level) > state.max_level.load(std::memory_order_relaxed)) {
        return false;
    }
    return state.filter.load()->enabled(level, target);
}

// write logs one record if the filter lets it through.
inline void write(Level level, std::string_view target, std::string_view message,
                  std::span<const Field> fields = {}) {
    if (!enabled(level, target)) {
        return;
    }
    Record record{level, target, message, fields, zt::unix_ns()};
    detail::state().sink.load(std::memory_order_acquire)(record);
}

inline void write(Level level, std::string_view target, std::string_view message,
                  std::initializer_list<Field> fields) {
    write(level, target, message, std::span<const Field>(fields.begin(), fields.size()));
}

inline void error(std::string_view target, std::string_view message,
                  std::initializer_list<Field> fields = {}) {
    write(Level::error, target, message, fields);
}

inline void warn(std::string_view target, std::string_view message,
                 std::initializer_list<Field> fields = {}) {
    write(Level::warn, target, message, fields);
}

inline void info(std::string_view target, std::string_view message,
                 std::initializer_list<Field> fields = {}) {
    write(Level::info, target, message, fields);
}

inline void debug(std::string_view target, std::string_view message,
                  std::initializer_list<Field> fields = {}) {
    write(Level::debug, target, message, fields);
}

}  // namespace zt::log
