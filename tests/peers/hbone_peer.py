#!/usr/bin/python3
"""hbone_peer.py: an independent HBONE client and server for interop tests.

It shares no code with the project: Python's ssl module (OpenSSL) for mutual TLS 1.3 and Debian's
python3-h2 for HTTP/2 CONNECT. Run it with Debian's /usr/bin/python3 (python3-h2 is a Debian
package).

  client  connects to an HBONE server (a pod's :15008), checks the server's SPIFFE identity, sends a
          CONNECT for --authority, and then moves bytes: it sends --send-file or --random-bytes N,
          half-closes, and reads the answer to the end. Prints one JSON line with the outcome
          (status, bytes and SHA-256 each way, the server certificate's serial) on stdout. Exit
          codes: 0 = 200 and a clean end, 3 = a non-200 answer, 4 = TLS handshake refused,
          5 = protocol or transfer error.
  misbehave  connects like `client`, then misbehaves at the HTTP/2 level as an attacking peer
          would (a second SETTINGS, PRIORITY frames, and a GET instead of a CONNECT, which the
          server answers 400 itself), and prints the status it got. For the protection counters.
  attack  an attacking peer for load L6, for --seconds, reconnecting whenever the server ends a
          connection: `--kind reset` is Rapid Reset (B11: HEADERS CONNECT then RST_STREAM CANCEL,
          in batches, as fast as it can), `--kind ping` a PING flood that never reads (B13);
          it stops at --seconds, on SIGINT/SIGTERM, or once --stop-file exists.
          Prints one JSON line: connections made, frames sent, GOAWAYs received (by error code)
          and how the connections ended. Always exit 0 (the test judges the server).
  server  stands in for a remote node's ztunnel: TLS 1.3 only, ALPN h2, a client certificate that
          verifies to --ca, then checks each CONNECT (client SPIFFE ID, :authority, the shape of
          baggage/forwarded/traceparent) and echoes the stream's bytes back. Every stream is logged
          as one JSON line to --log (with the client certificate's SPIFFE IDs and serial), so
          tests can assert on what our client sent. Misbehaving on purpose, for our client's
          fault handling: --refuse rst answers each CONNECT with RST_STREAM(REFUSED_STREAM) before
          any status, --refuse goaway with a GOAWAY(NO_ERROR) whose last stream is below it (the
          request is left unprocessed); --goaway-after-bytes N sends a graceful GOAWAY (last
          stream = the highest so far) once a connection received N bytes, and goes on serving
          the streams it has. Records carry "conn", the connection's number.
"""

import argparse
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
FORWARDED_RE = re.compile(r'^for="?(\[[0-9a-fA-F:.]+\]|[0-9.]+)(:[0-9]+)?"?(;host=[^;,\s]+)?$')
BAGGAGE_ITEM_RE = re.compile(r"^[a-z0-9_.]+=[^,;=\s]*$")
READ_SIZE = 65536


