# shellcheck shell=bash
# The fleet of benchmark 8 (sourced after common.sh): N systemd containers,
# each in a network namespace of its own joined to the host by one veth pair
# (10.232.K.1 on the host, 10.232.K.2 inside: a range the tests, which use
# 10.231.x, never touch), each running sshd with its own host keys and the
# run's key for root. The same method as tests/fleet/harness.rs and
# tests/system/container.rs (`Netns`, `Boot::network_namespace`), in bash.
#
# Host K: ROOTS[K] (its rootfs copy), NSPAWN[K] (the systemd-nspawn pid),
# INITS[K] (the container's PID 1 seen from the host), NETNS[K], VETH[K],
# ADDRS[K].

# The rootfs the fleet tests cache (tests/system/container.rs
# `fleet_rootfs()`): bookworm plus FLEET_PACKAGES, keyed by the same stamp,
# so the tests and this script build it once between them.
FLEET_PACKAGES="openssh-server sudo haproxy certbot openssl procps python3 ufw curl"
FLEET_ROOTFS=$CACHE/bookworm-fleet
# This benchmark's rootfs on top of it: python3-apt added (Ansible's apt
# module needs it on the host, and the containers have no internet to let
# the module install it), ufw removed (installed but inactive, it would make
# the playbook's and the deploy's unconditional `ufw allow` report a change
# on every run, as it would not in benchmark 1's container, which has no
# ufw either). Same packages for all three tools.
BENCH_ROOTFS=$CACHE/bookworm-fleet-bench
BENCH_ADD=python3-apt
BENCH_REMOVE=ufw
NETNS_PREFIX=edgeup-bench-fleet-
FLEET_LOGS=${FLEET_LOGS:-/tmp}   # systemd-nspawn's own output, one file per host

declare -a ROOTS=() NSPAWN=() INITS=() NETNS=() VETH=() ADDRS=()

# apt inside a rootfs copy, with the host's network (nspawn without boot),
# no service started (policy-rc.d), as container.rs does.
rootfs_apt() { # DIR SCRIPT
  local dir=$1 script=$2 attempt
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  mkdir -p /var/cache/apt/archives/partial
  for attempt in $(seq 20); do
    if systemd-nspawn -q -D "$dir" --register=no --keep-unit \
      --bind=/var/cache/apt/archives:/var/cache/apt/archives \
      -E DEBIAN_FRONTEND=noninteractive /bin/sh -c "$script" </dev/null >"$dir.log" 2>&1 9>&-; then
      rm -f "$dir/usr/sbin/policy-rc.d"
      return 0
    fi
    # Another container's apt may hold the shared archive cache's lock.
    grep -q 'Could not get lock' "$dir.log" || break
    sleep 3
  done
  die "apt in $dir failed: $(tail -20 "$dir.log")"
}

drop_host_keys() { rm -f "$1"/etc/ssh/ssh_host_*; }

ensure_fleet_rootfs() {
  local want="bookworm + $FLEET_PACKAGES"
  if [ "$(cat "$FLEET_ROOTFS/etc/edgeup-test-rootfs" 2>/dev/null)" = "$want" ]; then
    [ -e "$FLEET_ROOTFS/usr/sbin/sshd" ] || die "sshd is missing from $FLEET_ROOTFS: delete it to rebuild"
    return 0
  fi
  base_rootfs
  log "building the fleet rootfs ($FLEET_PACKAGES), as tests/system/container.rs does (once)"
  local tmp=$CACHE/bookworm-fleet.tmp
  rm -rf "$tmp"
  cp -a --reflink=auto "$CACHE/$SUITE" "$tmp"
  rootfs_apt "$tmp" "apt-get -o DPkg::Lock::Timeout=300 update -qq && \
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $FLEET_PACKAGES"
  drop_host_keys "$tmp"
  echo "$want" >"$tmp/etc/edgeup-test-rootfs"
  rm -rf "$FLEET_ROOTFS"
  mv "$tmp" "$FLEET_ROOTFS"
  rm -f "$tmp.log"
}

