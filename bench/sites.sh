#!/usr/bin/env bash
# Benchmark 6: many sites. Two Debian 12 containers booted side by side, one
# converged with a 1-site file, one with a SITES-site file (default 200),
# ACME off (a self-signed placeholder per site). The containers share the
# host's network, so each HAProxy gets its own loopback addresses
# (ADDR_1 = 127.0.0.2 and ADDR_N = 127.0.0.3, ports 80/443). Every site's
# backend is its own port on 127.0.0.1 (BASE+i), all served by one trivial
# backend (one HAProxy listening on the whole port range).
#
#   1. first apply: the wall time of each container's first
#      `edgeup --json apply --yes -f FILE` (a fresh host: apt included),
#      with its step durations;
#   2. no-op: WARMUP + ROUNDS rounds; every round runs, in each container in
#      turn (alternating which goes first), `edgeup apply --yes -f FILE` and
#      `edgeup plan -f FILE`, timed by measure.py inside the container. Every
#      timed run's recap must say changed=0 failed=0, and the files under
#      /etc/haproxy and /etc/edgeup and HAProxy's worker must be untouched by
#      the rounds, or the benchmark fails. Then the step durations of one
#      `--json` no-op and strace profiles of one no-op in each container;
#   3. requests through each container's own HAProxy (the one edgeup
#      manages), loaded from the host: full TLS handshakes/s (handshakes.py:
#      SNI, no session reuse) and keep-alive requests/s (wrk), for s1 on the
#      1-site host and, on the SITES-site host, the last site (sSITES: its
#      name, certificate and backend come last) and a mix of every name
#      (round-robin over the SNI names, resp. the Host headers). The
#      config sets no nbthread, so HAProxy runs one thread per CPU it may
#      use at start: each unit is restarted with CPUAffinity=0 (a runtime
#      drop-in), i.e. one thread on CPU 0. The two hosts are loaded at the
#      same time (s1 beside last, then s1 beside mixed), so machine drift
#      hits both alike, and both proxies share one cgroup v1 CPU quota of
#      twice the per-proxy budget (FULL_BUDGET% of the core for handshakes,
#      WRK_BUDGET% for wrk), which CFS splits evenly between the two busy
#      proxies (a quota each was tried: the two cgroups' throttling was
#      lopsided, up to 37% in an A/A trial); the load generators and the
#      backend run on CPU 1. REPS repetitions of DURATION seconds; ratio =
#      median of the paired ratios;
#   4. CYCLES times on the SITES-site host: apply the 1-site file (removes
#      SITES-1 sites), then the SITES-site file again (adds them back), timed
#      (no apt: the converge cost of many sites on a running host). With
#      CONTROL=1, while that host is down to s1 in the first cycle, both
#      hosts are loaded at once again (s1 and s1): the benchmark's own
#      asymmetry between the two sides, to read the ratios of 3 against.
# Results: $BENCH_OUT/sites.json, sites.md; raw files in $BENCH_OUT/sites/.
#
# Environment: SITES (200), ROUNDS (15), WARMUP (2), CYCLES (1),
#   DURATION (10), REPS (5), CONNS (50), PARALLEL (4), FULL_BUDGET (15),
#   WRK_BUDGET (35), CONTROL (1), ADDR_1 (127.0.0.2), ADDR_N (127.0.0.3).
source "$(dirname "$0")/lib/common.sh"
export PYTHONDONTWRITEBYTECODE=1 # report.py imports strace_profile: no __pycache__ in bench/lib

SITES=${SITES:-200}
ROUNDS=${ROUNDS:-15}
WARMUP=${WARMUP:-2}
CYCLES=${CYCLES:-1}
DURATION=${DURATION:-10}
REPS=${REPS:-5}
CONNS=${CONNS:-50}
PARALLEL=${PARALLEL:-4}
FULL_BUDGET=${FULL_BUDGET:-15}
WRK_BUDGET=${WRK_BUDGET:-35}
CONTROL=${CONTROL:-1}
ADDR_1=${ADDR_1:-127.0.0.2}
ADDR_N=${ADDR_N:-127.0.0.3}
LAST=s$SITES.example.test

