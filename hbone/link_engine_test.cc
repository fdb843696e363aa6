// Unit tests for hbone/link_engine: the whole HBONE stack (TLS 1.3 mTLS + HTTP/2 CONNECT) with a
// client and a server joined in memory: 100 concurrent tunnels of 1 MiB each way with per-stream
// SHA-256, byte-at-a-time delivery (B19), record packing (one full DATA frame per 16 KiB record),
// half-close/reset through TLS, a refused peer that never gets HTTP/2, a GOAWAY that makes it
// out through TLS after an HTTP/2 error, an idle connection that gives its buffers back, and
// plaintext buffers held by a send left untouched.

#include "hbone/link_engine.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/h2_bulk.h"
#include "tests/support/h2_frames.h"
#include "tests/support/h2_pump.h"
#include "tests/support/hbone_pki.h"

using namespace zt::hbone;
using zt::Errc;
using zt::certs::Identity;
using zt::test::ChunkMode;

namespace {

zt::test::HbonePki& pki() {
    static zt::test::HbonePki instance;
    return instance;
}

std::unique_ptr<LinkEngine> make(Role role, std::vector<Identity> expected = {}) {
    auto ctx = role == Role::client ? pki().client_ctx : pki().server_ctx;
    auto c = LinkEngine::create(ctx, std::move(expected), TlsLimits{}, default_limits(role), 0,
                                pki().ca.now_unix());
    REQUIRE(c);
    return std::move(*c);
}

struct StackPair {
    std::unique_ptr<LinkEngine> client = make(Role::client, {pki().server_id});
    std::unique_ptr<LinkEngine> server = make(Role::server);
    zt::test::ChunkPolicy policy;
    std::vector<uint8_t> wire;
    zt::Result<void> client_error = zt::ok();
    zt::Result<void> server_error = zt::ok();
    std::vector<size_t> client_record_sizes;  // Ciphertext record lengths the client sent.

    template <class Handler>
    void drain(Handler& handler) {
        H2Event event;
        while (client->h2().poll_event(event)) {
            handler.on_client(client->h2(), event);
        }
        while (server->h2().poll_event(event)) {
            handler.on_server(server->h2(), event);
        }
    }

    template <class Handler>
    void run(Handler& handler) {
        for (size_t i = 0; i < 100'000'000; i++) {
            drain(handler);
            bool moved = zt::test::hop(*client, *server, policy, wire, server_error);
            drain(handler);
            moved = zt::test::hop(*server, *client, policy, wire, client_error) || moved;
            drain(handler);
            if (!moved) {
                return;
            }
        }
        FAIL("stack pair did not settle");
    }
};

struct Ignore {
    void on_client(H2Session&, H2Event&) {}

    void on_server(H2Session&, H2Event&) {}
};

// Records both sides' events with data copied.
struct Log {
    std::vector<H2Event> client, server;
    std::string client_data, server_data;

    void on_client(H2Session& s, H2Event& e) {
        if (e.kind == H2EventKind::data) {
            client_data.append(zt::as_chars(e.data));
            s.consume(e.stream_id, e.data.size());
        }
        client.push_back(e);
    }

    void on_server(H2Session& s, H2Event& e) {
        if (e.kind == H2EventKind::request) {
            REQUIRE(s.respond(e.stream_id, kStatusOk));
        } else if (e.kind == H2EventKind::data) {
            server_data.append(zt::as_chars(e.data));
            s.consume(e.stream_id, e.data.size());
        }
        server.push_back(e);
    }

    static bool has(const std::vector<H2Event>& events, H2EventKind kind, uint32_t code = 0) {
        for (const H2Event& e : events) {
            if (e.kind == kind && e.error_code == code) {
                return true;
            }
        }
        return false;
    }
};

}  // namespace

TEST_CASE("hbone: stack 100 concurrent tunnels carry 1 MiB each way over TLS+H2 intact") {
    StackPair pair;
    pair.policy.mode = ChunkMode::random;
    pair.policy.max_random = 128 * 1024;
    zt::test::BulkTunnels bulk(100, 1 << 20);
    Ignore ignore;
    pair.run(ignore);  // Handshake and SETTINGS.
    REQUIRE(pair.client->state() == LinkEngineState::open);
    REQUIRE(pair.server->state() == LinkEngineState::open);
    CHECK(pair.server->tls().peer_identity() == pki().client_id);
    bulk.start(pair.client->h2(), 100);
    pair.run(bulk);
    REQUIRE(pair.client_error);
    REQUIRE(pair.server_error);
    CHECK(bulk.server_requests == 100);
    CHECK(bulk.verify());
}

