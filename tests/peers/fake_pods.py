#!/usr/bin/python3
"""fake_pods.py: a stand-in for ztunnel's `GET /pods` (README.md, "Admin endpoints") for agent
scenarios run where ztunnel does not serve it yet.

It answers from what is real: the config file ztunnel reads (--config: its sha256 is the file's
bytes' sha256, each pod's netns is read from it) and, per pod, whether something listens on
ztunnel's pod ports 15001 and 15008 inside the pod's network namespace (`nsenter --net=<netns>
ss -ltnH`), so `listeners` is true only once ztunnel really opened them. A pod removed from the
file disappears at once (ztunnel would list it as `draining` until its drain ends).
"""

import argparse
import hashlib
import json
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

config_path = None


def listening(netns):
    try:
        out = subprocess.run(["nsenter", "--net=" + netns, "ss", "-ltnH"], capture_output=True,
                             text=True, timeout=2).stdout
    except Exception:  # noqa: BLE001
        return False
    ports = {line.split()[3].rsplit(":", 1)[1] for line in out.splitlines() if line.strip()}
    return {"15001", "15008"} <= ports


def answer():
    try:
        with open(config_path, "rb") as f:
            data = f.read()
    except OSError:
        return {"config": {"sha256": "", "generation": 0}, "pods": []}
    sha = hashlib.sha256(data).hexdigest()
    try:
        config = json.loads(data)
    except ValueError:
        config = {}
    pods = []
    for pod in config.get("pods", []):
        up = listening(pod.get("netns", ""))
        pods.append({"uid": pod.get("uid", ""), "netns": pod.get("netns", ""),
                     "state": "up" if up else "pending", "listeners": up,
                     "workloadKnown": False, "error": "", "sha256": sha})
    return {"config": {"sha256": sha, "generation": 1}, "pods": pods}


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
    global config_path
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:15100")
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    config_path = args.config
    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
