// log_capture.cc is the log sink of in-process tests: every record formatted as ztunnel's plain
// line and kept in memory.

#include "tests/support/log_capture.h"

#include <unistd.h>

#include <atomic>

#include "zt/clock.h"

namespace zt::test {

namespace {

std::atomic<LogCapture*> g_capture{nullptr};

}  // namespace

LogCapture::LogCapture(std::string_view filter) : previous_filter_(log::current_filter()) {
    LogCapture* expected = nullptr;
    ZT_CHECK(g_capture.compare_exchange_strong(expected, this));
    auto parsed = log::Filter::parse(filter);
    ZT_CHECK(parsed.has_value());
    log::set_filter(*parsed);
    log::set_sink(&LogCapture::sink);
}

LogCapture::~LogCapture() {
    log::set_sink(&log::detail::stderr_sink);
    log::set_filter(*previous_filter_);
    g_capture.store(nullptr);
}

void LogCapture::sink(const log::Record& record) {
    LogCapture* capture = g_capture.load();
    if (capture == nullptr) {
        return;
    }
    std::string line = log::format_plain(record);
    std::lock_guard lock(capture->mutex_);
    capture->lines_.push_back(std::move(line));
}

std::vector<std::string> LogCapture::lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
}

size_t LogCapture::count(std::initializer_list<std::string_view> parts) const {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const std::string& line : lines_) {
        bool all = true;
        for (std::string_view part : parts) {
            all = all && line.find(part) != std::string::npos;
        }
        n += all ? 1 : 0;
    }
    return n;
}

bool LogCapture::wait_for(std::initializer_list<std::string_view> parts, size_t at_least,
                          int timeout_ms) const {
    int64_t deadline = monotonic_ns() + int64_t(timeout_ms) * kNanosPerMilli;
    while (count(parts) < at_least) {
        if (monotonic_ns() >= deadline) {
            return false;
        }
        ::usleep(2000);
    }
    return true;
}

std::string LogCapture::dump() const {
    std::string out;
    for (const std::string& line : lines()) {
        out += line;
        out += '\n';
    }
    return out;
}

}  // namespace zt::test
