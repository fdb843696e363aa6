#!/usr/bin/python3
# connprof.py: instructions and allocations per connection from scripts/bench/connprof.sh's dumps.
# Usage: connprof.py DIR [DIR...]. For each side (zt1 client, zt2 server): total Ir of the
# connections' interval minus the idle interval's Ir rate times the interval's length (the
# shim's capped waits), divided by N; and calls to malloc/calloc/realloc (the allocator's entry
# points; operator new calls malloc) per connection, likewise corrected.
import re
import sys

ALLOC = {"malloc", "calloc", "realloc", "aligned_alloc", "posix_memalign", "memalign"}


def parse(path):
    total = 0
    names = {}
    allocs = 0
    cfn = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                cfn = names.get(m.group(1), "")
            elif line.startswith("calls=") and cfn is not None:
                if cfn.split("'")[0] in ALLOC:
                    allocs += int(line.split("=")[1].split()[0])
                cfn = None
    return total, allocs


for d in sys.argv[1:]:
    n = int(open(f"{d}/n.txt").read())
    t = dict(kv.split("=") for kv in open(f"{d}/times.txt").read().split())
    idle_s, conns_s = float(t["idle_s"]), float(t["conns_s"])
    print(f"{d}: N={n} idle={idle_s:.1f}s conns={conns_s:.1f}s "
          f"{open(d + '/conns.txt').read().strip()}")
    for side in ("zt1", "zt2"):
        ir_i, al_i = parse(f"{d}/{side}.idle.callgrind")
        ir_c, al_c = parse(f"{d}/{side}.callgrind")
        corr_ir = ir_i / idle_s * conns_s
        corr_al = al_i / idle_s * conns_s
        print(f"  {side}: Ir/conn={(ir_c - corr_ir) / n:,.0f} (raw {ir_c / n:,.0f}, idle "
              f"{ir_i / idle_s:,.0f}/s) allocs/conn={(al_c - corr_al) / n:.1f} "
              f"(raw {al_c / n:.1f})")
