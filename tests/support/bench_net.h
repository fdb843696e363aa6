#pragma once

// bench_net.h: small blocking-socket helpers shared by the benchmark and test tools in
// tests/tools/ (echo_server, pingpong, connrate, idle_conns). They are tool code, not product
// code: plain POSIX sockets, errors reported as -errno or false, no io_uring. Byte loops
// (write_all/read_all) come from tests/support/net.h.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace zt::bench {

// `Endpoint` is a parsed socket address ("IP:PORT" or "[IPv6]:PORT").
struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

// parse_endpoint parses "1.2.3.4:80", "[2001:db8::1]:80" or a bare port ("80" = 127.0.0.1:80)
// into `out`. Returns false (and leaves `out` unspecified) on malformed input.
bool parse_endpoint(const std::string& text, Endpoint& out);

// endpoint_string formats `ep` back as "IP:PORT" / "[IP]:PORT".
std::string endpoint_string(const Endpoint& ep);

// connect_tcp opens a blocking TCP connection to `ep` with TCP_NODELAY set. Returns the fd, owned
// by the caller, or -errno.
int connect_tcp(const Endpoint& ep);

// listen_tcp opens a listening socket on `ep` (SO_REUSEADDR, backlog `backlog`). Returns the fd,
// owned by the caller, or -errno.
int listen_tcp(const Endpoint& ep, int backlog);

// now_ns is CLOCK_MONOTONIC in nanoseconds.
uint64_t now_ns();

// percentile returns the p-th percentile (0..100, nearest rank) of `sorted`, which must be sorted
// ascending; 0 when empty.
uint64_t percentile(const std::vector<uint64_t>& sorted, double p);

// raise_nofile raises RLIMIT_NOFILE's soft limit to its hard limit so tools can hold tens of
// thousands of sockets. Returns the new soft limit.
uint64_t raise_nofile();

}  // namespace zt::bench
