#!/usr/bin/env bash
# Benchmark 3: certificate issuance against Pebble through HAProxy, edgeup's
# builtin ACME client vs certbot, wall time per issuance.
#
# Pebble runs on the host's loopback; the container's HAProxy listens on :80
# (shared network), so every HTTP-01 validation goes Pebble -> HAProxy :80
# -> 127.0.0.1:8688, where the client's responder answers. Both clients are
# set up by edgeup itself: first `apply --acme-client certbot` (certbot
# account, certificate, renewal config and edgeup's deploy hook), then
# `apply --acme-client builtin` (builtin account, renewal timer). Then
# ROUNDS interleaved rounds of:
#   builtin: edgeup renew --force
#            (preflight through HAProxy, new order, HTTP-01, finalize,
#             download, key/name checks, atomic swap, HAProxy reload)
#   certbot: certbot renew --force-renewal --no-random-sleep-on-renew -q
#            (new order, HTTP-01 on certbot's standalone server, finalize,
#             download, then edgeup's deploy hook: rebuild PEM, check, reload)
# as certbot's timer and edgeup's timer would run them. Every one is a full
# issuance (Pebble reuses no authorization: PEBBLE_AUTHZREUSE=0).
# Environment: ROUNDS (default 7), WARMUP (default 1).
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/pebble.sh"

ROUNDS=${ROUNDS:-7}
WARMUP=${WARMUP:-1}

require_root
host_install haproxy curl
build_edgeup
take_lock
start_pebble
BACKEND_PORT=$(free_port)
start_trivial_backend "$BACKEND_PORT"
boot_container issuance

cp "$PEBBLE_CA" "$ROOT/root/pebble-ca.pem"
echo "127.0.0.1 $DOMAIN" >>"$ROOT/etc/hosts"
SITE=(--domain "$DOMAIN" --email ops@example.org --backend "127.0.0.1:$BACKEND_PORT"
  --acme-directory "$PEBBLE_DIRECTORY" --acme-ca-bundle /root/pebble-ca.pem)

log "converging with the certbot client (installs packages, issues with certbot)"
cexec edgeup apply --yes "${SITE[@]}" --acme-client certbot >"$OUT_DIR/issuance-certbot-apply.log" 2>&1 ||
  die "edgeup apply (certbot) failed: $(tail -20 "$OUT_DIR/issuance-certbot-apply.log")"
log "switching to the builtin client (account, timer)"
cexec edgeup apply --yes "${SITE[@]}" --acme-client builtin >"$OUT_DIR/issuance-builtin-apply.log" 2>&1 ||
  die "edgeup apply (builtin) failed: $(tail -20 "$OUT_DIR/issuance-builtin-apply.log")"
csh "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null" ||
  die "installing python3 in the container failed"

B=$ROOT/root/bench
mkdir -p "$B"
cp "$BENCH_DIR/lib/measure.py" "$B/"
# A profiling what-if (not one of the compared clients): the builtin client
# with TCP_NODELAY forced on by an LD_PRELOAD shim (lib/nodelay.c).
WHATIF=
if command -v cc >/dev/null; then
  cc -shared -fPIC -O2 -o "$B/nodelay.so" "$BENCH_DIR/lib/nodelay.c" -ldl && WHATIF=1
fi
{
  echo '[{"name": "builtin (edgeup renew --force)", "argv": ["edgeup", "-q", "renew", "--force"]},'
  echo ' {"name": "certbot (certbot renew --force-renewal)",'
  echo '  "argv": ["certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew", "-q"],'
  echo '  "env": {"REQUESTS_CA_BUNDLE": "/root/pebble-ca.pem"}}'
  if [ -n "$WHATIF" ]; then
    echo ', {"name": "what-if: builtin with TCP_NODELAY (LD_PRELOAD shim)", "argv": ["edgeup", "-q", "renew", "--force"],'
    echo '  "env": {"LD_PRELOAD": "/root/bench/nodelay.so"}}'
  fi
  echo ']'
} >"$B/spec.json"

serial() { openssl x509 -noout -serial -in "$ROOT/etc/haproxy/certs/$DOMAIN.pem"; }
before=$(serial)
log "timing: $WARMUP warm-up + $ROUNDS interleaved rounds of 2 clients"
cexec python3 /root/bench/measure.py time /root/bench/spec.json --rounds "$ROUNDS" --warmup "$WARMUP" \
  --out /root/bench/issuance.json || die "timing failed"
cp "$B/issuance.json" "$OUT_DIR/issuance.json"
[ "$(serial)" != "$before" ] || die "the served certificate did not change: nothing was issued"
issued=$(grep -c 'Issued certificate serial' "$OUT_DIR/pebble/pebble.log" || true)
# Profile of one builtin issuance: step durations, and a syscall timeline.
cexec edgeup --json renew --force >"$OUT_DIR/issuance-builtin-steps.json" 2>/dev/null || die "edgeup renew failed"
csh "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null" &&
  cexec strace -f -ttt -T -s 64 -o /root/bench/renew.strace edgeup -q renew --force >/dev/null 2>&1 &&
  cp "$B/renew.strace" "$OUT_DIR/issuance-renew.strace" || log "note: no strace profile"
log "Pebble finalized $issued orders in total"
cexec edgeup status >"$OUT_DIR/issuance-status.log" 2>&1 || log "note: edgeup status is not all green after the runs (see $OUT_DIR/issuance-status.log)"

{
  echo "- edgeup: $(edgeup_id) (builtin client: instant-acme 0.8)"
  echo "- certbot: $(cexec certbot --version 2>&1) (Debian package $(cexec dpkg-query -W -f='${Version}' certbot), python3 $(cexec dpkg-query -W -f='${Version}' python3))"
  echo "- pebble: Debian package $(dpkg-query -W -f='${Version}' pebble)"
  echo "- haproxy in the container: $(cexec dpkg-query -W -f='${Version}' haproxy)"
  echo "- Pebble finalized $issued orders during this benchmark (converges + warm-up + timed runs)"
} >"$OUT_DIR/issuance-versions.md"

$PY "$BENCH_DIR/lib/report.py" issuance "$OUT_DIR" | tee "$OUT_DIR/issuance.md"
