// logging.cc changes log levels at runtime for `POST /logging`. It only parses the query and
// swaps the process filter; it writes no log lines of its own beyond one info record per change.

#include "src/admin/logging.h"

namespace zt::admin {

namespace {

std::string current_levels() {
    return "current log level is " + log::current_filter()->to_string() + "\n";
}

}  // namespace

std::string_view LogLevels::help() {
    return "\n"
           "usage: POST /logging\t\t\t\t\t\t(show the current levels)\n"
           "usage: POST /logging?level=<level>\t\t\t\t(change the default level)\n"
           "usage: POST /logging?level=<target>=<level>,<target>:<level>\t(change targets' "
           "levels)\n"
           "usage: POST /logging?reset[&level=<spec>]\t\t\t(back to RUST_LOG, then apply)\n"
           "\n"
           "hint: level:\terror|warn|info|debug|trace|off\n"
           "hint: target:\ta log target, e.g. access, proxy, config\n";
}

HttpResponse LogLevels::handle(const HttpRequest& request) {
    if (request.method != "POST") {
        return text_response(405, "Invalid HTTP method\n" + std::string(help()));
    }
    bool reset = false;
    bool has_level = false;
    std::string level;
    for (const auto& [key, value] : parse_query(request.query)) {
        if (key == "reset") {
            reset = true;
        } else if (key == "level") {
            has_level = true;
            level = value;
        }
    }
    if (!reset && (!has_level || level.empty())) {
        return text_response(200, current_levels());
    }
    log::Filter next = reset ? startup_ : *log::current_filter();
    if (!level.empty()) {
        auto parsed = log::Filter::parse(level);
        if (!parsed) {
            return text_response(400,
                                 "Invalid level provided: " + level + "\n" + std::string(help()));
        }
        next = next.with(*parsed);
    }
    std::string rendered = next.to_string();
    log::set_filter(std::move(next));
    log::info("admin", "log level changed", {log::Field::str("level", rendered)});
    return text_response(200, current_levels());
}

}  // namespace zt::admin
