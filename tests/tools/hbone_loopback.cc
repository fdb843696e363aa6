// hbone_loopback runs our HBONE engines (hbone::LinkEngine) over real loopback TCP sockets, so an
// independent peer (tests/peers/hbone_peer.py: OpenSSL + python3-h2) can be tested against them:
//
//   hbone_loopback server --listen 127.0.0.1:PORT --cert C --key K --ca CA --id SPIFFE
//       echo server: answers each CONNECT 200, echoes the bytes, ends the stream after the peer's
//       END_STREAM; prints one JSON line per stream on stdout. Serves connections one at a time.
//   hbone_loopback client --connect 127.0.0.1:PORT --cert C --key K --ca CA --id SPIFFE
//                         --expect-id SERVER_SPIFFE --authority IP:PORT [--bytes N]
//       sends N random bytes and FIN on one CONNECT, reads the echo to its end, prints a JSON
//       line; exit 0 = 200 and identical SHA-256 both ways, 3 = non-200, 4 = TLS refused,
//       5 = other failure.
//
// A test tool: blocking-style poll loop, loopback only, every wait bounded.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "certs/certified_key.h"
#include "hbone/link_engine.h"

using namespace zt::hbone;

namespace {

uint64_t mono_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string hex(const uint8_t* d, size_t n) {
    static const char* k = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; i++) {
        out += k[d[i] >> 4];
        out += k[d[i] & 15];
    }
    return out;
}

struct Args {
    std::map<std::string, std::string> kv;

    std::string get(const std::string& k, const std::string& fallback = "") const {
        auto it = kv.find(k);
        return it == kv.end() ? fallback : it->second;
    }
};

[[noreturn]] void die(const char* what, int code = 5) {
    std::printf("{\"error\": \"%s\"}\n", what);
    std::fflush(stdout);
    std::exit(code);
}

std::shared_ptr<const TlsContext> context(Role role, const Args& args) {
    auto id = zt::certs::Identity::parse(args.get("--id"));
    auto roots = zt::certs::TrustBundle::from_pem(slurp(args.get("--ca")));
    if (!id || !roots) {
        die("bad --id or --ca");
    }
    auto ck = zt::certs::CertifiedKey::make(*id, slurp(args.get("--cert")),
                                            slurp(args.get("--key")), *roots, time(nullptr));
    if (!ck) {
        std::fprintf(stderr, "certificate refused: %s\n",
                     std::string(zt::to_string(ck.error().code)).c_str());
        die("certificate");
    }
    auto ctx = TlsContext::create(role, *ck);
    if (!ctx) {
        die("tls context");
    }
    return *ctx;
}

sockaddr_in parse_addr(const std::string& text) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    size_t colon = text.rfind(':');
    if (colon == std::string::npos ||
        inet_pton(AF_INET, text.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
        die("address");
    }
    sa.sin_port = htons(static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1)));
    return sa;
}

