// Unit tests for hbone/h2_session: a client and a server session joined in memory (whole,
// byte-at-a-time and random chunks), the HBONE stream life cycle (CONNECT, 200/400, data, FIN,
// RST), flow-control back-pressure, keepalive and drain, and the bad inputs of docs/reliability.md
// §6a B1–B19 that reach this layer, each with its pinned outcome, as hand-built frames.

#include "hbone/h2_session.h"

#include <array>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/sha.h>

#include "tests/support/h2_bulk.h"
#include "tests/support/h2_frames.h"
#include "tests/support/h2_pump.h"

using namespace zt::hbone;
using zt::Errc;
using zt::test::ChunkMode;
using zt::test::ChunkPolicy;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

std::unique_ptr<H2Session> make(Role role, H2Limits limits) {
    auto session = H2Session::create(role, limits, 0);
    REQUIRE(session);
    return std::move(*session);
}

std::unique_ptr<H2Session> make(Role role) {
    return make(role, default_limits(role));
}

ConnectRequest connect_to(std::string authority) {
    ConnectRequest request;
    request.authority = std::move(authority);
    request.forwarded = "for=\"198.18.0.5:41000\"";
    request.traceparent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00";
    request.baggage = "k8s.namespace.name=default";
    return request;
}

// Pair runs a client and a server against each other until neither has anything to send,
// handing every event to `Handler::on_client`/`on_server`.
struct Pair {
    std::unique_ptr<H2Session> client = make(Role::client);
    std::unique_ptr<H2Session> server = make(Role::server);
    ChunkPolicy policy;
    std::vector<uint8_t> wire;
    zt::Result<void> client_error = zt::ok();
    zt::Result<void> server_error = zt::ok();

    template <class Handler>
    void drain_events(Handler& handler) {
        H2Event event;
        while (client->poll_event(event)) {
            handler.on_client(*client, event);
        }
        while (server->poll_event(event)) {
            handler.on_server(*server, event);
        }
    }

    template <class Handler>
    void run(Handler& handler, size_t max_hops = 50'000'000) {
        for (size_t i = 0; i < max_hops; i++) {
            drain_events(handler);
            bool moved = zt::test::hop(*client, *server, policy, wire, server_error);
            drain_events(handler);  // Data events borrow `wire`: handle them before the next hop.
            moved = zt::test::hop(*server, *client, policy, wire, client_error) || moved;
            drain_events(handler);
            if (!moved) {
                return;
            }
        }
        FAIL("pair did not settle");
    }
};

// Recorder keeps every event (data copied) for assertions.
struct Recorder {
    struct Side {
        std::vector<H2Event> events;
        std::map<int32_t, std::string> data;
        bool auto_consume = true;
        size_t unconsumed = 0;
    } client, server;

    void record(Side& side, H2Session& session, H2Event& event) {
        if (event.kind == H2EventKind::data) {
            side.data[event.stream_id].append(zt::as_chars(event.data));
            if (side.auto_consume) {
                session.consume(event.stream_id, event.data.size());
            } else {
                side.unconsumed += event.data.size();
            }
            event.data = {};
        }
        side.events.push_back(event);
    }

    void on_client(H2Session& s, H2Event& e) { record(client, s, e); }

    void on_server(H2Session& s, H2Event& e) { record(server, s, e); }

    static size_t count(const Side& side, H2EventKind kind) {
        size_t n = 0;
        for (const H2Event& e : side.events) {
            n += e.kind == kind ? 1 : 0;
        }
        return n;
    }

    static const H2Event* first(const Side& side, H2EventKind kind) {
        for (const H2Event& e : side.events) {
            if (e.kind == kind) {
                return &e;
            }
        }
        return nullptr;
    }
};

// AutoServer answers every request 200 and records everything.
struct AutoServer : Recorder {
    void on_server(H2Session& s, H2Event& e) {
        if (e.kind == H2EventKind::request) {
            REQUIRE(s.respond(e.stream_id, kStatusOk, "k8s.namespace.name=server"));
        }
        record(server, s, e);
    }
};

// Feeds raw client bytes to a fresh server and returns the frames it answered with.
struct RawServer {
    std::unique_ptr<H2Session> server;
    zt::Result<void> fed = zt::ok();
    std::vector<zt::test::H2Frame> frames;
    std::vector<H2Event> events;

    explicit RawServer(H2Limits limits = default_limits(Role::server))
        : server(make(Role::server, limits)) {}

    void feed(const std::vector<uint8_t>& bytes) {
        fed = server->feed(bytes);
        collect();
    }

    void collect() {
        for (;;) {
            zt::ByteSpan out = server->pending_output();
            if (out.empty()) {
                break;
            }
            auto parsed = zt::test::parse_frames(out);
            frames.insert(frames.end(), parsed.begin(), parsed.end());
            server->consume_output(out.size());
        }
        H2Event event;
        while (server->poll_event(event)) {
            events.push_back(event);
        }
    }

    size_t count_events(H2EventKind kind) const {
        size_t n = 0;
        for (const H2Event& e : events) {
            n += e.kind == kind ? 1 : 0;
        }
        return n;
    }
};

std::vector<uint8_t> preface() {
    return zt::test::client_preface();
}

}  // namespace

