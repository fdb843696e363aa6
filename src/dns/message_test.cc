// Tests for the DNS codec over ldns: queries parsed from hand-written wire bytes (EDNS, DO, odd
// classes, broken messages), answers and errors checked byte by byte in their headers, EDNS
// echoed as ztunnel echoes it, truncation to a client's payload size with TC, upstream answers
// inspected and re-truncated, and the proxy's own queries read back.

#include "src/dns/message.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using zt::dns::Name;

namespace {

// wire builds a query for `labels` with `type`, class `qclass`, id 0xbeef, RD set, and an OPT
// record with `payload` bytes (and DO when `dnssec_ok`) when `payload` is non-zero.
std::vector<uint8_t> wire(std::vector<std::string> labels, uint16_t type, uint16_t qclass = 1,
                          uint16_t payload = 0, bool dnssec_ok = false) {
    std::vector<uint8_t> out = {0xbe, 0xef, 0x01, 0x00, 0, 1,
                                0,    0,    0,    0,    0, uint8_t(payload ? 1 : 0)};
    for (const auto& label : labels) {
        out.push_back(uint8_t(label.size()));
        out.insert(out.end(), label.begin(), label.end());
    }
    out.push_back(0);
    out.insert(out.end(),
               {uint8_t(type >> 8), uint8_t(type), uint8_t(qclass >> 8), uint8_t(qclass)});
    if (payload != 0) {
        out.insert(out.end(), {0, 0, 41, uint8_t(payload >> 8), uint8_t(payload), 0, 0,
                               uint8_t(dnssec_ok ? 0x80 : 0), 0, 0, 0});
    }
    return out;
}

zt::dns::Record a_record(const Name& owner, uint8_t last) {
    zt::dns::Record record;
    record.owner = owner;
    record.type = zt::dns::kTypeA;
    record.address = zt::state::IpAddr::v4(198, 19, 0, last);
    return record;
}

}  // namespace

TEST_CASE("dns message: a plain query parses into its header and question") {
    auto bytes = wire({"Foo", "example"}, zt::dns::kTypeAaaa);
    auto query = zt::dns::parse_query(bytes);
    REQUIRE(query);
    CHECK(query->id == 0xbeef);
    CHECK_FALSE(query->response);
    CHECK(query->opcode == 0);
    CHECK(query->recursion_desired);
    CHECK(query->question_count == 1);
    CHECK(query->name.to_string() == "Foo.example");
    CHECK(query->type == zt::dns::kTypeAaaa);
    CHECK(query->qclass == zt::dns::kClassIn);
    CHECK_FALSE(query->edns.present);
    CHECK(zt::dns::udp_payload_limit(*query) == 512);
}

TEST_CASE("dns message: EDNS is read and sets the UDP payload limit, at least 512") {
    auto query = zt::dns::parse_query(wire({"a", "b"}, 1, 1, 1232, true));
    REQUIRE(query);
    CHECK(query->edns.present);
    CHECK(query->edns.udp_payload == 1232);
    CHECK(query->edns.dnssec_ok);
    CHECK(zt::dns::udp_payload_limit(*query) == 1232);
    auto small = zt::dns::parse_query(wire({"a", "b"}, 1, 1, 100));
    REQUIRE(small);
    CHECK(zt::dns::udp_payload_limit(*small) == 512);
}

TEST_CASE("dns message: broken messages do not parse; a header is enough for FORMERR") {
    auto good = wire({"a", "b"}, 1);
    // Cut inside the question, counts that promise more than there is, a name pointer loop.
    std::vector<uint8_t> cut(good.begin(), good.end() - 3);
    CHECK_FALSE(zt::dns::parse_query(cut));
    auto more = good;
    more[7] = 5;  // ANCOUNT 5, no answers follow.
    CHECK_FALSE(zt::dns::parse_query(more));
    std::vector<uint8_t> loop = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    CHECK_FALSE(zt::dns::parse_query(loop));
    CHECK_FALSE(zt::dns::parse_query(std::vector<uint8_t>(5, 0)));

    auto error = zt::dns::encode_header_error(cut, zt::dns::Rcode::formerr);
    auto header = zt::dns::read_header(error);
    REQUIRE(header);
    CHECK(error.size() == 12);
    CHECK(header->id == 0xbeef);
    CHECK(header->response);
    CHECK(header->recursion_desired);
    CHECK(header->rcode == uint8_t(zt::dns::Rcode::formerr));
    CHECK(header->question_count == 0);
    CHECK_FALSE(zt::dns::read_header(std::vector<uint8_t>(11, 0)));
}

TEST_CASE("dns message: an answer copies the header bits, echoes the question and EDNS") {
    auto query = zt::dns::parse_query(wire({"svc", "ns1"}, 1, 1, 4096, true));
    REQUIRE(query);
    std::vector<zt::dns::Record> records = {a_record(query->name, 1)};
    auto out = zt::dns::encode_answer(*query, true, records, 4096);
    auto header = zt::dns::read_header(out);
    REQUIRE(header);
    CHECK(header->id == 0xbeef);
    CHECK(header->response);
    CHECK_FALSE(header->truncated);
    CHECK(header->question_count == 1);
    CHECK(header->answer_count == 1);
    CHECK(header->additional_count == 1);  // The OPT record.
    CHECK((out[2] & 0x04) != 0);           // AA
    CHECK((out[3] & 0x80) != 0);           // RA
    // Read back as a client would: the question, the record, the OPT echoed with DO.
    auto back = zt::dns::parse_query(out);
    REQUIRE(back);
    CHECK(back->name.to_string() == "svc.ns1");
    CHECK(back->edns.present);
    CHECK(back->edns.udp_payload == 4096);
    CHECK(back->edns.dnssec_ok);
    auto addresses = zt::dns::answer_addresses(out, zt::dns::kTypeA);
    REQUIRE(addresses);
    REQUIRE(addresses->ips.size() == 1);
    CHECK(addresses->ips[0].to_string() == "198.19.0.1");
    CHECK(addresses->min_ttl == 30);
}

