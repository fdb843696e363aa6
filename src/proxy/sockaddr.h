#pragma once

// Conversions between the mesh model's `state::SocketAddr` and the kernel's `sockaddr_storage`,
// the one place the proxy crosses between the two.

#include <sys/socket.h>

#include "src/state/net.h"

namespace zt::proxy {

// to_socket_addr converts a kernel address (IPv4 or IPv6; IPv4-mapped IPv6 becomes IPv4).
// Anything else gives the default `SocketAddr` (0.0.0.0:0).
state::SocketAddr to_socket_addr(const sockaddr_storage& addr);

// to_sockaddr fills `out` with `addr` and returns its length.
socklen_t to_sockaddr(const state::SocketAddr& addr, sockaddr_storage& out);

// peer_address returns the remote address of connected socket `fd` (default on failure).
state::SocketAddr peer_address(int fd);

// local_address returns the local address of socket `fd` (default on failure).
state::SocketAddr local_address(int fd);

}  // namespace zt::proxy
