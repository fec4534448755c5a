#!/usr/bin/env bash
# Benchmark 8: the same job on N hosts over ssh with edgeup fleet,
# ansible-playbook and pyinfra, for N in $NS (default 1 10 30).
#
# The hosts are systemd containers (systemd-nspawn) booted from a cached
# bookworm rootfs with the packages pre-installed (no internet inside), each
# in a network namespace of its own joined to the host by a veth pair
# (10.232.K.1 host side, 10.232.K.2 inside), running sshd with its own host
# keys and the run's key for root; one known_hosts (ssh-keyscan after boot)
# for the three tools. The controller is this machine. Per N:
#   (a) first converge of a fresh fleet, FIRST_ROUNDS rounds; between runs
#       every host is put back to its fresh state in place (reset_host);
#   (b) no-op re-run on the converged fleet, WARMUP + ROUNDS rounds;
#   (c) one setting changed on every host (the backend port, alternating
#       3000/3001: one config swap and one reload per host), CHANGE_ROUNDS;
# every round runs each tool once, the order rotated per round. Before (b),
# every tool must report the fleet converged (changed=0 on every host; these
# runs also sample the controller's memory), and every timed run is checked
# (a: a change on every host, b: none, c: a change on every host and the new
# port in every host's haproxy.cfg). Then the containers' own memory.
#
# Results: $BENCH_OUT/fleet-scale/ (runs.jsonl: every timed run; mem.jsonl;
# containers.jsonl; logs/), $BENCH_OUT/fleet-scale.md, fleet-scale.json and
# fleet-scale.png (also copied to bench/fleet-scale.png).
#
# Environment: NS ("1 10 30"), ROUNDS (5), WARMUP (1), FIRST_ROUNDS (3),
#   CHANGE_ROUNDS (3), BOOT_WAVE (8 containers booted at once),
#   ANSIBLE_CORE_SPEC (ansible-core), PYINFRA_SPEC (pyinfra),
#   VENVS (/var/cache/edgeup-test/bench-venvs), PLOT (bench/fleet-scale.png),
#   TOOLS ("edgeup ansible pyinfra": a subset runs only those),
#   KEX (unset: OpenSSH's default key exchange, sntrup761x25519-sha512 in
#   9.2; e.g. curve25519-sha256 goes in the run's ssh config, which edgeup
#   and Ansible use; pyinfra's paramiko has no post-quantum exchange).
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/fleet_hosts.sh"

NS=${NS:-"1 10 30"}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
FIRST_ROUNDS=${FIRST_ROUNDS:-3}
CHANGE_ROUNDS=${CHANGE_ROUNDS:-3}
ANSIBLE_CORE_SPEC=${ANSIBLE_CORE_SPEC:-ansible-core}
PYINFRA_SPEC=${PYINFRA_SPEC:-pyinfra}
VENVS=${VENVS:-$CACHE/bench-venvs}
PLOT=${PLOT:-$BENCH_DIR/fleet-scale.png}
FS="$PY $BENCH_DIR/lib/fleet_scale.py"
EMAIL=ops@example.org
read -r -a TOOLS <<<"${TOOLS:-edgeup ansible pyinfra}"
for tool in "${TOOLS[@]}"; do
  case $tool in edgeup | ansible | pyinfra) ;; *) die "TOOLS: unknown tool '$tool'" ;; esac
