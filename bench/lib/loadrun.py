#!/usr/bin/python3
"""One bounded load run, and how busy the proxy and the load generator were.

    loadrun.py PROXY_PID OUT.json [--parallel N] [--watch NAME=PID ...] -- COMMAND ARGS...

COMMAND is wrk (its requests/s, socket errors and non-2xx are parsed),
`openssl s_time -new` (N copies run in parallel; the rate is the sum of
their connections divided by the wall time of the batch) or handshakes.py
(N copies; the rate is the sum of each copy's connections / its own
window). Adds the CPU time the proxy (PROXY_PID and its children) and the
load generator used during the run, as a share of one core: a load
generator near 100% of its core means the client, not the proxy, limited
the rate. --watch adds the CPU share of another process (and its children),
e.g. the journald that receives the proxy's logs.
"""

import json
import os
import re
import resource
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime+stime of pid and its direct children (seconds)."""
    pids = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            pass
    return total / TICK


def main():
    proxy, out = int(sys.argv[1]), sys.argv[2]
    opts = sys.argv[3:sys.argv.index("--")]
    parallel = int(opts[opts.index("--parallel") + 1]) if "--parallel" in opts else 1
    watch = dict(opts[i + 1].split("=", 1) for i, o in enumerate(opts) if o == "--watch")
    watch = {name: int(pid) for name, pid in watch.items()}
    argv = sys.argv[sys.argv.index("--") + 1:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = {name: cpu_seconds(pid) for name, pid in watch.items()}
    p0, t0 = cpu_seconds(proxy), time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(parallel)]
    texts = [p.communicate(timeout=180)[0] for p in procs]
    p1, t1 = cpu_seconds(proxy), time.monotonic()
    w1 = {name: cpu_seconds(pid) for name, pid in watch.items()}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p, text in zip(procs, texts):
        if p.returncode != 0:
            sys.exit(f"loadrun: {argv[0]} failed ({p.returncode}):\n{text}")
    text = "\n".join(texts)
    wall = t1 - t0

    def num(pattern, default=0.0):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    if any(os.path.basename(a) == "handshakes.py" for a in argv):
        runs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        if len(runs) != parallel:
            sys.exit(f"loadrun: {len(runs)} of {parallel} handshakes.py copies reported:\n{text}")
        conns = sum(r["connections"] for r in runs)
        rate = sum(r["connections"] / r["seconds"] for r in runs)
        errors, non2xx = sum(r["errors"] for r in runs), 0
    elif "s_time" in argv:
        # "N connections in T real seconds, ..." per process.
        conns = sum(int(n) for n in re.findall(r"(\d+) connections in \d+ real seconds", text))
        rate, errors, non2xx = conns / wall, 0, 0
    else:
        rate, conns = num(r"Requests/sec:\s+([\d.]+)"), int(num(r"(\d+) requests in"))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        errors = sum(int(x) for x in m.groups()) if m else 0
        non2xx = int(num(r"Non-2xx or 3xx responses: (\d+)"))
    result = {
        "argv": argv,
        "parallel": parallel,
        "requests_per_s": rate,
        "requests": conns,
        "socket_errors": errors,
        "non_2xx": non2xx,
        "seconds": wall,
        "proxy_cpu_share": (p1 - p0) / wall,
        "client_cpu_share": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall,
        "watch_cpu_share": {name: (w1[name] - w0[name]) / wall for name in watch},
        "output": text[-4000:],
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