def split_hostport(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


def spiffe_ids(peer_cert):
    """Returns the URI SANs of a verified peer certificate dict (ssl.getpeercert())."""
    if not peer_cert:
        return []
    return [value for kind, value in peer_cert.get("subjectAltName", ()) if kind == "URI"]


def serial_decimal(peer_cert):
    """Returns a verified peer certificate's serial number in decimal (as ztunnel prints it)."""
    if not peer_cert or "serialNumber" not in peer_cert:
        return None
    return str(int(peer_cert["serialNumber"], 16))


def tls_context(server, cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        # HBONE has no server name: identity is checked on the SPIFFE URI SAN instead.
        ctx.check_hostname = False
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


class Pump:
    """Moves one H2 connection's frames between an h2 state machine and a TLS socket."""

    def __init__(self, sock, conn):
        self.sock = sock
        self.conn = conn

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def receive(self):
        data = self.sock.recv(READ_SIZE)
        if not data:
            return None
        return self.conn.receive_data(data)

    def send_some(self, stream_id, pending, end_after):
        """Sends as much of `pending` (a bytearray) as flow control allows; returns True when all
        of it went out (and END_STREAM if `end_after`)."""
        while pending:
            window = min(self.conn.local_flow_control_window(stream_id),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                return False
            chunk = bytes(pending[:window])
            del pending[:window]
            self.conn.send_data(stream_id, chunk)
        if end_after:
            self.conn.end_stream(stream_id)
        return True


def run_client(args):
    ctx = tls_context(False, args.cert, args.key, args.ca)
    host, port = split_hostport(args.connect)
    raw = socket.create_connection((host, port), timeout=args.timeout)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=None)
    except (ssl.SSLError, ConnectionError, OSError) as err:
        print(json.dumps({"error": "handshake", "detail": str(err)}))
        return 4
    alpn = sock.selected_alpn_protocol()
    ids = spiffe_ids(sock.getpeercert())
    serial = serial_decimal(sock.getpeercert())
    if alpn != "h2":
        print(json.dumps({"error": "alpn", "detail": str(alpn)}))
        return 4
    if args.expect_id and not any(i in args.expect_id for i in ids):
        print(json.dumps({"error": "identity", "detail": ids}))
        return 4

    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
    conn.initiate_connection()
    # Windows like ztunnel's (4 MiB per stream, 16 MiB per connection) so a bulk transfer is not
    # throttled by the 64 KiB defaults.
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4 * 1024 * 1024})
    conn.increment_flow_control_window(16 * 1024 * 1024 - 65535)
    pump = Pump(sock, conn)
    stream_id = conn.get_next_available_stream_id()
    headers = [(":method", "CONNECT"), (":authority", args.authority)]
    for item in args.header or []:
        name, _, value = item.partition("=")
        headers.append((name.lower(), value))
    conn.send_headers(stream_id, headers)
    # In TLS 1.3 a server that refuses our certificate says so only after our Finished: the alert
    # arrives on the first write or read, before any HTTP/2 frame from the server.
    try:
        pump.flush()
        first_events = pump.receive()
    except (ssl.SSLError, OSError) as err:
        print(json.dumps({"error": "handshake", "detail": str(err)}))
        return 4
    if first_events is None:
        print(json.dumps({"error": "handshake", "detail": "closed before any HTTP/2 frame"}))
        return 4

    if args.send_file:
        with open(args.send_file, "rb") as f:
            payload = f.read()
    else:
        payload = random.Random(args.seed).randbytes(args.random_bytes)
    pending = bytearray(payload)
    sent_hash = hashlib.sha256(payload).hexdigest()
    received = hashlib.sha256()
    received_len = 0
    status = None
    done_sending = False
    ended = False
    reset = None
    out = open(args.out, "wb") if args.out else None
    try:
        events = first_events
        while not ended:
            if events is None:
                break
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers).get(":status", "0"))
                    if status != 200:
                        ended = True
                elif isinstance(event, h2.events.DataReceived):
                    received.update(event.data)
                    received_len += len(event.data)
                    if out:
                        out.write(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.StreamReset):
                    reset = event.error_code
                    ended = True
                elif isinstance(event, h2.events.ConnectionTerminated):
                    ended = True
            if status == 200 and not done_sending:
                done_sending = pump.send_some(stream_id, pending, True)
            pump.flush()
            if not ended:
                events = pump.receive()
    except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
        print(json.dumps({"error": "transfer", "detail": str(err), "status": status}))
        return 5
    finally:
        if out:
            out.close()
    result = {"status": status, "sent": len(payload) if done_sending else len(payload) - len(pending),
              "received": received_len, "sha256_sent": sent_hash,
              "sha256_received": received.hexdigest(), "peer_ids": ids,
              "peer_serial": serial}
    if reset is not None:
        result["reset"] = int(reset)
    print(json.dumps(result))
    if status != 200:
        return 3
    if reset is not None or not done_sending:
        return 5
    return 0


