// message.cc is the proxy's DNS codec over ldns: parse a client's query, encode answers and
// errors, inspect and re-truncate an upstream's answer, build and read the proxy's own queries.
// It is the only file that includes ldns (make tidy checks), owns every ldns object it makes
// (freed before returning) and never does I/O. Only the fixed 12-byte header is read and written
// by hand, where a message is too broken for ldns or only its id changes.

#include "src/dns/message.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

// ldns/host2wire.h uses ldns_rbtree_t without including its header; rbtree.h must come first.
// clang-format off
#include <ldns/rbtree.h>
#include <ldns/buffer.h>
#include <ldns/dname.h>
#include <ldns/host2wire.h>
#include <ldns/packet.h>
#include <ldns/rdata.h>
#include <ldns/rr.h>
#include <ldns/wire2host.h>

// clang-format on

namespace zt::dns {

namespace {

struct PacketFree {
    void operator()(ldns_pkt* packet) const { ldns_pkt_free(packet); }
};

using Packet = std::unique_ptr<ldns_pkt, PacketFree>;

uint16_t read16(std::span<const uint8_t> bytes, size_t at) {
    return uint16_t(uint16_t(bytes[at]) << 8 | bytes[at + 1]);
}

Result<Packet> parse(std::span<const uint8_t> message) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, message.data(), message.size()) != LDNS_STATUS_OK) {
        if (raw != nullptr) {
            ldns_pkt_free(raw);
        }
        return fail(Errc::parse);
    }
    return Packet(raw);
}

// name_of reads the labels of an uncompressed wire-format dname rdf (ldns decompresses on
// parse): length-prefixed labels up to the root's zero.
Name name_of(const ldns_rdf* dname) {
    Name name;
    if (dname == nullptr) {
        return name;
    }
    const uint8_t* data = ldns_rdf_data(dname);
    size_t size = ldns_rdf_size(dname);
    size_t at = 0;
    while (at < size && data[at] != 0) {
        size_t length = data[at];
        if (at + 1 + length > size) {
            break;
        }
        name.labels.emplace_back(reinterpret_cast<const char*>(data + at + 1), length);
        at += 1 + length;
    }
    return name;
}

// make_dname encodes `name` as a dname rdf, or returns null when it is not a valid name (a label
// over 63 bytes, an empty label, or more than 255 bytes in all).
ldns_rdf* make_dname(const Name& name) {
    uint8_t wire[256];
    size_t size = 0;
    for (const std::string& label : name.labels) {
        if (label.empty() || label.size() > 63 || size + 1 + label.size() + 1 > 255) {
            return nullptr;
        }
        wire[size++] = uint8_t(label.size());
        std::copy(label.begin(), label.end(), wire + size);
        size += label.size();
    }
    wire[size++] = 0;
    return ldns_dname_new_frm_data(uint16_t(size), wire);
}

// push_question adds the question (`name`, `type`, `qclass`) to `packet`; false when `name`
// cannot be encoded.
bool push_question(ldns_pkt* packet, const Name& name, uint16_t type, uint16_t qclass) {
    ldns_rdf* owner = make_dname(name);
    if (owner == nullptr) {
        return false;
    }
    ldns_rr* question = ldns_rr_new();
    ldns_rr_set_owner(question, owner);
    ldns_rr_set_type(question, ldns_rr_type(type));
    ldns_rr_set_class(question, ldns_rr_class(qclass));
    ldns_rr_set_question(question, true);
    ldns_pkt_push_rr(packet, LDNS_SECTION_QUESTION, question);
    return true;
}

