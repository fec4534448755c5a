#!/usr/bin/env bash
# Benchmark 5: edgeup's own overhead during a fresh converge, i.e. the
# wall time of `edgeup apply` on a fresh Debian 12 minus the time spent
# inside apt-get and waiting on the ACME CA.
#
# RUNS times: boot a fresh container, converge it with the builtin ACME
# client against Pebble on the host's loopback (HTTP-01 through the
# container's HAProxy on :80). In the container, /usr/local/sbin holds
# wrappers for apt-get, systemctl and haproxy that log how long each call
# made by edgeup took (calls made by apt's maintainer scripts are not
# counted); the JSON step events give the ACME steps' durations. Split:
#   apt-get                  time inside apt-get (update + install, downloads included)
#   ACME                     the "ACME account" and "CA-issued certificate" steps
#                            (registration, preflight through HAProxy, order,
#                            validation, finalize, download, swap)
#   other tools              systemctl (enable/start/reload/show) and haproxy -c outside the ACME steps
#   edgeup in-process        the rest: edgeup's own code
# Overhead (the issue's definition) = total - apt-get - ACME.
# Environment: RUNS (default 3).
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/pebble.sh"

RUNS=${RUNS:-3}

require_root
host_install haproxy curl
build_edgeup
take_lock
start_pebble
BACKEND_PORT=$(free_port)
start_trivial_backend "$BACKEND_PORT"

wrapper() { # NAME REAL
  cat <<EOF
#!/bin/bash
# edgeup bench wrapper: times calls made by edgeup (parent comm "edgeup").
s=\$EPOCHREALTIME
$2 "\$@"
rc=\$?
e=\$EPOCHREALTIME
read -r parent </proc/\$PPID/comm
if [ "\$parent" = edgeup ]; then echo "$1 \$s \$e \$*" >>/run/edgeup-bench-calls.log; fi
exit \$rc
EOF
}

for run in $(seq "$RUNS"); do
  boot_container "overhead-$run"
  cp "$PEBBLE_CA" "$ROOT/root/pebble-ca.pem"
  echo "127.0.0.1 $DOMAIN" >>"$ROOT/etc/hosts"
  for tool in apt-get:/usr/bin/apt-get systemctl:/usr/bin/systemctl haproxy:/usr/sbin/haproxy; do
    wrapper "${tool%%:*}" "${tool#*:}" >"$ROOT/usr/local/sbin/${tool%%:*}"
    chmod 755 "$ROOT/usr/local/sbin/${tool%%:*}"
  done
  log "run $run/$RUNS: fresh converge (apt, placeholder, haproxy.cfg, services, ACME account + certificate)"
  $PY "$BENCH_DIR/lib/stamp_run.py" "$OUT_DIR/overhead-$run.json" -- \
    nsenter -t "$INIT" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 edgeup --json apply --yes --domain "$DOMAIN" --email ops@example.org \
    --backend "127.0.0.1:$BACKEND_PORT" --acme-directory "$PEBBLE_DIRECTORY" \
    --acme-ca-bundle /root/pebble-ca.pem 9>&- || die "edgeup apply failed (run $run): see $OUT_DIR/overhead-$run.json"
  cexec cat /run/edgeup-bench-calls.log >"$OUT_DIR/overhead-$run.calls" ||
    die "no wrapper log: the wrappers saw no call from edgeup"
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any("\"CA-issued certificate\",\"status\":\"changed\"" in l for _, l in d["lines"]) else 1)' \
    "$OUT_DIR/overhead-$run.json" || die "run $run issued no certificate"
  stop_container
done

{
  echo "- edgeup: $(edgeup_id)"
  echo "- apt in the container: Debian 12 (bookworm) minbase, apt cache shared with the host (/var/cache/apt/archives), lists refreshed when older than a day"
  echo "- pebble: Debian package $(dpkg-query -W -f='${Version}' pebble)"
} >"$OUT_DIR/overhead-versions.md"

$PY "$BENCH_DIR/lib/report.py" overhead "$OUT_DIR" | tee "$OUT_DIR/overhead.md"
