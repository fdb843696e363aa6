// pool.cc holds the pool's key hashing and its rule for one link; the bookkeeping is the
// `LinkPool` template in pool.h.

#include "src/proxy/pool.h"

namespace zt::proxy {

PoolKey PoolKey::make(std::string source_identity, std::vector<std::string> expected,
                      const state::SocketAddr& destination, const state::IpAddr& source_ip) {
    std::sort(expected.begin(), expected.end());
    PoolKey key;
    key.source_identity = std::move(source_identity);
    key.destination_identities = std::move(expected);
    key.destination = destination;
    key.source_ip = source_ip;
    return key;
}

size_t PoolKeyHash::operator()(const PoolKey& key) const {
    // FNV-1a over every field, each string ended by a separator so fields cannot run together.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint8_t b) {
        h ^= b;
        h *= 1099511628211ull;
    };
    auto mix_text = [&mix](std::string_view text) {
        for (char c : text) {
            mix(uint8_t(c));
        }
        mix(0);
    };
    auto mix_ip = [&mix](const state::IpAddr& ip) {
        mix(ip.v6 ? 6 : 4);
        for (size_t i = 0; i < ip.size(); ++i) {
            mix(ip.bytes[i]);
        }
    };
    mix_text(key.source_identity);
    for (const std::string& id : key.destination_identities) {
        mix_text(id);
    }
    mix_ip(key.destination.ip);
    mix(uint8_t(key.destination.port >> 8));
    mix(uint8_t(key.destination.port));
    mix_ip(key.source_ip);
    return size_t(h);
}

std::string_view to_string(PoolChoice choice) {
    switch (choice) {
        case PoolChoice::use:
            return "use";
        case PoolChoice::wait:
            return "wait";
        case PoolChoice::skip:
            return "skip";
    }
    return "unknown";
}

PoolChoice choose(const PoolView& link, const PoolPolicy& policy) {
    if (link.streams >= policy.streams_per_link) {
        return PoolChoice::skip;
    }
    if (!link.open) {
        return PoolChoice::wait;
    }
    return link.peer_streams > 0 ? PoolChoice::use : PoolChoice::skip;
}

}  // namespace zt::proxy
