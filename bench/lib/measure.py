#!/usr/bin/python3
"""Side-by-side timing and peak-memory measurement of commands (stdlib only).

    measure.py time SPEC.json --rounds N [--warmup W] --out RESULT.json
    measure.py mem  SPEC.json --out RESULT.json

SPEC.json is a list of {"name", "argv", "ok": [exit codes], "env": {...},
"stdout": PATH}; stdout goes to /dev/null, or is appended to PATH when
given (so a caller can check what every timed run reported).
Commands are executed directly (no shell in between), with a minimal
environment (PATH, HOME, LANG=C.UTF-8, TERM=dumb) plus "env".

time: W warm-up rounds (discarded), then N rounds; every round runs each
command once, in a rotated order, so slow drift of the machine hits every
tool alike. Wall time is measured around fork+exec+wait4 with
perf_counter_ns; wait4's ru_maxrss (largest process of the tree) is kept
too. A command whose exit code is not in "ok" aborts the measurement.

mem: one extra run per command under ptrace (PTRACE_O_TRACEFORK/VFORK/CLONE
and TRACEEXIT on every process of the tree). At each process's exit event,
its VmHWM (peak resident set) and its own CPU time are read from /proc.
Reported: the top process's own peak ("own"), the largest peak of any
process in the tree ("largest"), the sum of every process's peak ("sum", an
upper bound of the tree's simultaneous RSS), the tree's total RSS sampled
every millisecond ("at once": a lower bound, short processes can be
missed) and the number of processes (threads not counted).
ptrace slows syscalls, which is why it is a separate pass and never timed.
"""

import ctypes
import json
import os
import signal
import statistics
import sys
import threading
import time

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

def load_spec(path):
    with open(path) as f:
        spec = json.load(f)
    for s in spec:
        s.setdefault("ok", [0])
        s.setdefault("env", {})
    return spec


def environment(extra):
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    env.update(extra)
    return env


def spawn(s, pre_exec=None):
    env = environment(s["env"])
    devnull = os.open(os.devnull, os.O_RDWR)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            if pre_exec:
                pre_exec()
            os.execvpe(s["argv"][0], s["argv"], env)
        finally:
            os._exit(127)
    os.close(devnull)
    return pid


