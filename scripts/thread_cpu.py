#!/usr/bin/env python3
"""CPU seconds per thread of a command, and another process's CPU over the same span.

Usage: thread_cpu.py WATCH_PID COMMAND [ARGS...]
Runs COMMAND, samples /proc/<pid>/task/*/stat every 20 ms (the last sample of each thread counts;
a thread that ends between samples loses at most 20 ms), and prints one JSON line: wall seconds,
WATCH_PID's CPU seconds over the run (e.g. the embedded cluster both tools send to), CPU seconds
by thread name (librdkafka's `rdk:broker*` threads summed) and the command's last output line.
Used for BENCHMARKS.md, "what sets the produce ratio".
"""
import os, subprocess, sys, time, json, collections
watch = int(sys.argv[1]); cmd = sys.argv[2:]
tck = os.sysconf('SC_CLK_TCK')
def threads(pid):
    out = {}
    try:
        for t in os.listdir(f'/proc/{pid}/task'):
            try:
                s = open(f'/proc/{pid}/task/{t}/stat').read()
                name = s[s.index('(')+1:s.rindex(')')]
                f = s[s.rindex(')')+2:].split()
                out[t] = (name, (int(f[11]) + int(f[12])) / tck)
            except Exception: pass
    except Exception: pass
    return out
def total(pid):
    f = open(f'/proc/{pid}/stat').read(); f = f[f.rindex(')')+2:].split()
    return (int(f[11]) + int(f[12])) / tck
w0 = total(watch); t0 = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
last = {}
while p.poll() is None:
    th = threads(p.pid)
    for k, v in th.items(): last[k] = v
    time.sleep(0.02)
out = p.stdout.read().decode()
w1 = total(watch); el = time.time() - t0
by = collections.Counter()
for name, cpu in last.values():
    n = 'rdk:broker' if name.startswith('rdk:broker') else name
    by[n] += cpu
print(json.dumps({"wall": round(el, 2), "server_cpu": round(w1 - w0, 2), "threads": {k: round(v, 2) for k, v in by.most_common()}, "tail": out.strip().splitlines()[-1][:300] if out.strip() else ""}))
