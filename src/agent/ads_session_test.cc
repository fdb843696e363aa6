// Unit tests for the delta ADS session with the real resource store behind it: the node ztunnel
// sends, wildcard initial requests in order, ACK by nonce, a NACK naming every rejected resource
// while the rest is applied, removals, initial_resource_versions after a reconnect (a rejected
// resource keeps the version last accepted), synced and ready, and an unknown type.

#include "src/agent/ads_session.h"

#include <string>

#include <doctest/doctest.h>

#include "src/agent/xds_store.h"
#include "src/state/net.h"

namespace ds = envoy::service::discovery::v3;
using namespace zt::agent;

namespace {

std::string ip_bytes(std::string_view text) {
    auto ip = zt::state::IpAddr::parse(text);
    REQUIRE(ip.has_value());
    return std::string(ip->bytes.begin(), ip->bytes.begin() + long(ip->size()));
}

void add_workload(ds::DeltaDiscoveryResponse& response, const std::string& uid,
                  const std::string& ip, const std::string& version) {
    istio::workload::Address address;
    auto* w = address.mutable_workload();
    w->set_uid(uid);
    w->set_name(uid.substr(uid.rfind('/') + 1));
    w->set_namespace_("default");
    w->add_addresses(ip_bytes(ip));
    ds::Resource* r = response.add_resources();
    r->set_name(uid);
    r->set_version(version);
    r->mutable_resource()->set_type_url(std::string(kAddressTypeUrl));
    r->mutable_resource()->set_value(address.SerializeAsString());
}

void add_policy(ds::DeltaDiscoveryResponse& response, const std::string& name,
                const std::string& version) {
    istio::security::Authorization authz;
    authz.set_name(name);
    authz.set_namespace_("default");
    authz.set_scope(istio::security::NAMESPACE);
    authz.set_action(istio::security::DENY);
    ds::Resource* r = response.add_resources();
    r->set_name("default/" + name);
    r->set_version(version);
    r->mutable_resource()->set_type_url(std::string(kAuthorizationTypeUrl));
    r->mutable_resource()->set_value(authz.SerializeAsString());
}

ds::DeltaDiscoveryResponse response_of(std::string_view url, const std::string& nonce) {
    ds::DeltaDiscoveryResponse response;
    response.set_type_url(std::string(url));
    response.set_nonce(nonce);
    return response;
}

struct Fixture {
    XdsStore store{TranslateContext{}};
    AdsSession session{build_node(NodeIdentity{}),
                       {{std::string(kAddressTypeUrl), &store.addresses()},
                        {std::string(kAuthorizationTypeUrl), &store.authorizations()}}};
};

}  // namespace

TEST_CASE("ads: the node id and metadata are ztunnel's, later metadata winning") {
    NodeIdentity identity = node_identity_from_env({{"INSTANCE_IP", "198.18.0.5"},
                                                    {"POD_NAME", "ztunnel-x1"},
                                                    {"POD_NAMESPACE", "istio-system"},
                                                    {"NODE_NAME", "node1"},
                                                    {"ISTIO_META_CLUSTER_ID", "c1"},
                                                    {"ISTIO_META_NODE_NAME", "override"},
                                                    {"ISTIO_METAJSON_LABELS", "{\"app\":\"zt\"}"},
                                                    {"ISTIO_METAJSON_BAD", "{nope"},
                                                    {"OTHER", "x"}});
    std::vector<std::string> bad;
    ds::Node node = build_node(identity, &bad);
    CHECK(node.id() == "ztunnel~198.18.0.5~ztunnel-x1.istio-system~istio-system.svc.cluster.local");
    const auto& fields = node.metadata().fields();
    CHECK(fields.at("NAME").string_value() == "ztunnel-x1");
    CHECK(fields.at("NAMESPACE").string_value() == "istio-system");
    CHECK(fields.at("INSTANCE_IPS").string_value() == "198.18.0.5");
    CHECK(fields.at("NODE_NAME").string_value() == "override");
    CHECK(fields.at("CLUSTER_ID").string_value() == "c1");
    CHECK(fields.at("LABELS").struct_value().fields().at("app").string_value() == "zt");
    CHECK(fields.count("BAD") == 0);
    CHECK(fields.count("OTHER") == 0);
    REQUIRE(bad.size() == 1);
    CHECK(bad[0] == "ISTIO_METAJSON_BAD");

    ds::Node empty = build_node(NodeIdentity{});
    CHECK(empty.id() == "ztunnel~1.1.1.1~.~.svc.cluster.local");
}

TEST_CASE("ads: first stream subscribes by wildcard to Address then Authorization") {
    Fixture f;
    auto initial = f.session.initial_requests();
    REQUIRE(initial.size() == 2);
    CHECK(initial[0].type_url() == kAddressTypeUrl);
    CHECK(initial[1].type_url() == kAuthorizationTypeUrl);
    for (const auto& request : initial) {
        CHECK(request.has_node());
        CHECK(request.resource_names_subscribe_size() == 0);
        CHECK(request.resource_names_unsubscribe_size() == 0);
        CHECK(request.initial_resource_versions_size() == 0);
        CHECK(request.response_nonce().empty());
    }
    CHECK_FALSE(f.session.synced());
    CHECK_FALSE(f.session.ready());
}

