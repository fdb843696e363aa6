#!/usr/bin/python3
"""waypoint_peer.py: an independent HBONE waypoint for the waypoint scenarios.

It stands where Istio runs a waypoint proxy: it accepts HBONE (mutual TLS 1.3 with its own
certificate, ALPN h2, a client certificate that verifies to --ca), checks each CONNECT's
:authority against its routes (--route AUTHORITY=HBONE_SERVER,TARGET,EXPECTED_ID: anything else is
answered 404, as a waypoint with no route for a host answers), then re-originates HBONE with its
own certificate to HBONE_SERVER (the destination node's ztunnel), checking that server's SPIFFE
identity is EXPECTED_ID, with CONNECT :authority TARGET, and moves the bytes both ways. The
upstream's answer status is passed back when it is not 200. Every request is logged as one JSON
line to --log (authority, client SPIFFE IDs, upstream status), so a scenario can assert on what
our ztunnel sent and which identity it dialled.

It shares no code with the project: Python's ssl module (OpenSSL) and Debian's python3-h2, with
the TLS and pump helpers of hbone_peer.py (the other independent peer). Run it with /usr/bin/python3.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hbone_peer import READ_SIZE, spiffe_ids, split_hostport, tls_context  # noqa: E402

WINDOW = 4 * 1024 * 1024


def no_delay(sock):
    """Small HTTP/2 frames go at once: with Nagle, a HEADERS frame written while the peer delays
    its ACK of the last one waited ~40 ms, which was most of each connection's latency."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def big_windows(conn):
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW})
    conn.increment_flow_control_window(4 * WINDOW - 65535)


class Side:
    """One HTTP/2 connection and the bytes waiting for its flow-control window, per stream."""

    def __init__(self, sock, conn, single_stream=False):
        self.sock = sock
        self.conn = conn
        self.lock = threading.Lock()
        self.pending = {}  # stream id -> bytearray
        self.ending = set()
        # An upstream side carries one stream: once that stream ended both ways the connection
        # closes, as a waypoint that pools nothing must (else each request leaves a link open
        # at the destination's ztunnel until that ztunnel's per-peer cap refuses new ones).
        self.single_stream = single_stream
        self.ended_out = set()
        self.ended_in = set()

    def send(self, stream_id, data=b"", end=False, push=True):
        """Queues `data` (and the end) on `stream_id`; `push=False` leaves the write to a later
        push, so that what one read brought leaves in one write, as a proxy's event loop does."""
        with self.lock:
            self.pending.setdefault(stream_id, bytearray()).extend(data)
            if end:
                self.ending.add(stream_id)
            if push:
                self.push()

    def push(self):
        # Called with the lock held.
        for stream_id in list(self.pending):
            buf = self.pending[stream_id]
            while buf:
                window = min(self.conn.local_flow_control_window(stream_id),
                             self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                self.conn.send_data(stream_id, bytes(buf[:window]))
                del buf[:window]
            if not buf and stream_id in self.ending:
                self.conn.end_stream(stream_id)
                self.ending.discard(stream_id)
                del self.pending[stream_id]
                self.ended_out.add(stream_id)
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)
        self.close_if_done()

    def received_end(self, stream_id):
        """The peer ended `stream_id`; says whether the connection closed."""
        with self.lock:
            self.ended_in.add(stream_id)
            return self.close_if_done()

    def close_if_done(self):
        # Called with the lock held. The reader's recv then returns, and it closes the socket.
        if not self.single_stream or not self.ended_out or self.ended_out != self.ended_in:
            return False
        self.single_stream = False  # Once.
        self.conn.close_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.shutdown(socket.SHUT_RDWR)
        return True

    def reset(self, stream_id):
        with self.lock:
            self.pending.pop(stream_id, None)
            self.ending.discard(stream_id)
            try:
                self.conn.reset_stream(stream_id, 0x8)  # CANCEL
            except h2.exceptions.ProtocolError:
                pass
            self.push()