// pump moves bytes between `fd` and `conn` for up to `timeout_ms`; returns false when the socket
// closed or the connection failed. `handle` runs after every feed.
template <class Handle>
bool pump(int fd, LinkEngine& conn, Handle&& handle, int timeout_ms) {
    std::vector<uint8_t> buf(256 * 1024);
    bool open = true;
    uint64_t deadline = mono_ns() + uint64_t(timeout_ms) * 1'000'000;
    while (open && mono_ns() < deadline) {
        zt::ByteSpan out = conn.pending_output();
        pollfd p{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
        if (poll(&p, 1, 100) < 0) {
            return false;
        }
        if (p.revents & POLLOUT) {
            ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            if (n < 0) {
                return false;
            }
            conn.consume_output(static_cast<size_t>(n));
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n <= 0) {
                open = false;
            } else {
                auto fed = conn.feed(zt::ByteSpan(buf.data(), static_cast<size_t>(n)));
                if (!handle(conn, fed)) {
                    break;
                }
            }
        }
        (void)conn.tick(mono_ns());
        if (!handle(conn, zt::ok()) || conn.state() == LinkEngineState::closed) {
            break;
        }
    }
    // Flush what is left (an alert, a GOAWAY, the last DATA).
    zt::ByteSpan out = conn.pending_output();
    if (!out.empty()) {
        (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    }
    return open;
}

struct EchoStream {
    std::deque<std::vector<uint8_t>> queue;
    bool writing = false;
    bool peer_done = false;
    bool fin_sent = false;
    size_t bytes = 0;
    SHA256_CTX sha;
};

int run_server(const Args& args) {
    auto ctx = context(Role::server, args);
    sockaddr_in sa = parse_addr(args.get("--listen"));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(lfd, 16) != 0) {
        die("listen");
    }
    std::printf("hbone_loopback: listening on %s\n", args.get("--listen").c_str());
    std::fflush(stdout);
    for (;;) {
        int fd = accept(lfd, nullptr, nullptr);
        if (fd < 0) {
            continue;
        }
        auto conn = LinkEngine::create(ctx, {}, TlsLimits{}, default_limits(Role::server),
                                       mono_ns(), time(nullptr));
        if (!conn) {
            close(fd);
            continue;
        }
        std::map<int32_t, EchoStream> streams;
        auto handle = [&](LinkEngine& c, const zt::Result<void>& fed) {
            if (!fed) {
                std::printf("{\"event\": \"connection_error\", \"error\": \"%s\"}\n",
                            std::string(zt::to_string(fed.error().code)).c_str());
                std::fflush(stdout);
                return false;
            }
            H2Session& h2 = c.h2();
            H2Event e;
            while (h2.poll_event(e)) {
                EchoStream& s = streams[e.stream_id];
                switch (e.kind) {
                    case H2EventKind::request:
                        SHA256_Init(&s.sha);
                        (void)h2.respond(e.stream_id, kStatusOk, "k8s.namespace.name=loopback");
                        std::printf(
                                "{\"event\": \"request\", \"stream\": %d, \"authority\": \"%s\", "
                                "\"peer\": \"%s\", \"traceparent_ok\": %s}\n",
                                e.stream_id, format_authority(e.authority).c_str(),
                                c.tls().peer_identity().to_string().c_str(),
                                is_valid_traceparent(e.traceparent) ? "true" : "false");
                        break;
                    case H2EventKind::data:
                        s.queue.emplace_back(e.data.begin(), e.data.end());
                        s.bytes += e.data.size();
                        SHA256_Update(&s.sha, e.data.data(), e.data.size());
                        break;
                    case H2EventKind::end_stream:
                        s.peer_done = true;
                        break;
                    case H2EventKind::send_done:
                        // The echoed chunk is framed: only now is the received window returned.
                        h2.consume(e.stream_id, s.queue.front().size());
                        s.queue.pop_front();
                        s.writing = false;
                        break;
                    case H2EventKind::closed: {
                        uint8_t d[32];
                        SHA256_Final(d, &s.sha);
                        std::printf(
                                "{\"event\": \"stream_done\", \"stream\": %d, \"bytes\": %zu, "
                                "\"sha256\": \"%s\", \"code\": %u}\n",
                                e.stream_id, s.bytes, hex(d, 32).c_str(), e.error_code);
                        std::fflush(stdout);
                        streams.erase(e.stream_id);
                        continue;
                    }
                    default:
                        break;
                }
            }
            for (auto& [id, s] : streams) {
                if (!s.writing && !s.queue.empty()) {
                    s.writing = h2.write_data(id, s.queue.front(), false).has_value();
                } else if (!s.writing && s.queue.empty() && s.peer_done && !s.fin_sent) {
                    s.fin_sent = h2.write_data(id, {}, true).has_value();
                }
            }
            return true;
        };
        pump(fd, **conn, handle, 60'000);
        if ((*conn)->state() != LinkEngineState::open && (*conn)->error().code != zt::Errc::sys) {
            std::printf("{\"event\": \"closed\", \"reason\": \"%s\"}\n",
                        std::string(zt::to_string((*conn)->error().code)).c_str());
            std::fflush(stdout);
        }
        close(fd);
    }
}

int run_client(const Args& args) {
    auto ctx = context(Role::client, args);
    auto expected = zt::certs::Identity::parse(args.get("--expect-id"));
    if (!expected) {
        die("bad --expect-id");
    }
    size_t total = std::strtoul(args.get("--bytes", "1048576").c_str(), nullptr, 10);
    std::vector<uint8_t> payload(total);
    RAND_bytes(payload.data(), payload.size());
    uint8_t sent_sha[32];
    SHA256(payload.data(), payload.size(), sent_sha);

    sockaddr_in sa = parse_addr(args.get("--connect"));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        die("connect");
    }
    auto conn = LinkEngine::create(ctx, {*expected}, TlsLimits{}, default_limits(Role::client),
                                   mono_ns(), time(nullptr));
    if (!conn) {
        die("create");
    }
    std::array<uint8_t, 16> trace{};
    std::array<uint8_t, 8> parent{};
    RAND_bytes(trace.data(), trace.size());
    RAND_bytes(parent.data(), parent.size());
    BaggageFields baggage;
    baggage.namespace_name = "a";
    baggage.workload_type = "deployment";
    baggage.workload_name = "client";
    ConnectRequest request{args.get("--authority"), build_baggage(baggage),
                           build_forwarded("198.18.1.3:40000", ""),
                           build_traceparent(trace, parent)};
    int32_t id = 0;
    uint16_t status = 0;
    bool ended = false, reset = false, submitted = false;
    size_t offset = 0, received = 0;
    SHA256_CTX got;
    SHA256_Init(&got);
    zt::Error failure{};
    bool failed = false;
    constexpr size_t kChunk = 256 * 1024;
    auto handle = [&](LinkEngine& c, const zt::Result<void>& fed) {
        if (!fed) {
            failure = fed.error();
            failed = true;
            return false;
        }
        if (c.state() != LinkEngineState::open) {
            return true;
        }
        H2Session& h2 = c.h2();
        if (!submitted) {
            auto r = h2.submit_connect(request);
            if (!r) {
                failed = true;
                return false;
            }
            id = *r;
            submitted = true;
        }
        H2Event e;
        while (h2.poll_event(e)) {
            if (e.stream_id != id) {
                continue;
            }
            switch (e.kind) {
                case H2EventKind::response:
                    status = e.status;
                    if (status != 200) {
                        ended = true;
                        break;
                    }
                    [[fallthrough]];
                case H2EventKind::send_done:
                    if (offset < payload.size() || e.kind == H2EventKind::response) {
                        size_t n = std::min(kChunk, payload.size() - offset);
                        bool last = offset + n == payload.size();
                        (void)h2.write_data(id, zt::ByteSpan(payload).subspan(offset, n), last);
                        offset += n;
                    }
                    break;
                case H2EventKind::data:
                    received += e.data.size();
                    SHA256_Update(&got, e.data.data(), e.data.size());
                    h2.consume(id, e.data.size());
                    break;
                case H2EventKind::end_stream:
                    ended = true;
                    break;
                case H2EventKind::reset:
                    reset = ended = true;
                    break;
                default:
                    break;
            }
        }
        return !ended;
    };
    pump(fd, **conn, handle, 30'000);
    close(fd);
    if (failed && status == 0 && failure.code != zt::Errc::h2_protocol &&
        failure.code != zt::Errc::h2_glitches) {
        // TLS 1.3: a client may finish its handshake and learn of the server's refusal from the
        // alert that follows, so any TLS or certificate failure before a status is "refused".
        std::printf("{\"error\": \"handshake\", \"reason\": \"%s\"}\n",
                    std::string(zt::to_string(failure.code)).c_str());
        return 4;
    }
    uint8_t got_sha[32];
    SHA256_Final(got_sha, &got);
    std::printf(
            "{\"status\": %u, \"sent\": %zu, \"received\": %zu, \"sha256_sent\": \"%s\", "
            "\"sha256_received\": \"%s\", \"cipher\": \"0x%04x\"}\n",
            status, offset, received, hex(sent_sha, 32).c_str(), hex(got_sha, 32).c_str(),
            (*conn)->tls().cipher_id());
    if (status != 200) {
        return status == 0 ? 5 : 3;
    }
    if (reset || failed || received != payload.size() || std::memcmp(sent_sha, got_sha, 32) != 0) {
        return 5;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: hbone_loopback server|client --flag value ...\n");
        return 2;
    }
    Args args;
    for (int i = 2; i + 1 < argc; i += 2) {
        args.kv[argv[i]] = argv[i + 1];
    }
    std::string mode = argv[1];
    if (mode == "server") {
        return run_server(args);
    }
    if (mode == "client") {
        return run_client(args);
    }
    return 2;
}
