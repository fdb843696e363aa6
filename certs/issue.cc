// issue.cc generates P-256 keys, CSRs and certificates with BoringSSL. It decides the profile of
// everything we sign (see `leaf_spec` and `ca_spec`) and never reads files or the clock: times
// come in as arguments so renewal logic and tests control them.

#include "certs/issue.h"

#include <utility>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

namespace zt::certs {
namespace {

Unexpected issue_error() {
    ERR_clear_error();
    return fail(Errc::cert_issue);
}

bool set_time(X509* cert, int64_t not_before, int64_t not_after) {
    bssl::UniquePtr<ASN1_TIME> nb(ASN1_TIME_set(nullptr, time_t(not_before)));
    bssl::UniquePtr<ASN1_TIME> na(ASN1_TIME_set(nullptr, time_t(not_after)));
    return nb && na && X509_set1_notBefore(cert, nb.get()) && X509_set1_notAfter(cert, na.get());
}

// random_serial sets a random positive 128-bit serial (RFC 5280 allows up to 20 octets; the top
// bit is cleared so the DER INTEGER stays positive within 16 octets).
bool set_random_serial(X509* cert) {
    uint8_t bytes[16];
    RAND_bytes(bytes, sizeof bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40;  // never zero, never shorter than 127 bits: serials all look alike
    bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    if (!bn) {
        return false;
    }
    bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    return serial && X509_set_serialNumber(cert, serial.get());
}

bool add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
    if (value.empty()) {
        return true;
    }
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const uint8_t*>(value.data()),
                                      int(value.size()), -1, 0) == 1;
}

bool push_general_name(GENERAL_NAMES* names, int type, const std::string& value) {
    bssl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
    bssl::UniquePtr<ASN1_IA5STRING> text(ASN1_IA5STRING_new());
    if (!name || !text || !ASN1_STRING_set(text.get(), value.data(), int(value.size()))) {
        return false;
    }
    GENERAL_NAME_set0_value(name.get(), type, text.release());
    if (!sk_GENERAL_NAME_push(names, name.get())) {
        return false;
    }
    name.release();
    return true;
}

// make_san builds the subjectAltName value: URIs first, then DNS names.
bssl::UniquePtr<GENERAL_NAMES> make_san(const std::vector<std::string>& uris,
                                        const std::vector<std::string>& dns) {
    bssl::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
    if (!names) {
        return nullptr;
    }
    for (const auto& uri : uris) {
        if (!push_general_name(names.get(), GEN_URI, uri)) {
            return nullptr;
        }
    }
    for (const auto& name : dns) {
        if (!push_general_name(names.get(), GEN_DNS, name)) {
            return nullptr;
        }
    }
    return names;
}

bool add_conf_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
    bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
    return ext && X509_add_ext(cert, ext.get(), -1);
}

std::string key_usage_text(uint32_t ku, bool critical) {
    std::string text = critical ? "critical" : "";
    auto add = [&](uint32_t bit, const char* name) {
        if (ku & bit) {
            text += text.empty() ? "" : ",";
            text += name;
        }
    };
    add(KU_DIGITAL_SIGNATURE, "digitalSignature");
    add(KU_KEY_ENCIPHERMENT, "keyEncipherment");
    add(KU_KEY_AGREEMENT, "keyAgreement");
    add(KU_KEY_CERT_SIGN, "keyCertSign");
    add(KU_CRL_SIGN, "cRLSign");
    return text;
}

