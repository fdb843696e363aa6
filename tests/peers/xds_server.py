#!/usr/bin/python3
"""xds_server.py: an independent delta-ADS server standing in for istiod in tests and benchmarks.

It shares no code with the agent: Debian's python3-grpcio serves
`envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources` over TLS with a
certificate given on the command line (made at run time by the test), and the messages come from
`protoc --python_out` run at start-up on a folder of .proto files (Istio's reference files when a test has them
at hand, else the project's own).

Resources live in the server's state (optionally persisted to --state-file, so a restarted server
serves what it served before) and are changed through a small HTTP control API on --control:

  POST /push    {"type": "address"|"authorization",
                 "resources": [{"name": N, "json": {...}} | {"name": N, "raw_b64": "..."}],
                 "removed": [N, ...], "version": optional}
                one DeltaDiscoveryResponse per connected stream, with those resources; the state
                is updated; answers {"nonce": ..., "time": unix seconds}. Address JSON is the
                proto3 JSON of istio.workload.Address, with IPs written as text ("198.18.1.2")
                where the message has bytes (converted here). "raw_b64" sends bytes as they are
                (a malformed resource).
  POST /close   {"code": 14, "message": "..."}: end every stream with that gRPC status.
  GET  /state   what the server saw: streams (node, metadata, initial requests with their
                initial_resource_versions), every ACK and NACK (nonce, error), resource counts.

Every stream gets, for each type it subscribes to, one response with every resource of that type
(and the names in its initial_resource_versions the server no longer has, as removals), then the
pushes. Every response and every ACK/NACK is logged on stdout with a wall-clock time (the
benchmark reads push times from here).
"""

import argparse
import base64
import ipaddress
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from http.server import ThreadingHTTPServer

import grpc

import peerlib
from peerlib import log

ADDRESS_URL = "type.googleapis.com/istio.workload.Address"
AUTHZ_URL = "type.googleapis.com/istio.security.Authorization"
METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
TYPES = {"address": ADDRESS_URL, "authorization": AUTHZ_URL}

pb = {}  # module name -> generated module
lock = threading.RLock()
resources = {ADDRESS_URL: {}, AUTHZ_URL: {}}  # url -> name -> (version, bytes)
streams = []
events = []  # acks/nacks
version_counter = [0]
nonce_counter = [0]
state_file = None


def generate(proto_dir):
    out = tempfile.mkdtemp(prefix="zt-xds-pb-")
    files = [f for f in ("xds.proto", "workload.proto", "authorization.proto")
             if os.path.exists(os.path.join(proto_dir, f))]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", out] + files, check=True)
    sys.path.insert(0, out)
    import xds_pb2  # noqa: E402
    import workload_pb2  # noqa: E402
    import authorization_pb2  # noqa: E402
    pb["xds"] = xds_pb2
    pb["workload"] = workload_pb2
    pb["authorization"] = authorization_pb2


def b64_ip(text):
    return base64.b64encode(ipaddress.ip_address(text).packed).decode()


