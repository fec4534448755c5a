#!/usr/bin/python3
"""Markdown tables (with ratios) from the JSON the benchmarks write.

    report.py noop|issuance|served|overhead|sites OUT_DIR
    report.py sites-json OUT_DIR      (collects OUT_DIR/sites/ into the JSON sites.md is made from)
"""

import json
import os
import re
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


# ---------------------------------------------------------------- many sites
def _json_lines(lines):
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                pass


def _steps(events):
    """Step events grouped by name: count, total ms, max ms, changed count; slowest first."""
    groups = {}
    recap = None
    for e in events:
        if e.get("event") == "step":
            g = groups.setdefault(e["name"], {"count": 0, "ms": 0, "max_ms": 0, "changed": 0})
            g["count"] += 1
            g["ms"] += e.get("duration_ms", 0)
            g["max_ms"] = max(g["max_ms"], e.get("duration_ms", 0))
            g["changed"] += e.get("status") == "changed"
        elif e.get("event") == "recap":
            recap = e
    ordered = sorted(groups.items(), key=lambda kv: -kv[1]["ms"])
    return {"steps": [dict(name=n, **g) for n, g in ordered], "recap": recap}


def _stamped_apply(path):
    d = load(os.path.dirname(path), os.path.basename(path))
    r = _steps(_json_lines(line for _, line in d["lines"]))
    r["wall_s"] = d["end"] - d["start"]
    return r


def _stats(values):
    import statistics

    return {"runs": len(values), "min": min(values), "median": statistics.median(values), "max": max(values)}


def _strace_summary(path, top=8):
    """Rows of `strace -c` (calls, seconds, syscall), most time first, plus the total."""
    rows, total = [], None
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            t = line.split()
            if len(t) < 5 or not re.match(r"^[\d.]+$", t[0]):
                continue
            name, seconds, calls = t[-1], float(t[1]), int(t[3])
            if name == "total":
                total = {"seconds": seconds, "calls": calls}
            else:
                rows.append({"syscall": name, "seconds": seconds, "calls": calls})
    rows.sort(key=lambda r: -r["seconds"])
    return {"top": rows[:top], "total": total, "calls": {r["syscall"]: r["calls"] for r in rows}}


