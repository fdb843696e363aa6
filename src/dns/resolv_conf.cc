// resolv_conf.cc reads the forwarder's upstreams from a resolv.conf or from `--dns-upstream`.
// Parsing is pure; only `read_resolv_conf` touches the file system, once, at start-up (never on
// a worker).

#include "src/dns/resolv_conf.h"

#include <fcntl.h>
#include <unistd.h>

namespace zt::dns {

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

}  // namespace

ResolvConf parse_resolv_conf(std::string_view text) {
    ResolvConf out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        size_t comment = line.find_first_of("#;");
        if (comment != std::string_view::npos) {
            line = line.substr(0, comment);
        }
        line = trim(line);
        constexpr std::string_view kKeyword = "nameserver";
        if (line.size() <= kKeyword.size() || line.substr(0, kKeyword.size()) != kKeyword ||
            (line[kKeyword.size()] != ' ' && line[kKeyword.size()] != '\t')) {
            continue;
        }
        std::string_view value = trim(line.substr(kKeyword.size()));
        size_t space = value.find_first_of(" \t");
        if (space != std::string_view::npos) {
            value = value.substr(0, space);
        }
        auto ip = state::IpAddr::parse(value);
        if (!ip) {
            out.skipped.emplace_back(value);
            continue;
        }
        out.nameservers.push_back(state::SocketAddr{*ip, 53});
    }
    return out;
}

Result<ResolvConf> read_resolv_conf(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail_errno(errno);
    }
    std::string text;
    char buffer[4096];
    while (text.size() < 1 << 20) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return fail_errno(err);
        }
        if (n == 0) {
            break;
        }
        text.append(buffer, size_t(n));
    }
    ::close(fd);
    return parse_resolv_conf(text);
}

Result<std::vector<state::SocketAddr>> parse_upstreams(std::string_view list) {
    std::vector<state::SocketAddr> out;
    size_t pos = 0;
    while (true) {
        size_t comma = list.find(',', pos);
        std::string_view entry = trim(list.substr(
                pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        if (entry.empty()) {
            return fail(Errc::invalid_argument);
        }
        std::string_view bare = entry;
        if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
            bare = bare.substr(1, bare.size() - 2);  // `[2001:db8::1]` without a port
        }
        if (auto ip = state::IpAddr::parse(bare)) {
            out.push_back(state::SocketAddr{*ip, 53});
        } else if (auto address = state::SocketAddr::parse(entry)) {
            out.push_back(*address);
        } else {
            return fail(Errc::invalid_argument);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        pos = comma + 1;
    }
    return out;
}

}  // namespace zt::dns