bool add_extensions(X509* cert, const CertSpec& spec, X509* issuer) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    std::string bc = spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
    if (spec.is_ca && spec.path_len >= 0) {
        bc += ",pathlen:" + std::to_string(spec.path_len);
    }
    if (!add_conf_ext(cert, &ctx, NID_basic_constraints, bc)) {
        return false;
    }
    if (spec.key_usage != 0 &&
        !add_conf_ext(cert, &ctx, NID_key_usage,
                      key_usage_text(spec.key_usage, spec.key_usage_critical))) {
        return false;
    }
    if (spec.ext_key_usage != 0) {
        std::string eku;
        if (spec.ext_key_usage & XKU_SSL_SERVER) {
            eku = "serverAuth";
        }
        if (spec.ext_key_usage & XKU_SSL_CLIENT) {
            eku += eku.empty() ? "clientAuth" : ",clientAuth";
        }
        if (!add_conf_ext(cert, &ctx, NID_ext_key_usage, eku)) {
            return false;
        }
    }
    if (!add_conf_ext(cert, &ctx, NID_subject_key_identifier, "hash")) {
        return false;
    }
    if (issuer != nullptr && !add_conf_ext(cert, &ctx, NID_authority_key_identifier, "keyid")) {
        return false;
    }
    if (!spec.uri_sans.empty() || !spec.dns_sans.empty()) {
        auto san = make_san(spec.uri_sans, spec.dns_sans);
        bool critical = spec.san_critical >= 0
                                ? spec.san_critical == 1
                                : spec.common_name.empty() && spec.organization.empty();
        if (!san || !X509_add1_ext_i2d(cert, NID_subject_alt_name, san.get(), critical ? 1 : 0,
                                       X509V3_ADD_DEFAULT)) {
            return false;
        }
    }
    return true;
}

// csr_uri_sans returns the URI SANs a CSR requests (its extensionRequest), or fails when the
// request holds no SAN or a malformed one.
Result<std::vector<std::string>> csr_uri_sans(X509_REQ* req) {
    bssl::UniquePtr<STACK_OF(X509_EXTENSION)> exts(X509_REQ_get_extensions(req));
    if (!exts) {
        return fail(Errc::cert_parse);
    }
    std::vector<std::string> uris;
    for (size_t i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
        X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) {
            continue;
        }
        bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
        if (!names) {
            return fail(Errc::cert_parse);
        }
        for (size_t j = 0; j < sk_GENERAL_NAME_num(names.get()); ++j) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), j);
            if (name->type == GEN_URI) {
                const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
                uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                  size_t(ASN1_STRING_length(uri)));
            }
        }
    }
    return uris;
}

// named_trust_domain returns the trust domain of a CA certificate's URI SAN `spiffe://<td>`, or
// "" when it has no such SAN.
std::string named_trust_domain(X509* cert) {
    bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
            X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    ERR_clear_error();
    if (!names) {
        return {};
    }
    constexpr std::string_view kScheme = "spiffe://";
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type != GEN_URI) {
            continue;
        }
        const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
        std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                              size_t(ASN1_STRING_length(uri)));
        if (text.starts_with(kScheme) && is_valid_trust_domain(text.substr(kScheme.size()))) {
            return std::string(text.substr(kScheme.size()));
        }
    }
    return {};
}

}  // namespace

Result<KeyPtr> generate_p256_key() {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    KeyPtr key(EVP_PKEY_new());
    if (!ec || !key || !EC_KEY_generate_key(ec.get()) ||
        !EVP_PKEY_assign_EC_KEY(key.get(), ec.get())) {
        return issue_error();
    }
    ec.release();  // owned by `key` now
    return key;
}

CertSpec leaf_spec(const Identity& id, int64_t now_unix, int64_t ttl_seconds) {
    CertSpec spec;
    spec.uri_sans = {id.to_string()};
    spec.key_usage = KU_DIGITAL_SIGNATURE;
    spec.key_usage_critical = true;
    spec.ext_key_usage = XKU_SSL_SERVER | XKU_SSL_CLIENT;
    spec.not_before_unix = now_unix - kLeafBackdateSeconds;
    spec.not_after_unix = now_unix + ttl_seconds;
    return spec;
}

CertSpec ca_spec(std::string_view trust_domain, std::string_view common_name, int64_t now_unix,
                 int64_t validity_seconds) {
    CertSpec spec;
    spec.organization = std::string(trust_domain);
    spec.common_name = std::string(common_name);
    spec.uri_sans = {"spiffe://" + std::string(trust_domain)};
    spec.is_ca = true;
    spec.key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    spec.key_usage_critical = true;
    spec.not_before_unix = now_unix - kLeafBackdateSeconds;
    spec.not_after_unix = now_unix + validity_seconds;
    return spec;
}

