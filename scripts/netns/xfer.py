#!/usr/bin/python3
# xfer.py: a bulk, both-ways TCP transfer with SHA-256 on each side, for the relay e2e tests.
# Each side sends SIZE random bytes, then shuts down its write side (so half-close must cross the
# relay), while it reads until end of stream. It prints one line
#   "xfer ROLE sent=N sent_sha256=H recv=N recv_sha256=H"
# and the test compares one side's sent hash with the other side's received hash.
#
#   xfer.py serve IP PORT SIZE     accept one connection, transfer, exit
#   xfer.py connect IP PORT SIZE   connect, transfer, exit
# Every socket operation times out after 30 s; any error exits 1.
import hashlib
import ipaddress
import os
import socket
import sys
import threading

CHUNK = 256 * 1024


def transfer(conn, size, role):
    sent_hash = hashlib.sha256()
    recv_hash = hashlib.sha256()
    counts = {"sent": 0, "recv": 0}
    errors = []

    def sender():
        try:
            left = size
            while left > 0:
                block = os.urandom(min(CHUNK, left))
                conn.sendall(block)
                sent_hash.update(block)
                left -= len(block)
                counts["sent"] += len(block)
            conn.shutdown(socket.SHUT_WR)
        except OSError as err:
            errors.append(f"send: {err}")

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        while True:
            block = conn.recv(CHUNK)
            if not block:
                break
            recv_hash.update(block)
            counts["recv"] += len(block)
    except OSError as err:
        errors.append(f"recv: {err}")
    thread.join()
    conn.close()
    print(f"xfer {role} sent={counts['sent']} sent_sha256={sent_hash.hexdigest()} "
          f"recv={counts['recv']} recv_sha256={recv_hash.hexdigest()}", flush=True)
    for err in errors:
        print(f"xfer {role}: {err}", file=sys.stderr)
    return 1 if errors else 0


def main(argv):
    if len(argv) != 4 or argv[0] not in ("serve", "connect"):
        print("usage: xfer.py serve|connect IP PORT SIZE", file=sys.stderr)
        return 2
    mode, ip, port, size = argv[0], argv[1], int(argv[2]), int(argv[3])
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    try:
        if mode == "serve":
            lsock = socket.socket(family, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((ip, port))
            lsock.listen(1)
            lsock.settimeout(30)
            conn, _ = lsock.accept()
            lsock.close()
        else:
            conn = socket.create_connection((ip, port), timeout=30)
        conn.settimeout(30)
        return transfer(conn, size, mode)
    except OSError as err:
        print(f"xfer {mode}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
