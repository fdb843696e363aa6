#pragma once

// Network namespaces of pods. In-pod mode makes every socket of a pod inside that pod's network
// namespace (docs/ztunnel-reference.md §9.4): the calling thread switches into the namespace with
// setns(2), creates the socket, and switches back. A socket stays in the namespace it was created
// in for its whole life, so one process can serve many pods from the same threads.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::inpod {

// Netns is an open handle to one network namespace. It is move-only; the namespace stays alive
// while the handle is open even if its bind mount is removed.
class Netns {
public:
    // open opens the namespace at `path` (e.g. /var/run/netns/zt-pod). It fails with
    // `Errc::not_found` if the path does not exist and `Errc::invalid_argument` (errno EINVAL)
    // if it is not a network namespace: a FIFO, a device, a regular file, a directory or another
    // kind of namespace. It never blocks, whatever the path names.
    static Result<Netns> open(std::string_view path);

    // current opens the namespace of the calling thread.
    static Result<Netns> current();

    // names_same_namespace says whether `path` still names this namespace (same device and
    // inode), with one stat(2) and nothing opened: the cheap check a reconcile makes for every
    // pod, where `open` would cost five syscalls a pod. A path that is gone or cannot be
    // looked at answers true (a replacement is only acted on once it can be opened).
    bool names_same_namespace(const std::string& path) const;

    int fd() const { return fd_.get(); }

    // inode identifies the namespace: two handles with the same (dev, inode) are the same
    // namespace (a pod recreated under the same path gets a new inode).
    ino_t inode() const { return inode_; }

    dev_t device() const { return device_; }

    const std::string& path() const { return path_; }

    // Netns takes ownership of `fd`, an open namespace file; prefer `open` and `current`.
    Netns(UniqueFd fd, ino_t inode, dev_t device, std::string path)
        : fd_(std::move(fd)), inode_(inode), device_(device), path_(std::move(path)) {}

private:
    UniqueFd fd_;
    ino_t inode_ = 0;
    dev_t device_ = 0;
    std::string path_;
};

// socket_in creates a socket(`domain`, `type` | SOCK_CLOEXEC, `protocol`) inside `netns` and
// returns with the calling thread back in its own namespace. If `mark` is non-zero the socket
// gets SO_MARK = `mark` (ztunnel marks every socket it makes in a pod, so the pod's redirect rules
// let it pass). Failing to switch back is a fatal bug (the thread would serve the wrong pod).
Result<UniqueFd> socket_in(const Netns& netns, int domain, int type, int protocol, uint32_t mark);

// socket_in with `own`, the calling thread's namespace as opened earlier by `Netns::current` on
// this same thread: saves reopening it per socket on the per-connection path.
Result<UniqueFd> socket_in(const Netns& netns, const Netns& own, int domain, int type, int protocol,
                           uint32_t mark);

}  // namespace zt::inpod
