#!/usr/bin/env bash
# Benchmarks 1 and 2: the no-op re-run on a converged host, and peak memory.
#
# Boots a Debian 12 container (systemd as PID 1), converges it with
# `edgeup apply --acme-directory off`, installs ansible-core and pyinfra in
# venvs inside it, checks that every tool agrees the host is converged, then
# times ROUNDS interleaved no-op runs of: edgeup apply, edgeup plan,
# ansible-playbook, pyinfra, and the shell floor; then one ptrace'd run of
# each for peak memory. Results: $BENCH_OUT/noop.json, noop-mem.json, noop.md.
# Ansible's playbook and pyinfra's deploy are bench/fleet/{playbook.yml,
# deploy.py} (shared with benchmark 8), Ansible with noop/ansible/ansible.cfg.
#
# Environment: ROUNDS (default 15), WARMUP (default 2),
#   ANSIBLE_CORE_SPEC (default ansible-core), PYINFRA_SPEC (default pyinfra).
source "$(dirname "$0")/lib/common.sh"

ROUNDS=${ROUNDS:-15}
WARMUP=${WARMUP:-2}
ANSIBLE_CORE_SPEC=${ANSIBLE_CORE_SPEC:-ansible-core}
PYINFRA_SPEC=${PYINFRA_SPEC:-pyinfra}

require_root
host_install haproxy curl
build_edgeup
take_lock

BACKEND_PORT=$(free_port)
BACKEND=127.0.0.1:$BACKEND_PORT
start_trivial_backend "$BACKEND_PORT"
boot_container noop
SITE=(--domain "$DOMAIN" --email ops@example.org --backend "$BACKEND" --acme-directory off)

log "converging the container with edgeup (fresh host: apt installs haproxy, certbot, openssl)"
cexec edgeup apply --yes "${SITE[@]}" >"$OUT_DIR/noop-converge.log" 2>&1 ||
  die "edgeup apply failed: $(tail -20 "$OUT_DIR/noop-converge.log")"

log "installing the other tools inside the container (python3-venv, python3-apt, strace; ansible-core and pyinfra from PyPI)"
csh 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv python3-apt strace >/dev/null' ||
  die "apt-get install in the container failed"
# pip trusts the host's CA bundle (the same PyPI access as the host's pip).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/host-ca.crt"
PIP="pip install -q --disable-pip-version-check --cert /root/host-ca.crt"
csh "python3 -m venv /opt/bench/ansible && /opt/bench/ansible/bin/$PIP '$ANSIBLE_CORE_SPEC'" ||
  die "pip install ansible-core failed"
csh "python3 -m venv /opt/bench/pyinfra && /opt/bench/pyinfra/bin/$PIP '$PYINFRA_SPEC'" ||
  die "pip install pyinfra failed"

# The tools' files: the one playbook and deploy (bench/fleet/, shared with
# benchmark 8) with benchmark 1's local-connection ansible.cfg, and their
# templates: haproxy.cfg.j2 is edgeup's rendered haproxy.cfg with the domain
# and the backend made variables again, edgeup-sites.map.j2 edgeup's rendered
# sites map with the domain made a variable, so all tools converge to the very
# same bytes (and never fight). The map's mode and owner are edgeup's, read
# from the container (map_mode, map_owner, map_group).
B=$ROOT/root/bench
mkdir -p "$B/ansible/templates" "$B/pyinfra"
cp "$BENCH_DIR/fleet/playbook.yml" "$BENCH_DIR/noop/ansible/ansible.cfg" "$B/ansible/"
cp "$BENCH_DIR/fleet/deploy.py" "$B/pyinfra/"
cp -r "$BENCH_DIR/noop/shell" "$B/"
cp "$BENCH_DIR/lib/measure.py" "$B/"
cfg=$ROOT/etc/haproxy/haproxy.cfg
map=$ROOT/etc/haproxy/edgeup-sites.map
[ -f "$map" ] || die "edgeup left no /etc/haproxy/edgeup-sites.map (the playbook and deploy render it)"
for f in "$cfg" "$map"; do
  if grep -qE '\{\{|\{%|\{#' "$f"; then die "edgeup's $(basename "$f") contains Jinja2 syntax; cannot template it"; fi
