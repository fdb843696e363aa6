// Table tests for rbac.cc, one row per rule of docs/ztunnel-reference.md §4.2–4.4: every match
// field and its `not` form, principals without `spiffe://`, the no-identity cases, the structural
// edge cases, scopes' decision order and dry-run.

#include "src/proxy/rbac.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

using zt::proxy::RbacConnection;
using zt::state::Cidr;
using zt::state::Policy;
using zt::state::PolicyAction;
using zt::state::RbacMatch;
using zt::state::StringMatch;

StringMatch exact(std::string value) {
    return {StringMatch::Kind::exact, std::move(value)};
}

StringMatch prefix(std::string value) {
    return {StringMatch::Kind::prefix, std::move(value)};
}

StringMatch suffix(std::string value) {
    return {StringMatch::Kind::suffix, std::move(value)};
}

StringMatch presence() {
    return {StringMatch::Kind::presence, ""};
}

Cidr cidr(const char* text) {
    auto parsed = Cidr::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

// one_match builds a policy with one rule, one clause, one match.
Policy one_match(RbacMatch match, PolicyAction action = PolicyAction::allow) {
    Policy policy;
    policy.name = "p";
    policy.namespace_ = "default";
    policy.action = action;
    policy.rules = {{{std::move(match)}}};
    return policy;
}

RbacConnection conn(const char* src, const char* dst, const char* identity) {
    RbacConnection connection;
    connection.src = *zt::state::SocketAddr::parse(src);
    connection.dst = *zt::state::SocketAddr::parse(dst);
    if (identity != nullptr) {
        auto parsed = zt::certs::Identity::parse(identity);
        REQUIRE(parsed);
        connection.src_identity = *parsed;
    }
    return connection;
}

const char* const kClient = "spiffe://cluster.local/ns/default/sa/client";
const char* const kOther = "spiffe://cluster.local/ns/other/sa/robot";

struct Row {
    const char* name;
    RbacMatch match;
    const char* identity;
    bool expected;
};

}  // namespace

TEST_CASE("rbac: each match field and its not-form") {
    auto m = [](auto setter) {
        RbacMatch match;
        setter(match);
        return match;
    };
    std::vector<Row> rows = {
            {"namespace exact hit", m([](RbacMatch& x) { x.namespaces = {exact("default")}; }),
             kClient, true},
            {"namespace exact miss", m([](RbacMatch& x) { x.namespaces = {exact("default")}; }),
             kOther, false},
            {"namespace prefix", m([](RbacMatch& x) { x.namespaces = {prefix("oth")}; }), kOther,
             true},
            {"namespace suffix", m([](RbacMatch& x) { x.namespaces = {suffix("ult")}; }), kClient,
             true},
            {"namespace presence without identity",
             m([](RbacMatch& x) { x.namespaces = {presence()}; }), nullptr, false},
            {"not namespace", m([](RbacMatch& x) { x.not_namespaces = {exact("default")}; }),
             kClient, false},
            {"not namespace other", m([](RbacMatch& x) { x.not_namespaces = {exact("default")}; }),
             kOther, true},
            {"values in a field are ORed", m([](RbacMatch& x) {
                 x.namespaces = {exact("nope"), exact("other")};
             }),
             kOther, true},
            {"principal without spiffe://",
             m([](RbacMatch& x) { x.principals = {exact("cluster.local/ns/default/sa/client")}; }),
             kClient, true},
            {"principal written with spiffe:// never matches",
             m([](RbacMatch& x) { x.principals = {exact(kClient)}; }), kClient, false},
            {"principal presence needs an identity",
             m([](RbacMatch& x) { x.principals = {presence()}; }), nullptr, false},
            {"principal presence with identity",
             m([](RbacMatch& x) { x.principals = {presence()}; }), kOther, true},
            {"notPrincipals matches plaintext",
             m([](RbacMatch& x) { x.not_principals = {presence()}; }), nullptr, true},
            {"notPrincipals presence refuses any identity",
             m([](RbacMatch& x) { x.not_principals = {presence()}; }), kClient, false},
            {"service account pair", m([](RbacMatch& x) {
                 x.service_accounts = {{"default", "client"}};
             }),
             kClient, true},
            {"service account pair other ns", m([](RbacMatch& x) {
                 x.service_accounts = {{"other", "client"}};
             }),
             kClient, false},
            {"service account without identity", m([](RbacMatch& x) {
                 x.service_accounts = {{"default", "client"}};
             }),
             nullptr, false},
            {"not service account", m([](RbacMatch& x) {
                 x.not_service_accounts = {{"default", "client"}};
             }),
             kOther, true},
            {"source ip in cidr", m([](RbacMatch& x) { x.source_ips = {cidr("198.18.1.0/24")}; }),
             kClient, true},
            {"source ip outside cidr",
             m([](RbacMatch& x) { x.source_ips = {cidr("198.18.2.0/24")}; }), kClient, false},
            {"not source ip", m([](RbacMatch& x) { x.not_source_ips = {cidr("198.18.1.2/32")}; }),
             kClient, false},
            {"destination ip", m([](RbacMatch& x) { x.destination_ips = {cidr("198.18.2.3/32")}; }),
             kClient, true},
            {"not destination ip",
             m([](RbacMatch& x) { x.not_destination_ips = {cidr("198.18.2.0/24")}; }), kClient,
             false},
            {"destination port", m([](RbacMatch& x) { x.destination_ports = {8080}; }), kClient,
             true},
            {"destination port miss", m([](RbacMatch& x) { x.destination_ports = {9999}; }),
             kClient, false},
            {"not destination port (localhost.yaml's deny-9999)",
             m([](RbacMatch& x) { x.not_destination_ports = {9999}; }), kClient, true},
            {"fields are ANDed", m([](RbacMatch& x) {
                 x.namespaces = {exact("default")};
                 x.destination_ports = {9999};
             }),
             kClient, false},
            {"0.0.0.0/0 contains any IPv4",
             m([](RbacMatch& x) { x.source_ips = {cidr("0.0.0.0/0")}; }), kClient, true},
    };
    auto connection_v4 = [](const char* identity) {
        return conn("198.18.1.2:40000", "198.18.2.3:8080", identity);
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        Policy policy = one_match(row.match);
        CHECK(zt::proxy::policy_matches(policy, connection_v4(row.identity)) == row.expected);
    }

    RbacMatch v4_only;
    v4_only.source_ips = {cidr("0.0.0.0/0")};
    CHECK_FALSE(zt::proxy::policy_matches(
            one_match(v4_only), conn("[2001:db8:1::2]:40000", "[2001:db8:2::3]:8080", kClient)));
}

