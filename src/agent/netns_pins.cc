// netns_pins.cc pins network namespaces for ZDS pods with a bind mount of the fd's nsfs file
// (through /proc/self/fd, as `ip netns attach` does) and takes them down with a lazy unmount, so
// a ztunnel socket still inside the namespace never blocks the agent.

#include "src/agent/netns_pins.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace zt::agent {

bool is_network_namespace(int fd) {
    int type = ::ioctl(fd, NS_GET_NSTYPE);
    return type == CLONE_NEWNET;
}

bool valid_pin_name(std::string_view uid) {
    if (uid.empty() || uid.size() > 253 || uid.front() == '.') {
        return false;
    }
    for (char c : uid) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

Result<std::string> pin_netns(const std::string& dir, std::string_view uid, int fd) {
    std::string path = dir + "/" + std::string(uid);
    struct stat wanted;
    if (::fstat(fd, &wanted) != 0) {
        return fail_errno(errno);
    }
    struct stat existing;
    if (::stat(path.c_str(), &existing) == 0) {
        if (existing.st_dev == wanted.st_dev && existing.st_ino == wanted.st_ino) {
            return path;  // This namespace is pinned here already.
        }
        // An older sandbox of this pod (or an unmounted file): replace what is mounted there.
        while (::umount2(path.c_str(), MNT_DETACH) == 0) {
        }
    } else {
        int file = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (file < 0) {
            return fail_errno(errno);
        }
        ::close(file);
    }
    std::string source = "/proc/self/fd/" + std::to_string(fd);
    if (::mount(source.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
        int saved = errno;
        ::unlink(path.c_str());
        return fail_errno(saved);
    }
    return path;
}

bool pinned_is(const std::string& path, int fd) {
    struct stat pinned;
    struct stat wanted;
    return ::stat(path.c_str(), &pinned) == 0 && ::fstat(fd, &wanted) == 0 &&
           pinned.st_dev == wanted.st_dev && pinned.st_ino == wanted.st_ino;
}

Result<void> unpin_netns(const std::string& path) {
    while (::umount2(path.c_str(), MNT_DETACH) == 0) {
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return fail_errno(errno);
    }
    return {};
}

std::vector<std::string> pins_on_disk(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return names;
    }
    while (dirent* entry = ::readdir(d)) {
        if (valid_pin_name(entry->d_name)) {
            names.emplace_back(entry->d_name);
        }
    }
    ::closedir(d);
    return names;
}

}  // namespace zt::agent
