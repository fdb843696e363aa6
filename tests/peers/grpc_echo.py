#!/usr/bin/python3
"""grpc_echo.py: a gRPC server (Debian's python3-grpcio, TLS) for testing the agent's own gRPC
client through build/tools/grpc_call. Messages are raw bytes (no protobuf needed). Methods of
service test.Echo:

  Unary   answers the request bytes.
  Big     answers as many bytes ('x') as the request says (decimal).
  Fail    ends with the status the request names, "CODE:message" (e.g. "7:no%20way").
  Sleep   waits the request's milliseconds, then answers "slept".
  Stream  bidirectional: answers each request message at once; OK after the client's half-close.
  Headers answers the request metadata it saw, as "name=value" lines.

Prints "port N" on stdout once listening (--listen 127.0.0.1:0 picks a free port).
"""

import argparse
import sys
import time
from concurrent import futures

import grpc


def unary(request, context):
    return request


def big(request, context):
    return b"x" * int(request.decode())


def fail(request, context):
    code, _, message = request.decode().partition(":")
    for status in grpc.StatusCode:
        if status.value[0] == int(code):
            context.abort(status, message)
    context.abort(grpc.StatusCode.UNKNOWN, "bad code")


def sleep(request, context):
    time.sleep(int(request.decode()) / 1000.0)
    return b"slept"


def stream(request_iterator, context):
    for request in request_iterator:
        yield request


def headers(request, context):
    return "\n".join("%s=%s" % (k, v) for k, v in context.invocation_metadata()).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    ident = lambda b: b  # noqa: E731
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Big": grpc.unary_unary_rpc_method_handler(big, ident, ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, ident, ident),
        "Stream": grpc.stream_stream_rpc_method_handler(stream, ident, ident),
        "Headers": grpc.unary_unary_rpc_method_handler(headers, ident, ident),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[
        ("grpc.max_send_message_length", 256 << 20),
        ("grpc.max_receive_message_length", 256 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    port = server.add_secure_port(args.listen, grpc.ssl_server_credentials([(key, cert)]))
    if port == 0:
        print("cannot listen on " + args.listen, file=sys.stderr)
        return 1
    server.start()
    print("port %d" % port, flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
