#pragma once

// LogQueue is the log sink that never blocks the data path (docs/contract.md §8). Any thread
// formats its record into one line and pushes it into a bounded lock-free multi-producer queue;
// when the queue is full the line is dropped and counted (`ztunnel_log_lines_dropped_total`)
// instead of stalling a worker. The control thread calls `flush` from its loop, which writes queued
// lines to stdout with `writev`, up to 64 lines per call, each line whole.
//
// ztunnel applies back-pressure instead of dropping; we drop because an io_uring worker that
// blocks on stdout stalls every connection it owns.

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "zt/log.h"

namespace zt::telemetry {

// LogFormat is LOG_FORMAT: `json` selects JSON, anything else plain (as in ztunnel).
enum class LogFormat : uint8_t { plain, json };

// log_format_from_env maps a LOG_FORMAT value (`json`, any case) to a format.
LogFormat log_format_from_env(std::string_view value);

// LogQueueOptions sizes the queue at startup.
struct LogQueueOptions {
    size_t capacity_lines = 16384;  // rounded up to a power of two
    size_t max_line_bytes = 16384;  // longer lines are cut and end with `...`
    size_t batch_lines = 64;        // lines per writev
    LogFormat format = LogFormat::plain;
    int fd = 1;  // where `flush` writes; stdout by default
};

class LogQueue {
public:
    explicit LogQueue(const LogQueueOptions& options);
    ~LogQueue();

    LogQueue(const LogQueue&) = delete;
    LogQueue& operator=(const LogQueue&) = delete;

    // push queues `line` (without its newline; one is added). Returns false and counts a drop when
    // the queue is full. Thread-safe, lock-free, never blocks.
    bool push(std::string_view line);

    // push_owned is `push` for a line the caller no longer needs; it is moved into the queue, so a
    // formatted record costs one allocation (freed later by the control thread).
    bool push_owned(std::string line);

    // push_record formats `record` in this queue's format and pushes it.
    bool push_record(const log::Record& record);

    // flush writes up to `max_lines` queued lines to the fd and returns how many it wrote (or
    // dropped on a write error, which is counted in `write_errors`). Only one thread (the control
    // thread) may call it. It may block on a slow stdout; that is the control thread's cost, never
    // a worker's.
    size_t flush(size_t max_lines = SIZE_MAX);

    // dropped counts lines refused because the queue was full.
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

    // write_errors counts lines lost because the fd refused them.
    uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

    // queued is the number of lines waiting (approximate while producers run).
    size_t queued() const;

    LogFormat format() const { return options_.format; }

    // install makes `queue` the process's log sink. `queue` must outlive every later log call:
    // uninstall only after the workers have stopped.
    static void install(LogQueue* queue);

    // uninstall restores the synchronous stderr sink.
    static void uninstall();

    // read_dropped adapts `dropped` to `CallbackFamily::Read` for the metrics registry.
    static double read_dropped(const void* queue);

private:
    struct Slot {
        std::atomic<size_t> sequence;
        std::string line;
    };

    bool write_all(const iovec* iov, int count);

    LogQueueOptions options_;
    size_t mask_;
    std::unique_ptr<Slot[]> slots_;
    // enqueue_ and dequeue_ sit on their own cache lines: producers contend on the first only.
    alignas(64) std::atomic<size_t> enqueue_{0};
    alignas(64) std::atomic<size_t> dequeue_{0};
    alignas(64) std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> write_errors_{0};
};

}  // namespace zt::telemetry
