// on_demand.cc holds outbound connections to hostname-only workloads while the pod's DNS server
// resolves the name, then hands them to the outbound path with the address, or refuses them.

#include "src/proxy/on_demand.h"

#include <poll.h>

#include <cerrno>

#include "src/proxy/outbound.h"
#include "src/proxy/pod.h"
#include "src/proxy/proxied_connection.h"
#include "src/proxy/worker_context.h"
#include "zt/log.h"

namespace zt::proxy {

std::string_view to_string(OnDemandState state) {
    switch (state) {
        case OnDemandState::resolving:
            return "resolving";
        case OnDemandState::done:
            return "done";
    }
    return "unknown";
}

OnDemand::OnDemand(WorkerContext& context, Pod& pod, UniqueFd client,
                   std::shared_ptr<const state::Snapshot> snapshot, const state::Workload& source,
                   const Plan& plan, const state::SocketAddr& peer,
                   const state::SocketAddr& destination)
    : context_(&context)
    , pod_(&pod)
    , client_(std::move(client))
    , snapshot_(std::move(snapshot))
    , source_(&source)
    , plan_(plan)
    , peer_(peer)
    , destination_(destination) {}

void OnDemand::start(dns::Server& server) {
    server_ = &server;
    resolution_.callback = &OnDemand::on_resolved;
    resolution_.context = this;
    resolution_.hostname = plan_.upstream->hostname;
    resolution_.prefer_v6 = destination_.ip.v6;
    server.resolve(resolution_, *source_, source_->identity(context_->options.trust_domain));
    // A client that resets (or whose socket fails) while it waits cancels the resolution. Its
    // FIN alone does not: a client may send its request and half-close before reading the
    // answer, as plain TCP allows; one that really left is seen by the relay once connected.
    // (on_client_event tells the two apart: the kernel reports POLLRDHUP here too.)
    watch_.callback = &on_completion<OnDemand, &OnDemand::on_client_event>;
    watch_.context = this;
    context_->ring.poll(watch_, client_.get(), POLLERR | POLLHUP);
}

void OnDemand::on_resolved(dns::Resolution& resolution) {
    auto& self = *static_cast<OnDemand*>(resolution.context);
    WorkerContext& context = *self.context_;
    self.finish_resolved();
    context.settle();
}

void OnDemand::finish_resolved() {
    state_ = OnDemandState::done;
    if (watch_.in_kernel) {
        context_->ring.cancel(watch_);
    }
    if (!resolution_.address || pod_->state == PodState::closing) {
        log::debug("dns", "on-demand resolution found no address",
                   {log::Field::str("hostname", resolution_.hostname),
                    log::Field::str("failure", std::string(dns::to_string(resolution_.failure)))});
        Plan refused;
        refused.reason = RefuseReason::no_workload_ip;
        refused.upstream = plan_.upstream;
        refuse_connection(*context_, peer_, destination_, telemetry::Direction::outbound,
                          CloseCause::refused_by_route(refused.reason, destination_.to_string()));
        client_.reset();
    } else {
        resolved(plan_, *resolution_.address);
        carry_outbound(*context_, *pod_, std::move(client_), *source_, plan_, peer_, destination_);
    }
    maybe_free();
}

void OnDemand::on_client_event(int32_t res, uint32_t) {
    // io_uring reports POLLRDHUP though it was not asked for (the kernel unmasks it for every
    // poll): that is the client's FIN after its request, not a client gone. The watch is not
    // re-armed then (POLLRDHUP stays set, so a new poll would fire at once); a client that resets
    // later is seen by the relay once connected, at most one DNS deadline later.
    const bool gone = res >= 0 && (static_cast<uint32_t>(res) & (POLLERR | POLLHUP)) != 0;
    if (state_ == OnDemandState::resolving && gone) {
        // The client went away first: no answer is wanted any more.
        server_->cancel(resolution_);
        state_ = OnDemandState::done;
        client_.reset();
    }
    maybe_free();
}

void OnDemand::maybe_free() {
    if (state_ == OnDemandState::done && !watch_.in_kernel) {
        pod_->resolutions.destroy(*this);
    }
}

void resolve_outbound(WorkerContext& context, Pod& pod, UniqueFd client,
                      const state::Workload& source, const Plan& plan,
                      const state::SocketAddr& peer, const state::SocketAddr& destination) {
    dns::Server* server = pod.listeners.dns().server();
    if (server == nullptr) {
        refuse_connection(context, peer, destination, telemetry::Direction::outbound,
                          CloseCause::refused_by_route(RefuseReason::no_workload_ip,
                                                       destination.to_string()));
        return;
    }
    OnDemand& waiting = pod.resolutions.adopt(std::make_unique<OnDemand>(
            context, pod, std::move(client), context.snapshot, source, plan, peer, destination));
    waiting.start(*server);
}

}  // namespace zt::proxy
