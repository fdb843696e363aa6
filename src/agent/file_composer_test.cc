// Unit tests for the incremental file composer: on random sequences of xDS changes (workloads
// sharing IPs and uids, services and policies sharing keys, removals, host-network workloads,
// the --static file changing under them), its text is byte for byte
// `config::render(compose_config(...))`, its warnings are compose_config's, and its validation
// is `config::load_text`'s verdict; a change of one workload re-renders one line.

#include "src/agent/file_composer.h"

#include <random>
#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/config/render.h"
#include "src/state/net.h"

namespace ds = envoy::service::discovery::v3;
using namespace zt::agent;

namespace {

using Resources = google::protobuf::RepeatedPtrField<ds::Resource>;
using Names = google::protobuf::RepeatedPtrField<std::string>;

std::string ip_bytes(std::string_view text) {
    auto ip = zt::state::IpAddr::parse(text);
    REQUIRE(ip.has_value());
    return std::string(ip->bytes.begin(), ip->bytes.begin() + long(ip->size()));
}

// Mesh makes random resources from small pools, so that keys, IPs and names collide often.
struct Mesh {
    std::mt19937 random;
    XdsStore store{TranslateContext{}};
    zt::state::Config base;
    int revision = 0;

    explicit Mesh(uint32_t seed) : random(seed) {}

    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); }

    bool chance(int percent) { return int(pick(100)) < percent; }

    std::string ip() { return "198.18.0." + std::to_string(1 + pick(8)); }

    std::string uid() {
        // Pods and a non-pod kind (ranked below pods for a shared IP).
        return chance(75)
                       ? "c1//Pod/default/w" + std::to_string(pick(14))
                       : "c1/networking.istio.io/WorkloadEntry/default/e" + std::to_string(pick(4));
    }

    void workload(Resources& updates) {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        std::string id = uid();
        w->set_uid(id);
        w->set_name(id.substr(id.rfind('/') + 1));
        w->set_namespace_("default");
        w->set_tunnel_protocol(chance(60) ? istio::workload::HBONE : istio::workload::NONE);
        w->set_canonical_revision("r" + std::to_string(revision++));
        if (chance(15)) {
            w->set_network("net1");
        }
        if (chance(8)) {
            w->set_network_mode(istio::workload::HOST_NETWORK);
        }
        size_t ips = pick(3);  // 0, 1 or 2 (maybe the same one twice).
        for (size_t i = 0; i < ips; ++i) {
            w->add_addresses(ip_bytes(ip()));
        }
        ds::Resource* r = updates.Add();
        // Resource names mostly follow the uid; some name another, so two resources can hold
        // one uid.
        r->set_name(chance(80) ? id : "alias" + std::to_string(pick(4)));
        r->mutable_resource()->set_value(address.SerializeAsString());
    }

    void service(Resources& updates) {
        istio::workload::Address address;
        auto* s = address.mutable_service();
        std::string host = "svc" + std::to_string(pick(4)) + ".default.svc.cluster.local";
        s->set_name(host.substr(0, host.find('.')));
        s->set_namespace_("default");
        s->set_hostname(host);
        s->add_addresses()->set_address(ip_bytes("198.19.0." + std::to_string(1 + pick(6))));
        auto* port = s->add_ports();
        port->set_service_port(80);
        port->set_target_port(uint32_t(8000 + pick(50)));
        ds::Resource* r = updates.Add();
        r->set_name(chance(70) ? "default/" + host : "svc-alias" + std::to_string(pick(3)));
        r->mutable_resource()->set_value(address.SerializeAsString());
    }

    void policy(Resources& updates) {
        istio::security::Authorization a;
        std::string name = "p" + std::to_string(pick(5));
        a.set_name(name);
        a.set_namespace_("default");
        a.set_scope(istio::security::NAMESPACE);
        a.set_action(chance(50) ? istio::security::ALLOW : istio::security::DENY);
        auto* match = a.add_rules()->add_clauses()->add_matches();
        match->add_destination_ports(uint32_t(8000 + pick(100)));
        ds::Resource* r = updates.Add();
        r->set_name("default/" + name);
        r->mutable_resource()->set_value(a.SerializeAsString());
    }

    void change_base() {
        switch (pick(4)) {
            case 0: {
                zt::state::Workload w;
                w.uid = uid();
                w.name = "static";
                w.namespace_ = "default";
                w.workload_ips.push_back(*zt::state::IpAddr::parse(ip()));
                base.workloads.push_back(w);
                break;
            }
            case 1:
                if (!base.workloads.empty()) {
                    base.workloads.erase(base.workloads.begin() +
                                         long(pick(base.workloads.size())));
                }
                break;
            case 2: {
                zt::state::Pod pod;
                pod.uid = "c1//Pod/default/w" + std::to_string(pick(14));
                pod.netns = "/var/run/netns/pod" + std::to_string(pick(20));
                base.pods.push_back(pod);
                break;
            }
            default:
                if (!base.pods.empty()) {
                    base.pods.erase(base.pods.begin() + long(pick(base.pods.size())));
                }
                break;
        }
    }

    // step makes one random change.
    void step() {
        Resources updates;
        Names removed;
        size_t kind = pick(100);
        if (kind < 45) {
            workload(updates);
            (void)store.addresses().apply(updates, removed);
        } else if (kind < 60) {
            service(updates);
            (void)store.addresses().apply(updates, removed);
        } else if (kind < 70) {
            policy(updates);
            (void)store.authorizations().apply(updates, removed);
        } else if (kind < 88) {
            // Remove one known name (or one never sent).
            const auto& entries = store.address_entries();
            if (!entries.empty() && chance(90)) {
                auto it = entries.begin();
                std::advance(it, long(pick(entries.size())));
                removed.Add(std::string(it->first));
            } else {
                removed.Add("never-sent");
            }
            (void)store.addresses().apply(updates, removed);
        } else if (kind < 94) {
            const auto& entries = store.policy_entries();
            if (!entries.empty()) {
                auto it = entries.begin();
                std::advance(it, long(pick(entries.size())));
                removed.Add(std::string(it->first));
                (void)store.authorizations().apply(updates, removed);
            }
        } else {
            change_base();
        }
    }
};

