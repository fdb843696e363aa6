// file_composer.cc keeps the agent's config file as one rendered line per element and, on each
// update, re-renders only the elements the store's changes touched: a changed resource's own
// key, and the workloads sharing one of its IPs. The file's order (by key) is the maps' order;
// the frame is `config::render_lines`. Validation parses each line once and builds the snapshot
// from the parsed structs (the reasoning is in file_composer.h).

#include "src/agent/file_composer.h"

#include <algorithm>
#include <utility>

#include "src/config/incremental_load.h"
#include "src/config/lint.h"
#include "src/config/parse.h"
#include "src/config/render.h"
#include "src/state/snapshot.h"
#include "zt/assert.h"

namespace zt::agent {

namespace {

constexpr uint64_t kStatic = UINT64_MAX;

template <class T>
std::string line_of(const T& item) {
    std::string text;
    config::render_line(text, item);
    return text;
}

// parse_line parses one line framed as the file frames it (at its depth, in its section); false
// when it has errors.
template <class T>
bool parse_line(std::string_view section, const std::string& line, std::unique_ptr<T>& parsed,
                std::vector<std::string>& unsupported) {
    std::string framed;
    framed.reserve(line.size() + section.size() + 12);
    framed.append("{\"");
    framed.append(section);
    framed.append("\": [\n");
    framed.append(line);
    framed.append("\n]}");
    config::ParseResult result = config::parse(framed);
    std::vector<T>& items = config::section_of(result.config, static_cast<const T*>(nullptr));
    if (!result.errors.empty() || items.size() != 1) {
        return false;
    }
    parsed = std::make_unique<T>(std::move(items.front()));
    unsupported = std::move(result.config.unsupported);
    return true;
}

void sort_unique(std::vector<std::string>& keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}

}  // namespace

template <class T>
void FileComposer::Line<T>::set(std::string fresh) {
    if (fresh != text) {
        text = std::move(fresh);
        parsed.reset();
        unsupported.clear();
    }
}

template <class T>
uint64_t FileComposer::Candidates<T>::chosen_sequence() const {
    if (static_item != nullptr) {
        return kStatic;
    }
    uint64_t newest = 0;
    for (const auto& [sequence, name] : xds) {
        newest = std::max(newest, sequence);
    }
    return newest;
}

template <class T>
const T* FileComposer::chosen_address(const Candidates<T>& candidates,
                                      std::optional<T> XdsStore::AddressEntry::*field) const {
    if (candidates.static_item != nullptr) {
        return candidates.static_item;
    }
    uint64_t newest = candidates.chosen_sequence();
    for (const auto& [sequence, name] : candidates.xds) {
        if (sequence == newest) {
            auto it = store_->address_entries().find(name);
            ZT_CHECK(it != store_->address_entries().end() && (it->second.*field).has_value());
            return &*(it->second.*field);
        }
    }
    ZT_CHECK(false);
    return nullptr;
}

const state::Workload* FileComposer::chosen(const WorkloadSlot& slot) const {
    return chosen_address(slot.candidates, &XdsStore::AddressEntry::workload);
}

const state::Service* FileComposer::chosen(const Slot<state::Service>& slot) const {
    return chosen_address(slot.candidates, &XdsStore::AddressEntry::service);
}

const state::Policy* FileComposer::chosen(const Slot<state::Policy>& slot) const {
    if (slot.candidates.static_item != nullptr) {
        return slot.candidates.static_item;
    }
    // The store keys policies by namespace/name: one xDS candidate per key.
    ZT_CHECK(slot.candidates.xds.size() == 1);
    auto it = store_->policy_entries().find(slot.candidates.xds.front().second);
    ZT_CHECK(it != store_->policy_entries().end());
    return &it->second.policy;
}

void FileComposer::rebuild(const state::Config& base, XdsStore* store) {
    workloads_.clear();
    services_.clear();
    policies_.clear();
    address_keys_.clear();
    claims_.clear();
    warned_.clear();
    dirty_workloads_.clear();
    dirty_services_.clear();
    dirty_policies_.clear();
    base_workloads_ = base.workloads;
    base_services_ = base.services;
    base_policies_ = base.policies;
    store_ = store;
    built_ = true;
    // The first static entry of a key wins over later ones and over every xDS entry.
    for (const state::Workload& w : base_workloads_) {
        auto [it, fresh] = workloads_.try_emplace(w.uid);
        if (fresh) {
            it->second.uid = &it->first;
            it->second.candidates.static_item = &w;
            dirty_workloads_.push_back(w.uid);
        }
    }
    for (const state::Service& svc : base_services_) {
        auto [it, fresh] = services_.try_emplace(svc.key().to_string());
        if (fresh) {
            it->second.candidates.static_item = &svc;
            dirty_services_.push_back(it->first);
        }
    }
    for (const state::Policy& p : base_policies_) {
        auto [it, fresh] = policies_.try_emplace(p.key());
        if (fresh) {
            it->second.candidates.static_item = &p;
            dirty_policies_.push_back(it->first);
        }
    }
    if (store_ != nullptr) {
        (void)store_->take_changes();  // Everything is read below.
        for (const auto& [name, entry] : store_->address_entries()) {
            add_address(name);
        }
        for (const auto& [name, entry] : store_->policy_entries()) {
            add_policy(name);
        }
    }
}

void FileComposer::add_address(const std::string& name) {
    auto found = store_->address_entries().find(name);
    if (found == store_->address_entries().end()) {
        return;
    }
    const XdsStore::AddressEntry& entry = found->second;
    if (entry.workload) {
        auto [it, fresh] = workloads_.try_emplace(entry.workload->uid);
        if (fresh) {
            it->second.uid = &it->first;
        }
        it->second.candidates.xds.emplace_back(entry.sequence, name);
        dirty_workloads_.push_back(it->first);
        address_keys_[name] = AddressKey{true, it->first};
    } else if (entry.service) {
        auto [it, fresh] = services_.try_emplace(entry.service->key().to_string());
        it->second.candidates.xds.emplace_back(entry.sequence, name);
        dirty_services_.push_back(it->first);
        address_keys_[name] = AddressKey{false, it->first};
    }
}

void FileComposer::remove_address(const std::string& name) {
    auto found = address_keys_.find(name);
    if (found == address_keys_.end()) {
        return;
    }
    auto forget = [&name](auto& xds) {
        xds.erase(
                std::remove_if(xds.begin(), xds.end(),
                               [&name](const auto& candidate) { return candidate.second == name; }),
                xds.end());
    };
    const AddressKey& key = found->second;
    if (key.workload) {
        auto it = workloads_.find(key.key);
        ZT_CHECK(it != workloads_.end());
        forget(it->second.candidates.xds);
        dirty_workloads_.push_back(key.key);
    } else {
        auto it = services_.find(key.key);
        ZT_CHECK(it != services_.end());
        forget(it->second.candidates.xds);
        dirty_services_.push_back(key.key);
    }
    address_keys_.erase(found);
}

void FileComposer::add_policy(const std::string& name) {
    auto found = store_->policy_entries().find(name);
    if (found == store_->policy_entries().end()) {
        return;
    }
    // The store checked that the resource name is the policy's namespace/name.
    auto [it, fresh] = policies_.try_emplace(name);
    it->second.candidates.xds.emplace_back(found->second.sequence, name);
    dirty_policies_.push_back(name);
}

void FileComposer::remove_policy(const std::string& name) {
    auto it = policies_.find(name);
    if (it == policies_.end()) {
        return;
    }
    auto& xds = it->second.candidates.xds;
    xds.erase(std::remove_if(xds.begin(), xds.end(),
                             [&name](const auto& candidate) { return candidate.second == name; }),
              xds.end());
    dirty_policies_.push_back(name);
}

void FileComposer::place(std::map<std::string, WorkloadSlot>::iterator it,
                         std::vector<state::NetworkAddress>& touched) {
    WorkloadSlot& slot = it->second;
    for (const state::NetworkAddress& address : slot.claims) {
        auto claim = claims_.find(address);
        ZT_CHECK(claim != claims_.end());
        auto& claimants = claim->second.claimants;
        claimants.erase(std::remove(claimants.begin(), claimants.end(), &slot), claimants.end());
        touched.push_back(address);
    }
    slot.claims.clear();
    if (slot.candidates.empty()) {
        warned_.erase(*slot.uid);
        workloads_.erase(it);
        return;
    }
    const state::Workload& w = *chosen(slot);
    slot.rank = ip_rank(w, slot.candidates.chosen_sequence());
    if (w.network_mode == state::NetworkMode::host_network) {
        return;  // Never indexed by IP (ztunnel, and the config's own check).
    }
    for (const state::IpAddr& ip : w.workload_ips) {
        state::NetworkAddress address{w.network, ip};
        if (std::find(slot.claims.begin(), slot.claims.end(), address) != slot.claims.end()) {
            continue;
        }
        claims_[address].claimants.push_back(&slot);
        slot.claims.push_back(address);
        touched.push_back(std::move(address));
    }
}

const FileComposer::WorkloadSlot* FileComposer::holder(const state::NetworkAddress& address) const {
    auto claim = claims_.find(address);
    ZT_CHECK(claim != claims_.end() && !claim->second.claimants.empty());
    // compose_config walks the workloads by uid and hands an IP over only to a strictly better
    // rank: the best rank keeps it, the smallest uid among equals.
    const WorkloadSlot* best = nullptr;
    for (const WorkloadSlot* slot : claim->second.claimants) {
        if (best == nullptr || slot->rank > best->rank ||
            (slot->rank == best->rank && *slot->uid < *best->uid)) {
            best = slot;
        }
    }
    return best;
}

void FileComposer::render(WorkloadSlot& slot) {
    const state::Workload& w = *chosen(slot);
    slot.warnings.clear();
    rendered_++;
    if (w.network_mode == state::NetworkMode::host_network || w.workload_ips.empty()) {
        slot.line.set(line_of(w));
        warned_.erase(*slot.uid);
        return;
    }
    std::vector<state::IpAddr> kept;
    kept.reserve(w.workload_ips.size());
    for (const state::IpAddr& ip : w.workload_ips) {
        const WorkloadSlot* keeper = holder(state::NetworkAddress{w.network, ip});
        if (keeper == &slot) {
            if (std::find(kept.begin(), kept.end(), ip) == kept.end()) {
                kept.push_back(ip);
            }
        } else {
            slot.warnings.push_back(ip_taken_warning(w, ip, *keeper->uid));
        }
    }
    if (kept == w.workload_ips) {
        slot.line.set(line_of(w));
    } else {
        state::Workload adjusted = w;
        adjusted.workload_ips = std::move(kept);
        slot.line.set(line_of(adjusted));
    }
    if (slot.warnings.empty()) {
        warned_.erase(*slot.uid);
    } else {
        warned_[*slot.uid] = &slot;
    }
}

void FileComposer::render_pods(const std::vector<state::Pod>& pods) {
    // As compose_config orders them.
    std::vector<state::Pod> sorted = pods;
    std::sort(sorted.begin(), sorted.end(),
              [](const state::Pod& a, const state::Pod& b) { return a.uid < b.uid; });
    // A pod's line usually stays: keep its parse.
    std::unordered_map<std::string, Line<state::Pod>> old;
    old.reserve(pods_.size());
    for (Line<state::Pod>& line : pods_) {
        std::string text = line.text;
        old.emplace(std::move(text), std::move(line));
    }
    pods_.clear();
    pods_.reserve(sorted.size());
    for (const state::Pod& pod : sorted) {
        std::string text = line_of(pod);
        if (auto it = old.find(text); it != old.end() && it->second.parsed) {
            pods_.push_back(std::move(it->second));
        } else {
            pods_.emplace_back();
            pods_.back().set(std::move(text));
        }
    }
}

void FileComposer::update(const state::Config& base, XdsStore* store,
                          std::vector<std::string>& warnings) {
    rendered_ = 0;
    if (!built_ || store != store_ || base.workloads != base_workloads_ ||
        base.services != base_services_ || base.policies != base_policies_) {
        rebuild(base, store);
    } else if (store_ != nullptr) {
        XdsStore::Changes changes = store_->take_changes();
        // Forget what a resource filled, then file it again where it is now (its key may
        // have changed).
        for (const std::string& name : changes.addresses) {
            remove_address(name);
            add_address(name);
        }
        for (const std::string& name : changes.policies) {
            remove_policy(name);
            add_policy(name);
        }
    }

    // Workloads: re-index the dirty ones' IPs, then render them and every workload sharing an
    // IP they left or took.
    sort_unique(dirty_workloads_);
    std::vector<state::NetworkAddress> touched;
    std::vector<WorkloadSlot*> to_render;
    for (const std::string& uid : dirty_workloads_) {
        auto it = workloads_.find(uid);
        if (it == workloads_.end()) {
            continue;
        }
        place(it, touched);
    }
    for (const std::string& uid : dirty_workloads_) {
        if (auto it = workloads_.find(uid); it != workloads_.end()) {
            to_render.push_back(&it->second);
        }
    }
    for (const state::NetworkAddress& address : touched) {
        auto claim = claims_.find(address);
        if (claim == claims_.end()) {
            continue;
        }
        if (claim->second.claimants.empty()) {
            claims_.erase(claim);
            continue;
        }
        to_render.insert(to_render.end(), claim->second.claimants.begin(),
                         claim->second.claimants.end());
    }
    std::sort(to_render.begin(), to_render.end());
    to_render.erase(std::unique(to_render.begin(), to_render.end()), to_render.end());
    for (WorkloadSlot* slot : to_render) {
        render(*slot);
    }

    auto refresh = [this](auto& slots, std::vector<std::string>& dirty) {
        sort_unique(dirty);
        for (const std::string& key : dirty) {
            auto it = slots.find(key);
            if (it == slots.end()) {
                continue;
            }
            if (it->second.candidates.empty()) {
                slots.erase(it);
                continue;
            }
            it->second.line.set(line_of(*chosen(it->second)));
            rendered_++;
        }
        dirty.clear();
    };
    refresh(services_, dirty_services_);
    refresh(policies_, dirty_policies_);
    dirty_workloads_.clear();
    render_pods(base.pods);

    for (const auto& [uid, slot] : warned_) {
        warnings.insert(warnings.end(), slot->warnings.begin(), slot->warnings.end());
    }
}

std::string FileComposer::text() {
    // The lines move into render_lines' frame and back: no copy of the mesh but the file's.
    config::RenderedLines lines;
    lines.workloads.reserve(workloads_.size());
    lines.services.reserve(services_.size());
    lines.policies.reserve(policies_.size());
    lines.pods.reserve(pods_.size());
    for (auto& [uid, slot] : workloads_) {
        lines.workloads.push_back(std::move(slot.line.text));
    }
    for (auto& [key, slot] : services_) {
        lines.services.push_back(std::move(slot.line.text));
    }
    for (auto& [key, slot] : policies_) {
        lines.policies.push_back(std::move(slot.line.text));
    }
    for (Line<state::Pod>& line : pods_) {
        lines.pods.push_back(std::move(line.text));
    }
    std::string text = config::render_lines(lines);
    size_t i = 0;
    for (auto& [uid, slot] : workloads_) {
        slot.line.text = std::move(lines.workloads[i++]);
    }
    i = 0;
    for (auto& [key, slot] : services_) {
        slot.line.text = std::move(lines.services[i++]);
    }
    i = 0;
    for (auto& [key, slot] : policies_) {
        slot.line.text = std::move(lines.policies[i++]);
    }
    i = 0;
    for (Line<state::Pod>& line : pods_) {
        line.text = std::move(lines.pods[i++]);
    }
    return text;
}

config::LoadResult FileComposer::load(std::string_view text, std::string sha256) {
    parsed_ = 0;
    state::Config config;
    config.workloads.reserve(workloads_.size());
    config.services.reserve(services_.size());
    config.policies.reserve(policies_.size());
    config.pods.reserve(pods_.size());
    auto take = [&](auto& line, std::string_view section, auto& out) {
        if (!line.parsed) {
            parsed_++;
            if (!parse_line(section, line.text, line.parsed, line.unsupported)) {
                return false;
            }
        }
        out.push_back(*line.parsed);
        config::add_unsupported(line.unsupported, config.unsupported);
        return true;
    };
    bool clean = true;
    for (auto& [uid, slot] : workloads_) {
        clean = clean && take(slot.line, "workloads", config.workloads);
    }
    for (auto& [key, slot] : services_) {
        clean = clean && take(slot.line, "services", config.services);
    }
    for (auto& [key, slot] : policies_) {
        clean = clean && take(slot.line, "policies", config.policies);
    }
    for (Line<state::Pod>& line : pods_) {
        clean = clean && take(line, "pods", config.pods);
    }
    if (!clean) {
        return config::load_text(text);  // Every error, with its path in the whole file.
    }
    state::BuildResult built = state::Snapshot::build(std::move(config));
    config::LoadResult result;
    result.bytes = text.size();
    result.sha256 = std::move(sha256);
    result.errors = std::move(built.errors);
    if (result.errors.empty()) {
        result.warnings = std::move(built.warnings);
        std::vector<std::string> combinations = config::combination_warnings(*built.snapshot);
        result.warnings.insert(result.warnings.end(), combinations.begin(), combinations.end());
        result.snapshot = std::move(built.snapshot);
    }
    return result;
}

}  // namespace zt::agent