TEST_CASE("hbone: h2 CONNECT is answered 200 with headers passed through, in every chunking") {
    for (ChunkMode mode : {ChunkMode::all, ChunkMode::one_byte, ChunkMode::random}) {
        CAPTURE(static_cast<int>(mode));
        Pair pair;
        pair.policy.mode = mode;
        AutoServer handler;
        auto id = pair.client->submit_connect(connect_to("198.18.0.7:8080"));
        REQUIRE(id);
        pair.run(handler);
        REQUIRE(pair.client_error);
        REQUIRE(pair.server_error);
        const H2Event* request = Recorder::first(handler.server, H2EventKind::request);
        REQUIRE(request != nullptr);
        CHECK(request->stream_id == *id);
        CHECK(request->authority.kind == AuthorityKind::ipv4);
        CHECK(request->authority.port == 8080);
        CHECK(request->forwarded == "for=\"198.18.0.5:41000\"");
        CHECK(request->baggage == "k8s.namespace.name=default");
        CHECK(is_valid_traceparent(request->traceparent));
        const H2Event* response = Recorder::first(handler.client, H2EventKind::response);
        REQUIRE(response != nullptr);
        CHECK(response->status == 200);
        CHECK(response->baggage == "k8s.namespace.name=server");
    }
}

TEST_CASE("hbone: h2 server answers 400 itself to a bad method or authority") {
    // B2/B3/B6: nothing reaches the caller, so nothing is connected upstream.
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    zt::test::append_connect(bytes, 1, "127.1:80");
    zt::test::append_connect(bytes, 3, "user@h:1");
    zt::test::append_connect(bytes, 5, "10.0.0.1:0");
    auto get = zt::test::hpack_literals({{":method", "GET"},
                                         {":scheme", "http"},
                                         {":path", "/"},
                                         {":authority", "10.0.0.1:80"}});
    zt::test::append_frame(bytes, zt::test::kFrameHeaders, zt::test::kFlagEndHeaders, 7, get);
    raw.feed(bytes);
    REQUIRE(raw.fed);
    CHECK(raw.count_events(H2EventKind::request) == 0);
    CHECK(raw.server->counters().bad_requests == 4);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameHeaders) == 4);
    for (const auto& frame : raw.frames) {
        if (frame.type == zt::test::kFrameHeaders) {
            CHECK((frame.flags & zt::test::kFlagEndStream) != 0);  // 400 ends the stream.
        }
    }
    // All four left their request side open: RST_STREAM(NO_ERROR) after the 400 frees their
    // slots (RFC 9113 §8.1).
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream, kNoError) == 4);
    CHECK(raw.server->counters().resets_sent_by_app == 4);
    CHECK(raw.server->counters().glitches == 0);
    // A request that ended its side gets the 400 alone.
    std::vector<uint8_t> ended;
    zt::test::append_connect(ended, 9, "127.1:80", true);
    raw.frames.clear();
    raw.feed(ended);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameHeaders) == 1);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream) == 0);
    // The connection survives: a good CONNECT afterwards is announced.
    std::vector<uint8_t> good;
    zt::test::append_connect(good, 11, "198.18.0.9:80");
    raw.feed(good);
    REQUIRE(raw.fed);
    CHECK(raw.count_events(H2EventKind::request) == 1);
}

TEST_CASE("hbone: h2 an error status ends the stream and frees its slot") {
    Pair pair;
    Recorder handler;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    REQUIRE(Recorder::count(handler.server, H2EventKind::request) == 1);
    REQUIRE(pair.server->respond(*id, kStatusServiceUnavailable));
    pair.run(handler);
    const H2Event* response = Recorder::first(handler.client, H2EventKind::response);
    REQUIRE(response != nullptr);
    CHECK(response->status == 503);
    CHECK(Recorder::count(handler.client, H2EventKind::closed) == 1);
    CHECK(Recorder::count(handler.server, H2EventKind::closed) == 1);
    CHECK(pair.client->streams_available() == 100);
    CHECK(pair.server->respond(*id, kStatusOk).error().code == Errc::invalid_argument);
    CHECK(pair.server->respond(999, kStatusOk).error().code == Errc::invalid_argument);
}

TEST_CASE(
        "hbone: h2 CONNECT with :path, :scheme or :protocol, or without :authority, is a stream "
        "error") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    std::vector<std::vector<std::pair<std::string_view, std::string_view>>> blocks = {
            {{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {":path", "/"}},
            {{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {":scheme", "https"}},
            {{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {":protocol", "websocket"}},
            {{":method", "CONNECT"}},
    };
    int32_t id = 1;
    for (const auto& block : blocks) {
        zt::test::append_frame(bytes, zt::test::kFrameHeaders, zt::test::kFlagEndHeaders, id,
                               zt::test::hpack_literals(block));
        id += 2;
    }
    raw.feed(bytes);
    REQUIRE(raw.fed);
    CHECK(raw.count_events(H2EventKind::request) == 0);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream, kProtocolError) == 4);
    CHECK(zt::test::goaway_code(raw.frames) == -1);
}