Result<X509Ptr> sign_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
                          EVP_PKEY* issuer_key) {
    ZT_ASSERT(issuer_cert != nullptr || issuer_key == subject_key);
    X509Ptr cert(X509_new());
    if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) || !set_random_serial(cert.get()) ||
        !set_time(cert.get(), spec.not_before_unix, spec.not_after_unix) ||
        !X509_set_pubkey(cert.get(), subject_key)) {
        return issue_error();
    }
    X509_NAME* subject = X509_get_subject_name(cert.get());
    if (!add_name_entry(subject, "O", spec.organization) ||
        !add_name_entry(subject, "CN", spec.common_name)) {
        return issue_error();
    }
    X509_NAME* issuer_name = issuer_cert != nullptr ? X509_get_subject_name(issuer_cert) : subject;
    if (!X509_set_issuer_name(cert.get(), issuer_name) ||
        !add_extensions(cert.get(), spec, issuer_cert) ||
        !X509_sign(cert.get(), issuer_key, EVP_sha256())) {
        return issue_error();
    }
    return cert;
}

Result<std::string> make_csr_pem(EVP_PKEY* key, const Identity& id) {
    bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
    if (!req || !X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) ||
        !X509_REQ_set_pubkey(req.get(), key)) {
        return issue_error();
    }
    auto san = make_san({id.to_string()}, {});
    STACK_OF(X509_EXTENSION)* raw_exts = nullptr;
    bool added = san && X509V3_add1_i2d(&raw_exts, NID_subject_alt_name, san.get(), 1,
                                        X509V3_ADD_DEFAULT) == 1;
    bssl::UniquePtr<STACK_OF(X509_EXTENSION)> exts(raw_exts);
    if (!added || !exts) {
        return issue_error();
    }
    if (!X509_REQ_add_extensions(req.get(), exts.get()) ||
        !X509_REQ_sign(req.get(), key, EVP_sha256())) {
        return issue_error();
    }
    bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_X509_REQ(bio.get(), req.get())) {
        return issue_error();
    }
    const uint8_t* data = nullptr;
    size_t len = 0;
    BIO_mem_contents(bio.get(), &data, &len);
    return std::string(reinterpret_cast<const char*>(data), len);
}

Result<LocalCa> LocalCa::create(std::string_view trust_domain, int64_t now_unix) {
    if (!is_valid_trust_domain(trust_domain)) {
        return fail(Errc::bad_identity);
    }
    auto key = generate_p256_key();
    if (!key) {
        return fail(key.error());
    }
    CertSpec spec = ca_spec(trust_domain, "ztunnel root CA", now_unix, kRootCaValiditySeconds);
    auto cert = sign_cert(spec, key->get(), nullptr, key->get());
    if (!cert) {
        return fail(cert.error());
    }
    auto cert_pem = cert_to_pem(cert->get());
    auto key_pem = private_key_to_pem(key->get());
    if (!cert_pem || !key_pem) {
        return issue_error();
    }
    LocalCa ca;
    ca.cert_ = std::move(cert).value();
    ca.key_ = std::move(key).value();
    ca.cert_pem_ = *cert_pem;
    ca.key_pem_ = std::move(key_pem).value();
    ca.root_pem_ = std::move(cert_pem).value();
    ca.trust_domain_ = std::string(trust_domain);
    return ca;
}

