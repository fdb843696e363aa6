#!/usr/bin/python3
"""conn_hold.py: many held connections through the mesh, for the fd-exhaustion scenarios.

Opens --count TCP connections to --connect one after another (each sends 8 bytes and waits up
to --wait seconds for their echo), holds every connection whose echo came back for --hold
seconds, then closes them all. Prints one JSON line when the opening is
done ({"phase": "open", "echoed", "failed"}) and one at the end ({"phase": "end", "still_open"}:
the echoed connections that still echo after the hold). Exit 0.
"""

import argparse
import json
import socket
import sys
import time


def echo(s, payload, wait):
    s.settimeout(wait)
    try:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(len(payload) - len(got))
            if not chunk:
                return False
            got += chunk
        return got == payload
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True, help="ip:port")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--wait", type=float, default=3.0)
    args = parser.parse_args()
    host, port = args.connect.rsplit(":", 1)
    held, failed = [], 0
    for i in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(args.wait)
        try:
            s.connect((host, int(port)))
        except OSError:
            failed += 1
            s.close()
            continue
        if echo(s, b"%08d" % i, args.wait):
            held.append(s)
        else:
            failed += 1
            s.close()
    print(json.dumps({"phase": "open", "echoed": len(held), "failed": failed}), flush=True)
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(0.1)
    still = sum(1 for i, s in enumerate(held) if echo(s, b"%08d" % i, args.wait))
    for s in held:
        s.close()
    print(json.dumps({"phase": "end", "still_open": still}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
