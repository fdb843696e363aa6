#pragma once

// Socket options of proxy sockets, as ztunnel sets them (docs/ztunnel-reference.md §1.1–1.3):
// TCP_NODELAY everywhere, keepalive 180 s / 180 s / 9 on sockets accepted on 15001/15006 and on
// sockets we create, original-destination recovery for captured connections, and
// IP_TRANSPARENT + IP_FREEBIND for connecting to a pod from the client's original address.

#include <sys/socket.h>

#include <cstdint>

#include "zt/result.h"

namespace zt::proxy {

// Keepalive holds the TCP keepalive settings; the defaults are ztunnel's.
struct Keepalive {
    int time_s = 180;
    int interval_s = 180;
    int probes = 9;
};

// set_nodelay turns Nagle's algorithm off on `fd`.
Result<void> set_nodelay(int fd);

// set_delayed_ack (TCP_QUICKACK 0) makes `fd` delay its ACKs so that they ride on the data it
// sends next, instead of one pure ACK per segment received while a new connection is in
// quick-ACK mode. The kernel leaves this mode by itself the first time a delayed ACK times out
// (the option is not permanent).
Result<void> set_delayed_ack(int fd);

// set_keepalive enables TCP keepalive on `fd` with `settings`. Set on a listening socket, the
// settings (and TCP_NODELAY) are inherited by every socket it accepts.
Result<void> set_keepalive(int fd, const Keepalive& settings);

// set_transparent makes `fd` (of address `family`) able to bind a non-local address:
// IP_TRANSPARENT + IP_FREEBIND, or their IPv6 forms. Needs CAP_NET_ADMIN; the caller falls back
// to an unspoofed connect (with a warning) when this fails.
Result<void> set_transparent(int fd, int family);

// set_bind_address_no_port (IP_BIND_ADDRESS_NO_PORT) makes a later bind(2) to port 0 take only
// the address and leaves the port to connect(2), which picks one unique for the whole 4-tuple.
// Without it every spoofed-source bind searched the bind table for a port free for any
// destination, a search that grows with the TIME_WAIT sockets of a busy pod (11 % of the server
// ztunnel's CPU per new connection). Works on IPv6 sockets too.
Result<void> set_bind_address_no_port(int fd);

// canonicalize rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d) in `addr` to plain IPv4,
// as ztunnel does for every address it reports or matches.
void canonicalize(sockaddr_storage& addr);

// original_destination returns where a captured connection was going: SO_ORIGINAL_DST (IPv4) or
// IP6T_SO_ORIGINAL_DST (IPv6) set by a nat REDIRECT, else the socket's local address (the TPROXY
// case). The result is canonicalized.
Result<sockaddr_storage> original_destination(int fd);

}  // namespace zt::proxy
