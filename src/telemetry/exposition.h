#pragma once

// The Prometheus exposition formats ztunnel's scrapers accept (docs/ecosystem.md §2.1): the classic
// text format 0.0.4 by default, OpenMetrics 1.0 when the scraper's `Accept` asks for it, and gzip
// when `Accept-Encoding` allows it. These are pure string functions; the registry (metrics.h)
// decides what to render and the metrics server (src/admin/) decides what to send.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "zt/result.h"

namespace zt::telemetry {

// Format is one exposition format.
enum class Format : uint8_t {
    prometheus_text,  // text/plain; version=0.0.4: HELP and TYPE name the sample (`x_total`).
    openmetrics,      // OpenMetrics 1.0: HELP and TYPE name the family (`x`), body ends `# EOF`.
};

// MetricType is the TYPE line of a family. A histogram's samples are `_bucket` (with `le`),
// `_sum` and `_count`; its family renders them itself.
enum class MetricType : uint8_t { counter, gauge, histogram };

// content_type returns the Content-Type header value for `format`.
std::string_view content_type(Format format);

// negotiate_format picks OpenMetrics when any entry of the `Accept` header value `accept` is
// `application/openmetrics-text` (with any parameters, q > 0), as ztunnel does; otherwise the
// classic text format. An empty or malformed header gives the classic format.
Format negotiate_format(std::string_view accept);

// accepts_gzip says whether the `Accept-Encoding` header value `accept_encoding` allows gzip:
// a `gzip` or `*` entry whose q-value is not zero.
bool accepts_gzip(std::string_view accept_encoding);

// gzip_compress returns `data` as one gzip member (RFC 1952), compressed with zlib's default
// level. It fails with `Errc::sys` only when zlib cannot allocate.
Result<std::string> gzip_compress(std::string_view data);

// append_family_header appends the `# HELP` and `# TYPE` lines of the family `name` (the base
// name, without `_total` for counters) to `out`. `help` is escaped and gets a trailing period
// like ztunnel's prometheus-client output, unless it already ends with one.
void append_family_header(std::string& out, Format format, std::string_view name,
                          std::string_view help, MetricType type);

// append_sample appends one sample line: `name{k="v",...} value\n`. `name` is the full sample
// name (`x_total` for counters). `label_names` and `label_values` pair up by index and must be the
// same length; values are escaped (`\\`, `\"`, `\n`).
void append_sample(std::string& out, std::string_view name,
                   std::span<const std::string_view> label_names,
                   std::span<const std::string> label_values, std::string_view value);

// format_value renders a sample value: integers without a fraction, others in shortest
// round-trip form, NaN and infinities as Prometheus spells them.
std::string format_value(double value);

// finish appends what ends a body in `format` (`# EOF\n` for OpenMetrics, nothing otherwise).
void finish(std::string& out, Format format);

}  // namespace zt::telemetry
