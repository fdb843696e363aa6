// Tests for pool.h: the key (identity order does not matter; every field does), the rule for one
// link as a table, and the pool's bookkeeping on fake links: one dial per key, a full link
// leaving the pool, GOAWAY and idle release. No socket: `LinkPool` is generic over its links.

#include "src/proxy/pool.h"

#include <doctest/doctest.h>

namespace {

using zt::proxy::choose;
using zt::proxy::LinkPool;
using zt::proxy::PoolChoice;
using zt::proxy::PoolKey;
using zt::proxy::PoolKeyHash;
using zt::proxy::PoolPolicy;
using zt::proxy::PoolView;
using zt::state::IpAddr;
using zt::state::SocketAddr;

struct FakeLink {
    PoolView view;

    PoolView pool_view() const { return view; }
};

PoolKey key(std::string source = "spiffe://td/ns/a/sa/client", uint16_t port = 15008,
            std::vector<std::string> expected = {"spiffe://td/ns/b/sa/server"}) {
    return PoolKey::make(std::move(source), std::move(expected),
                         *SocketAddr::parse("198.18.2.2:" + std::to_string(port)),
                         *IpAddr::parse("198.18.1.2"));
}

}  // namespace

TEST_CASE("pool: keys are equal exactly when every field is, whatever the identities' order") {
    PoolKey ab = key("c", 15008, {"a", "b"});
    PoolKey ba = key("c", 15008, {"b", "a"});
    CHECK(ab == ba);
    CHECK(PoolKeyHash{}(ab) == PoolKeyHash{}(ba));
    CHECK(!(ab == key("other", 15008, {"a", "b"})));
    CHECK(!(ab == key("c", 15009, {"a", "b"})));
    CHECK(!(ab == key("c", 15008, {"a"})));
    PoolKey other_client = ab;
    other_client.source_ip = *IpAddr::parse("198.18.1.3");
    CHECK(!(ab == other_client));
    // Fields cannot run together: "ab" + "" differs from "a" + "b".
    CHECK(!(key("c", 15008, {"ab", ""}) == key("c", 15008, {"a", "b"})));
}

TEST_CASE("pool: the rule for one link") {
    PoolPolicy policy;
    policy.streams_per_link = 3;

    struct Row {
        const char* what;
        PoolView view;
        PoolChoice want;
    };

    const Row rows[] = {
            {"open with room", {true, 1, 10}, PoolChoice::use},
            {"open, the peer allows no more now", {true, 1, 0}, PoolChoice::skip},
            {"open and full", {true, 3, 10}, PoolChoice::skip},
            {"still dialling with room: wait for its handshake", {false, 2, 0}, PoolChoice::wait},
            {"still dialling and full of waiting tunnels", {false, 3, 0}, PoolChoice::skip},
    };
    for (const Row& row : rows) {
        CAPTURE(std::string(row.what));
        CHECK(choose(row.view, policy) == row.want);
    }
}

TEST_CASE("pool: one dial per key, full links and GOAWAY leave, idle release") {
    PoolPolicy policy;
    policy.streams_per_link = 2;
    LinkPool<FakeLink> pool(policy);
    CHECK(pool.checkout(key()).first == nullptr);  // Nothing yet: dial.

    FakeLink first{{false, 1, 0}};  // Dialled for the first tunnel.
    pool.add(key(), first);
    CHECK(pool.contains(first));
    auto [joined, how] = pool.checkout(key());
    CHECK(joined == &first);  // The second tunnel waits for the same handshake.
    CHECK(how == PoolChoice::wait);
    CHECK(pool.checkout(key("someone else")).first == nullptr);

    first.view = {true, 1, 100};
    CHECK(pool.checkout(key()).second == PoolChoice::use);
    pool.opened_stream(first, 1);
    CHECK(pool.contains(first));
    pool.opened_stream(first, 2);  // The stream that fills it takes it out.
    CHECK(!pool.contains(first));
    CHECK(pool.checkout(key()).first == nullptr);

    FakeLink second{{true, 0, 100}};
    FakeLink third{{true, 0, 100}};
    pool.add(key(), second);
    pool.add(key(), third);
    CHECK(pool.size() == 2);
    pool.remove(second);  // GOAWAY: it takes no new stream.
    pool.remove(second);  // Twice is harmless.
    CHECK(pool.checkout(key()).first == &third);
    pool.remove(third);
    CHECK(pool.size() == 0);

    CHECK(!pool.idle_expired(policy.idle_release_ns));
    CHECK(pool.idle_expired(policy.idle_release_ns + 1));
}
