// zds_client.cc runs the agent's side of ZDS on the agent's io_uring: connect, sendmsg/recvmsg
// of single packets (fds arrive with MSG_CMSG_CLOEXEC), one request at a time (the CNI waits
// for each ack). ztunnel's `/pods` is asked right after each write of the config file in its
// waiting form (`?wait=<sha256>`: answered once ztunnel's workers answered for that content),
// and on a 20 ms tick in its plain form while an add is held or a delete waits for its drain;
// the tick also enforces the 5 s bound on a held add and reconnects after the backoff.
// Every operation in the kernel is owned by one completion of this object; `shutdown` cancels
// them and `stopped` says when the kernel has given everything back.

#include "src/agent/zds_client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "src/agent/netns_pins.h"
#include "src/config/pods_status.h"
#include "zds.pb.h"
#include "zt/log.h"

namespace zt::agent {

namespace {

constexpr std::string_view kTarget = "zds";
constexpr size_t kPacketBytes = 4096;
// Room for a few fds, so that more than one is seen (and refused) rather than truncated.
constexpr size_t kMaxFds = 8;
constexpr size_t kMaxPodsBody = size_t(16) << 20;
constexpr int64_t kTickNs = 20 * kNanosPerMilli;
// kMaxPodsNamed is how many `pod=` keys ztunnel's `/pods` takes in one request
// (src/admin/pods_wait.h).
constexpr size_t kMaxPodsNamed = 64;

// query_escape percent-encodes `text` for a query value: unreserved characters and '/' as they
// are, every other byte as %XX.
std::string query_escape(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        if (plain) {
            out += char(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

namespace zds = istio::workload::zds;

std::string ack_bytes(const std::string& error) {
    zds::WorkloadResponse response;
    response.mutable_ack()->set_error(error);
    return response.SerializeAsString();
}

}  // namespace

std::string_view to_string(ZdsState state) {
    switch (state) {
        case ZdsState::idle:
            return "idle";
        case ZdsState::connecting:
            return "connecting";
        case ZdsState::hello:
            return "hello";
        case ZdsState::waiting:
            return "waiting";
        case ZdsState::holding:
            return "holding";
        case ZdsState::acking:
            return "acking";
        case ZdsState::backing_off:
            return "backing_off";
        case ZdsState::stopping:
            return "stopping";
        case ZdsState::stopped:
            return "stopped";
    }
    return "unknown";
}

ZdsClient::ZdsClient(Loop& loop, ZdsClientOptions options, AgentMetrics& metrics,
                     ZdsObserver& observer)
    : loop_(loop), options_(std::move(options)), metrics_(metrics), observer_(observer) {
    timer_.completion.callback = &ZdsClient::on_timer;
    timer_.completion.context = this;
    recv_buffer_.resize(kPacketBytes);
    control_buffer_.resize(CMSG_SPACE(sizeof(int) * kMaxFds));
    poll_buffer_.resize(64 * 1024);
}

ZdsClient::~ZdsClient() {
    ZT_CHECK(!busy_in_kernel());
}

bool ZdsClient::busy_in_kernel() const {
    return connect_completion_.in_kernel || send_completion_.in_kernel ||
           recv_completion_.in_kernel || timer_.completion.in_kernel ||
           poll_connect_completion_.in_kernel || poll_send_completion_.in_kernel ||
           poll_recv_completion_.in_kernel;
}

void ZdsClient::recover(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string prefix = options_.netns_dir + "/";
    for (const auto& [workload_uid, netns] : entries) {
        if (netns.rfind(prefix, 0) != 0) {
            continue;
        }
        std::string uid = netns.substr(prefix.size());
        if (!valid_pin_name(uid) || ::access(netns.c_str(), F_OK) != 0) {
            continue;
        }
        ZdsPod pod;
        pod.uid = uid;
        pod.workload_uid = workload_uid;
        pod.netns = netns;
        // `<cluster>//Pod/<ns>/<name>`: the name and namespace come back from the uid; the
        // service account only with the CNI's next add.
        size_t at = workload_uid.find("//Pod/");
        if (at != std::string::npos) {
            std::string rest = workload_uid.substr(at + 6);
            size_t slash = rest.find('/');
            if (slash != std::string::npos) {
                pod.namespace_ = rest.substr(0, slash);
                pod.name = rest.substr(slash + 1);
            }
        }
        pods_[uid] = std::move(pod);
    }
    if (!pods_.empty()) {
        log::info(kTarget, "pods of the previous run kept until the CNI's snapshot",
                  {log::Field::num("pods", pods_.size())});
    }
}

void ZdsClient::start() {
    connect();
    loop_.ring().arm_timer(timer_, kTickNs);
}

void ZdsClient::connect() {
    connections_++;
    snapshot_sent_ = false;
    close_after_ack_ = false;
    seen_.clear();
    held_workload_uid_.clear();
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        disconnect("socket: " + std::string(std::strerror(errno)));
        return;
    }
    socket_.reset(fd);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (options_.socket_path.size() >= sizeof(address.sun_path)) {
        disconnect("the socket path is too long");
        return;
    }
    std::memcpy(address.sun_path, options_.socket_path.data(), options_.socket_path.size());
    state_ = ZdsState::connecting;
    connect_address_ = address;
    loop_.ring().connect(connect_completion_, socket_.get(),
                         reinterpret_cast<const sockaddr*>(&connect_address_),
                         sizeof(connect_address_));
}

void ZdsClient::disconnect(std::string_view why) {
    if (state_ == ZdsState::stopping || state_ == ZdsState::stopped) {
        return;
    }
    held_workload_uid_.clear();  // The CNI will send the add again.
    replacement_.reset();
    backoff_ns_ = backoff_ns_ == 0 ? options_.backoff_initial_ns
                                   : std::min(backoff_ns_ * 2, options_.backoff_max_ns);
    log::warn(kTarget, "ZDS connection lost; reconnecting",
              {log::Field::str("reason", why), log::Field::str("uds", options_.socket_path),
               log::Field::num("retry_ms", uint64_t(backoff_ns_ / kNanosPerMilli))});
    state_ = ZdsState::backing_off;
    next_poll_ns_ = loop_.clock().monotonic_ns() + backoff_ns_;  // Reused as reconnect time.
    if (send_completion_.in_kernel) {
        loop_.ring().cancel(send_completion_);
    }
    if (recv_completion_.in_kernel) {
        loop_.ring().cancel(recv_completion_);
    }
    if (connect_completion_.in_kernel) {
        loop_.ring().cancel(connect_completion_);
    }
}

void ZdsClient::on_connected(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (client->state_ != ZdsState::connecting) {
        return;
    }
    if (res < 0) {
        client->disconnect("connect: " + std::string(std::strerror(-res)));
        return;
    }
    log::info(kTarget, "connected to istio-cni",
              {log::Field::str("uds", client->options_.socket_path),
               log::Field::num("id", client->connections_)});
    zds::ZdsHello hello;
    hello.set_version(zds::V1);
    client->state_ = ZdsState::hello;
    client->send_packet(hello.SerializeAsString());
}

void ZdsClient::send_packet(std::string bytes) {
    send_buffer_ = std::move(bytes);
    loop_.ring().send(
            send_completion_, socket_.get(),
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(send_buffer_.data()),
                                     send_buffer_.size()),
            MSG_NOSIGNAL);
}

void ZdsClient::on_sent(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (client->state_ != ZdsState::hello && client->state_ != ZdsState::acking) {
        return;
    }
    if (res < 0 || size_t(res) != client->send_buffer_.size()) {
        client->disconnect(res < 0 ? "send: " + std::string(std::strerror(-res)) : "short send");
        return;
    }
    if (client->close_after_ack_) {
        client->disconnect("protocol error (NACKed)");
        return;
    }
    client->state_ = ZdsState::waiting;
    client->arm_recv();
}

void ZdsClient::arm_recv() {
    recv_iov_.iov_base = recv_buffer_.data();
    recv_iov_.iov_len = recv_buffer_.size();
    recv_msg_ = msghdr{};
    recv_msg_.msg_iov = &recv_iov_;
    recv_msg_.msg_iovlen = 1;
    recv_msg_.msg_control = control_buffer_.data();
    recv_msg_.msg_controllen = control_buffer_.size();
    loop_.ring().recvmsg(recv_completion_, socket_.get(), recv_msg_, MSG_CMSG_CLOEXEC);
}

void ZdsClient::on_received(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    std::vector<UniqueFd> fds;
    if (res > 0 || res == 0) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&client->recv_msg_); c != nullptr;
             c = CMSG_NXTHDR(&client->recv_msg_, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    fds.emplace_back(fd);
                }
            }
        }
    }
    if (client->state_ != ZdsState::waiting) {
        return;  // fds close with `fds`.
    }
    if (res <= 0) {
        client->disconnect(res == 0 ? "istio-cni closed the connection"
                                    : "recvmsg: " + std::string(std::strerror(-res)));
        return;
    }
    if ((client->recv_msg_.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        client->disconnect("a message or its fds were truncated");
        return;
    }
    client->handle(std::string_view(reinterpret_cast<const char*>(client->recv_buffer_.data()),
                                    size_t(res)),
                   std::move(fds));
}

