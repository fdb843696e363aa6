// Tests for memory_pressure.cc without a kernel cgroup: locating the memory cgroup from the text
// of /proc/self/cgroup and mountinfo (v1, v2, containers, escapes), reading both cgroup formats
// ("max", v1's huge "no limit", page cache), the hysteresis, and the watch itself against real
// files shaped like a cgroup's in a temporary directory: the signal the workers read, the
// gauges, the heap trim before shedding, and one log line per episode start and end.

#include "src/proxy/memory_pressure.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "src/telemetry/standard_metrics.h"
#include "tests/support/log_capture.h"

namespace {

using zt::proxy::CgroupVersion;
using zt::proxy::MemoryPressure;
using zt::proxy::MemorySample;
using zt::proxy::PressureState;
using zt::proxy::PressureThresholds;

// The shapes of this project's CI machine (cgroup v1 with a v2 mount without controllers) and
// of a cgroup v2 node.
constexpr std::string_view kMountinfoV1 =
        "24 1 0:22 / / rw,relatime - ext4 /dev/vda rw\n"
        "30 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 30 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr std::string_view kProcCgroupV1 =
        "9:name=systemd:/\n"
        "4:memory:/kubepods/pod1/abc\n"
        "1:cpu:/\n"
        "0::/\n";
constexpr std::string_view kMountinfoV2 =
        "24 1 0:22 / / rw,relatime - ext4 /dev/vda rw\n"
        "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

MemorySample sample(uint64_t limit, uint64_t usage, uint64_t inactive_file = 0) {
    MemorySample s;
    s.limit_bytes = limit;
    s.usage_bytes = usage;
    s.inactive_file_bytes = inactive_file;
    return s;
}

struct TempDir {
    std::string path;

    TempDir() {
        char pattern[] = "/tmp/zt-memory-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path = pattern;
    }

    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!std::system(cmd.c_str());
    }

    void write(const std::string& name, const std::string& text) const {
        std::ofstream(path + "/" + name) << text;
    }
};

double gauge(const zt::telemetry::StandardMetrics& metrics, std::string_view name) {
    std::string scrape = metrics.render(zt::telemetry::Format::prometheus_text);
    std::string prefix = std::string(name) + " ";
    size_t at = scrape.find("\n" + prefix);
    REQUIRE(at != std::string::npos);
    return std::strtod(scrape.c_str() + at + 1 + prefix.size(), nullptr);
}

}  // namespace

TEST_CASE("memory_pressure: the memory cgroup is found from /proc/self/cgroup and mountinfo") {
    auto v1 = zt::proxy::find_memory_cgroup(kProcCgroupV1, kMountinfoV1);
    REQUIRE(v1);
    CHECK(v1->version == CgroupVersion::v1);  // v1's memory hierarchy, not the empty v2 one.
    CHECK(v1->dir == "/sys/fs/cgroup/memory/kubepods/pod1/abc");

    auto v2 = zt::proxy::find_memory_cgroup("0::/kubepods.slice/pod2.slice/cri-x.scope\n",
                                            kMountinfoV2);
    REQUIRE(v2);
    CHECK(v2->version == CgroupVersion::v2);
    CHECK(v2->dir == "/sys/fs/cgroup/kubepods.slice/pod2.slice/cri-x.scope");
    CHECK(zt::proxy::find_memory_cgroup("0::/\n", kMountinfoV2)->dir == "/sys/fs/cgroup");

    // A container that was given its own cgroup as the mount's root: the path below the root,
    // or the mount point when the process sits at (or, seen from a cgroup namespace, outside)
    // the root.
    constexpr std::string_view container =
            "40 30 0:30 /docker/c1 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory,hugetlb\n";
    CHECK(zt::proxy::find_memory_cgroup("4:memory:/docker/c1\n", container)->dir ==
          "/sys/fs/cgroup/memory");
    CHECK(zt::proxy::find_memory_cgroup("4:memory:/docker/c1/sub\n", container)->dir ==
          "/sys/fs/cgroup/memory/sub");
    CHECK(zt::proxy::find_memory_cgroup("4:memory:/docker/c10\n", container)->dir ==
          "/sys/fs/cgroup/memory");
    CHECK(zt::proxy::find_memory_cgroup("4:memory:/\n", container)->dir == "/sys/fs/cgroup/memory");
    // mountinfo escapes spaces in paths.
    constexpr std::string_view escaped =
            "40 30 0:30 / /run/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
    CHECK(zt::proxy::find_memory_cgroup("0::/a\n", escaped)->dir == "/run/my cgroups/a");

    // Nothing to find: no cgroup file system, or the process is in no memory hierarchy.
    CHECK_FALSE(zt::proxy::find_memory_cgroup(kProcCgroupV1, "24 1 0:22 / / rw - ext4 x rw\n"));
    CHECK_FALSE(zt::proxy::find_memory_cgroup("1:cpu:/\n", kMountinfoV1.substr(0, 180)));
    CHECK_FALSE(zt::proxy::find_memory_cgroup("", ""));
    CHECK_FALSE(zt::proxy::find_memory_cgroup("garbage\n:::\n", "garbage - x\n"));
}

