#pragma once

// The metrics registry. Counting on the data path costs no lock and no shared atomic: every
// series has one cell per shard (one shard per worker thread, plus one for the control thread),
// a shard's cells are written only by the thread that owns the shard, and the scrape sums the
// shards. A worker looks a label set up once per connection (`ShardedFamily::cell`) and then
// counts through the returned pointer with a relaxed load and store, which compiles to a plain
// add: no lock prefix, no cache line shared with another worker.
//
// Families render in registration order, series sorted by label values, so a scrape is
// deterministic. HELP of a family Istio does not define ends with `(unstable)` (docs/contract.md
// §7).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/telemetry/exposition.h"

namespace zt::telemetry {

// Stability says whether Istio defines the metric (`stable`) or it is ours or marked unstable by
// ztunnel (`unstable`, whose HELP gets ` (unstable)`).
enum class Stability : uint8_t { stable, unstable };

// Cell is one series' value in one shard. Only the shard's owning thread may call `add`; any
// thread may `load`. The relaxed load-then-store is deliberate: with one writer it is exact, and
// it avoids the locked read-modify-write a `fetch_add` would cost on every packet.
class Cell {
public:
    // add adds `delta` (wrapping; a gauge subtracts by adding the two's complement).
    void add(uint64_t delta) {
        value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    }

    void increment() { add(1); }

    uint64_t load() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

// encode_key turns label values into the map key of a series: each value length-prefixed, so no
// value can forge another series' key.
std::string encode_key(std::span<const std::string_view> values);

// SeriesShards is the per-shard store of a family's series (`Series` must have a
// `std::vector<std::string> label_values` member): a hash map per shard written only by the
// shard's owner thread, a bound on its size, and a discard series for what does not fit. The
// owner's lookups of existing series take no lock; inserts take the shard's lock, which is all
// the scraper's `for_each` contends with.
template <class Series>
class SeriesShards {
public:
    SeriesShards(size_t shard_count, size_t max_series)
        : shards_(new Shard[shard_count]), shard_count_(shard_count), max_series_(max_series) {}

    // get returns the series `values` of `shard`, creating it, or the shard's discard series
    // (counting an overflow) when the shard is full. Owner thread of `shard` only; the pointer
    // lives as long as this object.
    Series* get(size_t shard, std::span<const std::string_view> values) {
        Shard& s = shards_[shard];
        std::string key = encode_key(values);
        auto found = s.series.find(key);
        if (found != s.series.end()) {
            return found->second.get();
        }
        if (s.series.size() >= max_series_) {
            s.overflow.increment();
            return &s.discard;
        }
        // Only a new series copies its label values; a hit costs the key alone.
        auto series = std::make_unique<Series>();
        series->label_values.assign(values.begin(), values.end());
        Series* result = series.get();
        std::lock_guard lock(s.mutex);
        s.series.emplace(std::move(key), std::move(series));
        return result;
    }

    // discard returns `shard`'s discard series (never rendered).
    Series* discard(size_t shard) { return &shards_[shard].discard; }

    // for_each calls `fn(const Series&)` for every series of every shard, under each shard's
    // lock. Any thread.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (size_t i = 0; i < shard_count_; ++i) {
            std::lock_guard lock(shards_[i].mutex);
            for (const auto& entry : shards_[i].series) {
                fn(*entry.second);
            }
        }
    }

    // overflow_count sums, over shards, the `get` calls that found their shard full.
    uint64_t overflow_count() const {
        uint64_t total = 0;
        for (size_t i = 0; i < shard_count_; ++i) {
            total += shards_[i].overflow.load();
        }
        return total;
    }

    size_t shard_count() const { return shard_count_; }

private:
    // Shard is aligned so that two workers' shard headers never share a cache line.
    struct alignas(64) Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, std::unique_ptr<Series>> series;
        Series discard;
        Cell overflow;
    };

    std::unique_ptr<Shard[]> shards_;
    size_t shard_count_;
    size_t max_series_;
};

// Family is one metric family as the registry renders it.
class Family {
public:
    virtual ~Family() = default;

    // render appends this family (HELP, TYPE, samples) to `out`.
    virtual void render(std::string& out, Format format) const = 0;
};

// FamilyInfo names a family: base `name` (without `_total`), HELP text, and label names in
// output order.
struct FamilyInfo {
    std::string name;
    std::string help;
    std::vector<std::string> label_names;
    Stability stability = Stability::stable;
};