void ZdsClient::ack(std::string error) {
    if (error.empty()) {
        acks_++;
        metrics_.zds_acks.cell(AgentMetrics::kAgentShard, {"ack"})->increment();
    } else {
        nacks_++;
        last_nack_ = error;
        metrics_.zds_acks.cell(AgentMetrics::kAgentShard, {"nack"})->increment();
        log::warn(kTarget, "NACK", {log::Field::str("error", error)});
    }
    state_ = ZdsState::acking;
    send_packet(ack_bytes(error));
}

void ZdsClient::handle(std::string_view packet, std::vector<UniqueFd> fds) {
    zds::WorkloadRequest request;
    if (!request.ParseFromArray(packet.data(), int(packet.size()))) {
        ack("cannot decode the message as WorkloadRequest");
        return;
    }
    bool is_add = request.payload_case() == zds::WorkloadRequest::kAdd;
    if (!is_add && !fds.empty()) {
        ack("unexpected file descriptor on a message that is not an add");
        return;
    }
    switch (request.payload_case()) {
        case zds::WorkloadRequest::kAdd: {
            const zds::AddWorkload& add_request = request.add();
            if (fds.size() != 1) {
                ack("an add needs exactly one network namespace fd, got " +
                    std::to_string(fds.size()));
                return;
            }
            if (!add_request.has_workload_info()) {
                ack("workload info is required on an add (uid " + add_request.uid() + ")");
                return;
            }
            if (!valid_pin_name(add_request.uid())) {
                ack("invalid pod uid \"" + add_request.uid() + "\"");
                return;
            }
            if (!is_network_namespace(fds[0].get())) {
                ack("the fd is not a network namespace");
                return;
            }
            const zds::WorkloadInfo& info = add_request.workload_info();
            add(add_request.uid(), info.name(), info.namespace_(), info.service_account(),
                fds[0].get());
            return;
        }
        case zds::WorkloadRequest::kKeep:
            if (snapshot_sent_) {
                ack("keep after the snapshot was sent");
                return;
            }
            seen_.insert(request.keep().uid());
            ack("");
            return;
        case zds::WorkloadRequest::kDel:
            remove(request.del().uid());
            ack("");
            return;
        case zds::WorkloadRequest::kSnapshotSent: {
            if (snapshot_sent_) {
                close_after_ack_ = true;
                ack("a second snapshot-sent on one connection");
                return;
            }
            snapshot_sent_ = true;
            std::vector<std::string> gone;
            for (const auto& [uid, pod] : pods_) {
                if (seen_.count(uid) == 0) {
                    gone.push_back(uid);
                }
            }
            for (const std::string& uid : gone) {
                log::info(kTarget, "pod not in the CNI's snapshot; removing",
                          {log::Field::str("uid", uid)});
                remove(uid);
            }
            // Pins no pod owns (an earlier run's): ztunnel does not use them any more.
            for (const std::string& name : pins_on_disk(options_.netns_dir)) {
                if (pods_.count(name) == 0 && draining_.count(name) == 0) {
                    log::info(kTarget, "removing a stale netns pin",
                              {log::Field::str("uid", name)});
                    (void)unpin_netns(options_.netns_dir + "/" + name);
                }
            }
            snapshot_acked_ = true;
            log::info(kTarget, "snapshot reconciled",
                      {log::Field::num("pods", pods_.size()),
                       log::Field::num("removed", gone.size())});
            ack("");
            return;
        }
        case zds::WorkloadRequest::PAYLOAD_NOT_SET:
            break;
    }
    ack("an empty request");
}

