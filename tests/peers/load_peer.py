#!/usr/bin/python3
"""load_peer.py: the load driver of the CI load scenario (issue 8 item 3), against an echo server
such as `tcp_peer.py server`.

  Phase 1: --tunnels connections are opened and held until every one is connected (so they are
           truly concurrent), then each sends --bytes, half-closes and reads the echo to the end.
  Phase 2: --short connections of --short-bytes each, --concurrency at a time.
  Phase 3: --aborts connections, --concurrency at a time, each sends --short-bytes, checks the
           first half of the echo and then resets the connection (SO_LINGER 0), so a test can
           check that the proxies release everything an aborted connection held.

Options for the stream loads (L3, L5 of the test plan):
  --random-chunks  each tunnel writes and reads in random sizes (1 byte to 64 KiB, seeded per
                   tunnel), so frame and record boundaries fall everywhere.
  --slow N         N more tunnels run beside the --tunnels ones, each reading its echo at only
                   --slow-rate bytes/s while any fast tunnel is still running. When every fast
                   tunnel has finished, the peer records how much each slow reader still had to
                   read (all > 0 shows the fast ones finished while the slow ones were held back),
                   writes --marker and waits (60 s at most) for MARKER.go, so a test can read the
                   proxies' memory while the slow readers' backlog is pending; then the slow
                   readers read the rest at full speed and are checked like every other tunnel.

Every connection is checked byte for byte as it arrives. Payloads come from one random block,
rotated by a different offset per connection, so bytes delivered to the wrong connection or at
the wrong offset are caught, without holding hundreds of megabytes in memory. Prints one JSON
line (counts, seconds, the first errors); exit 0 only when every connection echoed exactly.
"""

import argparse
import json
import os
import random
import socket
import struct
import sys
import threading
import time

# 64 KiB reads stay under glibc's mmap threshold, so each `recv` reuses heap memory instead of
# faulting in fresh pages (that alone made comparing cost more than moving the bytes).
CHUNK = 65536


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Payload:
    """The bytes connection number `index` sends: the block rotated by a per-connection offset."""

    def __init__(self, block, index, length):
        self.bytes = block
        self.block = memoryview(block)
        self.length = length
        self.rotation = (index * 20011) % len(block)

    def slice(self, offset, count):
        """The expected bytes [offset, offset + count) as a list of views into the block."""
        views = []
        size = len(self.block)
        while count > 0:
            at = (self.rotation + offset) % size
            take = min(count, size - at)
            views.append(self.block[at:at + take])
            offset += take
            count -= take
        return views

    def send_open(self, sock, rng=None):
        at = 0
        while at < self.length:
            count = min(rng.randint(1, CHUNK) if rng else CHUNK, self.length - at)
            for view in self.slice(at, count):
                sock.sendall(view)
            at += count

    def send(self, sock, rng=None):
        self.send_open(sock, rng)
        sock.shutdown(socket.SHUT_WR)

    def matches(self, offset, data):
        size = len(self.bytes)
        at = (self.rotation + offset) % size
        if at + len(data) <= size:
            return data == self.bytes[at:at + len(data)]
        return data == b"".join(bytes(v) for v in self.slice(offset, len(data)))


def echo_once(sock, payload, sender_thread, rng=None, pace=None):
    """Sends the payload (in a thread when asked) and checks the echo; returns an error or None.
    With `rng`, writes and reads are of random sizes; `pace(received)` is called before each read
    (a slow reader sleeps in it)."""
    errors = []
    send_rng = random.Random(rng.random()) if rng else None

    def send():
        try:
            payload.send(sock, send_rng)
        except OSError as err:
            errors.append("send: %s" % err)

    thread = None
    if sender_thread:
        thread = threading.Thread(target=send, daemon=True)
        thread.start()
    else:
        send()
    received = 0
    try:
        while True:
            if pace:
                pace(received)
            data = sock.recv(rng.randint(1, CHUNK) if rng else CHUNK)
            if not data:
                break
            if received + len(data) > payload.length or not payload.matches(received, data):
                return "bytes differ at offset %d" % received
            received += len(data)
    except OSError as err:
        return "recv after %d bytes: %s" % (received, err)
    finally:
        if thread:
            thread.join(5)
    if errors:
        return errors[0]
    if received != payload.length:
        return "received %d of %d bytes" % (received, payload.length)
    return None


