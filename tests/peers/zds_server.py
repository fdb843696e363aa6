#!/usr/bin/python3
"""zds_server.py: istio-cni's node agent as a ZDS server, standing in for istio-cni in tests.

It shares no code with the agent: the messages come from `protoc --python_out` run at start-up
on zds.proto (the reference file when the test has it, else the project's own), and it behaves
as istio-cni does towards ztunnel:

  - it listens on a SOCK_SEQPACKET Unix socket (--uds); the client connects and must send one
    ZdsHello (version V1) within 5 s;
  - it then sends its snapshot: one AddWorkload per pod it knows, each with the pod's network
    namespace fd in SCM_RIGHTS, waiting up to 5 s for each Ack, then SnapshotSent;
  - afterwards adds and deletes are sent when the test asks (control API), each waiting 5 s
    for its Ack (a timeout closes the connection, as the CNI's deadline does);
  - the client must never send anything it was not asked for: before every request the socket
    is checked for unprompted data, and any is counted as a violation.

Control API on --control (HTTP, JSON):
  POST /add  {"uid", "name", "namespace", "serviceAccount", "netns": path}  -> {"error", "ms"}
             (the pod joins the CNI's cache whatever the answer, as the CNI retries it)
  POST /add-many [pod, ...]  every add queued at one instant (sent one at a time, as
             always), answered when all are              -> [{"error", "ms"}, ...]
  POST /del  {"uid"}                                                       -> {"error", "ms"}
  POST /raw  {"kind": "add-no-fd"|"add-no-info"|"add-not-netns"|"del-with-fd"|"snapshot",
              "uid": ...}                                                  -> {"error", "ms"}
  POST /drop  close the current connection (the client reconnects)
  GET  /state {"connections", "connected", "snapshots", "pods", "violations", "timeouts",
               "acks": [{"uid", "kind", "error", "ms", "time"}]}
Every event is logged on stdout as one JSON line with a wall-clock time.
"""

import argparse
import array
import json
import os
import queue
import select
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

import peerlib
from peerlib import log

DEADLINE = 5.0
pb = {}
lock = threading.Lock()
pods = {}  # uid -> {"uid", "name", "namespace", "serviceAccount", "netns"}
state = {"connections": 0, "connected": False, "snapshots": 0, "violations": 0,
         "timeouts": 0, "acks": []}
jobs = queue.Queue()


def generate(proto_dir):
    pb["zds"] = peerlib.generate(proto_dir, ["zds.proto"], "zt-zds-pb-")["zds"]


class Closed(Exception):
    pass