void ZdsClient::add(const std::string& uid, const std::string& name, const std::string& ns,
                    const std::string& sa, int fd) {
    auto known = pods_.find(uid);
    if (known != pods_.end() && !pinned_is(known->second.netns, fd)) {
        // The pod's sandbox was recreated: another namespace under the same uid. ztunnel drains
        // the old one before the new pin takes its path (as ztunnel replaces the proxy).
        log::info(kTarget, "pod sandbox recreated; draining the old namespace first",
                  {log::Field::str("uid", uid)});
        replacement_ = std::make_unique<Replacement>();
        replacement_->uid = uid;
        replacement_->name = name;
        replacement_->namespace_ = ns;
        replacement_->service_account = sa;
        replacement_->fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
        seen_.insert(uid);
        remove(uid);
        held_workload_uid_.clear();
        held_deadline_ns_ = loop_.clock().monotonic_ns() + options_.ack_timeout_ns;
        state_ = ZdsState::holding;
        next_poll_ns_ = 0;
        maybe_poll();
        return;
    }
    auto pinned = pin_netns(options_.netns_dir, uid, fd);
    if (!pinned) {
        ack("cannot pin the network namespace: " + std::string(to_string(pinned.error().code)) +
            (pinned.error().sys_errno != 0
                     ? " (" + std::string(std::strerror(pinned.error().sys_errno)) + ")"
                     : ""));
        return;
    }
    seen_.insert(uid);
    draining_.erase(uid);  // A pod back before its old drain finished keeps its pin.
    ZdsPod pod;
    pod.uid = uid;
    pod.name = name;
    pod.namespace_ = ns;
    pod.service_account = sa;
    pod.workload_uid = options_.cluster_id + "//Pod/" + ns + "/" + name;
    pod.netns = *pinned;
    bool changed = true;
    auto it = pods_.find(uid);
    if (it != pods_.end()) {
        const ZdsPod& old = it->second;
        changed = old.workload_uid != pod.workload_uid || old.service_account != sa ||
                  old.netns != pod.netns || old.name != name;
    }
    log::info(kTarget, "pod added",
              {log::Field::str("uid", uid), log::Field::str("workload", pod.workload_uid),
               log::Field::str("netns", pod.netns)});
    pods_[uid] = pod;
    held_workload_uid_ = pod.workload_uid;
    held_shas_.clear();
    if (changed) {
        observer_.on_pods_changed();
    }
    held_shas_.insert(observer_.current_sha256());
    if (state_ != ZdsState::holding) {  // A replacement keeps the deadline of its add.
        held_deadline_ns_ = loop_.clock().monotonic_ns() + options_.ack_timeout_ns;
    }
    state_ = ZdsState::holding;
    next_poll_ns_ = 0;
    maybe_poll();
}

