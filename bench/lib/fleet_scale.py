#!/usr/bin/python3
"""Benchmark 8 (fleet scale): run one tool over the fleet and measure it on
the controller; check what the tool reported; the report. Stdlib only
(matplotlib, from Debian's python3-matplotlib, for the plot).

    fleet_scale.py run --log LOG --out RESULT.json [--mem] [--env K=V]... -- ARGV...
    fleet_scale.py check TOOL LOG N noop|changed|any (exit 1 when the tool's output disagrees;
                                                      any: only failures and missing hosts)
    fleet_scale.py report DIR                       (DIR/runs.jsonl etc. -> fleet-scale.{md,json,png})

run: this process becomes a child subreaper (PR_SET_CHILD_SUBREAPER), so
every process of the tool's tree stays below it, also the ssh control
masters that daemonize (`ssh -f`, ControlPersist): their CPU time is
counted when they are reaped. The tool is started with posix_spawn
(nothing of this process is copied); wall time runs from the spawn until
the tool's own process exits. Then up to GRACE seconds for the rest of the
tree to end by itself (edgeup closes its masters; Ansible's ControlPersist
masters would linger 60 s), after which what is left gets SIGTERM (counted
as "lingering"). CPU = user+sys of every reaped descendant
(RUSAGE_CHILDREN). ru_maxrss: the tool's own process and the largest
single process of the tree.

--mem (a separate, untimed run): a thread sums the RSS and the PSS
(/proc/PID/smaps_rollup) of every process below this one, about every
10 ms, and keeps the peaks: what the tool's tree occupies at once on the
controller (PSS splits shared pages, e.g. 30 ssh processes' libraries,
between the processes that share them; RSS counts them in each).
"""

import ctypes
import json
import os
import re
import resource
import signal
import statistics
import sys
import threading
import time

GRACE = float(os.environ.get("FLEET_GRACE", "2"))
PR_SET_CHILD_SUBREAPER = 36
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------- run
def descendants(top):
    """PIDs below `top` (this process), from /proc/*/task/*/children."""
    out, queue = [], [top]
    while queue:
        pid = queue.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            queue.extend(kids)
    return out


def vm_hwm(pid):
    """(VmHWM KiB, name) of a process (0 when gone or a kernel thread)."""
    hwm, comm = 0, "?"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("Name:"):
                    comm = line.split(None, 1)[1].strip()
    except (OSError, ValueError, IndexError):
        pass
    return hwm, comm


