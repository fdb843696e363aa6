#pragma once

// `Errc` is the one flat error vocabulary of the project (nghttpx `src/errors.h`). Each module
// owns one section below; add new codes only to your module's section, and give each a string in
// `to_string`. Values are never persisted or sent on the wire, so they may be reordered freely.

#include <cstdint>
#include <string_view>

namespace zt {

enum class Errc : uint16_t {
    // Generic.
    sys,               // A system call failed; `Error::sys_errno` says why.
    eof,               // The peer closed; a value, not a failure, where a caller expects it.
    timed_out,         // A deadline passed.
    cancelled,         // The operation was cancelled before it completed.
    would_block,       // Nothing to do now; try again when ready.
    invalid_argument,  // A caller passed something malformed.
    parse,             // Input text or bytes did not parse.
    not_found,         // A looked-up thing does not exist.
    no_capacity,       // A pool or limit is exhausted; counted by the caller.
    unsupported,       // The kernel or library lacks a needed feature.

    // uring/.
    uring_unavailable,  // io_uring is refused (sysctl, seccomp) or too old.
    uring_opcode,       // The kernel lacks an opcode we need.
    uring_sysctl,       // io_uring is disabled by the `kernel.io_uring_disabled` sysctl.
    uring_seccomp,      // A seccomp profile (e.g. RuntimeDefault) blocks the io_uring syscalls.
    uring_too_old,      // The kernel has no io_uring (ENOSYS) or lacks a required feature.
    relay_reset,        // A relayed peer reset its connection; propagated as a reset.
    relay_idle,         // A relay saw no bytes move for its idle timeout.
    relay_aborted,      // A relay was aborted by its owner (policy change, drain).

    // certs/.
    cert_parse,             // PEM/DER did not parse.
    cert_unknown_ca,        // The chain does not verify to the trust bundle.
    cert_expired,           // A certificate's notAfter has passed.
    cert_not_yet_valid,     // A certificate's notBefore is in the future.
    cert_bad_san,           // The URI SAN is not a valid SPIFFE ID, or the SAN is malformed.
    cert_is_ca,             // The leaf has basicConstraints cA=TRUE (or a CA is not one).
    cert_key_usage,         // KU absent, not critical, no digitalSignature, or cRLSign.
    cert_key_cert_sign,     // The leaf's key usage allows signing certificates.
    cert_eku,               // The extended key usage does not fit the side.
    cert_key_mismatch,      // The private key does not match the certificate.
    identity_mismatch,      // The peer is not one of the expected identities.
    trust_domain_mismatch,  // The peer is not in our trust domain.
    bad_identity,           // A SPIFFE ID string is malformed.
    cert_no_uri_san,        // The leaf has no URI SAN (e.g. DNS names only).
    cert_many_uri_sans,     // The leaf has more than one URI SAN (SPIFFE: exactly one).
    cert_chain_too_long,    // The peer sent more certificates, or a deeper chain, than allowed.
    cert_chain_invalid,     // The chain fails path validation for another reason.
    cert_issue,             // Key generation or signing failed.
    cert_unavailable,       // No usable certificate for the identity (yet, or any more).
    cert_name_mismatch,     // A server's certificate is not valid for the name we dialled.

    // hbone/.
    tls_handshake,  // The TLS handshake failed.
    tls_alpn,       // The peer did not agree on ALPN `h2`.
    tls_cipher,     // The peer offered or negotiated a TLS 1.3 suite other than AES-GCM.
    tls_protocol,   // A TLS protocol error after the handshake.
    h2_protocol,    // HTTP/2 framing or state error.
    h2_refused,     // The stream was refused (limit, GOAWAY).
    h2_glitches,    // The peer spent its glitch budget; GOAWAY ENHANCE_YOUR_CALM.
    h2_reset,       // The peer reset the stream.
    bad_authority,  // CONNECT `:authority` is malformed.

