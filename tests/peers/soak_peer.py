#!/usr/bin/python3
"""soak_peer.py: both ends of the soak (`make soak`, L7 of the test plan).

`soak_peer.py serve --listen IP:PORT` is the echo server: one thread, non-blocking sockets and a
selector, so thousands of idle connections cost it no thread each; every byte read is echoed and a
client's FIN is answered with FIN once its bytes are written back.

`soak_peer.py --connect IP:PORT ...` is the client:

  Idle:  --idle connections are opened first, each proven with a one-byte echo, then held idle.
         Every --check-every seconds, and once more at the end, each one echoes one byte again:
         a connection that no longer echoes (reset, closed, silent for 5 s) is counted lost.
  Churn: for --seconds, --rate new connections a second (started on a fixed schedule by a pool
         of worker threads), each sending a seeded random payload of 1 byte to --max-bytes,
         half-closing and reading the echo to the end; the echo is compared byte for byte.

Every --stats-every seconds one JSON line of running totals is appended to --stats (so a sampler
can put them beside the process figures), and at the end one JSON summary line is printed. Exit 0
only when no idle connection was lost and every churn connection echoed exactly.
"""

import argparse
import json
import os
import queue
import random
import selectors
import socket
import sys
import threading
import time


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Totals:
    """Counters shared by the threads, and the first few error texts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"started": 0, "ok": 0, "mismatch": 0, "error": 0, "late": 0,
                       "bytes": 0, "idle_open": 0, "idle_lost": 0, "idle_checks": 0}
        self.errors = []

    def add(self, key, n=1, error=None):
        with self.lock:
            self.counts[key] += n
            if error is not None and len(self.errors) < 20:
                self.errors.append(error)

    def snapshot(self):
        with self.lock:
            return dict(self.counts), list(self.errors)


def connect(target, timeout):
    host, port = target
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.connect((host, port))
    return sock


def echo_one_byte(sock, value):
    sock.sendall(bytes([value]))
    got = sock.recv(1)
    if got != bytes([value]):
        raise OSError("echo returned %r, want %r" % (got, bytes([value])))


def churn_one(target, payload, totals):
    """One short connection: send everything, half-close, read the echo to EOF, compare."""
    try:
        sock = connect(target, 10)
    except OSError as err:
        totals.add("error", error="connect: %s" % err)
        return
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        if bytes(received) == payload:
            totals.add("ok")
            totals.add("bytes", len(payload))
        else:
            totals.add("mismatch", error="mismatch: sent %d bytes, got %d back" %
                       (len(payload), len(received)))
    except OSError as err:
        totals.add("error", error="transfer: %s" % err)
    finally:
        sock.close()


def check_idle(idle, totals, round_no):
    """Every idle connection echoes one byte; those that do not are closed and counted lost."""
    alive = []
    for sock in idle:
        try:
            echo_one_byte(sock, round_no % 256)
            alive.append(sock)
        except OSError as err:
            totals.add("idle_lost", error="idle check %d: %s" % (round_no, err))
            sock.close()
    totals.add("idle_checks")
    return alive


def serve(listen):
    host, port = split_hostport(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    pending = {}  # socket -> [bytes still to echo, peer sent FIN]

    def update(sock):
        state = pending[sock]
        if state[1] and not state[0]:
            sel.unregister(sock)
            del pending[sock]
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sock.close()
            return
        # Read again only once everything read is echoed: the client's own flow control.
        sel.modify(sock, selectors.EVENT_WRITE if state[0] else selectors.EVENT_READ, True)

    def drop(sock):
        sel.unregister(sock)
        del pending[sock]
        sock.close()

    while True:
        for key, events in sel.select():
            if key.data is None:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    conn.setblocking(False)
                    pending[conn] = [b"", False]
                    sel.register(conn, selectors.EVENT_READ, True)
                continue
            sock = key.fileobj
            state = pending[sock]
            try:
                if events & selectors.EVENT_READ and not state[0]:
                    data = sock.recv(65536)
                    if data:
                        state[0] = data
                    else:
                        state[1] = True
                if events & selectors.EVENT_WRITE and state[0]:
                    sent = sock.send(state[0])
                    state[0] = state[0][sent:]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(sock)
                continue
            update(sock)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve" and sys.argv[2] == "--listen":
        serve(sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--max-bytes", type=int, default=16384)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--check-every", type=float, default=60)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--stats-every", type=float, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    target = split_hostport(args.connect)
    totals = Totals()
    rng = random.Random(args.seed)

    idle = []
    for i in range(args.idle):
        try:
            sock = connect(target, 5)
            echo_one_byte(sock, i % 256)
            idle.append(sock)
        except OSError as err:
            totals.add("idle_lost", error="idle open %d: %s" % (i, err))
    totals.add("idle_open", len(idle))
    print(json.dumps({"idle_ready": len(idle)}), flush=True)

    work = queue.Queue(maxsize=max(1, int(args.rate * 2)))

    def worker():
        while True:
            payload = work.get()
            if payload is None:
                return
            churn_one(target, payload, totals)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()

    stats = open(args.stats, "a")
    start = time.monotonic()
    deadline = start + args.seconds
    next_start = start
    next_stats = start + args.stats_every
    next_check = start + args.check_every
    check_round = 1
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_check:
            idle = check_idle(idle, totals, check_round)
            check_round += 1
            next_check += args.check_every
        if now >= next_stats:
            counts, _ = totals.snapshot()
            counts["t"] = round(now - start, 1)
            stats.write(json.dumps(counts) + "\n")
            stats.flush()
            next_stats += args.stats_every
        if now >= next_start:
            payload = rng.randbytes(rng.randint(1, args.max_bytes))
            try:
                work.put_nowait(payload)
                totals.add("started")
            except queue.Full:
                # Every worker is busy and the backlog is full: the proxy (or this machine) is not
                # keeping up. Counted, not queued without bound.
                totals.add("late")
            next_start += 1.0 / args.rate
            continue
        time.sleep(min(next_start, next_stats, next_check, deadline) - now)
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(30)
    idle = check_idle(idle, totals, check_round)
    counts, errors = totals.snapshot()
    counts["t"] = round(time.monotonic() - start, 1)
    stats.write(json.dumps(counts) + "\n")
    stats.close()
    for sock in idle:
        sock.close()
    counts["errors"] = errors
    print(json.dumps(counts), flush=True)
    ok = (counts["mismatch"] == 0 and counts["error"] == 0 and counts["idle_lost"] == 0 and
          counts["ok"] == counts["started"])
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
