#pragma once

// The outbound link pool of one pod: ztunnel's WorkloadHBONEPool (its `src/proxy/pool.rs`), the
// client links a pod's outbound tunnels share. Its policy, as ztunnel's:
//  - a link is keyed by `PoolKey` (ztunnel's WorkloadKey): our identity, the identities the peer
//    may prove, the next hop and the application's own address;
//  - a link carries at most `streams_per_link` streams (POOL_MAX_STREAMS_PER_CONNECTION); the
//    stream that fills it takes it out of the pool, and it closes after its last stream;
//  - one dial per key: while a link of the key is still being dialled and has room, new tunnels
//    wait for its handshake instead of dialling another;
//  - a link that got GOAWAY or failed leaves the pool at once; an unused pooled link is released
//    after `idle_release_ns` (POOL_UNUSED_RELEASE_TIMEOUT).
// The pool holds no link: pods own them. It is generic over the link type so that its
// bookkeeping is tested without a socket; src/proxy uses `LinkPool<Link>`.

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "src/state/net.h"
#include "zt/assert.h"
#include "zt/clock.h"

namespace zt::proxy {

// PoolKey is what links are shared by.
struct PoolKey {
    std::string source_identity;                      // Our SPIFFE URI (the pod's identity).
    std::vector<std::string> destination_identities;  // SPIFFE URIs the peer may prove; sorted.
    state::SocketAddr destination;                    // The next hop, `ip:15008`.
    state::IpAddr source_ip;                          // The application's address (spoofing).

    // make builds a key; the identities are sorted so their order in the plan does not matter.
    static PoolKey make(std::string source_identity, std::vector<std::string> expected,
                        const state::SocketAddr& destination, const state::IpAddr& source_ip);

    friend bool operator==(const PoolKey&, const PoolKey&) = default;
};

// PoolKeyHash hashes a `PoolKey` for the pool's map.
struct PoolKeyHash {
    size_t operator()(const PoolKey& key) const;
};

// PoolPolicy is the pool's configuration; the defaults are ztunnel's.
struct PoolPolicy {
    size_t streams_per_link = 100;
    int64_t idle_release_ns = 300 * kNanosPerSecond;
};

// PoolView is what the pool needs to know of one of its links to give it another stream.
struct PoolView {
    bool open = false;          // Its handshake is done (else it is still being dialled).
    size_t streams = 0;         // The streams it carries plus the tunnels waiting for it.
    uint32_t peer_streams = 0;  // Streams the peer allows now (open links only).
};

// PoolChoice is what a new tunnel does with one pooled link.
enum class PoolChoice : uint8_t {
    use,   // Open a stream on it now.
    wait,  // Wait for its handshake, then open a stream.
    skip,  // No room: try the next link, or dial.
};

std::string_view to_string(PoolChoice choice);

// choose is the pool's rule for one link: room under `streams_per_link` and, once open, a stream
// the peer allows.
PoolChoice choose(const PoolView& link, const PoolPolicy& policy);

// LinkPool is one pod's pool of client links of type `Link`, which must have
// `PoolView pool_view() const`.
template <class Link>
class LinkPool {
public:
    explicit LinkPool(PoolPolicy policy) : policy_(policy) {}

    LinkPool(const LinkPool&) = delete;
    LinkPool& operator=(const LinkPool&) = delete;

    const PoolPolicy& policy() const { return policy_; }

    // checkout finds the link of `key` that takes a new tunnel and says whether the tunnel opens
    // its stream now or waits for the handshake; {nullptr, skip} means dial a new link.
    std::pair<Link*, PoolChoice> checkout(const PoolKey& key) const {
        auto found = by_key_.find(key);
        if (found == by_key_.end()) {
            return {nullptr, PoolChoice::skip};
        }
        for (Link* link : found->second) {
            PoolChoice choice = choose(link->pool_view(), policy_);
            if (choice != PoolChoice::skip) {
                return {link, choice};
            }
        }
        return {nullptr, PoolChoice::skip};
    }

    // add puts a newly dialled `link` in the pool under `key`.
    void add(const PoolKey& key, Link& link) {
        ZT_ASSERT(!contains(link));
        auto entry = by_key_.try_emplace(key).first;
        entry->second.push_back(&link);
        key_of_.emplace(&link, &entry->first);
    }

    // remove takes `link` out of the pool (full, GOAWAY, failed, idle, drain); it keeps serving
    // the streams it has. A no-op for a link that is not pooled.
    void remove(const Link& link) {
        auto found = key_of_.find(&link);
        if (found == key_of_.end()) {
            return;
        }
        auto entry = by_key_.find(*found->second);
        key_of_.erase(found);
        std::vector<Link*>& links = entry->second;
        links.erase(std::remove(links.begin(), links.end(), &link), links.end());
        if (links.empty()) {
            by_key_.erase(entry);
        }
    }

    // opened_stream takes `link` out of the pool once it carries `streams_per_link` streams.
    void opened_stream(const Link& link, size_t streams) {
        if (streams >= policy_.streams_per_link) {
            remove(link);
        }
    }

    // idle_expired says whether a pooled link unused for `idle_ns` is released.
    bool idle_expired(int64_t idle_ns) const { return idle_ns > policy_.idle_release_ns; }

    bool contains(const Link& link) const { return key_of_.count(&link) != 0; }

    // size is the number of pooled links.
    size_t size() const { return key_of_.size(); }

private:
    PoolPolicy policy_;
    std::unordered_map<PoolKey, std::vector<Link*>, PoolKeyHash> by_key_;
    // key_of_ finds a link's key for `remove`; it points at the key stored in `by_key_`, which
    // stays put until its last link leaves.
    std::unordered_map<const Link*, const PoolKey*> key_of_;
};

}  // namespace zt::proxy
