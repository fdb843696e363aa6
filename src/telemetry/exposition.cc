// exposition.cc renders metric families in the classic Prometheus text format and in
// OpenMetrics, negotiates between them from request headers, and gzips bodies with zlib. It holds
// no metric state and does no I/O.

#include "src/telemetry/exposition.h"

#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace zt::telemetry {

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] - 'A' + 'a') : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? char(b[i] - 'A' + 'a') : b[i];
        if (x != y) {
            return false;
        }
    }
    return true;
}

// for_each_entry calls `fn(token, q_is_zero)` for every comma-separated entry of an Accept-style
// header. A q-value that does not parse counts as non-zero: being generous here only means
// answering in a format the client listed.
template <class Fn>
void for_each_entry(std::string_view header, Fn&& fn) {
    size_t pos = 0;
    while (pos <= header.size()) {
        size_t comma = header.find(',', pos);
        if (comma == std::string_view::npos) {
            comma = header.size();
        }
        std::string_view entry = header.substr(pos, comma - pos);
        pos = comma + 1;
        size_t semi = entry.find(';');
        std::string_view token = trim(entry.substr(0, semi));
        bool q_zero = false;
        while (semi != std::string_view::npos) {
            std::string_view rest = entry.substr(semi + 1);
            size_t next = rest.find(';');
            std::string_view param = trim(rest.substr(0, next));
            if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                std::string_view q = param.substr(2);
                q_zero = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
            }
            semi = next == std::string_view::npos ? next : semi + 1 + next;
        }
        if (!token.empty()) {
            fn(token, q_zero);
        }
        if (comma == header.size()) {
            break;
        }
    }
}

void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (char c : text) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '"':
                if (quote) {
                    out += "\\\"";
                } else {
                    out += c;
                }
                break;
            default:
                out += c;
        }
    }
}

}  // namespace

std::string_view content_type(Format format) {
    switch (format) {
        case Format::prometheus_text:
            return "text/plain; version=0.0.4; charset=utf-8";
        case Format::openmetrics:
            return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    }
    return "text/plain; version=0.0.4; charset=utf-8";
}

Format negotiate_format(std::string_view accept) {
    Format format = Format::prometheus_text;
    for_each_entry(accept, [&](std::string_view token, bool q_zero) {
        if (!q_zero && iequals(token, "application/openmetrics-text")) {
            format = Format::openmetrics;
        }
    });
    return format;
}

bool accepts_gzip(std::string_view accept_encoding) {
    bool gzip = false;
    for_each_entry(accept_encoding, [&](std::string_view token, bool q_zero) {
        if (!q_zero && (iequals(token, "gzip") || token == "*")) {
            gzip = true;
        }
    });
    return gzip;
}

Result<std::string> gzip_compress(std::string_view data) {
    z_stream stream{};
    // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of a zlib one.
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        return fail(Errc::sys, ENOMEM);
    }
    std::string out;
    out.resize(deflateBound(&stream, uLong(data.size())) + 32);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    stream.avail_in = uInt(data.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = uInt(out.size());
    int rc = deflate(&stream, Z_FINISH);
    size_t produced = stream.total_out;
    deflateEnd(&stream);
    // deflateBound guarantees one Z_FINISH call suffices; anything else is a zlib failure.
    if (rc != Z_STREAM_END) {
        return fail(Errc::sys, ENOMEM);
    }
    out.resize(produced);
    return out;
}

void append_family_header(std::string& out, Format format, std::string_view name,
                          std::string_view help, MetricType type) {
    bool counter = type == MetricType::counter;
    bool suffix = counter && format == Format::prometheus_text;
    out += "# HELP ";
    out += name;
    if (suffix) {
        out += "_total";
    }
    out += ' ';
    append_escaped(out, help, false);
    if (help.empty() || help.back() != '.') {
        out += '.';
    }
    out += "\n# TYPE ";
    out += name;
    if (suffix) {
        out += "_total";
    }
    switch (type) {
        case MetricType::counter:
            out += " counter\n";
            break;
        case MetricType::gauge:
            out += " gauge\n";
            break;
        case MetricType::histogram:
            out += " histogram\n";
            break;
    }
}

void append_sample(std::string& out, std::string_view name,
                   std::span<const std::string_view> label_names,
                   std::span<const std::string> label_values, std::string_view value) {
    out += name;
    size_t count =
            label_names.size() < label_values.size() ? label_names.size() : label_values.size();
    if (count > 0) {
        out += '{';
        for (size_t i = 0; i < count; ++i) {
            if (i > 0) {
                out += ',';
            }
            out += label_names[i];
            out += "=\"";
            append_escaped(out, label_values[i], true);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

std::string format_value(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    if (value == std::floor(value) && std::fabs(value) < 9.0e15) {
        return std::to_string(int64_t(value));
    }
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    if (ec != std::errc()) {
        return "NaN";
    }
    return std::string(buf, end);
}

void finish(std::string& out, Format format) {
    if (format == Format::openmetrics) {
        out += "# EOF\n";
    }
}

}  // namespace zt::telemetry
