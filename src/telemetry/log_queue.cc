// log_queue.cc is a bounded multi-producer, single-consumer queue of formatted log lines (the
// sequence-numbered ring of Dmitry Vyukov's bounded queue) and the control thread's batched
// writev to stdout. Producers never wait: a full queue is a counted drop.

#include "src/telemetry/log_queue.h"

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "zt/assert.h"

namespace zt::telemetry {

namespace {

std::atomic<LogQueue*> g_installed{nullptr};

void queue_sink(const log::Record& record) {
    LogQueue* queue = g_installed.load(std::memory_order_acquire);
    if (queue != nullptr) {
        queue->push_record(record);
    }
}

size_t round_up_pow2(size_t n) {
    size_t p = 2;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

}  // namespace

LogFormat log_format_from_env(std::string_view value) {
    if (value.size() == 4) {
        std::string lower(value);
        for (char& c : lower) {
            if (c >= 'A' && c <= 'Z') {
                c = char(c - 'A' + 'a');
            }
        }
        if (lower == "json") {
            return LogFormat::json;
        }
    }
    return LogFormat::plain;
}

LogQueue::LogQueue(const LogQueueOptions& options)
    : options_(options)
    , mask_(round_up_pow2(options.capacity_lines) - 1)
    , slots_(new Slot[mask_ + 1]) {
    for (size_t i = 0; i <= mask_; ++i) {
        slots_[i].sequence.store(i, std::memory_order_relaxed);
    }
    if (options_.batch_lines == 0 || options_.batch_lines > 1024) {
        options_.batch_lines = 64;
    }
}

LogQueue::~LogQueue() {
    // A sink still pointing here would write into freed memory.
    LogQueue* self = this;
    g_installed.compare_exchange_strong(self, nullptr);
}

bool LogQueue::push(std::string_view line) {
    return push_owned(std::string(line));
}

bool LogQueue::push_owned(std::string line) {
    size_t pos = enqueue_.load(std::memory_order_relaxed);
    Slot* slot;
    for (;;) {
        slot = &slots_[pos & mask_];
        size_t seq = slot->sequence.load(std::memory_order_acquire);
        intptr_t diff = intptr_t(seq) - intptr_t(pos);
        if (diff == 0) {
            if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                break;
            }
        } else if (diff < 0) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return false;
        } else {
            pos = enqueue_.load(std::memory_order_relaxed);
        }
    }
    if (line.size() > options_.max_line_bytes) {
        line.resize(options_.max_line_bytes);
        line += "...";
    }
    line += '\n';
    slot->line = std::move(line);
    slot->sequence.store(pos + 1, std::memory_order_release);
    return true;
}

bool LogQueue::push_record(const log::Record& record) {
    return push_owned(options_.format == LogFormat::json ? log::format_json(record)
                                                         : log::format_plain(record));
}

size_t LogQueue::queued() const {
    size_t in = enqueue_.load(std::memory_order_relaxed);
    size_t out = dequeue_.load(std::memory_order_relaxed);
    return in > out ? in - out : 0;
}

bool LogQueue::write_all(const iovec* iov_in, int count) {
    iovec iov[1024];
    ZT_ASSERT(count <= 1024);
    for (int i = 0; i < count; ++i) {
        iov[i] = iov_in[i];
    }
    int first = 0;
    int stalls = 0;
    while (first < count) {
        ssize_t n = ::writev(options_.fd, iov + first, count - first);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            // A non-blocking stdout that is full: wait a little, then give up on this batch
            // rather than hang the control thread forever on a reader that went away.
            if (errno == EAGAIN && stalls++ < 50) {
                pollfd pfd{options_.fd, POLLOUT, 0};
                (void)::poll(&pfd, 1, 100);
                continue;
            }
            return false;
        }
        size_t left = size_t(n);
        while (first < count && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (first < count) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return true;
}

size_t LogQueue::flush(size_t max_lines) {
    size_t written = 0;
    iovec iov[1024];
    size_t taken[1024];
    while (written < max_lines) {
        size_t pos = dequeue_.load(std::memory_order_relaxed);
        int count = 0;
        // Collect a batch of consecutive published slots.
        while (size_t(count) < options_.batch_lines && written + size_t(count) < max_lines) {
            Slot& slot = slots_[(pos + size_t(count)) & mask_];
            size_t seq = slot.sequence.load(std::memory_order_acquire);
            if (seq != pos + size_t(count) + 1) {
                break;
            }
            iov[count].iov_base = slot.line.data();
            iov[count].iov_len = slot.line.size();
            taken[count] = pos + size_t(count);
            ++count;
        }
        if (count == 0) {
            break;
        }
        if (!write_all(iov, count)) {
            write_errors_.fetch_add(uint64_t(count), std::memory_order_relaxed);
        }
        for (int i = 0; i < count; ++i) {
            Slot& slot = slots_[taken[i] & mask_];
            // Free the line here rather than keep its capacity: a burst of long lines must not
            // pin memory in every slot for the life of the process.
            std::string().swap(slot.line);
            // Hand the slot back to producers one lap later.
            slot.sequence.store(taken[i] + mask_ + 1, std::memory_order_release);
        }
        dequeue_.store(pos + size_t(count), std::memory_order_relaxed);
        written += size_t(count);
    }
    return written;
}

void LogQueue::install(LogQueue* queue) {
    g_installed.store(queue, std::memory_order_release);
    log::set_sink(&queue_sink);
}

void LogQueue::uninstall() {
    log::set_sink(&log::detail::stderr_sink);
    g_installed.store(nullptr, std::memory_order_release);
}

double LogQueue::read_dropped(const void* queue) {
    return double(static_cast<const LogQueue*>(queue)->dropped());
}

}  // namespace zt::telemetry
