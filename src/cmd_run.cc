// cmd_run.cc implements `ztunnel run`: parse the flags and environment (docs/contract.md §1) and
// hand over to the control thread in app.cc. Usage errors print the usage and exit 2.

#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "src/app.h"
#include "src/cli.h"
#include "src/run_options.h"

extern char** environ;

namespace zt::cli {

namespace {

Environment process_environment() {
    Environment env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string text(*entry);
        size_t eq = text.find('=');
        if (eq != std::string::npos) {
            env.emplace_back(text.substr(0, eq), text.substr(eq + 1));
        }
    }
    return env;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) {
        return "localhost";
    }
    return buf;
}

bool host_has_ipv6() {
    return ::access("/proc/net/if_inet6", F_OK) == 0;
}

}  // namespace

int run(int argc, char** argv) {
    RunOptionsError error;
    int cores = int(std::thread::hardware_concurrency());
    auto options = parse_run_options(argc, argv, process_environment(), host_name(),
                                     cores > 0 ? cores : 1, host_has_ipv6(), error);
    if (!options) {
        std::fprintf(stderr, "ztunnel run: %s\n\n%s", error.message.c_str(), kRunUsage);
        return kExitUsage;
    }
    if (options->help) {
        std::fputs(kRunUsage, stdout);
        return kExitOk;
    }
    return run_app(*options);
}

}  // namespace zt::cli