def sites_collect(out):
    import glob
    import statistics

    w = os.path.join(out, "sites")
    meta = load(w, "meta.json")
    res = {"meta": meta, "proxy": load(w, "proxy.json")}
    res["first_apply"] = {k: _stamped_apply(os.path.join(w, f"first-{k}.json")) for k in ("1", "N")}
    # No-op rounds: noop/K-R.json, one measure.py round each; warm-up rounds dropped.
    noop = {}
    for k in ("1", "N"):
        walls, cpus = {}, {}
        for path in glob.glob(os.path.join(w, "noop", f"{k}-*.json")):
            r = int(os.path.basename(path)[:-5].split("-")[1])
            if r < meta["warmup"]:
                continue
            with open(path) as f:
                for name, m in json.load(f).items():
                    walls.setdefault(name, []).extend(m["wall_ms"])
                    cpus.setdefault(name, []).append(m["tree_cpu_ms_median"])
        noop[k] = {name: dict(_stats(walls[name]), cpu_median=statistics.median(cpus[name]), wall_ms=walls[name])
                   for name in sorted(walls)}
    res["noop"] = noop
    res["noop_ratio"] = {name: noop["N"][name]["median"] / noop["1"][name]["median"] for name in noop["1"]}
    res["noop_steps"] = {}
    for k in ("1", "N"):
        with open(os.path.join(w, f"noop-steps-{k}.json")) as f:
            res["noop_steps"][k] = _steps(_json_lines(f))
    res["strace"] = {}
    for k in ("1", "N"):
        p = strace_profile.profile(os.path.join(w, f"apply-{k}.strace")) if os.path.exists(
            os.path.join(w, f"apply-{k}.strace")) else None
        res["strace"][k] = {"profile": p, "summary": _strace_summary(os.path.join(w, f"apply-{k}.strace-summary"))}
    # Load runs: load/TEST-PAIR-REP-SIDE.json; SIDE 1 (the 1-site host, s1) and SIDE N
    # (PAIR: last or mixed on the N-site host) ran at the same time.
    runs = {}
    for path in sorted(glob.glob(os.path.join(w, "load", "*-*-*-*.json"))):
        test, pair, rep, side = os.path.basename(path)[:-5].split("-")
        with open(path) as f:
            runs.setdefault((test, pair), {}).setdefault(int(rep), {})[side] = json.load(f)

    def side_stats(rs):
        rate = statistics.median(r["requests_per_s"] for r in rs)
        pcpu = statistics.median(r["proxy_cpu_share"] for r in rs)
        return {
            "rates": [r["requests_per_s"] for r in rs],
            "median": rate,
            "min": min(r["requests_per_s"] for r in rs),
            "max": max(r["requests_per_s"] for r in rs),
            "proxy_cpu": pcpu,
            "client_cpu": statistics.median(r["client_cpu_share"] for r in rs),
            "journald_cpu": statistics.median(r.get("watch_cpu_share", {}).get("journald", 0) for r in rs),
            "per_proxy_core": statistics.median(r["requests_per_s"] / r["proxy_cpu_share"] for r in rs
                                                if r["proxy_cpu_share"]),
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in rs),
        }

    def backend(test, pair, side):
        """Server connections opened / requests, and reuses / requests, over the repetitions."""
        opened = reused = reqs = 0
        for path in glob.glob(os.path.join(w, "stats", f"{test}-{pair}-*-{side}-before.json")):
            after = path.replace("-before.json", "-after.json")
            if not os.path.exists(after):
                continue
            with open(path) as f0, open(after) as f1:
                a, b = json.load(f0), json.load(f1)
            opened += b["connect"] - a["connect"]
            reused += b["reuse"] - a["reuse"]
            reqs += b["req_tot"] - a["req_tot"]
        return {"backend_connects": opened, "backend_reuses": reused, "frontend_requests": reqs}

    load_res = {}
    for (test, pair), reps in sorted(runs.items()):
        both = [reps[r] for r in sorted(reps) if "1" in reps[r] and "N" in reps[r]]
        ratios = [b["N"]["requests_per_s"] / b["1"]["requests_per_s"] for b in both]
        core = [(b["N"]["requests_per_s"] / b["N"]["proxy_cpu_share"]) /
                (b["1"]["requests_per_s"] / b["1"]["proxy_cpu_share"]) for b in both]
        load_res[f"{test}/{pair}"] = {
            "reps": len(both),
            "one": side_stats([b["1"] for b in both]),
            "n": side_stats([b["N"] for b in both]),
            "ratios": ratios,
            "ratio": statistics.median(ratios),
            "ratio_per_core": statistics.median(core),
        }
        load_res[f"{test}/{pair}"]["one"].update(backend(test, pair, "1"))
        load_res[f"{test}/{pair}"]["n"].update(backend(test, pair, "N"))
    for key, r in load_res.items():
        test, pair = key.split("/")
        ctl = load_res.get(f"{test}/control")
        if pair != "control" and ctl:
            r["ratio_vs_control"] = r["ratio"] / ctl["ratio"]
    res["load"] = load_res
    cycles = []
    for c in range(1, meta["cycles"] + 1):
        rm, add = (os.path.join(w, f"cycle-{c}-{x}.json") for x in ("remove", "add"))
        if os.path.exists(rm) and os.path.exists(add):
            cycles.append({"remove": _stamped_apply(rm), "add": _stamped_apply(add)})
    res["cycles"] = cycles
    a, b = noop["1"]["edgeup apply"]["median"], noop["N"]["edgeup apply"]["median"]
    ratios = [r["ratio"] for k, r in load_res.items() if not k.endswith("/control")]
    paired = []
    for r in range(meta["warmup"], meta["warmup"] + meta["rounds"]):
        try:
            with open(os.path.join(w, "noop", f"1-{r}.json")) as f1, open(os.path.join(w, "noop", f"N-{r}.json")) as fn:
                paired.append(json.load(fn)["edgeup apply"]["wall_ms"][0] / json.load(f1)["edgeup apply"]["wall_ms"][0])
        except (OSError, KeyError, IndexError):
            pass
    res["noop_paired_ratio"] = {"median": statistics.median(paired), "min": min(paired), "max": max(paired)} if paired else None
    res["goals"] = {
        "noop_ratio": b / a, "noop_ratio_met": b / a <= 5,
        "noop_ms": b, "noop_ms_met": b < 100,
        "load_worst_ratio": min(ratios) if ratios else None,
        "load_met": bool(ratios) and min(ratios) >= 0.95,
    }
    return res


def _top_steps(r, n=4):
    return "; ".join(
        f"{s['name']} {s['ms']} ms" + (f" ({s['count']} steps)" if s["count"] > 1 else "")
        for s in r["steps"][:n] if s["ms"] > 0
    ) or "every step under 1 ms"


