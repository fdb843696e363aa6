#!/usr/bin/python3
# hbone.py: the measuring half of `make bench T=hbone`, run by scripts/bench/hbone.sh once the
# two-node netns mesh and its peers are up (the namespaces and pids come in the environment).
# In one run it measures, medians of RUNS runs with min–max:
#   - iperf3 1 and 8 streams: direct pod to pod (plain → plainsrv, no ztunnel), through both
#     ztunnels over HBONE (captured client → captured server), and through the client ztunnel
#     into nghttpx standing in for node 2's ztunnel (client → pyhbone); CPU seconds per GB of
#     each ztunnel and of nghttpx from /proc/PID/stat;
#   - 1 KiB ping-pong p50/p99 on one warm connection, direct against two ztunnels;
#   - new pooled tunnels per second (connrate: connect, 1 byte each way, close) through the mesh;
#   - new mTLS handshakes per second with the pool disabled: the same connrate while node 1's
#     ztunnel runs with POOL_MAX_STREAMS_PER_CONNECTION=1 (restarted for this part only, then
#     restarted with its original environment), so every connection is a new HBONE connection;
#     CPU µs per handshake and handshakes per CPU-second of each ztunnel;
#   - memory per idle tunnel: RSS of both ztunnels before, with IDLE_CONNS idle tunnels open,
#     and after they close;
#   - the cost of a waypoint (issue 16): the same connrate from the client pod, interleaved, to
#     the server pod directly (client ztunnel → pooled HBONE → server ztunnel) and to service
#     wpbench, whose waypoint is tests/peers/waypoint_peer.py in pod waypoint on node 2 (client
#     ztunnel → pooled HBONE → waypoint → new HBONE connection → server ztunnel), then directly
#     again paced (scripts/bench/paced_conns.py) at the rate the waypoint path reached; CPU µs per
#     connection of each ztunnel and of the waypoint. The python waypoint is the bottleneck of
#     that path, so the figure is CPU per connection on our ztunnels at equal rates, not the rate.
# It rewrites the "End to end" section of docs/bench/hbone.md (keeping the rest of the file)
# and writes docs/bench/hbone.png with gnuplot; raw results go to build/bench/hbone.json.
# It only ever runs clients inside the mesh's zt-* namespaces against 198.18.0.0/15 addresses.
#
# Environment: RUNS (3), DURATION (5 s per iperf3/connrate run), PINGPONG_COUNT (20000),
# IDLE_CONNS (10000, capped by the fd limit), CONNRATE_THREADS (1), BUILD, OUT_DIR (docs/bench),
# and from hbone.sh: NS_PLAIN NS_CLIENT NS_NODE1 NS_NODE2 ZT1_PID ZT2_PID NGHTTPX_PID NGHTTPX_CMD
# WAYPOINT_PID WAYPOINT_CMD MESH_WORK.
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time

from benchlib import kv, loadavg, log, render_plot, rss_kib, triple

BUILD = os.environ.get("BUILD", "build")
OUT_DIR = os.environ.get("OUT_DIR", "docs/bench")
RAW_DIR = os.path.join(BUILD, "bench")
TOOLS = os.path.join(BUILD, "tools")
RUNS = int(os.environ.get("RUNS", "3"))
DURATION = float(os.environ.get("DURATION", "5"))
PINGPONG_COUNT = int(os.environ.get("PINGPONG_COUNT", "20000"))
CONNRATE_THREADS = int(os.environ.get("CONNRATE_THREADS", "1"))
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
IDLE_CONNS_WANTED = int(os.environ.get("IDLE_CONNS", "10000"))
# PARTS picks measurements (comma list) for tuning work; the report is written only by a full run.
ALL_PARTS = ("iperf", "pingpong", "connrate", "idle", "handshake", "waypoint")
PARTS = [p for p in os.environ.get("PARTS", ",".join(ALL_PARTS)).split(",") if p]
# idle_conns holds one fd per tunnel and so does each ztunnel (plus its own listeners, pools
# and rings): leave 1,000 fds of headroom under the (shared, inherited) limit.
IDLE_CONNS = max(1, min(IDLE_CONNS_WANTED, NOFILE - 1000))
CLK_TCK = os.sysconf("SC_CLK_TCK")
ENV = os.environ
NS_PLAIN, NS_CLIENT = ENV["NS_PLAIN"], ENV["NS_CLIENT"]
PIDS = {"zt1": int(ENV["ZT1_PID"]), "zt2": int(ENV["ZT2_PID"]),
        "nghttpx": int(ENV["NGHTTPX_PID"]), "waypoint": int(ENV["WAYPOINT_PID"])}

