#!/usr/bin/python3
"""soak_report.py: writes the soak's note (scripts/soak.sh, `make soak`) from its samples.

Inputs: the samples (t, node, RSS KiB, fds, threads, CPU ticks every 10 s per ztunnel), the
peer's running totals and summary (tests/peers/soak_peer.py), the sanitizer report directory and
the counts of reloads and rotations. Output: a Markdown note (a table of one row a minute, the
least-squares slopes of RSS and fds after warm-up, what was lost, sanitizer reports, a verdict)
and a plot beside it (same name, .png, drawn by gnuplot), and the raw samples (NAME-samples.tsv). Exit 0 only when nothing was lost, every
reload and rotation applied, both ztunnels stopped and no sanitizer report was written; the
slopes are reported for a reader to judge, not gated (a shared machine's noise moves them).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_samples(path):
    series = {}
    with open(path) as f:
        next(f)
        for line in f:
            t, node, rss, fds, threads, ticks = line.split()
            series.setdefault(int(node), []).append(
                {"t": int(t), "rss": int(rss), "fds": int(fds), "threads": int(threads),
                 "ticks": int(ticks)})
    for rows in series.values():
        prev = None
        for row in rows:
            if prev is None or row["t"] == prev["t"]:
                row["cpu"] = None
            else:
                row["cpu"] = 100.0 * (row["ticks"] - prev["ticks"]) / CLK_TCK / (row["t"] - prev["t"])
            prev = row
    return series


def slope(points):
    """Least-squares slope and intercept of (x, y) points; (0, mean) when x does not vary."""
    n = len(points)
    if n < 2:
        return 0.0, points[0][1] if points else 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0, my
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx
    return b, my - b * mx


def last_json_line(path):
    last = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        last = json.loads(line)
                    except ValueError:
                        pass
    except OSError:
        pass
    return last or {}


def sanitizer_reports(directory):
    reports = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name), errors="replace") as f:
            text = f.read()
        lines = [l for l in text.splitlines() if "ERROR" in l or "SUMMARY" in l or "runtime error" in l]
        reports.append((name, lines[:3] or text.splitlines()[:2]))
    return reports


def plot(series, warmup, png, title):
    data = png[:-4] + ".dat"
    with open(data, "w") as f:
        for node in sorted(series):
            f.write(f"# node{node}\n")
            for row in series[node]:
                f.write(f"{row['t'] / 60:.3f} {row['rss'] / 1024:.1f} {row['fds']}\n")
            f.write("\n\n")
    script = f"""
set terminal pngcairo size 1000,640 font ",10" noenhanced
set output "{png}"
set multiplot layout 2,1 title "{title}"
set grid
set key top left
set xlabel "minutes"
set arrow 1 from {warmup / 60:.3f}, graph 0 to {warmup / 60:.3f}, graph 1 nohead dt 2
set ylabel "RSS (MiB)"
plot "{data}" index 0 using 1:2 with lines lw 2 title "node1 ztunnel (client side)", \\
     "{data}" index 1 using 1:2 with lines lw 2 title "node2 ztunnel (server side)"
set ylabel "open fds"
plot "{data}" index 0 using 1:3 with lines lw 2 title "node1 ztunnel", \\
     "{data}" index 1 using 1:3 with lines lw 2 title "node2 ztunnel"
