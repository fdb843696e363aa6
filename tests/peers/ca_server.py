#!/usr/bin/python3
"""ca_server.py: an independent Istio CA standing in for istiod's certificate service in tests.

It shares no code with the agent: Debian's python3-grpcio serves
`istio.v1.auth.IstioCertificateService/CreateCertificate` over TLS (a server certificate made by
the test), the messages come from `protoc --python_out` run at start-up on a folder of .proto
files (the reference `citadel.proto` when the test has it, else the project's own), and
certificates are signed with Debian's python3-cryptography.

What istiod enforces, it enforces:
  - the caller's token (`authorization: Bearer <token>`) must be known (--token TOKEN=NODE names
    the node a token belongs to; a node proxy's token says which node it runs on);
  - `ImpersonatedIdentity` must be an identity of a pod on the caller's node (the pods are set
    with --pod NODE=SPIFFE_ID or through the control API), else PERMISSION_DENIED;
  - the CSR's signature must verify and its only URI SAN must be the requested identity.
The response is the leaf, then the root bundle holding two roots (the signing root and a second
one, as during a root rotation). The leaf lives `validity_duration` seconds (capped by --max-ttl).

Control API on --control (HTTP, JSON):
  POST /pods   {"node": N, "identities": [...]}   replaces node N's identities
  POST /refuse {"status": 7, "message": "..."}     refuse every request with that status
               ({} to stop refusing)
  POST /delay  {"seconds": 1.5}                     answer every request that late (a busy
               istiod; {"seconds": 0} to answer at once again)
  GET  /state  {"requests": [{"identity", "node", "result", "time"}...], "issued": N}
Every request is logged on stdout as one JSON line.
"""

import argparse
import datetime
import json
import sys
import threading
import time
from concurrent import futures
from http.server import ThreadingHTTPServer

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import peerlib
from peerlib import log

pb = {}
lock = threading.Lock()
pods = {}  # node -> set of SPIFFE IDs
tokens = {}  # token -> node
refusal = {}
delay = [0.0]  # seconds every answer waits (POST /delay)
requests = []
issued = [0]
max_ttl = [86400]


def generate(proto_dir):
    pb["ca"] = peerlib.generate(proto_dir, ["citadel.proto"], "zt-ca-pb-")["citadel"]


def make_root(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


class Signer:
    def __init__(self):
        self.key, self.cert = make_root("zt-test-ca-root-1")
        _, self.other = make_root("zt-test-ca-root-2")

    def bundle(self):
        return b"".join(c.public_bytes(serialization.Encoding.PEM)
                        for c in (self.cert, self.other)).decode()

    def sign(self, csr, identity, ttl):
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(x509.Name([]))
                .issuer_name(self.cert.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                # Backdated by a second only: a test's short TTL keeps its half-life ahead.
                .not_valid_before(now - datetime.timedelta(seconds=1))
                .not_valid_after(now + datetime.timedelta(seconds=ttl))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                             False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(identity)]), critical=True)
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()


signer = None


def record(identity, node, result):
    with lock:
        requests.append({"identity": identity, "node": node, "result": result,
                         "time": time.time()})
    log("request", identity=identity, node=node, result=result)


def create_certificate(request, context):
    md = dict(context.invocation_metadata())
    auth = md.get("authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    identity = ""
    if request.metadata and "ImpersonatedIdentity" in request.metadata.fields:
        identity = request.metadata.fields["ImpersonatedIdentity"].string_value
    with lock:
        node = tokens.get(token)
        refuse = dict(refusal)
        allowed = node is not None and identity in pods.get(node, set())
        late = delay[0]
    if late > 0:
        # A busy CA: the answer comes late (the server's thread pool serves other calls
        # meanwhile).
        time.sleep(late)
    if refuse:
        record(identity, node, "refused by the test")
        context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode
                                           if c.value[0] == refuse.get("status", 14))),
                      refuse.get("message", "refused by the test"))
    if node is None:
        record(identity, None, "unauthenticated")
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown token")
    if md.get("clusterid", "") == "":
        record(identity, node, "no clusterid")
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no clusterid header")
    if not allowed:
        # istiod: a node proxy may impersonate only identities of pods on its own node.
        record(identity, node, "impersonation denied")
        context.abort(grpc.StatusCode.PERMISSION_DENIED,
                      f"identity {identity!r} is not of a pod on node {node!r}")
    try:
        csr = x509.load_pem_x509_csr(request.csr.encode())
        if not csr.is_signature_valid:
            raise ValueError("bad CSR signature")
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        if uris != [identity]:
            raise ValueError(f"CSR URI SANs {uris} are not [{identity}]")
        if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey) or \
                csr.public_key().curve.name != "secp256r1":
            raise ValueError("the CSR key is not P-256")
    except Exception as e:  # noqa: BLE001 - every CSR problem is the caller's
        record(identity, node, "bad csr: " + str(e))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad CSR: " + str(e))
    ttl = request.validity_duration if request.validity_duration > 0 else 86400
    ttl = min(ttl, max_ttl[0])
    leaf = signer.sign(csr, identity, ttl)
    with lock:
        issued[0] += 1
    record(identity, node, "issued")
    return pb["ca"].IstioCertificateResponse(cert_chain=[leaf, signer.bundle()])


class Control(peerlib.JsonControl):
    def do_GET(self):
        if self.path == "/state":
            with lock:
                self.reply(200, {"requests": list(requests), "issued": issued[0]})
        else:
            self.reply(404, {})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                if self.path == "/pods":
                    pods[body["node"]] = set(body.get("identities", []))
                elif self.path == "/refuse":
                    refusal.clear()
                    refusal.update(body)
                elif self.path == "/delay":
                    delay[0] = float(body.get("seconds", 0))
                else:
                    self.reply(404, {})
                    return
            self.reply(200, {})
        except Exception as e:  # noqa: BLE001
            self.reply(400, {"error": str(e)})


def main():
    global signer
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:15012")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--control", default="127.0.0.1:15097")
    ap.add_argument("--token", action="append", default=[], help="TOKEN=NODE")
    ap.add_argument("--pod", action="append", default=[], help="NODE=SPIFFE_ID")
    ap.add_argument("--max-ttl", type=int, default=86400)
    ap.add_argument("--roots-out", help="write the root bundle here at start")
    args = ap.parse_args()
    for pair in args.token:
        token, node = pair.split("=", 1)
        tokens[token] = node
    for pair in args.pod:
        node, identity = pair.split("=", 1)
        pods.setdefault(node, set()).add(identity)
    max_ttl[0] = args.max_ttl
    generate(args.proto_dir)
    signer = Signer()
    if args.roots_out:
        with open(args.roots_out, "w") as f:
            f.write(signer.bundle())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
    ])
    method = grpc.unary_unary_rpc_method_handler(
        create_certificate,
        request_deserializer=pb["ca"].IstioCertificateRequest.FromString,
        response_serializer=lambda m: m.SerializeToString())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "istio.v1.auth.IstioCertificateService", {"CreateCertificate": method}),))
    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    if server.add_secure_port(args.listen, grpc.ssl_server_credentials([(key, cert)])) == 0:
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
