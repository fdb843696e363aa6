// cmd_ca.cc implements `ztunnel ca init` and `ztunnel ca issue` (docs/contract.md §1): a local root
// CA on disk and workload certificates signed by it, for demos, tests and local-CA mode. Keys are
// written with mode 0600 through a temporary file and a rename, so a reader never sees half a
// key; an existing CA key is never overwritten.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certs/identity.h"
#include "certs/issue.h"
#include "certs/pem.h"
#include "src/cli.h"
#include "zt/clock.h"
#include "zt/duration.h"
#include "zt/unique_fd.h"

namespace zt::cli {
namespace {

constexpr const char* kCaUsage =
        "usage: ztunnel ca init DIR [--trust-domain TD]\n"
        "       ztunnel ca issue --ca-dir DIR --identity SPIFFE_ID --out DIR [--ttl 24h]\n"
        "\n"
        "init   create a root CA (ECDSA P-256, 10 years): DIR/ca-cert.pem, DIR/ca-key.pem (0600),\n"
        "       DIR/root-cert.pem. The trust domain defaults to cluster.local.\n"
        "issue  write OUT/cert-chain.pem and OUT/key.pem (0600) for SPIFFE_ID\n"
        "       (spiffe://<td>/ns/<ns>/sa/<sa>), signed by the CA in --ca-dir.\n";

int usage_error(const char* what, std::string_view arg = "") {
    std::string text = std::string(what) + std::string(arg);
    std::fprintf(stderr, "ztunnel ca: %s\n\n%s", text.c_str(), kCaUsage);
    return kExitUsage;
}

int runtime_error(const std::string& what) {
    std::fprintf(stderr, "ztunnel ca: %s\n", what.c_str());
    return kExitError;
}

// Flags holds `--name value` / `--name=value` pairs and positional words.
struct Flags {
    std::optional<std::string> trust_domain, ca_dir, identity, out, ttl;
    std::vector<std::string> positional;
    bool help = false;
};

// parse_flags reads `argv`; returns the unknown or incomplete flag's text on a usage error.
std::optional<std::string> parse_flags(int argc, char** argv, Flags& flags) {
    for (int i = 0; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            flags.help = true;
            continue;
        }
        if (!arg.starts_with("--")) {
            flags.positional.emplace_back(arg);
            continue;
        }
        std::string_view name = arg.substr(2);
        std::optional<std::string> value;
        if (size_t eq = name.find('='); eq != std::string_view::npos) {
            value = std::string(name.substr(eq + 1));
            name = name.substr(0, eq);
        }
        std::optional<std::string>* slot = nullptr;
        if (name == "trust-domain") {
            slot = &flags.trust_domain;
        } else if (name == "ca-dir") {
            slot = &flags.ca_dir;
        } else if (name == "identity") {
            slot = &flags.identity;
        } else if (name == "out") {
            slot = &flags.out;
        } else if (name == "ttl") {
            slot = &flags.ttl;
        } else {
            return std::string(arg);
        }
        if (!value) {
            if (i + 1 >= argc) {
                return std::string(arg);
            }
            value = std::string(argv[++i]);
        }
        *slot = std::move(value);
    }
    return std::nullopt;
}

// write_file replaces `path` with `text`, mode `mode` exactly (umask does not apply), through
// `path.tmp` and a rename.
bool write_file(const std::string& path, const std::string& text, mode_t mode, std::string& err) {
    std::string tmp = path + ".tmp";
    ::unlink(tmp.c_str());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd || ::fchmod(fd.get(), mode) != 0) {
        err = tmp + ": " + std::strerror(errno);
        return false;
    }
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            err = tmp + ": " + std::strerror(errno);
            ::unlink(tmp.c_str());
            return false;
        }
        done += size_t(n);
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        err = path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

bool read_file(const std::string& path, std::string& out, std::string& err) {
    auto text = certs::read_pem_file(path);
    if (!text) {
        const Error& e = text.error();
        err = path + ": " +
              (e.code == Errc::sys                ? std::string(std::strerror(e.sys_errno))
               : e.code == Errc::not_found        ? std::string("no such file")
               : e.code == Errc::invalid_argument ? std::string("not a regular file")
                                                  : std::string("too large"));
        return false;
    }
    out = std::move(text).value();
    return true;
}

// ensure_dir creates `dir` and any missing parents (mode 0755), like `mkdir -p`.
bool ensure_dir(const std::string& dir, std::string& err) {
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
        if (pos != dir.size() && dir[pos] != '/') {
            continue;
        }
        std::string prefix = dir.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
            err = prefix + ": " + std::strerror(errno);
            return false;
        }
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        err = dir + ": not a directory";
        return false;
    }
    return true;
}

