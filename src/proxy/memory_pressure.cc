// memory_pressure.cc finds ztunnel's memory cgroup, reads its limit and working set once a
// second on the control thread, and turns them into one atomic the workers read: shed new work
// or not, with hysteresis, logged once per episode. The parsers work on the files' text only.

#include "src/proxy/memory_pressure.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <vector>

#include "src/telemetry/standard_metrics.h"
#include "zt/clock.h"
#include "zt/log.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

namespace {

// kSampleIntervalNs: the cgroup is read at most this often (three small files).
constexpr int64_t kSampleIntervalNs = kNanosPerSecond;
// kMaxFileBytes bounds a read of a cgroup or /proc file (v1's memory.stat is about 1.5 KB,
// mountinfo grows with the mounts).
constexpr size_t kMaxFileBytes = 1 << 20;

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) {
        text.remove_suffix(1);
    }
    return text;
}

std::optional<uint64_t> parse_u64(std::string_view text) {
    text = trim(text);
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// split cuts `text` at each `separator`.
std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    size_t at = 0;
    while (true) {
        size_t next = text.find(separator, at);
        if (next == std::string_view::npos) {
            parts.push_back(text.substr(at));
            return parts;
        }
        parts.push_back(text.substr(at, next - at));
        at = next + 1;
    }
}

bool has_word(std::string_view list, std::string_view word) {
    for (std::string_view item : split(list, ',')) {
        if (item == word) {
            return true;
        }
    }
    return false;
}

// unescape_mount_field undoes mountinfo's octal escapes (`\040` for a space, ...).
std::string unescape_mount_field(std::string_view field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
            field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
            field[i + 3] >= '0' && field[i + 3] <= '7') {
            out += char((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                        (field[i + 3] - '0'));
            i += 3;
            continue;
        }
        out += field[i];
    }
    return out;
}

// CgroupMount is one cgroup file system of mountinfo: its root inside the hierarchy and where
// it is mounted.
struct CgroupMount {
    std::string root;
    std::string mount_point;
};

// find_mount returns the first mount of `version` (for v1: the hierarchy with the memory
// controller).
std::optional<CgroupMount> find_mount(std::string_view mountinfo, CgroupVersion version) {
    for (std::string_view line : split(mountinfo, '\n')) {
        // "36 35 98:0 /root /mount/point rw,... shared:1 - cgroup cgroup rw,memory"
        size_t dash = line.find(" - ");
        if (dash == std::string_view::npos) {
            continue;
        }
        std::vector<std::string_view> head = split(line.substr(0, dash), ' ');
        std::vector<std::string_view> tail = split(line.substr(dash + 3), ' ');
        if (head.size() < 5 || tail.size() < 3) {
            continue;
        }
        bool match = version == CgroupVersion::v2
                             ? tail[0] == "cgroup2"
                             : tail[0] == "cgroup" && has_word(tail[2], "memory");
        if (match) {
            return CgroupMount{unescape_mount_field(head[3]), unescape_mount_field(head[4])};
        }
    }
    return std::nullopt;
}

// find_path returns the process's cgroup path in the v1 memory hierarchy or in v2's.
std::optional<std::string_view> find_path(std::string_view proc_cgroup, CgroupVersion version) {
    for (std::string_view line : split(proc_cgroup, '\n')) {
        // "4:memory:/kubepods/pod1" (v1) or "0::/kubepods/pod1" (v2).
        size_t first = line.find(':');
        size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
        if (second == std::string_view::npos) {
            continue;
        }
        std::string_view id = line.substr(0, first);
        std::string_view controllers = line.substr(first + 1, second - first - 1);
        std::string_view path = line.substr(second + 1);
        bool match = version == CgroupVersion::v2 ? id == "0" && controllers.empty()
                                                  : has_word(controllers, "memory");
        if (match && !path.empty() && path.front() == '/') {
            return path;
        }
    }
    return std::nullopt;
}

// join_cgroup_dir places cgroup `path` under `mount`: the part of the path below the mount's
// root, or the mount point itself when the path is not below it.
std::string join_cgroup_dir(const CgroupMount& mount, std::string_view path) {
    std::string_view below = path;
    if (mount.root != "/") {
        std::string_view root = mount.root;
        if (path == root) {
            below = "/";
        } else if (path.size() > root.size() && path.substr(0, root.size()) == root &&
                   path[root.size()] == '/') {
            below = path.substr(root.size());
        } else {
            below = "/";
        }
    }
    std::string dir = mount.mount_point;
    if (below != "/") {
        if (!dir.empty() && dir.back() == '/') {
            dir.pop_back();
        }
        dir += below;
    }
    return dir;
}

