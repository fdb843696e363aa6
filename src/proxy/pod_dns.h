#pragma once

// PodDns is one pod's DNS proxy on one worker (ztunnel's per-pod `dns::Server`): the four sockets
// on 127.0.0.1:15053 and [::1]:15053 (UDP and TCP), opened through the sockets seam with the
// pod's other listeners when DNS capture is on, served by a `dns::Server` on the worker's ring,
// and drained with the pod. It is also the pod's `dns::UpstreamSockets`: every socket towards an
// upstream resolver is made inside the pod's network namespace with ztunnel's mark, so queries
// leave from the pod as ztunnel's do and its redirect rules let them pass.

#include <memory>
#include <string>

#include "src/dns/server.h"
#include "zt/result.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

class PodDns final : public dns::UpstreamSockets {
public:
    PodDns() = default;
    ~PodDns();

    PodDns(const PodDns&) = delete;
    PodDns& operator=(const PodDns&) = delete;

    // open opens the sockets and starts the server; a no-op when DNS capture is off. The [::1]
    // sockets are skipped where the pod's loopback has no IPv6 (as ztunnel checks); any other
    // failure is the pod's (`error` says which socket and why) and nothing stays open.
    Result<void> open(WorkerContext& context, Pod& pod, std::string& error);

    // close stops the server: listeners close, forwards in flight end, resolutions fail.
    void close();

    // busy says whether the server still has an operation in the kernel.
    bool busy() const { return server_ != nullptr && !server_->closed(); }

    // server is the running server (null when DNS capture is off or after close), for the
    // outbound path's on-demand resolutions.
    dns::Server* server() { return closing_ ? nullptr : server_.get(); }

    Result<UniqueFd> open(dns::Transport transport, const state::SocketAddr& upstream) override;

private:
    WorkerContext* context_ = nullptr;
    Pod* pod_ = nullptr;
    std::unique_ptr<dns::Server> server_;
    bool closing_ = false;
};

}  // namespace zt::proxy
