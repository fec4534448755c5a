#!/usr/bin/env bash
# Benchmark 7: many certificates in one apply. One Debian 12 container,
# SITES sites (default 50, s1..sN.many.test, each its own backend port on
# one trivial backend), Pebble on the host's loopback as in issuance.sh
# (PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=0: every order is validated).
# Every name resolves to 127.0.0.1: in the container through /etc/hosts
# (the preflight), for Pebble through challtestsrv -defaultIPv4 127.0.0.1;
# validations go Pebble -> the container's HAProxy :80 -> the responder.
#
#   1. converge with ACME off (apt, HAProxy running, a placeholder per site);
#   2. prime, untimed: one site issued with each client (registers both
#      accounts, installs the builtin client's renewal timer and certbot's),
#      then back to all sites with ACME off;
#   3. ROUNDS rounds (default 2), the clients' order alternating; for each
#      client: reset (every site's PEM, issuer record, certbot lineage and
#      deploy hook removed; `apply` with ACME off puts the placeholders
#      back), then the timed run, `edgeup --json apply --yes -f FILE` with
#      ACME on and that client, which must issue all SITES certificates:
#        builtin: one batch, at most 8 orders in flight, one responder;
#        certbot: `certbot certonly` once per site, one after another.
#      After each timed run every site's served certificate must verify
#      against Pebble's root with its own SNI (lib/issuance_many.py served),
#      Pebble must have issued SITES certificates during it, and no serial
#      may repeat one seen before; otherwise the benchmark fails.
# Ratio = certbot median / builtin median (wall time of the whole apply).
# Results: $BENCH_OUT/issuance-many.md; raw files in $BENCH_OUT/issuance-many/.
#
# Environment: SITES (50), ROUNDS (2). One round is SITES issuances per
# client: about 3 s each for certbot, so ~2.5 minutes per round at 50.
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/pebble.sh"

SITES=${SITES:-50}
ROUNDS=${ROUNDS:-2}
for v in SITES ROUNDS; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a whole number >= 1, not '${!v}'"
done

require_root
host_install haproxy curl openssl
build_edgeup
# What is measured: the tree as it is now, before the lock wait.
EDGEUP_ID="$(edgeup_id), binary of $(date -u -r "$EDGEUP_BIN" '+%Y-%m-%d %H:%M UTC')"
take_lock

W=$OUT_DIR/issuance-many
rm -rf "$W"
mkdir -p "$W"
HELPER="$PY $BENCH_DIR/lib/issuance_many.py"

start_pebble
ROOT_PEM=$W/pebble-root.pem
curl -fsS --cacert "$PEBBLE_CA" "$PEBBLE_MANAGEMENT/roots/0" >"$ROOT_PEM" ||
  die "could not fetch Pebble's root from $PEBBLE_MANAGEMENT"
PEBBLE_LOG=$OUT_DIR/pebble/pebble.log

# SITES free ports in a row on 127.0.0.1 for the backends.
BASE=$(free_port_run "$SITES") || die "no $SITES free ports in a row on 127.0.0.1"
start_trivial_backend "$((BASE + 1))-$((BASE + SITES))"
boot_container issuance-many

cp "$PEBBLE_CA" "$ROOT/root/pebble-ca.pem"
: >"$W/names"
for ((i = 1; i <= SITES; i++)); do
  echo "s$i.many.test" >>"$W/names"
  echo "127.0.0.1 s$i.many.test" >>"$ROOT/etc/hosts"
done

# site_file ACME COUNT: the first COUNT sites; ACME is off, builtin or certbot.
site_file() {
  echo "# bench/issuance-many.sh: $2 site(s), ACME $1"
  echo "email: ops@example.org"
  if [ "$1" = off ]; then
    echo 'acme: {directory: "off"}'
  else
    echo "acme:"
    echo "  directory: $PEBBLE_DIRECTORY"
    echo "  ca_bundle: /root/pebble-ca.pem"
    echo "  client: $1"
  fi
  echo "sites:"
  local i
  for ((i = 1; i <= $2; i++)); do
    echo "  - domain: s$i.many.test"
    echo "    backends: [\"127.0.0.1:$((BASE + i))\"]"
  done
}
for acme in off builtin certbot; do
  site_file "$acme" "$SITES" >"$ROOT/root/$acme.yaml"
  site_file "$acme" 1 >"$ROOT/root/$acme-1.yaml"
