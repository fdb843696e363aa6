// watcher.cc follows the config file with inotify on its directory plus a stat poll, debounces
// bursts of in-place writes (a rename into place is read at once), and publishes each valid version
// with one atomic swap. It runs only on the control thread, inside `process()`/`tick()`; it must
// never block (the inotify fd is non-blocking) and never publish a snapshot that did not pass every
// check.

#include "src/config/watcher.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/config/parse.h"
#include "zt/log.h"

namespace zt::config {

namespace {

// kEvents are the directory events that may mean "the file changed". IN_MODIFY is left out on
// purpose: it fires on every write() of an in-place rewrite; IN_CLOSE_WRITE ends one.
constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                             IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

// kK8sDataLink is the symlink a ConfigMap volume swaps atomically on update.
constexpr std::string_view kK8sDataLink = "..data";

}  // namespace

Watcher::Watcher(WatcherOptions options, state::SnapshotStore& store, const Clock& clock)
    : options_(std::move(options)), store_(store), clock_(clock) {}

Watcher::~Watcher() = default;

Result<std::unique_ptr<Watcher>> Watcher::create(WatcherOptions options,
                                                 state::SnapshotStore& store, const Clock& clock) {
    std::string path = options.path;
    size_t slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.empty()) {
        return fail(Errc::invalid_argument);
    }
    std::unique_ptr<Watcher> watcher(new Watcher(std::move(options), store, clock));
    watcher->name_ = name;
    watcher->dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    watcher->inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!watcher->inotify_) {
        log::warn("config", "inotify unavailable; watching the config file by polling only",
                  {log::Field::str("error", std::strerror(errno))});
    }
    watcher->add_watch();
    int64_t now = clock.monotonic_ns();
    watcher->next_not_ready_log_ns_ = now;
    watcher->reload(/*force=*/true);
    watcher->next_poll_ns_ = now + (watcher->ready() ? watcher->options_.poll_interval_ns
                                                     : watcher->options_.retry_interval_ns);
    return watcher;
}

void Watcher::add_watch() {
    if (!inotify_ || watch_ >= 0) {
        return;
    }
    watch_ = inotify_add_watch(inotify_.get(), dir_.c_str(), kEvents | IN_ONLYDIR);
    if (watch_ >= 0) {
        watch_warned_ = false;
        return;
    }
    // ENOENT (directory not there yet), ENOSPC (watch limit): the stat poll covers us and the
    // next poll tries again. Say so once per outage, not once per try.
    if (!watch_warned_) {
        log::warn("config", "cannot watch the config directory; polling",
                  {log::Field::str("dir", dir_), log::Field::str("error", std::strerror(errno))});
        watch_warned_ = true;
    }
}

void Watcher::process() {
    if (!inotify_) {
        return;
    }
    alignas(struct inotify_event) char buf[16384];
    bool relevant = false;
    for (;;) {
        ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;  // EAGAIN: drained.
        }
        if (n == 0) {
            break;
        }
        for (ssize_t off = 0; off < n;) {
            const auto* event = reinterpret_cast<const struct inotify_event*>(buf + off);
            off += ssize_t(sizeof(struct inotify_event) + event->len);
            if (event->mask & IN_Q_OVERFLOW) {
                // Events were lost; we cannot know what changed, so read everything again.
                ++stats_.inotify_overflow_total;
                force_ = true;
                complete_ = false;
                relevant = true;
                continue;
            }
            if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                // The directory went away or moved: the watch is gone; re-add it on tick.
                if (event->mask & IN_IGNORED) {
                    watch_ = -1;
                }
                relevant = true;
                complete_ = false;
                continue;
            }
            std::string_view name =
                    event->len > 0 ? std::string_view(event->name) : std::string_view();
            if (name == name_ || name == kK8sDataLink) {
                relevant = true;
                // A rename INTO the file's name (the agent's temp file, Kubernetes' `..data`
                // link) puts a whole file in place at once: nothing more is coming for it, so
                // waiting for quiet only adds latency. Anything else (an in-place write, a
                // delete) may be part of a longer sequence and keeps the debounce.
                complete_ = (event->mask & IN_MOVED_TO) != 0;
            }
        }
    }
    if (relevant) {
        int64_t now = clock_.monotonic_ns();
        if (!pending_) {
            pending_ = true;
            first_event_ns_ = now;
        }
        last_event_ns_ = now;
    }
}

int64_t Watcher::due_ns() const {
    if (complete_ && !force_) {
        return last_event_ns_;
    }
    return std::min(last_event_ns_ + options_.debounce_ns, first_event_ns_ + options_.max_delay_ns);
}

int64_t Watcher::next_deadline_ns() const {
    int64_t deadline = next_poll_ns_;
    if (pending_) {
        deadline = std::min(deadline, due_ns());
    }
    if (!ready()) {
        deadline = std::min(deadline, next_not_ready_log_ns_);
    }
    return deadline;
}

