# shellcheck shell=bash
# Shared helpers for the bench/ scripts (sourced, not run).
#
# Containers: the same approach as tests/system/container.rs. A debootstrap'd
# bookworm rootfs cached in /var/cache/edgeup-test/bookworm (built here when
# missing, with the same debootstrap arguments), copied per benchmark, booted
# with systemd as PID 1 by systemd-nspawn, entered with nsenter. It shares the
# host's network, so HAProxy's 80/443 inside and Pebble on the host's
# loopback meet; that is why everything that boots a container or binds
# 80/443 holds /var/cache/edgeup-test/scenario.lock (the system tests hold
# the same flock for their whole run).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
CACHE=/var/cache/edgeup-test
SUITE=bookworm
# shellcheck disable=SC2034 # used by the scripts that source this file
DOMAIN=chat.example.test
OUT_DIR=${BENCH_OUT:-$BENCH_DIR/out}
PY=/usr/bin/python3            # Debian's python3: stdlib only, whatever pyenv says
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH   # system tools first, then cargo etc.
mkdir -p "$OUT_DIR"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_root() { [ "$(id -u)" = 0 ] || die "run as root (containers, apt, ports)"; }

# apt-get install on the host, only what is missing.
host_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ -z "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# The release binary (built when missing or older than the sources).
EDGEUP_BIN=${EDGEUP_BIN:-$REPO_DIR/target/release/edgeup}
build_edgeup() {
  if [ -n "${EDGEUP_BIN_GIVEN:-}" ]; then return 0; fi
  log "cargo build --release"
  (cd "$REPO_DIR" && cargo build --release --quiet) || die "cargo build --release failed"
  [ -x "$EDGEUP_BIN" ] || die "no binary at $EDGEUP_BIN"
}

# "edgeup 0.1.0 (git abc1234, uncommitted changes)": what was measured.
edgeup_id() {
  local rev dirty=
  rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -n "$(git -C "$REPO_DIR" status --porcelain -- src Cargo.toml Cargo.lock templates playbooks distros 2>/dev/null)" ] &&
    dirty=", with uncommitted changes in the tree"
  echo "$("$EDGEUP_BIN" --version 2>/dev/null || echo "edgeup (binary not at $EDGEUP_BIN)") (release build, git $rev$dirty)"
}

# ---------------------------------------------------------------- the lock
# fd 9 holds the flock for the whole script. Background processes started
# by the scripts close it (9>&-), so a leaked child can never keep it.
take_lock() {
  mkdir -p "$CACHE"
  exec 9>>"$CACHE/scenario.lock"
  if ! flock -n 9; then
    log "waiting for $CACHE/scenario.lock (system tests or another benchmark hold it)"
    flock 9
  fi
}

# ---------------------------------------------------------------- cleanup
CLEANUPS=()
on_exit() { CLEANUPS+=("$1"); }
run_cleanups() {
  local i
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" || true; done
}
trap run_cleanups EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- container
base_rootfs() {
  local base=$CACHE/$SUITE
  if [ -e "$base/usr/lib/systemd/systemd" ] || [ -e "$base/lib/systemd/systemd" ]; then
    return 0
  fi
  host_install debootstrap
  log "building the $SUITE rootfs with debootstrap (a few minutes, once)"
  rm -rf "$CACHE/$SUITE.tmp"
  debootstrap --variant=minbase --include=systemd-sysv,dbus,ca-certificates \
    "$SUITE" "$CACHE/$SUITE.tmp" http://deb.debian.org/debian >/dev/null
  echo edgeup-test >"$CACHE/$SUITE.tmp/etc/hostname"
  mv "$CACHE/$SUITE.tmp" "$base"
}

