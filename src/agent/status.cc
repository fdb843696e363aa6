// status.cc renders the agent's /debug document by hand (only src/config reads or writes JSON
// through nlohmann; this is a fixed shape of strings and numbers, escaped by the log module's
// JSON quoting).

#include "src/agent/status.h"

#include "zt/log.h"

namespace zt::agent {

namespace {

class JsonOut {
public:
    explicit JsonOut(std::string& out) : out_(out) {}

    void key(std::string_view name) {
        comma();
        log::detail::append_quoted(out_, name);
        out_ += ':';
        fresh_ = true;
    }

    void str(std::string_view name, std::string_view value) {
        key(name);
        log::detail::append_quoted(out_, value);
        fresh_ = false;
    }

    void num(std::string_view name, uint64_t value) {
        key(name);
        out_ += std::to_string(value);
        fresh_ = false;
    }

    void boolean(std::string_view name, bool value) {
        key(name);
        out_ += value ? "true" : "false";
        fresh_ = false;
    }

    // time writes an RFC 3339 time, or null for 0.
    void time(std::string_view name, int64_t unix_ns) {
        key(name);
        if (unix_ns == 0) {
            out_ += "null";
        } else {
            log::detail::append_quoted(out_, log::format_time(unix_ns));
        }
        fresh_ = false;
    }

    void open(char bracket) {
        comma();
        out_ += bracket;
        fresh_ = true;
    }

    void close(char bracket) {
        out_ += bracket;
        fresh_ = false;
    }

    void string_value(std::string_view text) {
        comma();
        log::detail::append_quoted(out_, text);
        fresh_ = false;
    }

private:
    void comma() {
        if (!fresh_) {
            out_ += ',';
        }
        fresh_ = false;
    }

    std::string& out_;
    bool fresh_ = true;
};

}  // namespace

namespace {

void render_xds(JsonOut& j, const AgentSnapshot& s) {
    j.str("address", s.xds.address);
    j.str("state", to_string(s.xds.state));
    j.str("peer", s.xds.peer);
    j.num("connectionId", s.xds.connection_id);
    j.time("established", s.xds.established_unix_ns);
    j.str("lastError", s.xds.last_error);
    j.time("lastErrorTime", s.xds.last_error_unix_ns);
    j.num("reconnectInMs", uint64_t(s.xds.reconnect_in_ns / kNanosPerMilli));
    j.boolean("synced", s.xds_synced);
    j.boolean("acked", s.xds_ready);
    j.key("types");
    j.open('[');
    for (const TypeStatus& t : s.types) {
        j.open('{');
        j.str("typeUrl", t.type_url);
        j.num("resources", t.resources);
        j.num("responses", t.responses);
        j.num("acks", t.acks);
        j.num("nacks", t.nacks);
        j.key("lastAck");
        j.open('{');
        j.str("nonce", t.last_ack_nonce);
        j.time("time", t.last_ack_unix_ns);
        j.close('}');
        j.key("lastNack");
        j.open('{');
        j.str("nonce", t.last_nack_nonce);
        j.time("time", t.last_nack_unix_ns);
        j.str("error", t.last_nack_error);
        j.close('}');
        j.close('}');
    }
    j.close(']');
    j.key("resources");
    j.open('{');
    j.num("workloads", s.workloads);
    j.num("services", s.services);
    j.num("policies", s.policies);
    j.num("rejectedTotal", s.rejected_total);
    j.close('}');
}

void render_file(JsonOut& j, const WriterStatus& w) {
    j.str("path", w.path);
    j.boolean("current", w.current);
    j.boolean("pending", w.pending);
    j.str("sha256", w.sha256);
    j.num("bytes", w.bytes);
    j.time("lastWrite", w.last_write_unix_ns);
    j.time("lastAttempt", w.last_attempt_unix_ns);
    j.num("lastDurationMs", uint64_t(w.last_duration_ns / kNanosPerMilli));
    j.num("written", w.written);
    j.num("unchanged", w.unchanged);
    j.num("invalid", w.invalid);
    j.num("errors", w.errors);
    j.str("lastError", w.last_error);
    j.key("counts");
    j.open('{');
    j.num("workloads", w.workloads);
    j.num("services", w.services);
    j.num("policies", w.policies);
    j.num("pods", w.pods);
    j.close('}');
}

}  // namespace

std::string render_debug_json(const AgentSnapshot& s, const std::vector<std::string>& pending) {
    std::string out;
    JsonOut j(out);
    j.open('{');
    j.boolean("ready", pending.empty());
    j.key("pending");
    j.open('[');
    for (const std::string& name : pending) {
        j.string_value(name);
    }
    j.close(']');
    j.time("started", s.started_unix_ns);
    j.key("xds");
    j.open('{');
    j.boolean("enabled", s.xds_enabled);
    if (s.xds_enabled) {
        render_xds(j, s);
    }
    j.close('}');
    j.key("static");
    j.open('{');
    j.str("path", s.static_file);
    j.str("lastError", s.static_error);
    j.close('}');
    j.key("configFile");
    j.open('{');
    render_file(j, s.writer);
    j.close('}');
    j.key("zds");
    j.open('{');
    j.boolean("enabled", s.zds_enabled);
    j.str("state", to_string(s.zds.state));
    j.boolean("snapshotAcked", s.zds.snapshot_acked);
    j.num("connections", s.zds.connections);
    j.num("acks", s.zds.acks);
    j.num("nacks", s.zds.nacks);
    j.str("lastNack", s.zds.last_nack);
    j.key("draining");
    j.open('[');
    for (const std::string& path : s.zds.draining) {
        j.string_value(path);
    }
    j.close(']');
    j.close('}');
    j.key("pods");
    j.open('[');
    for (const ZdsPod& pod : s.zds.pods) {
        j.open('{');
        j.str("uid", pod.uid);
        j.str("workloadUid", pod.workload_uid);
        j.str("name", pod.name);
        j.str("namespace", pod.namespace_);
        j.str("serviceAccount", pod.service_account);
        j.str("netns", pod.netns);
        j.close('}');
    }
    j.close(']');
    j.key("certificates");
    j.open('[');
    for (const CertStatus& c : s.certificates) {
        j.open('{');
        j.str("identity", c.identity);
        j.str("state", to_string(c.state));
        j.time("expires", c.not_after_unix * kNanosPerSecond);
        j.time("renewAt", c.refresh_at_unix * kNanosPerSecond);
        j.boolean("inFlight", c.in_flight);
        j.num("retryInMs", uint64_t(c.retry_in_ns / kNanosPerMilli));
        j.num("issued", c.issued);
        j.str("lastError", c.last_error);
        j.close('}');
    }
    j.close(']');
    j.close('}');
    out += '\n';
    return out;
}

}  // namespace zt::agent
