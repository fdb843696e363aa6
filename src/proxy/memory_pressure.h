#pragma once

// Memory pressure: ztunnel sheds new work before the kernel's OOM killer ends the process and
// every connection of the node with it (docs/reliability.md §6b, F15). The control thread reads
// its cgroup's memory limit and usage once a second (`MemoryWatch`). When the working set (the
// usage minus the inactive page cache, as kubelet counts it, so that cached file pages alone do
// not count) reaches --memory-shed-ratio of the limit, it raises `ShedSignal::shedding`; the
// workers read that one atomic per new connection (never a syscall) and refuse new work until
// the working set falls below --memory-resume-ratio:
//   - a new connection on a pod's 15001, 15006 or 15008 is closed at accept (on 15008 before
//     any TLS byte, so a refusal costs nothing but the accept);
//   - a new CONNECT on an open HBONE connection is answered 503, as ztunnel answers overload.
// Connections already open keep flowing, and the DNS proxy keeps answering (its cost is small
// and bounded per pod). Each refusal is counted as
// `ztunnel_connections_refused_total{reason="memory_pressure"}`; an episode is logged when it
// starts and when it ends, never per connection. When the working set is above the mark, the
// watch first returns the heap's freed memory to the kernel (`malloc_trim`) and reads again:
// memory glibc merely keeps must not shed anything.
//
// The cgroup is found from /proc/self/cgroup and /proc/self/mountinfo: the memory controller of
// cgroup v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.stat`'s
// `total_inactive_file` and `hierarchical_memory_limit`) or cgroup v2 (`memory.max`,
// `memory.current`, `memory.stat`'s `inactive_file`). No limit ("max", v1's huge number) or no
// memory controller means nothing is shed. Everything but the file reads is a pure function of
// the files' text, tested without a kernel (memory_pressure_test.cc).

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zt::telemetry {
class StandardMetrics;
}

namespace zt::proxy {

// kMemoryPressureReason is the `reason` label of a connection or stream shed under pressure.
inline constexpr std::string_view kMemoryPressureReason = "memory_pressure";

// ShedSignal is what the control thread publishes to the workers: whether to shed new work, and
// how many connections and streams they shed (for the end-of-episode log line). It must outlive
// the workers.
struct ShedSignal {
    std::atomic<bool> shedding{false};
    std::atomic<uint64_t> shed_total{0};
};

enum class CgroupVersion : uint8_t { v1, v2 };

std::string_view to_string(CgroupVersion version);

// MemoryCgroup is where a process's memory controller files are.
struct MemoryCgroup {
    CgroupVersion version = CgroupVersion::v2;
    std::string dir;  // e.g. /sys/fs/cgroup/memory/kubepods/pod1/abc
};

// find_memory_cgroup locates the memory cgroup of the process whose /proc/PID/cgroup is
// `proc_cgroup` from the mount table `mountinfo` (/proc/PID/mountinfo): the v1 hierarchy with
// the memory controller if there is one, else the v2 hierarchy. A cgroup path outside the
// mount's root (a container that sees only its own cgroup) resolves to the mount point. Nullopt
// when neither is mounted.
std::optional<MemoryCgroup> find_memory_cgroup(std::string_view proc_cgroup,
                                               std::string_view mountinfo);

// kNoMemoryLimit: a limit at or above this (v1 writes 2^63 rounded down to a page when none is
// set) is no limit.
inline constexpr uint64_t kNoMemoryLimit = uint64_t{1} << 62;

// parse_memory_limit reads memory.max or memory.limit_in_bytes: the limit in bytes, 0 for none
// ("max", or kNoMemoryLimit and above), nullopt when the text is not a number.
std::optional<uint64_t> parse_memory_limit(std::string_view text);

// parse_memory_bytes reads a file holding one byte count (memory.current, usage_in_bytes).
std::optional<uint64_t> parse_memory_bytes(std::string_view text);

// memory_stat_field is the value of `key` in memory.stat's "key value" lines, or nullopt.
std::optional<uint64_t> memory_stat_field(std::string_view stat, std::string_view key);

// MemorySample is one reading of a cgroup.
struct MemorySample {
    uint64_t limit_bytes = 0;  // 0: no limit.
    uint64_t usage_bytes = 0;
    uint64_t inactive_file_bytes = 0;

