// Unit tests for the resource store and compose_config: unchanged re-sends leave the generation
// alone, the --static file wins per key, an IP shared by two workloads stays with the one
// ztunnel prefers, the output does not depend on arrival order, and what is composed always
// loads with check-config's loader.

#include "src/agent/xds_store.h"

#include <string>

#include <doctest/doctest.h>

#include "src/config/load.h"
#include "src/config/render.h"
#include "src/state/net.h"

namespace ds = envoy::service::discovery::v3;
using namespace zt::agent;

namespace {

std::string ip_bytes(std::string_view text) {
    auto ip = zt::state::IpAddr::parse(text);
    REQUIRE(ip.has_value());
    return std::string(ip->bytes.begin(), ip->bytes.begin() + long(ip->size()));
}

struct Push {
    google::protobuf::RepeatedPtrField<ds::Resource> updates;
    google::protobuf::RepeatedPtrField<std::string> removed;

    void workload(const std::string& uid, const std::string& ip,
                  istio::workload::TunnelProtocol protocol = istio::workload::HBONE,
                  const std::string& revision = "") {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        w->set_uid(uid);
        w->set_name(uid.substr(uid.rfind('/') + 1));
        w->set_namespace_("default");
        w->set_tunnel_protocol(protocol);
        w->set_canonical_revision(revision);
        w->add_addresses(ip_bytes(ip));
        ds::Resource* r = updates.Add();
        r->set_name(uid);
        r->mutable_resource()->set_value(address.SerializeAsString());
    }

    void service(const std::string& hostname, const std::string& vip) {
        istio::workload::Address address;
        auto* s = address.mutable_service();
        s->set_name(hostname.substr(0, hostname.find('.')));
        s->set_namespace_("default");
        s->set_hostname(hostname);
        auto* a = s->add_addresses();
        a->set_address(ip_bytes(vip));
        auto* port = s->add_ports();
        port->set_service_port(80);
        port->set_target_port(8080);
        ds::Resource* r = updates.Add();
        r->set_name("default/" + hostname);
        r->mutable_resource()->set_value(address.SerializeAsString());
    }
};

zt::state::Workload static_workload(const std::string& uid, const std::string& ip) {
    zt::state::Workload w;
    w.uid = uid;
    w.name = "static";
    w.namespace_ = "default";
    w.workload_ips.push_back(*zt::state::IpAddr::parse(ip));
    return w;
}

void check_loads(const zt::state::Config& config) {
    auto loaded = zt::config::load_text(zt::config::render(config));
    std::string first_error = loaded.errors.empty() ? std::string() : loaded.errors.front();
    INFO(first_error);
    CHECK(loaded.errors.empty());
}

}  // namespace

TEST_CASE("xds store: re-sending a resource unchanged does not move the generation") {
    XdsStore store{TranslateContext{}};
    Push push;
    push.workload("c1//Pod/default/a", "198.18.1.2");
    CHECK(store.addresses().apply(push.updates, push.removed).empty());
    uint64_t generation = store.generation();
    CHECK(generation > 0);
    CHECK(store.addresses().apply(push.updates, push.removed).empty());
    CHECK(store.generation() == generation);
    Push changed;
    changed.workload("c1//Pod/default/a", "198.18.1.2", istio::workload::HBONE, "v2");
    CHECK(store.addresses().apply(changed.updates, changed.removed).empty());
    CHECK(store.generation() == generation + 1);
    Push gone;
    gone.removed.Add("c1//Pod/default/a");
    gone.removed.Add("never-known");
    store.addresses().apply(gone.updates, gone.removed);
    CHECK(store.generation() == generation + 2);
    CHECK(store.workload_count() == 0);
}

TEST_CASE("xds store: a rejected update keeps the last accepted state") {
    XdsStore store{TranslateContext{}};
    Push good;
    good.workload("c1//Pod/default/a", "198.18.1.2");
    store.addresses().apply(good.updates, good.removed);
    Push bad;
    bad.workload("c1//Pod/default/a", "198.18.1.2", istio::workload::LEGACY_ISTIO_MTLS);
    auto rejections = store.addresses().apply(bad.updates, bad.removed);
    REQUIRE(rejections.size() == 1);
    CHECK(rejections[0].name == "c1//Pod/default/a");
    auto config = compose_config({}, store, nullptr);
    REQUIRE(config.workloads.size() == 1);
    CHECK(config.workloads[0].protocol == zt::state::Protocol::hbone);
    CHECK(store.rejected_total() == 1);
}