unset multiplot
"""
    gp = png[:-4] + ".gp"
    with open(gp, "w") as f:
        f.write(script)
    try:
        res = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
        ok = res.returncode == 0
        if not ok:
            print("soak_report: gnuplot: " + res.stderr.strip()[-300:], file=sys.stderr)
    except OSError as err:
        print(f"soak_report: gnuplot: {err}", file=sys.stderr)
        ok = False
    os.unlink(gp)
    os.unlink(data)
    return ok


def main():
    ap = argparse.ArgumentParser()
    for name in ("samples", "after", "peer-stats", "peer-summary", "sanitizer-dir", "out", "duration"):
        ap.add_argument("--" + name, required=True)
    for name in ("idle", "rate", "reloads", "reload-failures", "rotations", "rotation-failures",
                 "stop-failures", "peer-exit"):
        ap.add_argument("--" + name, type=int, required=True)
    args = ap.parse_args()

    series = read_samples(args.samples)
    # The raw samples beside the note, for a reader who wants more than one row a minute.
    with open(args.samples) as src, open(os.path.splitext(args.out)[0] + "-samples.tsv", "w") as dst:
        dst.write(src.read())
    after_load = read_samples(args.after) if os.path.exists(args.after) else {}
    end = max((rows[-1]["t"] for rows in series.values() if rows), default=0)
    warmup = max(60, int(end * 0.2))
    peer = last_json_line(args.peer_summary)
    reports = sanitizer_reports(args.sanitizer_dir)

    fits = {}
    for node, rows in series.items():
        after = [r for r in rows if r["t"] >= warmup]
        rss_b, rss_a = slope([(r["t"] / 3600, r["rss"] / 1024) for r in after])
        fds_b, fds_a = slope([(r["t"] / 3600, r["fds"]) for r in after])
        fits[node] = {"rss": rss_b, "fds": fds_b, "n": len(after),
                      "rss_at_warmup": rss_a + rss_b * warmup / 3600,
                      "span_h": (end - warmup) / 3600}

    lost = {k: peer.get(k, "?") for k in ("mismatch", "error", "idle_lost", "late")}
    problems = []
    if args.peer_exit != 0:
        problems.append(f"the load peer exited {args.peer_exit}")
    for k in ("mismatch", "error", "idle_lost"):
        if lost[k] != 0:
            problems.append(f"{k}: {lost[k]}")
    if peer.get("idle_open") != args.idle:
        problems.append(f"idle tunnels opened: {peer.get('idle_open')} of {args.idle}")
    if args.reload_failures:
        problems.append(f"{args.reload_failures} config rewrites not applied within 10 s")
    if args.rotation_failures:
        problems.append(f"{args.rotation_failures} certificates not loaded within 5 s")
    if args.stop_failures:
        problems.append(f"{args.stop_failures} ztunnels did not exit on SIGTERM")
    if reports:
        problems.append(f"{len(reports)} sanitizer report(s)")

    png = os.path.splitext(args.out)[0] + ".png"
    title = f"soak {args.duration}: {args.idle} idle tunnels + {args.rate} conn/s, ASan+UBSan"
    plotted = plot(series, warmup, png, title) if series else False

    out = []
    w = out.append
    w("# Soak (L7): `make soak`")
    w("")
    w(f"Written by `scripts/soak.sh` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC "
      f"({os.cpu_count()} cores shared with other work, kernel {platform.release()}). "
      f"Duration {args.duration}; {args.idle} idle tunnels and {args.rate} new connections/s "
      "(1 B–16 KiB echoed, each byte checked) from the client pod through both ztunnels (HBONE) "
      "to an echo server; a config rewrite every 10 s (a workload added and one removed, a Deny "
      "policy toggled, every open connection re-evaluated); new certificates for three identities "
      "every 5 min (file mode); both ztunnels are the ASan + UBSan build (`build-asan/`, "
      "quarantine 16 MiB), 2 workers each. Samples every 10 s.")
    w("")
    w("**Verdict: " + ("pass**" if not problems else "FAIL** — " + "; ".join(problems)))
    w("")
    w("## Slopes after warm-up")
    w("")
    w(f"Least squares over the samples from {warmup} s (the first 20 % of the run, at least "
      "60 s, is warm-up) to the end. The goal is flat: no growth after warm-up.")
    w("")
    w("| ztunnel | samples | RSS at warm-up (MiB) | RSS slope (MiB/h) | fds slope (fds/h) |")
    w("|---|---|---|---|---|")
    for node in sorted(fits):
        f = fits[node]
        w(f"| node{node} | {f['n']} | {f['rss_at_warmup']:.1f} | {f['rss']:+.2f} | {f['fds']:+.2f} |")
    w("")
    w("## Traffic")
    w("")
    w("| churn connections started | echoed exactly | mismatches | errors | late (backlog full) | "
      "idle tunnels open / lost | idle checks | config rewrites (not applied) | "
      "rotations (not loaded) |")
    w("|---|---|---|---|---|---|---|---|---|")
    w(f"| {peer.get('started', '?')} | {peer.get('ok', '?')} | {lost['mismatch']} | {lost['error']} | "
      f"{lost['late']} | {peer.get('idle_open', '?')} / {lost['idle_lost']} | "
      f"{peer.get('idle_checks', '?')} | {args.reloads} ({args.reload_failures}) | "
      f"{args.rotations} ({args.rotation_failures}) |")
    if peer.get("errors"):
        w("")
        w("First errors: " + "; ".join(f"`{e}`" for e in peer["errors"][:5]))
    w("")
    w("## Sanitizer reports")
    w("")
    if not reports:
        w("None (ASan, LSan at exit after SIGTERM, UBSan).")
    for name, lines in reports:
        w(f"- `{name}`: " + " / ".join(f"`{l.strip()}`" for l in lines))
    w("")
    w("## Samples (one row a minute)")
    w("")
    if plotted:
        w(f"![RSS and fds over time]({os.path.basename(png)})")
        w("")
    nodes = sorted(series)
    head = "| minute |" + "".join(f" node{n} RSS (MiB) | fds | threads | CPU % |" for n in nodes)
    w(head)
    w("|---|" + "---|---|---|---|" * len(nodes))
    by_t = {n: {r["t"]: r for r in series[n]} for n in nodes}
    times = sorted(set(r["t"] for n in nodes for r in series[n]))
    shown = []
    for t in times:
        if not shown or t - shown[-1] >= 60 or t == times[-1]:
            shown.append(t)
    for t in shown:
        cells = [f"{t / 60:.1f}"]
        for n in nodes:
            r = by_t[n].get(t)
            if r is None:
                cells += ["–"] * 4
            else:
                cpu = "–" if r["cpu"] is None else f"{r['cpu']:.0f}"
                cells += [f"{r['rss'] / 1024:.1f}", str(r["fds"]), str(r["threads"]), cpu]
        w("| " + " | ".join(cells) + " |")
    if after_load:
        cells = ["after the load"]
        for n in nodes:
            r = after_load.get(n, [None])[0]
            cells += ["–"] * 4 if r is None else [f"{r['rss'] / 1024:.1f}", str(r["fds"]), str(r["threads"]), "–"]
        w("| " + " | ".join(cells) + " |")
        w("")
        w("The last row is 5 s after the load ended (the idle tunnels closed too): the fds the first "
          "row had, plus the HBONE connections the pool keeps until they idle out.")
    w("")
    with open(args.out, "w") as f:
        f.write("\n".join(out))
    print(f"soak_report: {'pass' if not problems else 'FAIL: ' + '; '.join(problems)}")
    for node in sorted(fits):
        print(f"soak_report: node{node} RSS slope {fits[node]['rss']:+.2f} MiB/h, "
              f"fds slope {fits[node]['fds']:+.2f} /h")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
