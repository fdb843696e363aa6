#!/usr/bin/python3
"""load_peer.py: the load driver of the CI load scenario (issue 8 item 3), against an echo server
such as `tcp_peer.py server`.

  Phase 1: --tunnels connections are opened and held until every one is connected (so they are
           truly concurrent), then each sends --bytes, half-closes and reads the echo to the end.
  Phase 2: --short connections of --short-bytes each, --concurrency at a time.
  Phase 3: --aborts connections, --concurrency at a time, each sends --short-bytes, checks the
           first half of the echo and then resets the connection (SO_LINGER 0), so a test can
           check that the proxies release everything an aborted connection held.

Every connection is checked byte for byte as it arrives. Payloads come from one random block,
rotated by a different offset per connection, so bytes delivered to the wrong connection or at
the wrong offset are caught, without holding hundreds of megabytes in memory. Prints one JSON
line (counts, seconds, the first errors); exit 0 only when every connection echoed exactly.
"""

import argparse
import json
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

    def send_open(self, sock):
        for at in range(0, self.length, CHUNK):
            for view in self.slice(at, min(CHUNK, self.length - at)):
                sock.sendall(view)

    def send(self, sock):
        self.send_open(sock)
        sock.shutdown(socket.SHUT_WR)

    def matches(self, offset, data):
        size = len(self.bytes)
        at = (self.rotation + offset) % size
        if at + len(data) <= size:
            return data == self.bytes[at:at + len(data)]
        return data == b"".join(bytes(v) for v in self.slice(offset, len(data)))


def echo_once(sock, payload, sender_thread):
    """Sends the payload (in a thread when asked) and checks the echo; returns an error or None."""
    errors = []

    def send():
        try:
            payload.send(sock)
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
            data = sock.recv(CHUNK)
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


def run_tunnels(args, block, errors):
    barrier = threading.Barrier(args.tunnels + 1)
    ok = []

    def tunnel(index):
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
        error = echo_once(sock, Payload(block, index, args.bytes), True)
        sock.close()
        if error:
            errors.append("tunnel %d: %s" % (index, error))
        else:
            ok.append(index)

    threads = [threading.Thread(target=tunnel, args=(i,), daemon=True) for i in range(args.tunnels)]
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
    args = parser.parse_args()
    block = random.Random(args.seed).randbytes(max(args.bytes, args.short_bytes, 1 << 20))
    errors = []
    result = {}
    if args.tunnels > 0:
        ok, secs = run_tunnels(args, block, errors)
        result.update({"tunnels": args.tunnels, "tunnels_ok": ok, "tunnel_bytes": args.bytes,
                       "tunnel_seconds": round(secs, 2)})
    if args.short > 0:
        ok, secs = run_short(args, block, errors)
        result.update({"short": args.short, "short_ok": ok, "short_seconds": round(secs, 2)})
    if args.aborts > 0:
        ok, secs = run_aborts(args, block, errors)
        result.update({"aborts": args.aborts, "aborts_ok": ok, "abort_seconds": round(secs, 2)})
    result["errors"] = len(errors)
    result["first_errors"] = errors[:5]
    print(json.dumps(result), flush=True)
    all_ok = (not errors and result.get("tunnels_ok", 0) == max(args.tunnels, 0)
              and result.get("short_ok", 0) == max(args.short, 0)
              and result.get("aborts_ok", 0) == max(args.aborts, 0))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
