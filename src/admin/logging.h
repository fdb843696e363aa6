#pragma once

// LogLevels implements `POST /logging` (docs/ztunnel-reference.md §7, docs/ecosystem.md §1.2): with
// no parameter it shows the current filter; `level=<spec>` appends directives (`info`,
// `access=debug`, and also `access:debug`, which ztunnel's help advertises but rejects);
// `reset` first returns to the startup filter (RUST_LOG). Other methods get 405 with the help
// text, an invalid level 400 with the help text. Changes go through `zt::log::set_filter`, so
// every thread sees them on its next log call.

#include <string>
#include <string_view>

#include "src/admin/http.h"
#include "zt/log.h"

namespace zt::admin {

class LogLevels {
public:
    // LogLevels remembers `startup` as the filter `reset` returns to. It does not install it.
    explicit LogLevels(log::Filter startup) : startup_(std::move(startup)) {}

    // handle answers one request to `/logging`.
    HttpResponse handle(const HttpRequest& request);

    // help is the usage text appended to 400 and 405 answers.
    static std::string_view help();

private:
    log::Filter startup_;
};

}  // namespace zt::admin