# path -> (client namespace, target IP, processes in the path)
PATHS = {
    "direct": (NS_PLAIN, "198.18.2.3", []),
    "hbone": (NS_CLIENT, "198.18.2.2", ["zt1", "zt2"]),
    "nghttpx": (NS_CLIENT, "198.18.2.4", ["zt1", "nghttpx"]),
}
LABELS = {
    "direct": "direct pod → pod (no ztunnel)",
    "hbone": "client ztunnel → HBONE → server ztunnel (ours both ends)",
    "nghttpx": "client ztunnel → HBONE → nghttpx --http2-proxy",
}
# Connection-rate paths only (not in PATHS, which iperf3 and the plot walk): service wpbench's VIP
# and port, whose waypoint re-originates HBONE to the server pod's echo_server.
WAYPOINT_PATH = (NS_CLIENT, "198.19.0.30", ["zt1", "zt2", "waypoint"])
LABELS["waypoint"] = ("client ztunnel → HBONE → python waypoint → HBONE → server ztunnel "
                      "(service wpbench)")
PROC_LABELS = {"zt1": "client ztunnel", "zt2": "server ztunnel", "nghttpx": "nghttpx",
               "waypoint": "python waypoint"}
commands = []
failures = []  # failed runs that were retried


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + argv


def record(ns, argv):
    line = f"ip netns exec {ns} " + " ".join(shlex.quote(a) for a in argv)
    line = re.sub(r"zt-hbench\d+-", "zt-hbench<PID>-", line)
    if line not in commands:
        commands.append(line)


def run_cmd(ns, argv, timeout):
    record(ns, argv)
    res = subprocess.run(in_ns(ns, argv), capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{argv} in {ns} failed ({res.returncode}): "
                           f"{(res.stdout + res.stderr).strip()[-400:]}")
    return res.stdout


