#pragma once

// LogCapture collects every log line written while it lives (plain format, as ztunnel writes
// them), so in-process tests can check the access log's exact text. It installs itself as the
// process's log sink with a filter of `level` and puts the previous sink and filter back when it
// goes; one capture at a time.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "zt/log.h"

namespace zt::test {

class LogCapture {
public:
    explicit LogCapture(std::string_view filter = "debug");
    ~LogCapture();
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    // lines returns every line so far.
    std::vector<std::string> lines() const;

    // count is how many lines contain every one of `parts`.
    size_t count(std::initializer_list<std::string_view> parts) const;

    // wait_for waits up to `timeout_ms` until `count(parts)` reaches `at_least`.
    bool wait_for(std::initializer_list<std::string_view> parts, size_t at_least = 1,
                  int timeout_ms = 5000) const;

    // dump renders every line, for a failing test's message.
    std::string dump() const;

private:
    static void sink(const log::Record& record);

    std::shared_ptr<const log::Filter> previous_filter_;
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

}  // namespace zt::test