require_root
host_install haproxy wrk curl openssl util-linux
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (proxy on one, load generator and backend on the other)"
for v in SITES ROUNDS WARMUP CYCLES DURATION REPS CONNS PARALLEL FULL_BUDGET WRK_BUDGET CONTROL; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$SITES" -ge 2 ] || die "SITES must be 2 or more"
[ "$ROUNDS" -ge 1 ] && [ "$REPS" -ge 1 ] || die "ROUNDS and REPS must be 1 or more"
[ "$CONTROL" = 0 ] || [ "$CYCLES" -ge 1 ] || die "CONTROL=1 needs CYCLES >= 1 (it runs inside the first cycle)"
for a in "$ADDR_1" "$ADDR_N"; do
  case $a in 127.*) ;; *) die "ADDR_1/ADDR_N must be loopback addresses (127.0.0.0/8), not $a" ;; esac
done
[ -w /sys/fs/cgroup/cpu/cgroup.procs ] ||
  die "needs the cgroup v1 cpu controller (/sys/fs/cgroup/cpu) to give the containers' HAProxies a CPU budget"
build_edgeup
# What is measured: the tree as it is now (edgeup_id reads git), before
# the lock wait and the run give other sessions time to edit or commit.
EDGEUP_ID="$(edgeup_id), binary of $(date -u -r "$EDGEUP_BIN" '+%Y-%m-%d %H:%M UTC')"
take_lock

W=$OUT_DIR/sites
rm -rf "$W"
mkdir -p "$W/noop" "$W/load" "$W/stats"
$PY - "$W/meta.json" <<EOF
import json, sys
json.dump({"sites": $SITES, "rounds": $ROUNDS, "warmup": $WARMUP, "cycles": $CYCLES, "duration": $DURATION,
           "reps": $REPS, "conns": $CONNS, "parallel": $PARALLEL, "full_budget": $FULL_BUDGET,
           "wrk_budget": $WRK_BUDGET, "control": $CONTROL, "addr_1": "$ADDR_1", "addr_n": "$ADDR_N"}, open(sys.argv[1], "w"), indent=1)
EOF

# ------------------------------------------------------------ addresses
# Nothing may listen on the containers' addresses yet (HAProxy inside binds
# them), and the backend needs SITES free ports in a row on 127.0.0.1.
$PY - "$ADDR_1" "$ADDR_N" <<'EOF' || die "80/443 on $ADDR_1 or $ADDR_N is taken (another HAProxy running?)"
import socket, sys
for addr in sys.argv[1:]:
    for port in (80, 443):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.close()
EOF
BASE=$(free_port_run "$SITES") || die "no $SITES free ports in a row on 127.0.0.1 below 32000"
log "site i's backend is 127.0.0.1:\$((${BASE}+i)); containers on $ADDR_1 (1 site) and $ADDR_N ($SITES sites)"

# ------------------------------------------------------------ site files
site_file() { # ADDR COUNT
  echo "# bench/sites.sh: $2 site(s) on $1, ACME off"
  echo "email: ops@example.org"
  echo 'acme: {directory: "off"}'
  echo "listen:"
  echo "  http: [\"$1:80\"]"
  echo "  https: [\"$1:443\"]"
  echo "sites:"
  local i
  for ((i = 1; i <= $2; i++)); do
    echo "  - domain: s$i.example.test"
    echo "    backends: [\"127.0.0.1:$((BASE + i))\"]"
  done
}
site_file "$ADDR_1" 1 >"$W/sites-1.yaml"
site_file "$ADDR_N" "$SITES" >"$W/sites-N.yaml"
site_file "$ADDR_N" 1 >"$W/sites-N-as-1.yaml" # the cycles: back to one site on the N host

