#pragma once

// Where forwarded queries go: the `nameserver` lines of ztunnel's own /etc/resolv.conf (as
// ztunnel's hickory `read_system_conf`, with the search list dropped: the client's resolver has
// applied it already), or the `--dns-upstream` list that overrides them.

#include <string>
#include <string_view>
#include <vector>

#include "src/state/net.h"
#include "zt/result.h"

namespace zt::dns {

// kDefaultResolvConf is read when `--dns-upstream` is not given.
inline constexpr std::string_view kDefaultResolvConf = "/etc/resolv.conf";

// ResolvConf is what the proxy takes from a resolv.conf.
struct ResolvConf {
    std::vector<state::SocketAddr> nameservers;  // Port 53, in file order.
    std::vector<std::string> skipped;  // `nameserver` values that are not usable IP addresses.
};

// parse_resolv_conf reads `nameserver ADDRESS` lines (IPv4 or IPv6; `#` and `;` start
// comments). An address with a zone (`fe80::1%eth0`) or anything else that is not a plain IP is
// listed in `skipped`. Other keywords are ignored.
ResolvConf parse_resolv_conf(std::string_view text);

// read_resolv_conf reads and parses the file at `path`; `Errc::sys` when it cannot be read.
Result<ResolvConf> read_resolv_conf(const std::string& path);

// parse_upstreams reads `--dns-upstream`: comma-separated `IP`, `IP:PORT`, `[IPv6]` or
// `[IPv6]:PORT`
// (port 53 when absent). Fails with `Errc::invalid_argument` on an empty list or entry, or an
// entry that is not an address.
Result<std::vector<state::SocketAddr>> parse_upstreams(std::string_view list);

}  // namespace zt::dns
