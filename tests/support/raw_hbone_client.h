#pragma once

// RawHboneClient is a blocking mutual-TLS 1.3 client (hbone::TlsSession over a loopback socket)
// that speaks HTTP/2 frames written by hand, for tests that make a peer misbehave on purpose
// against a ztunnel's 15008 (extra SETTINGS, PRIORITY floods, requests that are not CONNECT).
// Every socket operation has a timeout.

#include <cstdint>
#include <memory>
#include <vector>

#include "certs/identity.h"
#include "hbone/tls_session.h"
#include "src/state/net.h"
#include "zt/bytes.h"
#include "zt/unique_fd.h"

namespace zt::test {

class RawHboneClient {
public:
    // connect connects from `from` (port 0) to `to` and completes the TLS handshake with
    // `context`, expecting the server to prove `server`. `with_finished`, if any, is encrypted
    // and written in the same write as the client's Finished, as a client that sends its
    // preface at once does, so the server reads both in one receive. Null when any step fails.
    static std::unique_ptr<RawHboneClient> connect(const state::IpAddr& from,
                                                   const state::SocketAddr& to,
                                                   std::shared_ptr<const hbone::TlsContext> context,
                                                   const certs::Identity& server,
                                                   ByteSpan with_finished = {});

    // send encrypts `frames` and writes them; false on an error.
    bool send(ByteSpan frames);

    // receive reads and decrypts what arrives within `timeout_ms` (until the peer closes);
    // returns the plaintext.
    std::vector<uint8_t> receive(int timeout_ms);

private:
    RawHboneClient() = default;
    bool flush();

    UniqueFd fd_;
    std::unique_ptr<hbone::TlsSession> tls_;
};

}  // namespace zt::test