def cpu_seconds(pid):
    """utime+stime of `pid` and of its live children (nghttpx works in a forked worker)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def bench_iperf(results):
    for streams in (1, 8):
        key = f"iperf_{streams}"
        for run in range(RUNS):
            for path, (ns, ip, procs) in PATHS.items():
                argv = ["iperf3", "-c", ip, "-p", "5201", "-t", f"{DURATION:g}",
                        "-P", str(streams), "-J"]
                # A run whose iperf3 fails (seen through nghttpx: "unable to send control
                # message") is retried once and counted in the report, not silently dropped.
                for attempt in (1, 2):
                    c0 = {p: cpu_seconds(PIDS[p]) for p in procs}
                    try:
                        out = run_cmd(ns, argv, DURATION + 60)
                    except RuntimeError as err:
                        out = json.dumps({"error": str(err)[-300:]})
                    c1 = {p: cpu_seconds(PIDS[p]) for p in procs}
                    doc = json.loads(out)
                    if "error" not in doc and "sum_received" in doc.get("end", {}):
                        break
                    failures.append(f"iperf3 -P {streams} via {path}: {doc.get('error', '?')}")
                    log(f"FAILED, retrying once: {failures[-1]}")
                    time.sleep(1)
                else:
                    raise RuntimeError(failures[-1])
                end = doc["end"]
                gbps = end["sum_received"]["bits_per_second"] / 1e9
                gb = end["sum_received"]["bytes"] / 1e9
                r = results.setdefault(path, {}).setdefault(key, {"gbps": []})
                r["gbps"].append(gbps)
                msg = f"iperf3 -P {streams} run {run + 1}/{RUNS} {path}: {gbps:.2f} Gbit/s"
                for p in procs:
                    s_per_gb = (c1[p] - c0[p]) / gb if gb else 0
                    r.setdefault(f"cpu_{p}", []).append(s_per_gb)
                    msg += f", {p} {s_per_gb:.2f} CPU s/GB"
                log(msg)


def bench_pingpong(results):
    for run in range(RUNS):
        for path in ("direct", "hbone"):
            ns, ip, _ = PATHS[path]
            argv = [f"{TOOLS}/pingpong", f"{ip}:7000", "1024", str(PINGPONG_COUNT), "1000"]
            v = kv(run_cmd(ns, argv, 300), "pingpong:")
            r = results.setdefault(path, {}).setdefault("pingpong", {"p50": [], "p99": []})
            r["p50"].append(v["p50_us"])
            r["p99"].append(v["p99_us"])
            log(f"pingpong run {run + 1}/{RUNS} {path}: p50 {v['p50_us']} us, p99 {v['p99_us']} us")


def connrate_run(results, path, key, label):
    """One build/tools/connrate run on `path`: appends rate, errors, p50, p99 and each process's
    CPU µs per connection (and connections per CPU-second) to results[path][key]; returns the
    log line."""
    ns, ip, procs = WAYPOINT_PATH if path == "waypoint" else PATHS[path]
    argv = [f"{TOOLS}/connrate", f"{ip}:7000", str(CONNRATE_THREADS), f"{DURATION:g}"]
    c0 = {p: cpu_seconds(PIDS[p]) for p in procs}
    v = kv(run_cmd(ns, argv, DURATION + 60), "connrate:")
    c1 = {p: cpu_seconds(PIDS[p]) for p in procs}
    r = results.setdefault(path, {}).setdefault(key, {"rate": [], "errors": [], "p50": [], "p99": []})
    for k, f in (("rate", "rate"), ("errors", "errors"), ("p50", "p50_us"), ("p99", "p99_us")):
        r[k].append(v[f])
    msg = f"{label}: {v['rate']:.0f}/s, errors {v['errors']:.0f}"
    for p in procs:
        cpu = c1[p] - c0[p]
        r.setdefault(f"cpu_us_{p}", []).append(cpu / v["conns"] * 1e6 if v["conns"] else 0)
        r.setdefault(f"per_core_{p}", []).append(v["conns"] / cpu if cpu > 0 else 0)
        msg += f", {p} {r[f'cpu_us_{p}'][-1]:.0f} CPU µs/conn"
    time.sleep(1)  # let this run's TIME_WAIT sockets settle before the next one
    return msg


def bench_connrate(results):
    for run in range(RUNS):
        for path in ("direct", "hbone"):
            log(connrate_run(results, path, "connrate", f"connrate run {run + 1}/{RUNS} {path}"))


def zt1_ready(timeout_s=15):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        res = subprocess.run(in_ns(ENV["NS_NODE1"], ["curl", "-sf", "-o", "/dev/null",
                                                     "http://127.0.0.1:15021/healthz/ready"]),
                             capture_output=True, timeout=10)
        if res.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def restart_zt1(env):
    """Stops node 1's ztunnel (SIGTERM, SIGKILL after 10 s) and starts it again in its namespace
    with the same arguments and environment `env`, its log appended to the mesh's zt1.log;
    updates PIDS["zt1"]. The mesh's trap ends it like any process of the mesh's namespaces."""
    pid = PIDS["zt1"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    os.kill(pid, 15)
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.05)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, 9)
        time.sleep(0.2)
    with open(os.path.join(ENV["MESH_WORK"], "zt1.log"), "ab") as logf:
        proc = subprocess.Popen(in_ns(ENV["NS_NODE1"], ["env", "-i"]
                                      + [f"{k}={v}" for k, v in env.items()] + argv),
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    PIDS["zt1"] = proc.pid  # `ip netns exec` and `env` exec, so this is the ztunnel itself
    if not zt1_ready():
        raise RuntimeError(f"node 1's ztunnel did not become ready after a restart ({argv})")


def zt1_environ():
    with open(f"/proc/{PIDS['zt1']}/environ", "rb") as f:
        pairs = [e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e]
    return dict(pairs)


def bench_handshake(results):
    original = zt1_environ()
    restart_zt1({**original, "POOL_MAX_STREAMS_PER_CONNECTION": "1"})
    commands.append("# handshake: node 1's ztunnel restarted with POOL_MAX_STREAMS_PER_CONNECTION=1"
                    " for this row only")
    try:
        for run in range(RUNS):
            log(connrate_run(results, "hbone", "handshake", f"handshake run {run + 1}/{RUNS}"))
    finally:
        restart_zt1(original)


def cpu_seconds_threads(pid):
    """CPU time of `pid`'s live threads from /proc/PID/task/*/schedstat (nanoseconds, where
    /proc/PID/stat counts 10 ms ticks): the waypoint part's slow path makes ~100 connections a
    run, too few for ticks. A ztunnel's threads live as long as it does, so none is missed."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            continue
    return total / 1e9


def waypoint_run(results, path, label, paced_rate=None):
    """One run of the waypoint part on `path` ("hbone": the server pod directly; "waypoint":
    service wpbench): connrate as fast as it goes, or scripts/bench/paced_conns.py at
    `paced_rate`/s (stored as path "hbone_paced"). Appends rate, errors, p50, p99 and CPU µs per
    connection of each process to results[path]["waypoint"]; returns the rate."""
    ip = WAYPOINT_PATH[1] if path == "waypoint" else PATHS["hbone"][1]
    procs = WAYPOINT_PATH[2] if path == "waypoint" else ["zt1", "zt2"]
    if paced_rate:
        argv = ["/usr/bin/python3", "scripts/bench/paced_conns.py", f"{ip}:7000",
                f"{paced_rate:g}", f"{DURATION:g}"]
        prefix, key = "paced:", "hbone_paced"
    else:
        argv = [f"{TOOLS}/connrate", f"{ip}:7000", str(CONNRATE_THREADS), f"{DURATION:g}"]
        prefix, key = "connrate:", path

    def cpu(p):
        return cpu_seconds(PIDS[p]) if p == "waypoint" else cpu_seconds_threads(PIDS[p])
    c0 = {p: cpu(p) for p in procs}
    v = kv(run_cmd(NS_CLIENT, argv, DURATION + 60), prefix)
    c1 = {p: cpu(p) for p in procs}
    r = results.setdefault(key, {}).setdefault("waypoint", {"rate": [], "errors": [], "p50": [],
                                                            "p99": []})
    for k, f in (("rate", "rate"), ("errors", "errors"), ("p50", "p50_us"), ("p99", "p99_us")):
        r[k].append(v[f])
    msg = f"{label}: {v['rate']:.0f}/s, errors {v['errors']:.0f}"
    for p in procs:
        r.setdefault(f"cpu_us_{p}", []).append((c1[p] - c0[p]) / v["conns"] * 1e6
                                               if v["conns"] else 0)
        msg += f", {p} {r[f'cpu_us_{p}'][-1]:.0f} CPU µs/conn"
    log(msg)
    time.sleep(1)  # let this run's TIME_WAIT sockets settle before the next one
    return v["rate"]