class HwmWatcher(threading.Thread):
    """The VmHWM of one process, every 20 ms until it exits."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, vm_hwm(self.pid)[0])
            self.done.wait(0.02)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ms(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def rss_pss_kib(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.me = os.getpid()
        self.peak_rss = self.peak_pss = self.peak_procs = self.samples = 0
        self.largest_hwm, self.largest_comm = 0, "?"
        # pid -> (name, user+sys ms at the last sample): where the tree's CPU
        # goes, by program (a lower bound: the last few ms of each process
        # after its last sample are missed).
        self.cpu_seen = {}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            rss = pss = 0
            pids = descendants(self.me)
            for p in pids:
                r, s = rss_pss_kib(p)
                rss += r
                pss += s
                h, comm = vm_hwm(p)
                if h > self.largest_hwm:
                    self.largest_hwm, self.largest_comm = h, comm
                cpu = proc_cpu_ms(p)
                if cpu is not None:
                    self.cpu_seen[p] = (comm, cpu)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.samples += 1
            self.done.wait(0.01)


def by_program(seen):
    out = {}
    for comm, ms in seen.values():
        out[comm] = out.get(comm, 0) + ms
    return {k: round(v) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def cmd_run(args):
    opts = {"--env": []}
    mem = False
    while args and args[0] != "--":
        a = args.pop(0)
        if a == "--mem":
            mem = True
        elif a == "--env":
            opts["--env"].append(args.pop(0))
        else:
            opts[a] = args.pop(0)
    argv = args[1:]
    if not argv:
        sys.exit("fleet_scale.py run: no command")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    env = dict(os.environ)
    for kv in opts["--env"]:
        k, v = kv.split("=", 1)
        env[k] = v
    log = opts["--log"]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    sampler = Sampler() if mem else None
    # Children this interpreter already had (a site hook's subprocesses).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    # wait4's ru_maxrss would count this process's memory (posix_spawn
    # shares it until exec): the tool's own peak is its VmHWM, read until it
    # exits (a high-water mark: the last read is the peak up to then).
    hwm = HwmWatcher(pid)
    hwm.start()
    if sampler:
        sampler.start()
    _, status, _ = os.wait4(pid, 0)
    wall_ms = (time.perf_counter_ns() - start) / 1e6
    code = os.waitstatus_to_exitcode(status)
    hwm.done.set()
    hwm.join()
    # The rest of the tree: reap what ends by itself within GRACE, then
    # SIGTERM the rest (and SIGKILL after 5 s more).
    lingering = 0
    deadline = time.monotonic() + GRACE
    termed = False
    while True:
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if p:
            continue
        if time.monotonic() > deadline:
            left = descendants(os.getpid())
            if not termed:
                lingering = len(left)
                for q in left:
                    try:
                        os.kill(q, signal.SIGTERM)
                    except OSError:
                        pass
                termed = True
                deadline = time.monotonic() + 5
            else:
                for q in left:
                    try:
                        os.kill(q, signal.SIGKILL)
                    except OSError:
                        pass
        time.sleep(0.02)
    if sampler:
        sampler.done.set()
        sampler.join()
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ch.ru_utime + ch.ru_stime - before.ru_utime - before.ru_stime
    result = {
        "argv": argv,
        "exit_code": code,
        "wall_ms": round(wall_ms, 1),
        "cpu_ms": round(cpu * 1000, 1),
        "own_maxrss_kib": hwm.peak,
        "lingering": lingering,
    }
    if sampler:
        result.update(
            largest_maxrss_kib=sampler.largest_hwm,
            largest_process=sampler.largest_comm,
            tree_peak_rss_kib=sampler.peak_rss,
            tree_peak_pss_kib=sampler.peak_pss,
            tree_peak_processes=sampler.peak_procs,
            samples=sampler.samples,
            cpu_ms_by_program=by_program(sampler.cpu_seen),
            processes_seen=len(sampler.cpu_seen),
        )
    with open(opts["--out"], "w") as f:
        json.dump(result, f)
    sys.exit(0 if code == 0 else 1)


# ---------------------------------------------------------------- check
def parse_edgeup(text):
    recap = None
    hosts = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "host_recap":
            r = e.get("recap") or {}
            hosts[e.get("host")] = {
                "changed": r.get("changed", 0),
                "failed": r.get("failed", 0) + (0 if e.get("exit_code") == 0 else 1),
                "unreachable": 1 if e.get("unreachable") or e.get("error") else 0,
                "copied": e.get("copied", []),
            }
        elif e.get("event") == "recap" and "host" not in e:
            recap = e
    return hosts, recap


def parse_ansible(text):
    hosts = {}
    in_recap = False
    for line in text.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
            if not m:
                continue
            kv = dict(re.findall(r"(\w+)=(\d+)", m.group(2)))
            hosts[m.group(1)] = {
                "changed": int(kv.get("changed", 0)),
                "failed": int(kv.get("failed", 0)),
                "unreachable": int(kv.get("unreachable", 0)),
            }
    return hosts


def parse_pyinfra(text):
    """pyinfra 3 prints `[HOST] Connected`, then per operation one
    `[HOST] Success` (the operation changed something), `[HOST] No changes`
    or `[HOST] Error...` line per host, and a results table whose last row
    is `Grand total  HOSTS  SUCCESS  ERROR  NO_CHANGE` ("-" for 0)."""
    hosts = {}
    total = None
    for line in text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]\s+(.*)$", line)
        if m:
            h = hosts.setdefault(m.group(1), {"changed": 0, "failed": 0, "unreachable": 0})
            status = m.group(2).strip().lower()
            if status.startswith("success"):
                h["changed"] += 1
            elif status.startswith(("error", "failed")):
                h["failed"] += 1
            elif status.startswith("could not connect"):
                h["unreachable"] += 1
            continue
        m = re.match(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            total = [0 if v == "-" else int(v) for v in m.groups()]
    if total is None:
        # Without the results table the run did not finish its operations.
        for h in hosts.values():
            h["failed"] += 1
    elif total[2]:
        hosts.setdefault("(results table)", {"changed": 0, "failed": total[2], "unreachable": 0})
    return hosts


def cmd_check(tool, log, n, expect):
    text = open(log, errors="replace").read()
    recap = None
    if tool == "edgeup":
        hosts, recap = parse_edgeup(text)
    elif tool == "ansible":
        hosts = parse_ansible(text)
    else:
        hosts = parse_pyinfra(text)
    problems = []
    if len(hosts) != n:
        problems.append(f"{len(hosts)} hosts in the output, expected {n}")
    for h, r in sorted(hosts.items()):
        if r["failed"] or r["unreachable"]:
            problems.append(f"{h}: failed={r['failed']} unreachable={r['unreachable']}")
        elif expect == "noop" and r["changed"]:
            problems.append(f"{h}: changed={r['changed']} on a converged host")
        elif expect == "changed" and not r["changed"]:
            problems.append(f"{h}: changed=0 where a change was due")
    if tool == "edgeup" and expect == "noop":
        copied = {h: r["copied"] for h, r in hosts.items() if r.get("copied")}
        if copied:
            problems.append(f"copied something on a converged fleet: {copied}")
    if tool == "edgeup" and (recap is None or recap.get("hosts") != n):
        problems.append(f"no fleet recap for {n} hosts: {recap}")
    summary = {
        "hosts": len(hosts),
        "changed_total": sum(r["changed"] for r in hosts.values()),
        "changed_hosts": sum(1 for r in hosts.values() if r["changed"]),
    }
    print(json.dumps(summary))
    if problems:
        sys.stderr.write(f"check {tool} ({expect}, {log}):\n  " + "\n  ".join(problems[:10]) + "\n")
        sys.exit(1)


# ---------------------------------------------------------------- report
TOOLS = ["edgeup", "ansible", "pyinfra"]
LABEL = {"edgeup": "edgeup fleet", "ansible": "ansible-playbook", "pyinfra": "pyinfra"}
SCEN = {
    "first": "(a) first converge",
    "noop": "(b) no-op re-run",
    "change": "(c) one setting changed",
}


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(ms):
    return "–" if ms is None else f"{ms / 1000:.2f}"


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def ratio(a, b):
    return None if not a or not b else b / a


def fmt_x(x):
    return "–" if x is None else f"{x:.1f}x"


def aggregate(d):
    runs = load_jsonl(os.path.join(d, "runs.jsonl"))
    mems = load_jsonl(os.path.join(d, "mem.jsonl"))
    hosts_mem = load_jsonl(os.path.join(d, "containers.jsonl"))
    ns = sorted({r["n"] for r in runs})
    agg = {"ns": ns, "runs": runs, "mem": mems, "containers": hosts_mem, "table": {}}
    for n in ns:
        for sc in SCEN:
            for t in TOOLS:
                rs = [r for r in runs if r["n"] == n and r["scenario"] == sc and r["tool"] == t]
                if not rs:
                    continue
                logins = [statistics.mean(r["logins"]) for r in rs if r.get("logins")]
                agg["table"][f"{n}/{sc}/{t}"] = {
                    "rounds": len(rs),
                    "wall_ms": [r["wall_ms"] for r in rs],
                    "wall_median_ms": med([r["wall_ms"] for r in rs]),
                    "wall_min_ms": min(r["wall_ms"] for r in rs),
                    "wall_max_ms": max(r["wall_ms"] for r in rs),
                    "cpu_median_ms": med([r["cpu_ms"] for r in rs]),
                    "own_maxrss_kib": max(r["own_maxrss_kib"] for r in rs),
                    "logins_per_host_median": med(logins),
                    "logins_per_host_max": max((max(r["logins"]) for r in rs if r.get("logins")), default=None),
                    "lingering_max": max(r.get("lingering", 0) for r in rs),
                }
    return agg


def cell(agg, n, sc, t):
    return agg["table"].get(f"{n}/{sc}/{t}")


def report(d):
    agg = aggregate(d)
    ns = agg["ns"]
    meta = {}
    mp = os.path.join(d, "meta.json")
    if os.path.exists(mp):
        meta = json.load(open(mp))
    L = ["### 8. Fleet scale (`fleet-scale.sh`)", ""]
    if meta:
        L += [
            f"N = {', '.join(map(str, ns))} hosts (containers on this machine, one netns + veth each, sshd); "
            f"`--forks N` / `forks = N` / `--parallel N`. Rounds: (a) {meta.get('first_rounds')} "
            f"(state reset in place between runs), (b) {meta.get('rounds')} after {meta.get('warmup')} warm-up, "
            f"(c) {meta.get('change_rounds')}; tools interleaved, order rotated per round.",
            "",
        ]
    L += ["Wall time, seconds (median; min–max in the JSON). Ratio = tool / edgeup fleet at the same N.", ""]
    for sc, title in SCEN.items():
        L += [f"**{title}**", "", "| N | edgeup fleet | ansible-playbook | pyinfra | ansible / edgeup | pyinfra / edgeup |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n in ns:
            c = {t: cell(agg, n, sc, t) for t in TOOLS}
            w = {t: (c[t]["wall_median_ms"] if c[t] else None) for t in TOOLS}
            L.append(f"| {n} | {fmt_s(w['edgeup'])} | {fmt_s(w['ansible'])} | {fmt_s(w['pyinfra'])} | "
                     f"{fmt_x(ratio(w['edgeup'], w['ansible']))} | {fmt_x(ratio(w['edgeup'], w['pyinfra']))} |")
        L.append("")
    L += ["**Controller cost per run** (median CPU user+sys of the whole tree incl. ssh masters, s; "
          "peak RSS (VmHWM) of the tool's own process, MiB; "
          "ssh logins accepted per host per run, from each container's sshd log)", "",
          "| N | scenario | tool | wall | CPU | own peak RSS | ssh logins/host |",
          "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for n in ns:
        for sc in SCEN:
            for t in TOOLS:
                c = cell(agg, n, sc, t)
                if not c:
                    continue
                lg = c["logins_per_host_median"]
                L.append(f"| {n} | {sc} | {LABEL[t]} | {fmt_s(c['wall_median_ms'])} | {fmt_s(c['cpu_median_ms'])} | "
                         f"{fmt_mib(c['own_maxrss_kib'])} | {'–' if lg is None else f'{lg:g}'} |")
    L.append("")
    if agg["mem"]:
        L += ["**Controller memory at once** (one untimed no-op run per tool and N, the check before (b): the tree's summed PSS "
              "and RSS sampled every ~10 ms, MiB; processes = most alive at once)", "",
              "| N | tool | tree PSS peak | tree RSS peak (summed) | own peak RSS | largest process (peak RSS) | processes | CPU by program, ms (sampled) |",
              "| ---: | --- | ---: | ---: | ---: | --- | ---: | --- |"]
        for m in sorted(agg["mem"], key=lambda m: (m["n"], TOOLS.index(m["tool"]))):
            L.append(f"| {m['n']} | {LABEL[m['tool']]} | {fmt_mib(m['tree_peak_pss_kib'])} | "
                     f"{fmt_mib(m['tree_peak_rss_kib'])} | {fmt_mib(m['own_maxrss_kib'])} | "
                     f"{m.get('largest_process', '?')} {fmt_mib(m.get('largest_maxrss_kib'))} | {m['tree_peak_processes']} | "
                     + ", ".join(f"{k} {v}" for k, v in list(m.get("cpu_ms_by_program", {}).items())[:4]) + " |")
        L.append("")
    if agg["containers"]:
        by_n = {}
        for c in agg["containers"]:
            by_n.setdefault(c["n"], []).append(c["pss_kib"])
        L += ["**Per container** (PSS sum of the container's processes, converged and idle: systemd, journald, "
              "sshd, HAProxy ...)", "", "| N | median MiB | max MiB | all containers, MiB |",
              "| ---: | ---: | ---: | ---: |"]
        for n, v in sorted(by_n.items()):
            L.append(f"| {n} | {fmt_mib(med(v))} | {fmt_mib(max(v))} | {fmt_mib(sum(v))} |")
        L.append("")
    # Where edgeup fleet's time goes: the remote `edgeup apply` reports its
    # own duration in its recap event (per host), the rest is the controller,
    # ssh and the probe/copy/check commands around it.
    prof = []
    for n in ns:
        for sc in SCEN:
            rs = [r for r in agg["runs"] if r["n"] == n and r["scenario"] == sc and r["tool"] == "edgeup"]
            remote = []
            for r in rs:
                try:
                    text = open(os.path.join(d, "logs", r["id"] + ".log"), errors="replace").read()
                except OSError:
                    continue
                for line in text.splitlines():
                    if line.startswith("{") and '"recap"' in line:
                        try:
                            e = json.loads(line)
                        except ValueError:
                            continue
                        if e.get("event") == "recap" and "host" in e and "duration_ms" in e:
                            remote.append(e["duration_ms"])
            c = cell(agg, n, sc, "edgeup")
            if remote and c:
                prof.append(f"| {n} | {sc} | {fmt_s(c['wall_median_ms'])} | {statistics.median(remote) / 1000:.2f} | "
                            f"{max(remote) / 1000:.2f} | {fmt_s(c['cpu_median_ms'])} |")
    if prof:
        L += ["**Where edgeup fleet's time goes**: the fleet run's wall time against the remote `edgeup apply` "
              "on each host (its own recap's duration; median and max over hosts and rounds), s. The rest is "
              "ssh (connection, probe, copies, checks) and waiting for the slowest host.", "",
              "| N | scenario | fleet wall (median) | remote apply, median | remote apply, max | controller CPU |",
              "| ---: | --- | ---: | ---: | ---: | ---: |"] + prof + [""]
    # Goals
    nmax = max(ns) if ns else None
    goals = []
    if nmax:
        e = cell(agg, nmax, "noop", "edgeup")
        a = cell(agg, nmax, "noop", "ansible")
        p = cell(agg, nmax, "noop", "pyinfra")
        if e and a:
            r = ratio(e["wall_median_ms"], a["wall_median_ms"])
            goals.append(f"| no-op on {nmax} hosts: ansible-playbook / edgeup fleet | {fmt_x(r)} | >= 20x: "
                         f"{'**met**' if r >= 20 else '**not met**'} |")
        if e and p:
            r = ratio(e["wall_median_ms"], p["wall_median_ms"])
            goals.append(f"| no-op on {nmax} hosts: pyinfra / edgeup fleet | {fmt_x(r)} | >= 3x: "
                         f"{'**met**' if r >= 3 else '**not met**'} |")
        nmin = min(ns)
        e1 = cell(agg, nmin, "noop", "edgeup")
        if e and e1 and nmax != nmin:
            g = e["wall_median_ms"] / e1["wall_median_ms"]
            goals.append(f"| edgeup fleet no-op wall, N={nmax} / N={nmin} | {g:.2f}x "
                         f"({fmt_s(e1['wall_median_ms'])} s → {fmt_s(e['wall_median_ms'])} s) | < 3x: "
                         f"{'**met**' if g < 3 else '**not met**'} |")
        em = [m for m in agg["mem"] if m["n"] == nmax and m["tool"] == "edgeup"]
        if em:
            m = em[0]
            own = m["own_maxrss_kib"] / 1024
            tree = m["tree_peak_pss_kib"] / 1024
            goals.append(f"| controller peak memory at N={nmax}, edgeup fleet | own process {own:.1f} MiB max RSS; "
                         f"whole tree with its {m['tree_peak_processes']} processes (ssh) {tree:.1f} MiB PSS, "
                         f"{m['tree_peak_rss_kib'] / 1024:.1f} MiB RSS summed | < 50 MiB: own "
                         f"{'**met**' if own < 50 else '**not met**'}, tree (PSS) "
                         f"{'**met**' if tree < 50 else '**not met**'} |")
    if goals:
        L += ["**Goals**", "", "| goal | measured | target |", "| --- | --- | --- |"] + goals + [""]
    if meta.get("versions"):
        L += ["Versions: " + "; ".join(meta["versions"]), ""]
    md = "\n".join(L) + "\n"
    with open(os.path.join(d, "fleet-scale.md"), "w") as f:
        f.write(md)
    summary = {k: v for k, v in agg.items() if k != "runs"}
    summary["meta"] = meta
    with open(os.path.join(d, "fleet-scale.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot(agg, os.path.join(d, "fleet-scale.png"))
    sys.stdout.write(md)


def plot(agg, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        sys.stderr.write("fleet_scale: no matplotlib (apt-get install python3-matplotlib); no plot\n")
        return
    ns = agg["ns"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    style = {"edgeup": ("tab:green", "o"), "ansible": ("tab:red", "s"), "pyinfra": ("tab:blue", "^")}
    for ax, (sc, title) in zip(axes, SCEN.items()):
        for t in TOOLS:
            pts = [(n, cell(agg, n, sc, t)) for n in ns]
            pts = [(n, c) for n, c in pts if c]
            if not pts:
                continue
            xs = [n for n, _ in pts]
            ys = [c["wall_median_ms"] / 1000 for _, c in pts]
            lo = [(c["wall_median_ms"] - c["wall_min_ms"]) / 1000 for _, c in pts]
            hi = [(c["wall_max_ms"] - c["wall_median_ms"]) / 1000 for _, c in pts]
            color, marker = style[t]
            ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=LABEL[t])
        ax.set_title(title)
        ax.set_xlabel("hosts (N, parallelism = N)")
        ax.set_ylabel("wall time, s (median, min–max)")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xticks(ns)
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("edgeup fleet vs ansible-playbook vs pyinfra over ssh (same job, same hosts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "run":
        cmd_run(a[1:])
    elif a[0] == "check" and len(a) == 5:
        cmd_check(a[1], a[2], int(a[3]), a[4])
    elif a[0] == "report" and len(a) == 2:
        report(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