void ZdsClient::remove(const std::string& uid) {
    auto it = pods_.find(uid);
    if (it == pods_.end()) {
        return;
    }
    log::info(kTarget, "pod deleted; draining", {log::Field::str("uid", uid)});
    Draining d;
    d.workload_uid = it->second.workload_uid;
    d.netns = it->second.netns;
    d.namespace_ = it->second.namespace_;
    d.service_account = it->second.service_account;
    pods_.erase(it);
    // Draining before the observer hears of it: its identity stays wanted (the certificate is
    // kept) until ztunnel drained the pod.
    draining_[uid] = std::move(d);
    observer_.on_pods_changed();
    draining_[uid].shas.insert(observer_.current_sha256());
}

void ZdsClient::on_timer(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (res != -ETIME || client->state_ == ZdsState::stopping ||
        client->state_ == ZdsState::stopped) {
        return;
    }
    client->tick();
    client->loop_.ring().arm_timer(client->timer_, kTickNs);
}

void ZdsClient::tick() {
    int64_t now = loop_.clock().monotonic_ns();
    if (state_ == ZdsState::backing_off) {
        bool idle = !connect_completion_.in_kernel && !send_completion_.in_kernel &&
                    !recv_completion_.in_kernel;
        if (idle && now >= next_poll_ns_) {
            socket_.reset();
            next_poll_ns_ = 0;
            connect();
        }
    }
    if (state_ == ZdsState::holding && now >= held_deadline_ns_) {
        log::warn(kTarget, "ztunnel did not confirm the pod's listeners in time",
                  {log::Field::str("workload", held_workload_uid_)});
        held_workload_uid_.clear();
        replacement_.reset();  // The CNI sends the add again.
        ack("timed out waiting for ztunnel");
        return;
    }
    if (poll_state_ != PollState::idle && now >= poll_deadline_ns_) {
        // ztunnel accepted but does not answer: abandon the request (its completion, cancelled,
        // ends it through `poll_failed`) so that the tick polls again.
        log::debug(kTarget, "ztunnel's /pods did not answer in time; asking again");
        for (uring::Completion* c :
             {&poll_connect_completion_, &poll_send_completion_, &poll_recv_completion_}) {
            if (c->in_kernel) {
                loop_.ring().cancel(*c);
            }
        }
        poll_deadline_ns_ = INT64_MAX;  // Cancelled once.
    }
    maybe_poll();
}

