#pragma once

// The JSON side of `/config_dump` (ecosystem.md §1.3) for everything config owns: the applied
// snapshot rendered as ztunnel renders it (`workloads` sorted by uid, `services` by hostname with
// their endpoints filled in, `policies` by namespace/name), `staticConfig` (the applied file in
// its own schema, so it can be fed back to `check-config`), and `configStatus` (our addition: the
// watcher's counters, last error and unsupported keys). Other modules' sections (`certificates`,
// `config`, `version`, `workloadState`) are passed in as JSON text and embedded. Only this file
// writes JSON, because only src/config/ may include nlohmann-json.

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "src/config/watcher.h"
#include "src/state/snapshot.h"

namespace zt::config {

// DumpSection is one extra top-level key and its JSON text, produced by another module.
using DumpSection = std::pair<std::string_view, std::string_view>;

// dump_json renders `/config_dump`: keys sorted, two-space indent, as ztunnel does. `snapshot`
// may be null (not ready: empty lists). A section whose text is not valid JSON is embedded as
// `{"error": "invalid JSON from <key>"}` rather than breaking the whole dump.
std::string dump_json(const state::Snapshot* snapshot, const ReloadStats& stats,
                      std::string_view config_path, std::span<const DumpSection> sections = {});

// static_config_json renders `config` in the config file's own schema (what `parse` reads), so
// that parse(static_config_json(c)) yields `c` again.
std::string static_config_json(const state::Config& config);

}  // namespace zt::config
