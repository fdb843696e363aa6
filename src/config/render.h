#pragma once

// The config writer: `state::Config` structs back into the JSON text of docs/contract.md §2, the
// inverse of `config::parse`. The control agent writes the file with it, so the text is
// deterministic (the same structs always give the same bytes, which makes "content unchanged" a
// byte comparison) and line-oriented (one workload, service, policy or pod per line, so a diff of
// two files shows the resources that changed).

#include <string>
#include <vector>

#include "src/state/types.h"

namespace zt::config {

// render returns the config file text for `config`. Keys come in a fixed order. A key is
// written when `parse` requires it, when a stricter reader of ztunnel's format requires it
// (every key of `locality`, `loadBalancer`, a gateway, an application tunnel, a CIDR VIP, an
// explicit endpoint, a service account match; all six keys of a policy), or when its value
// differs from what `parse` assumes for an absent key; so `parse(render(c))` gives back `c`
// (apart from the order of `unsupported`, which `parse` derives) for every `c` that `parse`
// can produce. Bytes that are not UTF-8 in a string become U+FFFD, so the output is always
// JSON. `config.unsupported` is not written: it is derived, not content.
std::string render(const state::Config& config);

// render_line appends one element exactly as `render` writes its line (no comma, no newline).
void render_line(std::string& text, const state::Workload& workload);
void render_line(std::string& text, const state::Service& service);
void render_line(std::string& text, const state::Policy& policy);
void render_line(std::string& text, const state::Pod& pod);

// RenderedLines are a config's elements, each rendered by `render_line`, in the file's order.
struct RenderedLines {
    std::vector<std::string> workloads, services, policies, pods;
};

// render_lines frames the lines as `render` frames its elements: for the lines of `config`,
// `render_lines(lines) == render(config)`.
std::string render_lines(const RenderedLines& lines);

}  // namespace zt::config