ldns_rr* make_record(const Record& record) {
    ldns_rdf* owner = make_dname(record.owner);
    ldns_rdf* data = nullptr;
    if (record.type == kTypeCname) {
        data = make_dname(record.target);
    } else if (record.type == kTypeA && !record.address.v6) {
        data = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, record.address.bytes.data());
    } else if (record.type == kTypeAaaa && record.address.v6) {
        data = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, record.address.bytes.data());
    }
    if (owner == nullptr || data == nullptr) {
        ldns_rdf_deep_free(owner);
        ldns_rdf_deep_free(data);
        return nullptr;
    }
    ldns_rr* rr = ldns_rr_new();
    ldns_rr_set_owner(rr, owner);
    ldns_rr_set_type(rr, ldns_rr_type(record.type));
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, record.ttl);
    ldns_rr_push_rdf(rr, data);
    return rr;
}

// response_packet starts the answer to `query`: header bits copied as hickory's
// `response_from_request` does, and the question echoed.
Packet response_packet(const Query& query, Rcode rcode) {
    Packet packet(ldns_pkt_new());
    ldns_pkt_set_id(packet.get(), query.id);
    ldns_pkt_set_qr(packet.get(), true);
    ldns_pkt_set_opcode(packet.get(), ldns_pkt_opcode(query.opcode));
    ldns_pkt_set_rd(packet.get(), query.recursion_desired);
    ldns_pkt_set_cd(packet.get(), query.checking_disabled);
    ldns_pkt_set_rcode(packet.get(), uint8_t(rcode));
    if (query.question_count > 0) {
        push_question(packet.get(), query.name, query.type, query.qclass);
    }
    return packet;
}

// to_wire encodes `packet`, with name compression when `compress` is set. ldns compresses
// through a red-black tree of every name suffix, about 10 us for a small answer against under
// 1 us without; so answers go out uncompressed unless that does not fit (`fit`). A null
// compression tree is ldns's own way to ask for none.
std::vector<uint8_t> to_wire(const ldns_pkt* packet, bool compress) {
    if (compress) {
        uint8_t* wire = nullptr;
        size_t size = 0;
        if (ldns_pkt2wire(&wire, packet, &size) != LDNS_STATUS_OK) {
            free(wire);
            return {};
        }
        std::vector<uint8_t> out(wire, wire + size);
        free(wire);
        return out;
    }
    ldns_buffer* buffer = ldns_buffer_new(kMinUdpPayload);
    if (buffer == nullptr) {
        return {};
    }
    std::vector<uint8_t> out;
    if (ldns_pkt2buffer_wire_compress(buffer, packet, nullptr) == LDNS_STATUS_OK) {
        const uint8_t* begin = ldns_buffer_begin(buffer);
        out.assign(begin, begin + ldns_buffer_position(buffer));
    }
    ldns_buffer_free(buffer);
    return out;
}

// pop_last removes the last record of `section`, keeping the header count in step; false when
// the section is empty.
bool pop_last(ldns_pkt* packet, ldns_pkt_section section) {
    ldns_rr_list* list = nullptr;
    switch (section) {
        case LDNS_SECTION_ANSWER:
            list = ldns_pkt_answer(packet);
            break;
        case LDNS_SECTION_AUTHORITY:
            list = ldns_pkt_authority(packet);
            break;
        case LDNS_SECTION_ADDITIONAL:
            list = ldns_pkt_additional(packet);
            break;
        default:
            return false;
    }
    if (list == nullptr || ldns_rr_list_rr_count(list) == 0) {
        return false;
    }
    ldns_rr_free(ldns_rr_list_pop_rr(list));
    ldns_pkt_set_section_count(packet, section, uint16_t(ldns_rr_list_rr_count(list)));
    return true;
}

// fit encodes `packet` in at most `limit` bytes: uncompressed when that fits, else compressed,
// else compressed with records dropped from the end of `sections` in order and TC set.
std::vector<uint8_t> fit(ldns_pkt* packet, size_t limit,
                         std::initializer_list<ldns_pkt_section> sections) {
    std::vector<uint8_t> wire = to_wire(packet, false);
    if (wire.size() <= limit) {
        return wire;
    }
    wire = to_wire(packet, true);
    for (ldns_pkt_section section : sections) {
        while (wire.size() > limit && pop_last(packet, section)) {
            ldns_pkt_set_tc(packet, true);
            wire = to_wire(packet, true);
        }
    }
    return wire;
}

}  // namespace