done
read -r -a NLIST <<<"$(tr ' ' '\n' <<<"$NS" | grep . | sort -n | uniq | tr '\n' ' ')"
[ ${#NLIST[@]} -gt 0 ] || die "NS is empty"
[ "${NLIST[-1]}" -le 250 ] || die "at most 250 hosts (10.232.1-250.0/24)"

require_root
host_install openssh-client iproute2 python3-venv python3-matplotlib systemd-container util-linux curl

# ---------------------------------------------------------------- tools
# ansible-core and pyinfra on the controller, each in a venv of its own
# (kept for the next run; pip only when one is missing or broken).
venv() { # NAME SPEC IMPORT
  local dir=$VENVS/$1
  if "$dir/bin/python" -c "import $3" 2>/dev/null; then return 0; fi
  log "pip install $2 into $dir"
  rm -rf "$dir"
  $PY -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$2" || die "pip install $2 failed"
}
venv ansible "$ANSIBLE_CORE_SPEC" ansible
venv pyinfra "$PYINFRA_SPEC" pyinfra
build_edgeup
take_lock

D=$OUT_DIR/fleet-scale
rm -rf "$D"
mkdir -p "$D/logs"
FLEET_LOGS=$D/logs
WORK=$(mktemp -d /tmp/edgeup-bench-fleet.XXXXXX)
on_exit "rm -rf '$WORK'"
# ssh processes a failed run left behind name $WORK on their command line
# (the key, the config, the control sockets).
on_exit "kill_leftovers"
kill_leftovers() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$WORK/" || continue
    kill -TERM "${p#/proc/}" 2>/dev/null || true
  done
}
on_exit "fleet_teardown"
remove_stale_fleet
ensure_bench_rootfs
raise_inotify_limit "${NLIST[-1]}"

# ---------------------------------------------------------------- operator
# The run's key, known_hosts and ssh config. edgeup's inventory takes the
# identity but no known_hosts file, so (as tests/fleet/harness.rs does) the
# `ssh` first on edgeup's PATH is a wrapper that adds `-F` with this config
# (one /bin/sh exec per ssh command, ~1 ms). Ansible gets the same config as
# `ansible_ssh_common_args=-F ...` (for its sftp too). pyinfra (paramiko, no
# ssh binary) gets the same key and known_hosts as host data. Nothing of root's ~/.ssh is read or
# written.
KEY=$WORK/id_ed25519
KH=$WORK/known_hosts
ssh-keygen -q -t ed25519 -N '' -C edgeup-bench-fleet -f "$KEY"
: >"$KH"
cat >"$WORK/ssh_config" <<EOF
UserKnownHostsFile $KH
GlobalKnownHostsFile /dev/null
StrictHostKeyChecking yes
IdentityFile $KEY
IdentitiesOnly yes
LogLevel ERROR
EOF
if [ -n "${KEX:-}" ]; then echo "KexAlgorithms $KEX" >>"$WORK/ssh_config"; fi
mkdir -p "$WORK/bin" "$WORK/tmp" "$WORK/cp"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$WORK/ssh_config" >"$WORK/bin/ssh"
chmod 755 "$WORK/bin/ssh"
PLAIN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TOOL_PATH=$WORK/bin:$PLAIN_PATH

# The other tools' files. haproxy.cfg.j2 comes from edgeup's rendered
# haproxy.cfg (below), as in bench/noop.sh.
# bench/fleet/{playbook.yml,deploy.py} are the one playbook and deploy of
# benchmarks 1 and 8 (see their headers).
mkdir -p "$WORK/ansible/templates" "$WORK/pyinfra"
cp "$BENCH_DIR/fleet/playbook.yml" "$BENCH_DIR/fleet/ansible.cfg" "$WORK/ansible/"
cp "$BENCH_DIR/fleet/deploy.py" "$WORK/pyinfra/"
sed -i -e "s|src=\"haproxy.cfg.j2\"|src=\"$WORK/pyinfra/haproxy.cfg.j2\"|" \
  -e "s|src=\"edgeup-sites.map.j2\"|src=\"$WORK/pyinfra/edgeup-sites.map.j2\"|" "$WORK/pyinfra/deploy.py"
[ "$(grep -cF "src=\"$WORK/pyinfra/" "$WORK/pyinfra/deploy.py")" = 2 ] || die "could not point deploy.py at its templates"

# ---------------------------------------------------------------- inventories
inventories() { # N
  local n=$1 k
  {
    echo "# edgeup fleet: $n hosts (bench/fleet-scale.sh)"
    echo "defaults: {user: root, identity: $KEY}"
    echo "hosts:"
    for ((k = 1; k <= n; k++)); do echo "  h$k: {address: ${ADDRS[k]}}"; done
  } >"$WORK/edgeup-$n.yaml"
  {
    echo "[fleet]"
    for ((k = 1; k <= n; k++)); do echo "h$k ansible_host=${ADDRS[k]}"; done
    echo "[fleet:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$KEY"
    # ssh, sftp and scp all get the run's config (known_hosts) this way.
    echo "ansible_ssh_common_args=-F $WORK/ssh_config"
  } >"$WORK/ansible-$n.ini"
  {
    echo "# pyinfra inventory: $n hosts (bench/fleet-scale.sh)"
    echo "_data = {\"ssh_user\": \"root\", \"ssh_key\": \"$KEY\", \"ssh_known_hosts_file\": \"$KH\","
    echo "         \"ssh_strict_host_key_checking\": \"yes\", \"ssh_allow_agent\": False, \"ssh_look_for_keys\": False}"
    echo "fleet = ["
    for ((k = 1; k <= n; k++)); do echo "    (\"h$k\", dict(_data, ssh_hostname=\"${ADDRS[k]}\")),"; done
    echo "]"
  } >"$WORK/pyinfra_$n.py"
}

# The command of TOOL for N hosts with backend port PORT, in CMD.
command_for() { # TOOL N PORT RUNID
  local tool=$1 n=$2 backend=127.0.0.1:$3
  case $tool in
  edgeup)
    CMD=("$EDGEUP_BIN" fleet -i "$WORK/edgeup-$n.yaml" --forks "$n" --json
      --domain "$DOMAIN" --email "$EMAIL" --backend "$backend" --acme-directory off)
    CMD_ENV=(--env "PATH=$TOOL_PATH" --env "TMPDIR=$WORK/tmp")
    ;;
  ansible)
    mkdir -p "$WORK/cp/$4"
    CMD=("$VENVS/ansible/bin/ansible-playbook" -i "$WORK/ansible-$n.ini" "$WORK/ansible/playbook.yml"
      -e "domain=$DOMAIN" -e "backend=$backend"
      -e "map_mode=0$MAP_MODE" -e "map_owner=$MAP_OWNER" -e "map_group=$MAP_GROUP")
    CMD_ENV=(--env "PATH=$PLAIN_PATH" --env "ANSIBLE_CONFIG=$WORK/ansible/ansible.cfg"
      --env "ANSIBLE_FORKS=$n" --env "ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/cp/$4"
      --env "ANSIBLE_HOME=$WORK/ansible-home" --env "ANSIBLE_LOCAL_TEMP=$WORK/ansible-home/tmp"
      --env "ANSIBLE_NOCOLOR=1")
    ;;
  pyinfra)
    # The inventory module is imported from the working directory.
    CMD=("$VENVS/pyinfra/bin/pyinfra" -y --parallel "$n" "$WORK/pyinfra_$n.py" "$WORK/pyinfra/deploy.py"
      --data "domain=$DOMAIN" --data "backend=$backend"
      --data "map_mode=$MAP_MODE" --data "map_owner=$MAP_OWNER" --data "map_group=$MAP_GROUP")
    CMD_ENV=(--env "PATH=$PLAIN_PATH" --env "NO_COLOR=1" --env "TERM=dumb")
    ;;
  esac
}

