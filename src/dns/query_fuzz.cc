// query_fuzz.cc is the libFuzzer target for the DNS proxy's query path: any bytes arrive as a
// client's query (parse, decide against a fixed mesh, encode the answer at the client's size)
// and as an upstream's answer to a fixed query (checks, relay, truncation for a UDP client).
// Never a crash or a hang, and every answer the proxy makes fits the size it was made for and
// parses back. `make test` replays tests/corpus/query/ through it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "src/config/load.h"
#include "src/dns/answer.h"
#include "src/dns/forwarder.h"
#include "src/dns/message.h"

namespace {

constexpr std::string_view kMesh = R"({
  "workloads": [
    {"uid": "c//Pod/ns1/client", "namespace": "ns1", "network": "nw1",
     "workloadIps": ["198.18.1.2"], "services": {}},
    {"uid": "c//Pod/ns1/h0", "namespace": "ns1", "network": "nw1",
     "workloadIps": ["198.18.3.30", "2001:db8::30"],
     "services": {"ns1/headless.ns1.svc.cluster.local": {"80": 80}}}
  ],
  "services": [
    {"name": "productpage", "namespace": "ns1", "hostname": "productpage.ns1.svc.cluster.local",
     "vips": ["nw1/198.19.9.9", "nw1/2001:db8::9"], "ports": {"80": 80}},
    {"name": "wild", "namespace": "ns1", "hostname": "*.example.com",
     "vips": ["nw1/198.19.9.10"], "ports": {"80": 80}},
    {"name": "headless", "namespace": "ns1", "hostname": "headless.ns1.svc.cluster.local",
     "vips": [], "ports": {"80": 80}},
    {"name": "many", "namespace": "ns2", "hostname": "many.ns2.svc.cluster.local",
     "vips": ["nw1/198.19.10.1", "nw1/198.19.10.2", "nw1/198.19.10.3", "nw1/198.19.10.4",
              "nw1/198.19.10.5", "nw1/198.19.10.6", "nw1/198.19.10.7", "nw1/198.19.10.8"],
     "ports": {"80": 80}}
  ]
})";

struct Mesh {
    std::shared_ptr<const zt::state::Snapshot> snapshot;
    const zt::state::Workload* client = nullptr;
    zt::dns::ForwarderOptions forwarder;
    std::vector<uint8_t> query_bytes;
    zt::dns::Query query;
};

const Mesh& mesh() {
    static const Mesh instance = [] {
        Mesh m;
        m.snapshot = zt::config::load_text(kMesh).snapshot;
        ZT_CHECK(m.snapshot != nullptr);
        m.client = m.snapshot->workload_by_uid("c//Pod/ns1/client");
        m.forwarder.upstreams.push_back(*zt::state::SocketAddr::parse("198.18.0.53:53"));
        m.query_bytes = zt::dns::encode_query(*zt::dns::Name::parse("www.example.net"),
                                              zt::dns::kTypeA, 0x4242);
        m.query = *zt::dns::parse_query(m.query_bytes);
        return m;
    }();
    return instance;
}

void as_client_query(std::span<const uint8_t> data) {
    const Mesh& m = mesh();
    auto query = zt::dns::parse_query(data);
    if (!query) {
        if (data.size() >= zt::dns::kHeaderBytes) {
            auto error = zt::dns::encode_header_error(data, zt::dns::Rcode::formerr);
            ZT_CHECK(error.size() == zt::dns::kHeaderBytes);
        }
        return;
    }
    zt::dns::AnswerOptions options;
    options.ipv6_enabled = (data.size() & 1) == 0;
    for (const zt::state::Workload* client : {m.client, (const zt::state::Workload*)nullptr}) {
        auto decision = zt::dns::decide(m.snapshot.get(), client, *query, options, data.size());
        if (decision.verdict == zt::dns::Verdict::forward) {
            continue;
        }
        size_t limit = zt::dns::udp_payload_limit(*query);
        auto out = zt::dns::encode_decision(*query, decision, limit);
        // Every answer parses back, keeps the id and fits the client's size.
        auto header = zt::dns::read_header(out);
        ZT_CHECK(header.has_value());
        ZT_CHECK(header->id == query->id);
        ZT_CHECK(out.size() <= limit);
        ZT_CHECK(zt::dns::parse_query(out).has_value());
    }
}

void as_upstream_answer(std::span<const uint8_t> data) {
    const Mesh& m = mesh();
    for (auto transport : {zt::dns::Transport::udp, zt::dns::Transport::tcp}) {
        zt::dns::Exchange exchange;
        size_t limit = transport == zt::dns::Transport::udp ? 512 : zt::dns::kMaxMessageBytes;
        uint16_t upstream_id = data.size() >= 2 ? uint16_t(data[0] << 8 | data[1]) : 0;
        exchange.start(m.query, m.query_bytes, transport, limit, upstream_id, m.forwarder, 0);
        zt::dns::Step step = exchange.on_answer(data, 1);
        if (step == zt::dns::Step::reply) {
            // What the client gets has its own id and fits its size.
            auto header = zt::dns::read_header(exchange.reply());
            ZT_CHECK(header.has_value());
            ZT_CHECK(header->id == m.query.id);
            ZT_CHECK(exchange.reply().size() <= limit);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> bytes(data, size);
    as_client_query(bytes);
    as_upstream_answer(bytes);
    return 0;
}