ensure_bench_rootfs() {
  ensure_fleet_rootfs
  local want
  want="$(cat "$FLEET_ROOTFS/etc/edgeup-test-rootfs") + $BENCH_ADD - $BENCH_REMOVE"
  [ "$(cat "$BENCH_ROOTFS/etc/edgeup-bench-rootfs" 2>/dev/null)" = "$want" ] && return 0
  log "building $BENCH_ROOTFS (the fleet rootfs + $BENCH_ADD - $BENCH_REMOVE, once)"
  local tmp=$BENCH_ROOTFS.tmp
  rm -rf "$tmp"
  cp -a --reflink=auto "$FLEET_ROOTFS" "$tmp"
  rootfs_apt "$tmp" "apt-get -o DPkg::Lock::Timeout=300 update -qq && \
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $BENCH_ADD && \
    apt-get -o DPkg::Lock::Timeout=300 purge -y -qq $BENCH_REMOVE && apt-get clean"
  drop_host_keys "$tmp"
  echo "$want" >"$tmp/etc/edgeup-bench-rootfs"
  rm -rf "$BENCH_ROOTFS"
  mv "$tmp" "$BENCH_ROOTFS"
  rm -f "$tmp.log"
}

# Namespaces, veths and copies left by an earlier run of this script that
# was SIGKILLed before its trap ran (the pid in the name is gone).
remove_stale_fleet() {
  local ns pid k root
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NETNS_PREFIX" || true); do
    pid=${ns#"$NETNS_PREFIX"}
    k=${pid#*-}
    pid=${pid%%-*}
    [ -d "/proc/$pid" ] && continue
    log "removing a stale namespace of process $pid: $ns"
    ip link del "ebf$pid-$k" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  for root in "$CACHE"/run-benchfleet-*; do
    [ -d "$root" ] || continue
    pid=${root##*-}
    [ -d "/proc/$pid" ] && continue
    # Its nspawn (if any still runs) names the directory on its command line.
    pkill_exact_root "$root"
    rm -rf "$root"
  done
}

# Stops the systemd-nspawn whose -D argument is exactly ROOT (a stale one).
pkill_exact_root() {
  local root=$1 p
  for p in /proc/[0-9]*; do
    tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$root" || continue
    [ "$(cat "$p/comm" 2>/dev/null)" = systemd-nspawn ] || continue
    kill -TERM "${p#/proc/}" 2>/dev/null || true
  done
}

# The host end 10.232.K.1/24, eth0 10.232.K.2/24 inside, loopback up.
make_netns() { # K
  local k=$1 ns=$NETNS_PREFIX$$-$1 veth=ebf$$-$1
  # Interface names have at most 15 characters.
  [ ${#veth} -le 15 ] || die "veth name $veth too long"
  ip netns add "$ns"
  NETNS[k]=$ns
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  VETH[k]=$veth
  ip addr add "10.232.$k.1/24" dev "$veth"
  ip link set "$veth" up
  ip -n "$ns" addr add "10.232.$k.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ADDRS[k]=10.232.$k.2
}

# Copy, host keys, the run's key for root, sshd logging to a file of its
# own (`-E`: written by sshd itself as it accepts a login, so the host can
# count logins from the copy at once, without the journal's lag), then boot.
start_host() { # K PUBKEY_FILE
  local k=$1 pub=$2 root=$CACHE/run-benchfleet-$1-$$
  make_netns "$k"
  rm -rf "$root"
  ROOTS[k]=$root
  cp -a --reflink=auto "$BENCH_ROOTFS" "$root"
  ssh-keygen -q -A -f "$root" >/dev/null
  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$pub" "$root/root/.ssh/authorized_keys"
  echo 'SSHD_OPTS="-E /var/log/sshd-bench.log"' >"$root/etc/default/ssh"
  echo "f$k" >"$root/etc/hostname"
  systemd-nspawn -D "$root" -b --console=passive --register=no --keep-unit \
    --network-namespace-path="/run/netns/${NETNS[k]}" \
    --machine="edgeup-bf-$k" </dev/null >"$FLEET_LOGS/nspawn-$k.log" 2>&1 9>&- &
  NSPAWN[k]=$!
}

# Waits for K's systemd to be up and sshd to be active.
wait_host() { # K
  local k=$1 deadline=$((SECONDS + 120)) state=
  INITS[k]=
  while [ -z "${INITS[k]}" ]; do
    kill -0 "${NSPAWN[k]}" 2>/dev/null || die "systemd-nspawn of host $k exited early: $(tail -5 "$FLEET_LOGS/nspawn-$k.log")"
    [ $SECONDS -lt $deadline ] || die "host $k: no init within 120 s"
    INITS[k]=$(find_init "${NSPAWN[k]}") || true
    [ -n "${INITS[k]}" ] || sleep 0.1
  done
  while :; do
    state=$(hexec "$k" systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    [ $SECONDS -lt $deadline ] || die "host $k did not boot within 120 s (state: $state)"
    sleep 0.25
  done
  # ssh.service is Type=notify: active means sshd listens.
  until hexec "$k" systemctl is-active --quiet ssh.service; do
    [ $SECONDS -lt $deadline ] || die "host $k: sshd not active: $(hexec "$k" systemctl status ssh.service)"
    sleep 0.1
  done
}

# Hosts FROM..TO, booted WAVE at a time (30 systemd boots at once on 2
# cores would run into the timeouts).
boot_hosts() { # FROM TO PUBKEY_FILE
  local from=$1 to=$2 pub=$3 wave=${BOOT_WAVE:-8} k w
  for ((k = from; k <= to; k += wave)); do
    for ((w = k; w < k + wave && w <= to; w++)); do start_host "$w" "$pub"; done
    for ((w = k; w < k + wave && w <= to; w++)); do wait_host "$w"; done
  done
}

# hexec K CMD...: a command inside host K (all its namespaces).
hexec() {
  local k=$1
  shift
  nsenter -t "${INITS[k]}" -a -- env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb "$@" 9>&-
}

# Every host: SIGTERM to every nspawn at once (each asks its systemd to
# power off), SIGKILL after 30 s, then the copies, veths and namespaces go.
fleet_teardown() {
  local k pids=() deadline
  for k in "${!NSPAWN[@]}"; do
    kill -TERM "${NSPAWN[k]}" 2>/dev/null && pids+=("${NSPAWN[k]}")
  done
  deadline=$((SECONDS + 30))
  for k in "${pids[@]}"; do
    while kill -0 "$k" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$k" 2>/dev/null || true
    wait "$k" 2>/dev/null || true
  done
  for k in "${!ROOTS[@]}"; do rm -rf "${ROOTS[k]}" & done
  wait
  for k in "${!VETH[@]}"; do ip link del "${VETH[k]}" 2>/dev/null || true; done
  for k in "${!NETNS[@]}"; do ip netns del "${NETNS[k]}" 2>/dev/null || true; done
  [ ${#pids[@]} -eq 0 ] || log "fleet of ${#pids[@]} hosts stopped and removed"
  NSPAWN=() ROOTS=() VETH=() NETNS=() INITS=()
}

# What a first converge by any of the three tools leaves on a host, put
# back as the rootfs has it (or removed when the rootfs has none): HAProxy's
# directory (config, certificates, pyinfra's staged copy), edgeup's site
# record, state, ledger, binary and units. Then HAProxy is restarted on the
# Debian default config, as on a freshly booted copy. (Found by comparing a
# converged host with the rootfs: fleet-scale.sh's first run checks that
# every tool then reports a change on every host again.)
RESET_PATHS="etc/haproxy etc/edgeup var/lib/edgeup usr/local/bin/edgeup
  etc/systemd/system/edgeup-renew.service etc/systemd/system/edgeup-renew.timer
  etc/systemd/system/timers.target.wants/edgeup-renew.timer etc/systemd/system/haproxy.service.d
  root/.ansible"
reset_host() { # K
  local k=$1 p
  for p in $RESET_PATHS; do
    rm -rf "${ROOTS[k]:?}/$p"
    if [ -e "$BENCH_ROOTFS/$p" ]; then cp -a "$BENCH_ROOTFS/$p" "${ROOTS[k]}/$p"; fi
  done
  hexec "$k" /bin/sh -c 'systemctl daemon-reload && systemctl restart haproxy.service' ||
    die "reset of host $k: haproxy did not restart"
}
reset_hosts() { # N
  local k pids=()
  for ((k = 1; k <= $1; k++)); do
    reset_host "$k" &
    pids+=($!)
  done
  for k in "${pids[@]}"; do wait "$k" || die "resetting the fleet failed"; done
}

# Logins sshd accepted so far on hosts 1..N, space-separated.
logins() { # N
  local k c out=()
  for ((k = 1; k <= $1; k++)); do
    c=$(grep -c 'Accepted publickey' "${ROOTS[k]}/var/log/sshd-bench.log" 2>/dev/null || true)
    out+=("${c:-0}")
  done
  echo "${out[@]}"
}

# Every booted systemd takes inotify instances; the kernel's default limit
# (fs.inotify.max_user_instances = 128, per user: all containers run as
# root) stops the 20th or so container's PID 1 with "Too many open files".
# Raised for the run when too low, put back on exit.
raise_inotify_limit() { # N
  local want=$((128 + 16 * $1)) old
  old=$(sysctl -n fs.inotify.max_user_instances)
  [ "$old" -lt "$want" ] || return 0
  sysctl -qw fs.inotify.max_user_instances="$want"
  on_exit "sysctl -qw fs.inotify.max_user_instances=$old"
  log "fs.inotify.max_user_instances $old -> $want for this run (put back on exit)"
}
