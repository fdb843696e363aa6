#pragma once

// The local config parser: JSON text (docs/contract.md §2, ztunnel's `LocalConfig` with camelCase
// keys plus `pods`) into plain `state::Config` structs. It never throws and never recurses on
// input: nesting deeper than `kMaxDepth` and duplicate keys stop the parse, and every other problem
// is collected with its JSON path (`workloads[3].workloadIps[0]: not an IP address: "10.0.0.300"`)
// so one run reports all of them. Only src/config/ sees nlohmann-json; callers see structs.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "src/state/types.h"

namespace zt::config {

// kMaxDepth is the deepest nesting of arrays and objects accepted. A valid file needs 6
// (`policies[].rules[][][].principals[]`); 64 leaves room and keeps recursive code safe.
inline constexpr size_t kMaxDepth = 64;

// kMaxFileBytes is the largest config file read; larger files are rejected before parsing.
inline constexpr size_t kMaxFileBytes = size_t(64) << 20;

// kMaxErrors caps how many errors one file reports; the last entry then says how many more.
inline constexpr size_t kMaxErrors = 1000;

// ParseResult is a parsed file: `errors` is empty exactly when `config` is complete and valid
// at the level of single objects (cross-object checks are `state::Snapshot::build`'s).
struct ParseResult {
    state::Config config;
    std::vector<std::string> errors;
    bool not_json = false;  // The text is not (acceptable) JSON; `config` is empty.
    bool too_deep = false;  // The nesting cap was hit (counted by the watcher).
};

// parse reads `text` as a whole config file. It fails (non-empty `errors`) on a JSON syntax
// error, a byte order mark, nesting deeper than kMaxDepth, a duplicate object key, an unknown
// key, a missing required key, a wrong type, an unknown enum value, a bad IP, CIDR, port or
// `network/ip`, a `subjectAltNames` entry that is not a SPIFFE ID, or a pod netns that is not an
// absolute path.
ParseResult parse(std::string_view text);

// is_spiffe_id is the one place the config checks SPIFFE syntax (`subjectAltNames`); it defers
// to `certs::Identity::parse`, so config and the TLS peer checks agree on what an ID is.
bool is_spiffe_id(std::string_view text);

}  // namespace zt::config