TEST_CASE("hbone: h2 100 concurrent streams carry 1 MiB each way intact") {
    Pair pair;
    pair.policy.mode = ChunkMode::random;
    pair.policy.max_random = 64 * 1024;
    zt::test::BulkTunnels bulk(100, 1 << 20);
    bulk.start(*pair.client, 100);
    pair.run(bulk);
    REQUIRE(pair.client_error);
    REQUIRE(pair.server_error);
    CHECK(bulk.server_requests == 100);
    CHECK(bulk.verify());
    CHECK(pair.client->counters().glitches == 0);
    CHECK(pair.server->counters().glitches == 0);
    CHECK(pair.client->state() == H2State::open);
}

TEST_CASE("hbone: h2 a few streams survive byte-at-a-time delivery") {
    Pair pair;
    pair.policy.mode = ChunkMode::one_byte;
    zt::test::BulkTunnels bulk(3, 40 * 1024);
    bulk.start(*pair.client, 3);
    pair.run(bulk);
    REQUIRE(pair.client_error);
    REQUIRE(pair.server_error);
    CHECK(bulk.verify());
}

TEST_CASE("hbone: h2 DATA frames are framed to fill one 16 KiB TLS record") {
    Pair pair;
    AutoServer handler;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    std::vector<uint8_t> payload(100'000, 0xab);
    REQUIRE(pair.client->write_data(*id, payload, false));
    std::vector<zt::test::H2Frame> frames;
    for (;;) {
        zt::ByteSpan out = pair.client->pending_output();
        if (out.empty()) {
            break;
        }
        // Bounded: nghttp2 would frame the whole window in one mem_send without our PAUSE.
        CHECK(out.size() <= 64 * 1024 + 16384);
        auto parsed = zt::test::parse_frames(out);
        frames.insert(frames.end(), parsed.begin(), parsed.end());
        pair.client->consume_output(out.size());
    }
    size_t data_frames = 0, total = 0;
    for (const auto& frame : frames) {
        if (frame.type == zt::test::kFrameData) {
            data_frames++;
            total += frame.payload.size();
            if (total < payload.size()) {
                CHECK(frame.payload.size() + 9 == 16384);
            }
        }
    }
    CHECK(total == payload.size());
    CHECK(data_frames == (payload.size() + 16374) / 16375);
    H2Event event;
    bool done = false;
    while (pair.client->poll_event(event)) {
        done = done || event.kind == H2EventKind::send_done;
    }
    CHECK(done);
    // A second span may go out only after send_done; before that it would block.
    REQUIRE(pair.client->write_data(*id, payload, false));
    auto again = pair.client->write_data(*id, payload, false);
    REQUIRE_FALSE(again);
    CHECK(again.error().code == Errc::would_block);
}

TEST_CASE("hbone: h2 half-close in each direction keeps the other direction open") {
    Pair pair;
    AutoServer handler;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    // Client FIN first: the server sees END_STREAM and can still send.
    std::string hello = "hello";
    REQUIRE(pair.client->write_data(*id, zt::as_bytes(hello), true));
    pair.run(handler);
    CHECK(handler.server.data[*id] == "hello");
    CHECK(Recorder::count(handler.server, H2EventKind::end_stream) == 1);
    CHECK(Recorder::count(handler.server, H2EventKind::closed) == 0);
    std::string reply = "world";
    REQUIRE(pair.server->write_data(*id, zt::as_bytes(reply), false));
    pair.run(handler);
    CHECK(handler.client.data[*id] == "world");
    REQUIRE(pair.server->write_data(*id, {}, true));
    pair.run(handler);
    CHECK(Recorder::count(handler.client, H2EventKind::end_stream) == 1);
    CHECK(Recorder::count(handler.client, H2EventKind::closed) == 1);
    CHECK(Recorder::count(handler.server, H2EventKind::closed) == 1);
    CHECK(Recorder::first(handler.client, H2EventKind::closed)->error_code == kNoError);

    // Server FIN first on a second stream.
    auto id2 = pair.client->submit_connect(connect_to("198.18.0.7:81"));
    REQUIRE(id2);
    pair.run(handler);
    REQUIRE(pair.server->write_data(*id2, zt::as_bytes(reply), true));
    pair.run(handler);
    CHECK(handler.client.data[*id2] == "world");
    CHECK(Recorder::count(handler.client, H2EventKind::end_stream) == 2);
    REQUIRE(pair.client->write_data(*id2, zt::as_bytes(hello), false));
    pair.run(handler);
    CHECK(handler.server.data[*id2] == "hello");
}

TEST_CASE("hbone: h2 reset in each direction reaches the peer with its code") {
    Pair pair;
    AutoServer handler;
    auto a = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    auto b = pair.client->submit_connect(connect_to("198.18.0.7:81"));
    REQUIRE(a);
    REQUIRE(b);
    pair.run(handler);
    pair.client->reset_stream(*a, kConnectError);  // Client's upstream socket was reset.
    pair.server->reset_stream(*b, kConnectError);  // Server's workload connection was reset.
    pair.run(handler);
    const H2Event* at_server = Recorder::first(handler.server, H2EventKind::reset);
    const H2Event* at_client = Recorder::first(handler.client, H2EventKind::reset);
    REQUIRE(at_server != nullptr);
    REQUIRE(at_client != nullptr);
    CHECK(at_server->stream_id == *a);
    CHECK(at_server->error_code == kConnectError);
    CHECK(at_client->stream_id == *b);
    CHECK(at_client->error_code == kConnectError);
    CHECK(reset_aborts_socket(at_client->error_code, false));
    CHECK(reset_aborts_socket(kCancel, true));
    CHECK_FALSE(reset_aborts_socket(kNoError, true));
    // Resets the application asked for are not glitches.
    CHECK(pair.client->counters().resets_sent_by_app == 1);
    CHECK(pair.server->counters().resets_sent_by_app == 1);
    CHECK(pair.server->counters().glitches == 0);
    CHECK(pair.client->write_data(*a, {}, true).error().code == Errc::h2_reset);
}

TEST_CASE("hbone: h2 receive window is returned only when the consumer says so") {
    Pair pair;
    AutoServer handler;
    handler.server.auto_consume = false;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    std::vector<uint8_t> payload(10u << 20, 0x5a);  // 10 MiB against a 4 MiB stream window.
    REQUIRE(pair.client->write_data(*id, payload, true));
    pair.run(handler);
    CHECK(handler.server.unconsumed == 4u << 20);
    CHECK(Recorder::count(handler.client, H2EventKind::send_done) == 0);
    // Hand the bytes on: the window comes back and the rest flows.
    pair.server->consume(*id, handler.server.unconsumed);
    handler.server.auto_consume = true;
    pair.run(handler);
    CHECK(handler.server.data[*id].size() == payload.size());
    CHECK(Recorder::count(handler.client, H2EventKind::send_done) == 1);
}

TEST_CASE("hbone: h2 PING every interval, connection dropped without an answer") {
    Pair pair;
    AutoServer handler;
    pair.run(handler);
    REQUIRE(pair.client->tick(9 * kSecond));
    CHECK(pair.client->pending_output().empty());  // Nothing due before 10 s.
    REQUIRE(pair.client->tick(10 * kSecond));
    auto frames = zt::test::parse_frames(pair.client->pending_output());
    CHECK(zt::test::count_frames(frames, zt::test::kFramePing) == 1);
    pair.run(handler);  // The server answers; the PING is no longer outstanding.
    REQUIRE(pair.client->tick(19 * kSecond));
    CHECK(pair.client->pending_output().empty());
    REQUIRE(pair.client->tick(20 * kSecond));  // Second PING, not delivered this time.
    CHECK_FALSE(pair.client->pending_output().empty());
    auto late = pair.client->tick(39 * kSecond);
    REQUIRE(late);
    late = pair.client->tick(40 * kSecond);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::timed_out);
    CHECK(pair.client->counters().ping_timeouts == 1);
    frames = zt::test::parse_frames(pair.client->pending_output());
    CHECK(zt::test::goaway_code(frames) == kNoError);
    CHECK(pair.client->state() != H2State::open);
}

