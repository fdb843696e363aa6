// pem.cc converts between PEM text, DER buffers and BoringSSL objects, reads the few X.509 fields
// other code needs, and reads PEM files with a size cap. It must not read the clock or make
// network calls, and every failure path clears BoringSSL's error queue so a later
// `SSL_get_error` in hbone/ does not see our leftovers.

#include "certs/pem.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/asn1.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/pool.h>

#include "zt/unique_fd.h"

namespace zt::certs {
namespace {

Unexpected parse_error() {
    ERR_clear_error();
    return fail(Errc::cert_parse);
}

bssl::UniquePtr<BIO> memory_bio(std::string_view text) {
    return bssl::UniquePtr<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

Result<std::string> drain_bio(BIO* bio) {
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (!BIO_mem_contents(bio, &data, &len)) {
        return parse_error();
    }
    return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

Result<std::vector<X509Ptr>> parse_cert_chain_pem(std::string_view pem) {
    if (pem.size() > kMaxPemBytes) {
        return parse_error();
    }
    auto bio = memory_bio(pem);
    if (!bio) {
        return parse_error();
    }
    std::vector<X509Ptr> certs;
    for (;;) {
        X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert) {
            uint32_t err = ERR_peek_last_error();
            bool at_end =
                    ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
            ERR_clear_error();
            if (at_end && !certs.empty()) {
                break;
            }
            return fail(Errc::cert_parse);
        }
        if (certs.size() == kMaxPemCerts) {
            return parse_error();
        }
        certs.push_back(std::move(cert));
    }
    return certs;
}

Result<KeyPtr> parse_private_key_pem(std::string_view pem) {
    if (pem.size() > kMaxPemBytes) {
        return parse_error();
    }
    auto bio = memory_bio(pem);
    if (!bio) {
        return parse_error();
    }
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
        return parse_error();
    }
    return key;
}

Result<std::string> cert_to_pem(X509* cert) {
    bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_X509(bio.get(), cert)) {
        return parse_error();
    }
    return drain_bio(bio.get());
}

Result<std::string> private_key_to_pem(EVP_PKEY* key) {
    bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
        return parse_error();
    }
    return drain_bio(bio.get());
}

Result<bssl::UniquePtr<CRYPTO_BUFFER>> cert_to_buffer(X509* cert) {
    uint8_t* der = nullptr;
    int len = i2d_X509(cert, &der);
    if (len <= 0) {
        return parse_error();
    }
    bssl::UniquePtr<uint8_t> owned(der);
    bssl::UniquePtr<CRYPTO_BUFFER> buffer(CRYPTO_BUFFER_new(der, size_t(len), nullptr));
    if (!buffer) {
        return parse_error();
    }
    return buffer;
}

Result<int64_t> asn1_time_to_unix(const ASN1_TIME* time) {
    if (time == nullptr) {
        return parse_error();
    }
    bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
    int days = 0;
    int seconds = 0;
    if (!epoch || !ASN1_TIME_diff(&days, &seconds, epoch.get(), time)) {
        return parse_error();
    }
    return int64_t(days) * 86400 + seconds;
}

Result<int64_t> cert_not_before_unix(const X509* cert) {
    return asn1_time_to_unix(X509_get0_notBefore(cert));
}

Result<int64_t> cert_not_after_unix(const X509* cert) {
    return asn1_time_to_unix(X509_get0_notAfter(cert));
}

std::string serial_decimal(const X509* cert) {
    bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
    if (!bn) {
        ERR_clear_error();
        return {};
    }
    char* text = BN_bn2dec(bn.get());
    if (text == nullptr) {
        ERR_clear_error();
        return {};
    }
    std::string out(text);
    OPENSSL_free(text);
    return out;
}

std::string format_rfc3339(int64_t unix_seconds) {
    time_t t = time_t(unix_seconds);
    struct tm tm_utc;
    if (gmtime_r(&t, &tm_utc) == nullptr) {
        return {};
    }
    char buf[32];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
    return std::string(buf, n);
}

std::string base64_encode(std::string_view data) {
    size_t len = 0;
    if (!EVP_EncodedLength(&len, data.size())) {
        return {};
    }
    std::string out(len, '\0');
    size_t written = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                                     reinterpret_cast<const uint8_t*>(data.data()), data.size());
    out.resize(written);  // EVP_EncodedLength counts the trailing NUL.
    return out;
}

Result<std::string> read_pem_file(const std::string& path) {
    // O_NONBLOCK: a FIFO planted in the certificate folder must not hold the control thread in
    // open() until a writer appears (it is refused just below); O_NOCTTY: nor may a terminal
    // become ours. A regular file reads the same with or without it.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        return errno == ENOENT ? fail(Errc::not_found) : fail_errno(errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
        return fail_errno(errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(Errc::invalid_argument);
    }
    if (st.st_size < 0 || size_t(st.st_size) > kMaxPemBytes) {
        return fail(Errc::cert_parse);
    }
    std::string out(size_t(st.st_size), '\0');
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail_errno(errno);
        }
        if (n == 0) {
            break;  // Truncated while we read: take what is there; validation decides.
        }
        done += size_t(n);
    }
    out.resize(done);
    return out;
}

bool keys_match(X509* cert, EVP_PKEY* key) {
    bool match = X509_check_private_key(cert, key) == 1;
    ERR_clear_error();
    return match;
}

}  // namespace zt::certs
