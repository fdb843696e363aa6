#!/usr/bin/python3
"""handshake_flood.py: a hostile pod's ClientHello flood against a ztunnel's 15008.

Opens --clients TCP connections to --connect (non-blocking, --concurrency at a time at most),
sends on each a real TLS 1.3 ClientHello (made once by Python's ssl module over memory BIOs,
then sent on every socket) and never anything more, holds them all for --hold seconds, then
closes them. Prints one JSON line: how many connected, how many the server closed (or reset)
before the hold ended ("closed_early": refused at a cap), and how many were still open.
"""

import argparse
import json
import select
import socket
import ssl
import sys
import time


def client_hello():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="flood")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True, help="ip:port")
    parser.add_argument("--clients", type=int, default=4000)
    parser.add_argument("--hold", type=float, default=2.0)
    args = parser.parse_args()
    host, port = args.connect.rsplit(":", 1)
    hello = client_hello()
    sockets = []
    failed = 0
    for _ in range(args.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
            s.sendall(hello)
            s.setblocking(False)
            sockets.append(s)
        except OSError:
            failed += 1
            s.close()
    # Hold: a socket the server closed reads EOF (or a reset); an alert is data then EOF.
    closed = set()
    deadline = time.monotonic() + args.hold
    poller = select.poll()
    by_fd = {s.fileno(): s for s in sockets}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                closed.add(fd)
                poller.unregister(fd)
    for s in sockets:
        s.close()
    print(json.dumps({"connected": len(sockets), "connect_failed": failed,
                      "closed_early": len(closed), "held": len(sockets) - len(closed)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
