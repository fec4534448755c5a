#!/usr/bin/python3
"""Markdown tables (with ratios) from the JSON the benchmarks write.

    report.py noop|issuance|served|overhead OUT_DIR
"""

import json
import os
import sys

MIB = 1024.0
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strace_profile  # noqa: E402


def strace_section(out, name, title):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    p = strace_profile.profile(path)
    if p is None:
        return []
    return ["", f"{title} (`strace -f -ttt -T`, {name}): " + strace_profile.markdown(p)]


def load(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        sys.exit(f"report: {path} is missing (did the benchmark run?)")
    with open(path) as f:
        return json.load(f)


def versions(out, name):
    path = os.path.join(out, name)
    if os.path.exists(path):
        with open(path) as f:
            return f.read().rstrip() + "\n"
    return ""


def verdict(ok):
    return "**met**" if ok else "**not met**"


def noop(out):
    t = load(out, "noop.json")
    m = load(out, "noop-mem.json")
    base = t["edgeup apply"]["median_ms"]
    lines = [
        "### 1. No-op re-run on a converged host",
        "",
        f"{t['edgeup apply']['runs']} interleaved rounds (after warm-up), inside the booted container; "
        "wall time of the whole command, ms. Ratio = the tool's median / edgeup apply's median.",
        "",
        "| tool | min | median | max | CPU (median, tree) | ratio vs edgeup apply |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in t.items():
        lines.append(
            f"| {name} | {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['max_ms']:.1f} | "
            f"{r['tree_cpu_ms_median']:.1f} | {r['median_ms'] / base:.2f}x |"
        )
    floor = t["shell floor"]["median_ms"]
    lines += [
        "",
        f"Target: edgeup's no-op at or below the shell floor: edgeup apply {base:.1f} ms vs "
        f"shell floor {floor:.1f} ms (edgeup plan {t['edgeup plan']['median_ms']:.1f} ms): "
        f"{verdict(base <= floor)}.",
        "",
        "### 2. Peak memory (one ptrace'd no-op run each)",
        "",
        "own = the command's own process (VmHWM, exact); largest = the largest process of its "
        "tree (itself included); tree at once = the larger of `largest` and the tree's total RSS "
        "sampled every ms (a lower bound of the simultaneous peak); sum = sum of every process's "
        "peak (an upper bound: most of them never run at the same time).",
        "",
        "| tool | own MiB | largest MiB (process) | tree at once MiB | sum MiB | processes | ratio (tree at once) vs edgeup apply |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def at_once(r):
        return max(r["largest_peak_kib"], r.get("tree_sampled_peak_kib", 0))

    mbase = at_once(m["edgeup apply"])
    for name, r in m.items():
        lines.append(
            f"| {name} | {r['own_peak_kib'] / MIB:.1f} | {r['largest_peak_kib'] / MIB:.1f} "
            f"({r['largest_process']}) | {at_once(r) / MIB:.1f} | {r['sum_peaks_kib'] / MIB:.1f} | "
            f"{r['processes']} | {at_once(r) / mbase:.1f}x |"
        )
    own = m["edgeup apply"]["own_peak_kib"] / MIB
    lines += [
        "",
        f"Target: edgeup <= 15 MiB RSS: edgeup apply's own peak {own:.1f} MiB, "
        f"plan {m['edgeup plan']['own_peak_kib'] / MIB:.1f} MiB: {verdict(own <= 15)}.",
        "",
        "#### Where edgeup's no-op time goes",
        "",
        "| part | min | median | max |",
        "| --- | ---: | ---: | ---: |",
    ]
    c = load(out, "noop-context.json")
    for name, r in c.items():
        lines.append(f"| {name} | {r['min_ms']:.2f} | {r['median_ms']:.2f} | {r['max_ms']:.2f} |")
    steps = []
    with open(os.path.join(out, "noop-apply-steps.json")) as f:
        for line in f:
            e = json.loads(line)
            if e.get("event") == "step" and e.get("status") != "skipped":
                steps.append(f"{e['name']} {e['duration_ms']} ms")
    lines += [
        "",
        "Step durations reported by `edgeup --json apply` on the converged host (skipped steps "
        "omitted): " + "; ".join(steps) + ".",
    ]
    lines += strace_section(out, "apply.strace", "Profile of one no-op `edgeup apply`")
    lines += [
        "",
        versions(out, "noop-versions.md"),
    ]
    return "\n".join(lines)


def issuance(out):
    t = load(out, "issuance.json")
    b = t["builtin (edgeup renew --force)"]
    c = t["certbot (certbot renew --force-renewal)"]
    ratio = c["median_ms"] / b["median_ms"]
    lines = [
        "### 3. Certificate issuance against Pebble through HAProxy",
        "",
        f"{b['runs']} interleaved rounds (after warm-up); wall time per issuance, ms. "
        "Ratio = certbot's median / builtin's median.",
        "",
        "| client | min | median | max | CPU (median, tree) | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in t.items():
        lines.append(
            f"| {name} | {r['min_ms']:.0f} | {r['median_ms']:.0f} | {r['max_ms']:.0f} | "
            f"{r['tree_cpu_ms_median']:.0f} | {r['median_ms'] / b['median_ms']:.2f}x |"
        )
    lines += [
        "",
        f"Target: builtin >= 7x faster than certbot: {ratio:.1f}x: {verdict(ratio >= 7)}.",
    ]
    w = t.get("what-if: builtin with TCP_NODELAY (LD_PRELOAD shim)")
    if w:
        lines += [
            "",
            f"What-if (profiling, not edgeup as shipped): with TCP_NODELAY on, the builtin client "
            f"takes {w['median_ms']:.0f} ms, i.e. certbot / that = "
            f"{c['median_ms'] / w['median_ms']:.1f}x.",
        ]
    steps = []
    path = os.path.join(out, "issuance-builtin-steps.json")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                if e.get("event") == "step":
                    steps.append(f"{e['name']} {e['duration_ms']} ms")
                elif e.get("event") == "recap":
                    steps.append(f"total (edgeup's own clock) {e['duration_ms']} ms")
        lines += ["", "Step durations of one `edgeup --json renew --force`: " + "; ".join(steps) + "."]
    lines += strace_section(out, "issuance-renew.strace", "Profile of one `edgeup renew --force`")
    lines += [
        "",
        versions(out, "issuance-versions.md"),
    ]
    return "\n".join(lines)


def served(out):
    import glob
    import statistics

    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "served", "*-*-*.json"))):
        conf, test, _ = os.path.basename(path)[:-5].split("-")
        with open(path) as f:
            runs.setdefault((conf, test), []).append(json.load(f))
    if not runs:
        sys.exit("report: no served/*.json results")

    def med(conf, test, key):
        return statistics.median(r[key] for r in runs[(conf, test)])

    lines = [
        "### 4. The served configuration: edgeup's haproxy.cfg vs the tutorial's",
        "",
        "Same HAProxy binary, same backend, loopback. The proxy runs on CPU 0 with a fixed CPU "
        "budget (cgroup quota), the load generator and the backend on CPU 1. Medians over "
        f"{len(runs[('edgeup', 'keepalive')])} alternating runs. proxy CPU / client CPU = share of "
        "one core used during the run (the proxy at its budget = the proxy was the bottleneck); "
        "`per proxy core` = rate / proxy CPU share.",
        "",
        "| test | config | req/s (min-max) | proxy CPU | client CPU | per proxy core | errors | ratio edgeup/tutorial |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ratios = {}
    tests = (
        ("full", "new TLS connections, full handshake (s_time -new)"),
        ("reconnect", "new connection per request, TLS resumed (wrk, Connection: close)"),
        ("keepalive", "keep-alive requests (wrk)"),
    )
    for test, label in tests:
        base = med("tutorial", test, "requests_per_s")
        for conf in ("tutorial", "edgeup"):
            rs = [r["requests_per_s"] for r in runs[(conf, test)]]
            rate = med(conf, test, "requests_per_s")
            pcpu = med(conf, test, "proxy_cpu_share")
            ccpu = med(conf, test, "client_cpu_share")
            errors = sum(r["socket_errors"] + r["non_2xx"] for r in runs[(conf, test)])
            ratio = rate / base
            if conf == "edgeup":
                ratios[test] = (ratio, (rate / pcpu) / (base / med("tutorial", test, "proxy_cpu_share")))
            lines.append(
                f"| {label} | {conf} | {rate:,.0f} ({min(rs):,.0f}-{max(rs):,.0f}) | {pcpu:.0%} | {ccpu:.0%} | "
                f"{rate / pcpu:,.0f} | {errors} | {ratio:.2f}x |"
            )
    hs, ka = ratios["full"], ratios["keepalive"]
    lines += [
        "",
        f"Targets: handshakes/s >= 2x: {hs[0]:.2f}x ({hs[1]:.2f}x per proxy core): {verdict(hs[0] >= 2)}; "
        f"keep-alive req/s >= 1.3x: {ka[0]:.2f}x ({ka[1]:.2f}x per proxy core): {verdict(ka[0] >= 1.3)}.",
        "",
        versions(out, "served-versions.md"),
    ]
    return "\n".join(lines)


ACME_STEPS = ("ACME account", "CA-issued certificate")


def overhead_run(out, n):
    d = load(out, f"overhead-{n}.json")
    total = d["end"] - d["start"]
    windows, steps = [], {}
    for t, line in d["lines"]:
        e = json.loads(line)
        if e.get("event") == "step":
            steps[e["name"]] = e["duration_ms"] / 1000
            if e["name"] in ACME_STEPS:
                windows.append((t - e["duration_ms"] / 1000, t))
    if "CA-issued certificate" not in steps:
        sys.exit(f"report: run {n} has no certificate step")
    acme = sum(steps.get(s, 0) for s in ACME_STEPS)
    apt = other = 0.0
    calls = {}
    with open(os.path.join(out, f"overhead-{n}.calls")) as f:
        for line in f:
            tool, s0, s1 = line.split()[:3]
            s0, s1 = float(s0), float(s1)
            if tool == "apt-get":
                apt += s1 - s0
            elif not any(a <= s0 and s1 <= b + 0.05 for a, b in windows):
                other += s1 - s0
                calls[tool] = calls.get(tool, 0) + 1
    return {
        "total": total, "apt": apt, "acme": acme, "other": other,
        "inproc": total - apt - acme - other, "overhead": total - apt - acme, "calls": calls,
    }


def overhead(out):
    import glob

    runs = sorted(int(p.split("-")[-1][:-5]) for p in glob.glob(os.path.join(out, "overhead-*.json")))
    rows = [overhead_run(out, n) for n in runs]
    lines = [
        "### 5. edgeup's own overhead during a fresh converge",
        "",
        "Fresh Debian 12 container each run; `edgeup --json apply` with the builtin ACME client "
        "against Pebble. Seconds.",
        "",
        "| run | total | inside apt-get | ACME steps | other tools (systemctl, haproxy -c) | edgeup in-process | overhead = total - apt - ACME |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in zip(runs, rows):
        lines.append(
            f"| {n} | {r['total']:.2f} | {r['apt']:.2f} | {r['acme']:.2f} | {r['other']:.2f} | "
            f"{r['inproc']:.2f} | {r['overhead']:.2f} ({r['overhead'] / r['total']:.0%}) |"
        )
    import statistics

    med = {k: statistics.median(r[k] for r in rows) for k in ("total", "apt", "acme", "other", "inproc", "overhead")}
    lines.append(
        f"| median | {med['total']:.2f} | {med['apt']:.2f} | {med['acme']:.2f} | {med['other']:.2f} | "
        f"{med['inproc']:.2f} | {med['overhead']:.2f} ({med['overhead'] / med['total']:.0%}) |"
    )
    calls = rows[-1]["calls"]
    lines += [
        "",
        "Other tools called by edgeup outside the ACME steps (last run): "
        + ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())) + ".",
        "",
        versions(out, "overhead-versions.md"),
    ]
    return "\n".join(lines)


def summary(out):
    """The ratios and targets of whatever benchmarks have results in OUT."""
    rows = []
    if os.path.exists(os.path.join(out, "noop.json")):
        t, m = load(out, "noop.json"), load(out, "noop-mem.json")
        e = t["edgeup apply"]["median_ms"]
        rows.append(f"| 1 no-op: ansible-playbook / edgeup apply (median wall) | "
                    f"{t['ansible-playbook']['median_ms'] / e:.0f}x | |")
        rows.append(f"| 1 no-op: pyinfra / edgeup apply | {t['pyinfra']['median_ms'] / e:.0f}x | |")
        f = t["shell floor"]["median_ms"]
        rows.append(f"| 1 no-op: shell floor / edgeup apply | {f / e:.1f}x | edgeup <= floor: "
                    f"{verdict(e <= f)} ({e:.1f} ms vs {f:.1f} ms) |")
        own = m["edgeup apply"]["own_peak_kib"] / MIB
        a = max(m["ansible-playbook"]["largest_peak_kib"], m["ansible-playbook"].get("tree_sampled_peak_kib", 0))
        p = max(m["pyinfra"]["largest_peak_kib"], m["pyinfra"].get("tree_sampled_peak_kib", 0))
        eb = max(m["edgeup apply"]["largest_peak_kib"], m["edgeup apply"].get("tree_sampled_peak_kib", 0))
        rows.append(f"| 2 peak RSS (tree at once): ansible / edgeup, pyinfra / edgeup | "
                    f"{a / eb:.1f}x, {p / eb:.1f}x | edgeup <= 15 MiB: {verdict(own <= 15)} ({own:.1f} MiB) |")
    if os.path.exists(os.path.join(out, "issuance.json")):
        t = load(out, "issuance.json")
        r = t["certbot (certbot renew --force-renewal)"]["median_ms"] / t["builtin (edgeup renew --force)"]["median_ms"]
        rows.append(f"| 3 issuance: certbot / builtin (median wall) | {r:.1f}x | >= 7x: {verdict(r >= 7)} |")
    if os.path.isdir(os.path.join(out, "served")):
        text = served(out)
        for line in text.splitlines():
            if line.startswith("Targets:"):
                rows.append(f"| 4 served config: edgeup / tutorial | see below | {line[len('Targets: '):]} |")
    if any(n.startswith("overhead-") and n.endswith(".json") for n in os.listdir(out)):
        text = overhead(out)
        for line in text.splitlines():
            if line.startswith("| median"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                rows.append(f"| 5 fresh converge: edgeup's overhead (total - apt - ACME) | {cells[-1]} s of "
                            f"{cells[1]} s | (no target) |")
    return "\n".join(["| benchmark | ratio / figure | target |", "| --- | --- | --- |"] + rows)


def main():
    kind, out = sys.argv[1], sys.argv[2]
    print({"noop": noop, "issuance": issuance, "served": served, "overhead": overhead,
           "summary": summary}[kind](out))


if __name__ == "__main__":
    main()
