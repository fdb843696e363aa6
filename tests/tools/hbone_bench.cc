// hbone_bench is the hbone/ micro-benchmark: bytes per second through an in-memory HBONE client →
// server pair (TLS 1.3 AES-128-GCM + HTTP/2 CONNECT, the production engines, no sockets) for 1
// stream and for 100 streams, against raw AES-128-GCM seal + open of the same bytes in 16 KiB
// records through BoringSSL's EVP_AEAD API, all in one run. Prints a Markdown table. Rates use
// this process's CPU time (the machine is shared); wall time is printed too.
//
//   build/tools/hbone_bench [total_MiB=512] [repeats=3]

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <openssl/aead.h>
#include <openssl/rand.h>

#include "hbone/link_engine.h"
#include "tests/support/hbone_pki.h"

using namespace zt::hbone;

namespace {

struct Timing {
    double cpu_s = 0;
    double wall_s = 0;
};

double now_s(clockid_t clock) {
    timespec ts;
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

template <class F>
Timing timed(F&& body) {
    double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
    double wall = now_s(CLOCK_MONOTONIC);
    body();
    return {now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu, now_s(CLOCK_MONOTONIC) - wall};
}

// Sender writes `per_stream` bytes on each of its streams from one shared buffer (zero-copy:
// H2Session frames straight from it), and the receiver consumes everything at once.
struct OneWay {
    const std::vector<uint8_t>* buffer = nullptr;
    size_t per_stream = 0;

    struct Progress {
        size_t sent = 0;
        size_t received = 0;
        bool done = false;
    };

    std::vector<Progress> streams;  // By stream index = (id - 1) / 2.
    size_t received_total = 0;
    bool failed = false;

    Progress& at(int32_t id) { return streams[static_cast<size_t>(id - 1) / 2]; }

    void write_next(H2Session& s, int32_t id) {
        Progress& p = at(id);
        size_t n = std::min(buffer->size(), per_stream - p.sent);
        p.sent += n;
        bool last = p.sent == per_stream;
        failed = failed || !s.write_data(id, zt::ByteSpan(buffer->data(), n), last).has_value();
    }

    void on_client(H2Session& s, H2Event& e) {
        if (e.kind == H2EventKind::response) {
            failed = failed || e.status != 200;
            write_next(s, e.stream_id);
        } else if (e.kind == H2EventKind::send_done && at(e.stream_id).sent < per_stream) {
            write_next(s, e.stream_id);
        }
    }

    void on_server(H2Session& s, H2Event& e) {
        if (e.kind == H2EventKind::request) {
            failed = failed || !s.respond(e.stream_id, kStatusOk).has_value();
        } else if (e.kind == H2EventKind::data) {
            at(e.stream_id).received += e.data.size();
            received_total += e.data.size();
            s.consume(e.stream_id, e.data.size());
        } else if (e.kind == H2EventKind::end_stream) {
            at(e.stream_id).done = true;
        }
    }
};

template <class Handler>
void drain(LinkEngine& client, LinkEngine& server, Handler& h) {
    H2Event event;
    while (client.h2().poll_event(event)) {
        h.on_client(client.h2(), event);
    }
    while (server.h2().poll_event(event)) {
        h.on_server(server.h2(), event);
    }
}

// hop feeds `from`'s output straight into `to` (no extra copy: the socket would be the copy).
bool hop(LinkEngine& from, LinkEngine& to) {
    zt::ByteSpan out = from.pending_output();
    if (out.empty()) {
        return false;
    }
    bool fed = to.feed(out).has_value();
    from.consume_output(out.size());
    if (!fed) {
        std::fprintf(stderr, "feed failed: %s\n",
                     std::string(zt::to_string(to.error().code)).c_str());
        std::exit(1);
    }
    return true;
}

template <class Handler>
void run(LinkEngine& client, LinkEngine& server, Handler& h) {
    for (;;) {
        drain(client, server, h);
        bool moved = hop(client, server);
        drain(client, server, h);
        moved = hop(server, client) || moved;
        drain(client, server, h);
        if (!moved) {
            return;
        }
    }
}

struct Nothing {
    void on_client(H2Session&, H2Event&) {}

    void on_server(H2Session&, H2Event&) {}
};

// stack_rate moves `total` bytes client → server over `streams` tunnels; returns timing.
Timing stack_rate(const zt::test::HbonePki& pki, size_t streams, size_t total,
                  const std::vector<uint8_t>& buffer) {
    auto client = LinkEngine::create(pki.client_ctx, {pki.server_id}, TlsLimits{},
                                     default_limits(Role::client), 0, pki.ca.now_unix());
    auto server = LinkEngine::create(pki.server_ctx, {}, TlsLimits{}, default_limits(Role::server),
                                     0, pki.ca.now_unix());
    if (!client || !server) {
        std::fprintf(stderr, "create failed\n");
        std::exit(1);
    }
    Nothing nothing;
    run(**client, **server, nothing);  // Handshake and SETTINGS outside the timing.
    OneWay flow;
    flow.buffer = &buffer;
    flow.per_stream = total / streams;
    flow.streams.resize(streams);
    Timing t = timed([&] {
        for (size_t i = 0; i < streams; i++) {
            ConnectRequest request{"198.18.0.7:" + std::to_string(1000 + i), "", "", ""};
            if (!(*client)->h2().submit_connect(request)) {
                std::exit(1);
            }
        }
        run(**client, **server, flow);
    });
    if (flow.failed || flow.received_total != flow.per_stream * streams) {
        std::fprintf(stderr, "transfer incomplete: %zu of %zu\n", flow.received_total,
                     flow.per_stream * streams);
        std::exit(1);
    }
    return t;
}

// aead_rate seals and opens `total` bytes in 16 KiB records with AES-128-GCM.
Timing aead_rate(size_t total, const std::vector<uint8_t>& buffer) {
    uint8_t key[16];
    RAND_bytes(key, sizeof key);
    bssl::ScopedEVP_AEAD_CTX ctx;
    if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_aes_128_gcm(), key, sizeof key, 16, nullptr)) {
        std::exit(1);
    }
    constexpr size_t kRecord = 16384;
    std::vector<uint8_t> sealed(kRecord + 16);
    std::vector<uint8_t> opened(kRecord);
    uint8_t nonce[12] = {};
    size_t done = 0;
    Timing t = timed([&] {
        uint64_t seq = 0;
        while (done < total) {
            size_t n = std::min(kRecord, total - done);
            const uint8_t* in = buffer.data() + (done % (buffer.size() - kRecord + 1));
            std::memcpy(nonce + 4, &seq, 8);
            seq++;
            size_t out_len = 0;
            if (!EVP_AEAD_CTX_seal(ctx.get(), sealed.data(), &out_len, sealed.size(), nonce,
                                   sizeof nonce, in, n, nullptr, 0) ||
                !EVP_AEAD_CTX_open(ctx.get(), opened.data(), &n, opened.size(), nonce, sizeof nonce,
                                   sealed.data(), out_len, nullptr, 0)) {
                std::exit(1);
            }
            done += n;
        }
    });
    return t;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
    size_t total_mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 512;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
    size_t total = total_mib << 20;
    std::vector<uint8_t> buffer(1 << 20);
    RAND_bytes(buffer.data(), buffer.size());
    zt::test::HbonePki pki;