# ------------------------------------------------------------ cleanup order
# Cleanups run in reverse: containers stop (and their processes die) before
# the CPU budget cgroup is removed.
CG=/sys/fs/cgroup/cpu/edgeup-bench-sites-proxies
on_exit "rmdir $CG 2>/dev/null"

# Two containers at once: common.sh keeps one in NSPAWN_PID/ROOT/INIT; these
# remember both and switch between them.
declare -A C_PID C_ROOT C_INIT
boot_as() { # KEY (1 or N)
  boot_container "sites-$1-$SITES"
  C_PID[$1]=$NSPAWN_PID C_ROOT[$1]=$ROOT C_INIT[$1]=$INIT
}
use_container() { NSPAWN_PID=${C_PID[$1]} ROOT=${C_ROOT[$1]} INIT=${C_INIT[$1]}; }
stop_all_containers() {
  local k
  for k in "${!C_PID[@]}"; do
    [ -n "${C_PID[$k]}" ] || continue
    use_container "$k"
    if [ "$(cat "/proc/$NSPAWN_PID/comm" 2>/dev/null)" = systemd-nspawn ]; then
      stop_container
    fi
    [ -n "$ROOT" ] && rm -rf "$ROOT"
    C_PID[$k]=
  done
}
on_exit stop_all_containers

start_trivial_backend "$((BASE + 1))-$((BASE + SITES))" 1

# The command line that runs ARGS inside the current container (for
# stamp_run.py, which needs the argv).
in_container() {
  echo nsenter -t "$INIT" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb
}

# timed_apply KEY FILE OUT: `edgeup --json apply --yes -f FILE` in container
# KEY, each output line stamped (stamp_run.py); fails unless it converged.
timed_apply() {
  use_container "$1"
  cp "$2" "$ROOT/root/sites.yaml"
  # shellcheck disable=SC2046 # the nsenter argv, word-split on purpose
  $PY "$BENCH_DIR/lib/stamp_run.py" "$3" -- $(in_container) edgeup --json apply --yes -f /root/sites.yaml \
    2>"$3.stderr" 9>&- || die "edgeup apply failed in container $1: $(tail -5 "$3.stderr")"
  $PY - "$3" <<'EOF' || die "edgeup apply in container $1 did not end with failed=0: see $3"
import json, sys
d = json.load(open(sys.argv[1]))
recap = json.loads(d["lines"][-1][1])
sys.exit(0 if recap.get("event") == "recap" and recap["failed"] == 0 else 1)
EOF
}

# ------------------------------------------------------------ 1. first apply
boot_as 1
log "first apply, 1 site (fresh host: apt installs haproxy, certbot, openssl)"
timed_apply 1 "$W/sites-1.yaml" "$W/first-1.json"
boot_as N
log "first apply, $SITES sites (fresh host)"
timed_apply N "$W/sites-N.yaml" "$W/first-N.json"

# ------------------------------------------------------------ 2. no-op
# Files and HAProxy's worker, to prove the timed rounds changed nothing.
state() { # KEY
  use_container "$1"
  csh 'find /etc/haproxy /etc/edgeup -printf "%p %s %m %U:%G %T@\n" | sort; echo "worker: $(cat /proc/$(systemctl show -p MainPID --value haproxy.service)/task/*/children)"'
}
for k in 1 N; do
  use_container "$k"
  cexec python3 -c 'import sys' 2>/dev/null ||
    die "no python3 in container $k (certbot's dependency; measure.py needs it)"
  mkdir -p "$ROOT/root/bench"
  cp "$BENCH_DIR/lib/measure.py" "$BENCH_DIR/lib/haproxy_stats.py" "$ROOT/root/bench/"
  # Two specs, apply first or plan first, alternated by round.
  $PY - "$ROOT/root/bench" <<'EOF'
import json, sys
d = sys.argv[1]
apply = {"name": "edgeup apply", "argv": ["edgeup", "apply", "--yes", "-f", "/root/sites.yaml"],
         "stdout": "/root/bench/apply.out"}