    // src/.
    config_invalid,       // The config file failed validation.
    config_too_large,     // The config file exceeds the size cap.
    policy_denied,        // RBAC denied the connection.
    ip_mismatch,          // The CONNECT authority is not this pod's IP.
    self_call,            // A destination is one of ztunnel's own ports.
    no_healthy_upstream,  // A service has no healthy endpoint.
    http_status,          // An HBONE peer answered something other than 200.
};

// to_string returns a stable, lowercase name for `code`, for logs and metric labels.
constexpr std::string_view to_string(Errc code) {
    switch (code) {
        case Errc::sys:
            return "sys";
        case Errc::eof:
            return "eof";
        case Errc::timed_out:
            return "timed_out";
        case Errc::cancelled:
            return "cancelled";
        case Errc::would_block:
            return "would_block";
        case Errc::invalid_argument:
            return "invalid_argument";
        case Errc::parse:
            return "parse";
        case Errc::not_found:
            return "not_found";
        case Errc::no_capacity:
            return "no_capacity";
        case Errc::unsupported:
            return "unsupported";
        case Errc::uring_unavailable:
            return "uring_unavailable";
        case Errc::uring_opcode:
            return "uring_opcode";
        case Errc::uring_sysctl:
            return "uring_sysctl";
        case Errc::uring_seccomp:
            return "uring_seccomp";
        case Errc::uring_too_old:
            return "uring_too_old";
        case Errc::relay_reset:
            return "relay_reset";
        case Errc::relay_idle:
            return "relay_idle";
        case Errc::relay_aborted:
            return "relay_aborted";
        case Errc::cert_parse:
            return "cert_parse";
        case Errc::cert_unknown_ca:
            return "cert_unknown_ca";
        case Errc::cert_expired:
            return "cert_expired";
        case Errc::cert_not_yet_valid:
            return "cert_not_yet_valid";
        case Errc::cert_bad_san:
            return "cert_bad_san";
        case Errc::cert_is_ca:
            return "cert_is_ca";
        case Errc::cert_key_usage:
            return "cert_key_usage";
        case Errc::cert_key_cert_sign:
            return "cert_key_cert_sign";
        case Errc::cert_eku:
            return "cert_eku";
        case Errc::cert_key_mismatch:
            return "cert_key_mismatch";
        case Errc::identity_mismatch:
            return "identity_mismatch";
        case Errc::trust_domain_mismatch:
            return "trust_domain_mismatch";
        case Errc::bad_identity:
            return "bad_identity";
        case Errc::cert_no_uri_san:
            return "cert_no_uri_san";
        case Errc::cert_many_uri_sans:
            return "cert_many_uri_sans";
        case Errc::cert_chain_too_long:
            return "cert_chain_too_long";
        case Errc::cert_chain_invalid:
            return "cert_chain_invalid";
        case Errc::cert_issue:
            return "cert_issue";
        case Errc::cert_unavailable:
            return "cert_unavailable";
        case Errc::cert_name_mismatch:
            return "cert_name_mismatch";
        case Errc::tls_handshake:
            return "tls_handshake";
        case Errc::tls_alpn:
            return "tls_alpn";
        case Errc::tls_cipher:
            return "tls_cipher";
        case Errc::tls_protocol:
            return "tls_protocol";
        case Errc::h2_protocol:
            return "h2_protocol";
        case Errc::h2_refused:
            return "h2_refused";
        case Errc::h2_glitches:
            return "h2_glitches";
        case Errc::h2_reset:
            return "h2_reset";
        case Errc::bad_authority:
            return "bad_authority";
        case Errc::config_invalid:
            return "config_invalid";
        case Errc::config_too_large:
            return "config_too_large";
        case Errc::policy_denied:
            return "policy_denied";
        case Errc::ip_mismatch:
            return "ip_mismatch";
        case Errc::self_call:
            return "self_call";
        case Errc::no_healthy_upstream:
            return "no_healthy_upstream";
        case Errc::http_status:
            return "http_status";
    }
    return "unknown";
}

}  // namespace zt