// check_same compares the composer with compose_config + render + load_text.
void check_same(FileComposer& file, Mesh& mesh, bool validate) {
    std::vector<std::string> warnings, expected_warnings;
    file.update(mesh.base, &mesh.store, warnings);
    std::string text = file.text();
    std::string expected =
            zt::config::render(compose_config(mesh.base, mesh.store, &expected_warnings));
    REQUIRE(text == expected);
    CHECK(warnings == expected_warnings);
    if (!validate) {
        return;
    }
    std::string sha = zt::config::sha256_hex(text);
    zt::config::LoadResult got = file.load(text, sha);
    zt::config::LoadResult want = zt::config::load_text(text);
    CHECK(got.errors == want.errors);
    CHECK(got.warnings == want.warnings);
    CHECK(got.sha256 == want.sha256);
    CHECK(got.bytes == want.bytes);
    REQUIRE(bool(got.snapshot) == bool(want.snapshot));
    if (got.snapshot) {
        CHECK(got.snapshot->config() == want.snapshot->config());
    }
}

}  // namespace

TEST_CASE("file composer: random changes give render(compose_config) byte for byte") {
    for (uint32_t seed : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u}) {
        CAPTURE(seed);
        Mesh mesh(seed);
        FileComposer file;
        for (int i = 0; i < 300; ++i) {
            CAPTURE(i);
            // Between writes one change or a few (a batch).
            size_t changes = mesh.chance(70) ? 1 : 1 + mesh.pick(6);
            for (size_t c = 0; c < changes; ++c) {
                mesh.step();
            }
            check_same(file, mesh, i % 3 == 0);
        }
    }
}

TEST_CASE("file composer: conflicts and warnings follow the IP's holder") {
    Mesh mesh(42);
    FileComposer file;
    Resources updates;
    Names removed;
    auto workload = [&](const std::string& uid, const std::string& ip, bool hbone) {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        w->set_uid(uid);
        w->set_name(uid.substr(uid.rfind('/') + 1));
        w->set_namespace_("default");
        w->set_tunnel_protocol(hbone ? istio::workload::HBONE : istio::workload::NONE);
        w->add_addresses(ip_bytes(ip));
        ds::Resource* r = updates.Add();
        r->set_name(uid);
        r->mutable_resource()->set_value(address.SerializeAsString());
    };
    workload("c1//Pod/default/a", "198.18.1.2", false);
    workload("c1//Pod/default/b", "198.18.1.2", false);
    (void)mesh.store.addresses().apply(updates, removed);
    check_same(file, mesh, true);
    std::vector<std::string> warnings;
    // b is newer: it holds the IP and a's warning names it.
    file.update(mesh.base, &mesh.store, warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("default/b") != std::string::npos);
    // a turns HBONE: it takes the IP over; only the two lines of the conflict are rendered.
    updates.Clear();
    workload("c1//Pod/default/a", "198.18.1.2", true);
    workload("c1//Pod/default/z", "198.18.9.9", true);  // An unrelated new workload.
    (void)mesh.store.addresses().apply(updates, removed);
    warnings.clear();
    file.update(mesh.base, &mesh.store, warnings);
    CHECK(file.rendered() == 3);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("IP 198.18.1.2 is also an IP of \"c1//Pod/default/a\"") !=
          std::string::npos);
    check_same(file, mesh, true);
    // a removed: b keeps the IP with no warning.
    updates.Clear();
    removed.Add("c1//Pod/default/a");
    (void)mesh.store.addresses().apply(updates, removed);
    warnings.clear();
    file.update(mesh.base, &mesh.store, warnings);
    CHECK(warnings.empty());
    check_same(file, mesh, true);
}

TEST_CASE("file composer: one changed workload of many renders and parses one line") {
    Mesh mesh(7);
    FileComposer file;
    Resources updates;
    Names removed;
    auto workload = [&](int i, const std::string& revision) {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        std::string uid = "c1//Pod/default/w" + std::to_string(i);
        w->set_uid(uid);
        w->set_name("w" + std::to_string(i));
        w->set_namespace_("default");
        w->set_canonical_revision(revision);
        w->add_addresses(
                ip_bytes("198.18." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250)));
        ds::Resource* r = updates.Add();
        r->set_name(uid);
        r->mutable_resource()->set_value(address.SerializeAsString());
    };
    for (int i = 0; i < 1000; ++i) {
        workload(i, "v1");
    }
    (void)mesh.store.addresses().apply(updates, removed);
    std::vector<std::string> warnings;
    file.update(mesh.base, &mesh.store, warnings);
    CHECK(file.rendered() == 1000);
    std::string text = file.text();
    auto first = file.load(text, zt::config::sha256_hex(text));
    CHECK(first.errors.empty());
    CHECK(file.parsed() == 1000);
    updates.Clear();
    workload(500, "v2");
    (void)mesh.store.addresses().apply(updates, removed);
    file.update(mesh.base, &mesh.store, warnings);
    CHECK(file.rendered() == 1);
    text = file.text();
    auto second = file.load(text, zt::config::sha256_hex(text));
    CHECK(second.errors.empty());
    CHECK(file.parsed() == 1);
    CHECK(file.workloads() == 1000);
    check_same(file, mesh, true);
}
