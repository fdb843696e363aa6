// metrics.cc implements the sharded registry: lazy per-shard series, bounded series counts, and
// a scrape that sums shards and renders families in registration order. Nothing here runs per
// packet except `Cell::add`, which lives in the header.

#include "src/telemetry/metrics.h"

#include <algorithm>
#include <map>

#include "zt/assert.h"

namespace zt::telemetry {

namespace {

std::string base_name(std::string name) {
    constexpr std::string_view kTotal = "_total";
    if (name.size() > kTotal.size() &&
        std::string_view(name).substr(name.size() - kTotal.size()) == kTotal) {
        name.resize(name.size() - kTotal.size());
    }
    return name;
}

std::vector<std::string_view> name_views(const std::vector<std::string>& names) {
    return std::vector<std::string_view>(names.begin(), names.end());
}

}  // namespace

std::string encode_key(std::span<const std::string_view> values) {
    // Built for every series lookup (each new connection): size it once.
    size_t total = 0;
    for (std::string_view value : values) {
        total += sizeof(uint32_t) + value.size();
    }
    std::string key;
    key.reserve(total);
    for (std::string_view value : values) {
        uint32_t size = uint32_t(value.size());
        key.append(reinterpret_cast<const char*>(&size), sizeof size);
        key.append(value);
    }
    return key;
}

std::string help_text(const FamilyInfo& info) {
    if (info.stability == Stability::unstable &&
        info.help.find("(unstable)") == std::string::npos) {
        return info.help + " (unstable)";
    }
    return info.help;
}

ShardedFamily::ShardedFamily(FamilyInfo info, MetricType type, size_t shard_count,
                             size_t max_series)
    : info_(std::move(info)), type_(type), shards_(shard_count, max_series) {
    info_.name = base_name(std::move(info_.name));
}

Cell* ShardedFamily::cell(size_t shard, std::span<const std::string_view> label_values) {
    ZT_ASSERT(shard < shards_.shard_count());
    ZT_ASSERT(label_values.size() == info_.label_names.size());
    return &shards_.get(shard, label_values)->cell;
}

uint64_t ShardedFamily::value(std::initializer_list<std::string_view> label_values) const {
    std::vector<std::string> wanted(label_values.begin(), label_values.end());
    uint64_t total = 0;
    shards_.for_each([&](const Series& series) {
        if (series.label_values == wanted) {
            total += series.cell.load();
        }
    });
    return total;
}

void ShardedFamily::render(std::string& out, Format format) const {
    append_family_header(out, format, info_.name, help_text(info_), type_);
    // Sum the shards per series; std::map keeps the output sorted by label values.
    std::map<std::vector<std::string>, uint64_t> merged;
    shards_.for_each(
            [&](const Series& series) { merged[series.label_values] += series.cell.load(); });
    std::string sample = info_.name;
    if (type_ == MetricType::counter) {
        sample += "_total";
    }
    auto names = name_views(info_.label_names);
    for (const auto& [values, sum] : merged) {
        std::string value =
                type_ == MetricType::counter ? std::to_string(sum) : std::to_string(int64_t(sum));
        append_sample(out, sample, names, values, value);
    }
}

void GaugeFamily::set(std::initializer_list<std::string_view> label_values, double value) {
    ZT_ASSERT(label_values.size() == info_.label_names.size());
    std::vector<std::string> values(label_values.begin(), label_values.end());
    std::lock_guard lock(mutex_);
    for (auto& entry : series_) {
        if (entry.first == values) {
            entry.second = value;
            return;
        }
    }
    series_.emplace_back(std::move(values), value);
}

double GaugeFamily::get(std::initializer_list<std::string_view> label_values) const {
    std::vector<std::string> values(label_values.begin(), label_values.end());
    std::lock_guard lock(mutex_);
    for (const auto& entry : series_) {
        if (entry.first == values) {
            return entry.second;
        }
    }
    return 0;
}

void GaugeFamily::render(std::string& out, Format format) const {
    append_family_header(out, format, info_.name, help_text(info_), MetricType::gauge);
    std::vector<std::pair<std::vector<std::string>, double>> sorted;
    {
        std::lock_guard lock(mutex_);
        sorted = series_;
    }
    std::sort(sorted.begin(), sorted.end());
    auto names = name_views(info_.label_names);
    for (const auto& [values, value] : sorted) {
        append_sample(out, info_.name, names, values, format_value(value));
    }
}

void CallbackFamily::render(std::string& out, Format format) const {
    std::string name = base_name(info_.name);
    append_family_header(out, format, name, help_text(info_), type_);
    if (type_ == MetricType::counter) {
        name += "_total";
    }
    append_sample(out, name, {}, {}, format_value(read_(context_)));
}

Registry::Registry(size_t shard_count, RegistryLimits limits)
    : shard_count_(shard_count), limits_(limits) {
    ZT_CHECK(shard_count > 0);
}

ShardedFamily& Registry::counter(FamilyInfo info) {
    auto& family = add(std::make_unique<ShardedFamily>(std::move(info), MetricType::counter,
                                                       shard_count_, limits_.max_series_per_shard));
    std::lock_guard lock(mutex_);
    sharded_.push_back(&family);
    return family;
}

ShardedFamily& Registry::up_down_gauge(FamilyInfo info) {
    auto& family = add(std::make_unique<ShardedFamily>(std::move(info), MetricType::gauge,
                                                       shard_count_, limits_.max_series_per_shard));
    std::lock_guard lock(mutex_);
    sharded_.push_back(&family);
    return family;
}

GaugeFamily& Registry::gauge(FamilyInfo info) {
    return add(std::make_unique<GaugeFamily>(std::move(info)));
}

void Registry::callback(FamilyInfo info, MetricType type, CallbackFamily::Read read,
                        const void* context) {
    add(std::make_unique<CallbackFamily>(std::move(info), type, read, context));
}

std::string Registry::render(Format format) const {
    std::string out;
    out.reserve(16 * 1024);
    std::lock_guard lock(mutex_);
    for (const auto& family : families_) {
        family->render(out, format);
    }
    // The series limit is itself a limit, so hitting it is counted where operators look.
    std::vector<std::pair<std::string, uint64_t>> overflows;
    for (const ShardedFamily* family : sharded_) {
        uint64_t count = family->overflow_count();
        if (count > 0) {
            overflows.emplace_back(family->info().name, count);
        }
    }
    if (!overflows.empty()) {
        append_family_header(out, format, "ztunnel_metric_series_overflow",
                             "Counts not recorded because a metric reached its series limit "
                             "(unstable)",
                             MetricType::counter);
        std::string_view names[] = {"metric"};
        for (const auto& [name, count] : overflows) {
            std::string values[] = {name};
            append_sample(out, "ztunnel_metric_series_overflow_total", names, values,
                          std::to_string(count));
        }
    }
    finish(out, format);
    return out;
}

}  // namespace zt::telemetry
