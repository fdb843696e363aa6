// metrics_bench measures what counting costs on the data path and what a scrape costs on the
// control thread: per-worker `Cell::add` against one shared `std::atomic::fetch_add` (the design
// we rejected), with two threads counting at once, and rendering a registry holding many traffic
// series. Usage: metrics_bench [increments_per_thread] [series]. Timing figures on a shared
// machine are indicative only.

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "src/telemetry/standard_metrics.h"

using namespace zt::telemetry;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// thread_cpu_seconds is this thread's CPU time: on a loaded machine wall time mostly measures
// the scheduler, CPU time measures the counting.
double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t increments = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 50'000'000;
    size_t series = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2000;
    constexpr int kThreads = 2;

    StandardMetrics metrics({kThreads, "bench", {}});
    TrafficLabels labels;
    labels.source_workload = "bench";
    std::vector<TrafficSeries*> handles;
    for (int t = 0; t < kThreads; ++t) {
        handles.push_back(metrics.traffic.series(size_t(t), labels));
    }
    std::vector<double> cpu(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Cell& cell = handles[size_t(t)]->received_bytes;
            double begin = thread_cpu_seconds();
            for (uint64_t i = 0; i < increments; ++i) {
                cell.add(1);
            }
            cpu[size_t(t)] = thread_cpu_seconds() - begin;
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    double sharded = (cpu[0] + cpu[1]) / kThreads;

    std::atomic<uint64_t> shared{0};
    threads.clear();
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            double begin = thread_cpu_seconds();
            for (uint64_t i = 0; i < increments; ++i) {
                shared.fetch_add(1, std::memory_order_relaxed);
            }
            cpu[size_t(t)] = thread_cpu_seconds() - begin;
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    double contended = (cpu[0] + cpu[1]) / kThreads;
    uint64_t total = metrics.traffic.totals().received_bytes;
    if (total != increments * kThreads || shared.load() != increments * kThreads) {
        std::fprintf(stderr, "metrics_bench: lost counts (%llu)\n", (unsigned long long)total);
        return 1;
    }
    std::printf("counting, %d threads x %llu increments (thread CPU time):\n", kThreads,
                (unsigned long long)increments);
    std::printf("  per-worker Cell::add        %6.2f ns/increment\n",
                sharded * 1e9 / double(increments));
    std::printf("  shared atomic fetch_add     %6.2f ns/increment\n",
                contended * 1e9 / double(increments));

    // Per connection: the series lookup (a hit, as for every connection after the first with
    // these labels) plus opened/closed, with realistic label values.
    labels.source_principal = "spiffe://cluster.local/ns/default/sa/curl";
    labels.destination_principal = "spiffe://cluster.local/ns/default/sa/echo";
    labels.destination_service = "echo.default.svc.cluster.local";
    labels.destination_workload = "echo";
    constexpr int kConnections = 1'000'000;
    double begin = thread_cpu_seconds();
    for (int i = 0; i < kConnections; ++i) {
        ConnectionMetrics conn(metrics.traffic, 0, labels);
        conn.add_request_bytes(1);
    }
    double per_connection = (thread_cpu_seconds() - begin) / kConnections;
    std::printf("  per connection (lookup, opened, bytes, closed) %6.0f ns\n",
                per_connection * 1e9);

    for (size_t i = 0; i < series; ++i) {
        labels.destination_workload = "w" + std::to_string(i);
        ConnectionMetrics conn(metrics.traffic, i % kThreads, labels);
        conn.add_request_bytes(i);
    }
    auto start = Clock::now();
    std::string body = metrics.render(Format::prometheus_text);
    double render = seconds_since(start);
    start = Clock::now();
    auto zipped = gzip_compress(body);
    double zip = seconds_since(start);
    std::printf(
            "scrape with %zu traffic label sets: %zu bytes rendered in %.1f ms, "
            "gzip to %zu bytes in %.1f ms\n",
            series, body.size(), render * 1e3, zipped ? zipped->size() : 0, zip * 1e3);
    return 0;
}