    // working_set_bytes is kubelet's working set: usage minus inactive file pages, at least 0.
    uint64_t working_set_bytes() const {
        return usage_bytes > inactive_file_bytes ? usage_bytes - inactive_file_bytes : 0;
    }
};

// memory_sample assembles a sample of a `version` cgroup from the text of its limit file, its
// usage file and memory.stat. Nullopt when the limit or the usage is not a number (a missing
// memory.stat field counts as 0). For v1 the limit is the tighter of the cgroup's own and
// `hierarchical_memory_limit` (an ancestor's).
std::optional<MemorySample> memory_sample(CgroupVersion version, std::string_view limit,
                                          std::string_view usage, std::string_view stat);

// PressureThresholds are the marks, as fractions of the limit: shedding starts when the working
// set reaches `shed_ratio` and ends when it falls below `resume_ratio` (lower, so a working set
// hovering at the mark does not flap).
struct PressureThresholds {
    double shed_ratio = 0.9;
    double resume_ratio = 0.8;
};

enum class PressureState : uint8_t {
    unlimited,  // No limit, or the cgroup cannot be read: nothing is shed.
    normal,     // Below the shedding mark (or, after an episode, below the resume mark).
    shedding,   // New work is refused.
};

std::string_view to_string(PressureState state);

// MemoryPressure is the hysteresis between the states.
class MemoryPressure {
public:
    explicit MemoryPressure(PressureThresholds thresholds) : thresholds_(thresholds) {}

    // update moves to the state `sample` calls for (nullopt: unreadable, so unlimited) and
    // returns the state before.
    PressureState update(const std::optional<MemorySample>& sample);

    // over_mark says whether `sample` is at or above the mark that matters in the current state
    // (the resume mark while shedding, else the shedding mark): a heap trim may help.
    bool over_mark(const MemorySample& sample) const;

    PressureState state() const { return state_; }

    const PressureThresholds& thresholds() const { return thresholds_; }

private:
    PressureThresholds thresholds_;
    PressureState state_ = PressureState::unlimited;
};

// MemoryWatch runs on the control thread: it samples the cgroup at most once a second, trims
// the heap when the working set is over the mark, moves the hysteresis, publishes the result to
// the workers and the metrics (`ztunnel_memory_pressure`, `ztunnel_memory_working_set_bytes`,
// `ztunnel_memory_limit_bytes`), and logs each episode's start and end.
class MemoryWatch {
public:
    // MemoryWatch watches `cgroup` (nullopt: none found; nothing is ever shed). `signal` and
    // `metrics` (may be null) must outlive it.
    MemoryWatch(std::optional<MemoryCgroup> cgroup, PressureThresholds thresholds,
                ShedSignal& signal, telemetry::StandardMetrics* metrics);

    // for_this_process finds this process's memory cgroup (/proc/self) and logs what it found.
    static MemoryWatch for_this_process(PressureThresholds thresholds, ShedSignal& signal,
                                        telemetry::StandardMetrics* metrics);

    // tick samples and acts, unless the last sample is less than a second old at `now_ns`
    // (monotonic).
    void tick(int64_t now_ns);

    // sample_now samples and acts at once.
    void sample_now(int64_t now_ns);

    PressureState state() const { return pressure_.state(); }

    const std::optional<MemoryCgroup>& cgroup() const { return cgroup_; }

private:
    // read reads the cgroup's files; nullopt when they cannot be read.
    std::optional<MemorySample> read() const;
    void publish(const std::optional<MemorySample>& sample, PressureState before, int64_t now_ns);

    std::optional<MemoryCgroup> cgroup_;
    MemoryPressure pressure_;
    ShedSignal& signal_;
    telemetry::StandardMetrics* metrics_;
    int64_t last_sample_ns_ = INT64_MIN;
    int64_t episode_start_ns_ = 0;
    uint64_t episode_shed_before_ = 0;
};

}  // namespace zt::proxy
