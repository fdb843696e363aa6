#!/usr/bin/python3
"""proxy_v2_peer.py: an application behind an application tunnel that speaks PROXY protocol v2.

It listens on --listen; on each connection it reads and parses a PROXY protocol v2 header
(HAProxy's proxy-protocol.txt, section 2.2) strictly: the 12-byte signature, version 2, command
PROXY, family INET or INET6 over STREAM, the addresses, and the TLVs. It logs one JSON line per
connection to --log (the TCP peer, the header's source and destination, every TLV, and the
identity in TLV 0xD0), then echoes the rest of the stream, so the client's byte-exact check also
proves the header was followed by exactly the client's bytes. A connection without a valid
header is logged with the problem and closed. Written from the specification, sharing no code
with the project.
"""

import argparse
import ipaddress
import json
import socket
import struct
import sys
import threading

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def parse_header(conn):
    fixed = read_exact(conn, 16)
    if fixed[:12] != SIGNATURE:
        raise ValueError("bad signature %r" % fixed[:12])
    version, command = fixed[12] >> 4, fixed[12] & 0xF
    if version != 2 or command != 1:
        raise ValueError("version %d command %d" % (version, command))
    family, transport = fixed[13] >> 4, fixed[13] & 0xF
    length = struct.unpack("!H", fixed[14:16])[0]
    body = read_exact(conn, length)
    if transport != 1:
        raise ValueError("transport %d, want STREAM" % transport)
    if family == 1:
        if length < 12:
            raise ValueError("short INET block")
        src = ipaddress.IPv4Address(body[0:4])
        dst = ipaddress.IPv4Address(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
        rest = body[12:]
    elif family == 2:
        if length < 36:
            raise ValueError("short INET6 block")
        src = ipaddress.IPv6Address(body[0:16])
        dst = ipaddress.IPv6Address(body[16:32])
        sport, dport = struct.unpack("!HH", body[32:36])
        rest = body[36:]
    else:
        raise ValueError("family %d" % family)
    tlvs = []
    while rest:
        if len(rest) < 3:
            raise ValueError("truncated TLV")
        kind = rest[0]
        size = struct.unpack("!H", rest[1:3])[0]
        if len(rest) < 3 + size:
            raise ValueError("TLV 0x%02x overruns the header" % kind)
        tlvs.append((kind, rest[3:3 + size]))
        rest = rest[3 + size:]
    return {"source": "%s:%d" % (src, sport), "destination": "%s:%d" % (dst, dport),
            "tlvs": ["0x%02x" % kind for kind, _ in tlvs],
            "identity": next((value.decode("utf-8", "replace") for kind, value in tlvs
                              if kind == 0xD0), None)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    lock = threading.Lock()

    def log(record):
        with lock:
            with open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")

    def handle(conn, peer):
        try:
            conn.settimeout(30)
            try:
                record = parse_header(conn)
            except (ValueError, EOFError) as err:
                log({"peer": peer[0], "error": str(err)})
                return
            record["peer"] = peer[0]
            log(record)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)
    print("proxy_v2_peer: listening on %s" % args.listen, flush=True)
    while True:
        conn, peer = listener.accept()
        threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