TEST_CASE("hbone: h2 server without a first request is closed after the deadline") {
    auto server = make(Role::server);
    REQUIRE(server->feed(preface()));
    REQUIRE(server->tick(9 * kSecond));
    auto late = server->tick(10 * kSecond);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::timed_out);
    CHECK(server->counters().first_request_timeouts == 1);
}

TEST_CASE("hbone: h2 graceful drain lets open streams finish and refuses new ones") {
    Pair pair;
    AutoServer handler;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    pair.server->drain();
    pair.run(handler);
    CHECK(Recorder::count(handler.client, H2EventKind::goaway) == 2);  // Notice, then final.
    CHECK(pair.client->state() == H2State::draining);
    CHECK(pair.client->streams_available() == 0);
    auto refused = pair.client->submit_connect(connect_to("198.18.0.7:81"));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::h2_refused);
    // The open stream still works both ways and then both sessions close.
    std::string hi = "still here";
    REQUIRE(pair.client->write_data(*id, zt::as_bytes(hi), true));
    REQUIRE(pair.server->write_data(*id, zt::as_bytes(hi), true));
    pair.run(handler);
    CHECK(handler.server.data[*id] == hi);
    CHECK(handler.client.data[*id] == hi);
    CHECK(pair.server->state() == H2State::closed);
    CHECK(pair.client->state() == H2State::closed);
    CHECK(pair.server->counters().goaways_sent == 2);
}

// --- bad inputs (docs/reliability.md §6a)
// ---------------------------------------------------------

TEST_CASE("hbone: h2 B1 bad preface, HEADERS on stream 0, stream ids going backwards") {
    {
        RawServer raw;
        std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        raw.feed(std::vector<uint8_t>(junk.begin(), junk.end()));
        REQUIRE_FALSE(raw.fed);
        CHECK(raw.fed.error().code == Errc::h2_protocol);
    }
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        zt::test::append_connect(bytes, 0, "10.0.0.1:80");
        raw.feed(bytes);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) == kProtocolError);
    }
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        zt::test::append_connect(bytes, 5, "10.0.0.1:80");
        zt::test::append_connect(bytes, 3, "10.0.0.1:80");
        raw.feed(bytes);
        // nghttp2 1.52 treats a lower id as an already-closed stream and ignores the HEADERS
        // (RFC 9113 §5.1.1 would allow a connection error). Pinned: never announced.
        REQUIRE(raw.fed);
        CHECK(raw.count_events(H2EventKind::request) == 1);
        CHECK(raw.events[0].stream_id == 5);
    }
}