void ZdsClient::maybe_poll() {
    bool wanted = state_ == ZdsState::holding || !draining_.empty();
    if (!wanted || poll_state_ != PollState::idle) {
        return;
    }
    int64_t now = loop_.clock().monotonic_ns();
    // A content not asked about yet is asked about at once, in the waiting form: ztunnel answers
    // when its workers have the listeners (or not) for it. Any other answer comes from the tick:
    // asking again for the same content would be answered at once, again and again.
    std::string sha = options_.wait_for_content ? observer_.current_sha256() : std::string();
    bool wait = !sha.empty() && sha != waited_sha_;
    if (!wait && now < next_poll_ns_) {
        return;
    }
    int64_t timeout_ns = options_.poll_interval_ns;
    if (wait) {
        // Held no longer than the add may wait; a drain alone waits a second at most.
        timeout_ns = state_ == ZdsState::holding ? held_deadline_ns_ - now : kNanosPerSecond;
        if (timeout_ns < kNanosPerMilli) {
            wait = false;
            timeout_ns = options_.poll_interval_ns;
        }
    }
    int fd = ::socket(options_.ztunnel_admin.storage.ss_family,
                      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        poll_failed();
        return;
    }
    poll_socket_.reset(fd);
    poll_response_.clear();
    poll_request_ = "GET /pods";
    if (wait) {
        waited_sha_ = sha;
        poll_request_ +=
                "?wait=" + sha + "&timeout_ms=" + std::to_string(timeout_ns / kNanosPerMilli);
    }
    // Only the pods this client follows (the held add, the drains): the answer then stays a
    // few hundred bytes however many pods the node has. Too many to name: ask for them all.
    std::vector<std::string> followed;
    if (state_ == ZdsState::holding && !held_workload_uid_.empty()) {
        followed.push_back(held_workload_uid_);
    }
    for (const auto& [uid, d] : draining_) {
        followed.push_back(d.workload_uid);
    }
    if (followed.size() <= kMaxPodsNamed) {
        for (const std::string& uid : followed) {
            poll_request_ += (poll_request_.find('?') == std::string::npos ? "?pod=" : "&pod=") +
                             query_escape(uid);
        }
    }
    poll_request_ +=
            " HTTP/1.1\r\nHost: ztunnel\r\nConnection: close\r\nAccept: application/json\r\n\r\n";
    poll_deadline_ns_ = now + timeout_ns + options_.poll_grace_ns;
    poll_state_ = PollState::connecting;
    loop_.ring().connect(poll_connect_completion_, fd, options_.ztunnel_admin.get(),
                         options_.ztunnel_admin.length);
}

void ZdsClient::on_poll_connected(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (res < 0 || client->state_ == ZdsState::stopping) {
        client->poll_failed();
        return;
    }
    client->poll_state_ = PollState::sending;
    client->loop_.ring().send(
            client->poll_send_completion_, client->poll_socket_.get(),
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(client->poll_request_.data()),
                                     client->poll_request_.size()),
            MSG_NOSIGNAL);
}

void ZdsClient::on_poll_sent(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (res < 0 || size_t(res) != client->poll_request_.size() ||
        client->state_ == ZdsState::stopping) {
        client->poll_failed();
        return;
    }
    client->poll_state_ = PollState::receiving;
    client->loop_.ring().recv(client->poll_recv_completion_, client->poll_socket_.get(),
                              client->poll_buffer_);
}

void ZdsClient::on_poll_received(uring::Completion& self, int32_t res, uint32_t) {
    auto* client = static_cast<ZdsClient*>(self.context);
    if (res < 0 || client->state_ == ZdsState::stopping) {
        client->poll_failed();
        return;
    }
    if (res > 0) {
        client->poll_response_.append(reinterpret_cast<const char*>(client->poll_buffer_.data()),
                                      size_t(res));
        if (client->poll_response_.size() > kMaxPodsBody) {
            client->poll_failed();
            return;
        }
        client->loop_.ring().recv(client->poll_recv_completion_, client->poll_socket_.get(),
                                  client->poll_buffer_);
        return;
    }
    // EOF: the whole answer (Connection: close).
    std::string response = std::move(client->poll_response_);
    client->poll_socket_.reset();
    client->poll_state_ = PollState::idle;
    client->next_poll_ns_ =
            client->loop_.clock().monotonic_ns() + client->options_.poll_interval_ns;
    size_t body_at = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 200", 0) != 0 || body_at == std::string::npos) {
        log::debug(kTarget, "ztunnel's /pods did not answer 200");
        return;
    }
    client->poll_done(std::string_view(response).substr(body_at + 4));
    client->maybe_poll();  // Content written while this request was out is asked about now.
}

