// load.cc reads a config file under its size cap and runs parse + validate + index in one call.
// It must stay free of global state so every caller (CLI, watcher, fuzzer, benchmark) sees the
// same verdict for the same bytes.

#include "src/config/load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <openssl/sha.h>

#include "src/config/lint.h"
#include "src/config/parse.h"
#include "zt/unique_fd.h"

namespace zt::config {

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        return fail_errno(errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
        return fail_errno(errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(Errc::invalid_argument);
    }
    if (size_t(st.st_size) > max_bytes) {
        return fail(Errc::config_too_large);
    }
    std::string out;
    out.resize(size_t(st.st_size) + 1);
    size_t used = 0;
    for (;;) {
        if (used == out.size()) {
            if (out.size() > max_bytes) {
                return fail(Errc::config_too_large);  // It grew while we read it.
            }
            out.resize(std::min(out.size() * 2, max_bytes + 1));
        }
        ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail_errno(errno);
        }
        if (n == 0) {
            break;
        }
        used += size_t(n);
    }
    if (used > max_bytes) {
        return fail(Errc::config_too_large);
    }
    out.resize(used);
    return out;
}

std::string sha256_hex(std::string_view text) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const uint8_t*>(text.data()), text.size(), digest);
    std::string out;
    out.reserve(2 * sizeof digest);
    for (uint8_t b : digest) {
        out.push_back("0123456789abcdef"[b >> 4]);
        out.push_back("0123456789abcdef"[b & 15]);
    }
    return out;
}

LoadResult load_text(std::string_view text) {
    LoadResult result;
    result.bytes = text.size();
    result.sha256 = sha256_hex(text);
    ParseResult parsed = parse(text);
    result.too_deep = parsed.too_deep;
    if (parsed.not_json) {
        result.errors = std::move(parsed.errors);  // Not JSON: there is nothing to cross-check.
        return result;
    }
    // Cross-object checks run even when some objects had errors, so one run reports all of a
    // file's problems; only a file with none at all yields a snapshot.
    state::BuildResult built = state::Snapshot::build(std::move(parsed.config));
    result.errors = std::move(parsed.errors);
    result.errors.insert(result.errors.end(), built.errors.begin(), built.errors.end());
    if (result.errors.empty()) {
        result.warnings = std::move(built.warnings);
        std::vector<std::string> combinations = combination_warnings(*built.snapshot);
        result.warnings.insert(result.warnings.end(), combinations.begin(), combinations.end());
        result.snapshot = std::move(built.snapshot);
    }
    return result;
}

LoadResult load_file(const std::string& path) {
    auto text = read_file(path, kMaxFileBytes);
    if (!text) {
        LoadResult result;
        if (text.error().code == Errc::config_too_large) {
            result.too_large = true;
            result.errors.push_back(path + ": file is larger than the " +
                                    std::to_string(kMaxFileBytes >> 20) + " MiB limit");
        } else if (text.error().code == Errc::invalid_argument) {
            result.errors.push_back(path + ": not a regular file");
        } else {
            result.errors.push_back(path +
                                    ": cannot read: " + std::strerror(text.error().sys_errno));
        }
        return result;
    }
    return load_text(*text);
}

}  // namespace zt::config