// read_file reads a small file whole; nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::string& path) {
    // O_NONBLOCK: these are kernel files, but nothing on the control thread may wait on a path.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        return std::nullopt;
    }
    std::string text;
    char buffer[4096];
    while (text.size() < kMaxFileBytes) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        text.append(buffer, size_t(n));
    }
    return text;
}

}  // namespace

std::string_view to_string(CgroupVersion version) {
    switch (version) {
        case CgroupVersion::v1:
            return "v1";
        case CgroupVersion::v2:
            return "v2";
    }
    return "unknown";
}

std::string_view to_string(PressureState state) {
    switch (state) {
        case PressureState::unlimited:
            return "unlimited";
        case PressureState::normal:
            return "normal";
        case PressureState::shedding:
            return "shedding";
    }
    return "unknown";
}

std::optional<MemoryCgroup> find_memory_cgroup(std::string_view proc_cgroup,
                                               std::string_view mountinfo) {
    // A controller is in one hierarchy at a time: a v1 memory mount means v2 has none.
    for (CgroupVersion version : {CgroupVersion::v1, CgroupVersion::v2}) {
        auto mount = find_mount(mountinfo, version);
        auto path = find_path(proc_cgroup, version);
        if (mount && path) {
            return MemoryCgroup{version, join_cgroup_dir(*mount, *path)};
        }
    }
    return std::nullopt;
}

std::optional<uint64_t> parse_memory_limit(std::string_view text) {
    if (trim(text) == "max") {
        return uint64_t{0};
    }
    auto bytes = parse_u64(text);
    if (!bytes) {
        return std::nullopt;
    }
    return *bytes >= kNoMemoryLimit ? 0 : *bytes;
}

std::optional<uint64_t> parse_memory_bytes(std::string_view text) {
    return parse_u64(text);
}

std::optional<uint64_t> memory_stat_field(std::string_view stat, std::string_view key) {
    for (std::string_view line : split(stat, '\n')) {
        if (line.size() > key.size() && line.substr(0, key.size()) == key &&
            line[key.size()] == ' ') {
            return parse_u64(line.substr(key.size() + 1));
        }
    }
    return std::nullopt;
}

std::optional<MemorySample> memory_sample(CgroupVersion version, std::string_view limit,
                                          std::string_view usage, std::string_view stat) {
    auto limit_bytes = parse_memory_limit(limit);
    auto usage_bytes = parse_memory_bytes(usage);
    if (!limit_bytes || !usage_bytes) {
        return std::nullopt;
    }
    MemorySample sample;
    sample.limit_bytes = *limit_bytes;
    sample.usage_bytes = *usage_bytes;
    if (version == CgroupVersion::v1) {
        // v1 prefixes the counts of the cgroup and its descendants with `total_`; an ancestor's
        // tighter limit shows as hierarchical_memory_limit.
        sample.inactive_file_bytes = memory_stat_field(stat, "total_inactive_file").value_or(0);
        auto inherited = memory_stat_field(stat, "hierarchical_memory_limit");
        if (inherited && *inherited < kNoMemoryLimit &&
            (sample.limit_bytes == 0 || *inherited < sample.limit_bytes)) {
            sample.limit_bytes = *inherited;
        }
    } else {
        sample.inactive_file_bytes = memory_stat_field(stat, "inactive_file").value_or(0);
    }
    return sample;
}

PressureState MemoryPressure::update(const std::optional<MemorySample>& sample) {
    PressureState before = state_;
    if (!sample || sample->limit_bytes == 0) {
        state_ = PressureState::unlimited;
        return before;
    }
    double used = double(sample->working_set_bytes()) / double(sample->limit_bytes);
    if (used >= thresholds_.shed_ratio) {
        state_ = PressureState::shedding;
    } else if (state_ != PressureState::shedding || used < thresholds_.resume_ratio) {
        state_ = PressureState::normal;
    }
    return before;
}

bool MemoryPressure::over_mark(const MemorySample& sample) const {
    if (sample.limit_bytes == 0) {
        return false;
    }
    double mark =
            state_ == PressureState::shedding ? thresholds_.resume_ratio : thresholds_.shed_ratio;
    return double(sample.working_set_bytes()) >= mark * double(sample.limit_bytes);
}

MemoryWatch::MemoryWatch(std::optional<MemoryCgroup> cgroup, PressureThresholds thresholds,
                         ShedSignal& signal, telemetry::StandardMetrics* metrics)
    : cgroup_(std::move(cgroup)), pressure_(thresholds), signal_(signal), metrics_(metrics) {}

