// access_log.cc turns a `ConnectionLog` into ztunnel's access-log fields in ztunnel's order and
// writes them through zt::log. It checks the filter first so that a disabled level costs no
// formatting; it never touches stdout itself.

#include "src/telemetry/access_log.h"

#include <array>

#include "zt/duration.h"
#include "zt/log.h"

namespace zt::telemetry {

namespace {

constexpr std::string_view kTarget = "access";

// Fields collects at most 17 fields on the stack, skipping absent values.
class Fields {
public:
    void text(std::string_view key, std::string_view value) {
        if (!value.empty()) {
            fields_[size_++] = log::Field::str(key, value);
        }
    }

    void display(std::string_view key, std::string_view value) {
        if (!value.empty()) {
            fields_[size_++] = log::Field::display(key, value);
        }
    }

    void number(std::string_view key, uint64_t value) {
        fields_[size_++] = log::Field::num(key, value);
    }

    std::span<const log::Field> span() const { return {fields_.data(), size_}; }

private:
    std::array<log::Field, 18> fields_{};
    size_t size_ = 0;
};

void add_endpoints(Fields& fields, const ConnectionLog& log) {
    fields.display("src.addr", log.src_addr);
    fields.text("src.workload", log.src_workload);
    fields.text("src.namespace", log.src_namespace);
    if (log.mutual_tls) {
        fields.text("src.identity", log.src_identity);
    }
    fields.text("src.cluster", log.src_cluster);
    fields.display("dst.addr", log.dst_addr);
    fields.display("dst.hbone_addr", log.dst_hbone_addr);
    fields.text("dst.service", log.dst_service);
    fields.text("dst.workload", log.dst_workload);
    fields.text("dst.namespace", log.dst_namespace);
    if (log.mutual_tls) {
        fields.text("dst.identity", log.dst_identity);
    }
    fields.text("dst.cluster", log.dst_cluster);
    fields.text("direction", to_string(log.direction));
}

}  // namespace

std::string_view to_string(Direction direction) {
    switch (direction) {
        case Direction::outbound:
            return "outbound";
        case Direction::inbound:
            return "inbound";
    }
    return "outbound";
}

void log_connection_opened(const ConnectionLog& log) {
    if (!log::enabled(log::Level::debug, kTarget)) {
        return;
    }
    Fields fields;
    add_endpoints(fields, log);
    log::write(log::Level::debug, kTarget, "connection opened", fields.span());
}

void log_connection_complete(const ConnectionLog& log, int64_t duration_ns,
                             std::string_view error) {
    log::Level level = error.empty() ? log::Level::info : log::Level::error;
    if (!log::enabled(level, kTarget)) {
        return;
    }
    Fields fields;
    add_endpoints(fields, log);
    bool outbound = log.direction == Direction::outbound;
    fields.number("bytes_sent", outbound ? log.request_bytes : log.response_bytes);
    fields.number("bytes_recv", outbound ? log.response_bytes : log.request_bytes);
    std::string duration = format_duration_ms(duration_ns < 0 ? 0 : duration_ns);
    fields.text("duration", duration);
    fields.text("error", error);
    log::write(level, kTarget, "connection complete", fields.span());
}

void log_connection_failed(std::string_view src_addr, std::string_view dst_addr,
                           Direction direction, std::string_view error) {
    if (!log::enabled(log::Level::warn, kTarget)) {
        return;
    }
    Fields fields;
    fields.display("src.addr", src_addr);
    fields.display("dst.addr", dst_addr);
    fields.text("direction", to_string(direction));
    fields.text("error", error);
    log::write(log::Level::warn, kTarget, "connection failed", fields.span());
}

}  // namespace zt::telemetry