    struct Row {
        const char* name;
        Timing best;
    };

    Row rows[] = {{"raw AES-128-GCM seal+open (EVP_AEAD, 16 KiB records)", {}},
                  {"HBONE pair, 1 stream (TLS 1.3 + H2, client -> server)", {}},
                  {"HBONE pair, 100 streams", {}}};
    for (int r = 0; r < repeats; r++) {
        Timing t[3] = {aead_rate(total, buffer), stack_rate(pki, 1, total, buffer),
                       stack_rate(pki, 100, total, buffer)};
        for (int i = 0; i < 3; i++) {
            if (r == 0 || t[i].cpu_s < rows[i].best.cpu_s) {
                rows[i].best = t[i];
            }
        }
    }
    double mib = static_cast<double>(total) / (1 << 20);
    std::printf("machine: %s, %ld cores online, AES instructions: %s\n", cpu_model().c_str(),
                sysconf(_SC_NPROCESSORS_ONLN), EVP_has_aes_hardware() ? "yes" : "no");
    std::printf("payload: %zu MiB per run, best of %d runs (by CPU time)\n\n", total_mib, repeats);
    std::printf("| path | MiB/s (CPU) | MiB/s (wall) | vs raw AEAD |\n|---|---:|---:|---:|\n");
    double raw = mib / rows[0].best.cpu_s;
    for (const Row& row : rows) {
        double rate = mib / row.best.cpu_s;
        std::printf("| %s | %.0f | %.0f | %.0f %% |\n", row.name, rate, mib / row.best.wall_s,
                    100.0 * rate / raw);
    }
    return 0;
}
