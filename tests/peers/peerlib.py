"""peerlib.py: what the independent control-plane peers (xds_server.py, ca_server.py,
zds_server.py) share: JSON-lines event logs, messages generated from .proto files at start, and
the JSON control endpoint the scenarios drive them through."""

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

_log_lock = threading.Lock()


def log(event, **fields):
    """Write one event as a JSON line on stdout (the scenarios read the peer's log)."""
    record = {"time": time.time(), "event": event}
    record.update(fields)
    with _log_lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def generate(proto_dir, files, prefix):
    """Run protoc on FILES of PROTO_DIR into a fresh folder and import their *_pb2 modules;
    returns them by file stem ("xds.proto" -> modules["xds"])."""
    out = tempfile.mkdtemp(prefix=prefix)
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", out] +
                   [os.path.join(proto_dir, f) for f in files], check=True)
    sys.path.insert(0, out)
    return {f[:-len(".proto")]: importlib.import_module(f[:-len(".proto")] + "_pb2")
            for f in files}


class JsonControl(BaseHTTPRequestHandler):
    """A quiet HTTP handler whose answers are JSON objects."""

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
