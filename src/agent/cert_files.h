#pragma once

// The certificate folder the agent writes for ztunnel's file mode (docs/contract.md §4):
// `DIR/root-cert.pem` (every root of the CA's bundle) and, per identity,
// `DIR/<namespace>/<serviceAccount>/cert-chain.pem` (leaf, then intermediates) and `key.pem`
// (mode 0600). ztunnel polls these paths, so every change is atomic: a root file is renamed over
// the old one, and an identity's pair is written into a fresh sibling folder that is swapped
// with the old one in one `renameat2(RENAME_EXCHANGE)`, so no reader ever sees a new chain with
// an old key. Everything here is plain file I/O on the agent thread (small files, no fsync:
// readers see the new files whole at the rename; a crash before write-back leaves the old ones,
// which the agent renews again at start).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/certified_key.h"
#include "certs/identity.h"
#include "zt/result.h"

namespace zt::agent {

// identity_folder is `DIR/<namespace>/<serviceAccount>`.
std::string identity_folder(const std::string& dir, const certs::Identity& id);

// write_roots replaces `DIR/root-cert.pem` with `pem` (mode 0644) when its content differs.
// Fails with `Errc::sys`.
Result<void> write_roots(const std::string& dir, std::string_view pem);

// write_identity replaces the identity's folder with one holding `chain_pem` (0644) and
// `key_pem` (0600), atomically as a pair. Fails with `Errc::sys` (the old files are kept).
Result<void> write_identity(const std::string& dir, const certs::Identity& id,
                            std::string_view chain_pem, std::string_view key_pem);

// remove_identity deletes the identity's folder (and its namespace folder when that is left
// empty). A folder already gone is success.
Result<void> remove_identity(const std::string& dir, const certs::Identity& id);

// load_identity reads the identity's files and `DIR/root-cert.pem` and returns them as a
// certificate that is valid at `now_unix` for `id` (key matches, chain verifies to the roots),
// or why not (`Errc::not_found` when a file is missing).
Result<std::shared_ptr<const certs::CertifiedKey>> load_identity(const std::string& dir,
                                                                 const certs::Identity& id,
                                                                 int64_t now_unix);

// identities_on_disk lists the identity folders under DIR as SPIFFE IDs of `trust_domain`
// (folders whose names are not valid segments are skipped).
std::vector<certs::Identity> identities_on_disk(const std::string& dir,
                                                std::string_view trust_domain);

}  // namespace zt::agent