class ServerConnection(threading.Thread):
    def __init__(self, raw, ctx, args, log_lock, number):
        super().__init__(daemon=True)
        self.raw = raw
        self.ctx = ctx
        self.args = args
        self.log_lock = log_lock
        self.number = number

    def log(self, record):
        if not self.args.log:
            return
        record["conn"] = self.number
        with self.log_lock:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(record) + "\n")

    def check_request(self, headers, tls_info):
        problems = []
        h = dict(headers)
        if h.get(":method") != "CONNECT":
            problems.append("method %r" % h.get(":method"))
        for forbidden in (":path", ":scheme", ":protocol"):
            if forbidden in h:
                problems.append("unexpected %s" % forbidden)
        authority = h.get(":authority", "")
        if self.args.expect_authority and authority != self.args.expect_authority:
            problems.append("authority %r" % authority)
        baggage = h.get("baggage")
        if baggage is None or not all(BAGGAGE_ITEM_RE.match(p) for p in baggage.split(",")):
            problems.append("baggage %r" % baggage)
        forwarded = h.get("forwarded")
        if forwarded is None or not FORWARDED_RE.match(forwarded):
            problems.append("forwarded %r" % forwarded)
        traceparent = h.get("traceparent")
        if traceparent is None or not TRACEPARENT_RE.match(traceparent):
            problems.append("traceparent %r" % traceparent)
        if self.args.expect_client_id and self.args.expect_client_id not in tls_info["client_ids"]:
            problems.append("client identity %r" % tls_info["client_ids"])
        return problems

    def run(self):
        try:
            sock = self.ctx.wrap_socket(self.raw, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.log({"event": "handshake_failed", "detail": str(err)})
            self.raw.close()
            return
        tls_info = {"version": sock.version(), "alpn": sock.selected_alpn_protocol(),
                    "cipher": sock.cipher()[0], "client_ids": spiffe_ids(sock.getpeercert()),
                    "client_serial": serial_decimal(sock.getpeercert())}
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_inbound_headers=False))
        conn.initiate_connection()
        pump = Pump(sock, conn)
        pending = {}
        ending = set()
        stats = {}
        received = 0
        goaway_last = None  # The last stream of the GOAWAY we sent, once sent.

        def send_goaway(last_stream_id):
            # Raw, outside h2's state machine, which would refuse to send anything after it:
            # a graceful GOAWAY lets the streams up to `last_stream_id` finish.
            pump.flush()
            sock.sendall(GoAwayFrame(stream_id=0, last_stream_id=last_stream_id,
                                     error_code=0).serialize())

        try:
            pump.flush()
            while True:
                events = pump.receive()
                if events is None:
                    break
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        problems = self.check_request(event.headers, tls_info)
                        if goaway_last is not None and event.stream_id > goaway_last:
                            problems.append("stream %d opened after GOAWAY(last %d)" %
                                            (event.stream_id, goaway_last))
                        record = {"event": "request", "stream": event.stream_id,
                                  "headers": dict(event.headers), "tls": tls_info,
                                  "problems": problems}
                        self.log(record)
                        if self.args.refuse == "rst":
                            conn.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
                            self.log({"event": "refused", "stream": event.stream_id,
                                      "by": "rst"})
                        elif self.args.refuse == "goaway":
                            goaway_last = max(event.stream_id - 2, 0)
                            send_goaway(goaway_last)
                            self.log({"event": "refused", "stream": event.stream_id,
                                      "by": "goaway"})
                        elif problems:
                            conn.send_headers(event.stream_id, [(":status", "400")],
                                              end_stream=True)
                        else:
                            conn.send_headers(event.stream_id, [(":status", "200")])
                            pending[event.stream_id] = bytearray()
                            stats[event.stream_id] = [0, hashlib.sha256()]
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                        received += len(event.data)
                        if (self.args.goaway_after_bytes and goaway_last is None and
                                received >= self.args.goaway_after_bytes):
                            goaway_last = max(pending) if pending else 0
                            send_goaway(goaway_last)
                            self.log({"event": "goaway_sent", "last_stream": goaway_last,
                                      "received": received})
                        if event.stream_id in pending:
                            pending[event.stream_id] += event.data
                            stats[event.stream_id][0] += len(event.data)
                            stats[event.stream_id][1].update(event.data)
                    elif isinstance(event, h2.events.StreamEnded):
                        if event.stream_id in pending:
                            ending.add(event.stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        pending.pop(event.stream_id, None)
                        ending.discard(event.stream_id)
                for stream_id in list(pending):
                    if pump.send_some(stream_id, pending[stream_id], stream_id in ending):
                        if stream_id in ending:
                            count, digest = stats.pop(stream_id)
                            self.log({"event": "stream_done", "stream": stream_id,
                                      "bytes": count, "sha256": digest.hexdigest()})
                            del pending[stream_id]
                            ending.discard(stream_id)
                pump.flush()
        except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
            self.log({"event": "connection_error", "detail": str(err)})
        finally:
            sock.close()


def run_server(args):
    ctx = tls_context(True, args.cert, args.key, args.ca)
    host, port = split_hostport(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    print("hbone_peer: listening on %s" % args.listen, flush=True)
    log_lock = threading.Lock()
    number = 0
    while True:
        raw, _ = listener.accept()
        number += 1
        ServerConnection(raw, ctx, args, log_lock, number).start()


def run_misbehave(args):
    ctx = tls_context(False, args.cert, args.key, args.ca)
    host, port = split_hostport(args.connect)
    raw = socket.create_connection((host, port), timeout=args.timeout)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=None)
    except (ssl.SSLError, ConnectionError, OSError) as err:
        print(json.dumps({"error": "handshake", "detail": str(err)}))
        return 4
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024 * 1024})
    stream_id = conn.get_next_available_stream_id()
    for weight in (16, 32, 64):
        conn.prioritize(stream_id + 2, weight=weight)
    conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "https"), (":path", "/"),
                                  (":authority", args.authority)], end_stream=True)
    pump = Pump(sock, conn)
    status = None
    try:
        pump.flush()
        while status is None:
            events = pump.receive()
            if events is None:
                break
            for event in events:
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers).get(":status", "0"))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    status = status or 0
            pump.flush()
    except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
        print(json.dumps({"error": "protocol", "detail": str(err), "status": status}))
        return 5
    print(json.dumps({"status": status}))
    return 0 if status == 400 else 3


