// answer.cc is the DNS proxy's answer logic (ztunnel's `Store::lookup`, `find_server`,
// `get_addresses` and the handler's opcode checks), a pure function of the snapshot, the client
// workload and the query. It must not perform I/O, read clocks or draw random numbers: the
// shuffle's randomness arrives as a value so table tests can pin every branch.

#include "src/dns/answer.h"

#include <utility>

namespace zt::dns {

namespace {

// Match is a service found for a query: whether a wildcard matched, and the alias that
// produced it.
struct Match {
    const state::Service* service = nullptr;
    bool wildcard = false;
    const Alias* alias = nullptr;
};

bool visible(const state::Service& service, std::string_view client_namespace) {
    return service.visibility != state::Visibility::namespace_ ||
           service.namespace_ == client_namespace;
}

// pick is ztunnel's `ServiceMatch::find_best_match`: the first service in the client's namespace
// wins at once; otherwise the last canonical one; otherwise the last one in the preferred
// namespace seen while no canonical one was; otherwise the first.
const state::Service* pick(std::span<const state::Service* const> services,
                           std::string_view client_namespace,
                           std::string_view preferred_namespace) {
    enum class Rank : uint8_t { none, first, preferred, canonical };
    Rank rank = Rank::none;
    const state::Service* best = nullptr;
    for (const state::Service* service : services) {
        if (service->namespace_ == client_namespace) {
            return service;
        }
        if (service->canonical) {
            rank = Rank::canonical;
            best = service;
        } else if (!preferred_namespace.empty() && service->namespace_ == preferred_namespace &&
                   rank != Rank::canonical) {
            rank = Rank::preferred;
            best = service;
        } else if (rank == Rank::none) {
            rank = Rank::first;
            best = service;
        }
    }
    return best;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// eligible_service filters and ranks the services of one hostname as `find_server` does.
const state::Service* eligible_service(const state::Snapshot& snapshot, std::string_view host,
                                       const state::Workload& client,
                                       std::string_view headless_suffix,
                                       const AnswerOptions& options,
                                       std::vector<const state::Service*>& scratch) {
    scratch.clear();
    for (const state::Service* service : snapshot.services_by_host(host)) {
        // Services without VIPs are Kubernetes headless services only under
        // `.svc.<cluster domain>`; any other VIP-less one (a DNS-resolved ServiceEntry) is left
        // to the upstream.
        if (service->vips.empty() && !ends_with(service->hostname, headless_suffix)) {
            continue;
        }
        if (!visible(*service, client.namespace_)) {
            continue;
        }
        scratch.push_back(service);
    }
    return pick(scratch, client.namespace_, options.preferred_namespace);
}

// find_service is ztunnel's `find_server`: every alias, then every wildcard of it (`wildcards`
// in names.h, here spelled straight into one buffer: `*` plus each suffix from a dot), the first
// hostname with an eligible service.
std::optional<Match> find_service(const state::Snapshot& snapshot, const state::Workload& client,
                                  const std::vector<Alias>& candidates,
                                  const AnswerOptions& options) {
    const std::string headless_suffix = ".svc." + options.cluster_domain.to_lower();
    std::vector<const state::Service*> scratch;
    std::string wildcard;
    for (const Alias& alias : candidates) {
        const std::string host = alias.name.to_lower();
        if (const state::Service* service =
                    eligible_service(snapshot, host, client, headless_suffix, options, scratch)) {
            return Match{service, alias.name.is_wildcard(), &alias};
        }
        // `a.b.c` gives `*.b.c` and `*.c`: a wildcard for every dot but the last label's.
        for (size_t dot = host.find('.'); dot != std::string::npos; dot = host.find('.', dot + 1)) {
            wildcard.assign("*");
            wildcard.append(host, dot);
            if (const state::Service* service = eligible_service(
                        snapshot, wildcard, client, headless_suffix, options, scratch)) {
                return Match{service, true, &alias};
            }
        }
    }
    return std::nullopt;
}

bool family_of(const state::IpAddr& ip, uint16_t type) {
    return ip.v6 ? type == kTypeAaaa : type == kTypeA;
}

// family_allowed is ztunnel's `service_family_allowed`.
bool family_allowed(const state::Service& service, uint16_t type, bool ipv6_enabled) {
    if (!ipv6_enabled && type == kTypeAaaa) {
        return false;
    }
    switch (service.ip_families) {
        case state::IpFamilies::ipv4:
            return type != kTypeAaaa;
        case state::IpFamilies::ipv6:
            return type != kTypeA;
        case state::IpFamilies::any:
        case state::IpFamilies::dual:
            return true;
    }
    return true;
}

// addresses is ztunnel's `get_addresses` for a service, before the shuffle.
std::vector<state::IpAddr> addresses(const state::Snapshot& snapshot, const state::Service& service,
                                     const state::Workload& client, uint16_t type,
                                     bool ipv6_enabled) {
    auto enabled = [&](const state::IpAddr& ip) {
        return family_of(ip, type) && (!ip.v6 || ipv6_enabled);
    };
    std::vector<state::IpAddr> out;
    if (service.vips.empty()) {
        // Headless: each endpoint's first IP of the family.
        for (const state::Endpoint& endpoint : snapshot.endpoints(service)) {
            for (const state::IpAddr& ip : endpoint.workload->workload_ips) {
                if (enabled(ip)) {
                    out.push_back(ip);
                    break;
                }
            }
        }
        return out;
    }
    for (const state::NetworkAddress& vip : service.vips) {
        if (vip.network == client.network && enabled(vip.ip)) {
            out.push_back(vip.ip);
        }
    }
    return out;
}

// shuffle is a Fisher-Yates shuffle driven by splitmix64 from `seed`.
void shuffle(std::vector<state::IpAddr>& ips, uint64_t seed) {
    auto next = [&seed] {
        seed += 0x9e3779b97f4a7c15ULL;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    for (size_t i = ips.size(); i > 1; --i) {
        std::swap(ips[i - 1], ips[next() % i]);
    }
}

Decision verdict_only(Verdict verdict) {
    Decision decision;
    decision.verdict = verdict;
    return decision;
}

}  // namespace

std::string_view to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::answer:
            return "answer";
        case Verdict::forward:
            return "forward";
        case Verdict::servfail:
            return "servfail";
        case Verdict::notimp:
            return "notimp";
        case Verdict::formerr:
            return "formerr";
    }
    return "forward";
}

Decision decide(const state::Snapshot* snapshot, const state::Workload* client, const Query& query,
                const AnswerOptions& options, uint64_t random) {
    if (query.response) {
        return verdict_only(Verdict::formerr);
    }
    if (query.opcode != kOpcodeQuery) {
        return verdict_only(Verdict::notimp);
    }
    if (query.question_count != 1) {
        return verdict_only(Verdict::formerr);
    }
    if (snapshot == nullptr || client == nullptr) {
        return verdict_only(Verdict::servfail);
    }
    // ztunnel answers A and AAAA only and forwards everything else. A class other than IN
    // names no mesh service either (ztunnel ignores the class; answering IN records to a CH
    // question would be wrong).
    if ((query.type != kTypeA && query.type != kTypeAaaa) || query.qclass != kClassIn ||
        !query.name.is_hostname()) {
        return verdict_only(Verdict::forward);
    }
    std::vector<Alias> candidates = aliases(query.name, client->namespace_, options.cluster_domain);
    std::optional<Match> match = find_service(*snapshot, *client, candidates, options);
    if (!match) {
        return verdict_only(Verdict::forward);
    }

    // From here on the proxy is the authority: a found name never becomes NXDOMAIN.
    Decision decision;
    decision.verdict = Verdict::answer;
    decision.service = match->service;
    if (!family_allowed(*match->service, query.type, options.ipv6_enabled)) {
        decision.result = "service does not support this record type";
        return decision;
    }
    std::vector<state::IpAddr> ips =
            addresses(*snapshot, *match->service, *client, query.type, options.ipv6_enabled);
    if (ips.empty()) {
        decision.result = "no records";
        return decision;
    }
    shuffle(ips, random);
    Name owner = query.name;
    if (match->alias->stripped && !match->wildcard) {
        Record cname;
        cname.owner = query.name;
        cname.type = kTypeCname;
        cname.target = *match->alias->stripped;
        decision.records.push_back(std::move(cname));
        owner = *match->alias->stripped;
    }
    for (const state::IpAddr& ip : ips) {
        Record record;
        record.owner = owner;
        record.type = query.type;
        record.address = ip;
        decision.records.push_back(std::move(record));
    }
    decision.result = "success";
    decision.endpoints = uint16_t(ips.size());
    return decision;
}

std::vector<uint8_t> encode_decision(const Query& query, const Decision& decision, size_t limit) {
    switch (decision.verdict) {
        case Verdict::answer:
            return encode_answer(query, true, decision.records, limit);
        case Verdict::servfail:
            return encode_error(query, Rcode::servfail);
        case Verdict::notimp:
            return encode_error(query, Rcode::notimp);
        case Verdict::formerr:
            return encode_error(query, Rcode::formerr);
        case Verdict::forward:
            break;
    }
    ZT_ASSERT(false);
    return {};
}

}  // namespace zt::dns