plan = {"name": "edgeup plan", "argv": ["edgeup", "plan", "-f", "/root/sites.yaml"],
        "stdout": "/root/bench/plan.out"}
json.dump([apply, plan], open(f"{d}/spec-0.json", "w"), indent=1)
json.dump([plan, apply], open(f"{d}/spec-1.json", "w"), indent=1)
EOF
  # The first re-run must already be a no-op.
  cexec edgeup --json apply --yes -f /root/sites.yaml >"$W/second-$k.json" 2>&1 ||
    die "the second apply failed in container $k: $(tail -3 "$W/second-$k.json")"
  tail -1 "$W/second-$k.json" | grep -q '"changed":0,"failed":0' ||
    die "the second apply in container $k is not a no-op: $(grep -v '"status":"ok"' "$W/second-$k.json" | grep -v skipped | head -5)"
  state "$k" >"$W/state-before-$k.txt"
done

log "no-op: $WARMUP warm-up + $ROUNDS rounds, alternating the containers"
total=$((WARMUP + ROUNDS))
for ((r = 0; r < total; r++)); do
  if ((r % 2 == 0)); then order=(1 N); else order=(N 1); fi
  for k in "${order[@]}"; do
    use_container "$k"
    cexec python3 /root/bench/measure.py time "/root/bench/spec-$((r / 2 % 2)).json" --rounds 1 --warmup 0 \
      --out "/root/bench/round-$r.json" || die "no-op round $r failed in container $k"
    cp "$ROOT/root/bench/round-$r.json" "$W/noop/$k-$r.json"
  done
done
for k in 1 N; do
  use_container "$k"
  cp "$ROOT/root/bench/apply.out" "$W/noop-apply-$k.out"
  cp "$ROOT/root/bench/plan.out" "$W/noop-plan-$k.out"
  for f in apply plan; do
    n=$(grep -cE '^recap: ok=[0-9]+ (changed|to change)=0 failed=0 ' "$W/noop-$f-$k.out" || true)
    [ "$n" = "$total" ] ||
      die "container $k: $n of $total timed '$f' runs reported changed=0 failed=0: see $W/noop-$f-$k.out"
  done
  state "$k" >"$W/state-after-$k.txt"
  diff -u "$W/state-before-$k.txt" "$W/state-after-$k.txt" >"$W/state-diff-$k.txt" ||
    die "container $k: the no-op rounds changed files or replaced HAProxy's worker: $(head -20 "$W/state-diff-$k.txt")"
  cexec edgeup --json apply --yes -f /root/sites.yaml >"$W/noop-steps-$k.json" 2>/dev/null ||
    die "edgeup --json apply failed in container $k"
done

log "strace of one no-op in each container (apt-get install strace first)"
for k in 1 N; do
  use_container "$k"
  csh 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null 2>&1' ||
    die "apt-get install strace failed in container $k"
  cexec edgeup apply --yes -f /root/sites.yaml >/dev/null 2>&1 || die "no-op after installing strace failed"
  cexec strace -f -ttt -T -o /root/bench/apply.strace edgeup apply --yes -f /root/sites.yaml >/dev/null 2>&1 ||
    die "strace'd no-op failed in container $k"
  cexec strace -f -c -o /root/bench/apply.strace-summary edgeup apply --yes -f /root/sites.yaml >/dev/null 2>&1 ||
    die "strace -c no-op failed in container $k"
  cp "$ROOT/root/bench/apply.strace" "$W/apply-$k.strace"
  cp "$ROOT/root/bench/apply.strace-summary" "$W/apply-$k.strace-summary"
done

