#!/usr/bin/env bash
# Benchmark 4: the served configuration. The same HAProxy binary (the host's
# Debian package) runs edgeup's rendered haproxy.cfg with its placeholder
# (ECDSA P-256), then the tutorial's configuration with the tutorial's
# placeholder (RSA-2048, CN=localhost, http-server-close), in front of the
# same trivial backend, all on loopback test ports. Three load tests, each
# bounded by DURATION seconds, REPS times, alternating the configurations:
#   full:      new TLS connections with full handshakes, no request:
#              PARALLEL x `openssl s_time -new` (never resumes a session)
#   reconnect: a new TLS connection per request (Connection: close) with
#              wrk, which resumes TLS sessions (HAProxy counts ~100% reuse),
#              so the certificate's key type plays no part
#   keepalive: requests over kept-alive TLS connections, wrk -c CONNS
# CPU: the proxy under test runs on CPU 0 with a fixed CPU budget (a cgroup
# CPU quota: FULL_BUDGET% of that core for the full-handshake test,
# WRK_BUDGET% for the wrk tests), the load generator and the backend get
# the whole of CPU 1. On two cores no client can outrun a whole proxy core
# doing ECDSA handshakes (the client's ECDSA verify costs more than the
# server's sign), so without a budget the client would be measured. With it,
# the proxy is the bottleneck in every run; the results show each side's
# CPU share so this can be checked. The backend answers every request
# itself (`http-request return`, one thread).
# Environment: DURATION (10), REPS (3), CONNS (50), PARALLEL (6),
#   FULL_BUDGET (15), WRK_BUDGET (50).
source "$(dirname "$0")/lib/common.sh"

DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-50}
PARALLEL=${PARALLEL:-6}
FULL_BUDGET=${FULL_BUDGET:-15}
WRK_BUDGET=${WRK_BUDGET:-50}

require_root
host_install haproxy wrk curl openssl
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (proxy on one, load generator and backend on the other)"

# The lock is not needed for the ports here (test ports), but holding it
# keeps the system tests' containers from competing for the CPU meanwhile.
take_lock

W=$OUT_DIR/served
rm -rf "$W"
mkdir -p "$W/edgeup/certs" "$W/tutorial/certs"

# edgeup's rendered config and placeholder: from noop.sh's converged
# container when it ran in this output directory, else converge one now.
if [ ! -s "$OUT_DIR/edgeup-haproxy.cfg" ] || [ ! -s "$OUT_DIR/edgeup-placeholder.pem" ]; then
  build_edgeup
  port=$(free_port)
  start_trivial_backend "$port"
  boot_container served
  cexec edgeup apply --yes --domain "$DOMAIN" --email ops@example.org --backend "127.0.0.1:$port" \
    --acme-directory off >"$OUT_DIR/served-converge.log" 2>&1 || die "edgeup apply failed"
  cp "$ROOT/etc/haproxy/haproxy.cfg" "$OUT_DIR/edgeup-haproxy.cfg"
  cp "$ROOT/etc/haproxy/certs/$DOMAIN.pem" "$OUT_DIR/edgeup-placeholder.pem"
  stop_container
fi

BACKEND_PORT=$(free_port)
E_HTTP=$(free_port); E_HTTPS=$(free_port); T_HTTP=$(free_port); T_HTTPS=$(free_port)
BACKEND=127.0.0.1:$BACKEND_PORT

# edgeup: the rendered file, with only the addresses moved to the test ports,
# the certificate folder and the admin socket moved to the work directory,
# and the app address pointed at the trivial backend.
install -m 600 "$OUT_DIR/edgeup-placeholder.pem" "$W/edgeup/certs/$DOMAIN.pem"
app=$(awk '/^backend app/ {f=1} f && $1 == "server" {print $3; exit}' "$OUT_DIR/edgeup-haproxy.cfg")
[ -n "$app" ] || die "no app server line in edgeup's haproxy.cfg"
sed -e "s|^    bind :80\$|    bind 127.0.0.1:$E_HTTP|" \
  -e "s|^    bind :443 ssl crt /etc/haproxy/certs/|    bind 127.0.0.1:$E_HTTPS ssl crt $W/edgeup/certs/|" \
  -e "s|stats socket /run/haproxy/admin.sock|stats socket $W/edgeup/admin.sock|" \
  -e "s|$app\$|$BACKEND|" \
  "$OUT_DIR/edgeup-haproxy.cfg" >"$W/edgeup/haproxy.cfg"
diff -u "$OUT_DIR/edgeup-haproxy.cfg" "$W/edgeup/haproxy.cfg" >"$W/edgeup/changes.diff" || true
[ "$(grep -c '^[-+]   ' "$W/edgeup/changes.diff")" = 8 ] ||
  die "adapting edgeup's config did not change exactly 4 lines: $(cat "$W/edgeup/changes.diff")"

# The tutorial: its placeholder command, then its config.
openssl req -x509 -newkey rsa:2048 -keyout "$W/tutorial/haproxy.key" -out "$W/tutorial/haproxy.crt" \
  -days 3650 -nodes -subj "/CN=localhost" 2>/dev/null
cat "$W/tutorial/haproxy.crt" "$W/tutorial/haproxy.key" >"$W/tutorial/certs/haproxy.pem"
sed -e "s|@HTTP_PORT@|$T_HTTP|" -e "s|@HTTPS_PORT@|$T_HTTPS|" -e "s|@CERT_DIR@|$W/tutorial/certs|" \
  -e "s|@DOMAIN@|$DOMAIN|" -e "s|@BACKEND@|$BACKEND|" -e "s|@PIDFILE@|$W/tutorial/haproxy.pid|" \
  "$BENCH_DIR/served/tutorial.cfg.in" >"$W/tutorial/haproxy.cfg"

