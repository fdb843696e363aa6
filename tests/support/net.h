#pragma once

// Loopback socket helpers for ring and relay tests: blocking listeners and clients on 127.0.0.1
// or ::1 with port 0, a deterministic byte stream, and process introspection (open fds, thread
// count) for leak checks. Test support only; nothing here talks to any non-loopback address.

#include <sys/socket.h>

#include <cstdint>
#include <set>
#include <span>
#include <string>

#include "zt/unique_fd.h"

namespace zt::test {

// listen_loopback returns a blocking listening TCP socket on 127.0.0.1 (AF_INET) or ::1
// (AF_INET6) with a kernel-chosen port, written to `port`. Aborts the test process on failure.
UniqueFd listen_loopback(int family, uint16_t& port);

// connect_loopback returns a blocking TCP socket connected to loopback `port`, or an invalid
// fd when the connect fails.
UniqueFd connect_loopback(int family, uint16_t port);

// accept_blocking accepts one connection on blocking listener `fd`.
UniqueFd accept_blocking(int fd);

// set_nonblocking sets O_NONBLOCK on `fd`.
void set_nonblocking(int fd);

// loopback_address fills `storage` with loopback `port` in `family` and returns its length.
socklen_t loopback_address(int family, uint16_t port, sockaddr_storage& storage);

// fill_stream writes the bytes of the deterministic stream `seed` starting at `offset`.
void fill_stream(uint64_t seed, uint64_t offset, std::span<uint8_t> out);

// write_all / read_all loop over short writes and reads; they return false on error or early
// EOF.
bool write_all(int fd, std::span<const uint8_t> bytes);
bool read_all(int fd, std::span<uint8_t> bytes);

// open_fds lists /proc/self/fd (excluding the fd used to list it).
std::set<std::string> open_fds();

// thread_count counts /proc/self/task entries (io-wq workers show up there).
int thread_count();

}  // namespace zt::test