# ------------------------------------------------------------ 3. requests
# host_pid NSPID: the host PID of the current container's process NSPID.
host_pid() {
  local ns p
  ns=$(readlink "/proc/$INIT/ns/pid")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
    if [ "$(awk '/^NSpid:/ {print $NF}' "$p/status" 2>/dev/null)" = "$1" ]; then
      echo "${p#/proc/}"
      return 0
    fi
  done
  return 1
}
declare -A MASTER WORKER JOURNALD THREADS
for k in 1 N; do
  use_container "$k"
  # HAProxy starts one thread per CPU it may use (nbthread unset). Two
  # threads squeezed onto one budgeted core spin on each other's locks (the
  # trial run: less than half the handshakes per proxy core of served.sh),
  # so the unit is restarted with CPU 0 only, i.e. one thread, as served.sh
  # runs it. A runtime drop-in (/run): the unit edgeup manages is otherwise
  # untouched.
  csh 'mkdir -p /run/systemd/system/haproxy.service.d &&
    printf "[Service]\nCPUAffinity=0\n" >/run/systemd/system/haproxy.service.d/bench-cpu0.conf &&
    systemctl daemon-reload && systemctl restart haproxy.service' ||
    die "container $k: restarting HAProxy on CPU 0 failed"
  MASTER[$k]=$(host_pid "$(cexec systemctl show -p MainPID --value haproxy.service)") ||
    die "container $k: HAProxy's master process not found"
  read -r -a kids <"/proc/${MASTER[$k]}/task/${MASTER[$k]}/children" || true
  [ "${#kids[@]}" = 1 ] || die "container $k: HAProxy's master has children '${kids[*]}' (expected one worker)"
  WORKER[$k]=${kids[0]}
  JOURNALD[$k]=$(host_pid "$(cexec systemctl show -p MainPID --value systemd-journald.service)") ||
    die "container $k: journald not found"
  THREADS[$k]=$(awk '/^Threads:/ {print $2}' "/proc/${WORKER[$k]}/status")
  taskset -a -p -c 0 "${MASTER[$k]}" >/dev/null
  taskset -a -p -c 0 "${WORKER[$k]}" >/dev/null
  mkdir -p "$CG"
  echo 10000 >"$CG/cpu.cfs_period_us"
  echo "${MASTER[$k]}" >"$CG/cgroup.procs"
  echo "${WORKER[$k]}" >"$CG/cgroup.procs"
  log "container $k: HAProxy master ${MASTER[$k]}, worker ${WORKER[$k]} with ${THREADS[$k]} threads, pinned to CPU 0"
done
set_budget() { # PERCENT of one core per proxy: both proxies share one quota of twice that
  echo $((2 * $1 * 100)) >"$CG/cpu.cfs_quota_us"
}
$PY - "$W/proxy.json" "${THREADS[1]}" "${THREADS[N]}" "$(cexec haproxy -v | head -1)" <<'EOF'
import json, sys
json.dump({"threads": {"1": int(sys.argv[2]), "N": int(sys.argv[3])}, "haproxy": sys.argv[4]},
          open(sys.argv[1], "w"), indent=1)
EOF

# Smoke test: each name answers with the backend, with its own certificate;
# an unknown name gets the 404.
check_site() { # ADDR NAME
  local body cn
  body=$(curl -ksS --resolve "$2:443:$1" "https://$2/")
  [ "$body" = "backend: bench" ] || die "https://$2/ on $1: unexpected response: $body"
  cn=$(echo | openssl s_client -connect "$1:443" -servername "$2" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
  case $cn in *"CN = $2"* | *"CN=$2"*) ;; *) die "$2 on $1: served certificate is '$cn'" ;; esac
}
check_site "$ADDR_1" s1.example.test
check_site "$ADDR_N" s1.example.test
check_site "$ADDR_N" "$LAST"
code=$(curl -ksS -o /dev/null -w '%{http_code}' --resolve "unknown.example.test:443:$ADDR_N" https://unknown.example.test/)
[ "$code" = 404 ] || die "an unknown name got HTTP $code (expected 404)"

# The wrk scripts: connect to the container's address whatever the URL's
# name (the URL's name is the SNI), and cycle the Host header over NAMES.
wrk_script() { # ADDR NAME...
  local addr=$1
  shift
  echo "-- generated by bench/sites.sh"
  echo "local addr = \"$addr\""
  printf 'local names = {'
  printf '"%s",' "$@"
  echo '}'
  cat <<'EOF'
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(addr, service)
end
local i = 0
function request()
  i = i % #names + 1
  return wrk.format("GET", "/", {Host = names[i]})
end
EOF
}
ALL=()
for ((i = 1; i <= SITES; i++)); do ALL+=("s$i.example.test"); done
# Variants: KEY ADDR NAME (SNI and URL) and the names cycled through.
variant_key() { case $1 in one) echo 1 ;; *) echo N ;; esac; }
variant_addr() { case $1 in one) echo "$ADDR_1" ;; *) echo "$ADDR_N" ;; esac; }
variant_names() {
  case $1 in
    one | control) echo s1.example.test ;;
    last) echo "$LAST" ;;
    mixed) echo "${ALL[*]}" ;;
  esac
}
for v in one last mixed control; do
  # shellcheck disable=SC2046 # the names, one word each
  wrk_script "$(variant_addr "$v")" $(variant_names "$v") >"$W/wrk-$v.lua"