namespace {

// append_block appends `block` as HEADERS plus CONTINUATION frames of at most 16 KiB each.
void append_block(std::vector<uint8_t>& out, int32_t stream_id, const std::vector<uint8_t>& block) {
    size_t first = std::min<size_t>(16384, block.size());
    zt::test::append_frame(out, zt::test::kFrameHeaders,
                           first == block.size() ? zt::test::kFlagEndHeaders : 0, stream_id,
                           zt::ByteSpan(block).subspan(0, first));
    for (size_t at = first; at < block.size(); at += 16384) {
        size_t n = std::min<size_t>(16384, block.size() - at);
        bool last = at + n == block.size();
        zt::test::append_frame(out, zt::test::kFrameContinuation,
                               last ? zt::test::kFlagEndHeaders : 0, stream_id,
                               zt::ByteSpan(block).subspan(at, n));
    }
}

}  // namespace

TEST_CASE("hbone: h2 B7 header list over the limit resets the stream, the connection survives") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    std::string half(40'000, 'x');  // Two 40 KB fields: 80 KB > 64 KiB, each under nghttp2's cap.
    append_block(bytes, 1,
                 zt::test::hpack_literals({{":method", "CONNECT"},
                                           {":authority", "10.0.0.1:80"},
                                           {"x-a", half},
                                           {"x-b", half}}));
    // >100 small fields.
    std::vector<std::string> names;
    for (int i = 0; i < 120; i++) {
        names.push_back("x-f" + std::to_string(i));
    }
    std::vector<std::pair<std::string_view, std::string_view>> many = {
            {":method", "CONNECT"}, {":authority", "10.0.0.1:80"}};
    for (const auto& n : names) {
        many.push_back({n, "v"});
    }
    append_block(bytes, 3, zt::test::hpack_literals(many));
    zt::test::append_connect(bytes, 5, "10.0.0.1:80");
    raw.feed(bytes);
    REQUIRE(raw.fed);
    CHECK(raw.server->counters().header_list_too_large == 2);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream) == 2);
    CHECK(zt::test::goaway_code(raw.frames) == -1);
    REQUIRE(raw.count_events(H2EventKind::request) == 1);
    CHECK(raw.events[0].stream_id == 5);
}

TEST_CASE("hbone: h2 B7/B8 one field over 64 KiB is nghttp2's COMPRESSION_ERROR") {
    // nghttp2's HPACK decoder refuses any single field above NGHTTP2_HD_MAX_NV (64 KiB) as a
    // connection error before our per-list count sees it. Pinned: GOAWAY, nothing announced.
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    std::string big(70'000, 'x');
    append_block(bytes, 1,
                 zt::test::hpack_literals(
                         {{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {"x-big", big}}));
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(zt::test::goaway_code(raw.frames) == kCompressionError);
    CHECK(raw.count_events(H2EventKind::request) == 0);
}

TEST_CASE("hbone: h2 client enforces its 16 KiB header list limit on responses") {
    Pair pair;
    Recorder handler;
    auto id = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(id);
    pair.run(handler);
    std::string big(20'000, 'b');
    REQUIRE(pair.server->respond(*id, kStatusOk, big));
    pair.run(handler);
    CHECK(pair.client->counters().header_list_too_large == 1);
    CHECK(Recorder::count(handler.client, H2EventKind::response) == 0);
}

TEST_CASE("hbone: h2 B9 invalid HPACK index is a COMPRESSION_ERROR") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    uint8_t block[] = {0xff, 0x7f};  // Indexed field 254: beyond both tables.
    zt::test::append_frame(bytes, zt::test::kFrameHeaders, zt::test::kFlagEndHeaders, 1, block);
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(zt::test::goaway_code(raw.frames) == kCompressionError);
}

TEST_CASE("hbone: h2 B8 HPACK bomb: one 4 KB dynamic entry referenced 10k times is a reset") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    std::vector<uint8_t> block =
            zt::test::hpack_literals({{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}});
    // Literal with incremental indexing, new name "x-bomb", 4000-byte value: dynamic entry 62.
    std::string bomb(4000, 'b');
    block.push_back(0x40);
    block.push_back(6);
    block.insert(block.end(), {'x', '-', 'b', 'o', 'm', 'b'});
    block.push_back(0x7f);  // Length 4000 = 127 + 3873 (HPACK integer, 7-bit prefix).
    block.push_back(static_cast<uint8_t>((3873 & 0x7f) | 0x80));
    block.push_back(static_cast<uint8_t>(3873 >> 7));
    block.insert(block.end(), bomb.begin(), bomb.end());
    for (int i = 0; i < 10'000; i++) {
        block.push_back(0x80 | 62);  // Indexed field: the 4 KB entry again (1 byte each).
    }
    append_block(bytes, 1, block);
    zt::test::append_connect(bytes, 3, "10.0.0.1:80");
    raw.feed(bytes);
    REQUIRE(raw.fed);
    CHECK(raw.server->counters().header_list_too_large == 1);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream) == 1);
    REQUIRE(raw.count_events(H2EventKind::request) == 1);
    CHECK(raw.events[0].stream_id == 3);  // The connection survives.
}

