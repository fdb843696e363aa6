#pragma once

// Assertions, following Envoy's split. `ZT_ASSERT` states an invariant and is compiled out with
// NDEBUG; `ZT_CHECK` guards against continuing with corrupted memory and is always on. Neither is
// ever used on what a peer or the environment sends: those are handled as `zt::Error` values.

#include <cstdio>
#include <cstdlib>

namespace zt::detail {

[[noreturn]] inline void assert_failed(const char* kind, const char* expr, const char* file,
                                       int line) {
    std::fprintf(stderr, "%s failed: %s at %s:%d\n", kind, expr, file, line);
    std::fflush(stderr);
    std::abort();
}

}  // namespace zt::detail

#define ZT_CHECK(expr)                                                          \
    do {                                                                        \
        if (!(expr)) [[unlikely]] {                                             \
            ::zt::detail::assert_failed("ZT_CHECK", #expr, __FILE__, __LINE__); \
        }                                                                       \
    } while (0)

#ifdef NDEBUG
#define ZT_ASSERT(expr)     \
    do {                    \
        (void)sizeof(expr); \
    } while (0)
#else
#define ZT_ASSERT(expr)                                                          \
    do {                                                                         \
        if (!(expr)) [[unlikely]] {                                              \
            ::zt::detail::assert_failed("ZT_ASSERT", #expr, __FILE__, __LINE__); \
        }                                                                        \
    } while (0)
#endif