def unprompted(conn):
    """Counts data the client sent without being asked (it must only answer)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return
    try:
        data = conn.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return
    if not data:
        raise Closed("client closed")
    with lock:
        state["violations"] += 1
    log("violation", bytes=len(data))


def request(conn, message, fds, uid, kind):
    """Sends one WorkloadRequest (with fds) and waits DEADLINE for its Ack."""
    unprompted(conn)
    payload = message.SerializeToString()
    start = time.time()
    if fds:
        conn.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        conn.send(payload)
    readable, _, _ = select.select([conn], [], [], DEADLINE)
    if not readable:
        with lock:
            state["timeouts"] += 1
        log("timeout", uid=uid, kind=kind)
        raise Closed("no ack within 5 s")
    data = conn.recv(4096)
    if not data:
        raise Closed("client closed")
    response = pb["zds"].WorkloadResponse.FromString(data)
    ms = (time.time() - start) * 1000
    error = response.ack.error
    with lock:
        state["acks"].append({"uid": uid, "kind": kind, "error": error, "ms": ms,
                              "time": time.time()})
    log("ack", uid=uid, kind=kind, error=error, ms=round(ms, 2))
    return {"error": error, "ms": ms}


def add_message(pod, info=True):
    z = pb["zds"]
    add = z.AddWorkload(uid=pod["uid"])
    if info:
        add.workload_info.CopyFrom(z.WorkloadInfo(name=pod["name"], namespace=pod["namespace"],
                                                  service_account=pod["serviceAccount"]))
    return z.WorkloadRequest(add=add)


def send_add(conn, pod):
    fd = os.open(pod["netns"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        return request(conn, add_message(pod), [fd], pod["uid"], "add")
    finally:
        os.close(fd)


def serve_connection(conn):
    z = pb["zds"]
    readable, _, _ = select.select([conn], [], [], DEADLINE)
    if not readable:
        raise Closed("no hello within 5 s")
    hello = z.ZdsHello.FromString(conn.recv(4096))
    if hello.version != z.V1:
        raise Closed("hello with version %d" % hello.version)
    log("hello", version=hello.version)
    with lock:
        snapshot = list(pods.values())
    for pod in snapshot:
        send_add(conn, pod)
    request(conn, z.WorkloadRequest(snapshot_sent=z.SnapshotSent()), [], "", "snapshot")
    with lock:
        state["snapshots"] += 1
    while True:
        try:
            job, done = jobs.get(timeout=0.05)
        except queue.Empty:
            unprompted(conn)
            continue
        try:
            done["result"] = run_job(conn, job)
        except Closed as e:
            done["result"] = {"error": "connection closed: " + str(e), "closed": True}
            done["event"].set()
            raise
        done["event"].set()


def run_job(conn, job):
    z = pb["zds"]
    kind = job["kind"]
    if kind == "add":
        pod = job["pod"]
        with lock:
            pods[pod["uid"]] = pod
        return send_add(conn, pod)
    if kind == "del":
        with lock:
            pods.pop(job["uid"], None)
        return request(conn, z.WorkloadRequest(**{"del": z.DelWorkload(uid=job["uid"])}),
                       [], job["uid"], "del")
    if kind == "drop":
        raise Closed("dropped by the test")
    raw = job["raw"]
    uid = job.get("uid", "raw")
    pod = {"uid": uid, "name": uid, "namespace": "default", "serviceAccount": "default"}
    if raw == "add-no-fd":
        return request(conn, add_message(pod), [], uid, raw)
    if raw == "add-no-info":
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            return request(conn, add_message(pod, info=False), [fd], uid, raw)
        finally:
            os.close(fd)
    if raw == "add-not-netns":
        fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        try:
            return request(conn, add_message(pod), [fd], uid, raw)
        finally:
            os.close(fd)
    if raw == "del-with-fd":
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            return request(conn, z.WorkloadRequest(**{"del": z.DelWorkload(uid=uid)}), [fd],
                           uid, raw)
        finally:
            os.close(fd)
    if raw == "snapshot":
        return request(conn, z.WorkloadRequest(snapshot_sent=z.SnapshotSent()), [], uid, raw)
    return {"error": "unknown raw kind " + raw}


def accept_loop(listener):
    while True:
        conn, _ = listener.accept()
        with lock:
            state["connections"] += 1
            state["connected"] = True
        log("connected")
        try:
            serve_connection(conn)
        except (Closed, OSError) as e:
            log("disconnected", reason=str(e))
        finally:
            with lock:
                state["connected"] = False
            conn.close()


def submit(job, timeout=12.0):
    done = {"event": threading.Event()}
    jobs.put((job, done))
    if not done["event"].wait(timeout):
        return {"error": "no connected client"}
    return done["result"]


def submit_many(batch, timeout=60.0):
    """Queues every job at once (as the CNI learns many pods together), then waits for all."""
    dones = []
    for job in batch:
        done = {"event": threading.Event()}
        jobs.put((job, done))
        dones.append(done)
    deadline = time.time() + timeout
    results = []
    for done in dones:
        if not done["event"].wait(max(0.0, deadline - time.time())):
            results.append({"error": "not answered within %.0f s" % timeout})
        else:
            results.append(done["result"])
    return results


class Control(peerlib.JsonControl):
    def do_GET(self):
        if self.path == "/state":
            with lock:
                out = dict(state)
                out["acks"] = list(state["acks"])
                out["pods"] = sorted(pods)
            self.reply(200, out)
        else:
            self.reply(404, {})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/add":
                self.reply(200, submit({"kind": "add", "pod": body}))
            elif self.path == "/add-many":
                self.reply(200, submit_many([{"kind": "add", "pod": pod} for pod in body]))
            elif self.path == "/del":
                self.reply(200, submit({"kind": "del", "uid": body["uid"]}))
            elif self.path == "/raw":
                self.reply(200, submit({"kind": "raw", "raw": body["kind"],
                                        "uid": body.get("uid", "raw")}))
            elif self.path == "/drop":
                self.reply(200, submit({"kind": "drop"}))
            else:
                self.reply(404, {})
        except Exception as e:  # noqa: BLE001
            self.reply(400, {"error": str(e)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uds", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--control", default="127.0.0.1:15096")
    args = ap.parse_args()
    generate(args.proto_dir)
    if os.path.exists(args.uds):
        os.unlink(args.uds)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(args.uds)
    listener.listen(4)
    host, port = args.control.rsplit(":", 1)
    control = ThreadingHTTPServer((host.strip("[]"), int(port)), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    log("listening", uds=args.uds, control=args.control)
    accept_loop(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