def bench_waypoint(results):
    # Node 1's ztunnel idle over DURATION: what a slower path's per-connection figure would be
    # charged for time alone (timers, the config watch), reported beside the rows.
    c0 = cpu_seconds_threads(PIDS["zt1"])
    time.sleep(DURATION)
    idle_us = (cpu_seconds_threads(PIDS["zt1"]) - c0) * 1e6
    results.setdefault("waypoint_idle", {}).setdefault("zt1_cpu_us", []).append(idle_us)
    log(f"waypoint: node 1's ztunnel idle for {DURATION:g} s used {idle_us:.0f} CPU µs")
    for run in range(RUNS):
        waypoint_run(results, "hbone", f"waypoint run {run + 1}/{RUNS} direct")
        rate = waypoint_run(results, "waypoint", f"waypoint run {run + 1}/{RUNS} waypoint")
        # The direct path again at the rate the waypoint allowed, so that both ztunnels batch
        # alike and the ratio compares one hop with one hop, not a busy ztunnel with an idle one.
        waypoint_run(results, "hbone", f"waypoint run {run + 1}/{RUNS} direct paced",
                     paced_rate=max(1, round(rate)))


def bench_idle(results):
    ns, ip, procs = PATHS["hbone"]
    argv = [f"{TOOLS}/idle_conns", f"{ip}:7000", str(IDLE_CONNS), "600"]
    record(ns, argv)
    time.sleep(1)
    before = {p: rss_kib(PIDS[p]) for p in procs}
    holder = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    ready = holder.stdout.readline()
    m = re.match(r"idle_conns: ready (\d+)", ready)
    if not m or int(m.group(1)) != IDLE_CONNS:
        holder.stdin.close()
        holder.wait(60)
        raise RuntimeError(f"idle_conns: {ready.strip()} {holder.stderr.read().strip()[-300:]}")
    time.sleep(1)
    during = {p: rss_kib(PIDS[p]) for p in procs}
    holder.stdin.close()
    holder.wait(120)
    time.sleep(3)  # let both ztunnels see the closes and free the tunnels
    after = {p: rss_kib(PIDS[p]) for p in procs}
    idle = {"conns": IDLE_CONNS}
    for p in procs:
        idle[p] = {"before_kib": before[p], "during_kib": during[p], "after_kib": after[p],
                   "bytes_per_tunnel": (during[p] - before[p]) * 1024 / IDLE_CONNS}
        log(f"idle {p}: {IDLE_CONNS} tunnels, RSS {before[p]} -> {during[p]} -> {after[p]} KiB, "
            f"{idle[p]['bytes_per_tunnel']:.0f} B per tunnel")
    results["idle"] = idle


# --- report ---------------------------------------------------------------------------------------

def st(vals):
    return (statistics.median(vals), min(vals), max(vals)) if vals else None


def fmt(vals, digits=1):
    s = st(vals)
    if not s:
        return "–"
    f = f"{{:.{digits}f}}"
    return f"**{f.format(s[0])}** [{f.format(s[1])}–{f.format(s[2])}]"


def med(results, path, key, field):
    vals = results.get(path, {}).get(key, {}).get(field) or []
    return statistics.median(vals) if vals else None


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "iperf3": version(["iperf3", "--version"]), "nghttpx": version(["nghttpx", "--version"])}