TEST_CASE("dns message: an answer too large for UDP keeps what fits and sets TC") {
    auto query = zt::dns::parse_query(wire({"large", "com"}, 1));
    REQUIRE(query);
    std::vector<zt::dns::Record> records;
    for (int i = 0; i < 200; ++i) {
        records.push_back(a_record(query->name, uint8_t(i)));
    }
    auto udp = zt::dns::encode_answer(*query, false, records, 512);
    auto header = zt::dns::read_header(udp);
    REQUIRE(header);
    CHECK(udp.size() <= 512);
    CHECK(header->truncated);
    CHECK(header->answer_count > 0);
    CHECK(header->answer_count < 200);
    // Compressed owner names: 16 bytes a record after the 12-byte header and the question.
    CHECK(header->answer_count == (512 - 12 - 15) / 16);

    auto tcp = zt::dns::encode_answer(*query, false, records, zt::dns::kMaxMessageBytes);
    auto full = zt::dns::read_header(tcp);
    CHECK_FALSE(full->truncated);
    CHECK(full->answer_count == 200);

    // A relayed answer re-truncated for a UDP client.
    auto cut = zt::dns::truncate_to_fit(tcp, 512);
    REQUIRE(cut);
    CHECK(cut->size() <= 512);
    CHECK(zt::dns::read_header(*cut)->truncated);
    CHECK(zt::dns::read_header(*cut)->answer_count == header->answer_count);
    auto untouched = zt::dns::truncate_to_fit(tcp, zt::dns::kMaxMessageBytes);
    REQUIRE(untouched);
    CHECK_FALSE(zt::dns::read_header(*untouched)->truncated);
}

TEST_CASE("dns message: errors echo the question but carry no RA and no EDNS") {
    auto query = zt::dns::parse_query(wire({"x", "y"}, 1, 1, 1232));
    REQUIRE(query);
    auto out = zt::dns::encode_error(*query, zt::dns::Rcode::servfail);
    auto header = zt::dns::read_header(out);
    REQUIRE(header);
    CHECK(header->rcode == uint8_t(zt::dns::Rcode::servfail));
    CHECK(header->question_count == 1);
    CHECK(header->additional_count == 0);
    CHECK((out[3] & 0x80) == 0);
    CHECK((out[2] & 0x04) == 0);
}

TEST_CASE("dns message: an upstream's answer is checked against the query") {
    auto query = zt::dns::parse_query(wire({"www", "example"}, 1));
    REQUIRE(query);
    std::vector<zt::dns::Record> records = {a_record(*Name::parse("www.example"), 9)};
    auto answer = zt::dns::encode_answer(*query, false, records, 512);
    auto info = zt::dns::inspect_answer(*query, answer);
    REQUIRE(info);
    CHECK(info->question_matches);
    CHECK(info->address_count == 1);
    CHECK(info->rcode == zt::dns::Rcode::noerror);

    // The question echoed in another case still matches (0x20 randomisation).
    auto shouted = zt::dns::parse_query(wire({"WWW", "Example"}, 1));
    CHECK(zt::dns::inspect_answer(*shouted, answer)->question_matches);
    // Another name or type does not.
    auto other = zt::dns::parse_query(wire({"www", "example"}, zt::dns::kTypeAaaa));
    CHECK_FALSE(zt::dns::inspect_answer(*other, answer)->question_matches);
    auto elsewhere = zt::dns::parse_query(wire({"ww", "example"}, 1));
    CHECK_FALSE(zt::dns::inspect_answer(*elsewhere, answer)->question_matches);
    // Garbage does not parse.
    std::vector<uint8_t> garbage(answer.begin(), answer.begin() + 20);
    CHECK_FALSE(zt::dns::inspect_answer(*query, garbage));
}

TEST_CASE("dns message: the proxy's own query and the ids") {
    auto out = zt::dns::encode_query(*Name::parse("db.example"), zt::dns::kTypeAaaa, 0x4242);
    auto query = zt::dns::parse_query(out);
    REQUIRE(query);
    CHECK(query->id == 0x4242);
    CHECK(query->recursion_desired);
    CHECK(query->name.to_string() == "db.example");
    CHECK(query->type == zt::dns::kTypeAaaa);
    zt::dns::write_id(out, 0x0102);
    CHECK(zt::dns::read_header(out)->id == 0x0102);
    // A name too long to encode gives no query at all.
    Name huge;
    for (int i = 0; i < 10; ++i) {
        huge.labels.push_back(std::string(40, 'a'));
    }
    CHECK(zt::dns::encode_query(huge, 1, 1).empty());
}

TEST_CASE("dns message: record type names as ldns spells them") {
    CHECK(zt::dns::type_name(1) == "A");
    CHECK(zt::dns::type_name(28) == "AAAA");
    CHECK(zt::dns::type_name(15) == "MX");
    CHECK(zt::dns::type_name(65534) == "TYPE65534");
}