TEST_CASE("memory_pressure: both cgroup formats are read, and no limit reads as none") {
    CHECK(zt::proxy::parse_memory_limit("max\n") == uint64_t{0});
    CHECK(zt::proxy::parse_memory_limit("9223372036854771712\n") == uint64_t{0});  // v1, unset
    CHECK(zt::proxy::parse_memory_limit("104857600\n") == uint64_t{104857600});
    CHECK_FALSE(zt::proxy::parse_memory_limit(""));
    CHECK_FALSE(zt::proxy::parse_memory_limit("-1\n"));
    CHECK_FALSE(zt::proxy::parse_memory_limit("100M\n"));
    CHECK(zt::proxy::parse_memory_bytes("  4096\n") == uint64_t{4096});

    constexpr std::string_view stat_v1 =
            "cache 1000\nrss 2000\ninactive_file 7\nhierarchical_memory_limit 80000000\n"
            "total_cache 5000\ntotal_inactive_file 3000000\n";
    auto v1 = zt::proxy::memory_sample(CgroupVersion::v1, "100000000\n", "50000000\n", stat_v1);
    REQUIRE(v1);
    CHECK(v1->limit_bytes == 80000000);         // An ancestor's tighter limit applies.
    CHECK(v1->inactive_file_bytes == 3000000);  // total_, the cgroup and its children.
    CHECK(v1->working_set_bytes() == 47000000);
    // Unlimited own limit, limited ancestor; and a huge ancestor "limit" is none.
    CHECK(zt::proxy::memory_sample(CgroupVersion::v1, "9223372036854771712\n", "1\n", stat_v1)
                  ->limit_bytes == 80000000);
    CHECK(zt::proxy::memory_sample(CgroupVersion::v1, "9223372036854771712\n", "1\n",
                                   "hierarchical_memory_limit 9223372036854771712\n")
                  ->limit_bytes == 0);

    constexpr std::string_view stat_v2 = "anon 900\nfile 800\nactive_file 100\ninactive_file 700\n";
    auto v2 = zt::proxy::memory_sample(CgroupVersion::v2, "max\n", "2000\n", stat_v2);
    REQUIRE(v2);
    CHECK(v2->limit_bytes == 0);
    CHECK(v2->working_set_bytes() == 1300);
    // memory.stat unreadable or without the field: nothing is subtracted.
    CHECK(zt::proxy::memory_sample(CgroupVersion::v2, "4096\n", "2000\n", "")
                  ->working_set_bytes() == 2000);
    // More inactive cache than usage (the counters are read at different instants): 0, not a
    // wrapped-around huge number.
    CHECK(sample(100, 10, 20).working_set_bytes() == 0);
    CHECK_FALSE(zt::proxy::memory_sample(CgroupVersion::v2, "max\n", "", stat_v2));
    CHECK_FALSE(zt::proxy::memory_sample(CgroupVersion::v2, "lots\n", "1\n", stat_v2));
}

TEST_CASE("memory_pressure: shedding starts at the high mark and ends below the low mark") {
    MemoryPressure pressure(PressureThresholds{0.9, 0.8});
    CHECK(pressure.state() == PressureState::unlimited);
    CHECK(pressure.update(sample(1000, 500)) == PressureState::unlimited);
    CHECK(pressure.state() == PressureState::normal);
    pressure.update(sample(1000, 899));
    CHECK(pressure.state() == PressureState::normal);
    CHECK_FALSE(pressure.over_mark(sample(1000, 899)));
    CHECK(pressure.over_mark(sample(1000, 900)));
    pressure.update(sample(1000, 900));
    CHECK(pressure.state() == PressureState::shedding);
    // Between the marks it stays where it was: shedding...
    pressure.update(sample(1000, 850));
    CHECK(pressure.state() == PressureState::shedding);
    CHECK(pressure.over_mark(sample(1000, 850)));  // While shedding the low mark matters.
    pressure.update(sample(1000, 800));
    CHECK(pressure.state() == PressureState::shedding);
    CHECK(pressure.update(sample(1000, 799)) == PressureState::shedding);
    CHECK(pressure.state() == PressureState::normal);
    // ... or normal.
    pressure.update(sample(1000, 850));
    CHECK(pressure.state() == PressureState::normal);
    // Page cache alone does not shed: 95 % used, but a third of it inactive file pages.
    pressure.update(sample(1000, 950, 300));
    CHECK(pressure.state() == PressureState::normal);
    pressure.update(sample(1000, 950, 10));
    CHECK(pressure.state() == PressureState::shedding);
    // The limit removed (or the cgroup unreadable) while shedding: nothing is shed.
    pressure.update(sample(0, 950));
    CHECK(pressure.state() == PressureState::unlimited);
    CHECK_FALSE(pressure.over_mark(sample(0, 950)));
    pressure.update(sample(1000, 950));
    CHECK(pressure.state() == PressureState::shedding);
    pressure.update(std::nullopt);
    CHECK(pressure.state() == PressureState::unlimited);
}

