// tls_store.cc rebuilds the identity → TLS contexts map on the control thread. Building an
// SSL_CTX costs a few allocations and a certificate parse, so unchanged identities keep theirs.

#include "src/proxy/tls_store.h"

#include "zt/log.h"

namespace zt::proxy {

const IdentityTls* TlsContexts::find(std::string_view identity) const {
    auto found = entries_.find(identity);
    return found == entries_.end() ? nullptr : &found->second;
}

std::shared_ptr<const TlsContexts> TlsContexts::rebuild(
        const std::shared_ptr<const TlsContexts>& previous, const certs::CertStore& store,
        const std::vector<certs::Identity>& identities) {
    auto next = std::make_shared<TlsContexts>();
    bool changed = previous == nullptr;
    for (const certs::Identity& id : identities) {
        std::shared_ptr<const certs::CertifiedKey> key = store.get(id);
        if (key == nullptr) {
            continue;
        }
        const IdentityTls* old = previous ? previous->find(id.to_string()) : nullptr;
        if (old != nullptr && old->key == key) {
            next->entries_.emplace(id.to_string(), *old);
            continue;
        }
        changed = true;
        auto client = hbone::TlsContext::create(hbone::Role::client, key);
        auto server = hbone::TlsContext::create(hbone::Role::server, key);
        if (!client || !server) {
            log::error("certs", "cannot build TLS contexts for identity",
                       {log::Field::str("identity", id.to_string())});
            continue;
        }
        next->entries_.emplace(id.to_string(), IdentityTls{key, *client, *server});
    }
    if (!changed && previous != nullptr && previous->size() == next->size()) {
        return previous;
    }
    return next;
}

}  // namespace zt::proxy
