#pragma once

// The DNS message codec of the proxy: everything that reads or writes DNS wire format goes
// through here, and here alone uses ldns (Debian's libldns, linked without OpenSSL: see
// scripts/ldns-codec.sh). The rest of src/dns/ sees plain values: a parsed `Query`, `Record`s to
// answer with, and byte vectors to send. Nothing here does I/O or keeps state between calls.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/dns/names.h"
#include "src/state/net.h"
#include "zt/result.h"

namespace zt::dns {

// Wire constants the proxy names (RFC 1035, RFC 3596, RFC 6891).
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint8_t kOpcodeQuery = 0;
inline constexpr size_t kHeaderBytes = 12;
// kMinUdpPayload is what every client accepts over UDP; larger only with EDNS.
inline constexpr size_t kMinUdpPayload = 512;
// kMaxMessageBytes is the largest DNS message (TCP's 2-byte length prefix).
inline constexpr size_t kMaxMessageBytes = 65535;
// kTtlSeconds is the TTL of every record the proxy answers itself, as ztunnel's.
inline constexpr uint32_t kTtlSeconds = 30;

// Rcode is a response code (the 4 header bits).
enum class Rcode : uint8_t {
    noerror = 0,
    formerr = 1,
    servfail = 2,
    nxdomain = 3,
    notimp = 4,
    refused = 5,
};

std::string_view to_string(Rcode rcode);

// Edns is a message's OPT pseudo-record, when it has one.
struct Edns {
    bool present = false;
    uint16_t udp_payload = 0;
    uint8_t version = 0;
    bool dnssec_ok = false;
};

// Header is the fixed 12-byte header, read straight from the bytes.
struct Header {
    uint16_t id = 0;
    bool response = false;  // QR
    uint8_t opcode = 0;
    bool truncated = false;  // TC
    bool recursion_desired = false;
    uint8_t rcode = 0;  // The header's 4 bits (no EDNS extension).
    uint16_t question_count = 0;
    uint16_t answer_count = 0;
    uint16_t authority_count = 0;
    uint16_t additional_count = 0;
};

// read_header reads the header of `message`; std::nullopt when it is shorter than 12 bytes.
std::optional<Header> read_header(std::span<const uint8_t> message);

// write_id stores `id` as the message id of `message` (at least 12 bytes).
void write_id(std::span<uint8_t> message, uint16_t id);

// Query is what the proxy needs of one message a client sent. `name`, `type` and `qclass` are
// the first question's (empty and 0 when there is none).
struct Query {
    uint16_t id = 0;
    bool response = false;  // A response sent as a query: FORMERR.
    uint8_t opcode = 0;
    bool recursion_desired = false;
    bool checking_disabled = false;
    uint16_t question_count = 0;
    Name name;
    uint16_t type = 0;
    uint16_t qclass = 0;
    Edns edns;
};

// parse_query parses the whole of `message` with ldns. It fails with `Errc::parse` when ldns
// cannot (truncated sections, bad names, bad counts); the caller then answers FORMERR from the
// header alone (`encode_header_error`), or drops a message shorter than a header.
Result<Query> parse_query(std::span<const uint8_t> message);

// udp_payload_limit is how large a UDP answer to `query` may be: its EDNS payload size, at least
// 512, or 512 without EDNS (ztunnel's hickory-server does the same).
size_t udp_payload_limit(const Query& query);

// Record is one answer record the proxy makes: A or AAAA (`address`), or CNAME (`target`).
struct Record {
    Name owner;
    uint16_t type = kTypeA;
    state::IpAddr address;
    Name target;
    uint32_t ttl = kTtlSeconds;
};

// encode_answer builds the NOERROR answer to `query`: QR, RD and CD from the query, RA set, AA
// as `authoritative`, the question echoed, `records` in order in the answer section, and the
// query's EDNS echoed (payload size at least 512, version, DO), as ztunnel's `send_lookup`. When
// the message would exceed `limit` bytes, the trailing records that do not fit are left out and
// TC is set (the client then asks again over TCP).
std::vector<uint8_t> encode_answer(const Query& query, bool authoritative,
                                   std::span<const Record> records, size_t limit);

// encode_error builds the error answer `rcode` to `query`, as ztunnel's `send_error`: id,
// opcode, RD and CD from the query, the question echoed, no RA, no EDNS, no records.
std::vector<uint8_t> encode_error(const Query& query, Rcode rcode);

// encode_header_error builds an error answer from the header of `message` alone (at least 12
// bytes), for a message ldns cannot parse: id, opcode and RD copied, every count zero.
std::vector<uint8_t> encode_header_error(std::span<const uint8_t> message, Rcode rcode);

// AnswerInfo is what the forwarder checks in an upstream's answer.
struct AnswerInfo {
    Header header;
    Rcode rcode = Rcode::noerror;   // The header's code (extended codes are relayed, not read).
    bool question_matches = false;  // One question equal to the query's (case ignored).
    uint16_t address_count = 0;     // A and AAAA records in the answer section.
};

// inspect_answer parses `message`, an upstream's answer to `query`, with ldns. It fails with
// `Errc::parse` when ldns cannot parse it.
Result<AnswerInfo> inspect_answer(const Query& query, std::span<const uint8_t> message);

// truncate_to_fit returns `message` (a whole answer) re-encoded to at most `limit` bytes: records
// are dropped from the end of the additional, then authority, then answer sections until it
// fits, and TC is set. It fails with `Errc::parse` when ldns cannot parse the message.
Result<std::vector<uint8_t>> truncate_to_fit(std::span<const uint8_t> message, size_t limit);

// encode_query builds a recursive query (RD set) for `name` of `type`, class IN, with message id
// `id`: the proxy's own questions (on-demand resolution of hostname-only workloads).
std::vector<uint8_t> encode_query(const Name& name, uint16_t type, uint16_t id);

// Addresses is what `answer_addresses` found in an answer.
struct Addresses {
    std::vector<state::IpAddr> ips;
    uint32_t min_ttl = 0;  // The smallest TTL among `ips`' records (0 when there are none).
};

// answer_addresses returns the A or AAAA records (as `type` says) of the answer section of
// `message`, whatever their owner (a CNAME chain's last name holds them). It fails with
// `Errc::parse` when ldns cannot parse the message.
Result<Addresses> answer_addresses(std::span<const uint8_t> message, uint16_t type);

// type_name spells a record type as ldns does (`A`, `AAAA`, `HTTPS`, `TYPE65534`); the metrics
// lower-case it as ztunnel's do.
std::string type_name(uint16_t type);

}  // namespace zt::dns