# One run of TOOL on hosts 1..N, measured (fleet_scale.py run) and checked
# (EXPECT: changed | noop | any). SCENARIO "" = not recorded.
RUNS=0
run_tool() { # N SCENARIO ROUND TOOL PORT EXPECT [--mem]
  local n=$1 sc=$2 round=$3 tool=$4 port=$5 expect=$6 mem=${7:-}
  RUNS=$((RUNS + 1))
  local id=N$n-${sc:-untimed}-r$round-$tool-$RUNS
  local logf=$D/logs/$id.log res=$WORK/res.json before after check
  command_for "$tool" "$n" "$port" "$id"
  before=$(logins "$n")
  (cd "$WORK" && unset SSH_AUTH_SOCK && $FS run --log "$logf" --out "$res" ${mem:+--mem} "${CMD_ENV[@]}" -- "${CMD[@]}") ||
    die "$tool failed on $n hosts ($id): $(tail -25 "$logf")"
  after=$(logins "$n")
  check=$($FS check "$tool" "$logf" "$n" "$expect") || die "$tool: unexpected result ($id), see $logf"
  if [ "$sc" = change ]; then
    local k
    for ((k = 1; k <= n; k++)); do
      grep -qF "127.0.0.1:$port" "${ROOTS[k]}/etc/haproxy/haproxy.cfg" ||
        die "$tool: host $k's haproxy.cfg has no 127.0.0.1:$port after the change ($id)"
    done
  fi
  # Timed runs go to runs.jsonl, memory runs to mem.jsonl, the others nowhere.
  local into=/dev/null
  [ -n "$sc" ] && into=$D/runs.jsonl
  [ -n "$mem" ] && into=$D/mem.jsonl
  $PY - "$res" "$n" "$sc" "$round" "$tool" "$port" "$before" "$after" "$check" "$id" >>"$into" <<'EOF'
import json, sys
res, n, sc, rnd, tool, port, before, after, check, rid = sys.argv[1:]
r = json.load(open(res))
r.update(n=int(n), scenario=sc, round=int(rnd), tool=tool, port=int(port), id=rid,
         logins=[int(a) - int(b) for a, b in zip(after.split(), before.split())],
         check=json.loads(check or "{}"))
print(json.dumps(r))
lg = sorted(set(r["logins"]))
sys.stderr.write(f"[bench]   {rid}: {r['wall_ms'] / 1000:.2f} s wall, {r['cpu_ms'] / 1000:.2f} s CPU, "
                 f"changed {r['check'].get('changed_hosts')}/{r['check'].get('hosts')} hosts, "
                 f"ssh logins per host {lg}\n")
EOF
}


