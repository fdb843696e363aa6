#pragma once

// Loading a config: read the file under the size cap, parse it, build the `Snapshot`, and say
// everything that went wrong. This is what `check-config`, the watcher and the benchmark share;
// it has no state of its own and may run on any thread (the watcher runs it on the control
// thread, never on a worker).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/state/snapshot.h"
#include "zt/result.h"

namespace zt::config {

// LoadResult is one attempt: `snapshot` is set exactly when `errors` is empty. `sha256` is the
// hex digest of the bytes read (empty when the file could not be read).
struct LoadResult {
    std::shared_ptr<const state::Snapshot> snapshot;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    std::string sha256;
    size_t bytes = 0;
    bool too_large = false;  // Rejected by the file size cap.
    bool too_deep = false;   // Rejected by the nesting cap.
};

// read_file reads all of `path` (following symlinks) if it is a regular file of at most
// `max_bytes`. Fails with `Errc::config_too_large` when larger (checked before reading, and
// again while reading in case the file grows), `Errc::sys` with errno otherwise.
Result<std::string> read_file(const std::string& path, size_t max_bytes);

// load_text parses and validates `text` and builds its snapshot.
LoadResult load_text(std::string_view text);

// load_file is `read_file` with the default cap, then `load_text`; a read failure becomes one
// error naming the file.
LoadResult load_file(const std::string& path);

// sha256_hex returns the lowercase hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

}  // namespace zt::config