void ZdsClient::poll_failed() {
    poll_socket_.reset();
    poll_state_ = PollState::idle;
    next_poll_ns_ = loop_.clock().monotonic_ns() + options_.poll_interval_ns;
}

void ZdsClient::poll_done(std::string_view body) {
    auto status = config::parse_pods_status(body);
    if (!status) {
        log::debug(kTarget, "ztunnel's /pods answer does not parse");
        return;
    }
    // Every content written since the add or the delete answers for it: it holds the added pod
    // (one request at a time) and lacks the deleted one (a re-add ends the drain). Otherwise a
    // write in between (istiod removing a deleted pod's workload, say) left the add or the drain
    // waiting for a content ztunnel had already replaced.
    if (std::string current = observer_.current_sha256(); !current.empty()) {
        if (state_ == ZdsState::holding) {
            held_shas_.insert(current);
        }
        for (auto& [uid, d] : draining_) {
            d.shas.insert(current);
        }
    }
    if (state_ == ZdsState::holding) {
        for (const config::PodStatus& pod : status->pods) {
            if (pod.uid != held_workload_uid_) {
                continue;
            }
            bool current = held_shas_.count(pod.sha256) != 0 ||
                           held_shas_.count(status->config_sha256) != 0;
            if (pod.listeners && current) {
                log::info(kTarget, "pod's listeners are open; ACK",
                          {log::Field::str("workload", held_workload_uid_)});
                held_workload_uid_.clear();
                ack("");
                break;
            }
            if (pod.state == "failed" && current) {
                held_workload_uid_.clear();
                ack(pod.error.empty() ? "ztunnel failed to start the pod's proxy" : pod.error);
                break;
            }
        }
    }
    for (auto it = draining_.begin(); it != draining_.end();) {
        Draining& d = it->second;
        bool listed =
                std::any_of(status->pods.begin(), status->pods.end(),
                            [&](const config::PodStatus& p) { return p.uid == d.workload_uid; });
        if (!listed && d.shas.count(status->config_sha256) != 0) {
            log::info(kTarget, "pod drained; netns unpinned",
                      {log::Field::str("uid", it->first), log::Field::str("netns", d.netns)});
            (void)unpin_netns(d.netns);
            std::string uid = it->first;
            it = draining_.erase(it);
            observer_.on_pods_changed();  // Identities may have left the node.
            if (replacement_ != nullptr && replacement_->uid == uid &&
                state_ == ZdsState::holding) {
                std::unique_ptr<Replacement> r = std::move(replacement_);
                add(r->uid, r->name, r->namespace_, r->service_account, r->fd.get());
                return;  // `add` polls again; `draining_` may have changed.
            }
        } else {
            ++it;
        }
    }
}

void ZdsClient::shutdown() {
    state_ = ZdsState::stopping;
    for (uring::Completion* c :
         {&connect_completion_, &send_completion_, &recv_completion_, &poll_connect_completion_,
          &poll_send_completion_, &poll_recv_completion_}) {
        if (c->in_kernel) {
            loop_.ring().cancel(*c);
        }
    }
    if (timer_.completion.in_kernel) {
        loop_.ring().cancel_timer(timer_);
    }
}

bool ZdsClient::stopped() const {
    return !busy_in_kernel();
}

std::vector<std::pair<std::string, std::string>> ZdsClient::draining_identities() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [uid, d] : draining_) {
        out.emplace_back(d.namespace_, d.service_account);
    }
    return out;
}

ZdsStatus ZdsClient::status() const {
    ZdsStatus s;
    s.state = state_;
    s.snapshot_acked = snapshot_acked_;
    s.connections = connections_;
    s.acks = acks_;
    s.nacks = nacks_;
    s.last_nack = last_nack_;
    for (const auto& [uid, pod] : pods_) {
        s.pods.push_back(pod);
    }
    for (const auto& [uid, d] : draining_) {
        s.draining.push_back(d.netns);
    }
    return s;
}

}  // namespace zt::agent