def section(results, m):
    L = ["## End to end", ""]
    L.append("Written by `make bench T=hbone` (scripts/bench/hbone.sh sets up the two-node netns "
             "mesh of scripts/e2e/lib/mesh.sh, scripts/bench/hbone.py measures). Every figure is "
             f"the **median** [min–max] of {RUNS} runs, all paths interleaved in one run on the "
             "same machine: iperf3, both ztunnels (2 workers each, log level "
             f"{ENV.get('MESH_LOG_LEVEL', 'warn')}), nghttpx and the kernel share "
             f"{m['cores']} cores.")
    L.append("")
    load = results.get("_load", {})
    L.append(f"Machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}; {m['iperf3']}; "
             f"{m['nghttpx']}. Load average before {load.get('before', '?')}, after "
             f"{load.get('after', '?')} (the machine was shared; the measurements took "
             f"{load.get('seconds', '?')} s). CPU s/GB = utime+stime of that process "
             "(/proc/PID/stat) over the GB iperf3 received; `perf stat` cycles are not available "
             "on this VM.")
    L.append("")
    for streams in (1, 8):
        key = f"iperf_{streams}"
        title = "1 stream" if streams == 1 else "8 streams (`-P 8`, one iperf3 thread)"
        L.append(f"### Throughput, iperf3, {title}")
        L.append("")
        L.append("| path | Gbit/s | / direct | client ztunnel CPU s/GB | server side CPU s/GB |")
        L.append("|---|---|---|---|---|")
        d = med(results, "direct", key, "gbps")
        for path, (_, _, procs) in PATHS.items():
            r = results.get(path, {}).get(key, {})
            v = med(results, path, key, "gbps")
            ratio = f"{v / d:.2f}×" if v and d else "–"
            c1 = fmt(r.get(f"cpu_{procs[0]}", []), 2) if procs else "–"
            c2 = (fmt(r.get(f"cpu_{procs[1]}", []), 2) + f" ({PROC_LABELS[procs[1]]})"
                  if procs else "–")
            L.append(f"| {LABELS[path]} | {fmt(r.get('gbps', []), 2)} | {ratio} | {c1} | {c2} |")
        L.append("")
    if failures:
        L.append(f"**{len(failures)} iperf3 run(s) failed and were retried once**: "
                 + "; ".join(f"`{x}`" for x in failures))
        L.append("")
    L.append("### Latency, 1 KiB ping-pong on one warm connection (µs)")
    L.append("")
    L.append("| path | p50 | p99 |")
    L.append("|---|---|---|")
    for path in ("direct", "hbone"):
        r = results.get(path, {}).get("pingpong", {})
        L.append(f"| {LABELS[path]} | {fmt(r.get('p50', []))} | {fmt(r.get('p99', []))} |")
    L.append("")
    L.append(f"### New connections through a pooled tunnel ({CONNRATE_THREADS} client thread; "
             "connect, 1 byte each way, close)")
    L.append("")
    L.append("| path | connections/s | errors | latency p50 µs | p99 µs | client ztunnel CPU µs/conn "
             "| server ztunnel CPU µs/conn |")
    L.append("|---|---|---|---|---|---|---|")
    for path in ("direct", "hbone"):
        r = results.get(path, {}).get("connrate", {})
        L.append(f"| {LABELS[path]} | {fmt(r.get('rate', []), 0)} | {fmt(r.get('errors', []), 0)} "
                 f"| {fmt(r.get('p50', []), 0)} | {fmt(r.get('p99', []), 0)} | "
                 f"{fmt(r.get('cpu_us_zt1', []), 0)} | {fmt(r.get('cpu_us_zt2', []), 0)} |")
    L.append("")
    L.append("The client pod, the uncaptured client and **the server pod** run with "
             "`net.ipv4.tcp_tw_reuse=1` and `ip_local_port_range=\"1024 65000\"`: node 2's "
             "ztunnel connects to the workload from inside the server pod and is the side that "
             "closes first, so its TIME_WAIT sockets pile up there; with the pod's defaults the "
             "rate fell from ~1,900/s to ~150/s within 15 s of connrate (measured while writing "
             "this benchmark). A pod with default sysctls will see that under connection churn.")
    L.append("")
    L.append("### New mTLS handshakes (pool disabled)")
    L.append("")
    L.append("| path | handshakes/s (wall) | errors | latency p50 µs | p99 µs | client ztunnel "
             "CPU µs/handshake | server ztunnel CPU µs/handshake | client ztunnel handshakes per "
             "CPU-second | server ztunnel handshakes per CPU-second |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    r = results.get("hbone", {}).get("handshake", {})
    L.append(f"| {LABELS['hbone']}, POOL_MAX_STREAMS_PER_CONNECTION=1 on node 1 | "
             f"{fmt(r.get('rate', []), 0)} | {fmt(r.get('errors', []), 0)} | "
             f"{fmt(r.get('p50', []), 0)} | {fmt(r.get('p99', []), 0)} | "
             f"{fmt(r.get('cpu_us_zt1', []), 0)} | {fmt(r.get('cpu_us_zt2', []), 0)} | "
             f"{fmt(r.get('per_core_zt1', []), 0)} | {fmt(r.get('per_core_zt2', []), 0)} |")
    L.append("")
    L.append("The same connrate as above (connect, 1 byte each way, close; one client thread) "
             "while node 1's ztunnel runs with `POOL_MAX_STREAMS_PER_CONNECTION=1`, ztunnel's way "
             "of disabling the pool: every connection opens a new HBONE connection, a full TLS 1.3 "
             "mutual handshake (ECDSA P-256 certificates, leaf + local-CA root), carries one "
             "CONNECT stream and closes. The CPU figures are therefore per new connection with "
             "its handshake; \"per CPU-second\" = handshakes per second of one fully busy core.")
    L.append("")
    L.extend(waypoint_section(results))
    idle = results.get("idle")
    L.append("### Memory per open idle tunnel (RSS)")
    L.append("")
    if idle:
        L.append("| process | tunnels | before | with the tunnels open | after they closed | "
                 "growth per tunnel | after / before |")
        L.append("|---|---|---|---|---|---|---|")
        for p in ("zt1", "zt2"):
            i = idle[p]
            L.append(f"| {PROC_LABELS[p]} | {idle['conns']} | {i['before_kib']} KiB | "
                     f"{i['during_kib']} KiB | {i['after_kib']} KiB | "
                     f"**{i['bytes_per_tunnel']:.0f} B** | "
                     f"{i['after_kib'] / i['before_kib']:.2f} |")
        L.append("")
        if IDLE_CONNS < IDLE_CONNS_WANTED:
            L.append(f"**{IDLE_CONNS} tunnels, not {IDLE_CONNS_WANTED}**: the hard fd limit here "
                     f"is {NOFILE}.")
            L.append("")
        L.append("Each tunnel is a TCP connection from the client pod proven with a 1-byte echo "
                 "(all multiplexed on pooled HBONE connections), then held idle. Kernel socket "
                 "memory is not in RSS. \"Before\" is taken after the other parts ran; once the "
                 "tunnels close each worker trims its heap (malloc_trim), which also returns what "
                 "earlier parts left, so \"after\" may be below \"before\".")
        L.append("")

    L.append("### Targets (issue 9)")
    L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")

    def row(name, value, ok):
        L.append(f"| {name} | {value} | {'–' if ok is None else ('yes' if ok else '**no**')} |")
    for streams in (1, 8):
        h = med(results, "hbone", f"iperf_{streams}", "gbps")
        n = med(results, "nghttpx", f"iperf_{streams}", "gbps")
        d = med(results, "direct", f"iperf_{streams}", "gbps")
        row(f"our HBONE server ≥ 1.5× nghttpx, same client ({streams} stream"
            f"{'s' if streams > 1 else ''})",
            f"{h / n:.2f}× ({h:.2f} vs {n:.2f} Gbit/s)" if h and n else "–",
            (h / n >= 1.5) if h and n else None)
        row(f"HBONE ≥ 0.3× direct ({streams} stream{'s' if streams > 1 else ''})",
            f"{h / d:.2f}× ({h:.2f} vs {d:.2f} Gbit/s)" if h and d else "–",
            (h / d >= 0.3) if h and d else None)
    for q, want in (("p50", 40), ("p99", 80)):
        h, d = med(results, "hbone", "pingpong", q), med(results, "direct", "pingpong", q)
        row(f"added {q} over two ztunnels ≤ {want} µs",
            f"{h - d:.0f} µs ({h:.0f} vs {d:.0f})" if h and d else "–",
            (h - d <= want) if h and d else None)
    c = med(results, "hbone", "connrate", "rate")
    row("≥ 10,000 new pooled tunnels/s", f"{c:.0f}/s" if c else "–", (c >= 10000) if c else None)
    if idle:
        for p in ("zt1", "zt2"):
            i = idle[p]
            row(f"≤ 8 KiB per idle tunnel, {PROC_LABELS[p]}", f"{i['bytes_per_tunnel']:.0f} B",
                i["bytes_per_tunnel"] <= 8192)
            back = i["after_kib"] / i["before_kib"]
            # Below the baseline counts as back: the baseline is taken after the other parts,
            # and the trim after the tunnels close also returns what those left in the heap.
            row(f"memory back to baseline (≤ +10 %), {PROC_LABELS[p]}", f"{back:.2f}×",
                back <= 1.10)
    for p in ("zt1", "zt2"):
        h = med(results, "hbone", "handshake", f"per_core_{p}")
        row(f"≥ 2,000 mTLS handshakes/s per core (pool disabled), {PROC_LABELS[p]}",
            f"{h:.0f}/s per core" if h else "–", (h >= 2000) if h else None)
    L.append("")
    L.append("### Commands")
    L.append("")
    L.append("```sh")
    L.append("make bench T=hbone       # as root; RUNS=, DURATION=, IDLE_CONNS=, PINGPONG_COUNT= "
             "override")
    L.append("# topology: scripts/e2e/lib/mesh.sh (mesh_up), node ztunnels: ztunnel run --config "
             "nodeN.json --ca-dir CA --node nodeN --workers 2 --log-level warn")
    L.append("# peers (scripts/bench/hbone.sh): iperf3 -s -p 5201 in plainsrv, server and pyhbone; "
             "echo_server 0.0.0.0:7000 in plainsrv and server;")
    L.append("# connect_proxy 127.0.0.1:3128 and, in pyhbone's netns:")
    L.append(re.sub(r" +", " ", re.sub(r"/tmp/tmp[^/ ]+", "$MESH_WORK", ENV.get("NGHTTPX_CMD", ""))))
    L.append("# in the waypoint pod's netns (198.18.2.5; service wpbench 198.19.0.30:7000 names it):")
    L.append(waypoint_cmd())
    L.append("# measurements")
    L.extend(commands)
    L.append("```")
    L.append("")
    L.append("![HBONE end to end](hbone.png)")
    L.append("")
    return "\n".join(L)


def waypoint_cmd():
    return re.sub(r" +", " ", re.sub(r"/tmp/tmp[^/ ]+", "$MESH_WORK", ENV.get("WAYPOINT_CMD", "")))


def waypoint_section(results):
    """The `waypoint` part's table and figure (issue 16's goal), as markdown lines."""
    L = ["### Through a waypoint (issue 16)", ""]
    L.append(f"The connrate above ({CONNRATE_THREADS} client thread; connect, 1 byte each way, "
             "close) from the client pod, three paths interleaved run by run: to the server pod's "
             "echo_server directly (as fast as it goes, and again paced by "
             "scripts/bench/paced_conns.py at the rate the waypoint path reached in that run), and "
             "to service wpbench (`198.19.0.30:7000`) whose `waypoint` is "
             "`tests/peers/waypoint_peer.py` (the independent python3-h2 waypoint of "
             "scripts/e2e/waypoint.sh) in an uncaptured pod on node 2. Node 1's ztunnel routes "
             "the VIP to the waypoint as HBONE on its pooled connection (`:authority` "
             "`198.19.0.30:7000`, the waypoint's identity expected); the waypoint opens a **new "
             "HBONE connection per request** (a full mutual TLS handshake) to node 2's ztunnel "
             "for `198.18.2.2:7000`. Our ztunnels' CPU is summed over their threads from "
             "/proc/PID/task/*/schedstat (ns); the waypoint's from /proc/PID/stat (10 ms ticks, "
             "which keep the CPU of its ended threads).")
    L.append("")
    L.append("| path | connections/s | errors | latency p50 µs | p99 µs | client ztunnel CPU µs/conn "
             "| server ztunnel CPU µs/conn | python waypoint CPU µs/conn |")
    L.append("|---|---|---|---|---|---|---|---|")
    labels = {"hbone": LABELS["hbone"] + ", as fast as it goes",
              "hbone_paced": LABELS["hbone"] + ", paced at the waypoint path's rate",
              "waypoint": LABELS["waypoint"]}
    for path in ("hbone", "hbone_paced", "waypoint"):
        r = results.get(path, {}).get("waypoint", {})
        L.append(f"| {labels[path]} | {fmt(r.get('rate', []), 0)} | {fmt(r.get('errors', []), 0)} "
                 f"| {fmt(r.get('p50', []), 0)} | {fmt(r.get('p99', []), 0)} | "
                 f"{fmt(r.get('cpu_us_zt1', []), 0)} | {fmt(r.get('cpu_us_zt2', []), 0)} | "
                 f"{fmt(r.get('cpu_us_waypoint', []), 0) if path == 'waypoint' else '–'} |")
    L.append("")

    def m(path, field):
        return med(results, path, "waypoint", field)
    f1, p1, w1 = m("hbone", "cpu_us_zt1"), m("hbone_paced", "cpu_us_zt1"), m("waypoint", "cpu_us_zt1")
    f2, p2, w2 = m("hbone", "cpu_us_zt2"), m("hbone_paced", "cpu_us_zt2"), m("waypoint", "cpu_us_zt2")
    fr, wr, wp = m("hbone", "rate"), m("waypoint", "rate"), m("waypoint", "cpu_us_waypoint")
    wl = m("waypoint", "p50")
    idle = (results.get("waypoint_idle") or {}).get("zt1_cpu_us") or []
    if p1 and w1:
        ok = "met" if w1 / p1 <= 1.1 else "**missed**"
        runs = [(w, p) for w, p in zip(results["waypoint"]["waypoint"]["cpu_us_zt1"],
                                       results["hbone_paced"]["waypoint"]["cpu_us_zt1"]) if p]
        L.append("**Goal: a waypoint connection adds no more than one pooled-HBONE hop's cost** "
                 "(node 1's ztunnel CPU per connection through the waypoint / direct at the same "
                 "rate ≤ ~1.1, since it still makes exactly one pooled HBONE hop): "
                 f"**{w1 / p1:.2f}×** ({w1:.0f} vs {p1:.0f} µs): {ok}"
                 + (f" (run by run: {', '.join(f'{w / p:.2f}×' for w, p in runs)})" if runs else "")
                 + "."
                 + (f" Against the direct path as fast as it goes ({f1:.0f} µs) it is "
                    f"{w1 / f1:.2f}×: at {fr / wr:.0f}× the rate, fixed costs (the idle CPU below, "
                    "each wakeup) spread over more connections." if f1 and fr and wr else ""))
        L.append("")
    if p2 and w2:
        L.append(f"Node 2's ztunnel: {w2:.0f} µs per connection through the waypoint against "
                 f"{p2:.0f} µs direct at the same rate ({w2 / p2:.2f}×)"
                 + (f" and {f2:.0f} µs as fast as it goes" if f2 else "") + ": through the "
                 "waypoint each connection reaches it on a new HBONE connection (the python "
                 "waypoint pools nothing), so its cost there is an inbound mutual TLS handshake "
                 "plus the stream, as in the pool-disabled handshake row, not a pooled stream. A "
                 "waypoint that pooled its upstream HBONE connections would bring that back "
                 "towards the pooled stream's cost.")
        L.append("")
    if fr and wr and wp:
        L.append(f"The python waypoint is the bottleneck of that path, not our ztunnels: "
                 f"{wr:.0f} connections/s against {fr:.0f}/s direct, p50 {wl / 1000:.0f} ms a "
                 f"connection, its own CPU {wp:.0f} µs per connection (a thread and a new TLS "
                 "client handshake per request, under one interpreter lock). Hence the figure "
                 "is CPU per connection on our ztunnels at equal rates, not the rate"
                 + (f". Idle for {DURATION:g} s node 1's ztunnel used "
                    f"{statistics.median(idle) / 1000:.1f} ms of CPU with no traffic, "
                    f"{statistics.median(idle) / (DURATION * wr):.0f} µs of each connection's "
                    "figure in both rows at that rate" if idle else "") + ".")
        L.append("")
    return L


def write_report(results, m):
    path = os.path.join(OUT_DIR, "hbone.md")
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        old = "# hbone/ benchmarks\n"
    # Keep everything but an earlier "End to end" section (which runs to the next "## " or EOF).
    keep = re.sub(r"\n## End to end\n.*?(?=\n## |\Z)", "", old, flags=re.S).rstrip("\n")
    with open(path, "w") as f:
        f.write(keep + "\n\n" + section(results, m))
    with open(os.path.join(RAW_DIR, "hbone.json"), "w") as f:
        json.dump({"machine": m, "results": results, "commands": commands}, f, indent=1)


def write_plot(results):
    dat = os.path.join(RAW_DIR, "hbone.dat")

    def cells(path, key, field):
        return triple(results, path, key, field)
    with open(dat, "w") as f:
        f.write("# path iperf1(med min max) iperf8 p50 p99\n")
        for path in PATHS:
            f.write(" ".join([f'"{path}"', cells(path, "iperf_1", "gbps"),
                              cells(path, "iperf_8", "gbps"), cells(path, "pingpong", "p50"),
                              cells(path, "pingpong", "p99")]) + "\n")
    png = os.path.join(OUT_DIR, "hbone.png")
    panels = f"""
set title "iperf3 throughput (Gbit/s)"
plot "{dat}" using 2:3:4:xtic(1) title "1 stream", "" using 5:6:7 title "8 streams"
set title "1 KiB ping-pong latency (µs, lower is better)"
plot "{dat}" every ::0::1 using 8:9:10:xtic(1) title "p50", "" every ::0::1 using 11:12:13 title "p99"
"""
    return render_plot(RAW_DIR, "hbone", png, "1200,500", "1,2", "HBONE end to end", panels)


def main():
    os.makedirs(RAW_DIR, exist_ok=True)
    os.makedirs(OUT_DIR, exist_ok=True)
    results = {}
    load_before = loadavg()
    t0 = time.time()
    for part in PARTS:
        if part not in ALL_PARTS:
            log(f"unknown part {part!r}; parts are {','.join(ALL_PARTS)}")
            return 1
    for part in PARTS:
        globals()[f"bench_{part}"](results)
    results["_load"] = {"before": load_before, "after": loadavg(),
                        "seconds": round(time.time() - t0)}
    log(f"measurements took {time.time() - t0:.0f} s")
    if sorted(PARTS) != sorted(ALL_PARTS):
        partial = os.path.join(RAW_DIR, "hbone-partial.json")
        with open(partial, "w") as f:
            json.dump(results, f, indent=1)
        log(f"PARTS={','.join(PARTS)}: docs not rewritten; results in {partial}")
        if "waypoint" in PARTS:
            # The section a full run would write, for reading (or pasting) on its own.
            md = os.path.join(RAW_DIR, "hbone-waypoint.md")
            with open(md, "w") as f:
                f.write("\n".join(waypoint_section(results) + ["```sh", waypoint_cmd()]
                                   + [c for c in commands] + ["```", ""]))
            log(f"waypoint section in {md}")
        return 0
    m = machine()
    write_report(results, m)
    plotted = write_plot(results)
    log(f"wrote {OUT_DIR}/hbone.md" + (f" and {OUT_DIR}/hbone.png" if plotted else ""))
    return 0 if plotted else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as err:
        log(f"failed: {err}")
        sys.exit(1)