def fix_ips(obj, key_path=""):
    """Turns IP text into the base64 bytes proto3 JSON wants, for the fields that are bytes."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "addresses" and isinstance(v, list) and v and isinstance(v[0], str):
                out[k] = [b64_ip(x) if "." in x or ":" in x else x for x in v]
            elif k == "address" and isinstance(v, str) and ("." in v or ":" in v):
                out[k] = b64_ip(v)
            else:
                out[k] = fix_ips(v)
        return out
    if isinstance(obj, list):
        return [fix_ips(x) for x in obj]
    return obj


def encode(url, entry):
    from google.protobuf import json_format
    if "raw_b64" in entry:
        return base64.b64decode(entry["raw_b64"])
    if url == ADDRESS_URL:
        msg = pb["workload"].Address()
    else:
        msg = pb["authorization"].Authorization()
    json_format.ParseDict(fix_ips(entry["json"]), msg)
    return msg.SerializeToString()


def save_state():
    if not state_file:
        return
    data = {url: {name: [v, base64.b64encode(b).decode()] for name, (v, b) in table.items()}
            for url, table in resources.items()}
    tmp = state_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"resources": data, "version": version_counter[0]}, f)
    os.replace(tmp, state_file)


def load_state():
    if not state_file or not os.path.exists(state_file):
        return
    with open(state_file) as f:
        data = json.load(f)
    version_counter[0] = data.get("version", 0)
    for url, table in data["resources"].items():
        resources[url] = {name: (v, base64.b64decode(b)) for name, (v, b) in table.items()}


def next_nonce():
    nonce_counter[0] += 1
    return "n%d-%d" % (os.getpid(), nonce_counter[0])


def make_response(url, names, removed):
    xds = pb["xds"]
    resp = xds.DeltaDiscoveryResponse(type_url=url, nonce=next_nonce())
    for name in names:
        version, payload = resources[url][name]
        r = resp.resources.add()
        r.name = name
        r.version = version
        r.resource.type_url = url
        r.resource.value = payload
    resp.removed_resources.extend(removed)
    return resp


class Stream:
    def __init__(self, context):
        self.context = context
        self.queue = queue.Queue()
        self.subscribed = set()
        self.initial = []
        self.node = None
        self.metadata = {k: v for k, v in context.invocation_metadata()}
        self.peer = context.peer()
        self.closed = False
        self.end_status = None

    def send(self, resp):
        log("response", stream=self.peer, type_url=resp.type_url, nonce=resp.nonce,
            resources=len(resp.resources), removed=len(resp.removed_resources))
        self.queue.put(resp)


def read_requests(stream, request_iterator):
    try:
        for req in request_iterator:
            with lock:
                if req.HasField("node"):
                    stream.node = req.node
                if req.response_nonce:
                    nack = req.HasField("error_detail") and req.error_detail.message != ""
                    ev = {"stream": stream.peer, "type_url": req.type_url,
                          "nonce": req.response_nonce, "ack": not nack,
                          "error": req.error_detail.message if nack else ""}
                    events.append(ev)
                    log("nack" if nack else "ack", **ev)
                elif req.type_url and req.type_url not in stream.subscribed:
                    stream.subscribed.add(req.type_url)
                    versions = dict(req.initial_resource_versions)
                    stream.initial.append({"type_url": req.type_url,
                                           "initial_resource_versions": versions,
                                           "subscribe": list(req.resource_names_subscribe)})
                    log("subscribe", stream=stream.peer, type_url=req.type_url,
                        initial_resources=len(versions))
                    table = resources.get(req.type_url, {})
                    gone = sorted(n for n in versions if n not in table)
                    stream.send(make_response(req.type_url, sorted(table), gone))
    except Exception as e:  # the client went away
        log("stream_read_end", stream=stream.peer, error=str(e))
    stream.queue.put(None)


def handler(request_iterator, context):
    stream = Stream(context)
    with lock:
        streams.append(stream)
    log("connect", stream=stream.peer, metadata=stream.metadata)
    reader = threading.Thread(target=read_requests, args=(stream, request_iterator), daemon=True)
    reader.start()
    try:
        while True:
            item = stream.queue.get()
            if item is None:
                break
            if isinstance(item, tuple):  # ("close", code, message)
                _, code, message = item
                context.abort(grpc.StatusCode(code_of(code)), message)
            yield item
    finally:
        with lock:
            stream.closed = True
        log("disconnect", stream=stream.peer)


def code_of(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def push(body):
    url = TYPES[body["type"]]
    with lock:
        names = []
        for entry in body.get("resources", []):
            version_counter[0] += 1
            version = entry.get("version") or body.get("version") or "v%d" % version_counter[0]
            resources[url][entry["name"]] = (version, encode(url, entry))
            names.append(entry["name"])
        removed = list(body.get("removed", []))
        for name in removed:
            resources[url].pop(name, None)
        save_state()
        nonces = []
        for s in streams:
            if not s.closed and url in s.subscribed:
                resp = make_response(url, names, removed)
                s.send(resp)
                nonces.append(resp.nonce)
    return {"nonces": nonces, "time": time.time()}


def state():
    with lock:
        return {
            "streams": [{"peer": s.peer, "closed": s.closed, "metadata": s.metadata,
                         "node_id": s.node.id if s.node else None,
                         "node_metadata": json.loads(
                             __import__("google.protobuf.json_format",
                                        fromlist=["MessageToJson"]).MessageToJson(s.node.metadata))
                         if s.node else None,
                         "initial": s.initial} for s in streams],
            "events": events,
            "resources": {url: sorted(table) for url, table in resources.items()},
        }


class Control(peerlib.JsonControl):
    def do_GET(self):
        if self.path == "/state":
            self.reply(200, state())
        else:
            self.reply(404, {})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        try:
            if self.path == "/push":
                self.reply(200, push(body))
            elif self.path == "/close":
                with lock:
                    for s in streams:
                        if not s.closed:
                            s.queue.put(("close", body.get("code", 14),
                                         body.get("message", "closed by the test")))
                self.reply(200, {})
            else:
                self.reply(404, {})
        except Exception as e:
            self.reply(400, {"error": str(e)})


def main():
    global state_file
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:15012")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--control", default="127.0.0.1:15099")
    ap.add_argument("--state-file")
    args = ap.parse_args()
    state_file = args.state_file
    generate(args.proto_dir)
    load_state()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
        ("grpc.max_send_message_length", 256 << 20),
        ("grpc.max_receive_message_length", 256 << 20),
        # The agent pings every 30 s, as ztunnel does; accept that without strikes.
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
    ])
    method = grpc.stream_stream_rpc_method_handler(
        handler,
        request_deserializer=pb["xds"].DeltaDiscoveryRequest.FromString,
        response_serializer=lambda m: m.SerializeToString())
    service = METHOD.split("/")[1]
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {"DeltaAggregatedResources": method}),))
    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    creds = grpc.ssl_server_credentials([(key, cert)])
    if server.add_secure_port(args.listen, creds) == 0:
        print("cannot listen on " + args.listen, file=sys.stderr)
        return 1
    server.start()
    host, port = args.control.rsplit(":", 1)
    control = ThreadingHTTPServer((host.strip("[]"), int(port)), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    log("listening", address=args.listen, control=args.control)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
