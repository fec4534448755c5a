#!/usr/bin/python3
"""Where a process's wall time goes, from `strace -f -ttt` output (stdlib only).

    strace_profile.py FILE        (FILE from strace -f -ttt -T -o FILE ...)

Looks at the main thread (the first pid in the file) and sorts its blocking
time into: timer sleeps (epoll_wait with a positive timeout: tokio timers
such as instant-acme's RetryPolicy delays), plain sleeps (clock_nanosleep/
nanosleep), network waits (epoll_wait/poll with no timeout, recv/connect),
and waits for child processes (wait4/waitid, and the reads of their pipes).
Also lists every program started (execve that succeeded) with how long it
ran. strace slows every syscall, so absolute numbers are inflated; sleeps
are not (they are the time asked for).
"""

import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
DURATION = re.compile(r"<(\d+\.\d+)>$")
CALL = re.compile(r"^(\w+)\((.*)")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)")


def parse(path):
    events = []
    with open(path) as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if m:
                events.append((int(m.group(1)), float(m.group(2)), m.group(3)))
    return events


def profile(path):
    events = parse(path)
    if not events:
        return None
    main = events[0][0]
    start, end = events[0][1], events[-1][1]
    pending = {}  # pid -> (syscall, args, t)
    buckets = {"timer sleeps": 0.0, "sleeps": 0.0, "network waits": 0.0, "child processes": 0.0}
    programs = {}  # pid -> [argv0, exec_t, exit_t]
    for pid, t, rest in events:
        if rest.startswith("+++ exited") or rest.startswith("+++ killed"):
            if pid in programs:
                programs[pid][2] = t
            continue
        if rest.startswith("---"):
            continue
        m = RESUMED.match(rest)
        if m:
            name, tail = m.group(1), m.group(2)
            if pid in pending:
                call, args, t0 = pending.pop(pid)
                complete(buckets, pid == main, call, args + tail, t0, t)
            continue
        m = CALL.match(rest)
        if not m:
            continue
        name, args = m.group(1), m.group(2)
        if name == "execve" and not re.search(r"= -1 ", rest):
            argv = re.findall(r'"([^"]*)"', args)
            programs[pid] = [argv[0] if argv else "?", t, None]
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (name, args, t)
        else:
            # -ttt stamps the call's start; -T appends its duration.
            d = DURATION.search(rest)
            complete(buckets, pid == main, name, args, t, t + (float(d.group(1)) if d else 0.0))
    total = end - start
    return {
        "total_ms": total * 1000,
        "buckets_ms": {k: v * 1000 for k, v in buckets.items()},
        "programs": [
            (argv0, (exit_t or end) - exec_t) for pid, (argv0, exec_t, exit_t) in programs.items() if pid != main
        ],
    }


def complete(buckets, is_main, call, args, t0, t1):
    if not is_main:
        return
    d = t1 - t0
    if d <= 0:
        return
    if call in ("epoll_wait", "epoll_pwait"):
        m = re.search(r",\s*(-?\d+)\)\s*=", args)
        timeout = int(m.group(1)) if m else -1
        buckets["timer sleeps" if timeout > 0 else "network waits"] += d
    elif call in ("clock_nanosleep", "nanosleep"):
        buckets["sleeps"] += d
    elif call in ("wait4", "waitid", "read", "poll", "ppoll"):
        buckets["child processes" if call in ("wait4", "waitid") else "network waits"] += d
    elif call in ("connect", "recvfrom", "recvmsg", "sendto", "accept", "accept4"):
        buckets["network waits"] += d


def markdown(p):
    lines = [f"strace'd wall time {p['total_ms']:.0f} ms; main thread blocked in:"]
    for k, v in p["buckets_ms"].items():
        lines.append(f"- {k}: {v:.0f} ms")
    progs = {}
    for argv0, d in p["programs"]:
        n, total = progs.get(argv0, (0, 0.0))
        progs[argv0] = (n + 1, total + d)
    if progs:
        lines.append(
            "- programs started: "
            + ", ".join(f"{a} x{n} ({t * 1000:.0f} ms)" for a, (n, t) in sorted(progs.items()))
        )
    else:
        lines.append("- programs started: none")
    return "\n".join(lines)


if __name__ == "__main__":
    p = profile(sys.argv[1])
    if p is None:
        sys.exit("no strace events")
    print(markdown(p))
