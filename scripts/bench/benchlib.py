"""benchlib.py: what the benchmark scripts (relay.py, hbone.py) share: logging, /proc readings,
parsing the `key=value` summary lines of the C++ bench tools, and rendering a gnuplot histogram
page with median bars and min-max whiskers."""

import os
import platform
import re
import statistics
import subprocess


def log(msg):
    print(f"bench: {msg}", flush=True)


def rss_kib(pid):
    """VmRSS of `pid` in KiB (0 when unknown)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def kv(text, prefix):
    """The `k=v` pairs of the first line of `text` starting with `prefix`, as floats."""
    for line in text.splitlines():
        if line.startswith(prefix):
            return {k: float(v.rstrip("/s")) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}
    raise RuntimeError(f"no '{prefix}' line in: {text[-300:]}")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def triple(results, path, key, field):
    """`median min max` of results[path][key][field] for a gnuplot data file, or NaNs."""
    vals = results.get(path, {}).get(key, {}).get(field) or []
    if not vals:
        return "NaN NaN NaN"
    return f"{statistics.median(vals):.3f} {min(vals):.3f} {max(vals):.3f}"


def render_plot(raw_dir, name, png, size, layout, title, panels):
    """Writes raw_dir/name.gp and runs gnuplot: a multiplot page of histograms with error bars.
    `panels` is the gnuplot text of the panels (titles and plot commands). False on failure."""
    script = f"""
set terminal pngcairo size {size} font ",10" noenhanced
set output "{png}"
set datafile missing "NaN"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set key below horizontal
set grid ytics
set yrange [0:*]
set multiplot layout {layout} title "{title} (median, whiskers min–max; {os.cpu_count()} cores, kernel {platform.release()})"
{panels}
unset multiplot
"""
    gp = os.path.join(raw_dir, f"{name}.gp")
    with open(gp, "w") as f:
        f.write(script)
    res = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        log(f"gnuplot failed: {res.stderr.strip()[-400:]}")
        return False
    return True
