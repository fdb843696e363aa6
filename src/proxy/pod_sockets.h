#pragma once

// PodSockets is the one seam through which the proxy makes sockets "in a pod": a pod's listening
// sockets, the sockets it connects out from (to a peer's 15008 or to the pod's application), and
// where a captured connection was going. In production (`InPodSockets`) every socket is made
// inside the pod's network namespace (setns), marked with SO_MARK so the pod's redirect rules let
// it pass, and connects to the application from the client's own address (IP_TRANSPARENT). A test
// supplies its own (tests/support/loopback_sockets.h): loopback addresses and ephemeral ports, no
// namespace, no root, so a client worker and a server worker run in one process.
//
// Workers call it from their own threads: implementations must be thread-safe.

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "src/inpod/netns.h"
#include "src/proxy/ports.h"
#include "src/state/net.h"
#include "zt/result.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

// PodNetwork is what making a socket in a pod needs to know of the pod.
struct PodNetwork {
    std::string uid;     // The pod's workload uid (a test maps it to its addresses).
    inpod::Netns netns;  // Its network namespace (production makes its sockets there).
};

// UpstreamSocket is a nonblocking TCP socket made in a pod, not connected yet, and the address to
// connect it to.
struct UpstreamSocket {
    UniqueFd fd;
    sockaddr_storage address{};
    socklen_t length = 0;
};

class PodSockets {
public:
    virtual ~PodSockets() = default;

    // listen returns `pod`'s nonblocking listening socket for `kind`, bound and listening with
    // `backlog`. Every worker opens its own (SO_REUSEPORT). A DNS kind is bound to the pod's
    // loopback address of its family (a UDP one is only bound); where the pod's loopback lacks
    // IPv6 a v6 kind fails with EADDRNOTAVAIL or EAFNOSUPPORT.
    virtual Result<UniqueFd> listen(const PodNetwork& pod, ListenerKind kind, int backlog) = 0;

    // socket returns a nonblocking socket(`family`, `type`) made in `pod`, unbound and
    // unconnected: the DNS proxy's sockets towards its upstream resolvers, which leave from the
    // pod's namespace as ztunnel's do.
    virtual Result<UniqueFd> socket(const PodNetwork& pod, int family, int type) = 0;

    // original_destination says where connection `fd`, accepted on one of `pod`'s capturing
    // listeners, was going before it was redirected.
    virtual Result<state::SocketAddr> original_destination(const PodNetwork& pod, int fd) = 0;

    // upstream makes a socket in `pod` for a connection to `target`, with TCP_NODELAY and
    // keepalive. With `client` set (inbound), the connection leaves from the client's own address
    // where possible, so the application sees who called; it is best effort.
    virtual Result<UpstreamSocket> upstream(const PodNetwork& pod, const state::SocketAddr& target,
                                            const state::SocketAddr* client) = 0;
};

// InPodSockets makes every socket inside the pod's network namespace, as ztunnel's in-pod mode
// does (docs/ztunnel-reference.md §1.1–1.3, §9.4): SO_MARK `packet_mark`, SO_REUSEPORT listeners on
// the wildcard address (dual stack when the pod has IPv6), TCP_NODELAY and keepalive inherited by
// accepted sockets, SO_ORIGINAL_DST, and IP_TRANSPARENT + IP_FREEBIND for the client's address.
class InPodSockets final : public PodSockets {
public:
    // create opens the calling thread's own namespace, to return to after each socket.
    static Result<std::unique_ptr<InPodSockets>> create(uint32_t packet_mark);

    Result<UniqueFd> listen(const PodNetwork& pod, ListenerKind kind, int backlog) override;
    Result<UniqueFd> socket(const PodNetwork& pod, int family, int type) override;
    Result<state::SocketAddr> original_destination(const PodNetwork& pod, int fd) override;
    Result<UpstreamSocket> upstream(const PodNetwork& pod, const state::SocketAddr& target,
                                    const state::SocketAddr* client) override;

private:
    InPodSockets(inpod::Netns own, uint32_t packet_mark)
        : own_(std::move(own)), packet_mark_(packet_mark) {}

    Result<UniqueFd> listen_dns(const PodNetwork& pod, ListenerKind kind, int backlog);

    inpod::Netns own_;
    uint32_t packet_mark_;
};

}  // namespace zt::proxy