TEST_CASE("rbac: structural edge cases") {
    auto c = conn("198.18.1.2:40000", "198.18.2.3:8080", kClient);
    Policy policy;
    policy.name = "edge";
    policy.namespace_ = "default";

    // A policy with zero rules never matches.
    policy.rules = {};
    CHECK_FALSE(zt::proxy::policy_matches(policy, c));
    // A rule with zero clauses is true: rules [[]] matches everything.
    policy.rules = {{}};
    CHECK(zt::proxy::policy_matches(policy, c));
    // A clause with zero matches is true.
    policy.rules = {{{}}};
    CHECK(zt::proxy::policy_matches(policy, c));
    // A match with every field empty is skipped: a clause of only empty matches is false.
    policy.rules = {{{RbacMatch{}}}};
    CHECK_FALSE(zt::proxy::policy_matches(policy, c));
    // ... but a real match beside it still counts (matches in a clause are ORed).
    RbacMatch ports;
    ports.destination_ports = {8080};
    policy.rules = {{{RbacMatch{}, ports}}};
    CHECK(zt::proxy::policy_matches(policy, c));
    // Clauses of a rule are ANDed.
    RbacMatch wrong_port;
    wrong_port.destination_ports = {1};
    policy.rules = {{{ports}, {wrong_port}}};
    CHECK_FALSE(zt::proxy::policy_matches(policy, c));
    // Rules are ORed.
    policy.rules = {{{wrong_port}}, {{ports}}};
    CHECK(zt::proxy::policy_matches(policy, c));
}

TEST_CASE("rbac: decision order, dry-run and reasons") {
    auto c = conn("198.18.1.2:40000", "198.18.2.3:8080", kClient);
    RbacMatch client;
    client.principals = {exact("cluster.local/ns/default/sa/client")};
    RbacMatch nobody;
    nobody.principals = {exact("cluster.local/ns/default/sa/nobody")};

    Policy allow_client = one_match(client, PolicyAction::allow);
    allow_client.name = "allow-client";
    Policy allow_nobody = one_match(nobody, PolicyAction::allow);
    allow_nobody.name = "allow-nobody";
    Policy deny_client = one_match(client, PolicyAction::deny);
    deny_client.name = "deny-client";
    Policy allow_no_rules;
    allow_no_rules.name = "allow-none";
    allow_no_rules.namespace_ = "default";

    auto decide = [&](std::vector<const Policy*> policies) {
        return zt::proxy::evaluate(policies, c);
    };
    // No policies at all: allow.
    CHECK(decide({}).allowed);
    // A matching ALLOW allows.
    CHECK(decide({&allow_client}).allowed);
    // ALLOW policies exist, none matches: deny with ztunnel's text.
    auto denied = decide({&allow_nobody});
    CHECK_FALSE(denied.allowed);
    CHECK(denied.reason == "allow policies exist, but none allowed");
    // An ALLOW with no rules denies everything through the same rule.
    CHECK_FALSE(decide({&allow_no_rules}).allowed);
    // DENY beats ALLOW whatever the order.
    auto explicit_deny = decide({&allow_client, &deny_client});
    CHECK_FALSE(explicit_deny.allowed);
    CHECK(explicit_deny.reason == "explicitly denied by: default/deny-client");
    // Dry-run DENY is only logged.
    Policy dry_deny = deny_client;
    dry_deny.dry_run = true;
    CHECK(decide({&dry_deny}).allowed);
    // A dry-run ALLOW does not count as "allow policies exist".
    Policy dry_allow_nobody = allow_nobody;
    dry_allow_nobody.dry_run = true;
    CHECK(decide({&dry_allow_nobody}).allowed);
    // ... but a real ALLOW beside it still decides.
    CHECK_FALSE(decide({&dry_allow_nobody, &allow_nobody}).allowed);
    // Plaintext (no identity) against an identity-based ALLOW: denied.
    auto plain = conn("198.18.1.2:40000", "198.18.2.3:8080", nullptr);
    std::vector<const Policy*> only_client = {&allow_client};
    CHECK_FALSE(zt::proxy::evaluate(only_client, plain).allowed);
    // STRICT mTLS as istiod expresses it: DENY notPrincipals presence refuses plaintext only.
    RbacMatch strict;
    strict.not_principals = {presence()};
    Policy strict_mtls = one_match(strict, PolicyAction::deny);
    std::vector<const Policy*> strict_only = {&strict_mtls};
    CHECK_FALSE(zt::proxy::evaluate(strict_only, plain).allowed);
    CHECK(zt::proxy::evaluate(strict_only, c).allowed);
}