TEST_CASE("ads: ACK by nonce; NACK names the rejected resources and applies the rest") {
    Fixture f;
    auto first = response_of(kAddressTypeUrl, "n1");
    add_workload(first, "c1//Pod/default/a", "198.18.1.2", "v1");
    ds::Resource* broken = first.add_resources();
    broken->set_name("broken");
    broken->set_version("v9");
    broken->mutable_resource()->set_value("\xff\xff\xff");
    ds::Resource* legacy = first.add_resources();
    {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        w->set_uid("c1//Pod/default/legacy");
        w->set_namespace_("default");
        w->set_tunnel_protocol(istio::workload::LEGACY_ISTIO_MTLS);
        legacy->set_name("c1//Pod/default/legacy");
        legacy->mutable_resource()->set_value(address.SerializeAsString());
    }
    ResponseOutcome outcome = f.session.on_response(first, 100);
    CHECK_FALSE(outcome.ack);
    CHECK(outcome.reply.type_url() == kAddressTypeUrl);
    CHECK(outcome.reply.response_nonce() == "n1");
    CHECK(outcome.rejected == 2);
    CHECK_FALSE(outcome.reply.has_node());
    const std::string& error = outcome.reply.error_detail().message();
    CHECK(error.find("broken: decode") != std::string::npos);
    CHECK(error.find("c1//Pod/default/legacy: ") != std::string::npos);
    CHECK(error.find("; ") != std::string::npos);
    CHECK(f.store.workload_count() == 1);  // The good one is applied.
    CHECK_FALSE(outcome.became_synced);    // Authorization has not answered yet.

    auto authz = response_of(kAuthorizationTypeUrl, "n2");
    add_policy(authz, "deny-all", "p1");
    outcome = f.session.on_response(authz, 200);
    CHECK(outcome.ack);
    CHECK(outcome.reply.response_nonce() == "n2");
    CHECK_FALSE(outcome.reply.has_error_detail());
    CHECK(outcome.became_synced);    // Both types have had a response applied...
    CHECK_FALSE(f.session.ready());  // ...but Address was NACKed: not ready, as ztunnel.

    auto second = response_of(kAddressTypeUrl, "n3");
    add_workload(second, "c1//Pod/default/b", "198.18.1.3", "v2");
    outcome = f.session.on_response(second, 300);
    CHECK(outcome.ack);
    CHECK(outcome.became_ready);
    CHECK(f.session.ready());

    auto status = f.session.status();
    REQUIRE(status.size() == 2);
    CHECK(status[0].nacks == 1);
    CHECK(status[0].acks == 1);
    CHECK(status[0].last_nack_nonce == "n1");
    CHECK(status[0].last_ack_nonce == "n3");
    CHECK(status[0].last_ack_unix_ns == 300);
    CHECK(status[1].acks == 1);
}

TEST_CASE("ads: a reconnect announces known resources with the versions held") {
    Fixture f;
    auto first = response_of(kAddressTypeUrl, "n1");
    add_workload(first, "c1//Pod/default/a", "198.18.1.2", "v1");
    add_workload(first, "c1//Pod/default/b", "198.18.1.3", "v1");
    f.session.on_response(first, 1);
    auto authz = response_of(kAuthorizationTypeUrl, "n2");
    add_policy(authz, "p", "p7");
    f.session.on_response(authz, 2);

    // b is updated with a version whose content is rejected: b keeps v1; a is removed.
    auto update = response_of(kAddressTypeUrl, "n3");
    {
        istio::workload::Address address;
        auto* w = address.mutable_workload();
        w->set_uid("c1//Pod/default/b");
        w->set_namespace_("default");
        w->add_addresses("bad");  // Three bytes: neither IPv4 nor IPv6.
        ds::Resource* r = update.add_resources();
        r->set_name("c1//Pod/default/b");
        r->set_version("v2");
        r->mutable_resource()->set_value(address.SerializeAsString());
    }
    ds::Resource* fresh_bad = update.add_resources();
    fresh_bad->set_name("never-accepted");
    fresh_bad->set_version("v5");
    update.add_removed_resources("c1//Pod/default/a");
    auto outcome = f.session.on_response(update, 3);
    CHECK_FALSE(outcome.ack);
    CHECK(f.store.workload_count() == 1);

    auto again = f.session.initial_requests();
    REQUIRE(again.size() == 2);
    const auto& versions = again[0].initial_resource_versions();
    CHECK(versions.size() == 2);
    CHECK(versions.at("c1//Pod/default/b") == "v1");
    CHECK(versions.at("never-accepted").empty());
    CHECK(versions.count("c1//Pod/default/a") == 0);
    CHECK(again[1].initial_resource_versions().at("default/p") == "p7");
}

TEST_CASE("ads: a response for a type nobody watches is ACKed and flagged") {
    Fixture f;
    auto other = response_of("type.googleapis.com/envoy.config.cluster.v3.Cluster", "x1");
    auto outcome = f.session.on_response(other, 1);
    CHECK(outcome.ack);
    CHECK(outcome.unknown_type);
    CHECK(outcome.reply.response_nonce() == "x1");
}

TEST_CASE("ads: a policy whose resource name is not namespace/name is rejected") {
    Fixture f;
    auto authz = response_of(kAuthorizationTypeUrl, "n1");
    add_policy(authz, "ok", "v1");
    add_policy(authz, "renamed", "v1");
    authz.mutable_resources(1)->set_name("something-else");
    auto outcome = f.session.on_response(authz, 1);
    CHECK_FALSE(outcome.ack);
    CHECK(outcome.error.find("something-else: the resource name is not") != std::string::npos);
    CHECK(f.store.policy_count() == 1);
}