int ca_init(const Flags& flags) {
    if (flags.positional.size() != 1 || flags.ca_dir || flags.identity || flags.out || flags.ttl) {
        return usage_error("init takes DIR and optionally --trust-domain");
    }
    const std::string& dir = flags.positional[0];
    std::string td = flags.trust_domain.value_or("cluster.local");
    if (!certs::is_valid_trust_domain(td)) {
        return usage_error("invalid trust domain (lowercase a-z 0-9 . - _): ", td);
    }
    std::string err;
    if (!ensure_dir(dir, err)) {
        return runtime_error(err);
    }
    std::string key_path = dir + "/ca-key.pem";
    if (::access(key_path.c_str(), F_OK) == 0) {
        return runtime_error(key_path + " already exists; refusing to replace a CA key");
    }
    auto ca = certs::LocalCa::create(td, unix_ns() / kNanosPerSecond);
    if (!ca) {
        return runtime_error("creating the CA failed: " + std::string(to_string(ca.error().code)));
    }
    if (!write_file(key_path, ca->key_pem(), 0600, err) ||
        !write_file(dir + "/ca-cert.pem", ca->cert_pem(), 0644, err) ||
        !write_file(dir + "/root-cert.pem", ca->root_pem(), 0644, err)) {
        return runtime_error(err);
    }
    std::printf("created root CA for trust domain %s in %s (serial %s, expires %s)\n", td.c_str(),
                dir.c_str(), certs::serial_decimal(ca->cert()).c_str(),
                certs::format_rfc3339(certs::cert_not_after_unix(ca->cert()).value_or(0)).c_str());
    return kExitOk;
}

int ca_issue(const Flags& flags) {
    if (!flags.positional.empty() || flags.trust_domain || !flags.ca_dir || !flags.identity ||
        !flags.out) {
        return usage_error("issue takes --ca-dir, --identity and --out (and optionally --ttl)");
    }
    auto id = certs::Identity::parse(*flags.identity);
    if (!id) {
        return usage_error("not a SPIFFE ID of the form spiffe://<td>/ns/<ns>/sa/<sa>: ",
                           *flags.identity);
    }
    auto ttl_ns = parse_duration_ns(flags.ttl.value_or("24h"));
    if (!ttl_ns || *ttl_ns < kNanosPerSecond) {
        return usage_error("invalid --ttl (a duration of at least 1s, e.g. 24h): ",
                           flags.ttl.value_or(""));
    }
    std::string err, cert_pem, key_pem, root_pem;
    const std::string& dir = *flags.ca_dir;
    if (!read_file(dir + "/ca-cert.pem", cert_pem, err) ||
        !read_file(dir + "/ca-key.pem", key_pem, err) ||
        !read_file(dir + "/root-cert.pem", root_pem, err)) {
        return runtime_error(err);
    }
    auto ca = certs::LocalCa::load(cert_pem, key_pem, root_pem);
    if (!ca) {
        return runtime_error("cannot use the CA in " + dir + ": " +
                             std::string(to_string(ca.error().code)));
    }
    int64_t now = unix_ns() / kNanosPerSecond;
    int64_t ttl_s = *ttl_ns / kNanosPerSecond;
    auto ca_not_after = certs::cert_not_after_unix(ca->cert());
    if (!ca_not_after || now + ttl_s > *ca_not_after) {
        return runtime_error("--ttl would outlive the CA certificate");
    }
    auto issued = ca->issue(*id, now, ttl_s);
    if (!issued) {
        return runtime_error("issuing failed: " + std::string(to_string(issued.error().code)));
    }
    auto leaf_key_pem = certs::private_key_to_pem(issued->key.get());
    if (!leaf_key_pem) {
        return runtime_error("encoding the key failed");
    }
    const std::string& out = *flags.out;
    if (!ensure_dir(out, err) || !write_file(out + "/key.pem", *leaf_key_pem, 0600, err) ||
        !write_file(out + "/cert-chain.pem", issued->chain_pem, 0644, err)) {
        return runtime_error(err);
    }
    std::printf("issued %s in %s (serial %s, expires %s)\n", id->to_string().c_str(), out.c_str(),
                certs::serial_decimal(issued->leaf.get()).c_str(),
                certs::format_rfc3339(now + ttl_s).c_str());
    return kExitOk;
}

}  // namespace

int ca(int argc, char** argv) {
    if (argc < 1) {
        std::fputs(kCaUsage, stderr);
        return kExitUsage;
    }
    std::string_view sub = argv[0];
    if (sub == "--help" || sub == "-h" || sub == "help") {
        std::fputs(kCaUsage, stdout);
        return kExitOk;
    }
    Flags flags;
    if (auto bad = parse_flags(argc - 1, argv + 1, flags)) {
        return usage_error("unknown or incomplete flag: ", *bad);
    }
    if (flags.help) {
        std::fputs(kCaUsage, stdout);
        return kExitOk;
    }
    if (sub == "init") {
        return ca_init(flags);
    }
    if (sub == "issue") {
        return ca_issue(flags);
    }
    return usage_error("unknown subcommand: ", sub);
}

}  // namespace zt::cli
