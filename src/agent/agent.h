#pragma once

// run_agent is `ztunnel-agent`: two threads. The main thread owns the process-level parts (signals,
// the log writer, the admin server with /ready, /debug and /metrics, the shutdown sequence); the
// agent thread owns the io_uring loop with every control-plane connection (xDS now; the Istio CA
// and ZDS in part 2), the resource store and the config writer. They share readiness, metrics
// and a status board, each thread-safe, and nothing else.

#include "src/agent/options.h"

namespace zt::agent {

// run_agent runs until SIGTERM/SIGINT (or POST /quitquitquit) and returns the exit code: 0 after
// a clean shutdown, 1 when start-up failed (the admin port taken, io_uring refused, the --static
// file invalid), with the cause logged.
int run_agent(const AgentOptions& options);

}  // namespace zt::agent
