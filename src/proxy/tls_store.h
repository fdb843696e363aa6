#pragma once

// The TLS side of local identities as workers see it: for every identity of a local pod, the
// certificate the store published and the client and server `hbone::TlsContext`s built from it.
// The control thread rebuilds the map when a certificate is issued, renewed or rotated and
// publishes it with one atomic pointer swap; a worker loads it once per new HBONE connection, so
// new handshakes use a new certificate at once while established connections keep theirs.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/identity.h"
#include "certs/store.h"
#include "hbone/tls_session.h"

namespace zt::proxy {

// IdentityTls is one identity's certificate and contexts; immutable.
struct IdentityTls {
    std::shared_ptr<const certs::CertifiedKey> key;
    std::shared_ptr<const hbone::TlsContext> client;
    std::shared_ptr<const hbone::TlsContext> server;
};

// TlsContexts is an immutable map from SPIFFE URI to `IdentityTls`.
class TlsContexts {
public:
    // find returns the entry of `identity` (a SPIFFE URI), or null.
    const IdentityTls* find(std::string_view identity) const;

    // rebuild returns the map for `identities` with the certificates `store` currently
    // publishes, reusing `previous`'s contexts whose certificate did not change. It returns
    // `previous` itself (no allocation) when nothing changed. Identities without a certificate
    // are left out; a context that cannot be built is logged and left out.
    static std::shared_ptr<const TlsContexts> rebuild(
            const std::shared_ptr<const TlsContexts>& previous, const certs::CertStore& store,
            const std::vector<certs::Identity>& identities);

    size_t size() const { return entries_.size(); }

private:
    std::map<std::string, IdentityTls, std::less<>> entries_;
};

// TlsStore is the publication point: one atomic pointer.
class TlsStore {
public:
    std::shared_ptr<const TlsContexts> load() const {
        return current_.load(std::memory_order_acquire);
    }

    void store(std::shared_ptr<const TlsContexts> contexts) {
        current_.store(std::move(contexts), std::memory_order_release);
    }

private:
    std::atomic<std::shared_ptr<const TlsContexts>> current_;
};

}  // namespace zt::proxy
