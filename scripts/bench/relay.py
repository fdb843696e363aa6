#!/usr/bin/python3
# relay.py: the relay section of `make bench`, run by scripts/bench/run.sh inside its own network
# namespace (loopback only, as docs/perf-anchors.md §2 measured). It starts the peers (iperf3 server,
# echo_server) and the relays under test (build/tools/zt_relay, HAProxy `mode tcp` with splice,
# socat), then in one go measures, for the direct path and through each relay:
#   - iperf3 throughput, 1 and 8 streams, RUNS runs each, and the relay's CPU (cores);
#   - 1 KiB request/response ping-pong on one connection (p50, p99);
#   - new-connection rate (connect, 1 byte each way, close), 1 and 4 client threads;
#   - relay memory per open idle relayed connection (RSS growth over IDLE_CONNS connections).
# It writes docs/bench/relay.md (tables with ratios to HAProxy and to direct, the exact commands,
# the machine) and docs/bench/relay.png (gnuplot), and keeps raw output under build/bench/.
# It must only ever talk to 127.0.0.1 inside the namespace run.sh made for it.
#
# Environment: RUNS (3), DURATION (5, seconds per iperf3/connrate run), PINGPONG_COUNT (50000),
# IDLE_CONNS (10000), SOCAT_IDLE_CONNS (200: socat forks a process per connection), RELAY_ARGS
# (extra zt_relay options after the script's own `--max-conns IDLE_CONNS+100`, default
# "--workers 1", like HAProxy's nbthread 1), ZT_RELAY (relay binary),
# BUILD (build), OUT_DIR (docs/bench).
import datetime
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
RUNS = int(os.environ.get("RUNS", "3"))
DURATION = float(os.environ.get("DURATION", "5"))
PINGPONG_COUNT = int(os.environ.get("PINGPONG_COUNT", "50000"))
IDLE_CONNS = int(os.environ.get("IDLE_CONNS", "10000"))
SOCAT_IDLE_CONNS = int(os.environ.get("SOCAT_IDLE_CONNS", "200"))
ZT_RELAY = os.environ.get("ZT_RELAY", os.path.join(BUILD, "tools", "zt_relay"))
RELAY_ARGS = shlex.split(os.environ.get("RELAY_ARGS", "--workers 1"))
TOOLS = os.path.join(BUILD, "tools")
# A relay holds two sockets per connection, so the fd limit caps the idle test; this sandbox's
# hard RLIMIT_NOFILE is 20000 and it lacks CAP_SYS_RESOURCE to raise it. HAProxy also reserves
# two fds per pipe (maxpipes) and refuses to start if 2 * maxconn + 2 * maxpipes exceeds the
# limit, so leave room for HAPROXY_MAXPIPES pipes (plenty: at most 8 connections are busy).
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
HAPROXY_MAXPIPES = 500
IDLE_CONNS_WANTED = IDLE_CONNS
IDLE_CONNS = max(1, min(IDLE_CONNS, (NOFILE - 2 * HAPROXY_MAXPIPES - 200) // 2))
HAPROXY_MAXCONN = IDLE_CONNS + 50
# zt_relay allocates its connection slots up front: size them like HAProxy's maxconn.
RELAY_ARGS = ["--max-conns", str(IDLE_CONNS + 100)] + RELAY_ARGS
CLK_TCK = os.sysconf("SC_CLK_TCK")

IPERF_PORT = 5201
ECHO_PORT = 7000
# path name -> (iperf3 port, echo port); "direct" has no relay process.
PATHS = {
    "direct": (IPERF_PORT, ECHO_PORT),
    "zt_relay": (5501, 7501),
    "haproxy": (5401, 7401),
    "socat": (5301, 7301),
}
LABELS = {
    "direct": "direct (no relay)",
    "zt_relay": "zt_relay (io_uring, splice)",
    "haproxy": "HAProxy 2.6 mode tcp, splice",
    "socat": "socat (fork per connection)",
}

HAPROXY_CFG = """global
    nbthread 1
    maxconn {maxconn}
    maxpipes {maxpipes}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen iperf
    bind 127.0.0.1:{iperf}
    option splice-request
    option splice-response
    server s 127.0.0.1:{iperf_target}
listen echo
    bind 127.0.0.1:{echo}
    option splice-auto
    server s 127.0.0.1:{echo_target}
"""

commands = []  # every measurement command line, for the report


def listening(port):
    """True when something listens on TCP port `port` (reads /proc, makes no connection)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def wait_listen(port, proc, secs=10):
    deadline = time.time() + secs
    while time.time() < deadline:
        if listening(port):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


class Server:
    """A background process whose output goes to build/bench/NAME.log."""

    def __init__(self, name, argv, ports):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(RAW_DIR, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        for port in ports:
            if not wait_listen(port, self.proc):
                self.stop()
                raise RuntimeError(f"{name} did not listen on {port}; see {self.log_path}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def cpu_seconds(pids):
    """utime+stime of `pids` plus their reaped children (socat's forks), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
        for child in children(pid):
            try:
                with open(f"/proc/{child}/stat") as f:
                    cf = f.read().rsplit(")", 1)[1].split()
                total += int(cf[11]) + int(cf[12])
            except OSError:
                pass
    return total / CLK_TCK


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_cmd(argv, timeout):
    line = " ".join(shlex.quote(a) for a in argv)
    if line not in commands:
        commands.append(line)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{line} failed ({res.returncode}): {res.stderr.strip()[-400:]}")
    return res.stdout


def stats(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def measured(path_pids, path, fn):
    """Runs fn() and returns (result, relay cores during it) for `path`."""
    pids = path_pids.get(path, [])
    c0, t0 = cpu_seconds(pids), time.time()
    result = fn()
    time.sleep(0.2)  # let socat reap its children so their CPU is counted
    c1, t1 = cpu_seconds(pids), time.time()
    return result, ((c1 - c0) / (t1 - t0) if pids else None)


def bench_iperf(paths, path_pids, results):
    for streams in (1, 8):
        key = f"iperf_{streams}"
        for run in range(RUNS):
            for path in paths:
                port = PATHS[path][0]
                argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", f"{DURATION:g}",
                        "-O", "1", "-P", str(streams), "-J"]
                out, cores = measured(path_pids, path, lambda: run_cmd(argv, DURATION + 60))
                gbps = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
                r = results.setdefault(path, {}).setdefault(key, {"gbps": [], "cores": []})
                r["gbps"].append(gbps)
                if cores is not None:
                    r["cores"].append(cores)
                log(f"iperf3 -P {streams} run {run + 1}/{RUNS} {path}: {gbps:.2f} Gbit/s"
                    + (f", relay {cores:.2f} cores" if cores is not None else ""))


def bench_pingpong(paths, path_pids, results):
    for run in range(RUNS):
        for path in paths:
            port = PATHS[path][1]
            argv = [f"{TOOLS}/pingpong", f"127.0.0.1:{port}", "1024", str(PINGPONG_COUNT), "1000"]
            out, _ = measured(path_pids, path, lambda: run_cmd(argv, 300))
            v = kv(out, "pingpong:")
            r = results.setdefault(path, {}).setdefault("pingpong", {"p50": [], "p99": []})
            r["p50"].append(v["p50_us"])
            r["p99"].append(v["p99_us"])
            log(f"pingpong run {run + 1}/{RUNS} {path}: p50 {v['p50_us']} us, p99 {v['p99_us']} us")


def bench_connrate(paths, path_pids, results):
    for threads in (1, 4):
        key = f"connrate_{threads}"
        for run in range(RUNS):
            for path in paths:
                port = PATHS[path][1]
                argv = [f"{TOOLS}/connrate", f"127.0.0.1:{port}", str(threads), f"{DURATION:g}"]
                out, cores = measured(path_pids, path, lambda: run_cmd(argv, DURATION + 60))
                v = kv(out, "connrate:")
                r = results.setdefault(path, {}).setdefault(
                    key, {"rate": [], "errors": [], "p50": [], "p99": [], "cores": []})
                r["rate"].append(v["rate"])
                r["errors"].append(v["errors"])
                r["p50"].append(v["p50_us"])
                r["p99"].append(v["p99_us"])
                if cores is not None:
                    r["cores"].append(cores)
                log(f"connrate -t {threads} run {run + 1}/{RUNS} {path}: {v['rate']:.0f}/s, "
                    f"errors {v['errors']:.0f}" +
                    (f", relay {cores:.2f} cores" if cores is not None else ""))
                # TIME_WAIT sockets of this run would otherwise slow the next path's connects.
                time.sleep(1)


def bench_idle_memory(path, start_relay, results):
    """RSS growth of a fresh relay holding IDLE_CONNS idle relayed connections (PSS summed over
    socat's forked children)."""
    count = SOCAT_IDLE_CONNS if path == "socat" else IDLE_CONNS
    relay = start_relay()
    try:
        time.sleep(0.3)
        before = pss_kib(relay.pid) if path == "socat" else rss_kib(relay.pid)
        argv = [f"{TOOLS}/idle_conns", f"127.0.0.1:{PATHS[path][1]}", str(count), "600"]
        line = " ".join(shlex.quote(a) for a in argv)
        if line not in commands:
            commands.append(line)
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        ready = holder.stdout.readline()
        m = re.match(r"idle_conns: ready (\d+)", ready)
        if not m or int(m.group(1)) != count:
            holder.stdin.close()
            holder.wait(30)
            raise RuntimeError(f"idle_conns via {path}: {ready.strip()} "
                               f"{holder.stderr.read().strip()}")
        time.sleep(1)  # let the relay settle (deferred frees, pool growth)
        if path == "socat":
            after = pss_kib(relay.pid) + sum(pss_kib(c) for c in children(relay.pid))
        else:
            after = rss_kib(relay.pid)
        holder.stdin.close()
        holder.wait(60)
    finally:
        relay.stop()
    per_conn = (after - before) * 1024 / count
    results.setdefault(path, {})["idle"] = {"conns": count, "before_kib": before,
                                            "after_kib": after, "bytes_per_conn": per_conn}
    log(f"idle memory {path}: {count} conns, {before} -> {after} KiB, "
        f"{per_conn:.0f} bytes per connection")


# --- relays ---------------------------------------------------------------------------------------

def start_zt_relay(tag, listen_port, target_port):
    argv = [ZT_RELAY, "--listen", f"127.0.0.1:{listen_port}", "--target",
            f"127.0.0.1:{target_port}"] + RELAY_ARGS
    return Server(f"zt_relay-{tag}", argv, [listen_port])


def start_haproxy(tag):
    cfg = os.path.join(RAW_DIR, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(maxconn=HAPROXY_MAXCONN, maxpipes=HAPROXY_MAXPIPES,
                                   iperf=PATHS["haproxy"][0], iperf_target=IPERF_PORT,
                                   echo=PATHS["haproxy"][1], echo_target=ECHO_PORT))
    return Server(f"haproxy-{tag}", ["haproxy", "-db", "-f", cfg], list(PATHS["haproxy"]))


def start_socat(tag, listen_port, target_port):
    argv = ["socat", f"TCP4-LISTEN:{listen_port},fork,reuseaddr,backlog=4096,bind=127.0.0.1",
            f"TCP4:127.0.0.1:{target_port}"]
    return Server(f"socat-{tag}-{listen_port}", argv, [listen_port])


# --- report ---------------------------------------------------------------------------------------

def fmt_stat(s, digits=1, scale=1.0):
    if not s or not s["runs"]:
        return "–"
    f = f"{{:.{digits}f}}"
    return (f"**{f.format(s['median'] * scale)}** "
            f"[{f.format(s['min'] * scale)}–{f.format(s['max'] * scale)}]")


def med(results, path, key, field):
    try:
        vals = results[path][key][field]
    except KeyError:
        return None
    return statistics.median(vals) if vals else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        rev = "unknown"
    return {
        "cores": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "iperf3": version(["iperf3", "--version"]), "haproxy": version(["haproxy", "-v"]),
        "rev": rev,
    }


def socat_version():
    out = subprocess.run(["socat", "-V"], capture_output=True, text=True).stdout
    m = re.search(r"socat version (\S+)", out)
    return m.group(1) if m else "unknown"


def write_report(paths, results, missing, m):
    os.makedirs(OUT_DIR, exist_ok=True)
    L = []
    L.append("# Relay benchmark: zt_relay against direct loopback, HAProxy and socat")
    L.append("")
    L.append(f"Generated by `make bench` (scripts/bench/run.sh relay → scripts/bench/relay.py) on "
             f"{m['date']}, commit `{m['rev']}`.")
    L.append("")
    L.append(f"- Machine: **{m['cores']} cores** ({m['cpu']}), {m['mem']}, kernel "
             f"`{m['kernel']}`.")
    L.append(f"- Peers: {m['iperf3']}; {m['haproxy'].split(' - ')[0]}; socat {socat_version()}.")
    L.append(f"- Method: everything on 127.0.0.1 inside a fresh network namespace (loopback only, "
             f"`ip_local_port_range` 1024–65000, `ulimit -n` raised), as docs/perf-anchors.md §2. "
             f"RUNS={RUNS} runs of each case, interleaved across paths, DURATION={DURATION:g} s "
             f"per iperf3/connrate run. Figures are **median [min–max]**.")
    L.append("- Relay cores = the relay process's utime+stime (socat: plus its reaped children) "
             "divided by wall time. On loopback the kernel charges part of the receive-side TCP "
             "work to whichever task sends, so cores are approximate and include kernel TCP work.")
    L.append(f"- zt_relay options: `{' '.join(RELAY_ARGS) or '(none)'}`; HAProxy: `nbthread 1`, "
             "`mode tcp`, `splice-request`+`splice-response` on the throughput proxy, "
             "`splice-auto` on the echo proxy; socat: default 8 KiB buffer, one fork per "
             "connection.")
    load = results.get("_load")
    if load:
        L.append(f"- Load average (1/5/15 min) before: {load['before']}, after: {load['after']} "
                 f"({load['seconds']} s of measurements). The benchmark itself keeps about 2–3 tasks "
                 "runnable; a load well above that means other work shared the cores and the "
                 "figures are noisy.")
    if missing:
        L.append(f"- **Not measured**: {', '.join(missing)}.")
    L.append("")

    def table(title, key, field, unit, digits=1, cores_key=None, per_conn=False):
        L.append(f"## {title}")
        L.append("")
        head = f"| path | {unit} | ×HAProxy | ×direct |"
        sep = "|---|---|---|---|"
        if cores_key:
            head += " relay cores |"
            sep += "---|"
        if per_conn:
            head += " relay CPU per connection |"
            sep += "---|"
        L.append(head)
        L.append(sep)
        hap = med(results, "haproxy", key, field)
        direct = med(results, "direct", key, field)
        for path in paths:
            if key not in results.get(path, {}):
                continue
            v = med(results, path, key, field)
            s = stats(results[path][key][field])
            row = (f"| {LABELS[path]} | {fmt_stat(s, digits)} | {ratio(v, hap)} | "
                   f"{ratio(v, direct)} |")
            if cores_key:
                c = stats(results[path][key].get(cores_key, []))
                row += f" {fmt_stat(c, 2)} |"
            if per_conn:
                c = med(results, path, key, cores_key)
                row += f" {c / v * 1e6:.0f} µs |" if c and v else " – |"
            L.append(row)
        L.append("")

    table("Throughput, iperf3, 1 stream", "iperf_1", "gbps", "Gbit/s", cores_key="cores")
    table("Throughput, iperf3, 8 streams (`-P 8`, one iperf3 thread)", "iperf_8", "gbps",
          "Gbit/s", cores_key="cores")
    table("Latency, 1 KiB ping-pong on one connection, p50", "pingpong", "p50", "p50 µs")
    table("Latency, 1 KiB ping-pong on one connection, p99", "pingpong", "p99", "p99 µs")
    table("New connections (connect, 1 byte each way, close), 1 client thread", "connrate_1",
          "rate", "connections/s", digits=0, cores_key="cores", per_conn=True)
    table("New connections, 4 client threads", "connrate_4", "rate", "connections/s", digits=0,
          cores_key="cores", per_conn=True)

    L.append("## Memory per open idle relayed connection")
    L.append("")
    L.append("| path | connections | relay memory before → after | growth per connection | "
             "total / connections |")
    L.append("|---|---|---|---|---|")
    for path in paths:
        idle = results.get(path, {}).get("idle")
        if not idle:
            continue
        how = "PSS, parent + forks" if path == "socat" else "RSS"
        L.append(f"| {LABELS[path]} | {idle['conns']} | {idle['before_kib']} → "
                 f"{idle['after_kib']} KiB ({how}) | **{idle['bytes_per_conn']:.0f} B** | "
                 f"{idle['after_kib'] * 1024 / idle['conns']:.0f} B |")
    L.append("")
    if IDLE_CONNS < IDLE_CONNS_WANTED:
        L.append(f"**{IDLE_CONNS} connections, not {IDLE_CONNS_WANTED}**: the fd limit here is "
                 f"{NOFILE} (hard RLIMIT_NOFILE, not raisable without CAP_SYS_RESOURCE) and a "
                 "relay holds two sockets per connection.")
        L.append("")
    L.append("Growth per connection is the target's measure (memory a relay adds per open idle "
             "connection); total / connections also charges the process's fixed memory, "
             "including anything allocated up front for the connection limit, to the connections.")
    L.append("")
    L.append("A fresh relay process is started for this test; each connection is proven with a "
             "1-byte echo, then held idle while the relay's memory is read. Kernel socket and pipe "
             "memory is not in RSS. socat forks one process per connection, so it is measured "
             f"with {SOCAT_IDLE_CONNS} connections and its PSS is summed over all its processes.")
    L.append("")

    # Targets of issue 2, item 9.
    L.append("## Targets (issue 2): zt_relay against HAProxy, same run")
    L.append("")
    L.append("| target | zt_relay | HAProxy | ratio | met |")
    L.append("|---|---|---|---|---|")

    def target(name, key, field, want, lower_better=False, unit=""):
        z, h = med(results, "zt_relay", key, field), med(results, "haproxy", key, field)
        if z is None or h is None:
            L.append(f"| {name} | – | – | – | not measured |")
            return
        r = z / h if h else 0
        met = (r <= want) if lower_better else (r >= want)
        L.append(f"| {name} | {z:.1f}{unit} | {h:.1f}{unit} | {r:.2f}× | "
                 f"{'yes' if met else '**no**'} |")
    target("throughput 1 stream ≥ 1.1× HAProxy", "iperf_1", "gbps", 1.1, unit=" Gbit/s")
    target("throughput 8 streams ≥ 1.1× HAProxy", "iperf_8", "gbps", 1.1, unit=" Gbit/s")
    target("ping-pong p50 ≤ HAProxy", "pingpong", "p50", 1.0, lower_better=True, unit=" µs")
    target("ping-pong p99 ≤ HAProxy", "pingpong", "p99", 1.0, lower_better=True, unit=" µs")
    target("new connections/s ≥ 1.2× HAProxy (1 thread)", "connrate_1", "rate", 1.2)
    idle = results.get("zt_relay", {}).get("idle")
    if idle:
        ok = idle["bytes_per_conn"] <= 4096
        L.append(f"| memory per idle connection ≤ 4 KiB | {idle['bytes_per_conn']:.0f} B | – | – | "
                 f"{'yes' if ok else '**no**'} |")
    else:
        L.append("| memory per idle connection ≤ 4 KiB | – | – | – | not measured |")
    L.append("")

    L.append("## Commands")
    L.append("")
    L.append("```sh")
    L.append("# one-shot (root): make bench   (= scripts/bench/run.sh relay; RUNS=, DURATION= "
             "override)")
    L.append("ip netns add zt-bench<PID>-lo && ip -n zt-bench<PID>-lo link set lo up")
    L.append("ip netns exec zt-bench<PID>-lo sysctl -w net.ipv4.ip_local_port_range='1024 65000'")
    L.append(f"ulimit -n {NOFILE}   # the hard limit; it caps the idle test (see above)")
    L.append("# peers and relays (all on 127.0.0.1 in that netns)")
    L.append(f"iperf3 -s -p {IPERF_PORT}")
    L.append(f"{TOOLS}/echo_server 127.0.0.1:{ECHO_PORT}")
    for port, target in zip(PATHS["zt_relay"], (IPERF_PORT, ECHO_PORT)):
        L.append(f"{ZT_RELAY} --listen 127.0.0.1:{port} --target 127.0.0.1:{target} "
                 f"{' '.join(RELAY_ARGS)}")
    L.append(f"haproxy -db -f {RAW_DIR}/haproxy.cfg   # below")
    for port, target in zip(PATHS["socat"], (IPERF_PORT, ECHO_PORT)):
        L.append(f"socat TCP4-LISTEN:{port},fork,reuseaddr,backlog=4096,bind=127.0.0.1 "
                 f"TCP4:127.0.0.1:{target}")
    L.append("# measurements (port = the path's iperf3 or echo port)")
    L.extend(commands)
    L.append("```")
    L.append("")
    L.append("HAProxy configuration:")
    L.append("")
    L.append("```")
    L.append(HAPROXY_CFG.format(maxconn=HAPROXY_MAXCONN, maxpipes=HAPROXY_MAXPIPES,
                                   iperf=PATHS["haproxy"][0], iperf_target=IPERF_PORT,
                                echo=PATHS["haproxy"][1], echo_target=ECHO_PORT).rstrip())
    L.append("```")
    L.append("")
    L.append("![relay benchmark](relay.png)")
    L.append("")
    with open(os.path.join(OUT_DIR, "relay.md"), "w") as f:
        f.write("\n".join(L))
    with open(os.path.join(RAW_DIR, "relay.json"), "w") as f:
        json.dump({"machine": m, "results": results, "commands": commands}, f, indent=1)


def write_plot(paths, results):
    """Four panels: throughput (1 and 8 streams), ping-pong p50/p99, connection rate, memory."""
    dat = os.path.join(RAW_DIR, "relay.dat")

    def cells(path, key, field):
        return triple(results, path, key, field)
    with open(dat, "w") as f:
        f.write("# path iperf1(med min max) iperf8 p50 p99 conn1 conn4 idle_growth idle_total\n")
        for path in paths:
            idle = results.get(path, {}).get("idle")
            f.write(" ".join([
                f'"{path}"', cells(path, "iperf_1", "gbps"), cells(path, "iperf_8", "gbps"),
                cells(path, "pingpong", "p50"), cells(path, "pingpong", "p99"),
                cells(path, "connrate_1", "rate"), cells(path, "connrate_4", "rate"),
                f"{max(idle['bytes_per_conn'], 1):.0f}" if idle else "NaN",
                f"{idle['after_kib'] * 1024 / idle['conns']:.0f}" if idle else "NaN"]) + "\n")
    png = os.path.join(OUT_DIR, "relay.png")
    panels = f"""
set title "iperf3 throughput (Gbit/s)"
plot "{dat}" using 2:3:4:xtic(1) title "1 stream", "" using 5:6:7 title "8 streams"
set title "1 KiB ping-pong latency (µs, lower is better, log scale)"
set logscale y
set yrange [1:*]
plot "{dat}" using 8:9:10:xtic(1) title "p50", "" using 11:12:13 title "p99"
unset logscale y
set yrange [0:*]
set title "new connections per second"
plot "{dat}" using 14:15:16:xtic(1) title "1 thread", "" using 17:18:19 title "4 threads"
set title "memory per idle relayed connection (bytes, log scale)"
set style histogram clustered gap 1
set logscale y
set yrange [1:*]
plot "{dat}" using 20:xtic(1) title "growth per connection", "" using 21 title "total / connections"
"""
    return render_plot(RAW_DIR, "relay", png, "1400,900", "2,2", "Relay benchmark", panels)


def main():
    os.makedirs(RAW_DIR, exist_ok=True)
    paths = ["direct"]
    missing = []
    if os.access(ZT_RELAY, os.X_OK):
        paths.append("zt_relay")
    else:
        missing.append(f"zt_relay ({ZT_RELAY} is not built)")
    paths += ["haproxy", "socat"]
    servers = []
    path_pids = {}
    try:
        servers.append(Server("iperf3", ["iperf3", "-s", "-p", str(IPERF_PORT)], [IPERF_PORT]))
        servers.append(Server("echo_server", [f"{TOOLS}/echo_server", f"127.0.0.1:{ECHO_PORT}"],
                              [ECHO_PORT]))
        if "zt_relay" in paths:
            a = start_zt_relay("iperf", PATHS["zt_relay"][0], IPERF_PORT)
            b = start_zt_relay("echo", PATHS["zt_relay"][1], ECHO_PORT)
            servers += [a, b]
            path_pids["zt_relay"] = [a.pid, b.pid]
        h = start_haproxy("main")
        servers.append(h)
        path_pids["haproxy"] = [h.pid]
        s1 = start_socat("main", PATHS["socat"][0], IPERF_PORT)
        s2 = start_socat("main", PATHS["socat"][1], ECHO_PORT)
        servers += [s1, s2]
        path_pids["socat"] = [s1.pid, s2.pid]
        results = {}
        load_before = loadavg()
        t0 = time.time()
        bench_iperf(paths, path_pids, results)
        bench_pingpong(paths, path_pids, results)
        bench_connrate(paths, path_pids, results)
        # Memory needs fresh relay processes; stop the shared ones first so their connections
        # and fds do not count.
        for srv in servers[2:]:
            srv.stop()
        servers = servers[:2]
        if "zt_relay" in paths:
            bench_idle_memory("zt_relay", lambda: start_zt_relay(
                "idle", PATHS["zt_relay"][1], ECHO_PORT), results)
        bench_idle_memory("haproxy", lambda: start_haproxy("idle"), results)
        bench_idle_memory("socat", lambda: start_socat("idle", PATHS["socat"][1], ECHO_PORT),
                          results)
        results["_load"] = {"before": load_before, "after": loadavg(),
                            "seconds": round(time.time() - t0)}
        log(f"measurements took {time.time() - t0:.0f} s")
    finally:
        for srv in servers:
            srv.stop()
    m = machine()
    write_report(paths, results, missing, m)
    plotted = write_plot(paths, results)
    log(f"wrote {OUT_DIR}/relay.md" + (f" and {OUT_DIR}/relay.png" if plotted else ""))
    return 0 if plotted else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as err:
        log(f"failed: {err}")
        sys.exit(1)
