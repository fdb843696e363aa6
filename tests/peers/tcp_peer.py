#!/usr/bin/python3
"""tcp_peer.py: the plain TCP ends of the end-to-end scenarios (the "applications" in pods).

  server  echoes every byte back and answers a client's FIN with its own once everything is
          echoed; each accepted connection is logged as one JSON line (the peer address the
          application sees) to --log, so a test can check that ztunnel kept the client's IP.
  client  sends --bytes N seeded random bytes, half-closes, reads the echo to the end and prints
          one JSON line with both SHA-256 digests. Exit 0 only when every byte came back intact.
  hold    keeps one connection open, exchanging a small message every --interval seconds, until
          the connection is closed or reset by someone else or --seconds pass; prints how it
          ended. Exit 0 when it ended by the remote side (what a "policy change closes the
          connection" test expects), 3 when it was still open at the end.
  probe   for each --target ip:port, connects (1 s), sends ztunnel's malicious-call bytes
          "hello world\r\n\r\n", reads until the peer ends it (--wait seconds) and prints one
          JSON line {"target", "outcome"}: "refused" (no connection), "closed" (connected, nothing
          came back before EOF or reset), "tls_alert" (only a TLS alert record came back, then the
          end), "http400" (an HTTP/1.1 400 answer), "open" (still open and silent after --wait),
          or "data" (anything else came back; "got" has the bytes).
"""

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def serve(args):
    host, port = split_hostport(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind((host, port))
    listener.listen(512)
    print("tcp_peer: listening on %s" % args.listen, flush=True)
    lock = threading.Lock()

    def handle(conn, peer):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"peer": peer[0], "port": peer[1]}) + "\n")
        try:
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    while True:
        conn, peer = listener.accept()
        threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


def client(args):
    host, port = split_hostport(args.connect)
    payload = random.Random(args.seed).randbytes(args.bytes)
    try:
        sock = socket.create_connection((host, port), timeout=args.timeout)
    except OSError as err:
        print(json.dumps({"error": "connect", "detail": str(err)}))
        return 4
    received = hashlib.sha256()
    count = 0
    error = None

    def sender():
        try:
            if args.pace_ms > 0:
                # Paced: 64 KiB every pace_ms, so a transfer can be "in flight" for a while.
                for at in range(0, len(payload), 65536):
                    sock.sendall(payload[at:at + 65536])
                    time.sleep(args.pace_ms / 1000.0)
            else:
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        while True:
            data = sock.recv(262144)
            if not data:
                break
            received.update(data)
            count += len(data)
    except OSError as err:
        error = str(err)
    thread.join(args.timeout)
    sock.close()
    result = {"sent": len(payload), "received": count,
              "sha256_sent": hashlib.sha256(payload).hexdigest(),
              "sha256_received": received.hexdigest()}
    if error:
        result["error"] = error
    print(json.dumps(result))
    ok = error is None and result["sha256_sent"] == result["sha256_received"]
    return 0 if ok else 5


def hold(args):
    host, port = split_hostport(args.connect)
    try:
        sock = socket.create_connection((host, port), timeout=args.timeout)
    except OSError as err:
        print(json.dumps({"ended": "connect-failed", "detail": str(err)}))
        return 4
    sock.settimeout(args.timeout)
    deadline = time.monotonic() + args.seconds
    exchanges = 0
    ended = None
    if args.ready_file:
        open(args.ready_file, "w").close()
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"ping\n")
            data = sock.recv(64)
            if not data:
                ended = "closed"
                break
            exchanges += 1
        except (ConnectionResetError, BrokenPipeError):
            ended = "reset"
            break
        except OSError as err:
            ended = "error: %s" % err
            break
        time.sleep(args.interval)
    sock.close()
    print(json.dumps({"ended": ended or "still-open", "exchanges": exchanges}))
    return 0 if ended in ("closed", "reset") else 3


PROBE_BYTES = b"hello world\r\n\r\n"


def probe_one(target, wait):
    host, port = split_hostport(target)
    try:
        sock = socket.create_connection((host, port), timeout=1.0)
    except OSError as err:
        return {"outcome": "refused", "detail": str(err)}
    got = b""
    ended = None
    deadline = time.monotonic() + wait
    try:
        sock.sendall(PROBE_BYTES)
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                break
            if not data:
                ended = "eof"
                break
            got += data
    except OSError as err:
        ended = "reset: %s" % err
    finally:
        sock.close()
    # A TLS alert record: type 21, version 3.x, length 2 (level, description).
    if ended and len(got) == 7 and got[0] == 21 and got[1] == 3 and got[3:5] == b"\x00\x02":
        return {"outcome": "tls_alert", "alert": got[6]}
    if got.startswith(b"HTTP/1.1 400"):
        return {"outcome": "http400"}
    if got:
        return {"outcome": "data", "got": got[:200].decode("latin-1")}
    return {"outcome": "closed" if ended else "open", "ended": ended}


def probe(args):
    for target in args.target:
        result = probe_one(target, args.wait)
        result["target"] = target
        print(json.dumps(result), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", required=True)
    s.add_argument("--log")
    c = sub.add_parser("client")
    c.add_argument("--connect", required=True)
    c.add_argument("--bytes", type=int, default=1 << 20)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--timeout", type=float, default=30.0)
    c.add_argument("--pace-ms", type=float, default=0.0)
    h = sub.add_parser("hold")
    h.add_argument("--connect", required=True)
    h.add_argument("--seconds", type=float, default=10.0)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--timeout", type=float, default=5.0)
    h.add_argument("--ready-file")
    p = sub.add_parser("probe")
    p.add_argument("--target", action="append", required=True)
    p.add_argument("--wait", type=float, default=3.0)
    args = parser.parse_args()
    if args.mode == "server":
        serve(args)
    elif args.mode == "client":
        sys.exit(client(args))
    elif args.mode == "probe":
        sys.exit(probe(args))
    else:
        sys.exit(hold(args))


if __name__ == "__main__":
    main()
