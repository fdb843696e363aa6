// main.cc is the entry point of `ztunnel-agent` (docs/contract.md §10): parse the command line and
// environment, print usage or the version, then hand over to run_agent. Exit codes as ztunnel's:
// 0 clean shutdown, 1 start-up failure, 2 usage error.

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "src/agent/agent.h"
#include "src/agent/options.h"

extern char** environ;

int main(int argc, char** argv) {
    std::vector<std::pair<std::string, std::string>> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string text(*entry);
        size_t eq = text.find('=');
        if (eq != std::string::npos) {
            env.emplace_back(text.substr(0, eq), text.substr(eq + 1));
        }
    }
    zt::agent::AgentOptionsError error;
    auto options = zt::agent::parse_agent_options(argc - 1, argv + 1, env, error);
    if (!options) {
        std::fprintf(stderr, "ztunnel-agent: %s\n\n%s", error.message.c_str(),
                     zt::agent::kAgentUsage);
        return 2;
    }
    if (options->help) {
        std::fputs(zt::agent::kAgentUsage, stdout);
        return 0;
    }
    if (options->version) {
        std::printf("ztunnel-agent %s (git %s)\n", ZT_VERSION, ZT_GIT_REVISION);
        return 0;
    }
    return zt::agent::run_agent(*options);
}