def connect(args):
    sock = socket.create_connection(split_hostport(args.connect), timeout=args.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class SlowReaders:
    """The --slow tunnels' pacing: --slow-rate bytes/s while any fast tunnel runs, then (after the
    marker handshake) full speed."""

    def __init__(self, args):
        self.args = args
        self.fast_left = args.tunnels
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.received = {}
        self.pending_at_fast_done = None

    def fast_finished(self):
        with self.lock:
            self.fast_left -= 1
            if self.fast_left > 0:
                return
            self.pending_at_fast_done = {i: self.args.slow_bytes - n for i, n in self.received.items()}
        if self.args.marker:
            with open(self.args.marker, "w") as f:
                f.write(json.dumps({"slow_pending": sorted(self.pending_at_fast_done.values())}))
            deadline = time.monotonic() + 60
            while not os.path.exists(self.args.marker + ".go") and time.monotonic() < deadline:
                time.sleep(0.05)
        self.released.set()

    def pacer(self, index):
        started = time.monotonic()

        def pace(received):
            with self.lock:
                self.received[index] = received
            if self.released.is_set():
                return
            due = started + received / self.args.slow_rate
            delay = due - time.monotonic()
            if delay > 0:
                self.released.wait(delay)

        return pace


def run_tunnels(args, block, errors, slow=None):
    count = args.tunnels + (args.slow if slow else 0)
    barrier = threading.Barrier(count + 1)
    ok = []

    def tunnel(index):
        try:
            run_one(index)
        finally:
            if slow and index < args.tunnels:
                slow.fast_finished()

    def run_one(index):
        try:
            sock = connect(args)
        except OSError as err:
            errors.append("tunnel %d connect: %s" % (index, err))
            barrier.abort()
            return
        try:
            barrier.wait(args.timeout)
        except threading.BrokenBarrierError:
            sock.close()
            return
        rng = random.Random(args.seed * 1000003 + index) if args.random_chunks else None
        is_slow = index >= args.tunnels
        pace = slow.pacer(index) if is_slow else None
        length = args.slow_bytes if is_slow else args.bytes
        error = echo_once(sock, Payload(block, index, length), True, rng, pace)
        sock.close()
        if error:
            errors.append("%s tunnel %d: %s" % ("slow" if is_slow else "fast", index, error))
        else:
            ok.append(index)

    threads = [threading.Thread(target=tunnel, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    try:
        barrier.wait(args.timeout)
    except threading.BrokenBarrierError:
        errors.append("not every tunnel connected")
    started = time.monotonic()
    for t in threads:
        t.join(args.timeout)
    return len(ok), time.monotonic() - started


def run_short(args, block, errors):
    lock = threading.Lock()
    state = {"next": 0, "ok": 0}

    def worker():
        while True:
            with lock:
                index = state["next"]
                if index >= args.short:
                    return
                state["next"] += 1
            error = None
            try:
                sock = connect(args)
                error = echo_once(sock, Payload(block, args.tunnels + index, args.short_bytes), False)
                sock.close()
            except OSError as err:
                error = "connect: %s" % err
            with lock:
                if error:
                    errors.append("short %d: %s" % (index, error))
                else:
                    state["ok"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.timeout * 4)
    return state["ok"], time.monotonic() - started


def run_aborts(args, block, errors):
    lock = threading.Lock()
    state = {"next": 0, "ok": 0}
    half = max(args.short_bytes // 2, 1)

    def abort_one(index):
        sock = connect(args)
        payload = Payload(block, args.tunnels + args.short + index, args.short_bytes)
        try:
            payload.send_open(sock)
            received = 0
            while received < half:
                data = sock.recv(min(CHUNK, half - received))
                if not data:
                    return "closed after %d bytes" % received
                if not payload.matches(received, data):
                    return "bytes differ at offset %d" % received
                received += len(data)
            return None
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    def worker():
        while True:
            with lock:
                index = state["next"]
                if index >= args.aborts:
                    return
                state["next"] += 1
            try:
                error = abort_one(index)
            except OSError as err:
                error = str(err)
            with lock:
                if error:
                    errors.append("abort %d: %s" % (index, error))
                else:
                    state["ok"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.timeout * 4)
    return state["ok"], time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", required=True)
    parser.add_argument("--tunnels", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=4 << 20)
    parser.add_argument("--short", type=int, default=5000)
    parser.add_argument("--short-bytes", type=int, default=1024)
    parser.add_argument("--aborts", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--random-chunks", action="store_true")
    parser.add_argument("--slow", type=int, default=0)
    parser.add_argument("--slow-rate", type=float, default=10240)
    parser.add_argument("--slow-bytes", type=int, default=16 << 20)
    parser.add_argument("--marker")
    args = parser.parse_args()
    block = random.Random(args.seed).randbytes(max(args.bytes, args.short_bytes, 1 << 20,
                                                   args.slow_bytes if args.slow else 0))
    slow = SlowReaders(args) if args.slow > 0 else None
    errors = []
    result = {}
    if args.tunnels > 0:
        ok, secs = run_tunnels(args, block, errors, slow)
        result.update({"tunnels": args.tunnels, "tunnels_ok": ok, "tunnel_bytes": args.bytes,
                       "tunnel_seconds": round(secs, 2)})
        if slow:
            pending = slow.pending_at_fast_done or {}
            result.update({"slow": args.slow, "slow_pending_min": min(pending.values(), default=0),
                           "slow_pending_max": max(pending.values(), default=0)})
    if args.short > 0:
        ok, secs = run_short(args, block, errors)
        result.update({"short": args.short, "short_ok": ok, "short_seconds": round(secs, 2)})
    if args.aborts > 0:
        ok, secs = run_aborts(args, block, errors)
        result.update({"aborts": args.aborts, "aborts_ok": ok, "abort_seconds": round(secs, 2)})
    result["errors"] = len(errors)
    result["first_errors"] = errors[:5]
    print(json.dumps(result), flush=True)
    all_ok = (not errors and result.get("tunnels_ok", 0) == max(args.tunnels, 0) + (args.slow if slow else 0)
              and result.get("short_ok", 0) == max(args.short, 0)
              and result.get("aborts_ok", 0) == max(args.aborts, 0))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
