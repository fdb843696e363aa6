#pragma once

// `Watcher` keeps the published snapshot in step with the config file (docs/contract.md §2,
// docs/reliability.md §4): inotify on the file's DIRECTORY (so rename-over, in-place rewrite,
// delete + re-create and the Kubernetes `..data` symlink swap are all seen), a debounce for bursts
// of in-place writes (none after a rename into place: the file is whole the moment it appears), a
// periodic stat check for anything inotify misses, and a full reload after an inotify queue
// overflow. A valid file replaces the snapshot with one atomic pointer swap in the `SnapshotStore`;
// an invalid one keeps the last good snapshot, logs every error with its path and is counted.
// A file in the agent's layout (`config::render`'s, one element per line) costs a parse of the
// lines that changed, not of the whole file (`IncrementalLoad`); the verdict is `load_text`'s.
//
// It owns no thread. The control loop polls `fd()` for readability, calls `process()` when it
// is readable and `tick()` when `next_deadline_ns()` (monotonic) has passed; all work, including
// parsing, happens inside those calls, on the control thread, never on a worker.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/config/incremental_load.h"
#include "src/config/load.h"
#include "src/state/store.h"
#include "zt/clock.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::config {

// ReloadStats are the watcher's counters and last outcome, read by the metrics
// (`ztunnel_config_reloads_total{result}`, `ztunnel_config_last_success_timestamp_seconds`) and
// `/config_dump`'s `configStatus`. Only the control thread reads or writes them.
struct ReloadStats {
    uint64_t success_total = 0;
    uint64_t failure_total = 0;           // Distinct bad versions (or read failures) seen.
    uint64_t too_large_total = 0;         // Failures due to the file size cap.
    uint64_t too_deep_total = 0;          // Failures due to the nesting cap.
    uint64_t inotify_overflow_total = 0;  // IN_Q_OVERFLOW events (each forced a full reload).
    int64_t last_success_unix_ns = 0;
    int64_t last_failure_unix_ns = 0;
    std::vector<std::string> last_errors;  // Of the last failed attempt; kept after a success.
    std::string applied_sha256;            // Of the published snapshot's file.
    std::vector<std::string> warnings;     // Of the published snapshot.
    std::vector<std::string> unsupported;  // Of the published snapshot.
};

struct WatcherOptions {
    std::string path;                                 // The config file.
    int64_t debounce_ns = 100 * kNanosPerMilli;       // Quiet time after an event before reading
                                                      // (not after a rename into place).
    int64_t max_delay_ns = 1000 * kNanosPerMilli;     // A burst never delays a reload longer.
    int64_t poll_interval_ns = 5 * kNanosPerSecond;   // Stat check while ready.
    int64_t retry_interval_ns = 1 * kNanosPerSecond;  // Stat check while not ready.
    int64_t not_ready_log_interval_ns = 10 * kNanosPerSecond;
};

class Watcher {
public:
    // create sets up inotify on the file's directory (falling back to stat polling when inotify
    // or the directory is unavailable) and makes the first load attempt at once. It fails only
    // when the path has no file name. `store` and `clock` must outlive the watcher.
    static Result<std::unique_ptr<Watcher>> create(WatcherOptions options,
                                                   state::SnapshotStore& store, const Clock& clock);

    ~Watcher();
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    // fd is the inotify descriptor to poll for readability, or -1 when polling by stat only.
    int fd() const { return inotify_.get(); }

    // process drains pending inotify events (non-blocking) and schedules a reload if one
    // concerns the config file. It never parses.
    void process();

    // tick does the work that is due: a debounced reload, a stat check, re-adding a lost watch,
    // and the periodic "not ready" log line.
    void tick();

    // next_deadline_ns is the monotonic time at which `tick` next has work.
    int64_t next_deadline_ns() const;

    // reload_now reads and applies the file at once (as after an overflow), ignoring debounce
    // and the unchanged-content shortcut. Returns whether the file was valid.
    bool reload_now();

    // ready is true once a valid snapshot has been published.
    bool ready() const { return store_.load() != nullptr; }

    const ReloadStats& stats() const { return stats_; }

private:
    struct FileStamp {
        bool exists = false;
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = 0;
        int64_t mtime_ns = 0;
        int64_t ctime_ns = 0;

        friend bool operator==(const FileStamp&, const FileStamp&) = default;
    };

    Watcher(WatcherOptions options, state::SnapshotStore& store, const Clock& clock);

    void add_watch();
    FileStamp stamp() const;
    bool reload(bool force);
    // due_ns is when a pending reload runs: at once after a rename into place, else after the
    // debounce (bounded by max_delay_ns from the first event).
    int64_t due_ns() const;
    void record_failure(const std::string& signature, std::vector<std::string> errors);

    WatcherOptions options_;
    state::SnapshotStore& store_;
    const Clock& clock_;
    std::string dir_;
    std::string name_;
    UniqueFd inotify_;
    int watch_ = -1;
    bool watch_warned_ = false;
    bool pending_ = false;
    bool force_ = false;
    bool complete_ = false;  // The last relevant event was a rename into place.
    int64_t first_event_ns_ = 0;
    int64_t last_event_ns_ = 0;
    int64_t next_poll_ns_ = 0;
    int64_t next_not_ready_log_ns_ = 0;
    FileStamp last_stamp_;
    std::string last_failure_signature_;
    IncrementalLoad loader_;  // Parses only the lines the last file did not have.
    ReloadStats stats_;
};

}  // namespace zt::config
