// config_writer.cc composes, renders, validates and atomically writes ztunnel's config file,
// batching changes on a ring timer. It never leaves a partial or invalid file behind: the
// content is checked with the loader `ztunnel check-config` uses before the temporary file is
// renamed over the old one, and any failure keeps the old file.

#include "src/agent/config_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/config/load.h"
#include "src/config/parse.h"
#include "zt/log.h"

namespace zt::agent {

namespace {

constexpr std::string_view kTarget = "xds";

// kErrorsLogged bounds how many validation errors one refused write logs.
constexpr size_t kErrorsLogged = 5;

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// thread_cpu_ns is the CPU time the calling thread has used.
int64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

bool write_all(int fd, const std::string& text) {
    size_t at = 0;
    while (at < text.size()) {
        ssize_t n = ::write(fd, text.data() + at, text.size() - at);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        at += size_t(n);
    }
    return true;
}

}  // namespace

std::string_view to_string(WriteResult result) {
    switch (result) {
        case WriteResult::written:
            return "written";
        case WriteResult::unchanged:
            return "unchanged";
        case WriteResult::invalid:
            return "invalid";
        case WriteResult::error:
            return "error";
    }
    return "error";
}

ConfigWriter::ConfigWriter(Loop& loop, WriterOptions options, Compose compose,
                           AgentMetrics& metrics)
    : loop_(loop), options_(std::move(options)), compose_(std::move(compose)), metrics_(metrics) {
    timer_.completion.callback = &ConfigWriter::on_timer;
    timer_.completion.context = this;
    status_.path = options_.path;
}

ConfigWriter::~ConfigWriter() {
    ZT_CHECK(!timer_.completion.in_kernel);
}

void ConfigWriter::init() {
    auto text = config::read_file(options_.path, config::kMaxFileBytes);
    if (text) {
        status_.sha256 = config::sha256_hex(*text);
        status_.bytes = text->size();
    }
}

void ConfigWriter::changed() {
    if (shut_down_) {
        return;
    }
    pending_ = true;
    status_.pending = true;
    if (timer_.completion.in_kernel) {
        return;  // Joins the batch already waiting.
    }
    int64_t now = loop_.clock().monotonic_ns();
    int64_t delay = std::max(options_.batch_ns, not_before_ns_ - now);
    loop_.ring().arm_timer(timer_, std::max<int64_t>(delay, 1));
}

void ConfigWriter::on_timer(uring::Completion& self, int32_t res, uint32_t) {
    auto* writer = static_cast<ConfigWriter*>(self.context);
    if (res == -ETIME && writer->pending_ && !writer->shut_down_) {
        (void)writer->write_now();
    }
}

WriteResult ConfigWriter::write_now() {
    if (timer_.completion.in_kernel) {
        loop_.ring().cancel_timer(timer_);
    }
    pending_ = false;
    status_.pending = false;
    status_.last_attempt_unix_ns = loop_.clock().unix_ns();
    int64_t cpu_started = thread_cpu_ns();
    int64_t started = loop_.clock().monotonic_ns();
    Attempt attempt;
    WriteResult result = produce(attempt);
    int64_t cpu = thread_cpu_ns() - cpu_started;
    attempt.cpu = cpu;
    record(attempt, result);
    // Space the next write by this one's CPU cost (a write of an unchanged file costs nearly
    // nothing, so a burst of no-op changes is not held back). CPU time, not wall time: on a
    // busy machine a write takes longer without costing more, and waiting longer for that would
    // only add latency.
    int64_t spacing =
            std::min<int64_t>(options_.max_spacing_ns, int64_t(double(cpu) * options_.cost_factor));
    not_before_ns_ = 0;
    if (result == WriteResult::written) {
        not_before_ns_ = std::max(loop_.clock().monotonic_ns() + spacing,
                                  started + options_.min_interval_ns);
    }
    return result;
}

WriteResult ConfigWriter::produce(Attempt& a) {
    const Clock& clock = loop_.clock();
    a.started = clock.monotonic_ns();
    std::vector<std::string> warnings;
    compose_(file_, warnings);
    a.rendered = file_.rendered();
    for (const std::string& warning : warnings) {
        log::warn(kTarget, "config content adjusted", {log::Field::str("reason", warning)});
    }
    a.composed = clock.monotonic_ns();
    // The digest of the whole file, not only of what changed: it names the file to ztunnel,
    // which reports the digest of what it applied (`config_sha256`), and the agent matches
    // the two (src/agent/zds_client.cc).
    a.text = file_.text();
    a.sha = config::sha256_hex(a.text);
    a.rendered_at = a.validated = clock.monotonic_ns();
    WriteResult result = WriteResult::written;
    if (a.sha == status_.sha256) {
        result = WriteResult::unchanged;
    } else {
        // check-config's verdict on these exact bytes, parsing only the lines the last
        // validation did not see (src/config/incremental_load.h says why it is the same).
        config::LoadResult loaded = file_.load(a.text, a.sha);
        a.validated = clock.monotonic_ns();
        a.parsed = file_.parsed();
        if (!loaded.errors.empty()) {
            result = WriteResult::invalid;
            status_.last_error = loaded.errors.front();
            for (size_t i = 0; i < loaded.errors.size() && i < kErrorsLogged; ++i) {
                log::error(kTarget,
                           "the composed config is invalid; the file keeps its last good "
                           "content",
                           {log::Field::str("path", options_.path),
                            log::Field::str("error", loaded.errors[i])});
            }
        } else if (auto written = write_file(a.text); !written) {
            result = WriteResult::error;
            status_.last_error = "cannot write " + options_.path + ": " +
                                 std::strerror(written.error().sys_errno);
            log::error(kTarget, "cannot write the config file; it keeps its last good content",
                       {log::Field::str("path", options_.path),
                        log::Field::str("error", std::strerror(written.error().sys_errno))});
        }
    }
    a.ended = clock.monotonic_ns();
    return result;
}

void ConfigWriter::record(const Attempt& a, WriteResult result) {
    auto ms = [](int64_t ns) {
        return uint64_t(ns / kNanosPerMilli);
    };
    status_.last_duration_ns = a.ended - a.started;
    switch (result) {
        case WriteResult::written:
            status_.written++;
            status_.sha256 = a.sha;
            status_.bytes = a.text.size();
            status_.last_write_unix_ns = loop_.clock().unix_ns();
            status_.last_error.clear();
            metrics_.config_last_write.set({}, double(status_.last_write_unix_ns) / 1e9);
            log::info(
                    kTarget, "config written",
                    {log::Field::str("path", options_.path), log::Field::str("sha256", a.sha),
                     log::Field::num("workloads", file_.workloads()),
                     log::Field::num("services", file_.services()),
                     log::Field::num("policies", file_.policies()),
                     log::Field::num("pods", file_.pods()), log::Field::num("bytes", a.text.size()),
                     log::Field::num("took_ms", ms(a.ended - a.started)),
                     log::Field::num("cpu_ms", ms(a.cpu)),
                     log::Field::num("compose_ms", ms(a.composed - a.started)),
                     log::Field::num("rendered_lines", a.rendered),
                     log::Field::num("render_ms", ms(a.rendered_at - a.composed)),
                     log::Field::num("validate_ms", ms(a.validated - a.rendered_at)),
                     log::Field::num("parsed_lines", a.parsed),
                     log::Field::num("write_ms", ms(a.ended - a.validated))});
            break;
        case WriteResult::unchanged:
            status_.unchanged++;
            status_.last_error.clear();
            log::debug(kTarget, "config unchanged; not written",
                       {log::Field::str("path", options_.path)});
            break;
        case WriteResult::invalid:
            status_.invalid++;
            break;
        case WriteResult::error:
            status_.errors++;
            break;
    }
    status_.current = result == WriteResult::written || result == WriteResult::unchanged;
    if (status_.current) {
        status_.workloads = file_.workloads();
        status_.services = file_.services();
        status_.policies = file_.policies();
        status_.pods = file_.pods();
    }
    metrics_.config_writes.cell(AgentMetrics::kAgentShard, {to_string(result)})->increment();
}

void ConfigWriter::shutdown() {
    shut_down_ = true;
    if (timer_.completion.in_kernel) {
        loop_.ring().cancel_timer(timer_);
    }
}

Result<void> ConfigWriter::write_file(const std::string& text) {
    std::string dir = dir_of(options_.path);
    std::string temp = dir + "/." + base_of(options_.path) + ".tmp." + std::to_string(::getpid());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return fail(Errc::sys, errno);
    }
    // The mode is 0644 whatever the umask: ztunnel may run as another user. No fsync: readers
    // see the new file whole at the rename either way (the page cache is coherent), and only a
    // machine crash could lose or empty it, after which the agent writes it again from istiod
    // before ztunnel has anything newer to serve; an fsync per write cost tens of milliseconds
    // of latency on every change (docs/bench/agent.md).
    bool good = ::fchmod(fd, 0644) == 0 && write_all(fd, text);
    int err = errno;
    if (::close(fd) != 0 && good) {
        good = false;
        err = errno;
    }
    if (!good || ::rename(temp.c_str(), options_.path.c_str()) != 0) {
        if (good) {
            err = errno;
        }
        ::unlink(temp.c_str());
        return fail(Errc::sys, err);
    }
    return ok();
}

}  // namespace zt::agent