for c in edgeup tutorial; do
  haproxy -c -q -f "$W/$c/haproxy.cfg" || die "haproxy -c rejects the $c config"
done

start_trivial_backend "$BACKEND_PORT" 1

# The proxy's CPU budget: a cgroup with a CPU quota (v1 cpu controller, or
# cgroup v2 with the cpu controller available at the root).
CG=
if [ -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
  CG=/sys/fs/cgroup/cpu/edgeup-bench-proxy
  mkdir -p "$CG"
  echo 10000 >"$CG/cpu.cfs_period_us"
elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
  CG=/sys/fs/cgroup/edgeup-bench-proxy
  mkdir -p "$CG"
else
  die "no cgroup CPU controller to give the proxy a CPU budget"
fi
on_exit "rmdir $CG 2>/dev/null"
set_budget() { # PERCENT of one core
  local quota=$(($1 * 100))
  if [ -e "$CG/cpu.cfs_quota_us" ]; then echo "$quota" >"$CG/cpu.cfs_quota_us"; else echo "$quota 10000" >"$CG/cpu.max"; fi
}

PROXY_PID=
start_proxy() { # NAME
  set_budget 100
  taskset -c 0 haproxy -db -f "$W/$1/haproxy.cfg" >"$W/$1/stdout.log" 2>"$W/$1/stderr.log" 9>&- &
  PROXY_PID=$!
  echo "$PROXY_PID" >"$CG/cgroup.procs"
  local port i
  port=$([ "$1" = edgeup ] && echo "$E_HTTPS" || echo "$T_HTTPS")
  for i in $(seq 50); do
    if curl -ksS -o /dev/null --resolve "$DOMAIN:$port:127.0.0.1" "https://$DOMAIN:$port/" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$1 HAProxy did not start: $(cat "$W/$1/stderr.log")"
}
stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=
}
on_exit stop_proxy

# Smoke test: both answer with the backend, with the certificate they were given.
for c in edgeup tutorial; do
  port=$([ "$c" = edgeup ] && echo "$E_HTTPS" || echo "$T_HTTPS")
  start_proxy "$c"
  # Host without the port, as browsers send it on 443 (the tutorial's Host
  # ACL would not match "name:port").
  body=$(curl -ksS -H "Host: $DOMAIN" --resolve "$DOMAIN:$port:127.0.0.1" "https://$DOMAIN:$port/")
  [ "$body" = "backend: bench" ] || die "$c: unexpected response: $body"
  echo | openssl s_client -connect "127.0.0.1:$port" -servername "$DOMAIN" 2>/dev/null |
    grep -E '^(Server public key|New, |Peer signature type)' | tr '\n' ' ' >"$W/$c/tls.txt"
  log "$c: $(cat "$W/$c/tls.txt")"
  stop_proxy
done

# Load runs on CPU 1, bounded in time; alternating configurations.
run_load() { # NAME TEST REP
  local c=$1 test=$2 rep=$3 port
  port=$([ "$c" = edgeup ] && echo "$E_HTTPS" || echo "$T_HTTPS")
  case $test in
    full)
      set_budget "$FULL_BUDGET"
      $PY "$BENCH_DIR/lib/loadrun.py" "$PROXY_PID" "$W/$c-$test-$rep.json" --parallel "$PARALLEL" -- \
        taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$DURATION" ;;
    reconnect | keepalive)
      set_budget "$WRK_BUDGET"
      local extra=()
      [ "$test" = reconnect ] && extra=(-H "Connection: close")
      $PY "$BENCH_DIR/lib/loadrun.py" "$PROXY_PID" "$W/$c-$test-$rep.json" -- \
        taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s -H "Host: $DOMAIN" "${extra[@]}" \
        "https://127.0.0.1:$port/" ;;
  esac || die "load run failed ($c $test)"
}
for rep in $(seq "$REPS"); do
  for c in tutorial edgeup; do
    start_proxy "$c"
    for test in full reconnect keepalive; do
      log "rep $rep/$REPS: $c $test (${DURATION}s)"
      run_load "$c" "$test" "$rep"
    done
    stop_proxy
  done
done

{
  echo "- edgeup (rendered the config): $(edgeup_id)"
  echo "- haproxy: $(haproxy -v | head -1) (host binary for both configurations; $(haproxy -vv | grep -m1 'Built with OpenSSL version' | sed 's/Built with //'))"
  echo "- wrk: $(wrk -v 2>&1 | head -1)"
  echo "- openssl (placeholders): $(openssl version)"
  echo "- TLS seen by openssl s_client: edgeup: $(cat "$W/edgeup/tls.txt"); tutorial: $(cat "$W/tutorial/tls.txt")"
  echo "- load: full = $PARALLEL x openssl s_time -new -time $DURATION (proxy budget $FULL_BUDGET% of a core); reconnect/keepalive = wrk -t1 -c$CONNS -d${DURATION}s (proxy budget $WRK_BUDGET% of a core); $REPS repetitions per configuration and test, alternating"
} >"$OUT_DIR/served-versions.md"

$PY "$BENCH_DIR/lib/report.py" served "$OUT_DIR" | tee "$OUT_DIR/served.md"
