#!/usr/bin/python3
"""fake_pods.py: a stand-in for ztunnel's `GET /pods` (README.md, "Admin endpoints") for agent
scenarios run where ztunnel does not serve it yet.

It answers from what is real: which config ztunnel applied (the last `config applied ...
sha256="..."` line of its log, --ztunnel-log), the pods of that content (the file's bytes are
remembered by sha256 each time --config is read), and, per pod, whether something listens on
ztunnel's pod ports 15001 and 15008 inside the pod's network namespace (`nsenter --net=<netns>
ss -ltnH`), so `listeners` is true only once ztunnel really opened them. A pod the applied
config no longer has is listed as `draining` while its listeners are still open.
"""

import argparse
import hashlib
import json
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

config_path = None
log_path = None
contents = {}  # sha256 -> pods of that content
seen = {}  # uid -> netns, every pod of any content


def listening(netns):
    try:
        out = subprocess.run(["nsenter", "--net=" + netns, "ss", "-ltnH"], capture_output=True,
                             text=True, timeout=2).stdout
    except Exception:  # noqa: BLE001
        return False
    ports = {line.split()[3].rsplit(":", 1)[1] for line in out.splitlines() if line.strip()}
    return {"15001", "15008"} <= ports


def applied_sha():
    last = ""
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "config applied" in line and 'sha256="' in line:
                    last = line.split('sha256="', 1)[1].split('"', 1)[0]
    except OSError:
        pass
    return last


def answer():
    try:
        with open(config_path, "rb") as f:
            data = f.read()
        file_sha = hashlib.sha256(data).hexdigest()
        contents[file_sha] = json.loads(data).get("pods", [])
    except (OSError, ValueError):
        file_sha = ""
    sha = applied_sha() or file_sha
    pods = []
    current = contents.get(sha, [])
    for pod in current:
        seen[pod.get("uid", "")] = pod.get("netns", "")
        up = listening(pod.get("netns", ""))
        pods.append({"uid": pod.get("uid", ""), "netns": pod.get("netns", ""),
                     "state": "up" if up else "pending", "listeners": up,
                     "workloadKnown": False, "error": "", "sha256": sha})
    listed = {p["uid"] for p in pods}
    for uid, netns in seen.items():
        if uid not in listed and listening(netns):
            pods.append({"uid": uid, "netns": netns, "state": "draining", "listeners": True,
                         "workloadKnown": False, "error": "", "sha256": sha})
    return {"config": {"sha256": sha, "generation": len(contents)}, "pods": pods}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/pods":
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = json.dumps(answer()).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def main():
    global config_path, log_path
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:15100")
    ap.add_argument("--config", required=True)
    ap.add_argument("--ztunnel-log", required=True)
    args = ap.parse_args()
    config_path = args.config
    log_path = args.ztunnel_log
    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
