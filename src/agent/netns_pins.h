#pragma once

// Pins of pods' network namespaces under the agent's --netns-dir, as `ip netns add` makes them:
// an empty file with the namespace's nsfs file bind-mounted on it, so the namespace lives (and
// ztunnel can open it by path) after istio-cni's fd is closed. One pin per pod, named after the
// Kubernetes pod UID. A sandbox recreated under the same UID (another namespace inode) replaces
// the old pin. The folder must be a shared mount for ztunnel in another mount namespace to see
// the pins (the DaemonSet mounts it with Bidirectional propagation; deploy/README.md).

#include <string>
#include <string_view>
#include <vector>

#include "zt/result.h"

namespace zt::agent {

// is_network_namespace says whether `fd` refers to a network namespace (`NS_GET_NSTYPE`).
bool is_network_namespace(int fd);

// valid_pin_name says whether `uid` can name a pin (a single path segment, no dot files).
bool valid_pin_name(std::string_view uid);

// pin_netns bind-mounts the namespace of `fd` on `DIR/<uid>` and returns the path. The same
// namespace already pinned there is kept as it is; another one is unmounted first. Fails with
// `Errc::sys` (mount needs CAP_SYS_ADMIN).
Result<std::string> pin_netns(const std::string& dir, std::string_view uid, int fd);

// pinned_is says whether `path` is a pin of the namespace `fd` refers to (same inode).
bool pinned_is(const std::string& path, int fd);

// unpin_netns unmounts and removes `path` (gone already: success).
Result<void> unpin_netns(const std::string& path);

// pins_on_disk lists the pin names under `dir`.
std::vector<std::string> pins_on_disk(const std::string& dir);

}  // namespace zt::agent