TEST_CASE("hbone: h2 B9 a dynamic table size update above our SETTINGS is a COMPRESSION_ERROR") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    // Table size update to 65536 (5-bit prefix: 31 + 65505) before the fields.
    std::vector<uint8_t> block = {0x3f, 0xe1, 0xff, 0x03};
    auto fields = zt::test::hpack_literals({{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}});
    block.insert(block.end(), fields.begin(), fields.end());
    zt::test::append_frame(bytes, zt::test::kFrameHeaders, zt::test::kFlagEndHeaders, 1, block);
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(zt::test::goaway_code(raw.frames) == kCompressionError);
    CHECK(raw.count_events(H2EventKind::request) == 0);
}

TEST_CASE("hbone: h2 B13 PING flood without reading is FLOODED") {
    // `feed` serialises ACKs into the session's bounded output buffer (64 KiB, ~3800 ACKs) while
    // it parses; once that is full and the caller still does not take it, nghttp2's 1000 queued
    // ACKs (max_outbound_ack) end the session before our queue cap would.
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    for (int i = 0; i < 10'000; i++) {
        zt::test::append_ping(bytes, false);
    }
    zt::Result<void> fed = raw.server->feed(bytes);
    REQUIRE_FALSE(fed);
    CHECK(raw.server->counters().flooded == 1);
    CHECK(raw.server->state() == H2State::closed);
    CHECK(raw.server->pending_output().size() <= 64 * 1024 + 16384);
}

TEST_CASE("hbone: h2 B10 CONTINUATION flood ends the session") {
    REQUIRE(h2_has_max_continuations());  // Debian deb12u2 backport; see docs/reliability.md §2.
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    auto block = zt::test::hpack_literals({{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}});
    zt::test::append_frame(bytes, zt::test::kFrameHeaders, 0, 1, block);
    uint8_t piece[] = {0x00, 0x01, 'a', 0x01, 'b'};
    for (int i = 0; i < 9; i++) {
        zt::test::append_frame(bytes, zt::test::kFrameContinuation, 0, 1, piece);
    }
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(raw.server->counters().continuation_limit == 1);
    CHECK(raw.count_events(H2EventKind::request) == 0);
}

TEST_CASE("hbone: h2 B11 rapid reset ends in GOAWAY and no stream reaches the caller") {
    REQUIRE(h2_has_reset_rate_limit());  // Debian deb12u1 backport.
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    for (int32_t i = 0; i < 5000; i++) {
        int32_t id = 1 + 2 * i;
        zt::test::append_connect(bytes, id, "10.0.0.1:80");
        zt::test::append_rst(bytes, id, kCancel);
    }
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(raw.fed.error().code == Errc::h2_glitches);
    // nghttp2's limiter answers INTERNAL_ERROR after its burst of 1000.
    CHECK(zt::test::goaway_code(raw.frames) == kInternalError);
    CHECK(raw.server->counters().reset_rate_limited == 1);
    CHECK(raw.server->counters().resets_received >= 1000);
    CHECK(raw.server->counters().resets_received < 1100);  // Parsing stopped soon after.
    // Each stream was opened and reset inside one feed: the caller never hears of it.
    CHECK(raw.count_events(H2EventKind::request) == 0);
    CHECK(raw.server->counters().streams_dropped_unseen >= 1000);
}

TEST_CASE("hbone: h2 B12 WINDOW_UPDATE 0 and DATA after END_STREAM are connection errors in 1.52") {
    // nghttp2 1.52 does not reset the stream for these (the MadeYouReset vectors): it ends the
    // connection at the first one. Pinned.
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        zt::test::append_connect(bytes, 1, "10.0.0.1:80");
        zt::test::append_window_update(bytes, 1, 0);
        raw.feed(bytes);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) == kProtocolError);
        CHECK(raw.server->counters().window_update_zero == 1);
    }
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        uint8_t payload[4] = {1, 2, 3, 4};
        zt::test::append_connect(bytes, 1, "10.0.0.1:80", true);
        zt::test::append_frame(bytes, zt::test::kFrameData, 0, 1, payload);
        raw.feed(bytes);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) == kStreamClosed);
    }
}

TEST_CASE("hbone: h2 B12 MadeYouReset: resets the peer provokes spend the glitch budget") {
    SUBCASE("invalid header names") {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        for (int32_t i = 0; i < 1100; i++) {
            zt::test::append_frame(bytes, zt::test::kFrameHeaders, zt::test::kFlagEndHeaders,
                                   1 + 2 * i,
                                   zt::test::hpack_literals({{":method", "CONNECT"},
                                                             {":authority", "10.0.0.1:80"},
                                                             {"X-Upper", "1"}}));
        }
        raw.feed(bytes);
        raw.collect();
        CHECK(zt::test::goaway_code(raw.frames) == kEnhanceYourCalm);
        CHECK(raw.server->counters().resets_sent_by_codec >= 1000);
        CHECK(raw.server->counters().glitch_goaways == 1);
        CHECK(raw.server->error().code == Errc::h2_glitches);
        CHECK(raw.count_events(H2EventKind::request) == 0);
    }
    SUBCASE("stream window overflow") {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        for (int32_t i = 0; i < 1100; i++) {
            zt::test::append_connect(bytes, 1 + 2 * i, "10.0.0.1:80");
            zt::test::append_window_update(bytes, 1 + 2 * i, 0x7fffffff);
        }
        raw.feed(bytes);
        raw.collect();
        CHECK(zt::test::goaway_code(raw.frames) == kEnhanceYourCalm);
        CHECK(raw.server->counters().glitch_goaways == 1);
    }
}