std::string_view to_string(Rcode rcode) {
    switch (rcode) {
        case Rcode::noerror:
            return "NOERROR";
        case Rcode::formerr:
            return "FORMERR";
        case Rcode::servfail:
            return "SERVFAIL";
        case Rcode::nxdomain:
            return "NXDOMAIN";
        case Rcode::notimp:
            return "NOTIMP";
        case Rcode::refused:
            return "REFUSED";
    }
    return "NOERROR";
}

std::optional<Header> read_header(std::span<const uint8_t> message) {
    if (message.size() < kHeaderBytes) {
        return std::nullopt;
    }
    Header header;
    header.id = read16(message, 0);
    header.response = (message[2] & 0x80) != 0;
    header.opcode = uint8_t((message[2] >> 3) & 0x0f);
    header.truncated = (message[2] & 0x02) != 0;
    header.recursion_desired = (message[2] & 0x01) != 0;
    header.rcode = uint8_t(message[3] & 0x0f);
    header.question_count = read16(message, 4);
    header.answer_count = read16(message, 6);
    header.authority_count = read16(message, 8);
    header.additional_count = read16(message, 10);
    return header;
}

void write_id(std::span<uint8_t> message, uint16_t id) {
    ZT_ASSERT(message.size() >= kHeaderBytes);
    message[0] = uint8_t(id >> 8);
    message[1] = uint8_t(id);
}

Result<Query> parse_query(std::span<const uint8_t> message) {
    auto packet = parse(message);
    if (!packet) {
        return fail(packet.error());
    }
    const ldns_pkt* p = packet->get();
    Query query;
    query.id = ldns_pkt_id(p);
    query.response = ldns_pkt_qr(p);
    query.opcode = uint8_t(ldns_pkt_get_opcode(p));
    query.recursion_desired = ldns_pkt_rd(p);
    query.checking_disabled = ldns_pkt_cd(p);
    query.question_count = ldns_pkt_qdcount(p);
    const ldns_rr_list* questions = ldns_pkt_question(p);
    if (questions != nullptr && ldns_rr_list_rr_count(questions) > 0) {
        const ldns_rr* question = ldns_rr_list_rr(questions, 0);
        query.name = name_of(ldns_rr_owner(question));
        query.type = uint16_t(ldns_rr_get_type(question));
        query.qclass = uint16_t(ldns_rr_get_class(question));
    } else {
        query.question_count = 0;
    }
    if (ldns_pkt_edns(p)) {
        query.edns.present = true;
        query.edns.udp_payload = ldns_pkt_edns_udp_size(p);
        query.edns.version = ldns_pkt_edns_version(p);
        query.edns.dnssec_ok = ldns_pkt_edns_do(p);
    }
    return query;
}

size_t udp_payload_limit(const Query& query) {
    if (!query.edns.present) {
        return kMinUdpPayload;
    }
    return std::max<size_t>(kMinUdpPayload, query.edns.udp_payload);
}

std::vector<uint8_t> encode_answer(const Query& query, bool authoritative,
                                   std::span<const Record> records, size_t limit) {
    Packet packet = response_packet(query, Rcode::noerror);
    ldns_pkt_set_aa(packet.get(), authoritative);
    ldns_pkt_set_ra(packet.get(), true);
    for (const Record& record : records) {
        if (ldns_rr* rr = make_record(record)) {
            ldns_pkt_push_rr(packet.get(), LDNS_SECTION_ANSWER, rr);
        }
    }
    if (query.edns.present) {
        ldns_pkt_set_edns_udp_size(
                packet.get(), uint16_t(std::max<size_t>(kMinUdpPayload, query.edns.udp_payload)));
        ldns_pkt_set_edns_version(packet.get(), query.edns.version);
        ldns_pkt_set_edns_do(packet.get(), query.edns.dnssec_ok);
    }
    return fit(packet.get(), limit, {LDNS_SECTION_ANSWER});
}

