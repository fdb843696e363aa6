#!/usr/bin/python3
# paced_conns.py IP:PORT RATE SECONDS: build/tools/connrate's load (connect, write 1 byte, read the
# 1-byte echo, close; one connection at a time) started at a fixed RATE per second instead of as
# fast as possible, so that a fast path can be measured at a slow path's rate (hbone.py's
# `waypoint` part: CPU per connection on a ztunnel depends on how many completions each wakeup
# batches, i.e. on the rate). Prints connrate's line, "paced: conns=N rate=N/s errors=N
# p50_us=N p99_us=N"; exits 1 only when no connection succeeded.
import socket
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    rate, seconds = float(sys.argv[2]), float(sys.argv[3])
    samples, errors = [], 0
    start = time.monotonic()
    n = 0
    while True:
        due = start + n / rate
        if due - start >= seconds:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        n += 1
        t0 = time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    raise OSError("short or wrong echo")
            samples.append((time.monotonic() - t0) * 1e6)
        except OSError:
            errors += 1
    elapsed = time.monotonic() - start
    samples.sort()

    def pct(q):
        return samples[min(len(samples) - 1, int(q * len(samples)))] if samples else 0
    print(f"paced: conns={len(samples)} rate={len(samples) / elapsed:.1f}/s errors={errors} "
          f"p50_us={pct(0.50):.0f} p99_us={pct(0.99):.0f}")
    return 0 if samples else 1


if __name__ == "__main__":
    sys.exit(main())
