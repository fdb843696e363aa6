#pragma once

// BulkTunnels drives N HBONE tunnels each carrying `stream_bytes` each way, for the in-memory
// stream tests and the benchmark: the client opens N CONNECTs (authority port = 1000 + index),
// the server answers 200, both write their payload with END_STREAM and hash (optionally) what
// they receive per stream with SHA-256. Plain code without doctest, so tools can use it too;
// misuse aborts through ZT_CHECK.

#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <openssl/sha.h>

#include "hbone/h2_session.h"
#include "zt/assert.h"

namespace zt::test {

struct BulkTunnels {
    struct Stream {
        size_t index = 0;
        SHA256_CTX received;
        size_t bytes = 0;
        bool end = false;
        bool closed = false;
        bool response_ok = false;
    };

    std::vector<uint8_t> pattern;
    size_t stream_bytes;
    bool hash;
    std::map<int32_t, Stream> client_streams;
    std::map<int32_t, Stream> server_streams;
    std::vector<std::array<uint8_t, 32>> expected;
    size_t server_requests = 0;
    bool failed = false;  // An API call failed or a status was not 200.

    BulkTunnels(size_t stream_count, size_t bytes, bool with_hash = true)
        : stream_bytes(bytes), hash(with_hash) {
        std::mt19937 rng(7);
        pattern.resize(bytes + stream_count * 997);
        for (auto& b : pattern) {
            b = static_cast<uint8_t>(rng());
        }
        if (hash) {
            for (size_t i = 0; i < stream_count; i++) {
                std::array<uint8_t, 32> digest;
                SHA256(payload(i).data(), payload(i).size(), digest.data());
                expected.push_back(digest);
            }
        }
    }

    ByteSpan payload(size_t index) const {
        return ByteSpan(pattern).subspan(index * 997, stream_bytes);
    }

    void on_event(std::map<int32_t, Stream>& side, hbone::H2Session& s, const hbone::H2Event& e) {
        Stream& st = side[e.stream_id];
        switch (e.kind) {
            case hbone::H2EventKind::data:
                if (hash) {
                    SHA256_Update(&st.received, e.data.data(), e.data.size());
                }
                st.bytes += e.data.size();
                s.consume(e.stream_id, e.data.size());
                break;
            case hbone::H2EventKind::end_stream:
                st.end = true;
                break;
            case hbone::H2EventKind::closed:
                st.closed = true;
                break;
            default:
                break;
        }
    }

    void on_client(hbone::H2Session& s, hbone::H2Event& e) {
        if (e.kind == hbone::H2EventKind::response) {
            Stream& st = client_streams[e.stream_id];
            st.response_ok = e.status == 200;
            failed = failed || !st.response_ok ||
                     !s.write_data(e.stream_id, payload(st.index), true).has_value();
        }
        on_event(client_streams, s, e);
    }

    void on_server(hbone::H2Session& s, hbone::H2Event& e) {
        if (e.kind == hbone::H2EventKind::request) {
            Stream& st = server_streams[e.stream_id];
            st.index = e.authority.port - 1000u;
            SHA256_Init(&st.received);
            server_requests++;
            failed = failed || !s.respond(e.stream_id, hbone::kStatusOk).has_value() ||
                     !s.write_data(e.stream_id, payload(st.index), true).has_value();
        }
        on_event(server_streams, s, e);
    }

    // start opens `stream_count` tunnels on `client`.
    void start(hbone::H2Session& client, size_t stream_count) {
        for (size_t i = 0; i < stream_count; i++) {
            hbone::ConnectRequest request;
            request.authority = "198.18.0.7:" + std::to_string(1000 + i);
            auto id = client.submit_connect(request);
            ZT_CHECK(id.has_value());
            Stream& st = client_streams[*id];
            st.index = i;
            SHA256_Init(&st.received);
        }
    }

    // verify says whether every stream delivered its payload intact both ways and closed.
    bool verify() {
        if (failed || server_requests != client_streams.size()) {
            return false;
        }
        for (auto* side : {&client_streams, &server_streams}) {
            for (auto& [id, st] : *side) {
                if (!st.end || !st.closed || st.bytes != stream_bytes) {
                    return false;
                }
                if (hash) {
                    std::array<uint8_t, 32> digest;
                    SHA256_Final(digest.data(), &st.received);
                    if (digest != expected[st.index]) {
                        return false;
                    }
                }
            }
        }
        return true;
    }
};

}  // namespace zt::test