// ShardedFamily is a counter (or an up-down gauge) family whose series are counted per shard.
// Series are created lazily by the first `cell` call for a label set, like ztunnel's
// `get_or_create`. Each shard holds at most `max_series` series; past that `cell` returns the
// shard's discard cell (never rendered) and counts the overflow, so a flood of distinct label
// values cannot grow memory without bound.
class ShardedFamily final : public Family {
public:
    ShardedFamily(FamilyInfo info, MetricType type, size_t shard_count, size_t max_series);

    // cell returns the cell of the series `label_values` (one per label name, in order) in
    // `shard`. The pointer stays valid as long as the family. Only the thread that owns `shard`
    // may call this and count through the result.
    Cell* cell(size_t shard, std::span<const std::string_view> label_values);

    Cell* cell(size_t shard, std::initializer_list<std::string_view> label_values) {
        return cell(shard,
                    std::span<const std::string_view>(label_values.begin(), label_values.size()));
    }

    // overflow_count returns how many `cell` calls found their shard full, summed over shards.
    uint64_t overflow_count() const { return shards_.overflow_count(); }

    // value returns the sum over shards of the series `label_values`, 0 when it does not exist.
    // Meant for tests and for the control thread; it takes each shard's lock.
    uint64_t value(std::initializer_list<std::string_view> label_values) const;

    const FamilyInfo& info() const { return info_; }

    void render(std::string& out, Format format) const override;

private:
    // Series is cache-line aligned so two workers' cells never share a line.
    struct alignas(64) Series {
        std::vector<std::string> label_values;
        Cell cell;
    };

    FamilyInfo info_;
    MetricType type_;
    SeriesShards<Series> shards_;
};

// GaugeFamily is a gauge family set from the control thread (`ztunnel_pods`, timestamps). It
// takes a lock on every `set`, which is fine off the data path.
class GaugeFamily final : public Family {
public:
    explicit GaugeFamily(FamilyInfo info) : info_(std::move(info)) {}

    // set sets the series `label_values` to `value`, creating it if needed.
    void set(std::initializer_list<std::string_view> label_values, double value);

    // get returns the series' value, or 0 when it was never set.
    double get(std::initializer_list<std::string_view> label_values) const;

    void render(std::string& out, Format format) const override;

private:
    FamilyInfo info_;
    mutable std::mutex mutex_;
    std::vector<std::pair<std::vector<std::string>, double>> series_;
};

// CallbackFamily computes its one unlabelled sample at scrape time by calling `read(context)`,
// for values that live elsewhere (open fds, a queue's drop counter). `read` runs on the scraping
// thread and must be thread-safe.
class CallbackFamily final : public Family {
public:
    using Read = double (*)(const void* context);

    CallbackFamily(FamilyInfo info, MetricType type, Read read, const void* context)
        : info_(std::move(info)), type_(type), read_(read), context_(context) {}

    void render(std::string& out, Format format) const override;

private:
    FamilyInfo info_;
    MetricType type_;
    Read read_;
    const void* context_;
};

// RegistryLimits bounds a registry's memory.
struct RegistryLimits {
    size_t max_series_per_shard = 4096;  // per family and shard; past it, counts are discarded
};

// Registry owns every family and renders a scrape. Register families at startup, before the
// workers run; `render` may then run concurrently with counting.
class Registry {
public:
    // Registry makes a registry for `shard_count` counting threads (workers + control).
    explicit Registry(size_t shard_count, RegistryLimits limits = {});

    size_t shard_count() const { return shard_count_; }

    // counter registers a sharded counter family; the returned reference lives as long as the
    // registry. A `name` ending in `_total` has the suffix removed (it is added on output).
    ShardedFamily& counter(FamilyInfo info);

    // up_down_gauge registers a sharded gauge family (workers add and subtract).
    ShardedFamily& up_down_gauge(FamilyInfo info);

    // gauge registers a gauge family set from the control thread.
    GaugeFamily& gauge(FamilyInfo info);

    // callback registers a family whose single value is read at scrape time.
    void callback(FamilyInfo info, MetricType type, CallbackFamily::Read read, const void* context);

    // add takes ownership of a custom family (the traffic metrics) and renders it in order.
    template <class T>
    T& add(std::unique_ptr<T> family) {
        T& ref = *family;
        std::lock_guard lock(mutex_);
        families_.push_back(std::move(family));
        return ref;
    }

    // render returns the whole scrape in `format`. Series dropped at a family's series limit are
    // reported in `ztunnel_metric_series_overflow_total{metric}`.
    std::string render(Format format) const;

private:
    size_t shard_count_;
    RegistryLimits limits_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Family>> families_;
    std::vector<ShardedFamily*> sharded_;
};

// help_text returns `help` with ` (unstable)` appended for unstable families.
std::string help_text(const FamilyInfo& info);

}  // namespace zt::telemetry
