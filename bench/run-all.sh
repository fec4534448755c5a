#!/usr/bin/env bash
# Runs every benchmark in one go, on this machine, into one output
# directory, and prints the ratios. Root, Debian 12 (or another Debian-like
# host with systemd-nspawn), 2+ cores. Takes about 10-15 minutes; the first
# run on a machine also builds the container rootfs (debootstrap, a few
# minutes) and edgeup (cargo build --release).
#
#   bench/run-all.sh                 all five
#   bench/run-all.sh noop served     only these (noop, issuance, served, overhead, sites,
#                                    issuance-many, profile-noop: not run by default)
#
# Results: bench/out/ (or $BENCH_OUT): all.md (everything below), and each
# benchmark's JSON and logs. Nothing here fails on timing: a missed target
# is reported, not an error. A non-zero exit means a benchmark could not run.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${BENCH_OUT:-$BENCH_DIR/out}
export BENCH_OUT=$OUT_DIR
mkdir -p "$OUT_DIR"
PY=/usr/bin/python3

benchmarks=("$@")
[ ${#benchmarks[@]} -gt 0 ] || benchmarks=(noop issuance served overhead)

source "$BENCH_DIR/lib/common.sh"
trap - EXIT
require_root
host_install python3 git
build_edgeup
export EDGEUP_BIN_GIVEN=1 # built once, here

started=$(date -u '+%Y-%m-%d %H:%M UTC')
for b in "${benchmarks[@]}"; do
  [ -x "$BENCH_DIR/$b.sh" ] || die "no benchmark named $b (noop, issuance, served, overhead, sites, issuance-many, profile-noop)"
  log "=== $b ==="
  "$BENCH_DIR/$b.sh"
done

{
  echo "# edgeup benchmarks: $started"
  echo
  echo "## Machine"
  echo
  machine_description
  echo
  echo "## Ratios"
  echo
  $PY "$BENCH_DIR/lib/report.py" summary "$OUT_DIR"
  echo
  for b in "${benchmarks[@]}"; do
    [ -f "$OUT_DIR/$b.md" ] && cat "$OUT_DIR/$b.md" && echo
  done
} >"$OUT_DIR/all.md"
cat "$OUT_DIR/all.md"
