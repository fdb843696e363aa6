#pragma once

// The subcommands of the `ztunnel` binary (docs/contract.md §1). `src/main.cc` dispatches on the
// first argument; each command lives in its own file and receives the arguments after its name.
// Commands return the process exit code: 0 success, 1 runtime or config error, 2 usage error.

namespace zt::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

int run(int argc, char** argv);           // src/cmd_run.cc
int check_config(int argc, char** argv);  // src/cmd_check_config.cc
int ca(int argc, char** argv);            // src/cmd_ca.cc
int version(int argc, char** argv);       // src/cmd_version.cc

}  // namespace zt::cli
