// main.cc is the entry point of the `ztunnel` binary: it picks the subcommand named by the first
// argument and hands it the rest (docs/contract.md §1). It holds no logic of its own beyond usage
// text.

#include <cstdio>
#include <cstring>
#include <string_view>

#include "src/cli.h"

namespace {

constexpr const char* kUsage =
        "usage: ztunnel <command> [flags]\n"
        "\n"
        "commands:\n"
        "  run --config FILE [flags]   run the node proxy (see `ztunnel run --help`)\n"
        "  check-config FILE           validate a config file and print a summary\n"
        "  ca init DIR [--trust-domain TD]\n"
        "                              create a local root CA in DIR\n"
        "  ca issue --ca-dir DIR --identity SPIFFE_ID --out DIR [--ttl 24h]\n"
        "                              issue a workload certificate\n"
        "  version                     print version and library information\n"
        "  help                        print this text\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return zt::cli::kExitUsage;
    }
    std::string_view command = argv[1];
    if (command == "help" || command == "--help" || command == "-h") {
        std::fputs(kUsage, stdout);
        return zt::cli::kExitOk;
    }
    if (command == "version" || command == "--version") {
        return zt::cli::version(argc - 2, argv + 2);
    }
    if (command == "run" || command == "proxy") {
        return zt::cli::run(argc - 2, argv + 2);
    }
    if (command == "check-config") {
        return zt::cli::check_config(argc - 2, argv + 2);
    }
    if (command == "ca") {
        return zt::cli::ca(argc - 2, argv + 2);
    }
    std::fprintf(stderr, "unknown command: %s\n\n%s", argv[1], kUsage);
    return zt::cli::kExitUsage;
}