def run_attack(args):
    import time
    ctx = tls_context(False, args.cert, args.key, args.ca)
    host, port = split_hostport(args.connect)
    deadline = time.monotonic() + args.seconds
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    def stopped():
        if not stop and args.stop_file and os.path.exists(args.stop_file):
            stop.append(True)
        return bool(stop)
    totals = {"kind": args.kind, "connections": 0, "handshake_failures": 0, "frames": 0,
              "goaways": {}, "ended": {}}

    def ended(how):
        totals["ended"][how] = totals["ended"].get(how, 0) + 1

    def drain(sock, conn):
        """Reads what the server sent without waiting; False once the connection is over."""
        sock.settimeout(0)
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    ended("eof")
                    return False
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        code = str(int(event.error_code))
                        totals["goaways"][code] = totals["goaways"].get(code, 0) + 1
                        ended("goaway")
                        return False
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except h2.exceptions.ProtocolError:
            ended("protocol")
            return False
        finally:
            sock.settimeout(5)

    while time.monotonic() < deadline and not stopped():
        try:
            raw = socket.create_connection((host, port), timeout=5)
            sock = ctx.wrap_socket(raw, server_hostname=None)
        except (ssl.SSLError, OSError):
            totals["handshake_failures"] += 1
            time.sleep(0.1)
            continue
        totals["connections"] += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
            alive = True
            while alive and time.monotonic() < deadline and not stopped():
                for _ in range(100):
                    if args.kind == "reset":
                        stream_id = conn.get_next_available_stream_id()
                        conn.send_headers(stream_id, [(":method", "CONNECT"),
                                                      (":authority", args.authority)])
                        conn.reset_stream(stream_id, error_code=8)
                        totals["frames"] += 2
                    else:
                        conn.ping(totals["frames"].to_bytes(8, "big"))
                        totals["frames"] += 1
                sock.sendall(conn.data_to_send())
                if args.kind == "reset":
                    alive = drain(sock, conn)
            else:
                if alive:
                    ended("deadline")
        except (ssl.SSLError, OSError) as err:
            ended(type(err).__name__)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamIDTooLowError):
            ended("protocol")
        finally:
            sock.close()
    print(json.dumps(totals))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    client = sub.add_parser("client")
    client.add_argument("--connect", required=True, help="HBONE server ip:port")
    client.add_argument("--authority", required=True, help="CONNECT :authority")
    client.add_argument("--cert")
    client.add_argument("--key")
    client.add_argument("--ca", required=True)
    client.add_argument("--expect-id", action="append", help="accepted server SPIFFE IDs")
    client.add_argument("--header", action="append", help="extra request header name=value")
    client.add_argument("--send-file")
    client.add_argument("--random-bytes", type=int, default=1024)
    client.add_argument("--seed", type=int, default=1)
    client.add_argument("--out")
    client.add_argument("--timeout", type=float, default=20.0)
    misbehave = sub.add_parser("misbehave")
    misbehave.add_argument("--connect", required=True, help="HBONE server ip:port")
    misbehave.add_argument("--authority", required=True, help=":authority of the GET")
    misbehave.add_argument("--cert", required=True)
    misbehave.add_argument("--key", required=True)
    misbehave.add_argument("--ca", required=True)
    misbehave.add_argument("--timeout", type=float, default=20.0)
    attack = sub.add_parser("attack")
    attack.add_argument("--connect", required=True, help="HBONE server ip:port")
    attack.add_argument("--authority", required=True, help="CONNECT :authority")
    attack.add_argument("--cert", required=True)
    attack.add_argument("--key", required=True)
    attack.add_argument("--ca", required=True)
    attack.add_argument("--kind", choices=("reset", "ping"), required=True)
    attack.add_argument("--seconds", type=float, required=True)
    attack.add_argument("--stop-file", help="stop as soon as this file exists")
    server = sub.add_parser("server")
    server.add_argument("--listen", required=True)
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    server.add_argument("--ca", required=True)
    server.add_argument("--expect-client-id")
    server.add_argument("--expect-authority")
    server.add_argument("--log")
    server.add_argument("--refuse", choices=["rst", "goaway"],
                        help="refuse every CONNECT before answering it")
    server.add_argument("--goaway-after-bytes", type=int, default=0,
                        help="send a graceful GOAWAY once a connection received this many bytes")
    args = parser.parse_args()
    if args.mode == "client":
        sys.exit(run_client(args))
    if args.mode == "misbehave":
        sys.exit(run_misbehave(args))
    if args.mode == "attack":
        sys.exit(run_attack(args))
    run_server(args)


if __name__ == "__main__":
    main()
