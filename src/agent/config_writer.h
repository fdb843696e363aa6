#pragma once

// ConfigWriter writes ztunnel's config file (docs/contract.md §2) for the agent: a compose
// function brings the writer's `FileComposer` up to date with the `--static` file and what
// istiod sent (re-rendering only the lines of what changed, src/agent/file_composer.h), and the
// file is written only when it differs from what the file holds, only when `config::load_text`
// (what `ztunnel check-config` runs) accepts it (the composer runs the same steps but parses only
// lines it has not parsed), and atomically (a temporary file in the same folder renamed over the
// old one), so ztunnel never reads a partial or invalid file. Changes are batched: the first
// change arms a timer, and everything that arrives within the batch window goes out in one write.
//
// A write of a large mesh still costs the agent tens of milliseconds (the snapshot build that
// validates it covers every resource) and ztunnel a whole reload, so under a steady stream of
// changes writes start at least `min_interval_ns` apart (bounding ztunnel's reloads) and are
// also spaced by a multiple of the last write's CPU cost (`cost_factor`: the agent then spends at
// most about 1/(1+cost_factor) of a core writing).
//
// File I/O is plain blocking syscalls on the agent thread (a few milliseconds for a few MiB);
// the ring carries only the batch timer.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/agent/agent_metrics.h"
#include "src/agent/file_composer.h"
#include "src/agent/loop.h"
#include "src/state/types.h"
#include "zt/result.h"

namespace zt::agent {

struct WriterOptions {
    std::string path;
    // batch_ns: changes arriving within this window of the first one are written together.
    int64_t batch_ns = 100 * kNanosPerMilli;
    // cost_factor: a write that used T of CPU is followed by the next no sooner than
    // T * cost_factor after it ended (0 disables the spacing). With 4, writing takes at most a
    // fifth of a core under any stream of changes; ztunnel's share is bounded by
    // `min_interval_ns` below (docs/bench/agent.md).
    double cost_factor = 4.0;
    // max_spacing_ns caps that spacing.
    int64_t max_spacing_ns = 2 * kNanosPerSecond;
    // min_interval_ns: a write starts no sooner than this after the last one started. The
    // agent's write now costs little (only changed lines are rendered and parsed), but each
    // file still costs ztunnel a whole reload (about 100 ms of CPU at 10,000 workloads), so this
    // bounds ztunnel's reloads to 2 per second under any stream of changes; the cost factor
    // above bounds the agent's own share (0 disables this floor).
    int64_t min_interval_ns = 500 * kNanosPerMilli;
};

// WriteResult is what one write attempt did.
enum class WriteResult : uint8_t {
    written,    // The file now holds the new content.
    unchanged,  // The content equals what the file holds; nothing written.
    invalid,    // Validation refused the content; the file keeps the last good one.
    error,      // Writing failed (disk full, permissions); the file keeps the last good one.
};

std::string_view to_string(WriteResult result);

// WriterStatus is the writer's state for /debug and readiness.
struct WriterStatus {
    std::string path;
    uint64_t written = 0;
    uint64_t unchanged = 0;
    uint64_t invalid = 0;
    uint64_t errors = 0;
    int64_t last_write_unix_ns = 0;  // Last time the file was written.
    int64_t last_attempt_unix_ns = 0;
    int64_t last_duration_ns = 0;  // Compose + render + validate + write, last attempt (wall).
    std::string sha256;            // Of what the file holds (as last written or found).
    size_t bytes = 0;
    size_t workloads = 0, services = 0, policies = 0, pods = 0;
    std::string last_error;
    bool pending = false;  // A change waits for its batch.
    // current says the file holds the content of the last attempt (written or unchanged).
    bool current = false;
};

class ConfigWriter {
public:
    // Compose updates the composer (`FileComposer::update`); warnings it adds are logged with
    // the write.
    using Compose = std::function<void(FileComposer& file, std::vector<std::string>& warnings)>;

    ConfigWriter(Loop& loop, WriterOptions options, Compose compose, AgentMetrics& metrics);

    // ~ConfigWriter asserts that the batch timer is not in the kernel (`shutdown` first and let
    // the loop run).
    ~ConfigWriter();

    ConfigWriter(const ConfigWriter&) = delete;
    ConfigWriter& operator=(const ConfigWriter&) = delete;

    // init reads what the file holds now (if anything), so content equal to it is not written
    // again (an agent restart does not touch ztunnel's file).
    void init();

    // changed says the content may have changed: a write follows after the batch window (and
    // the spacing).
    void changed();

    // write_now writes at once (cancelling a pending batch) and returns what it did.
    WriteResult write_now();

    // shutdown cancels a pending batch timer (call `write_now` first to keep the change).
    void shutdown();

    // idle says whether nothing of the writer is in the kernel.
    bool idle() const { return !timer_.completion.in_kernel; }

    const WriterStatus& status() const { return status_; }

private:
    // Attempt is one write: the content and when each step ended (monotonic ns).
    struct Attempt {
        std::string text;
        std::string sha;
        int64_t started = 0, composed = 0, rendered_at = 0, validated = 0, ended = 0;
        int64_t cpu = 0;      // The agent thread's CPU time for this attempt.
        size_t rendered = 0;  // Lines the compose rendered (the rest were kept).
        size_t parsed = 0;    // Lines the validation parsed (the rest were parsed before).
    };

    static void on_timer(uring::Completion& self, int32_t res, uint32_t flags);
    // produce composes, renders, compares, validates and writes; record updates the status,
    // the log and the metrics with the outcome.
    WriteResult produce(Attempt& attempt);
    void record(const Attempt& attempt, WriteResult result);
    // write_file writes `text` atomically; fails with `Errc::sys` (errno) and leaves the old
    // file in place.
    Result<void> write_file(const std::string& text);

    Loop& loop_;
    WriterOptions options_;
    Compose compose_;
    AgentMetrics& metrics_;
    // file_ keeps the file's lines and their parses for the next write.
    FileComposer file_;
    uring::Timer timer_;
    bool pending_ = false;
    bool shut_down_ = false;
    int64_t not_before_ns_ = 0;  // Monotonic: the spacing after the last write.
    WriterStatus status_;
};

}  // namespace zt::agent