TEST_CASE("memory_pressure: the watch publishes to the workers and logs once per episode") {
    zt::test::LogCapture log("debug");
    TempDir dir;
    zt::telemetry::StandardMetricsOptions metric_options;
    zt::telemetry::StandardMetrics metrics(metric_options);
    zt::proxy::ShedSignal signal;
    zt::proxy::MemoryWatch watch(zt::proxy::MemoryCgroup{CgroupVersion::v2, dir.path},
                                 PressureThresholds{0.9, 0.8}, signal, &metrics);
    const int64_t second = 1'000'000'000;

    // Files not there (yet): nothing is shed.
    watch.tick(0);
    CHECK(watch.state() == PressureState::unlimited);
    CHECK_FALSE(signal.shedding.load());

    dir.write("memory.max", "1000000000\n");
    dir.write("memory.current", "500000000\n");
    dir.write("memory.stat", "anon 400000000\ninactive_file 100000000\n");
    watch.tick(second / 2);  // Less than a second after the last sample: not read.
    CHECK(watch.state() == PressureState::unlimited);
    watch.tick(second);
    CHECK(watch.state() == PressureState::normal);
    CHECK(gauge(metrics, "ztunnel_memory_working_set_bytes") == 400000000);
    CHECK(gauge(metrics, "ztunnel_memory_limit_bytes") == 1000000000);
    CHECK(gauge(metrics, "ztunnel_memory_pressure") == 0);

    // Over the mark: the heap is trimmed (logged at debug) and the files read again; they still
    // say 95 %, so shedding starts.
    dir.write("memory.current", "1050000000\n");
    watch.tick(2 * second);
    CHECK(watch.state() == PressureState::shedding);
    CHECK(signal.shedding.load());
    CHECK(gauge(metrics, "ztunnel_memory_pressure") == 1);
    CHECK(log.count({"returned freed memory to the kernel"}) == 1);
    // The workers shed three connections; later samples in the episode log nothing.
    signal.shed_total += 3;
    watch.tick(3 * second);
    dir.write("memory.current", "900000000\n");  // A working set of 80 %: between the marks.
    watch.tick(4 * second);
    CHECK(signal.shedding.load());
    CHECK(log.count({"memory pressure: shedding new connections"}) == 1);
    CHECK(log.count({"memory pressure: shedding new connections", "working_set=950000000",
                     "limit=1000000000"}) == 1);

    dir.write("memory.current", "850000000\n");  // 75 %: the episode is over.
    watch.tick(5 * second);
    CHECK(watch.state() == PressureState::normal);
    CHECK_FALSE(signal.shedding.load());
    CHECK(gauge(metrics, "ztunnel_memory_pressure") == 0);
    CHECK(log.count({"memory pressure over: accepting new connections", "shed=3",
                     "duration_ms=3000"}) == 1);
    watch.tick(6 * second);
    CHECK(log.count({"memory pressure"}) == 2);

    // The limit lifted ("max") in the next episode: shedding ends too.
    dir.write("memory.current", "1100000000\n");
    watch.sample_now(7 * second);
    CHECK(signal.shedding.load());
    dir.write("memory.max", "max\n");
    watch.sample_now(8 * second);
    CHECK(watch.state() == PressureState::unlimited);
    CHECK_FALSE(signal.shedding.load());
    CHECK(gauge(metrics, "ztunnel_memory_limit_bytes") == 0);
    CHECK(log.count({"memory pressure over: accepting new connections"}) == 2);
}

TEST_CASE("memory_pressure: a v1 cgroup's files are read the same way") {
    TempDir dir;
    zt::proxy::ShedSignal signal;
    zt::proxy::MemoryWatch watch(zt::proxy::MemoryCgroup{CgroupVersion::v1, dir.path},
                                 PressureThresholds{0.9, 0.8}, signal, nullptr);
    dir.write("memory.limit_in_bytes", "9223372036854771712\n");
    dir.write("memory.usage_in_bytes", "990\n");
    dir.write("memory.stat", "inactive_file 0\ntotal_inactive_file 10\n");
    watch.sample_now(0);
    CHECK(watch.state() == PressureState::unlimited);
    dir.write("memory.limit_in_bytes", "1000\n");
    watch.sample_now(1);
    CHECK(watch.state() == PressureState::shedding);
    CHECK(signal.shedding.load());
    // Page cache of the cgroup's children counts as cache too (total_inactive_file).
    dir.write("memory.stat", "inactive_file 0\ntotal_inactive_file 400\n");
    watch.sample_now(2);
    CHECK_FALSE(signal.shedding.load());
}
