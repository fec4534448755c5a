#!/usr/bin/env python3
"""Helpers of bench/issuance-many.sh (stdlib only).

  issuance_many.py served ROOT_PEM NAMES_FILE OUT_JSON
      For every name: TLS to 127.0.0.1:443 with that SNI, verified against
      ROOT_PEM (Pebble's root) and the name; writes {name: serial}. Exits 1
      naming the first names that fail.
  issuance_many.py inflight PEBBLE_LOG FIRST_LINE LAST_LINE
      Orders in flight in that slice of Pebble's log (an order is in flight
      from "Added order" until "Issued certificate serial ... for order"):
      prints {"most": N, "added": N, "issued": N} as JSON.
  issuance_many.py record RUNS_JSONL CLIENT ROUND WALL_S EVENTS INFLIGHT_JSON SITES
      Checks one timed apply (EVENTS: its --json lines): the recap says
      failed=0 and every site's "CA-issued certificate" step changed;
      appends the run to RUNS_JSONL. Exits 1 otherwise.
  issuance_many.py report DIR
      The markdown report of DIR/issuance-many/ (runs.jsonl, meta.json).
"""
import json
import os
import socket
import ssl
import statistics
import sys


def served(root, names_file, out):
    names = [n.strip() for n in open(names_file) if n.strip()]
    ctx = ssl.create_default_context(cafile=root)
    serials, failed = {}, []
    for name in names:
        try:
            with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as tls:
                    serials[name] = tls.getpeercert()["serialNumber"]
        except (OSError, ssl.SSLError, KeyError) as e:
            failed.append(f"{name}: {e}")
    json.dump(serials, open(out, "w"), indent=1)
    if failed:
        print(f"{len(failed)} of {len(names)} names are not served a certificate that verifies "
              f"against Pebble's root: " + "; ".join(failed[:5]), file=sys.stderr)
        sys.exit(1)


def inflight(log, first, last):
    lines = open(log, errors="replace").read().splitlines()[int(first):int(last)]
    open_orders, most, added, issued = set(), 0, 0, 0
    for line in lines:
        if 'Added order "' in line:
            open_orders.add(line.split('Added order "', 1)[1].split('"', 1)[0])
            added += 1
        elif "Issued certificate serial" in line and " for order " in line:
            open_orders.discard(line.rsplit(" for order ", 1)[1].strip())
            issued += 1
        most = max(most, len(open_orders))
    print(json.dumps({"most": most, "added": added, "issued": issued}))


CERT = "CA-issued certificate"


def events_of(path):
    return [json.loads(line) for line in open(path) if line.startswith("{")]


def record(runs, client, rnd, wall, events_path, inflight_json, sites):
    events = events_of(events_path)
    recap = events[-1] if events and events[-1].get("event") == "recap" else None
    certs = [e for e in events if e.get("event") == "step" and e.get("name") == CERT]
    changed = [e for e in certs if e["status"] == "changed"]
    if recap is None or recap["failed"] != 0 or len(changed) != int(sites):
        bad = [f"{e.get('site')}: {e.get('status')} {e.get('message')}" for e in certs
               if e["status"] != "changed"][:5]
        print(f"{client} round {rnd}: recap {recap}, {len(changed)} of {sites} certificates issued; "
              f"{bad}", file=sys.stderr)
        sys.exit(1)
    pebble = json.loads(inflight_json)
    run = {
        "client": client, "round": int(rnd), "wall_s": float(wall),
        "clock_s": recap["duration_ms"] / 1000,
        "cert_steps_s": sum(e["duration_ms"] for e in certs) / 1000,
        "issued": pebble["issued"], "added": pebble["added"], "most_in_flight": pebble["most"],
        "reloads": sum(1 for e in events if e.get("name") == "reload haproxy" and e["status"] == "changed"),
        "events": os.path.basename(events_path),
    }
    if pebble["issued"] != int(sites):
        print(f"{client} round {rnd}: Pebble issued {pebble['issued']} certificates, not {sites}",
              file=sys.stderr)
        sys.exit(1)
    with open(runs, "a") as f:
        f.write(json.dumps(run) + "\n")


def slowest(path, n=4):
    per = {}
    for e in events_of(path):
        if e.get("event") == "step":
            count, ms = per.get(e["name"], (0, 0))
            per[e["name"]] = (count + 1, ms + e["duration_ms"])
    top = sorted(per.items(), key=lambda kv: -kv[1][1])[:n]
    return "; ".join(f"{name} {ms} ms" + (f" ({count} steps)" if count > 1 else "")
                     for name, (count, ms) in top)


def report(out_dir):
    w = os.path.join(out_dir, "issuance-many")
    meta = json.load(open(os.path.join(w, "meta.json")))
    runs = [json.loads(line) for line in open(os.path.join(w, "runs.jsonl"))]
    sites = meta["sites"]
    by = {c: [r for r in runs if r["client"] == c] for c in ("builtin", "certbot")}
    med = {c: statistics.median(r["wall_s"] for r in rs) for c, rs in by.items() if rs}
    print(f"### 7. {sites} certificates in one apply: builtin (batched) vs certbot (one after another)\n")
    print(f"One Debian 12 container, converged with ACME off ({sites} placeholders, HAProxy running); "
          f"then, per round and client, the certificates are removed (placeholders back, ACME off) and "
          f"`edgeup --json apply --yes -f FILE` with ACME on issues all {sites} from Pebble. "
          f"{meta['rounds']} round(s), the clients' order alternating. Wall time of the whole apply "
          f"(measured around it from the host), seconds.\n")
    print("| client | round | wall s | edgeup's clock s | certificate steps (sum of their durations) s | "
          "issued (Pebble) | most orders in flight (Pebble's log) | reloads |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(f"| {r['client']} | {r['round']} | {r['wall_s']:.2f} | {r['clock_s']:.2f} | "
              f"{r['cert_steps_s']:.2f} | {r['issued']} | {r['most_in_flight']} | {r['reloads']} |")
    print()
    if len(med) == 2:
        ratio = med["certbot"] / med["builtin"]
        goal_time = "**met**" if med["builtin"] < 15 else "**not met**"
        goal_ratio = "**met**" if ratio >= 10 else "**not met**"
        print(f"Medians: builtin {med['builtin']:.2f} s, certbot {med['certbot']:.2f} s; "
              f"**ratio certbot / builtin = {ratio:.1f}x**.\n")
        print(f"Goals: {sites} sites under 15 s with the builtin client: {med['builtin']:.2f} s: {goal_time}; "
              f"at least 10x faster than certbot one after another: {ratio:.1f}x: {goal_ratio}.\n")
    for client, rs in by.items():
        if rs:
            overlap = ("; its certificate steps overlap, so they add up to more than they took"
                       if client == "builtin" else "")
            print(f"- step durations of the last {client} apply (edgeup's clock, summed per step "
                  f"name{overlap}): {slowest(os.path.join(w, rs[-1]['events']))}")
    for line in meta.get("versions", []):
        print(f"- {line}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:] or [""]
    {"served": served, "inflight": inflight, "record": record, "report": report}.get(
        cmd, lambda *_: sys.exit(__doc__))(*args)
