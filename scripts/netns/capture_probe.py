#!/usr/bin/python3
# capture_probe.py: a tiny TCP probe for the traffic-capture tests (scripts/e2e/redirect_inpod.sh).
# It only talks to the addresses it is given, which the tests keep inside their own namespaces.
#
#   capture_probe.py listen NAME PORT
#       Listens on 0.0.0.0:PORT and [::]:PORT. Answers every connection with one line
#       "NAME orig=ADDR peer=ADDR" (orig from SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST, "-" when the
#       connection has no NAT record) and closes it. Runs until killed.
#   capture_probe.py connect IP PORT [--mark M] [--spoof SRC]
#       Connects (with SO_MARK M; with --spoof, IP_TRANSPARENT and a bind to SRC, as ztunnel does
#       for original-source inbound connections), prints the line the listener sent, exits 0;
#       exits 1 on any error or after 3 s.
import ipaddress
import select
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # SOL_IP and SOL_IPV6 (IP6T_SO_ORIGINAL_DST) share the number
SO_MARK = 36
IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75
SOL_IPV6 = 41  # SOL_IPV6 is missing from some Python builds


def fmt(family, host, port):
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


def original_dst(conn):
    try:
        if conn.family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, addr = struct.unpack("!2xH4s8x", raw)
            return fmt(socket.AF_INET, socket.inet_ntop(socket.AF_INET, addr), port)
        raw = conn.getsockopt(SOL_IPV6, SO_ORIGINAL_DST, 28)
        port, addr = struct.unpack("!2xH4x16s4x", raw)
        return fmt(socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, addr), port)
    except OSError:
        return "-"


def listen(name, port):
    socks = []
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(64)
        socks.append(s)
    print(f"{name}: listening on {port}", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            conn, peer = s.accept()
            line = f"{name} orig={original_dst(conn)} peer={fmt(conn.family, peer[0], peer[1])}"
            print(line, flush=True)
            try:
                conn.sendall(line.encode() + b"\n")
            except OSError:
                pass
            conn.close()


def connect(ip, port, mark, spoof):
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    if mark is not None:
        s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if spoof is not None:
        if family == socket.AF_INET:
            s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        else:
            s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
        s.bind((spoof, 0))
    s.connect((ip, port))
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip())
    return 0 if data else 1


def main(argv):
    if len(argv) >= 3 and argv[0] == "listen":
        listen(argv[1], int(argv[2]))
        return 0
    if len(argv) >= 3 and argv[0] == "connect":
        mark = spoof = None
        rest = argv[3:]
        while rest:
            if rest[0] == "--mark" and len(rest) > 1:
                mark = int(rest[1], 0)
            elif rest[0] == "--spoof" and len(rest) > 1:
                spoof = rest[1]
            else:
                print(f"unknown option {rest[0]}", file=sys.stderr)
                return 2
            rest = rest[2:]
        try:
            return connect(argv[1], int(argv[2]), mark, spoof)
        except OSError as err:
            print(f"connect failed: {err}", file=sys.stderr)
            return 1
    print(__doc__ if __doc__ else "usage: see the header comment", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