done
cp "$ROOT"/root/*.yaml "$W/"

apply() { # FILE LOG: an untimed apply that must succeed
  cexec edgeup --json apply --yes -f "/root/$1" >"$W/$2" 2>&1 ||
    die "edgeup apply -f $1 failed: $(grep -v '"status":"ok"' "$W/$2" | tail -5)"
}

log "converging $SITES sites with ACME off (installs haproxy, certbot, openssl)"
apply off.yaml converge.json
# Every site's certificate gone: PEM, issuer record, certbot lineage and
# deploy hook (the next apply puts placeholders back). Accounts, the
# renewal timers and the edgeup binary stay.
forget_certificates() {
  rm -f "$ROOT"/etc/haproxy/certs/s*.many.test.pem "$ROOT"/var/lib/edgeup/acme/s*.many.test.*
  rm -rf "$ROOT"/etc/letsencrypt/live/s*.many.test "$ROOT"/etc/letsencrypt/archive/s*.many.test \
    "$ROOT"/etc/letsencrypt/renewal/s*.many.test.conf "$ROOT"/etc/letsencrypt/renewal-hooks/deploy/edgeup-s*.many.test
}
reset() { # LABEL: no certificates, placeholders served, ACME off
  forget_certificates
  apply off.yaml "reset-$1.json"
}

log "priming: one site issued with each client (accounts, renewal timers), then ACME off again"
apply builtin-1.yaml prime-builtin.json
forget_certificates
apply certbot-1.yaml prime-certbot.json
grep -q '"name":"CA-issued certificate".*"status":"changed"' "$W/prime-builtin.json" &&
  grep -q '"name":"CA-issued certificate".*"status":"changed"' "$W/prime-certbot.json" ||
  die "priming did not issue a certificate with each client"

$PY - "$W/meta.json" <<EOF
import json, sys
json.dump({"sites": $SITES, "rounds": $ROUNDS}, open(sys.argv[1], "w"))
EOF
: >"$W/runs.jsonl"
: >"$W/serials-seen"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(builtin certbot); else order=(certbot builtin); fi
  for client in "${order[@]}"; do
    reset "$client-$r"
    first=$(wc -l <"$PEBBLE_LOG")
    log "round $r/$ROUNDS: $client issues $SITES certificates in one apply"
    t0=$EPOCHREALTIME
    cexec edgeup --json apply --yes -f "/root/$client.yaml" >"$W/$client-$r.json" 2>"$W/$client-$r.stderr" ||
      die "the timed $client apply failed: $(grep '"failed"' "$W/$client-$r.json" | head -3) $(tail -3 "$W/$client-$r.stderr")"
    t1=$EPOCHREALTIME
    last=$(wc -l <"$PEBBLE_LOG")
    wall=$($PY -c "print(round($t1 - $t0, 3))")
    $HELPER record "$W/runs.jsonl" "$client" "$r" "$wall" "$W/$client-$r.json" \
      "$($HELPER inflight "$PEBBLE_LOG" "$first" "$last")" "$SITES" || die "the $client run is not what was asked"
    $HELPER served "$ROOT_PEM" "$W/names" "$W/served-$client-$r.json" ||
      die "after the $client run, not every site serves a Pebble certificate"
    $PY - "$W/served-$client-$r.json" "$W/serials-seen" <<'EOF' || die "a served serial repeats an earlier one: nothing new was issued"
import json, sys
now = set(json.load(open(sys.argv[1])).values())
seen = set(open(sys.argv[2]).read().split())
if len(now) != len(json.load(open(sys.argv[1]))) or now & seen:
    sys.exit(1)
open(sys.argv[2], "a").write("\n".join(sorted(now)) + "\n")
EOF
    log "  $client: ${wall} s, all $SITES served certificates verify against Pebble's root"
  done
done

$PY - "$W/meta.json" <<EOF
import json, sys
m = json.load(open(sys.argv[1]))
m["versions"] = [
    "edgeup: $EDGEUP_ID (builtin client: instant-acme 0.8)",
    "certbot in the container: $(cexec certbot --version 2>&1) (Debian package $(cexec dpkg-query -W -f='${Version}' certbot))",
    "pebble: Debian package $(dpkg-query -W -f='${Version}' pebble); haproxy in the container: $(cexec dpkg-query -W -f='${Version}' haproxy)",
    "command: SITES=$SITES ROUNDS=$ROUNDS bench/issuance-many.sh",
]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
$HELPER report "$OUT_DIR" | tee "$OUT_DIR/issuance-many.md"
