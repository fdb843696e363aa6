// Tests of the certificate folder the CA client writes for ztunnel's file mode: the files and
// modes of docs/contract.md §4, the identity pair swapped whole, reuse at start only of a
// certificate that is valid for its identity, and removal.

#include "src/agent/cert_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

#include "certs/issue.h"
#include "certs/pem.h"

using namespace zt::agent;
using zt::certs::Identity;

namespace {

constexpr int64_t kNow = 1'700'000'000;

struct TempDir {
    std::string path;

    TempDir() {
        char pattern[] = "/tmp/zt-certfiles-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path = pattern;
    }

    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)!std::system(cmd.c_str());
    }
};

mode_t mode_of(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

ino_t inode_of(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_ino;
}

struct Issued {
    std::string chain;
    std::string key;
};

Issued issue(const zt::certs::LocalCa& ca, const Identity& id, int64_t ttl) {
    auto issued = ca.issue(id, kNow, ttl);
    REQUIRE(issued.has_value());
    auto key = zt::certs::private_key_to_pem(issued->key.get());
    REQUIRE(key.has_value());
    return {issued->chain_pem, *key};
}

}  // namespace

TEST_CASE("cert_files: an identity's pair is written with its modes and read back as valid") {
    TempDir dir;
    auto ca = zt::certs::LocalCa::create("cluster.local", kNow - 100);
    REQUIRE(ca.has_value());
    auto id = Identity::parse("spiffe://cluster.local/ns/default/sa/client");
    REQUIRE(id.has_value());
    Issued first = issue(*ca, *id, 3600);
    REQUIRE(write_roots(dir.path, ca->root_pem()).has_value());
    REQUIRE(write_identity(dir.path, *id, first.chain, first.key).has_value());
    std::string folder = dir.path + "/default/client";
    CHECK(mode_of(folder + "/key.pem") == 0600);
    CHECK(mode_of(folder + "/cert-chain.pem") == 0644);
    CHECK(mode_of(dir.path + "/root-cert.pem") == 0644);
    auto loaded = load_identity(dir.path, *id, kNow);
    REQUIRE(loaded.has_value());
    CHECK((*loaded)->identity() == *id);

    // A renewal replaces the folder whole: new files (new inodes), no temporary left.
    ino_t old_key = inode_of(folder + "/key.pem");
    Issued second = issue(*ca, *id, 3600);
    REQUIRE(write_identity(dir.path, *id, second.chain, second.key).has_value());
    CHECK(inode_of(folder + "/key.pem") != old_key);
    CHECK(*zt::certs::read_pem_file(folder + "/key.pem") == second.key);
    CHECK(*zt::certs::read_pem_file(folder + "/cert-chain.pem") == second.chain);
    CHECK(::access((dir.path + "/default/.client.new").c_str(), F_OK) != 0);
    CHECK(identities_on_disk(dir.path, "cluster.local").size() == 1);

    REQUIRE(remove_identity(dir.path, *id).has_value());
    CHECK(::access(folder.c_str(), F_OK) != 0);
    CHECK(::access((dir.path + "/default").c_str(), F_OK) != 0);
    CHECK(load_identity(dir.path, *id, kNow).error().code == zt::Errc::not_found);
    CHECK(remove_identity(dir.path, *id).has_value());  // Already gone: fine.
}

TEST_CASE("cert_files: a certificate on disk is reused only when valid for its identity") {
    TempDir dir;
    auto ca = zt::certs::LocalCa::create("cluster.local", kNow - 100);
    REQUIRE(ca.has_value());
    auto client = *Identity::parse("spiffe://cluster.local/ns/default/sa/client");
    auto server = *Identity::parse("spiffe://cluster.local/ns/default/sa/server");
    REQUIRE(write_roots(dir.path, ca->root_pem()).has_value());
    // The server's folder holds the client's certificate: refused for the server.
    Issued wrong = issue(*ca, client, 3600);
    REQUIRE(write_identity(dir.path, server, wrong.chain, wrong.key).has_value());
    CHECK(load_identity(dir.path, server, kNow).error().code == zt::Errc::identity_mismatch);
    // Expired: refused.
    Issued short_lived = issue(*ca, client, 10);
    REQUIRE(write_identity(dir.path, client, short_lived.chain, short_lived.key).has_value());
    CHECK(load_identity(dir.path, client, kNow + 5).has_value());
    CHECK_FALSE(load_identity(dir.path, client, kNow + 100).has_value());
    // Another CA's roots: refused.
    auto other = zt::certs::LocalCa::create("cluster.local", kNow - 100);
    REQUIRE(write_roots(dir.path, other->root_pem()).has_value());
    CHECK_FALSE(load_identity(dir.path, client, kNow + 5).has_value());
}
