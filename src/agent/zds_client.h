#pragma once

// ZdsClient speaks istio-cni's ZDS as ztunnel does (docs/contract.md §10; the agent is the client):
// a SOCK_SEQPACKET connection to INPOD_UDS, one protobuf message per packet; ZdsHello, then the
// CNI's snapshot (AddWorkload with exactly one netns fd in SCM_RIGHTS, KeepWorkload), then
// SnapshotSent (reconcile: pods neither added nor kept since the connection began leave), then
// live adds and deletes. Every request gets exactly one Ack; a bad one is NACKed with the reason
// (no fd on an add, an fd on anything else, no workload info, a second snapshot-sent, an fd that
// is not a network namespace). The namespace is pinned under --netns-dir (netns_pins.h) and the
// pod goes into ztunnel's config file (the owner writes it at once); the add is acked only when
// ztunnel's `GET /pods` shows the pod's listeners open for a content written since the add
// (README.md, "Admin endpoints"), NACKed with ztunnel's error when it failed, or after the CNI's
// 5 s. Right after each write it asks `GET /pods?wait=<that content's sha256>`, which ztunnel
// holds until its workers answered for that content, so the ack follows the listeners at once;
// a 20 ms tick polls the plain form otherwise (an answer that did not settle the add, ztunnel
// restarted or without the waiting form). One request to ztunnel at a time, whatever happens. A
// delete is acked at once; the pin is removed once `/pods` no longer lists the pod for a config
// written after the delete. The connection is remade with backoff (10 ms doubling to 15 s, as
// ztunnel). Log target `zds`.
//
// Connection states:
//
//   idle ─start→ connecting ─→ hello ─→ waiting ⇄ (holding an add) ─→ acking ─→ waiting ...
//                    └──────────┴─────────┴────────────┴──────────────────┴─→ backing_off ─→
//                    connecting
//   (any) ─shutdown→ stopping ─→ stopped

#include <sys/un.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "src/agent/agent_metrics.h"
#include "src/agent/loop.h"
#include "src/agent/resolver.h"
#include "zt/unique_fd.h"

namespace zt::agent {

struct ZdsClientOptions {
    std::string socket_path = "/var/run/ztunnel/ztunnel.sock";
    std::string netns_dir;
    std::string cluster_id = "Kubernetes";
    SocketAddress ztunnel_admin;  // ztunnel's admin address (`/pods`).
    int64_t ack_timeout_ns = 5 * kNanosPerSecond;
    int64_t poll_interval_ns = 20 * kNanosPerMilli;
    // wait_for_content: ask ztunnel's waiting form of `/pods` after each write (false: poll the
    // plain form only, as against a ztunnel that predates it).
    bool wait_for_content = true;
    // poll_grace_ns: how long past its own timeout a request to ztunnel may stay unanswered
    // before it is abandoned (a hung ztunnel must not stop the polls).
    int64_t poll_grace_ns = 1 * kNanosPerSecond;
    int64_t backoff_initial_ns = 10 * kNanosPerMilli;
    int64_t backoff_max_ns = 15 * kNanosPerSecond;
};

// ZdsPod is one pod istio-cni gave us.
struct ZdsPod {
    std::string uid;  // The Kubernetes pod UID (the pin's name).
    std::string name;
    std::string namespace_;
    std::string service_account;
    std::string workload_uid;  // `<CLUSTER_ID>//Pod/<namespace>/<name>`, as istiod derives it.
    std::string netns;         // The pin's path.
};

// ZdsObserver is the owner: it writes the config file when the pods change.
class ZdsObserver {
public:
    virtual ~ZdsObserver() = default;
    // on_pods_changed runs after pods were added or removed; the owner writes the file now.
    virtual void on_pods_changed() = 0;
    // current_sha256 is the sha256 of the config file content last written.
    virtual std::string current_sha256() = 0;
};

enum class ZdsState : uint8_t {
    idle,
    connecting,
    hello,        // ZdsHello being sent.
    waiting,      // A request is awaited.
    holding,      // An add waits for ztunnel's listeners.
    acking,       // An Ack being sent.
    backing_off,  // Disconnected; reconnecting after the backoff.
    stopping,
    stopped,
};

std::string_view to_string(ZdsState state);

// ZdsStatus is the client's state for /debug.
struct ZdsStatus {
    ZdsState state = ZdsState::idle;
    bool snapshot_acked = false;
    uint64_t connections = 0;
    uint64_t acks = 0;
    uint64_t nacks = 0;
    std::string last_nack;
    std::vector<ZdsPod> pods;
    std::vector<std::string> draining;  // Pin paths waiting for ztunnel to drain.
};

class ZdsClient {
public:
    ZdsClient(Loop& loop, ZdsClientOptions options, AgentMetrics& metrics, ZdsObserver& observer);
    ~ZdsClient();

