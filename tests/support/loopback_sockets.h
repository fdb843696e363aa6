#pragma once

// LoopbackSockets is the proxy's sockets seam (src/proxy/pod_sockets.h) for in-process tests:
// every pod gets a loopback address of its own (127.x.y.z, which Linux serves without any
// setup), its listeners bind that address on ephemeral ports (tests run in parallel: nothing
// binds a fixed port), its connections leave from it, and a connection to a pod's 15008 is sent
// to wherever that pod's listener really is. No namespace, no mark, no root. A test says where a
// "captured" connection was going (`capture`), which SO_ORIGINAL_DST would say in production.
// Thread-safe: several workers use one instance.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "src/proxy/pod_sockets.h"

namespace zt::test {

class LoopbackSockets final : public proxy::PodSockets {
public:
    // add_pod gives pod `uid` loopback address `ip`.
    void add_pod(const std::string& uid, const state::IpAddr& ip);

    // alias makes connections to `ip` reach pod `uid`'s listeners, although the pod's sockets see
    // its own address (an authority that is not the pod's IP).
    void alias(const state::IpAddr& ip, const std::string& uid);

    // listener is where pod `uid`'s listener `kind` listens (port 0 before it opened).
    state::SocketAddr listener(const std::string& uid, proxy::ListenerKind kind) const;

    // capture makes the connection whose client address is `client` look redirected from
    // `destination`.
    void capture(const state::SocketAddr& client, const state::SocketAddr& destination);

    // assign_port makes pod `uid`'s listener `kind` bind `port` (one a test may hold already,
    // to make the bind fail with EADDRINUSE).
    void assign_port(const std::string& uid, proxy::ListenerKind kind, uint16_t port);

    // dials counts the sockets made to connect to `target` (for a peer's 15008: one per link).
    size_t dials(const state::SocketAddr& target) const;

    Result<UniqueFd> listen(const proxy::PodNetwork& pod, proxy::ListenerKind kind,
                            int backlog) override;
    Result<UniqueFd> socket(const proxy::PodNetwork& pod, int family, int type) override;
    Result<state::SocketAddr> original_destination(const proxy::PodNetwork& pod, int fd) override;
    Result<proxy::UpstreamSocket> upstream(const proxy::PodNetwork& pod,
                                           const state::SocketAddr& target,
                                           const state::SocketAddr* client) override;

private:
    mutable std::mutex mutex_;
    std::map<std::string, state::IpAddr, std::less<>> pod_ips_;
    std::map<state::IpAddr, std::string> pod_of_ip_;  // Pods' own addresses and aliases.
    std::map<std::pair<std::string, proxy::ListenerKind>, uint16_t> ports_;
    std::map<std::string, state::SocketAddr> captured_;  // By the client address's text.
    std::map<std::string, size_t> dials_;                // By the target's text.
};

}  // namespace zt::test