TEST_CASE("hbone: stack B19 TLS and frames delivered one byte at a time") {
    StackPair pair;
    pair.policy.mode = ChunkMode::one_byte;
    zt::test::BulkTunnels bulk(2, 20'000);
    Ignore ignore;
    pair.run(ignore);
    REQUIRE(pair.client->state() == LinkEngineState::open);
    bulk.start(pair.client->h2(), 2);
    pair.run(bulk);
    REQUIRE(pair.client_error);
    REQUIRE(pair.server_error);
    CHECK(bulk.verify());
}

TEST_CASE("hbone: stack a full DATA frame is sealed as exactly one 16 KiB record") {
    StackPair pair;
    Log log;
    pair.run(log);
    auto id = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:80", "", "", ""});
    REQUIRE(id);
    pair.run(log);
    std::vector<uint8_t> payload(20 * 16375, 0x33);
    REQUIRE(pair.client->h2().write_data(*id, payload, false));
    // Walk the TLS records: 5-byte header, then ciphertext = plaintext + 1 (type) + 16 (tag).
    std::vector<uint8_t> sent;
    for (;;) {
        zt::ByteSpan out = pair.client->pending_output();
        if (out.empty()) {
            break;
        }
        // Output is bounded per call (256 KiB of ciphertext), so this takes several rounds.
        CHECK(out.size() <= 300 * 1024);
        sent.insert(sent.end(), out.begin(), out.end());
        pair.client->consume_output(out.size());
    }
    size_t full = 0, records = 0;
    for (size_t at = 0; at + 5 <= sent.size();) {
        size_t len = (size_t{sent[at + 3]} << 8) | sent[at + 4];
        records++;
        full += len == 16384 + 17 ? 1 : 0;
        at += 5 + len;
    }
    CHECK(full == 20);
    CHECK(records <= 21);
    REQUIRE(pair.server->feed(sent));
    pair.run(log);
    CHECK(log.server_data.size() == payload.size());
}

TEST_CASE("hbone: stack take_output hands over the ciphertext buffer without copying") {
    StackPair pair;
    Log log;
    pair.run(log);
    auto id = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:80", "", "", ""});
    REQUIRE(id);
    pair.run(log);
    std::vector<uint8_t> payload(8 * 16375);
    for (size_t i = 0; i < payload.size(); i++) {
        payload[i] = uint8_t(i * 7);
    }
    REQUIRE(pair.client->h2().write_data(*id, payload, false));
    // The first take swaps the session's own buffer out: the bytes are where the session put
    // them (no copy), and the session now holds our empty one.
    const uint8_t* before = pair.client->pending_output().data();
    zt::hbone::ByteBuffer in_flight;
    pair.client->take_output(in_flight);
    REQUIRE(!in_flight.empty());
    CHECK(in_flight.data() == before);
    // Output is built 64 KiB at a time, so the rest of the payload is still to be sealed: while
    // "the kernel" reads `in_flight`, the connection produces it into other storage and leaves
    // the handed-over bytes untouched.
    REQUIRE(in_flight.size() < payload.size());
    std::vector<uint8_t> snapshot(in_flight.span().begin(), in_flight.span().end());
    zt::hbone::ByteBuffer next;
    pair.client->take_output(next);
    REQUIRE(!next.empty());
    CHECK(next.data() != in_flight.data());
    CHECK(std::equal(snapshot.begin(), snapshot.end(), in_flight.data()));
    // Everything still decrypts in order on the peer.
    std::vector<uint8_t> sent(snapshot);
    sent.insert(sent.end(), next.span().begin(), next.span().end());
    for (zt::ByteSpan rest = pair.client->pending_output(); !rest.empty();
         rest = pair.client->pending_output()) {
        sent.insert(sent.end(), rest.begin(), rest.end());
        pair.client->consume_output(rest.size());
    }
    REQUIRE(pair.server->feed(sent));
    pair.run(log);
    REQUIRE(log.server_data.size() == payload.size());
    CHECK(std::equal(payload.begin(), payload.end(),
                     reinterpret_cast<const uint8_t*>(log.server_data.data())));
}

TEST_CASE("hbone: stack an idle connection releases its buffers and carries data after") {
    StackPair pair;
    pair.policy.mode = ChunkMode::random;
    pair.policy.max_random = 64 * 1024;
    Log log;
    pair.run(log);
    auto first = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:80", "", "", ""});
    REQUIRE(first);
    pair.run(log);
    std::vector<uint8_t> payload(100 * 1024);
    for (size_t i = 0; i < payload.size(); i++) {
        payload[i] = uint8_t(i * 13 + 1);
    }
    REQUIRE(pair.client->h2().write_data(*first, payload, true));
    REQUIRE(pair.server->h2().write_data(*first, payload, true));
    pair.run(log);
    REQUIRE(log.server_data.size() == payload.size());
    REQUIRE(log.client_data.size() == payload.size());
    // Every event was polled (`run` drains them): both ends may drop their buffers.
    REQUIRE(pair.client->buffer_bytes() > 0);
    REQUIRE(pair.server->buffer_bytes() > 0);
    pair.client->release_idle_buffers();
    pair.server->release_idle_buffers();
    CHECK(pair.client->buffer_bytes() == 0);
    CHECK(pair.server->buffer_bytes() == 0);
    // A new stream after the release carries bytes intact both ways.
    log.client_data.clear();
    log.server_data.clear();
    auto second = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:81", "", "", ""});
    REQUIRE(second);
    pair.run(log);
    REQUIRE(pair.client->h2().write_data(*second, payload, true));
    REQUIRE(pair.server->h2().write_data(*second, payload, true));
    pair.run(log);
    REQUIRE(pair.client_error);
    REQUIRE(pair.server_error);
    REQUIRE(log.server_data.size() == payload.size());
    REQUIRE(log.client_data.size() == payload.size());
    CHECK(std::equal(payload.begin(), payload.end(),
                     reinterpret_cast<const uint8_t*>(log.server_data.data())));
    CHECK(std::equal(payload.begin(), payload.end(),
                     reinterpret_cast<const uint8_t*>(log.client_data.data())));
}

TEST_CASE("hbone: stack half-close and reset cross TLS in both directions") {
    StackPair pair;
    Log log;
    pair.run(log);
    auto a = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:80", "", "", ""});
    auto b = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:81", "", "", ""});
    REQUIRE(a);
    REQUIRE(b);
    pair.run(log);
    std::string fin = "last words";
    REQUIRE(pair.client->h2().write_data(*a, zt::as_bytes(fin), true));
    pair.server->h2().reset_stream(*b, kConnectError);
    pair.run(log);
    CHECK(log.server_data == fin);
    CHECK(Log::has(log.server, H2EventKind::end_stream));
    CHECK(Log::has(log.client, H2EventKind::reset, kConnectError));
    REQUIRE(pair.server->h2().write_data(*a, zt::as_bytes(fin), true));
    pair.client->h2().reset_stream(*b, kCancel);  // Already closed: a no-op.
    pair.run(log);
    CHECK(log.client_data == fin);
    CHECK(Log::has(log.client, H2EventKind::closed, kNoError));
}

TEST_CASE("hbone: stack A11 a refused server never sees HTTP/2 from the client") {
    auto wrong = Identity::parse("spiffe://cluster.local/ns/b/sa/other").value();
    StackPair pair;
    pair.client = make(Role::client, {wrong});
    Ignore ignore;
    pair.run(ignore);
    REQUIRE_FALSE(pair.client_error);
    CHECK(pair.client_error.error().code == Errc::identity_mismatch);
    CHECK(pair.client->state() == LinkEngineState::closed);
    CHECK(pair.server->state() != LinkEngineState::open);
    CHECK(pair.server->h2().counters().settings_frames == 0);
}

TEST_CASE("hbone: stack an HTTP/2 connection error sends its GOAWAY through TLS") {
    StackPair pair;
    Log log;
    pair.run(log);
    std::vector<uint8_t> bad;
    zt::test::append_connect(bad, 0, "10.0.0.1:80");  // HEADERS on stream 0.
    REQUIRE(pair.client->tls().encrypt(bad));
    pair.run(log);
    REQUIRE_FALSE(pair.server_error);
    CHECK(pair.server_error.error().code == Errc::h2_protocol);
    CHECK(Log::has(log.client, H2EventKind::goaway, kProtocolError));
    CHECK(pair.server->state() == LinkEngineState::closed);
}

TEST_CASE("hbone: stack first-request deadline counts from the end of the handshake") {
    StackPair pair;
    Ignore ignore;
    REQUIRE(pair.server->tick(8'000'000'000));  // A slow handshake: 8 s after the accept.
    pair.run(ignore);
    REQUIRE(pair.server->state() == LinkEngineState::open);
    REQUIRE(pair.server->tick(17'000'000'000));  // 9 s after the handshake: still waiting.
    auto late = pair.server->tick(18'000'000'000);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::timed_out);
    CHECK(pair.server->h2().counters().first_request_timeouts == 1);
}

TEST_CASE("hbone: stack handshake deadline and PING keepalive through tick") {
    auto server = make(Role::server);
    REQUIRE(server->tick(9'000'000'000));
    auto late = server->tick(10'000'000'000);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::timed_out);
    StackPair pair;
    Ignore ignore;
    pair.run(ignore);
    REQUIRE(pair.client->tick(10'000'000'000));
    pair.run(ignore);
    REQUIRE(pair.client->tick(19'000'000'000));
    CHECK(pair.client->h2().counters().ping_timeouts == 0);
}

TEST_CASE("hbone: stack a held plaintext buffer is left untouched by the next feed") {
    StackPair pair;
    Log log;
    pair.run(log);
    auto id = pair.client->h2().submit_connect(ConnectRequest{"198.18.0.7:80", "", "", ""});
    REQUIRE(id);
    pair.run(log);
    // Sends one payload filled with `fill` from the client and returns the server's data event.
    auto deliver = [&](uint8_t fill) {
        std::vector<uint8_t> payload(16375, fill);
        REQUIRE(pair.client->h2().write_data(*id, payload, false));
        zt::hbone::ByteBuffer wire;
        pair.client->take_output(wire);
        H2Event event;
        while (pair.client->h2().poll_event(event)) {
        }
        REQUIRE(pair.server->feed(wire.span()));
        H2Event data;
        bool found = false;
        while (pair.server->h2().poll_event(event)) {
            if (event.kind == H2EventKind::data) {
                REQUIRE(!found);  // One full frame, one event.
                data = event;
                found = true;
            }
        }
        REQUIRE(found);
        REQUIRE(data.data.size() == payload.size());
        pair.server->h2().consume(*id, data.data.size());
        return data;
    };
    auto inside = [](const LinkEngine::PlaintextBuffer& buffer, zt::ByteSpan span) {
        return span.data() >= buffer.bytes.get() && span.data() < buffer.bytes.get() + buffer.size;
    };

    H2Event first = deliver(0xa1);
    auto held = pair.server->plaintext_owner();
    REQUIRE(inside(*held, first.data));
    // While held (a send in flight reads it), the next feed decrypts elsewhere.
    H2Event second = deliver(0xb2);
    CHECK(!inside(*held, second.data));
    CHECK(std::all_of(first.data.begin(), first.data.end(), [](uint8_t b) { return b == 0xa1; }));
    CHECK(std::all_of(second.data.begin(), second.data.end(), [](uint8_t b) { return b == 0xb2; }));
    // Released, the former buffer is taken again instead of a new one once the current one is
    // held: two buffers take turns.
    const uint8_t* former = held->bytes.get();
    held.reset();
    auto current = pair.server->plaintext_owner();
    H2Event third = deliver(0xc3);
    CHECK(!inside(*current, third.data));
    CHECK(pair.server->plaintext_owner()->bytes.get() == former);
    // Nobody holds anything: the buffer stays where it is.
    current.reset();
    const uint8_t* now = pair.server->plaintext_owner()->bytes.get();
    H2Event fourth = deliver(0xd4);
    CHECK(pair.server->plaintext_owner()->bytes.get() == now);
    CHECK(std::all_of(fourth.data.begin(), fourth.data.end(), [](uint8_t b) { return b == 0xd4; }));
}
