// spiffe_fuzz.cc fuzzes the strict SPIFFE parser: any input must either be refused or parse into
// an identity that round-trips exactly (formatting and re-parsing give the same URI and parts).
// A mismatch traps so libFuzzer and the corpus replay in `make test` both report it.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "certs/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto id = zt::certs::Identity::parse(text);
    if (!id) {
        return 0;
    }
    if (id->to_string() != text || id->to_string().size() > zt::certs::kMaxSpiffeIdBytes) {
        __builtin_trap();
    }
    auto rebuilt = zt::certs::Identity::from_parts(id->trust_domain(), id->namespace_name(),
                                                   id->service_account());
    if (!rebuilt || !(*rebuilt == *id) || rebuilt->principal() != id->principal()) {
        __builtin_trap();
    }
    return 0;
}