done
if grep -qF "$BACKEND" "$map"; then die "edgeup's sites map names the backend address; its template makes only the domain a variable"; fi
backend_re=${BACKEND//./\\.} domain_re=${DOMAIN//./\\.}
sed -e "s/$backend_re/{{ backend }}/g" -e "s/$domain_re/{{ domain }}/g" "$cfg" >"$B/ansible/templates/haproxy.cfg.j2"
sed -e "s/$domain_re/{{ domain }}/g" "$map" >"$B/ansible/templates/edgeup-sites.map.j2"
cp "$B/ansible/templates/haproxy.cfg.j2" "$B/ansible/templates/edgeup-sites.map.j2" "$B/pyinfra/"
cp "$cfg" "$B/shell/haproxy.cfg.expected"
cp "$map" "$B/shell/edgeup-sites.map.expected"
sed -i -e 's|src="haproxy.cfg.j2"|src="/root/bench/pyinfra/haproxy.cfg.j2"|' \
  -e 's|src="edgeup-sites.map.j2"|src="/root/bench/pyinfra/edgeup-sites.map.j2"|' "$B/pyinfra/deploy.py"
[ "$(grep -cF 'src="/root/bench/pyinfra/' "$B/pyinfra/deploy.py")" = 2 ] || die "could not point deploy.py at its templates"
# Owner and group by the container's names (its /etc/passwd, /etc/group).
read -r MAP_MODE MAP_OWNER MAP_GROUP <<<"$(cexec stat -c '%a %U %G' /etc/haproxy/edgeup-sites.map)"
[ -n "$MAP_GROUP" ] || die "could not stat /etc/haproxy/edgeup-sites.map in the container"
cp "$cfg" "$OUT_DIR/edgeup-haproxy.cfg"
cp "$map" "$OUT_DIR/edgeup-sites.map"
cp "$ROOT/etc/haproxy/certs/$DOMAIN.pem" "$OUT_DIR/edgeup-placeholder.pem"
chmod 600 "$OUT_DIR/edgeup-placeholder.pem"

ANSIBLE=(/opt/bench/ansible/bin/ansible-playbook -i "localhost," -c local /root/bench/ansible/playbook.yml
  -e "domain=$DOMAIN" -e "backend=$BACKEND"
  -e "map_mode=0$MAP_MODE" -e "map_owner=$MAP_OWNER" -e "map_group=$MAP_GROUP")
PYINFRA=(/opt/bench/pyinfra/bin/pyinfra -y @local /root/bench/pyinfra/deploy.py
  --data "domain=$DOMAIN" --data "backend=$BACKEND"
  --data "map_mode=$MAP_MODE" --data "map_owner=$MAP_OWNER" --data "map_group=$MAP_GROUP")
ANSIBLE_ENV=(ANSIBLE_CONFIG=/root/bench/ansible/ansible.cfg)
SHELL_FLOOR=(/bin/sh /root/bench/shell/check.sh "$DOMAIN" /root/bench/shell/haproxy.cfg.expected
  /root/bench/shell/edgeup-sites.map.expected)

# First runs of Ansible and pyinfra: the host is converged for edgeup, so
# they must change nothing either (pyinfra's first run creates its staged
# copy of haproxy.cfg; its second run must change nothing).
log "checking that every tool sees a converged host"
cexec env "${ANSIBLE_ENV[@]}" "${ANSIBLE[@]}" >"$OUT_DIR/noop-ansible-first.log" 2>&1 ||
  die "ansible-playbook failed: $(tail -30 "$OUT_DIR/noop-ansible-first.log")"
grep -qE 'changed=0 +unreachable=0 +failed=0' "$OUT_DIR/noop-ansible-first.log" ||
  die "Ansible changed something on a converged host: $(tail -30 "$OUT_DIR/noop-ansible-first.log")"
cexec "${PYINFRA[@]}" >"$OUT_DIR/noop-pyinfra-first.log" 2>&1 ||
  die "pyinfra failed: $(tail -30 "$OUT_DIR/noop-pyinfra-first.log")"
cexec "${PYINFRA[@]}" >"$OUT_DIR/noop-pyinfra-second.log" 2>&1 ||
  die "pyinfra failed: $(tail -30 "$OUT_DIR/noop-pyinfra-second.log")"
# Converged: the results table's last row, `Grand total HOSTS SUCCESS ERROR
# NO_CHANGE`, with no operation that changed something or failed ("-" = 0).
# (Not the per-operation "No changes" lines: a run that changed some
# operations prints those too.)
grep -qE '^\s*Grand total\s+[0-9]+\s+-\s+-\s+[0-9]+\s*$' "$OUT_DIR/noop-pyinfra-second.log" ||
  die "pyinfra changed something on a converged host: $(tail -30 "$OUT_DIR/noop-pyinfra-second.log")"
cexec "${SHELL_FLOOR[@]}" >"$OUT_DIR/noop-shell.log" 2>&1 ||
  die "the shell floor found drift: $(cat "$OUT_DIR/noop-shell.log")"
cexec edgeup --json plan "${SITE[@]}" >"$OUT_DIR/noop-plan.json" 2>&1 ||
  die "edgeup plan found changes after the other tools ran: $(tail -5 "$OUT_DIR/noop-plan.json")"

# The measurement spec (runs inside the container, no shell in between):
# the very argv checked above.
$PY - "$B/spec.json" "${SITE[@]}" -- "${SHELL_FLOOR[@]}" -- "${ANSIBLE_ENV[@]}" -- "${ANSIBLE[@]}" -- "${PYINFRA[@]}" <<'EOF'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
parts, cur = [], []
for a in args:
    if a == "--" and len(parts) < 4:
        parts.append(cur)
        cur = []
    else:
        cur.append(a)
parts.append(cur)
site, shell, ansible_env, ansible, pyinfra = parts
spec = [
    {"name": "edgeup apply", "argv": ["edgeup", "apply", "--yes"] + site},
    {"name": "edgeup plan", "argv": ["edgeup", "plan"] + site},
    {"name": "shell floor", "argv": shell},
    {"name": "ansible-playbook", "env": dict(e.split("=", 1) for e in ansible_env), "argv": ansible},
    {"name": "pyinfra", "argv": pyinfra},
]
json.dump(spec, open(path, "w"), indent=1)
# Context for the profile: what edgeup's no-op is made of.
context = [
    {"name": "edgeup --version (process start)", "argv": ["edgeup", "--version"]},
    {"name": "systemctl show haproxy.service (the one fork)",
     "argv": ["systemctl", "show", "haproxy.service", "--property=LoadState,UnitFileState,ActiveState,MainPID"]},
    {"name": "/bin/true (fork+exec floor)", "argv": ["/bin/true"]},
]
json.dump(context, open(path.replace("spec.json", "context.json"), "w"), indent=1)
EOF

log "timing: $WARMUP warm-up + $ROUNDS interleaved rounds of 5 tools"
cexec python3 /root/bench/measure.py time /root/bench/spec.json --rounds "$ROUNDS" --warmup "$WARMUP" \
  --out /root/bench/noop.json || die "timing failed"
log "peak memory: one ptrace'd run of each"
cexec python3 /root/bench/measure.py mem /root/bench/spec.json --out /root/bench/noop-mem.json || die "memory pass failed"
cexec python3 /root/bench/measure.py time /root/bench/context.json --rounds "$ROUNDS" --warmup "$WARMUP" \
  --out /root/bench/noop-context.json || die "timing the context failed"
cexec edgeup --json apply --yes "${SITE[@]}" >"$OUT_DIR/noop-apply-steps.json" 2>/dev/null || die "edgeup apply failed"
cp "$B/noop-context.json" "$OUT_DIR/noop-context.json"
cp "$B/noop.json" "$OUT_DIR/noop.json"
cp "$B/noop-mem.json" "$OUT_DIR/noop-mem.json"

# Still converged for edgeup after everything ran.
cexec edgeup plan "${SITE[@]}" >/dev/null 2>&1 || die "edgeup plan is not clean after the runs"

# Profile of edgeup's no-op: every process it starts, every file it reads,
# and where the wall time goes (strace -f, timestamps relative to the start).
cexec strace -f -ttt -T -o /root/bench/apply.strace \
  edgeup apply --yes "${SITE[@]}" >/dev/null 2>&1 || true
cexec strace -f -c -o /root/bench/apply.strace-summary edgeup apply --yes "${SITE[@]}" >/dev/null 2>&1 || true
cp "$B/apply.strace" "$B/apply.strace-summary" "$OUT_DIR/" 2>/dev/null || true

# Versions of every tool, from inside the container.
{
  echo "- edgeup: $(edgeup_id)"
  echo "- $(cexec /opt/bench/ansible/bin/ansible-playbook --version | head -1) (Python $(cexec /opt/bench/ansible/bin/python -c 'import sys; print(sys.version.split()[0])'))"
  echo "- pyinfra: $(cexec /opt/bench/pyinfra/bin/pyinfra --version 2>&1 | tail -1)"
  echo "- container: $(cexec sh -c '. /etc/os-release; echo $PRETTY_NAME'), systemd $(cexec systemctl --version | head -1 | awk '{print $2}'), dpkg $(cexec dpkg-query -W -f='${Version}' dpkg), haproxy $(cexec dpkg-query -W -f='${Version}' haproxy), openssl $(cexec dpkg-query -W -f='${Version}' openssl), dash $(cexec dpkg-query -W -f='${Version}' dash)"
} >"$OUT_DIR/noop-versions.md"

$PY "$BENCH_DIR/lib/report.py" noop "$OUT_DIR" | tee "$OUT_DIR/noop.md"
