#!/usr/bin/env bash
# Where edgeup's no-op CPU time goes (not one of the five benchmarks; it
# backs the profile notes in RESULTS.md). Builds an unstripped release
# binary (same code, symbols kept) in a separate target directory, converges
# a container with it, then samples RUNS no-op `edgeup apply` runs with
# `perf record` on the host and sorts edgeup's self time into categories.
# Output: $BENCH_OUT/profile-noop.md (+ perf-comm.txt, perf-self.txt).
# Environment: RUNS (default 200); SITES=N profiles the no-op of an N-site
# file instead (s1..sN.example.test, ACME off; output profile-noop-N-sites.md,
# perf-comm-N-sites.txt, perf-self-N-sites.txt).
source "$(dirname "$0")/lib/common.sh"

RUNS=${RUNS:-200}
SITES=${SITES:-}
[ -z "$SITES" ] || [[ $SITES =~ ^[0-9]+$ ]] || die "SITES must be a whole number"
SUFFIX=${SITES:+-$SITES-sites}
require_root
host_install linux-perf haproxy curl
PROF_TARGET=${PROF_TARGET:-/var/tmp/edgeup-bench-prof}
log "cargo build --release (unstripped, in $PROF_TARGET)"
(cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --quiet --target-dir "$PROF_TARGET") ||
  die "cargo build failed"
EDGEUP_BIN=$PROF_TARGET/release/edgeup
take_lock
BACKEND_PORT=$(free_port)
start_trivial_backend "$BACKEND_PORT"
boot_container profile
SITE="--domain $DOMAIN --email ops@example.org --backend 127.0.0.1:$BACKEND_PORT --acme-directory off"
if [ -n "$SITES" ]; then
  # Backends on ports nobody listens on: a no-op never connects to them.
  {
    echo "email: ops@example.org"
    echo 'acme: {directory: "off"}'
    echo "sites:"
    for ((i = 1; i <= SITES; i++)); do
      echo "  - domain: s$i.example.test"
      echo "    backends: [\"127.0.0.1:$((20000 + i))\"]"
    done
  } >"$ROOT/root/sites.yaml"
  SITE="-f /root/sites.yaml"
fi
cexec sh -c "edgeup apply --yes $SITE" >/dev/null 2>&1 || die "edgeup apply failed"
printf 'for i in $(seq %s); do edgeup apply --yes %s >/dev/null 2>&1; done\n' "$RUNS" "$SITE" >"$ROOT/root/loop.sh"
data=$OUT_DIR/profile-noop$SUFFIX.perf
log "perf record over $RUNS no-op runs"
perf record -q -F 25000 -o "$data" -- nsenter -t "$INIT" -a -- /bin/sh /root/loop.sh 9>&- >/dev/null 2>&1 ||
  die "perf record failed"
# Symbols come from the container's files (--symfs), while it still exists.
perf report --symfs "$ROOT" -i "$data" --no-children --sort comm -g none 2>/dev/null >"$OUT_DIR/perf-comm$SUFFIX.txt" || true
perf report --symfs "$ROOT" -i "$data" --comm edgeup --percentage relative --no-children --sort sym -g none \
  2>/dev/null >"$OUT_DIR/perf-self$SUFFIX.txt" || true
stop_container

$PY - "$OUT_DIR" "$RUNS" "$SUFFIX" "$SITES" <<'EOF' | tee "$OUT_DIR/profile-noop$SUFFIX.md"
import re, sys
out, runs, suffix, sites = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def rows(name):
    for line in open(f"{out}/{name}"):
        m = re.match(r"\s+([\d.]+)%\s+(.*)", line)
        if m:
            yield float(m.group(1)), m.group(2).strip()
comm = list(rows(f"perf-comm{suffix}.txt"))
cats = [
    ("dpkg status: parse_dpkg_status, str split on \\n\\n, from_utf8_lossy", r"parse_dpkg_status|TwoWaySearcher|Utf8Chunks"),
    ("YAML: serde-saphyr/granit-parser, derived Deserialize visitors", r"granit_parser|serde_saphyr|Deserialize for|visit_map"),
    ("minijinja: playbook and template rendering", r"minijinja"),
    ("ring / x509: placeholder certificate and key checks", r"ring_core|nistz256|x509|der_parser|asn1|rcgen"),
    ("clap: argument parsing", r"clap"),
    ("kernel: exec, page faults, file reads, fork", r"\[k\]"),
    ("unresolved user code (ld.so, libc)", r"\[\.\] 0x"),
]
total = {c: 0.0 for c, _ in cats}
other = 0.0
for p, sym in rows(f"perf-self{suffix}.txt"):
    for c, rx in cats:
        if re.search(rx, sym):
            total[c] += p
            break
    else:
        other += p
what = f" of a {sites}-site file" if sites else ""
print(f"#### Profile of the no-op{what}: perf, {runs} runs of `edgeup apply` on the converged container")
print()
print("Share of all samples by process: " + ", ".join(f"{n} {p:.0f}%" for p, n in comm[:4]) + ".")
print()
print("edgeup's own samples (self time, unstripped release build), by category:")
print()
print("| category | share of edgeup's samples |")
print("| --- | ---: |")
for c, _ in cats:
    print(f"| {c} | {total[c]:.1f}% |")
print(f"| everything else | {other:.1f}% |")
EOF