    // recover takes pods the previous run wrote into the config file (pins under --netns-dir),
    // so they stay in the file until the CNI's snapshot says whether they still exist.
    void recover(const std::vector<std::pair<std::string, std::string>>& workload_uid_and_netns);

    void start();
    void shutdown();
    bool stopped() const;

    // pods are the pods to write into the config file (not deleted).
    const std::map<std::string, ZdsPod>& pods() const { return pods_; }

    // draining_identities are (namespace, service account) of deleted pods ztunnel has not
    // drained yet: their certificates are still in use.
    std::vector<std::pair<std::string, std::string>> draining_identities() const;

    // snapshot_acked says whether a SnapshotSent was acked on some connection.
    bool snapshot_acked() const { return snapshot_acked_; }

    ZdsStatus status() const;

private:
    struct Draining {
        std::string workload_uid;
        std::string netns;
        std::string namespace_;  // The identity's parts: its certificate stays until drained.
        std::string service_account;
        std::set<std::string> shas;  // Contents written since the delete.
    };
    enum class PollState : uint8_t { idle, connecting, sending, receiving };

    static void on_connected(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_sent(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_received(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_timer(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_poll_connected(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_poll_sent(uring::Completion& self, int32_t res, uint32_t flags);
    static void on_poll_received(uring::Completion& self, int32_t res, uint32_t flags);

    void connect();
    void disconnect(std::string_view why);
    void send_packet(std::string bytes);
    void arm_recv();
    // handle processes one request (`fds` owned) and either acks or holds.
    void handle(std::string_view packet, std::vector<UniqueFd> fds);
    void ack(std::string error);
    void add(const std::string& uid, const std::string& name, const std::string& ns,
             const std::string& sa, int fd);
    void remove(const std::string& uid);
    // maybe_poll starts a `/pods` request when something waits on ztunnel and none is out: the
    // waiting form for content written since the last one, else the plain form on the tick.
    void maybe_poll();
    void poll_done(std::string_view body);
    void poll_failed();
    void tick();
    bool busy_in_kernel() const;

    Loop& loop_;
    ZdsClientOptions options_;
    AgentMetrics& metrics_;
    ZdsObserver& observer_;
    ZdsState state_ = ZdsState::idle;
    UniqueFd socket_;
    uring::Completion connect_completion_{&ZdsClient::on_connected, this};
    uring::Completion send_completion_{&ZdsClient::on_sent, this};
    uring::Completion recv_completion_{&ZdsClient::on_received, this};
    uring::Timer timer_;
    sockaddr_un connect_address_{};  // Read by the kernel at submission; kept anyway.
    std::string send_buffer_;
    std::vector<uint8_t> recv_buffer_;
    std::vector<uint8_t> control_buffer_;
    iovec recv_iov_{};
    msghdr recv_msg_{};
    int64_t backoff_ns_ = 0;
    bool snapshot_sent_ = false;  // On this connection.
    bool snapshot_acked_ = false;
    bool close_after_ack_ = false;
    std::set<std::string> seen_;  // Added or kept on this connection.
    uint64_t connections_ = 0;
    uint64_t acks_ = 0;
    uint64_t nacks_ = 0;
    std::string last_nack_;

    // A sandbox recreated under a known uid: the old pod is drained from ztunnel first (its
    // config entry would not change, the pin's path being the same), then this add proceeds.
    struct Replacement {
        std::string uid;
        std::string name;
        std::string namespace_;
        std::string service_account;
        UniqueFd fd;
    };

    std::unique_ptr<Replacement> replacement_;

    // The add being held.
    std::string held_workload_uid_;
    std::set<std::string> held_shas_;
    int64_t held_deadline_ns_ = 0;

    std::map<std::string, ZdsPod> pods_;        // By Kubernetes UID.
    std::map<std::string, Draining> draining_;  // By Kubernetes UID.

    // The `/pods` poll (HTTP/1.1 over TCP to ztunnel's admin, one request per connection).
    PollState poll_state_ = PollState::idle;
    UniqueFd poll_socket_;
    uring::Completion poll_connect_completion_{&ZdsClient::on_poll_connected, this};
    uring::Completion poll_send_completion_{&ZdsClient::on_poll_sent, this};
    uring::Completion poll_recv_completion_{&ZdsClient::on_poll_received, this};
    std::string poll_request_;
    std::string waited_sha_;        // The content of the last waiting request (asked once each).
    int64_t poll_deadline_ns_ = 0;  // An outstanding request is abandoned after this.
    std::string poll_response_;
    std::vector<uint8_t> poll_buffer_;
    int64_t next_poll_ns_ = 0;
};

}  // namespace zt::agent