void Watcher::tick() {
    int64_t now = clock_.monotonic_ns();
    if (watch_ < 0 && now >= next_poll_ns_) {
        add_watch();
    }
    if (pending_ && now >= due_ns()) {
        pending_ = false;
        bool force = force_;
        force_ = false;
        complete_ = false;
        reload(force);
    } else if (now >= next_poll_ns_) {
        // The fallback for filesystems without events, lost events and a lost watch.
        if (stamp() != last_stamp_) {
            reload(false);
        }
    }
    if (now >= next_poll_ns_) {
        next_poll_ns_ = now + (ready() ? options_.poll_interval_ns : options_.retry_interval_ns);
    }
    if (!ready() && now >= next_not_ready_log_ns_) {
        std::string error = stats_.last_errors.empty() ? std::string("no config loaded yet")
                                                       : stats_.last_errors.front();
        log::error("config", "not ready: no valid config yet",
                   {log::Field::str("path", options_.path), log::Field::str("error", error)});
        next_not_ready_log_ns_ = now + options_.not_ready_log_interval_ns;
    }
}

bool Watcher::reload_now() {
    pending_ = false;
    force_ = false;
    complete_ = false;
    return reload(true);
}

Watcher::FileStamp Watcher::stamp() const {
    struct stat st;
    FileStamp out;
    if (::stat(options_.path.c_str(), &st) != 0) {
        return out;
    }
    out.exists = true;
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    out.size = st.st_size;
    out.mtime_ns = int64_t(st.st_mtim.tv_sec) * kNanosPerSecond + st.st_mtim.tv_nsec;
    out.ctime_ns = int64_t(st.st_ctim.tv_sec) * kNanosPerSecond + st.st_ctim.tv_nsec;
    return out;
}

bool Watcher::reload(bool force) {
    // Stamp before reading: if the file changes after, the next poll sees a new stamp.
    last_stamp_ = stamp();
    auto text = read_file(options_.path, kMaxFileBytes);
    if (!text) {
        std::string message;
        if (text.error().code == Errc::config_too_large) {
            ++stats_.too_large_total;
            message =
                    "file is larger than the " + std::to_string(kMaxFileBytes >> 20) + " MiB limit";
        } else if (text.error().code == Errc::invalid_argument) {
            message = "not a regular file";
        } else {
            message = std::string("cannot read: ") + std::strerror(text.error().sys_errno);
        }
        record_failure("read:" + message, {options_.path + ": " + message});
        return false;
    }
    std::string sha = sha256_hex(*text);
    if (!force && ready() && sha == stats_.applied_sha256) {
        // Same bytes as what is applied: nothing to rebuild. If a bad version came in between,
        // the file is good again; say so, or the status would look failed until the next edit.
        if (!last_failure_signature_.empty()) {
            last_failure_signature_.clear();
            stats_.last_success_unix_ns = clock_.unix_ns();
            ++stats_.success_total;
            log::info("config", "config file is back to the applied version",
                      {log::Field::str("path", options_.path), log::Field::str("sha256", sha)});
        }
        return true;
    }
    if (!force && sha == last_failure_signature_) {
        return false;  // The same bad version again: already logged and counted.
    }
    LoadResult result = loader_.reload(*text, sha);
    if (!result.errors.empty()) {
        if (result.too_deep) {
            ++stats_.too_deep_total;
        }
        record_failure(sha, std::move(result.errors));
        return false;
    }
    const auto& config = result.snapshot->config();
    for (const std::string& key : config.unsupported) {
        if (std::find(stats_.unsupported.begin(), stats_.unsupported.end(), key) ==
            stats_.unsupported.end()) {
            log::warn("config", "accepted but not implemented yet; ignored",
                      {log::Field::str("key", key)});
        }
    }
    for (const std::string& warning : result.warnings) {
        log::warn("config", "config warning", {log::Field::str("warning", warning)});
    }
    log::info("config", "config applied",
              {log::Field::str("path", options_.path), log::Field::str("sha256", sha),
               log::Field::num("workloads", config.workloads.size()),
               log::Field::num("services", config.services.size()),
               log::Field::num("policies", config.policies.size()),
               log::Field::num("pods", config.pods.size()),
               // `parsed=lines` when only the lines new to this file were parsed.
               log::Field::display("parsed", loader_.whole() ? "whole" : "lines"),
               log::Field::num("lines_parsed", loader_.parsed())});
    stats_.unsupported = config.unsupported;
    stats_.warnings = std::move(result.warnings);
    stats_.applied_sha256 = std::move(sha);
    stats_.last_success_unix_ns = clock_.unix_ns();
    ++stats_.success_total;
    last_failure_signature_.clear();
    store_.store(std::move(result.snapshot));
    return true;
}

void Watcher::record_failure(const std::string& signature, std::vector<std::string> errors) {
    bool fresh = signature != last_failure_signature_;
    if (fresh) {
        // Log every error once per bad version; a poll re-reading the same bytes stays quiet.
        for (const std::string& error : errors) {
            log::error("config", "invalid config; keeping the last good one",
                       {log::Field::str("path", options_.path), log::Field::str("error", error)});
        }
        ++stats_.failure_total;
        stats_.last_failure_unix_ns = clock_.unix_ns();
    }
    last_failure_signature_ = signature;
    stats_.last_errors = std::move(errors);
}

}  // namespace zt::config