def sites(out):
    d = load(out, "sites.json")
    m, n = d["meta"], d["meta"]["sites"]
    g = d["goals"]
    lines = [
        f"### 6. Many sites: {n} sites vs 1 site",
        "",
        f"Two containers side by side, ACME off (a placeholder per site): one with a 1-site file "
        f"({m['addr_1']}:80/443), one with {n} sites ({m['addr_n']}:80/443); every site's backend is its "
        "own port, all served by one trivial backend on the host's loopback.",
        "",
        "#### First apply on a fresh host (apt included)",
        "",
        "| host | wall s | edgeup's clock s | slowest steps (ms; per-site steps summed) |",
        "| --- | ---: | ---: | --- |",
    ]
    for k, label in (("1", "1 site"), ("N", f"{n} sites")):
        r = d["first_apply"][k]
        lines.append(f"| {label} | {r['wall_s']:.2f} | {r['recap']['duration_ms'] / 1000:.2f} | {_top_steps(r)} |")
    lines += [
        "",
        "#### No-op re-run (`edgeup apply --yes -f FILE`)",
        "",
        f"{m['rounds']} rounds after {m['warmup']} warm-up; each round runs both commands in both containers, "
        "alternating which container goes first; timed inside the container by measure.py. Every timed run "
        "reported changed=0 failed=0, and no file under /etc/haproxy or /etc/edgeup and no HAProxy worker "
        "changed during the rounds (checked). ms.",
        "",
        "| host | command | min | median | max | CPU (median, tree) | ratio vs 1 site |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("edgeup apply", "edgeup plan"):
        for k, label in (("1", "1 site"), ("N", f"{n} sites")):
            r = d["noop"][k][name]
            ratio = r["median"] / d["noop"]["1"][name]["median"]
            lines.append(f"| {label} | {name} | {r['min']:.1f} | {r['median']:.1f} | {r['max']:.1f} | "
                         f"{r['cpu_median']:.1f} | {ratio:.2f}x |")
    lines += [
        "",
        f"Goals: the {n}-site no-op at most 5x the 1-site no-op: {g['noop_ratio']:.2f}x (ratio of medians; "
        + (f"per round, N-site run / 1-site run of the same round: median {d['noop_paired_ratio']['median']:.2f}x, "
           f"{d['noop_paired_ratio']['min']:.2f}-{d['noop_paired_ratio']['max']:.2f}x" if d.get("noop_paired_ratio") else "")
        + f"): {verdict(g['noop_ratio_met'])}; "
        f"under 100 ms: {g['noop_ms']:.1f} ms: {verdict(g['noop_ms_met'])}.",
        "",
    ]
    for k, label in (("1", "1 site"), ("N", f"{n} sites")):
        r = d["noop_steps"][k]
        lines.append(f"- Step durations of one `--json` no-op, {label} (edgeup's clock "
                     f"{r['recap']['duration_ms']} ms; whole ms per step): {_top_steps(r, 5)}.")
    for k, label in (("1", "1 site"), ("N", f"{n} sites")):
        st = d["strace"][k]
        if st["profile"]:
            p = st["profile"]
            progs = {}
            for argv0, t in p["programs"]:
                c, tt = progs.get(argv0, (0, 0.0))
                progs[argv0] = (c + 1, tt + t)
            progs_s = ", ".join(f"{a} x{c} ({t * 1000:.0f} ms)" for a, (c, t) in sorted(progs.items())) or "none"
            lines.append(f"- strace of one no-op, {label}: {p['total_ms']:.0f} ms under strace "
                         f"(child processes {p['buckets_ms']['child processes']:.0f} ms; programs started: {progs_s})")
        if st["summary"] and st["summary"]["total"]:
            s_ = st["summary"]
            c = s_["calls"]
            lines.append(
                f"  `strace -c`: {s_['total']['calls']} syscalls; openat {c.get('openat', 0)}, read {c.get('read', 0)}, "
                f"statx/newfstatat {c.get('statx', 0) + c.get('newfstatat', 0)}, mmap {c.get('mmap', 0)}, "
                f"write {c.get('write', 0)}; most time: "
                + ", ".join(f"{r['syscall']} {r['calls']}" for r in s_["top"][:5]) + ".")
    lines += [
        "",
        "#### Requests through each container's HAProxy",
        "",
        f"HAProxy as edgeup runs it (its systemd unit and config; nbthread unset, the unit restarted with "
        f"CPUAffinity=0, so {d['proxy']['threads']['1']} and {d['proxy']['threads']['N']} worker thread(s)) on CPU 0; load generators and "
        f"backend on CPU 1. The two hosts are loaded **at the same time** (s1 on the 1-site host beside "
        f"last, then beside mixed, on the {n}-site host), {m['reps']} times {m['duration']} s, the two proxies "
        f"sharing one CPU quota of twice the per-proxy budget ({m['full_budget']}% of the core for handshakes, "
        f"{m['wrk_budget']}% for wrk), which CFS splits evenly between them (proxy CPU column); "
        "ratio = median over the repetitions of (N-site rate / 1-site rate in the same run). "
        "`journald` = the container's journald receiving HAProxy's request logs (outside the budget). "
        f"Names: **s1** on the 1-site host; **last** = s{n} (SNI and Host) on the {n}-site host; "
        f"**mixed** = round-robin over all {n} names (SNI per connection for handshakes; Host per request "
        f"for keep-alive, on connections whose SNI is s{n}).",
        "",
        "| test | host, names | rate/s (min-max) | proxy CPU | client CPU | journald CPU | per proxy core | errors | new backend conns per 1k requests | ratio vs 1 site: median of pairs (min-max) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {"full": f"full TLS handshakes ({m['parallel']} x handshakes.py)",
              "keepalive": f"keep-alive requests (wrk -c{m['conns']})"}
    vlabels = {"last": f"{n} sites, last (s{n})", "mixed": f"{n} sites, mixed",
               "control": f"control: the {n}-site host cut to 1 site, s1"}

    def row(test, label, r, ratio):
        reqs = r.get("frontend_requests", 0)
        conns = f"{1000 * r['backend_connects'] / reqs:.1f}" if reqs and test != "full" else "-"
        return (f"| {labels[test]} | {label} | {r['median']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f}) | "
                f"{r['proxy_cpu']:.0%} | {r['client_cpu']:.0%} | {r['journald_cpu']:.0%} | "
                f"{r['per_proxy_core']:,.0f} | {r['errors']} | {conns} | {ratio} |")

    for test in ("full", "keepalive"):
        for v in ("last", "mixed", "control"):
            r = d["load"].get(f"{test}/{v}")
            if not r:
                continue
            rs = r["ratios"]
            lines.append(row(test, f"1 site, s1 (beside {v})", r["one"], "1"))
            lines.append(row(test, vlabels[v], r["n"], f"**{r['ratio']:.3f}x** ({min(rs):.3f}-{max(rs):.3f})"))
    corrected = [f"{labels[k.split('/')[0]].split(' (')[0]}, {k.split('/')[1]}: {r['ratio_vs_control']:.3f}x"
                 for k, r in d["load"].items() if "ratio_vs_control" in r]
    if corrected:
        lines += ["", "Against the control (paired ratio / the control's paired ratio of the same test): "
                  + "; ".join(corrected) + "."]
    worst = g["load_worst_ratio"]
    lines += [
        "",
        f"Goal: {n} sites within 5% of 1 site (every paired ratio's median >= 0.95): worst "
        f"{worst:.3f}x: {verdict(g['load_met'])}.",
    ]
    if d["cycles"]:
        lines += [
            "",
            f"#### Removing and adding {n - 1} sites on the running {n}-site host (no apt)",
            "",
            "| cycle | remove: wall s | slowest steps | add back: wall s | slowest steps |",
            "| --- | ---: | --- | ---: | --- |",
        ]
        for i, c in enumerate(d["cycles"], 1):
            lines.append(f"| {i} | {c['remove']['wall_s']:.2f} | {_top_steps(c['remove'], 3)} | "
                         f"{c['add']['wall_s']:.2f} | {_top_steps(c['add'], 3)} |")
    lines += ["", versions(os.path.join(out, "sites"), "versions.md")]
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
    if os.path.exists(os.path.join(out, "sites.json")):
        d = load(out, "sites.json")
        g, n = d["goals"], d["meta"]["sites"]
        rows.append(f"| 6 many sites: no-op {n} sites / 1 site | {g['noop_ratio']:.2f}x ({g['noop_ms']:.1f} ms) | "
                    f"<= 5x: {verdict(g['noop_ratio_met'])}; < 100 ms: {verdict(g['noop_ms_met'])} |")
        if g["load_worst_ratio"] is not None:
            rows.append(f"| 6 many sites: requests/s {n} sites / 1 site (worst of handshakes, keep-alive) | "
                        f"{g['load_worst_ratio']:.3f}x | within 5%: {verdict(g['load_met'])} |")
    return "\n".join(["| benchmark | ratio / figure | target |", "| --- | --- | --- |"] + rows)


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "sites-json":
        print(json.dumps(sites_collect(out), indent=1))
        return
    print({"noop": noop, "issuance": issuance, "served": served, "overhead": overhead,
           "sites": sites, "summary": summary}[kind](out))


if __name__ == "__main__":
    main()
