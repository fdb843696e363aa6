#pragma once

// FileComposer keeps ztunnel's config file (docs/contract.md §2) as the agent writes it, one
// rendered line per element, and brings it up to date with what changed: a change of one
// resource re-renders (and later re-parses) the lines it touches, not the whole mesh. The text it
// gives is byte for byte `config::render(compose_config(base, store))` (src/agent/xds_store.h
// defines the content; a test compares the two on random sequences of changes), and `load` is
// `config::load_text`'s verdict on that text.
//
// What a change touches: the resource's own element (keyed as compose_config keys it: workload
// uid, service `namespace/hostname`, policy `namespace/name`, where a `--static` entry wins over
// xDS and the newest xDS entry over older ones), and for a workload the other workloads that
// claim one of its IPs (old or new) on its network, whose kept IPs may change with it. A change
// of the `--static` file's workloads, services or policies rebuilds everything (rare, and what
// every write cost before); the pods (the static file's and ZDS's, a node's worth) are rendered
// on every update.
//
// Validation is `config::IncrementalLoad`'s method (src/config/incremental_load.h says why the
// verdict is check-config's): each line is parsed alone, framed as in the file, once per distinct
// line; the parsed structs of every line then go through `state::Snapshot::build` and
// `combination_warnings`; a line or build that fails falls back to `load_text` on the whole
// text, so a refused file reports exactly what `ztunnel check-config` reports.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/agent/xds_store.h"
#include "src/config/load.h"
#include "src/state/net.h"
#include "src/state/types.h"

namespace zt::agent {

class FileComposer {
public:
    FileComposer() = default;
    FileComposer(const FileComposer&) = delete;
    FileComposer& operator=(const FileComposer&) = delete;

    // update brings the lines up to date with `base` (the `--static` file with the ZDS pods) and
    // `store` (null: none), reading the store's changes since the last update
    // (`XdsStore::take_changes`; the first update, or one with another store, reads everything).
    // `warnings` gets compose_config's warnings for the whole file.
    void update(const state::Config& base, XdsStore* store, std::vector<std::string>& warnings);

    // text returns the file for the last update.
    std::string text();

    // load returns what `config::load_text(text)` returns, where `text` is what the last `text()`
    // returned and `sha256` its digest. Lines already parsed are not parsed again.
    config::LoadResult load(std::string_view text, std::string sha256);

    // Of the last update: the lines rendered. Of the last load: the lines parsed.
    size_t rendered() const { return rendered_; }

    size_t parsed() const { return parsed_; }

    size_t workloads() const { return workloads_.size(); }

    size_t services() const { return services_.size(); }

    size_t policies() const { return policies_.size(); }

    size_t pods() const { return pods_.size(); }

private:
    // Line is one element of the file: its text, and once parsed what parsing it gave (on the
    // heap: it keeps the slots small, and malloc's path for small blocks fast).
    template <class T>
    struct Line {
        std::string text;
        std::unique_ptr<T> parsed;
        std::vector<std::string> unsupported;

        // set replaces the text; a different text forgets the parse.
        void set(std::string fresh);
    };

    // Candidates are the entries that may fill one key: the first `--static` one, and the
    // store's by (sequence, resource name); the static one, else the newest, is chosen.
    template <class T>
    struct Candidates {
        const T* static_item = nullptr;
        std::vector<std::pair<uint64_t, std::string>> xds;

        bool empty() const { return static_item == nullptr && xds.empty(); }

        uint64_t chosen_sequence() const;
    };

    struct WorkloadSlot;

    // Claim is one (network, IP) and the workloads claiming it; the best ranked keeps it.
    struct Claim {
        std::vector<WorkloadSlot*> claimants;
    };

    struct WorkloadSlot {
        const std::string* uid = nullptr;  // The map's key.
        Candidates<state::Workload> candidates;
        IpRank rank{};
        std::vector<state::NetworkAddress> claims;  // Of the chosen workload, as indexed.
        std::vector<std::string> warnings;          // IPs it lost, as compose_config says.
        Line<state::Workload> line;
    };

    template <class T>
    struct Slot {
        Candidates<T> candidates;
        Line<T> line;
    };

    // AddressKey is what one Address resource filled at the last update.
    struct AddressKey {
        bool workload = false;
        std::string key;
    };

    void rebuild(const state::Config& base, XdsStore* store);
    void add_address(const std::string& name);
    void remove_address(const std::string& name);
    void add_policy(const std::string& name);
    void remove_policy(const std::string& name);
    // chosen_address is the chosen one of an Address-backed key's candidates (`field` says
    // which half of the store's entry holds it).
    template <class T>
    const T* chosen_address(const Candidates<T>& candidates,
                            std::optional<T> XdsStore::AddressEntry::*field) const;
    const state::Workload* chosen(const WorkloadSlot& slot) const;
    const state::Service* chosen(const Slot<state::Service>& slot) const;
    const state::Policy* chosen(const Slot<state::Policy>& slot) const;
    // place re-indexes a dirty workload's claims (or drops the slot when nothing fills it),
    // noting the claims it left or took in `touched`.
    void place(std::map<std::string, WorkloadSlot>::iterator it,
               std::vector<state::NetworkAddress>& touched);
    // holder is the workload that keeps `address`: the best ranked of its claimants.
    const WorkloadSlot* holder(const state::NetworkAddress& address) const;
    void render(WorkloadSlot& slot);
    void render_pods(const std::vector<state::Pod>& pods);

    XdsStore* store_ = nullptr;
    bool built_ = false;
    // The base's entries the slots point into (a copy: the caller's base is gone after update).
    std::vector<state::Workload> base_workloads_;
    std::vector<state::Service> base_services_;
    std::vector<state::Policy> base_policies_;

    std::map<std::string, WorkloadSlot> workloads_;
    std::map<std::string, Slot<state::Service>> services_;
    std::map<std::string, Slot<state::Policy>> policies_;
    std::vector<Line<state::Pod>> pods_;
    std::unordered_map<std::string, AddressKey> address_keys_;
    std::unordered_map<state::NetworkAddress, Claim, state::NetworkAddressHash> claims_;
    // Workloads with warnings, by uid (so the warnings come in the file's order).
    std::map<std::string_view, const WorkloadSlot*> warned_;

    // Dirty keys of this update.
    std::vector<std::string> dirty_workloads_, dirty_services_, dirty_policies_;

    size_t rendered_ = 0;
    size_t parsed_ = 0;
};

}  // namespace zt::agent
