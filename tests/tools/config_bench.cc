// config_bench is a benchmark, not a test: it writes a config file with 10,000 workloads, 1,000
// services and 1,000 policies, then times read + parse + validate + index (`config::load_file`,
// exactly what the watcher runs on the control thread) over several runs, and reports the median
// time and the peak RSS. Targets (issue 3): under 200 ms and under 100 MiB. Figures go to
// docs/bench/config.md. It prints numbers; it never fails on them.
//
// Then the watcher's path for a file the control agent wrote: the same config rendered by
// `config::render` (one element per line), changed one workload's canonicalRevision at a time
// (`--changes` times), each version loaded whole (`load_text`) and incrementally
// (`IncrementalLoad::reload`, which parses only the changed line), and `Snapshot::build` alone.
//
// usage: config_bench [--runs N] [--workloads N] [--services N] [--policies N] [--keep FILE]
//                     [--changes N]

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/config/incremental_load.h"
#include "src/config/lint.h"
#include "src/config/load.h"
#include "src/config/parse.h"
#include "src/config/render.h"
#include "zt/clock.h"

namespace {

std::string ip_of(int base, int i) {
    return std::to_string(198) + "." + std::to_string(base) + "." + std::to_string(i / 250) + "." +
           std::to_string(1 + i % 250);
}

std::string generate(int workloads, int services, int policies) {
    std::string out;
    out.reserve(size_t(workloads) * 600 + size_t(services) * 400 + size_t(policies) * 500);
    out += "{\"workloads\": [\n";
    for (int i = 0; i < workloads; ++i) {
        std::string ns = "ns-" + std::to_string(i % 50);
        std::string svc = "svc-" + std::to_string(i % services);
        std::string svc_ns = "ns-" + std::to_string((i % services) % 50);
        out += i ? ",\n" : "";
        out += "{\"uid\": \"Kubernetes//Pod/" + ns + "/pod-" + std::to_string(i) +
               "\", \"name\": \"pod-" + std::to_string(i) + "\", \"namespace\": \"" + ns +
               "\", \"serviceAccount\": \"sa-" + std::to_string(i % 200) +
               "\", \"workloadIps\": [\"" + ip_of(18, i) +
               "\"], \"protocol\": \"HBONE\", \"node\": \"node-" + std::to_string(i % 20) +
               "\", \"network\": \"\", \"workloadName\": \"app-" + std::to_string(i % 1000) +
               "\", \"workloadType\": \"deployment\", \"canonicalName\": \"app-" +
               std::to_string(i % 1000) +
               "\", \"canonicalRevision\": \"v1\", \"clusterId\": "
               "\"Kubernetes\", \"status\": \"Healthy\", \"capacity\": 1, "
               "\"authorizationPolicies\": "
               "[\"" +
               ns + "/policy-" + std::to_string(i % policies) + "\"], \"services\": {\"" + svc_ns +
               "/" + svc + "." + svc_ns + ".svc.cluster.local\": {\"80\": 8080, \"443\": 8443}}}";
    }
    out += "\n], \"services\": [\n";
    for (int i = 0; i < services; ++i) {
        std::string ns = "ns-" + std::to_string(i % 50);
        out += i ? ",\n" : "";
        out += "{\"name\": \"svc-" + std::to_string(i) + "\", \"namespace\": \"" + ns +
               "\", \"hostname\": \"svc-" + std::to_string(i) + "." + ns +
               ".svc.cluster.local\", \"vips\": [\"/" + ip_of(19, i) +
               "\"], \"ports\": {\"80\": 8080, \"443\": 0}, \"subjectAltNames\": "
               "[\"spiffe://cluster.local/ns/" +
               ns + "/sa/sa-" + std::to_string(i % 200) + "\"]}";
    }
    out += "\n], \"policies\": [\n";
    for (int i = 0; i < policies; ++i) {
        std::string ns = "ns-" + std::to_string(i % 50);
        out += i ? ",\n" : "";
        out += "{\"name\": \"policy-" + std::to_string(i) + "\", \"namespace\": \"" + ns +
               "\", \"scope\": \"" + (i % 10 == 0 ? "Namespace" : "WorkloadSelector") +
               "\", \"action\": \"" + (i % 7 == 0 ? "Deny" : "Allow") +
               "\", \"dryRun\": false, \"rules\": [[[{\"principals\": [{\"Exact\": "
               "\"cluster.local/ns/" +
               ns + "/sa/sa-" + std::to_string(i % 200) + "\"}, {\"Prefix\": \"cluster.local/ns/" +
               ns +
               "/\"}], \"namespaces\": "
               "[{\"Exact\": \"" +
               ns +
               "\"}]}], [{\"sourceIps\": [\"198.18.0.0/15\", "
               "\"2001:db8::/32\"], \"destinationPorts\": [8080, 8443], \"notPrincipals\": "
               "[{\"Suffix\": \"/sa/blocked\"}]}]]]}";
    }
    out += "\n], \"pods\": [\n";
    for (int i = 0; i < 100; ++i) {
        out += i ? ",\n" : "";
        out += "{\"uid\": \"Kubernetes//Pod/ns-" + std::to_string(i % 50) + "/pod-" +
               std::to_string(i) + "\", \"netns\": \"/var/run/netns/zt-pod-" + std::to_string(i) +
               "\"}";
    }
    out += "\n]}\n";
    return out;
}

long rss_kib() {
    long pages = 0;
    long resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        std::fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long peak_rss_kib() {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0 : values[values.size() / 2];
}

// incremental times the reloads of `changes` versions of `config`'s rendered file, each with one
// workload's canonicalRevision changed: whole, incremental, and the snapshot build alone.
int incremental(zt::state::Config config, int changes) {
    zt::config::IncrementalLoad loader;
    std::string text = zt::config::render(config);
    zt::config::LoadResult first = loader.reload(text);
    if (!first.snapshot || loader.whole()) {
        std::fprintf(stderr, "rendered config: not loaded incrementally\n");
        return 1;
    }
    std::printf("rendered file %.1f MiB; first reload parsed %zu lines\n",
                double(text.size()) / (1 << 20), loader.parsed());
    std::vector<double> whole_ms, reload_ms, build_ms, sha_ms;
    size_t parsed = 0;
    for (int c = 0; c < changes; ++c) {
        zt::state::Workload& changed = config.workloads[size_t(c) * 7919 % config.workloads.size()];
        changed.canonical_revision = "rev-" + std::to_string(c);
        text = zt::config::render(config);
        int64_t t0 = zt::monotonic_ns();
        zt::config::LoadResult whole = zt::config::load_text(text);
        int64_t t1 = zt::monotonic_ns();
        zt::config::LoadResult fast = loader.reload(text);
        int64_t t2 = zt::monotonic_ns();
        zt::state::Config copy = config;
        int64_t t3 = zt::monotonic_ns();
        zt::state::BuildResult built = zt::state::Snapshot::build(std::move(copy));
        int64_t t4 = zt::monotonic_ns();
        std::string sha = zt::config::sha256_hex(text);
        int64_t t5 = zt::monotonic_ns();
        if (!whole.snapshot || !fast.snapshot || !built.snapshot || loader.whole() ||
            fast.sha256 != whole.sha256) {
            std::fprintf(stderr, "change %d: not loaded the same way\n", c);
            return 1;
        }
        parsed += loader.parsed();
        whole_ms.push_back(double(t1 - t0) / 1e6);
        reload_ms.push_back(double(t2 - t1) / 1e6);
        build_ms.push_back(double(t4 - t3) / 1e6);
        sha_ms.push_back(double(t5 - t4) / 1e6);
    }
    std::printf(
            "incremental: %d changes of one workload each, median (ms): load_text %.1f, "
            "IncrementalLoad::reload %.1f (lines parsed per change %.1f), of which "
            "Snapshot::build %.1f and sha256 %.1f\n",
            changes, median(whole_ms), median(reload_ms), double(parsed) / changes,
            median(build_ms), median(sha_ms));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    int workloads = 10000;
    int services = 1000;
    int policies = 1000;
    int changes = 50;
    std::string keep;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        int value = std::atoi(argv[i + 1]);
        if (flag == "--runs") {
            runs = std::max(1, value);
        } else if (flag == "--workloads") {
            workloads = std::max(1, value);
        } else if (flag == "--services") {
            services = std::max(1, value);
        } else if (flag == "--policies") {
            policies = std::max(1, value);
        } else if (flag == "--changes") {
            changes = std::max(1, value);
        } else if (flag == "--keep") {
            keep = argv[i + 1];
        } else {
            std::fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    std::string path = keep;
    if (path.empty()) {
        char tmpl[] = "/tmp/zt-config-bench-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            std::perror("mkstemp");
            return 1;
        }
        ::close(fd);
        path = tmpl;
    }
    size_t bytes = 0;
    {
        std::string text = generate(workloads, services, policies);
        bytes = text.size();
        FILE* f = std::fopen(path.c_str(), "w");
        if (f == nullptr || std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
            std::perror("write");
            return 1;
        }
        std::fclose(f);
    }
    // The generator's buffer is freed; the peak below is dominated by the loads themselves.
    long rss_before = rss_kib();
    long peak_before = peak_rss_kib();
    std::vector<double> ms;
    size_t counts[4] = {};
    long retained_kib = 0;
    for (int r = 0; r < runs; ++r) {
        int64_t start = zt::monotonic_ns();
        zt::config::LoadResult result = zt::config::load_file(path);
        int64_t took = zt::monotonic_ns() - start;
        if (!result.snapshot) {
            std::fprintf(stderr, "generated config is invalid: %s\n",
                         result.errors.empty() ? "?" : result.errors.front().c_str());
            return 1;
        }
        counts[0] = result.snapshot->workloads().size();
        counts[1] = result.snapshot->services().size();
        counts[2] = result.snapshot->policies().size();
        counts[3] = result.snapshot->pods().size();
        malloc_trim(0);  // Return the freed DOM to the OS so RSS shows what the snapshot keeps.
        retained_kib = rss_kib() - rss_before;
        ms.push_back(double(took) / 1e6);
    }
    // The same load again, step by step, to show where its time goes (the steps are what
    // `config::load_text` runs, in its order).
    std::vector<double> step_ms[4];
    for (int r = 0; r < runs; ++r) {
        int64_t t0 = zt::monotonic_ns();
        auto text = zt::config::read_file(path, zt::config::kMaxFileBytes);
        int64_t t1 = zt::monotonic_ns();
        zt::config::ParseResult parsed = zt::config::parse(text ? *text : std::string());
        int64_t t2 = zt::monotonic_ns();
        zt::state::BuildResult built = zt::state::Snapshot::build(std::move(parsed.config));
        int64_t t3 = zt::monotonic_ns();
        if (built.snapshot) {
            (void)zt::config::combination_warnings(*built.snapshot);
        }
        int64_t t4 = zt::monotonic_ns();
        step_ms[0].push_back(double(t1 - t0) / 1e6);
        step_ms[1].push_back(double(t2 - t1) / 1e6);
        step_ms[2].push_back(double(t3 - t2) / 1e6);
        step_ms[3].push_back(double(t4 - t3) / 1e6);
    }
    std::string rendered_text;
    zt::state::Config rendered;
    {
        auto text = zt::config::read_file(path, zt::config::kMaxFileBytes);
        zt::config::ParseResult parsed = zt::config::parse(text ? *text : std::string());
        rendered = std::move(parsed.config);
    }
    if (keep.empty()) {
        ::unlink(path.c_str());
    }
    for (auto& v : step_ms) {
        std::sort(v.begin(), v.end());
    }
    std::printf(
            "steps, median (ms): read %.1f, parse %.1f, build (index + cross checks) %.1f, "
            "lint %.1f\n",
            step_ms[0][runs / 2], step_ms[1][runs / 2], step_ms[2][runs / 2], step_ms[3][runs / 2]);
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    std::printf(
            "config_bench: %zu workloads, %zu services, %zu policies, %zu pods; file %.1f MiB\n",
            counts[0], counts[1], counts[2], counts[3], double(bytes) / (1 << 20));
    std::printf("runs (ms):");
    for (double v : ms) {
        std::printf(" %.1f", v);
    }
    std::printf("\nmedian load (read+parse+validate+index): %.1f ms\n", sorted[sorted.size() / 2]);
    std::printf(
            "peak RSS: %.1f MiB (process, incl. binary and libs); before loading %.1f MiB; "
            "peak before loading %.1f MiB\n",
            double(peak_rss_kib()) / 1024, double(rss_before) / 1024, double(peak_before) / 1024);
    std::printf("snapshot retained after load: ~%.1f MiB\n", double(retained_kib) / 1024);
    return incremental(std::move(rendered), changes);
}
