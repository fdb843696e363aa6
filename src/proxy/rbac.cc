// rbac.cc evaluates authorization policies exactly as ztunnel does (src/rbac.rs matching and
// the DENY-before-ALLOW order of DemandProxyState::assert_rbac). It is pure: every input is an
// argument, and dry-run outcomes only produce a debug log line.

#include "src/proxy/rbac.h"

#include <string_view>

#include "zt/log.h"

namespace zt::proxy {

namespace {

// field_matches is ztunnel's matches_internal: an empty positive list passes, otherwise one value
// must match; an empty negative list passes, otherwise no value may match.
template <class T, class Predicate>
bool field_matches(const std::vector<T>& positive, const std::vector<T>& negative,
                   Predicate&& predicate) {
    bool positive_ok = positive.empty();
    for (const T& value : positive) {
        if (predicate(value)) {
            positive_ok = true;
            break;
        }
    }
    if (!positive_ok) {
        return false;
    }
    for (const T& value : negative) {
        if (predicate(value)) {
            return false;
        }
    }
    return true;
}

bool is_empty(const state::RbacMatch& match) {
    return match.namespaces.empty() && match.not_namespaces.empty() &&
           match.service_accounts.empty() && match.not_service_accounts.empty() &&
           match.principals.empty() && match.not_principals.empty() && match.source_ips.empty() &&
           match.not_source_ips.empty() && match.destination_ips.empty() &&
           match.not_destination_ips.empty() && match.destination_ports.empty() &&
           match.not_destination_ports.empty();
}

bool match_matches(const state::RbacMatch& match, const RbacConnection& connection) {
    const auto& identity = connection.src_identity;
    // Without an identity the namespace is "" (so only Exact("") could match it), and no
    // principal or service account matches at all, Presence included.
    std::string_view source_namespace = identity ? identity->namespace_name() : std::string_view();
    return field_matches(
                   match.destination_ips, match.not_destination_ips,
                   [&](const state::Cidr& cidr) { return cidr.contains(connection.dst.ip); }) &&
           field_matches(
                   match.source_ips, match.not_source_ips,
                   [&](const state::Cidr& cidr) { return cidr.contains(connection.src.ip); }) &&
           field_matches(match.destination_ports, match.not_destination_ports,
                         [&](uint16_t port) { return port == connection.dst.port; }) &&
           field_matches(match.service_accounts, match.not_service_accounts,
                         [&](const state::ServiceAccountMatch& account) {
                             return identity && identity->namespace_name() == account.namespace_ &&
                                    identity->service_account() == account.service_account;
                         }) &&
           field_matches(match.principals, match.not_principals,
                         [&](const state::StringMatch& principal) {
                             return identity && principal.matches(identity->principal());
                         }) &&
           field_matches(match.namespaces, match.not_namespaces, [&](const state::StringMatch& ns) {
               return ns.matches(source_namespace);
           });
}

bool clause_matches(const state::RbacClause& clause, const RbacConnection& connection) {
    if (clause.empty()) {
        return true;
    }
    for (const state::RbacMatch& match : clause) {
        if (!is_empty(match) && match_matches(match, connection)) {
            return true;
        }
    }
    return false;
}

bool rule_matches(const state::RbacRule& rule, const RbacConnection& connection) {
    for (const state::RbacClause& clause : rule) {
        if (!clause_matches(clause, connection)) {
            return false;
        }
    }
    return true;
}

void log_dry_run(const state::Policy& policy, bool matched) {
    if (!log::enabled(log::Level::debug, "rbac")) {
        return;
    }
    std::string key = policy.key();
    log::debug("rbac", "dry-run policy evaluated",
               {log::Field::str("policy", key),
                log::Field::display("action", state::to_string(policy.action)),
                log::Field::display("matched", matched ? "true" : "false")});
}

}  // namespace

bool policy_matches(const state::Policy& policy, const RbacConnection& connection) {
    for (const state::RbacRule& rule : policy.rules) {
        if (rule_matches(rule, connection)) {
            return true;
        }
    }
    return false;
}

RbacDecision evaluate(std::span<const state::Policy* const> policies,
                      const RbacConnection& connection) {
    for (const state::Policy* policy : policies) {
        if (policy->action != state::PolicyAction::deny) {
            continue;
        }
        bool matched = policy_matches(*policy, connection);
        if (policy->dry_run) {
            log_dry_run(*policy, matched);
            continue;
        }
        if (matched) {
            return {false, "explicitly denied by: " + policy->key()};
        }
    }
    bool any_allow = false;
    for (const state::Policy* policy : policies) {
        if (policy->action != state::PolicyAction::allow) {
            continue;
        }
        if (policy->dry_run) {
            log_dry_run(*policy, policy_matches(*policy, connection));
            continue;
        }
        any_allow = true;
        if (policy_matches(*policy, connection)) {
            return {};
        }
    }
    if (!any_allow) {
        return {};
    }
    return {false, "allow policies exist, but none allowed"};
}

}  // namespace zt::proxy