class Waypoint:
    def __init__(self, args):
        self.args = args
        self.routes = {}
        for item in args.route or []:
            authority, _, rest = item.partition("=")
            server, target, expected = rest.split(",")
            self.routes[authority] = (server, target, expected)
        self.log_lock = threading.Lock()
        self.client_ctx = tls_context(False, args.cert, args.key, args.ca)

    def log(self, record):
        print(json.dumps(record), flush=True)
        if self.args.log:
            with self.log_lock:
                with open(self.args.log, "a") as f:
                    f.write(json.dumps(record) + "\n")

    def dial(self, server, target, expected, headers):
        """Opens HBONE to `server` and CONNECTs to `target`; returns (side, stream, status)."""
        host, port = split_hostport(server)
        raw = socket.create_connection((host, port), timeout=10)
        no_delay(raw)
        sock = self.client_ctx.wrap_socket(raw, server_hostname=None)
        ids = spiffe_ids(sock.getpeercert())
        if expected not in ids:
            sock.close()
            return None, None, "upstream identity %r" % ids
        sock.settimeout(None)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
        conn.initiate_connection()
        big_windows(conn)
        side = Side(sock, conn, single_stream=True)
        stream_id = conn.get_next_available_stream_id()
        request = [(":method", "CONNECT"), (":authority", target)]
        request += [(k, v) for k, v in headers if k in ("baggage", "forwarded", "traceparent")]
        conn.send_headers(stream_id, request)
        side.send(stream_id)
        early = []
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                return None, None, "upstream closed before answering"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers).get(":status", "0"))
                    side.early = early
                    return side, stream_id, status
                early.append(event)

    def upstream_reader(self, up, up_stream, down, down_stream):
        try:
            events = list(getattr(up, "early", []))
            while True:
                for event in events:
                    if isinstance(event, h2.events.DataReceived):
                        with up.lock:
                            up.conn.acknowledge_received_data(event.flow_controlled_length,
                                                              up_stream)
                        down.send(down_stream, event.data, push=False)
                    elif isinstance(event, h2.events.StreamEnded):
                        down.send(down_stream, end=True)
                        if up.received_end(up_stream):
                            return
                    elif isinstance(event, h2.events.StreamReset):
                        down.reset(down_stream)
                        return
                    elif isinstance(event, h2.events.WindowUpdated):
                        with up.lock:
                            up.push()
                with up.lock:
                    up.push()
                with down.lock:
                    down.push()
                data = up.sock.recv(READ_SIZE)
                if not data:
                    return
                with up.lock:
                    events = up.conn.receive_data(data)
                    up.push()
        except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
            self.log({"event": "upstream_error", "detail": str(err)})
            down.reset(down_stream)
        finally:
            up.sock.close()

    def serve(self, raw, ctx):
        no_delay(raw)
        try:
            sock = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.log({"event": "handshake_failed", "detail": str(err)})
            raw.close()
            return
        client_ids = spiffe_ids(sock.getpeercert())
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_inbound_headers=False))
        conn.initiate_connection()
        big_windows(conn)
        down = Side(sock, conn)
        with down.lock:
            down.push()
        upstreams = {}  # downstream stream id -> (side, upstream stream id)
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    break
                with down.lock:
                    events = conn.receive_data(data)
                    down.push()
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        self.request(down, event, client_ids, upstreams)
                    elif isinstance(event, h2.events.DataReceived):
                        with down.lock:
                            conn.acknowledge_received_data(event.flow_controlled_length,
                                                           event.stream_id)
                            down.push()
                        if event.stream_id in upstreams:
                            up, up_stream = upstreams[event.stream_id]
                            up.send(up_stream, event.data)
                    elif isinstance(event, h2.events.StreamEnded):
                        if event.stream_id in upstreams:
                            up, up_stream = upstreams[event.stream_id]
                            up.send(up_stream, end=True)
                    elif isinstance(event, h2.events.StreamReset):
                        if event.stream_id in upstreams:
                            up, up_stream = upstreams.pop(event.stream_id)
                            up.reset(up_stream)
                    elif isinstance(event, h2.events.WindowUpdated):
                        with down.lock:
                            down.push()
        except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
            self.log({"event": "connection_error", "detail": str(err)})
        finally:
            sock.close()

    def request(self, down, event, client_ids, upstreams):
        headers = list(event.headers)
        h = dict(headers)
        authority = h.get(":authority", "")
        record = {"event": "request", "authority": authority, "client_ids": client_ids}
        route = self.routes.get(authority)
        if h.get(":method") != "CONNECT" or route is None:
            record["status"] = 404
            self.log(record)
            with down.lock:
                down.conn.send_headers(event.stream_id, [(":status", "404")], end_stream=True)
                down.push()
            return
        server, target, expected = route
        try:
            up, up_stream, status = self.dial(server, target, expected, headers)
        except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as err:
            up, up_stream, status = None, None, "upstream: %s" % err
        record.update({"upstream": server, "target": target, "upstream_status": status})
        self.log(record)
        if status != 200:
            code = str(status) if isinstance(status, int) else "503"
            with down.lock:
                down.conn.send_headers(event.stream_id, [(":status", code)], end_stream=True)
                down.push()
            if up is not None:
                up.sock.close()
            return
        with down.lock:
            down.conn.send_headers(event.stream_id, [(":status", "200")])
            down.push()
        upstreams[event.stream_id] = (up, up_stream)
        threading.Thread(target=self.upstream_reader, args=(up, up_stream, down, event.stream_id),
                         daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--route", action="append",
                        help="AUTHORITY=HBONE_SERVER,TARGET,EXPECTED_SERVER_ID")
    parser.add_argument("--log")
    args = parser.parse_args()
    waypoint = Waypoint(args)
    ctx = tls_context(True, args.cert, args.key, args.ca)
    host, port = split_hostport(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    print("waypoint_peer: listening on %s" % args.listen, flush=True)
    while True:
        raw, _ = listener.accept()
        threading.Thread(target=waypoint.serve, args=(raw, ctx), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