TEST_CASE("hbone: h2 the glitch budget refills with time") {
    H2Limits limits = default_limits(Role::server);
    limits.glitch_burst = 10;
    limits.glitch_refill_per_s = 10;
    RawServer raw(limits);
    std::vector<uint8_t> bytes = preface();
    zt::test::append_connect(bytes, 1, "10.0.0.1:80");
    raw.feed(bytes);
    auto priority = [](std::vector<uint8_t>& out, int n) {
        uint8_t payload[5] = {0, 0, 0, 0, 16};
        for (int i = 0; i < n; i++) {
            zt::test::append_frame(out, zt::test::kFramePriority, 0, 1, payload);
        }
    };
    std::vector<uint8_t> some;
    priority(some, 10);
    raw.feed(some);
    REQUIRE(raw.fed);                        // Exactly the burst.
    REQUIRE(raw.server->tick(1 * kSecond));  // 10 tokens back.
    some.clear();
    priority(some, 10);
    raw.feed(some);
    REQUIRE(raw.fed);
    some.clear();
    priority(some, 1);
    raw.feed(some);
    REQUIRE_FALSE(raw.fed);
    CHECK(raw.fed.error().code == Errc::h2_glitches);
    CHECK(raw.server->counters().priority_frames == 21);
}

TEST_CASE("hbone: h2 B13 SETTINGS flood without reading is FLOODED; 100 params is a GOAWAY") {
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        for (int i = 0; i < 1100; i++) {
            zt::test::append_settings(bytes, {});
        }
        // Fed in one go without collecting output: nghttp2's 1000 pending ACKs fire first.
        zt::Result<void> fed = raw.server->feed(bytes);
        REQUIRE_FALSE(fed);
        CHECK(raw.server->counters().flooded == 1);
    }
    {
        // Read politely (output collected after every 100), a SETTINGS flood spends the glitch
        // budget instead: every SETTINGS after the first costs a token.
        RawServer raw;
        raw.feed(preface());
        for (int round = 0; round < 11 && raw.fed; round++) {
            std::vector<uint8_t> bytes;
            for (int i = 0; i < 100; i++) {
                zt::test::append_settings(bytes, {});
            }
            raw.feed(bytes);
        }
        REQUIRE_FALSE(raw.fed);
        CHECK(raw.fed.error().code == Errc::h2_glitches);
        CHECK(raw.server->counters().settings_frames == 1002);  // Preface + 1000 paid + 1 refused.
        CHECK(zt::test::goaway_code(raw.frames) == kEnhanceYourCalm);
    }
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        std::vector<std::pair<uint16_t, uint32_t>> params;
        for (int i = 0; i < 100; i++) {
            params.push_back({0x4, 65535});
        }
        zt::test::append_settings(bytes, params);
        raw.feed(bytes);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) >= 0);
    }
}

TEST_CASE("hbone: h2 B14 empty DATA flood ends in ENHANCE_YOUR_CALM") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    zt::test::append_connect(bytes, 1, "10.0.0.1:80");
    for (int i = 0; i < 10'000; i++) {
        zt::test::append_frame(bytes, zt::test::kFrameData, 0, 1, {});
    }
    raw.feed(bytes);
    REQUIRE_FALSE(raw.fed);
    CHECK(raw.server->counters().empty_data_frames >= 1000);
    CHECK(raw.server->counters().empty_data_frames < 10'000);  // Stopped early: bounded cost.
    CHECK(zt::test::goaway_code(raw.frames) == kEnhanceYourCalm);
}

TEST_CASE("hbone: h2 B15 streams above MAX_CONCURRENT_STREAMS are refused, others unaffected") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    for (int32_t i = 0; i < 205; i++) {
        zt::test::append_connect(bytes, 1 + 2 * i, "10.0.0.1:80");
    }
    raw.feed(bytes);
    REQUIRE(raw.fed);
    CHECK(raw.count_events(H2EventKind::request) == 200);
    CHECK(raw.server->counters().refused_streams == 5);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream, kRefusedStream) == 5);
    CHECK(zt::test::goaway_code(raw.frames) == -1);
}

