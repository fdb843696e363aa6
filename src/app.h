#pragma once

// `run_app` is `ztunnel run`: it builds the process from its parts and runs the control thread
// (docs/design.md "Threads"). The control thread owns the config watcher, the certificate store,
// the admin, metrics and readiness servers, the log writer and the shutdown sequence; N workers own
// the data path. The control thread talks to workers only through the published snapshot and
// their wake-up calls.

#include "src/run_options.h"

namespace zt {

// run_app runs the node proxy until shutdown and returns the process exit code: 0 after a clean
// (graceful or second-signal) shutdown, 1 when start-up failed (io_uring refused, a port taken,
// certificates unusable), with the cause logged.
int run_app(const RunOptions& options);

}  // namespace zt
