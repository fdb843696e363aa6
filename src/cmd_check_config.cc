// cmd_check_config.cc is `ztunnel check-config FILE` (docs/contract.md §1): load the file exactly
// as the watcher would, then print a one-line summary and exit 0, or every error with its JSON path
// and exit 1. Warnings and unsupported keys go to stderr either way. It must not start anything.

#include <cstdio>
#include <string>
#include <string_view>

#include "src/cli.h"
#include "src/config/load.h"

namespace zt::cli {

namespace {

constexpr const char* kUsage =
        "usage: ztunnel check-config FILE\n"
        "\n"
        "Parse and validate a config file (docs/contract.md section 2). Prints a one-line summary "
        "and\n"
        "exits 0 when it is valid; prints every error with its JSON path and exits 1 when not.\n";

}  // namespace

int check_config(int argc, char** argv) {
    if (argc == 1 && (std::string_view(argv[0]) == "--help" || std::string_view(argv[0]) == "-h")) {
        std::fputs(kUsage, stdout);
        return kExitOk;
    }
    if (argc != 1 || std::string_view(argv[0]).starts_with("-")) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    const std::string path = argv[0];
    config::LoadResult result = config::load_file(path);
    for (const std::string& warning : result.warnings) {
        std::fprintf(stderr, "warning: %s\n", warning.c_str());
    }
    if (!result.errors.empty()) {
        for (const std::string& error : result.errors) {
            std::fprintf(stderr, "%s\n", error.c_str());
        }
        std::fprintf(stderr, "%s: invalid (%zu error%s)\n", path.c_str(), result.errors.size(),
                     result.errors.size() == 1 ? "" : "s");
        return kExitError;
    }
    const auto& snapshot = *result.snapshot;
    for (const std::string& key : snapshot.config().unsupported) {
        std::fprintf(stderr, "warning: %s is accepted but not implemented yet; it is ignored\n",
                     key.c_str());
    }
    std::printf("%s: ok: %zu workloads, %zu services, %zu policies, %zu pods (sha256 %s)\n",
                path.c_str(), snapshot.workloads().size(), snapshot.services().size(),
                snapshot.policies().size(), snapshot.pods().size(), result.sha256.c_str());
    return kExitOk;
}

}  // namespace zt::cli