def run_once(s):
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    if s.get("stdout"):
        actions[1] = (os.POSIX_SPAWN_OPEN, 1, s["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    env = environment(s["env"])
    start = time.perf_counter_ns()
    # posix_spawn (vfork+exec): nothing of this Python process is copied, so
    # the child's rusage is its own.
    pid = os.posix_spawnp(s["argv"][0], s["argv"], env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    wall_ms = (time.perf_counter_ns() - start) / 1e6
    code = os.waitstatus_to_exitcode(status)
    if code not in s["ok"]:
        sys.stderr.write(f"measure: {s['name']} exited {code} (expected {s['ok']}): {s['argv']}\n")
        sys.exit(1)
    return wall_ms, (ru.ru_utime + ru.ru_stime) * 1000


def cmd_time(spec, rounds, warmup):
    walls = {s["name"]: [] for s in spec}
    cpu = {s["name"]: [] for s in spec}
    for r in range(warmup + rounds):
        k = r % len(spec)
        order = spec[k:] + spec[:k]
        for s in order:
            wall, cpu_ms = run_once(s)
            if r >= warmup:
                walls[s["name"]].append(wall)
                cpu[s["name"]].append(cpu_ms)
    out = {}
    for s in spec:
        w = walls[s["name"]]
        out[s["name"]] = {
            "argv": s["argv"],
            "runs": len(w),
            "wall_ms": w,
            "min_ms": min(w),
            "median_ms": statistics.median(w),
            "max_ms": max(w),
            "tree_cpu_ms_median": statistics.median(cpu[s["name"]]),
        }
    return out


# ---------------------------------------------------------------- ptrace
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS = 0, 7, 0x4200
O_TRACEFORK, O_TRACEVFORK, O_TRACECLONE, O_TRACEEXIT, O_EXITKILL = 0x2, 0x4, 0x8, 0x40, 0x100000
EVENT_FORK, EVENT_VFORK, EVENT_CLONE, EVENT_EXIT = 1, 2, 3, 6
WALL = 0x40000000


def ptrace(req, pid, data=0):
    return libc.ptrace(req, pid, None, ctypes.c_void_p(data))


def proc_fields(pid):
    """(tgid, VmHWM KiB, comm) of a live (stopped) task."""
    tgid, hwm, comm = pid, 0, "?"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    tgid = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("Name:"):
                    comm = line.split(None, 1)[1].strip()
    except (OSError, ValueError, IndexError):
        pass
    return tgid, hwm, comm


def tree_rss_kib(top):
    """Current RSS of `top` and all its descendants, KiB."""
    total, queue, seen = 0, [top], set()
    while queue:
        pid = queue.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_KIB
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    queue.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            pass
    return total


class Sampler(threading.Thread):
    """Samples the tree's total RSS every millisecond until stopped."""

    def __init__(self, top):
        super().__init__(daemon=True)
        self.top, self.peak, self.samples = top, 0, 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss_kib(self.top))
            self.samples += 1
            self.done.wait(0.001)


def measure_mem(s):
    def traceme():
        if ptrace(PTRACE_TRACEME, 0) != 0:
            os._exit(126)

    top = spawn(s, pre_exec=traceme)
    _, status = os.waitpid(top, WALL)  # stopped at exec (SIGTRAP)
    opts = O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXIT | O_EXITKILL
    ptrace(PTRACE_SETOPTIONS, top, opts)
    ptrace(PTRACE_CONT, top, 0)
    sampler = Sampler(top)
    sampler.start()
    peaks = {}  # tgid -> (hwm, comm)
    own_hwm = 0
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, WALL)
        except ChildProcessError:
            break
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            if pid == top:
                code = os.waitstatus_to_exitcode(status)
            continue
        if not os.WIFSTOPPED(status):
            continue
        sig = os.WSTOPSIG(status)
        event = status >> 16
        deliver = 0
        if event == EVENT_EXIT:
            tgid, hwm, comm = proc_fields(pid)
            if hwm >= peaks.get(tgid, (0, ""))[0]:
                peaks[tgid] = (hwm, comm)
            if tgid == top:
                own_hwm = max(own_hwm, hwm)
        elif event in (EVENT_FORK, EVENT_VFORK, EVENT_CLONE):
            pass
        elif sig in (signal.SIGTRAP, signal.SIGSTOP):
            pass  # exec traps of traced children; initial stop of new ones
        else:
            deliver = sig
        ptrace(PTRACE_CONT, pid, deliver)
    sampler.done.set()
    sampler.join()
    if code not in s["ok"]:
        sys.stderr.write(f"measure: {s['name']} exited {code} under ptrace\n")
        sys.exit(1)
    largest = max(peaks.items(), key=lambda kv: kv[1][0]) if peaks else (0, (0, "?"))
    return {
        "own_peak_kib": own_hwm,
        "largest_peak_kib": largest[1][0],
        "largest_process": largest[1][1],
        "sum_peaks_kib": sum(h for h, _ in peaks.values()),
        "tree_sampled_peak_kib": sampler.peak,
        "tree_samples": sampler.samples,
        "processes": len(peaks),
    }


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("time", "mem"):
        sys.exit(__doc__)
    mode, spec = args[0], load_spec(args[1])
    opts = dict(zip(args[2::2], args[3::2]))
    if mode == "time":
        result = cmd_time(spec, int(opts.get("--rounds", 10)), int(opts.get("--warmup", 1)))
    else:
        result = {s["name"]: measure_mem(s) for s in spec}
    with open(opts["--out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