TEST_CASE("xds store: an IP in two workloads stays with the one ztunnel prefers") {
    XdsStore store{TranslateContext{}};
    Push push;
    push.workload("c1//Pod/default/tcp-pod", "198.18.1.2", istio::workload::NONE);
    push.workload("c1//Pod/default/hbone-pod", "198.18.1.2", istio::workload::HBONE);
    push.workload("c1/networking.istio.io/WorkloadEntry/default/vm", "198.18.1.3");
    push.workload("c1//Pod/default/other", "198.18.1.3", istio::workload::NONE);
    store.addresses().apply(push.updates, push.removed);
    std::vector<std::string> warnings;
    auto config = compose_config({}, store, &warnings);
    REQUIRE(config.workloads.size() == 4);
    auto ips_of = [&](std::string_view uid) {
        for (const auto& w : config.workloads) {
            if (w.uid == uid) {
                return w.workload_ips.size();
            }
        }
        return size_t(99);
    };
    CHECK(ips_of("c1//Pod/default/hbone-pod") == 1);
    CHECK(ips_of("c1//Pod/default/tcp-pod") == 0);
    CHECK(ips_of("c1//Pod/default/other") == 1);  // A pod beats a WorkloadEntry.
    CHECK(ips_of("c1/networking.istio.io/WorkloadEntry/default/vm") == 0);
    CHECK(warnings.size() == 2);
    check_loads(config);

    // Between equals the newest wins.
    XdsStore equals{TranslateContext{}};
    Push first;
    first.workload("c1//Pod/default/old", "198.18.1.9");
    equals.addresses().apply(first.updates, first.removed);
    Push second;
    second.workload("c1//Pod/default/new", "198.18.1.9");
    equals.addresses().apply(second.updates, second.removed);
    auto both = compose_config({}, equals, nullptr);
    REQUIRE(both.workloads.size() == 2);
    CHECK(both.workloads[0].uid == "c1//Pod/default/new");
    CHECK(both.workloads[0].workload_ips.size() == 1);
    CHECK(both.workloads[1].workload_ips.empty());
    check_loads(both);
}

TEST_CASE("xds store: the static file wins per key; pods come from it") {
    XdsStore store{TranslateContext{}};
    Push push;
    push.workload("c1//Pod/default/a", "198.18.1.2");
    push.workload("c1//Pod/default/b", "198.18.1.3");
    push.service("server.default.svc.cluster.local", "198.19.0.10");
    store.addresses().apply(push.updates, push.removed);
    zt::state::Config base;
    base.workloads.push_back(static_workload("c1//Pod/default/a", "198.18.1.20"));
    zt::state::Pod pod;
    pod.uid = "c1//Pod/default/a";
    pod.netns = "/var/run/netns/zt-pod-a";
    base.pods.push_back(pod);
    auto config = compose_config(base, store, nullptr);
    REQUIRE(config.workloads.size() == 2);
    CHECK(config.workloads[0].name == "static");
    CHECK(config.workloads[0].workload_ips[0].to_string() == "198.18.1.20");
    CHECK(config.services.size() == 1);
    CHECK(config.pods.size() == 1);
    check_loads(config);
}

TEST_CASE("xds store: the composed file does not depend on arrival order") {
    XdsStore forward{TranslateContext{}};
    XdsStore backward{TranslateContext{}};
    std::vector<std::string> uids = {"c1//Pod/default/z", "c1//Pod/default/m", "c1//Pod/default/a"};
    for (size_t i = 0; i < uids.size(); ++i) {
        Push one;
        one.workload(uids[i], "198.18.2." + std::to_string(i + 1));
        forward.addresses().apply(one.updates, one.removed);
    }
    for (size_t i = uids.size(); i-- > 0;) {
        Push one;
        one.workload(uids[i], "198.18.2." + std::to_string(i + 1));
        backward.addresses().apply(one.updates, one.removed);
    }
    std::string a = zt::config::render(compose_config({}, forward, nullptr));
    std::string b = zt::config::render(compose_config({}, backward, nullptr));
    CHECK(a == b);
    CHECK(a.find("default/a") < a.find("default/z"));
}