rotated() { # ROUND: the tools, rotated by ROUND
  local r=$1 i
  for ((i = 0; i < ${#TOOLS[@]}; i++)); do printf '%s ' "${TOOLS[$(((i + r) % ${#TOOLS[@]}))]}"; done
}

# PSS of each container (init and every process below it), converged, idle.
container_memory() { # N
  local n=$1 k
  for ((k = 1; k <= n; k++)); do
    $PY - "${INITS[k]}" "$n" "$k" <<'EOF'
import json, os, sys
init, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, os.environ["FSDIR"])
import fleet_scale as fs
pids = [init] + fs.descendants(init)
pss = sum(fs.rss_pss_kib(p)[1] for p in pids)
print(json.dumps({"n": n, "host": k, "pss_kib": pss, "processes": len(pids)}))
EOF
  done >>"$D/containers.jsonl"
}
export FSDIR=$BENCH_DIR/lib

# ---------------------------------------------------------------- the run
started=$(date -u '+%Y-%m-%d %H:%M UTC')
booted=0
TEMPLATE_DONE=
for n in "${NLIST[@]}"; do
  if [ "$n" -gt "$booted" ]; then
    log "booting hosts $((booted + 1))..$n"
    t0=$SECONDS
    boot_hosts $((booted + 1)) "$n" "$KEY.pub"
    addrs=()
    for ((k = booted + 1; k <= n; k++)); do addrs+=("${ADDRS[k]}"); done
    ssh-keyscan -T 10 "${addrs[@]}" >>"$KH" 2>/dev/null
    for a in "${addrs[@]}"; do grep -q "^$a " "$KH" || die "ssh-keyscan got no key from $a"; done
    log "hosts $((booted + 1))..$n up in $((SECONDS - t0)) s"
    booted=$n
  fi
  inventories "$n"

  if [ -z "$TEMPLATE_DONE" ]; then
    # edgeup converges host 1 once; its haproxy.cfg becomes the template
    # of the other two (domain and backend made variables again).
    inventories 1
    run_tool 1 "" 0 edgeup 3000 changed
    cfg=${ROOTS[1]}/etc/haproxy/haproxy.cfg
    if grep -qE '\{\{|\{%|\{#' "$cfg"; then die "the rendered haproxy.cfg contains Jinja2 syntax"; fi
    grep -qF "127.0.0.1:3000" "$cfg" || die "no 127.0.0.1:3000 in edgeup's haproxy.cfg"
    mkdir -p "$WORK/ansible/templates"
    sed -e "s/127\.0\.0\.1:3000/{{ backend }}/g" -e "s/$DOMAIN/{{ domain }}/g" "$cfg" >"$WORK/ansible/templates/haproxy.cfg.j2"
    cp "$WORK/ansible/templates/haproxy.cfg.j2" "$WORK/pyinfra/haproxy.cfg.j2"
    map=${ROOTS[1]}/etc/haproxy/edgeup-sites.map
    [ -f "$map" ] || die "edgeup left no $map (the playbook and deploy render it)"
    sed -e "s/$DOMAIN/{{ domain }}/g" "$map" >"$WORK/ansible/templates/edgeup-sites.map.j2"
    cp "$WORK/ansible/templates/edgeup-sites.map.j2" "$WORK/pyinfra/"
    # Owner and group by the host's names (chroot: its /etc/passwd, /etc/group).
    read -r MAP_MODE MAP_OWNER MAP_GROUP <<<"$(chroot "${ROOTS[1]}" stat -c '%a %U %G' /etc/haproxy/edgeup-sites.map)"
    cp "$cfg" "$D/edgeup-haproxy.cfg"
    cp "$map" "$D/edgeup-sites.map"
    TEMPLATE_DONE=1
  fi

  log "N=$n: (a) first converge, $FIRST_ROUNDS rounds (hosts reset in place before each run)"
  for ((r = 1; r <= FIRST_ROUNDS; r++)); do
    for tool in $(rotated "$r"); do
      reset_hosts "$n"
      run_tool "$n" first "$r" "$tool" 3000 changed
    done
  done

  log "N=$n: every tool must see the fleet converged"
  for tool in "${TOOLS[@]}"; do run_tool "$n" "" 0 "$tool" 3000 any; done
  # The checking runs are also the memory runs (untimed: the sampler reads
  # /proc every ~10 ms, which would weigh on the timed runs).
  log "N=$n: controller memory (these no-op runs sampled)"
  for tool in "${TOOLS[@]}"; do run_tool "$n" noop 0 "$tool" 3000 noop --mem; done
  container_memory "$n"

  log "N=$n: (b) no-op, $WARMUP warm-up + $ROUNDS rounds"
  for ((r = 1; r <= WARMUP + ROUNDS; r++)); do
    for tool in $(rotated "$r"); do
      if [ "$r" -le "$WARMUP" ]; then
        run_tool "$n" "" "$r" "$tool" 3000 noop
      else
        run_tool "$n" noop $((r - WARMUP)) "$tool" 3000 noop
      fi
    done
  done

  log "N=$n: (c) the backend port changes on every host, $CHANGE_ROUNDS rounds"
  port=3000
  for ((r = 1; r <= CHANGE_ROUNDS; r++)); do
    for tool in $(rotated "$r"); do
      port=$((port == 3000 ? 3001 : 3000))
      # pyinfra's deploy compares the template with its staged copy, not
      # with the live haproxy.cfg, so it would not see that the previous run
      # (another tool) moved the port: its staged copy goes (untimed), and
      # the run does a change's whole work (upload, haproxy -c, swap, reload).
      if [ "$tool" = pyinfra ]; then
        for ((k = 1; k <= n; k++)); do rm -f "${ROOTS[k]}/etc/haproxy/haproxy.cfg.pyinfra-staged"; done
      fi
      run_tool "$n" change "$r" "$tool" "$port" changed
    done
  done
done

# ---------------------------------------------------------------- report
versions=(
  "edgeup: $(edgeup_id)"
  "$("$VENVS/ansible/bin/ansible-playbook" --version | head -1) (Python $("$VENVS/ansible/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
  "pyinfra $("$VENVS/pyinfra/bin/python" -c 'import importlib.metadata as m; print(m.version("pyinfra"), "+ paramiko", m.version("paramiko"))')"
  "OpenSSH client: $(ssh -V 2>&1), key exchange ${KEX:-the OpenSSH default}"
  "hosts: $(cat "$BENCH_ROOTFS/etc/edgeup-bench-rootfs"), sshd $(chroot "$BENCH_ROOTFS" dpkg-query -W -f='${Version}' openssh-server), haproxy $(chroot "$BENCH_ROOTFS" dpkg-query -W -f='${Version}' haproxy)"
)
$PY - "$D/meta.json" "$started" "$ROUNDS" "$WARMUP" "$FIRST_ROUNDS" "$CHANGE_ROUNDS" "${versions[@]}" <<'EOF'
import json, sys
path, started, rounds, warmup, first, change, *versions = sys.argv[1:]
json.dump({"started": started, "rounds": int(rounds), "warmup": int(warmup), "first_rounds": int(first),
           "change_rounds": int(change), "versions": versions}, open(path, "w"), indent=1)
EOF
machine_description >"$D/machine.md"
$FS report "$D" | tee "$OUT_DIR/fleet-scale.md"
cp "$D/fleet-scale.json" "$OUT_DIR/fleet-scale.json"
[ -f "$D/fleet-scale.png" ] && cp "$D/fleet-scale.png" "$OUT_DIR/fleet-scale.png" && cp "$D/fleet-scale.png" "$PLOT"
log "done: $OUT_DIR/fleet-scale.md, $PLOT"
