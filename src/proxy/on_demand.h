#pragma once

// On-demand DNS (ztunnel's `resolve_on_demand_dns`): an outbound connection whose upstream is a
// hostname-only workload (a ServiceEntry with DNS resolution: a `hostname`, no IPs) waits in its
// pod while the workload's hostname is resolved through the pod's DNS forwarder
// (`dns::Server::resolve`, counted in `istio_on_demand_dns_total`), then is carried out with the
// address found. Nothing blocks: the resolution is a ring operation of the pod's DNS server, and
// a poll on the client's socket notices a client that resets meanwhile, which cancels it. A
// pod without a DNS proxy (DNS capture off) cannot resolve, and refuses the connection.

#include <memory>

#include "src/dns/server.h"
#include "src/proxy/owned_set.h"
#include "src/proxy/route.h"
#include "src/state/snapshot.h"
#include "uring/ring.h"
#include "zt/unique_fd.h"

namespace zt::proxy {

class WorkerContext;
struct Pod;

// OnDemandState is where one waiting connection stands.
enum class OnDemandState : uint8_t {
    resolving,  // The resolution is out; the client is watched.
    done,       // Carried out, refused or abandoned; freed once the watch has come back.
};

std::string_view to_string(OnDemandState state);

// OnDemand is one connection waiting for its upstream's address; its pod owns it.
class OnDemand : public OwnedSet<OnDemand>::Member {
public:
    OnDemand(WorkerContext& context, Pod& pod, UniqueFd client,
             std::shared_ptr<const state::Snapshot> snapshot, const state::Workload& source,
             const Plan& plan, const state::SocketAddr& peer, const state::SocketAddr& destination);

    OnDemand(const OnDemand&) = delete;
    OnDemand& operator=(const OnDemand&) = delete;

    WorkerContext& context() { return *context_; }

    OnDemandState state() const { return state_; }

    // start asks `server` for the address and watches the client.
    void start(dns::Server& server);

    void on_client_event(int32_t res, uint32_t flags);

private:
    static void on_resolved(dns::Resolution& resolution);
    void finish_resolved();
    // maybe_free frees this once it is done and its watch is out of the kernel.
    void maybe_free();

    WorkerContext* context_;
    Pod* pod_;
    UniqueFd client_;
    // snapshot keeps `source_` and the plan's pointers alive while the address is looked up.
    std::shared_ptr<const state::Snapshot> snapshot_;
    const state::Workload* source_;
    Plan plan_;
    state::SocketAddr peer_;
    state::SocketAddr destination_;
    OnDemandState state_ = OnDemandState::resolving;
    dns::Server* server_ = nullptr;
    dns::Resolution resolution_;
    uring::Completion watch_;
};

// resolve_outbound resolves `plan`'s hostname-only upstream for `client`'s connection, then
// carries the plan out (carry_outbound), or refuses the connection when the name does not
// resolve (`no_workload_ip`).
void resolve_outbound(WorkerContext& context, Pod& pod, UniqueFd client,
                      const state::Workload& source, const Plan& plan,
                      const state::SocketAddr& peer, const state::SocketAddr& destination);

}  // namespace zt::proxy
