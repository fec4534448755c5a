# shellcheck shell=bash
# Pebble (a test ACME CA) and pebble-challtestsrv (its DNS) on the host's
# loopback, as tests/common/pebble.rs sets them up (sourced after common.sh):
# - everything bound to 127.0.0.1 only;
# - challtestsrv answers every A query with 127.0.0.1 and no AAAA
#   (-defaultIPv6 ""), so Pebble's HTTP-01 validations dial 127.0.0.1:80,
#   where the container's HAProxy listens (shared network namespace);
# - PEBBLE_VA_NOSLEEP=1 (no random validation delay), PEBBLE_AUTHZREUSE=0
#   (every order is validated), PEBBLE_WFE_NONCEREJECT=0 (no random badNonce);
# - Pebble's own HTTPS certificate comes from a throwaway CA made with
#   openssl (the Debian package ships no test certificates).
# Sets PEBBLE_DIRECTORY, PEBBLE_CA (the PEM ACME clients must trust) and
# PEBBLE_MANAGEMENT (its management API: /roots/0 is the issuing root).

start_pebble() {
  host_install pebble openssl curl
  local dir=$OUT_DIR/pebble
  rm -rf "$dir"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=edgeup bench Pebble CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$dir/key.pem" -out "$dir/cert.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/san.ext" -out "$dir/cert.pem" 2>/dev/null
  local listen mgmt dns dns_mgmt tls
  listen=$(free_port); mgmt=$(free_port); dns=$(free_port); dns_mgmt=$(free_port); tls=$(free_port)
  pebble-challtestsrv -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$dns_mgmt" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    >"$dir/challtestsrv.log" 2>&1 9>&- &
  local cpid=$!
  on_exit "kill $cpid 2>/dev/null; wait $cpid 2>/dev/null"
  cat >"$dir/pebble-config.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$listen", "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$dir/cert.pem", "privateKey": "$dir/key.pem", "httpPort": 80, "tlsPort": $tls,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
  (cd "$dir" && PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0 \
    exec pebble -config "$dir/pebble-config.json" -dnsserver "127.0.0.1:$dns") \
    >"$dir/pebble.log" 2>&1 9>&- &
  local ppid=$!
  on_exit "kill $ppid 2>/dev/null; wait $ppid 2>/dev/null"
  PEBBLE_DIRECTORY=https://127.0.0.1:$listen/dir
  PEBBLE_CA=$dir/ca.pem
  PEBBLE_MANAGEMENT=https://127.0.0.1:$mgmt
  for _ in $(seq 100); do
    if curl -fsS --cacert "$PEBBLE_CA" "$PEBBLE_DIRECTORY" 2>/dev/null | grep -q newOrder; then
      log "Pebble ready at $PEBBLE_DIRECTORY"
      return 0
    fi
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.2
  done
  die "Pebble did not start: $(tail -5 "$dir/pebble.log") $(tail -5 "$dir/challtestsrv.log")"
}
