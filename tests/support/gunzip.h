#pragma once

// gunzip for tests that check gzip-encoded HTTP bodies.

#include <optional>
#include <string>
#include <string_view>

namespace zt::test {

// gunzip inflates one gzip member; std::nullopt when `data` is not valid gzip.
std::optional<std::string> gunzip(std::string_view data);

}  // namespace zt::test
