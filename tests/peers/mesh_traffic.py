#!/usr/bin/python3
"""mesh_traffic.py: traffic from one pod while the control plane around its ztunnel restarts
(scripts/e2e/agent_mesh.sh), against an echo server such as `tcp_peer.py server`.

Two kinds of connection run side by side for --seconds, or until --stop-file exists:

  long   --long connections opened first, each sending 16 KiB pieces at --long-rate bytes/s
         while its echo is read back, then half-closing; the echo is compared byte for byte
         (length and digest) with what was sent. They must outlive whatever restarts meanwhile.
  short  --rate new connections a second, started on a fixed schedule by a pool of threads,
         each sending 1 byte to --max-bytes of seeded random data, half-closing and reading the
         echo to the end, compared byte for byte.

Every connection's outcome is appended to --events as one JSON line {"kind", "index", "start",
"end", "ok", "error"} (wall-clock seconds, the same clock as `date +%s.%N`), so a scenario can
ask which connections started after a given instant and whether they all succeeded.
--ready-file is created once every long connection has had its first echo back. At the end one
JSON summary line is printed: per kind started, ok, failed, and the first errors. Exit 0 only
when every connection succeeded.
"""

import argparse
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time

from soak_peer import connect  # the same TCP_NODELAY connect with a timeout

PIECE = 16384


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Recorder:
    """The events file and the totals, shared by every thread."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a") if path else None
        self.totals = {"long": {"started": 0, "ok": 0, "failed": 0},
                       "short": {"started": 0, "ok": 0, "failed": 0}}
        self.errors = []

    def started(self, kind):
        with self.lock:
            self.totals[kind]["started"] += 1

    def done(self, kind, index, start, error):
        record = {"kind": kind, "index": index, "start": start, "end": time.time(),
                  "ok": error is None, "error": error}
        with self.lock:
            self.totals[kind]["ok" if error is None else "failed"] += 1
            if error is not None and len(self.errors) < 10:
                self.errors.append("%s %d: %s" % (kind, index, error))
            if self.file:
                self.file.write(json.dumps(record) + "\n")
                self.file.flush()


def short_one(target, index, seed, max_bytes, recorder):
    rng = random.Random(seed * 1000003 + index)
    payload = rng.randbytes(rng.randint(1, max_bytes))
    start = time.time()
    recorder.started("short")
    error = None
    sock = None
    try:
        sock = connect(target, 5)
        sock.settimeout(15)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        if bytes(received) != payload:
            error = "echo differs: sent %d bytes, got %d" % (len(payload), len(received))
    except OSError as err:
        error = "%s: %s" % (type(err).__name__, err)
    finally:
        if sock is not None:
            sock.close()
    recorder.done("short", index, start, error)


class Long:
    """One long paced transfer: a sender thread and a reader thread on one connection. The
    sender writes 16 KiB pieces of a seeded random block (rotated per connection) at --long-rate
    until the run ends, keeping a digest of everything sent; the reader's digest of the echo
    must equal it."""

    def __init__(self, target, index, args, recorder, first_echo, stopped):
        self.target = target
        self.index = index
        self.args = args
        self.recorder = recorder
        self.first_echo = first_echo
        self.stopped = stopped
        block = random.Random(args.seed * 7919 + index).randbytes(1 << 20)
        self.block = block + block[:PIECE]
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        start = time.time()
        self.recorder.started("long")
        error = None
        try:
            sock = connect(self.target, 5)
        except OSError as err:
            self.first_echo.release()
            self.recorder.done("long", self.index, start, "connect: %s" % err)
            return
        sock.settimeout(20)
        send_error = []
        sent = {"bytes": 0, "digest": hashlib.sha256()}
        interval = PIECE / float(self.args.long_rate)

        def sender():
            offset = (self.index * 104729) % (1 << 20)
            try:
                while not self.stopped.is_set():
                    piece = self.block[offset:offset + PIECE]
                    sock.sendall(piece)
                    sent["digest"].update(piece)
                    sent["bytes"] += len(piece)
                    offset = (offset + PIECE) % (1 << 20)
                    self.stopped.wait(interval)
                sock.shutdown(socket.SHUT_WR)
            except OSError as err:
                send_error.append("send after %d bytes: %s" % (sent["bytes"], err))

        writer = threading.Thread(target=sender, daemon=True)
        writer.start()
        digest = hashlib.sha256()
        count = 0
        signalled = False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                if not signalled:
                    self.first_echo.release()
                    signalled = True
                digest.update(chunk)
                count += len(chunk)
        except OSError as err:
            error = "recv after %d bytes: %s" % (count, err)
        if not signalled:
            self.first_echo.release()
        writer.join(20)
        sock.close()
        if error is None and send_error:
            error = send_error[0]
        if error is None and (count != sent["bytes"] or
                              digest.digest() != sent["digest"].digest()):
            error = "echo differs: sent %d bytes, got %d" % (sent["bytes"], count)
        self.recorder.done("long", self.index, start, error)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connect", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--max-bytes", type=int, default=16384)
    ap.add_argument("--long", type=int, default=0)
    ap.add_argument("--long-rate", type=int, default=256 << 10, help="bytes/s of each long")
    ap.add_argument("--events")
    ap.add_argument("--ready-file")
    ap.add_argument("--stop-file")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    target = split_hostport(args.connect)
    recorder = Recorder(args.events)

    first_echo = threading.Semaphore(0)
    stopped = threading.Event()
    longs = [Long(target, i, args, recorder, first_echo, stopped) for i in range(args.long)]
    for transfer in longs:
        transfer.thread.start()
    for _ in longs:
        first_echo.acquire(timeout=10)
    if args.ready_file:
        open(args.ready_file, "w").close()

    shorts = []
    begin = time.monotonic()
    index = 0
    while time.monotonic() - begin < args.seconds:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        if args.rate <= 0:
            time.sleep(max(0.0, min(0.1, args.seconds - (time.monotonic() - begin))))
            continue
        wait = begin + index / args.rate - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 0.1))
            continue
        thread = threading.Thread(target=short_one,
                                  args=(target, index, args.seed, args.max_bytes, recorder),
                                  daemon=True)
        thread.start()
        shorts.append(thread)
        shorts = [t for t in shorts if t.is_alive()]
        index += 1
    stopped.set()
    for thread in shorts:
        thread.join(25)
    for transfer in longs:
        transfer.thread.join(30)
    with recorder.lock:
        summary = {"long": recorder.totals["long"], "short": recorder.totals["short"],
                   "errors": recorder.errors}
    print(json.dumps(summary), flush=True)
    failed = summary["long"]["failed"] + summary["short"]["failed"]
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
