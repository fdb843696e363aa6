// cert_files.cc writes and reads the certificate folder of docs/contract.md §4 for the CA client.
// The identity pair is swapped as a folder (RENAME_EXCHANGE) so that ztunnel's poller never loads a
// chain with the other generation's key; the root bundle is one file renamed over the old one.

#include "src/agent/cert_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "certs/pem.h"
#include "certs/verify.h"

namespace zt::agent {

namespace {

constexpr std::string_view kRootFile = "root-cert.pem";
constexpr std::string_view kChainFile = "cert-chain.pem";
constexpr std::string_view kKeyFile = "key.pem";

Result<void> write_whole(const std::string& path, std::string_view content, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        return fail_errno(errno);
    }
    // The mode whatever the umask: the key must be 0600, the rest readable by ztunnel's user.
    bool good = ::fchmod(fd, mode) == 0;
    size_t done = 0;
    while (good && done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        good = n > 0;
        done += n > 0 ? size_t(n) : 0;
    }
    int saved = errno;
    ::close(fd);
    if (!good) {
        return fail_errno(saved != 0 ? saved : EIO);
    }
    return {};
}

Result<void> make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno(errno);
    }
    return {};
}

void remove_tree(const std::string& path) {
    for (std::string_view name : {kChainFile, kKeyFile}) {
        ::unlink((path + "/" + std::string(name)).c_str());
    }
    ::rmdir(path.c_str());
}

}  // namespace

std::string identity_folder(const std::string& dir, const certs::Identity& id) {
    return dir + "/" + std::string(id.namespace_name()) + "/" + std::string(id.service_account());
}

Result<void> write_roots(const std::string& dir, std::string_view pem) {
    std::string path = dir + "/" + std::string(kRootFile);
    auto current = certs::read_pem_file(path);
    if (current && *current == pem) {
        return {};
    }
    if (auto made = make_dir(dir); !made) {
        return made;
    }
    std::string temp = dir + "/." + std::string(kRootFile) + ".tmp";
    if (auto written = write_whole(temp, pem, 0644); !written) {
        ::unlink(temp.c_str());
        return written;
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        int saved = errno;
        ::unlink(temp.c_str());
        return fail_errno(saved);
    }
    return {};
}

Result<void> write_identity(const std::string& dir, const certs::Identity& id,
                            std::string_view chain_pem, std::string_view key_pem) {
    std::string ns_dir = dir + "/" + std::string(id.namespace_name());
    if (auto made = make_dir(dir); !made) {
        return made;
    }
    if (auto made = make_dir(ns_dir); !made) {
        return made;
    }
    std::string final_dir = identity_folder(dir, id);
    // Kubernetes names never start with a dot, so this never collides with a service account.
    std::string temp_dir = ns_dir + "/." + std::string(id.service_account()) + ".new";
    remove_tree(temp_dir);  // A leftover of a crash between write and swap.
    if (::mkdir(temp_dir.c_str(), 0755) != 0) {
        return fail_errno(errno);
    }
    // The key first: both are in place before the folder becomes visible under its name.
    auto key = write_whole(temp_dir + "/" + std::string(kKeyFile), key_pem, 0600);
    auto chain = key ? write_whole(temp_dir + "/" + std::string(kChainFile), chain_pem, 0644) : key;
    if (!chain) {
        remove_tree(temp_dir);
        return chain;
    }
    if (::renameat2(AT_FDCWD, temp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) ==
        0) {
        remove_tree(temp_dir);  // Now the previous generation.
        return {};
    }
    if (errno == ENOENT && ::rename(temp_dir.c_str(), final_dir.c_str()) == 0) {
        return {};  // The first certificate of this identity.
    }
    int saved = errno;
    remove_tree(temp_dir);
    return fail_errno(saved);
}

Result<void> remove_identity(const std::string& dir, const certs::Identity& id) {
    std::string folder = identity_folder(dir, id);
    for (std::string_view name : {kChainFile, kKeyFile}) {
        std::string path = folder + "/" + std::string(name);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return fail_errno(errno);
        }
    }
    if (::rmdir(folder.c_str()) != 0 && errno != ENOENT) {
        return fail_errno(errno);
    }
    // The namespace folder goes with its last identity (ENOTEMPTY otherwise: fine).
    ::rmdir((dir + "/" + std::string(id.namespace_name())).c_str());
    return {};
}

Result<std::shared_ptr<const certs::CertifiedKey>> load_identity(const std::string& dir,
                                                                 const certs::Identity& id,
                                                                 int64_t now_unix) {
    auto roots_pem = certs::read_pem_file(dir + "/" + std::string(kRootFile));
    if (!roots_pem) {
        return fail(roots_pem.error().code);
    }
    std::string folder = identity_folder(dir, id);
    auto chain = certs::read_pem_file(folder + "/" + std::string(kChainFile));
    if (!chain) {
        return fail(chain.error().code);
    }
    auto key = certs::read_pem_file(folder + "/" + std::string(kKeyFile));
    if (!key) {
        return fail(key.error().code);
    }
    auto roots = certs::TrustBundle::from_pem(*roots_pem);
    if (!roots) {
        return fail(roots.error().code);
    }
    return certs::CertifiedKey::make(id, *chain, *key, *roots, now_unix);
}

std::vector<certs::Identity> identities_on_disk(const std::string& dir,
                                                std::string_view trust_domain) {
    std::vector<certs::Identity> found;
    DIR* top = ::opendir(dir.c_str());
    if (top == nullptr) {
        return found;
    }
    while (dirent* ns = ::readdir(top)) {
        std::string ns_name = ns->d_name;
        if (ns_name[0] == '.' || !certs::is_valid_path_segment(ns_name) || ns->d_type != DT_DIR) {
            continue;
        }
        DIR* inner = ::opendir((dir + "/" + ns_name).c_str());
        if (inner == nullptr) {
            continue;
        }
        while (dirent* sa = ::readdir(inner)) {
            if (sa->d_type != DT_DIR || sa->d_name[0] == '.' ||
                !certs::is_valid_path_segment(sa->d_name)) {
                continue;
            }
            auto id = certs::Identity::from_parts(trust_domain, ns_name, sa->d_name);
            if (id) {
                found.push_back(std::move(*id));
            }
        }
        ::closedir(inner);
    }
    ::closedir(top);
    return found;
}

}  // namespace zt::agent
