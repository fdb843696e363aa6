// cmd_version.cc implements `ztunnel version`: which build this is and which libraries it runs
// on, in particular which BoringSSL and whether its FIPS mode is on, since an operator choosing a
// FIPS build needs to see that it took effect.

#include <cstdio>

#include <nghttp2/nghttp2.h>
#include <openssl/base.h>
#include <openssl/crypto.h>

#include "src/cli.h"

namespace zt::cli {

int version(int argc, char** argv) {
    (void)argv;
    if (argc > 0) {
        std::fputs("usage: ztunnel version\n", stderr);
        return kExitUsage;
    }
#ifdef ZT_BSSL_VENDORED
    const char* bssl_source = "vendored build (vendor/boringssl-fips)";
#else
    const char* bssl_source = "Debian android-libboringssl";
#endif
    std::printf("ztunnel %s\n", ZT_VERSION);
    std::printf("git revision: %s\n", ZT_GIT_REVISION);
    std::printf("boringssl: %s, API version %d, %s\n", bssl_source, BORINGSSL_API_VERSION,
                OpenSSL_version(OPENSSL_VERSION));
    std::printf("fips mode: %s", FIPS_mode() ? "on" : "off");
    if (FIPS_mode()) {
        std::printf(" (module %s, version %u)", FIPS_module_name(), unsigned(FIPS_version()));
    }
    std::printf("\n");
    std::printf("liburing: %s\n", ZT_LIBURING_VERSION);
    std::printf("nghttp2: %s\n", nghttp2_version(0)->version_str);
    return kExitOk;
}

}  // namespace zt::cli
