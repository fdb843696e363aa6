// Unit tests for H2Session's generic client streams (the gRPC transport of the control agent):
// a request with an arbitrary header block, its body framed from borrowed spans, and a server's
// response, data and trailers (hand-built frames, so every byte is known) coming back as events
// that carry every header field; a tunnel still refuses trailers.

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "hbone/h2_session.h"
#include "tests/support/h2_frames.h"

using namespace zt::hbone;
using namespace zt::test;

namespace {

std::unique_ptr<H2Session> client() {
    H2Limits limits = default_limits(Role::client);
    auto session = H2Session::create(Role::client, limits, 0);
    REQUIRE(session);
    return std::move(*session);
}

std::vector<H2Frame> drain_output(H2Session& s) {
    zt::ByteSpan out = s.pending_output();
    zt::ByteSpan frames_part = out;
    if (out.size() >= kH2Preface.size() &&
        std::string_view(reinterpret_cast<const char*>(out.data()), kH2Preface.size()) ==
                kH2Preface) {
        frames_part = out.subspan(kH2Preface.size());  // The client's first bytes.
    }
    std::vector<H2Frame> frames = parse_frames(frames_part);
    s.consume_output(out.size());
    return frames;
}

// server_hello is what a server sends first: its SETTINGS and the ACK of the client's.
std::vector<uint8_t> server_hello() {
    std::vector<uint8_t> wire;
    append_settings(wire, {});
    append_settings(wire, {}, true);
    return wire;
}

void append_headers(std::vector<uint8_t>& wire, int32_t stream_id,
                    const std::vector<std::pair<std::string_view, std::string_view>>& fields,
                    bool end_stream) {
    std::vector<uint8_t> block = hpack_literals(fields);
    append_frame(wire, kFrameHeaders, uint8_t(kFlagEndHeaders | (end_stream ? kFlagEndStream : 0)),
                 stream_id, block);
}

std::vector<H2Event> events(H2Session& s) {
    std::vector<H2Event> out;
    H2Event event;
    while (s.poll_event(event)) {
        out.push_back(event);
    }
    return out;
}

std::string field(const H2Event& event, std::string_view name) {
    for (const H2Field& f : event.fields) {
        if (f.name == name) {
            return f.value;
        }
    }
    return "<absent>";
}

}  // namespace

TEST_CASE("h2 generic: a request, its body, the response, data and trailers") {
    auto s = client();
    std::vector<H2Field> request = {{":method", "POST"},
                                    {":scheme", "https"},
                                    {":path", "/pkg.Service/Method"},
                                    {":authority", "istiod.istio-system.svc:15012"},
                                    {"content-type", "application/grpc"},
                                    {"te", "trailers"},
                                    {"authorization", "Bearer token"}};
    auto id = s->submit_request(request);
    REQUIRE(id);
    CHECK(*id == 1);
    static const uint8_t kBody[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    REQUIRE(s->write_data(*id, zt::ByteSpan(kBody, sizeof kBody), false));
    std::vector<H2Frame> sent = drain_output(*s);
    CHECK(count_frames(sent, kFrameHeaders) == 1);
    bool body_seen = false;
    for (const H2Frame& f : sent) {
        if (f.type == kFrameData) {
            CHECK(f.stream_id == 1);
            CHECK((f.flags & kFlagEndStream) == 0);
            CHECK(f.payload == std::vector<uint8_t>(kBody, kBody + sizeof kBody));
            body_seen = true;
        }
    }
    CHECK(body_seen);
    auto after_send = events(*s);
    REQUIRE(after_send.size() == 1);
    CHECK(after_send[0].kind == H2EventKind::send_done);

    // Half-close: an empty span with end_stream sends END_STREAM alone.
    REQUIRE(s->write_data(*id, {}, true));
    sent = drain_output(*s);
    REQUIRE(count_frames(sent, kFrameData) == 1);
    CHECK((sent.back().flags & kFlagEndStream) != 0);

    std::vector<uint8_t> wire = server_hello();
    append_headers(wire, 1, {{":status", "200"}, {"content-type", "application/grpc"}}, false);
    static const uint8_t kReply[] = {0, 0, 0, 0, 2, 'o', 'k'};
    append_frame(wire, kFrameData, 0, 1, zt::ByteSpan(kReply, sizeof kReply));
    append_headers(wire, 1, {{"grpc-status", "0"}, {"grpc-message", "done"}}, true);
    REQUIRE(s->feed(wire));
    auto got = events(*s);
    std::vector<H2EventKind> kinds;
    for (const H2Event& e : got) {
        kinds.push_back(e.kind);
    }
    REQUIRE(kinds.size() >= 5);
    CHECK(kinds[0] == H2EventKind::response);
    CHECK(got[0].status == 200);
    CHECK(field(got[0], ":status") == "200");
    CHECK(field(got[0], "content-type") == "application/grpc");
    CHECK(kinds[1] == H2EventKind::data);
    CHECK(std::string(got[1].data.begin(), got[1].data.end()) ==
          std::string(kReply, kReply + sizeof kReply));
    CHECK(kinds[2] == H2EventKind::trailers);
    CHECK(field(got[2], "grpc-status") == "0");
    CHECK(field(got[2], "grpc-message") == "done");
    CHECK(kinds[3] == H2EventKind::end_stream);
    CHECK(kinds[4] == H2EventKind::closed);
}

TEST_CASE("h2 generic: a trailers-only response carries the status in the response fields") {
    auto s = client();
    std::vector<H2Field> request = {
            {":method", "POST"}, {":scheme", "https"}, {":path", "/a/b"}, {":authority", "x:1"}};
    auto id = s->submit_request(request);
    REQUIRE(id);
    (void)drain_output(*s);
    std::vector<uint8_t> wire = server_hello();
    append_headers(wire, 1,
                   {{":status", "200"},
                    {"content-type", "application/grpc"},
                    {"grpc-status", "16"},
                    {"grpc-message", "bad%20token"}},
                   true);
    REQUIRE(s->feed(wire));
    auto got = events(*s);
    REQUIRE(got.size() >= 2);
    CHECK(got[0].kind == H2EventKind::response);
    CHECK(field(got[0], "grpc-status") == "16");
    CHECK(got[1].kind == H2EventKind::end_stream);
}

TEST_CASE(
        "h2 generic: servers and empty header blocks are refused; tunnels still refuse trailers") {
    auto server = H2Session::create(Role::server, default_limits(Role::server), 0);
    REQUIRE(server);
    std::vector<H2Field> request = {{":method", "POST"}};
    auto refused = (*server)->submit_request(request);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == zt::Errc::invalid_argument);
    auto s = client();
    auto empty = s->submit_request(std::span<const H2Field>());
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == zt::Errc::invalid_argument);

    // A CONNECT tunnel that gets a trailing header block is reset, as before.
    ConnectRequest connect;
    connect.authority = "198.18.2.2:8080";
    auto tunnel = s->submit_connect(connect);
    REQUIRE(tunnel);
    (void)drain_output(*s);
    std::vector<uint8_t> wire = server_hello();
    append_headers(wire, *tunnel, {{":status", "200"}}, false);
    append_headers(wire, *tunnel, {{"x-trailer", "1"}}, true);
    REQUIRE(s->feed(wire));
    auto got = events(*s);
    bool trailers = false;
    for (const H2Event& e : got) {
        trailers = trailers || e.kind == H2EventKind::trailers;
    }
    CHECK_FALSE(trailers);
    CHECK(count_frames(drain_output(*s), kFrameRstStream) == 1);
}