done

run_load() { # TEST VARIANT OUT SECONDS
  local test=$1 v=$2 out=$3 secs=$4 k addr url
  k=$(variant_key "$v")
  addr=$(variant_addr "$v")
  case $test in
    full)
      # shellcheck disable=SC2046 # the names, one word each
      $PY "$BENCH_DIR/lib/loadrun.py" "${MASTER[$k]}" "$out" --parallel "$PARALLEL" --watch "journald=${JOURNALD[$k]}" -- \
        taskset -c 1 $PY "$BENCH_DIR/lib/handshakes.py" "$addr" 443 "$secs" $(variant_names "$v") ;;
    keepalive)
      # The URL's name: the SNI of every connection (the last site for "mixed").
      url=https://$(case $v in one | control) echo s1.example.test ;; *) echo "$LAST" ;; esac):443/
      $PY "$BENCH_DIR/lib/loadrun.py" "${MASTER[$k]}" "$out" --watch "journald=${JOURNALD[$k]}" -- \
        taskset -c 1 wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$W/wrk-$v.lua" "$url" ;;
  esac
}
# run_pair TEST VARIANT REP: the 1-site host (s1) and the N-site host
# (VARIANT: last, mixed or control) loaded at the same time, the two proxies
# sharing one quota. On this shared VM a proxy's cost per request drifts by
# tens of percent within seconds (steal time, neighbours); loaded at once,
# both see the same drift, so their ratio holds where back-to-back runs
# could not resolve 5%. REP 0 is the warm-up (2 s, not kept).
run_pair() {
  local test=$1 v=$2 rep=$3 secs=$DURATION budget a b
  [ "$rep" = 0 ] && secs=2
  budget=$([ "$test" = full ] && echo "$FULL_BUDGET" || echo "$WRK_BUDGET")
  set_budget "$budget"
  stats 1 "$W/stats/$test-$v-$rep-1-before.json"
  stats N "$W/stats/$test-$v-$rep-N-before.json"
  # Which side starts first alternates with the repetition.
  if ((rep % 2)); then
    run_load "$test" one "$W/load/$test-$v-$rep-1.json" "$secs" &
    a=$!
    run_load "$test" "$v" "$W/load/$test-$v-$rep-N.json" "$secs" &
    b=$!
  else
    run_load "$test" "$v" "$W/load/$test-$v-$rep-N.json" "$secs" &
    b=$!
    run_load "$test" one "$W/load/$test-$v-$rep-1.json" "$secs" &
    a=$!
  fi
  wait "$a" || die "load run failed ($test, 1-site host, paired with $v, rep $rep)"
  wait "$b" || die "load run failed ($test, $v on the $SITES-site host, rep $rep)"
  stats 1 "$W/stats/$test-$v-$rep-1-after.json"
  stats N "$W/stats/$test-$v-$rep-N-after.json"
}
# stats KEY OUT: HAProxy's server connect/reuse counters (haproxy_stats.py on
# the admin socket edgeup's config declares).
stats() {
  use_container "$1"
  local sock
  sock=$(awk '$1 == "stats" && $2 == "socket" {print $3; exit}' "$ROOT/etc/haproxy/haproxy.cfg")
  cexec python3 /root/bench/haproxy_stats.py "$sock" >"$2" || die "container $1: show stat on $sock failed"
}
log "warm-up: 2 s of each test and pair"
for test in full keepalive; do for v in last mixed; do run_pair "$test" "$v" 0; done; done
rm -f "$W"/load/*-0-?.json "$W"/stats/*-0-?-*.json
for ((rep = 1; rep <= REPS; rep++)); do
  if ((rep % 2)); then pairs=(last mixed); else pairs=(mixed last); fi
  for test in full keepalive; do
    for v in "${pairs[@]}"; do
      log "rep $rep/$REPS: $test, s1 on the 1-site host and $v on the $SITES-site host at once (${DURATION}s)"
      run_pair "$test" "$v" "$rep"
    done
  done
done

# ------------------------------------------------------------ 4. cycles
for ((c = 1; c <= CYCLES; c++)); do
  log "cycle $c/$CYCLES on the $SITES-site host: remove $((SITES - 1)) sites, then add them back"
  timed_apply N "$W/sites-N-as-1.yaml" "$W/cycle-$c-remove.json"
  if [ "$c" = 1 ] && [ "$CONTROL" = 1 ]; then
    # Control: the same two containers, proxies, budgets and clients, with
    # the N-site host cut down to s1: what is left of the ratio is the
    # benchmark's own asymmetry, not the number of sites.
    check_site "$ADDR_N" s1.example.test
    log "control: both hosts with 1 site, loaded at once ($REPS x ${DURATION}s per test)"
    for test in full keepalive; do run_pair "$test" control 0; done
    rm -f "$W"/load/*-0-?.json "$W"/stats/*-0-?-*.json
    for ((rep = 1; rep <= REPS; rep++)); do
      for test in full keepalive; do run_pair "$test" control "$rep"; done
    done
  fi
  timed_apply N "$W/sites-N.yaml" "$W/cycle-$c-add.json"
done
use_container N
cexec edgeup plan -f /root/sites.yaml >"$W/final-plan.txt" 2>&1 ||
  die "the $SITES-site host is not converged after the cycles: $(tail -5 "$W/final-plan.txt")"

{
  echo "- edgeup: $EDGEUP_ID"
  echo "- container: $(cexec sh -c '. /etc/os-release; echo $PRETTY_NAME'), systemd $(cexec systemctl --version | head -1 | awk '{print $2}'), haproxy $(cexec dpkg-query -W -f='${Version}' haproxy), openssl $(cexec dpkg-query -W -f='${Version}' openssl)"
  echo "- HAProxy in the containers (the systemd unit edgeup manages, restarted with CPUAffinity=0): nbthread not set, so one thread per CPU at start: ${THREADS[1]} (1 site) and ${THREADS[N]} ($SITES sites) worker threads, on CPU 0"
  echo "- load: handshakes = $PARALLEL x handshakes.py per host for ${DURATION}s (budget $FULL_BUDGET% of a core per proxy); keep-alive = wrk -t1 -c$CONNS -d${DURATION}s per host with a Lua request() (budget $WRK_BUDGET% of a core per proxy); both hosts at once, the two proxies in one cgroup with twice that quota; $REPS repetitions; load generators and backend on CPU 1"
  echo "- wrk: $(wrk -v 2>&1 | head -1); client TLS: $($PY -c 'import ssl; print(ssl.OPENSSL_VERSION)') (Python $($PY -c 'import sys; print(sys.version.split()[0])'))"
} >"$W/versions.md"

$PY "$BENCH_DIR/lib/report.py" sites-json "$OUT_DIR" >"$OUT_DIR/sites.json"
$PY "$BENCH_DIR/lib/report.py" sites "$OUT_DIR" | tee "$OUT_DIR/sites.md"