std::vector<uint8_t> encode_error(const Query& query, Rcode rcode) {
    Packet packet = response_packet(query, rcode);
    return to_wire(packet.get(), false);
}

std::vector<uint8_t> encode_header_error(std::span<const uint8_t> message, Rcode rcode) {
    ZT_ASSERT(message.size() >= kHeaderBytes);
    std::vector<uint8_t> out(kHeaderBytes, 0);
    out[0] = message[0];
    out[1] = message[1];
    // QR set; opcode and RD kept; AA, TC, RA, Z, AD and CD clear.
    out[2] = uint8_t(0x80 | (message[2] & 0x78) | (message[2] & 0x01));
    out[3] = uint8_t(rcode);
    return out;
}

Result<AnswerInfo> inspect_answer(const Query& query, std::span<const uint8_t> message) {
    auto packet = parse(message);
    if (!packet) {
        return fail(packet.error());
    }
    const ldns_pkt* p = packet->get();
    AnswerInfo info;
    info.header = *read_header(message);
    info.rcode = Rcode(info.header.rcode);
    const ldns_rr_list* questions = ldns_pkt_question(p);
    if (questions != nullptr && ldns_rr_list_rr_count(questions) == 1) {
        const ldns_rr* question = ldns_rr_list_rr(questions, 0);
        info.question_matches = name_of(ldns_rr_owner(question)).equals(query.name) &&
                                uint16_t(ldns_rr_get_type(question)) == query.type &&
                                uint16_t(ldns_rr_get_class(question)) == query.qclass;
    }
    const ldns_rr_list* answers = ldns_pkt_answer(p);
    for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
        ldns_rr_type type = ldns_rr_get_type(ldns_rr_list_rr(answers, i));
        if (type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA) {
            ++info.address_count;
        }
    }
    return info;
}

Result<std::vector<uint8_t>> truncate_to_fit(std::span<const uint8_t> message, size_t limit) {
    auto packet = parse(message);
    if (!packet) {
        return fail(packet.error());
    }
    return fit(packet->get(), limit,
               {LDNS_SECTION_ADDITIONAL, LDNS_SECTION_AUTHORITY, LDNS_SECTION_ANSWER});
}

std::vector<uint8_t> encode_query(const Name& name, uint16_t type, uint16_t id) {
    Packet packet(ldns_pkt_new());
    ldns_pkt_set_id(packet.get(), id);
    ldns_pkt_set_opcode(packet.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_rd(packet.get(), true);
    if (!push_question(packet.get(), name, type, kClassIn)) {
        return {};
    }
    return to_wire(packet.get(), false);
}

Result<Addresses> answer_addresses(std::span<const uint8_t> message, uint16_t type) {
    auto packet = parse(message);
    if (!packet) {
        return fail(packet.error());
    }
    Addresses out;
    const ldns_rr_list* answers = ldns_pkt_answer(packet->get());
    for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(answers, i);
        if (uint16_t(ldns_rr_get_type(rr)) != type || ldns_rr_rd_count(rr) != 1) {
            continue;
        }
        const ldns_rdf* data = ldns_rr_rdf(rr, 0);
        size_t size = ldns_rdf_size(data);
        if ((type == kTypeA && size != 4) || (type == kTypeAaaa && size != 16)) {
            continue;
        }
        state::IpAddr ip;
        ip.v6 = size == 16;
        std::copy_n(ldns_rdf_data(data), size, ip.bytes.begin());
        out.min_ttl = out.ips.empty() ? ldns_rr_ttl(rr) : std::min(out.min_ttl, ldns_rr_ttl(rr));
        out.ips.push_back(ip);
    }
    return out;
}

std::string type_name(uint16_t type) {
    const ldns_rr_descriptor* descriptor = ldns_rr_descript(type);
    if (descriptor != nullptr && descriptor->_type == type && descriptor->_name != nullptr) {
        return descriptor->_name;
    }
    return "TYPE" + std::to_string(type);
}

}  // namespace zt::dns