Result<LocalCa> LocalCa::load(std::string_view cert_pem, std::string_view key_pem,
                              std::string_view root_pem) {
    auto certs = parse_cert_chain_pem(cert_pem);
    auto key = parse_private_key_pem(key_pem);
    auto roots = parse_cert_chain_pem(root_pem);
    if (!certs || !key || !roots) {
        return fail(Errc::cert_parse);
    }
    X509* ca_cert = certs->front().get();
    if (!keys_match(ca_cert, key->get())) {
        return fail(Errc::cert_key_mismatch);
    }
    bool is_ca = X509_check_ca(ca_cert) == 1;
    bool may_sign = (X509_get_key_usage(ca_cert) & KU_KEY_CERT_SIGN) != 0;
    ERR_clear_error();
    if (!is_ca || !may_sign) {
        return fail(Errc::cert_is_ca);
    }
    LocalCa ca;
    // Intermediates: every certificate of ca-cert.pem that is not self-signed (a self-signed one
    // is a root, and roots are never sent to peers).
    for (auto& cert : *certs) {
        if ((X509_get_extension_flags(cert.get()) & EXFLAG_SS) == 0) {
            auto pem = cert_to_pem(cert.get());
            if (!pem) {
                return fail(Errc::cert_parse);
            }
            ca.intermediates_pem_ += *pem;
        }
    }
    ca.trust_domain_ = named_trust_domain(ca_cert);
    ca.cert_ = std::move(certs->front());
    ca.key_ = std::move(key).value();
    ca.cert_pem_ = std::string(cert_pem);
    ca.key_pem_ = std::string(key_pem);
    ca.root_pem_ = std::string(root_pem);
    return ca;
}

Result<Issued> LocalCa::sign_csr(std::string_view csr_pem, const Identity& id, int64_t now_unix,
                                 int64_t ttl_seconds) const {
    if (!trust_domain_.empty() && id.trust_domain() != trust_domain_) {
        return fail(Errc::trust_domain_mismatch);
    }
    if (csr_pem.size() > kMaxPemBytes) {
        return fail(Errc::cert_parse);
    }
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(csr_pem.data(), int(csr_pem.size())));
    bssl::UniquePtr<X509_REQ> req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr)
                                      : nullptr);
    if (!req) {
        ERR_clear_error();
        return fail(Errc::cert_parse);
    }
    bssl::UniquePtr<EVP_PKEY> pubkey(X509_REQ_get_pubkey(req.get()));
    if (!pubkey || X509_REQ_verify(req.get(), pubkey.get()) != 1) {
        ERR_clear_error();
        return fail(Errc::cert_parse);
    }
    auto uris = csr_uri_sans(req.get());
    if (!uris) {
        ERR_clear_error();
        return fail(uris.error());
    }
    if (uris->size() != 1 || (*uris)[0] != id.to_string()) {
        return fail(Errc::identity_mismatch);
    }
    return sign_leaf(pubkey.get(), id, now_unix, ttl_seconds);
}

Result<Issued> LocalCa::sign_leaf(EVP_PKEY* subject_key, const Identity& id, int64_t now_unix,
                                  int64_t ttl_seconds) const {
    auto leaf =
            sign_cert(leaf_spec(id, now_unix, ttl_seconds), subject_key, cert_.get(), key_.get());
    if (!leaf) {
        return fail(leaf.error());
    }
    auto leaf_pem = cert_to_pem(leaf->get());
    if (!leaf_pem) {
        return issue_error();
    }
    Issued issued;
    issued.leaf = std::move(leaf).value();
    issued.chain_pem = std::move(leaf_pem).value() + intermediates_pem_;
    return issued;
}

Result<Issued> LocalCa::issue(const Identity& id, int64_t now_unix, int64_t ttl_seconds) const {
    if (!trust_domain_.empty() && id.trust_domain() != trust_domain_) {
        return fail(Errc::trust_domain_mismatch);
    }
    auto key = generate_p256_key();
    if (!key) {
        return fail(key.error());
    }
    // The key was made here, so the leaf is signed over it directly: a CSR would cost a
    // signature and its verification (a third of an issue) to prove what this function knows.
    auto issued = sign_leaf(key->get(), id, now_unix, ttl_seconds);
    if (issued) {
        issued->key = std::move(key).value();
    }
    return issued;
}

}  // namespace zt::certs