TEST_CASE(
        "hbone: h2 B16 WINDOW_UPDATE overflow and DATA beyond the window are FLOW_CONTROL_ERROR") {
    {
        RawServer raw;
        std::vector<uint8_t> bytes = preface();
        zt::test::append_window_update(bytes, 0, 0x7fffffff);
        raw.feed(bytes);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) == kFlowControlError);
    }
    {
        H2Limits limits = default_limits(Role::server);
        limits.connection_window_bytes = 65535;
        limits.stream_window_bytes = 65535;
        RawServer raw(limits);
        std::vector<uint8_t> bytes = preface();
        zt::test::append_connect(bytes, 1, "10.0.0.1:80");
        raw.feed(bytes);
        REQUIRE(raw.server->respond(1, kStatusOk));
        // Our SETTINGS are not ACKed, so the default 65535 window applies; send 80 000 bytes.
        std::vector<uint8_t> chunk(16000, 1);
        std::vector<uint8_t> data;
        for (int i = 0; i < 5; i++) {
            zt::test::append_frame(data, zt::test::kFrameData, 0, 1, chunk);
        }
        raw.feed(data);
        REQUIRE_FALSE(raw.fed);
        CHECK(zt::test::goaway_code(raw.frames) == kFlowControlError);
    }
}

TEST_CASE("hbone: h2 B17 HEADERS on a connected stream is a stream error") {
    RawServer raw;
    std::vector<uint8_t> bytes = preface();
    zt::test::append_connect(bytes, 1, "10.0.0.1:80");
    raw.feed(bytes);
    REQUIRE(raw.server->respond(1, kStatusOk));
    raw.collect();
    std::vector<uint8_t> trailers;
    zt::test::append_frame(trailers, zt::test::kFrameHeaders,
                           zt::test::kFlagEndHeaders | zt::test::kFlagEndStream, 1,
                           zt::test::hpack_literals({{"x-trailer", "1"}}));
    raw.feed(trailers);
    REQUIRE(raw.fed);
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameRstStream) == 1);
    CHECK(zt::test::goaway_code(raw.frames) == -1);
    CHECK(raw.count_events(H2EventKind::closed) == 1);
}

TEST_CASE("hbone: h2 B18 a zero window stops DATA; nothing is framed or released") {
    RawServer raw;
    std::vector<uint8_t> bytes = zt::test::client_preface({{0x4, 0}});  // INITIAL_WINDOW_SIZE=0.
    zt::test::append_connect(bytes, 1, "10.0.0.1:80");
    raw.feed(bytes);
    REQUIRE(raw.fed);
    REQUIRE(raw.server->respond(1, kStatusOk));
    std::vector<uint8_t> payload(1 << 20, 7);
    REQUIRE(raw.server->write_data(1, payload, false));
    raw.collect();
    CHECK(zt::test::count_frames(raw.frames, zt::test::kFrameData) == 0);
    CHECK(raw.count_events(H2EventKind::send_done) == 0);
    // The peer opens 100 bytes of window: exactly 100 bytes go out.
    std::vector<uint8_t> more;
    zt::test::append_window_update(more, 1, 100);
    raw.feed(more);
    size_t sent = 0;
    for (const auto& frame : raw.frames) {
        if (frame.type == zt::test::kFrameData) {
            sent += frame.payload.size();
        }
    }
    CHECK(sent == 100);
}

TEST_CASE("hbone: h2 the outbound queue cap closes a peer that makes us queue without reading") {
    H2Limits limits = default_limits(Role::server);
    limits.outbound_queue_max = 100;
    limits.max_outbound_ack = 100000;  // Let our cap, not nghttp2's, be the one that fires.
    RawServer raw(limits);
    std::vector<uint8_t> bytes = preface();
    for (int i = 0; i < 200; i++) {
        zt::test::append_ping(bytes, false);
    }
    zt::Result<void> fed = raw.server->feed(bytes);
    REQUIRE_FALSE(fed);
    CHECK(fed.error().code == Errc::no_capacity);
    CHECK(raw.server->counters().outbound_queue_overflow == 1);
}

TEST_CASE("hbone: h2 client refuses to open streams on a server session and bad authorities") {
    auto server = make(Role::server);
    CHECK(server->submit_connect(connect_to("10.0.0.1:80")).error().code == Errc::invalid_argument);
    auto client = make(Role::client);
    CHECK(client->submit_connect(connect_to("10.0.0.1")).error().code == Errc::invalid_argument);
    CHECK(client->streams_available() == 100);
}

TEST_CASE("hbone: h2 a client whose stream ids run out says so before it refuses a stream") {
    H2Limits limits = default_limits(Role::client);
    limits.first_stream_id = INT32_MAX - 2;  // Two ids left: 2^31-3 and 2^31-1.
    Pair pair;
    pair.client = make(Role::client, limits);
    Recorder handler;
    pair.run(handler);
    CHECK(pair.client->streams_available() == 2);
    CHECK_FALSE(pair.client->stream_ids_exhausted());
    auto first = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(first);
    CHECK(*first == INT32_MAX - 2);
    CHECK(pair.client->streams_available() == 1);
    auto last = pair.client->submit_connect(connect_to("198.18.0.7:80"));
    REQUIRE(last);
    CHECK(*last == INT32_MAX);
    // Both streams are still open, and the peer allows 98 more: the ids are what ran out.
    CHECK(pair.client->stream_ids_exhausted());
    CHECK(pair.client->streams_available() == 0);
    CHECK(pair.client->submit_connect(connect_to("198.18.0.7:80")).error().code ==
          Errc::h2_refused);
    pair.run(handler);
    CHECK(Recorder::count(handler.server, H2EventKind::request) == 2);
    CHECK(make(Role::server)->stream_ids_exhausted() == false);
}