# boot_container NAME: sets ROOT and INIT (host PID of the container's systemd).
NSPAWN_PID=
ROOT=
INIT=
boot_container() {
  local name=$1
  host_install systemd-container util-linux
  base_rootfs
  ROOT=$CACHE/run-bench-$name-$$
  rm -rf "$ROOT"
  cp -a --reflink=auto "$CACHE/$SUITE" "$ROOT"
  install -m 0755 "$EDGEUP_BIN" "$ROOT/usr/local/bin/edgeup"
  mkdir -p /var/cache/apt/archives/partial
  systemd-nspawn -D "$ROOT" -b --console=passive --register=no --keep-unit \
    --bind=/var/cache/apt/archives:/var/cache/apt/archives \
    --machine="edgeup-bench-$name" </dev/null >/dev/null 2>&1 9>&- &
  NSPAWN_PID=$!
  on_exit "stop_container"
  local deadline=$((SECONDS + 30))
  INIT=
  while [ -z "$INIT" ]; do
    kill -0 "$NSPAWN_PID" 2>/dev/null || die "systemd-nspawn exited early"
    [ $SECONDS -lt $deadline ] || die "container init did not appear within 30s"
    INIT=$(find_init "$NSPAWN_PID") || true
    [ -n "$INIT" ] || sleep 0.1
  done
  deadline=$((SECONDS + 90))
  local state=
  while :; do
    state=$(cexec systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    [ $SECONDS -lt $deadline ] || die "container did not boot within 90s (state: $state)"
    sleep 0.25
  done
  log "container $name booted (init pid $INIT, root $ROOT)"
}

# The descendant of systemd-nspawn that is PID 1 in its namespace.
find_init() {
  local queue=("$1") p c nspid
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do
      nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$c/status" 2>/dev/null || true)
      if [ "$nspid" = 1 ]; then echo "$c"; return 0; fi
      queue+=("$c")
    done
  done
  return 1
}

stop_container() {
  [ -n "$NSPAWN_PID" ] || return 0
  # SIGTERM: nspawn asks the container's systemd to power off.
  kill -TERM "$NSPAWN_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$NSPAWN_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -KILL "$NSPAWN_PID" 2>/dev/null || true
  wait "$NSPAWN_PID" 2>/dev/null || true
  NSPAWN_PID=
  [ -n "$ROOT" ] && rm -rf "$ROOT"
  log "container stopped and removed"
}

# cexec CMD...: run a command inside the container (no shell).
cexec() {
  nsenter -t "$INIT" -a -- env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb "$@" 9>&-
}
# csh SCRIPT: run a shell script inside the container.
csh() { cexec /bin/sh -c "$1"; }

# ---------------------------------------------------------------- backend
# A trivial HTTP backend on the host's loopback: HAProxy answering every
# request itself (`http-request return`), one thread. The container shares
# the network, so its HAProxy reaches it at 127.0.0.1:PORT.
free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The first port before N free ports in a row on 127.0.0.1 below 32000
# (sampled bases 100 apart); fails when none is found.
free_port_run() { # N
  $PY - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
bases = range(20000, 32000 - n, 100)
for base in random.sample(bases, min(60, len(bases))):
    socks = []
    try:
        for port in range(base + 1, base + n + 1):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
else:
    sys.exit(1)
EOF
}

# PORT may be a range, FIRST-LAST (one listener per port, all answering alike).
start_trivial_backend() { # PORT [CPU]
  local port=$1 cpu=${2:-} dir=$OUT_DIR/backend-$1
  mkdir -p "$dir"
  cat >"$dir/backend.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend app
    bind 127.0.0.1:$port
    http-request return status 200 content-type text/plain string "backend: bench\n"
EOF
  local pin=()
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  "${pin[@]}" haproxy -db -f "$dir/backend.cfg" >"$dir/log" 2>&1 9>&- &
  local pid=$!
  on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  local i
  for i in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:${port%%-*}/" 2>/dev/null && return 0
    sleep 0.1
  done
  die "trivial backend on $port did not start: $(cat "$dir/log")"
}

# ---------------------------------------------------------------- machine
machine_description() {
  echo "- CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores"
  echo "- Memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- Kernel: $(uname -r); host OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- Virtualization: $(systemd-detect-virt 2>/dev/null || echo unknown); PID 1 is $(cat /proc/1/comm)"
  echo "- Load average when this was written: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shares the 2 cores)"
}