MemoryWatch MemoryWatch::for_this_process(PressureThresholds thresholds, ShedSignal& signal,
                                          telemetry::StandardMetrics* metrics) {
    auto proc_cgroup = read_file("/proc/self/cgroup");
    auto mountinfo = read_file("/proc/self/mountinfo");
    std::optional<MemoryCgroup> cgroup;
    if (proc_cgroup && mountinfo) {
        cgroup = find_memory_cgroup(*proc_cgroup, *mountinfo);
    }
    MemoryWatch watch(cgroup, thresholds, signal, metrics);
    if (!cgroup) {
        log::info("proxy", "no memory cgroup found: new work is never shed for memory");
        return watch;
    }
    auto sample = watch.read();
    uint64_t limit = sample ? sample->limit_bytes : 0;
    log::info("proxy", "memory cgroup",
              {log::Field::str("dir", cgroup->dir),
               log::Field::display("version", to_string(cgroup->version)),
               log::Field::num("limit", limit),
               log::Field::num("shed_at", uint64_t(double(limit) * thresholds.shed_ratio)),
               log::Field::num("resume_below", uint64_t(double(limit) * thresholds.resume_ratio))});
    return watch;
}

std::optional<MemorySample> MemoryWatch::read() const {
    if (!cgroup_) {
        return std::nullopt;
    }
    bool v1 = cgroup_->version == CgroupVersion::v1;
    auto limit = read_file(cgroup_->dir + (v1 ? "/memory.limit_in_bytes" : "/memory.max"));
    auto usage = read_file(cgroup_->dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"));
    auto stat = read_file(cgroup_->dir + "/memory.stat");
    if (!limit || !usage) {
        return std::nullopt;
    }
    return memory_sample(cgroup_->version, *limit, *usage, stat ? *stat : std::string());
}

void MemoryWatch::tick(int64_t now_ns) {
    if (last_sample_ns_ != INT64_MIN && now_ns - last_sample_ns_ < kSampleIntervalNs) {
        return;
    }
    sample_now(now_ns);
}

void MemoryWatch::sample_now(int64_t now_ns) {
    last_sample_ns_ = now_ns;
    if (!cgroup_) {
        return;
    }
    std::optional<MemorySample> sample = read();
    if (sample && pressure_.over_mark(*sample)) {
        // Freed memory glibc keeps in its arenas counts as used; hand it back and look again
        // before refusing anyone. Once a second at most, and only over the mark.
        int64_t start_ns = monotonic_ns();
        ::malloc_trim(0);
        std::optional<MemorySample> trimmed = read();
        log::debug(
                "proxy", "memory over the mark: returned freed memory to the kernel",
                {log::Field::num("working_set.before", sample->working_set_bytes()),
                 log::Field::num("working_set.after", trimmed ? trimmed->working_set_bytes() : 0),
                 log::Field::num("duration.us", uint64_t(monotonic_ns() - start_ns) / 1000)});
        if (trimmed) {
            sample = trimmed;
        }
    }
    PressureState before = pressure_.update(sample);
    publish(sample, before, now_ns);
}

void MemoryWatch::publish(const std::optional<MemorySample>& sample, PressureState before,
                          int64_t now_ns) {
    PressureState now = pressure_.state();
    bool shedding = now == PressureState::shedding;
    signal_.shedding.store(shedding, std::memory_order_relaxed);
    if (metrics_ != nullptr) {
        metrics_->memory_pressure.set({}, shedding ? 1 : 0);
        metrics_->memory_working_set.set({}, sample ? double(sample->working_set_bytes()) : 0);
        metrics_->memory_limit.set({}, sample ? double(sample->limit_bytes) : 0);
    }
    if (before == now) {
        return;
    }
    uint64_t working_set = sample ? sample->working_set_bytes() : 0;
    uint64_t limit = sample ? sample->limit_bytes : 0;
    if (shedding) {
        episode_start_ns_ = now_ns;
        episode_shed_before_ = signal_.shed_total.load(std::memory_order_relaxed);
        log::warn("proxy", "memory pressure: shedding new connections",
                  {log::Field::num("working_set", working_set), log::Field::num("limit", limit),
                   log::Field::num("shed_at",
                                   uint64_t(double(limit) * pressure_.thresholds().shed_ratio))});
    } else if (before == PressureState::shedding) {
        uint64_t shed = signal_.shed_total.load(std::memory_order_relaxed) - episode_shed_before_;
        log::info("proxy", "memory pressure over: accepting new connections",
                  {log::Field::num("working_set", working_set), log::Field::num("limit", limit),
                   log::Field::num("shed", shed),
                   log::Field::num("duration_ms",
                                   uint64_t(now_ns - episode_start_ns_) / kNanosPerMilli)});
    }
}

}  // namespace zt::proxy
