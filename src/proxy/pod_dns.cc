// pod_dns.cc attaches a DNS server to a pod: its sockets on 15053 opened in the pod through the
// sockets seam, the server started on the worker's ring with the worker's shared receive buffers
// and metrics shard, and its upstream sockets made in the pod's namespace.

#include "src/proxy/pod_dns.h"

#include <sys/socket.h>

#include <cerrno>

#include "src/proxy/close_cause.h"
#include "src/proxy/pod.h"
#include "src/proxy/worker_context.h"

namespace zt::proxy {

// A pod is freed only once its listeners are idle (Pods::release_closed), and at a worker's end
// only once its ring is empty: by then the server has nothing left in the kernel.
PodDns::~PodDns() = default;

Result<void> PodDns::open(WorkerContext& context, Pod& pod, std::string& error) {
    if (context.shared.dns == nullptr || context.shared.dns_metrics == nullptr) {
        return ok();
    }
    context_ = &context;
    pod_ = &pod;
    dns::ServerListeners listeners;
    for (ListenerKind kind : kDnsListenerKinds) {
        auto fd = context.sockets.listen(pod.network, kind, context.options.listen_backlog);
        if (!fd) {
            int err = fd.error().sys_errno;
            if (is_v6(kind) && (err == EADDRNOTAVAIL || err == EAFNOSUPPORT)) {
                continue;  // No IPv6 on the pod's loopback: 127.0.0.1 only, as ztunnel.
            }
            error = "listen on " + std::string(to_string(kind)) + " port " +
                    std::to_string(listener_port(kind)) + ": " + errno_text(err);
            return fail(fd.error());
        }
        (is_udp(kind) ? listeners.udp : listeners.tcp).push_back(std::move(*fd));
    }
    dns::ServerContext server_context;
    server_context.ring = &context.ring;
    server_context.snapshots = context.shared.snapshots;
    server_context.client_uid = pod.uid();
    server_context.sockets = this;
    server_context.metrics = context.shared.dns_metrics;
    server_context.metrics_shard = size_t(context.index);
    server_context.config = context.shared.dns;
    server_context.shuffle_seed = context.random();
    server_context.udp_buffers = context.dns_buffers;
    server_ = dns::Server::start(server_context, std::move(listeners));
    closing_ = false;
    return ok();
}

void PodDns::close() {
    if (server_ != nullptr) {
        closing_ = true;
        server_->close();
    }
}

Result<UniqueFd> PodDns::open(dns::Transport transport, const state::SocketAddr& upstream) {
    int type = transport == dns::Transport::udp ? SOCK_DGRAM : SOCK_STREAM;
    return context_->sockets.socket(pod_->network, upstream.ip.v6 ? AF_INET6 : AF_INET, type);
}

}  // namespace zt::proxy
