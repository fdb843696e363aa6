// cmd_ca.cc: placeholder until its issue lands. It reports that the command is not built yet
// rather than pretending to work.

#include <cstdio>

#include "src/cli.h"

namespace zt::cli {

int ca(int argc, char** argv) {
    (void)argc;
    (void)argv;
    std::fputs("ztunnel: this command is not implemented yet\n", stderr);
    return kExitError;
}

}  // namespace zt::cli
