#pragma once

// XdsStore keeps what istiod sent, already translated into the config file's structs
// (src/agent/translate.h): Address resources (each a workload or a service) and Authorization
// resources, by xDS resource name. It is the `ResourceHandler` of both watched types: a resource
// that does not decode or translate is rejected (the NACK reason) and the state it replaces is
// kept; removals forget. `compose_config` then builds the whole file from the store and the
// `--static` file, with the cross-resource rules the per-resource translation cannot apply (one
// IP on one network in two workloads, duplicate keys), deterministically: the same resources
// always make the same file, whatever order they arrived in.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "src/agent/ads_session.h"
#include "src/agent/translate.h"
#include "src/state/types.h"

namespace zt::agent {

class XdsStore {
public:
    explicit XdsStore(TranslateContext context);

    XdsStore(const XdsStore&) = delete;
    XdsStore& operator=(const XdsStore&) = delete;

    // addresses and authorizations are the handlers of the Address and Authorization types.
    ResourceHandler& addresses() { return address_handler_; }

    ResourceHandler& authorizations() { return authorization_handler_; }

    // generation counts applied changes of content: it moves only when a resource was added,
    // changed or removed (a resource re-sent unchanged leaves it alone).
    uint64_t generation() const { return generation_; }

    size_t workload_count() const { return workload_count_; }

    size_t service_count() const { return service_count_; }

    size_t policy_count() const { return policies_.size(); }

    // rejected_total counts resources rejected since start.
    uint64_t rejected_total() const { return rejected_total_; }

    // AddressEntry is one Address resource: exactly one of the two is set.
    struct AddressEntry {
        std::optional<state::Workload> workload;
        std::optional<state::Service> service;
        uint64_t sequence = 0;  // When it last changed (ties between duplicates: newest wins).
    };

    struct PolicyEntry {
        state::Policy policy;
        uint64_t sequence = 0;
    };

    const std::map<std::string, AddressEntry>& address_entries() const { return addresses_; }

    const std::map<std::string, PolicyEntry>& policy_entries() const { return policies_; }

    // Changes names the resources added, changed or removed since the last `take_changes`:
    // what the config file's incremental composer reads again (src/agent/file_composer.h).
    // Each set holds a name at most once, so it is bounded by the names istiod sent.
    struct Changes {
        std::vector<std::string> addresses, policies;
    };

    Changes take_changes();

private:
    class AddressHandler final : public ResourceHandler {
    public:
        explicit AddressHandler(XdsStore& store) : store_(store) {}

        std::vector<Rejection> apply(
                const google::protobuf::RepeatedPtrField<envoy::service::discovery::v3::Resource>&
                        updates,
                const google::protobuf::RepeatedPtrField<std::string>& removed) override;

    private:
        XdsStore& store_;
    };

    class AuthorizationHandler final : public ResourceHandler {
    public:
        explicit AuthorizationHandler(XdsStore& store) : store_(store) {}

        std::vector<Rejection> apply(
                const google::protobuf::RepeatedPtrField<envoy::service::discovery::v3::Resource>&
                        updates,
                const google::protobuf::RepeatedPtrField<std::string>& removed) override;

    private:
        XdsStore& store_;
    };

    void count_kinds();

    TranslateContext context_;
    AddressHandler address_handler_{*this};
    AuthorizationHandler authorization_handler_{*this};
    std::map<std::string, AddressEntry> addresses_;
    std::map<std::string, PolicyEntry> policies_;
    std::unordered_set<std::string> changed_addresses_, changed_policies_;
    uint64_t generation_ = 0;
    uint64_t sequence_ = 0;
    uint64_t rejected_total_ = 0;
    size_t workload_count_ = 0;
    size_t service_count_ = 0;
};

// compose_config builds the config file's structs: the `--static` file's workloads, services,
// policies and pods, then the store's. A static entry wins over an xDS one with the same key
// (workload uid, service `namespace/hostname`, policy `namespace/name`): it is the operator's
// override. Between xDS entries with one key the most recently changed wins. When workloads
// share an IP on one network, the IP stays with the one ztunnel would pick (a Kubernetes pod
// over anything else, then HBONE over TCP, then the newest) and is dropped from the others, each
// drop named in `warnings`. Lists are sorted by key, so the file does not depend on arrival
// order.
//
// This is the definition of the file's content; the agent's writer produces the same bytes
// incrementally (src/agent/file_composer.h), and a test compares the two.
state::Config compose_config(const state::Config& base, const XdsStore& store,
                             std::vector<std::string>* warnings);

// IpRank orders workloads sharing an IP as ztunnel's lookup prefers them: a pod speaking HBONE,
// then a pod, then HBONE, then anything; the higher `sequence` (the newer) among equals. Static
// entries have the highest sequence. Between equal ranks the smaller uid keeps the IP.
using IpRank = std::tuple<bool, bool, bool, uint64_t>;
IpRank ip_rank(const state::Workload& workload, uint64_t sequence);

// ip_taken_warning is the warning for an IP left out of `loser` because `holder_uid` keeps it.
std::string ip_taken_warning(const state::Workload& loser, const state::IpAddr& ip,
                             std::string_view holder_uid);

}  // namespace zt::agent
