#!/bin/sh
# The practical floor of a no-op: the same checks as edgeup's (acme off),
# written as plainly as possible, with the fewest forks that still ask the
# host: one dpkg-query, one stat, one openssl, two cmp, one systemctl.
# It cannot render a template: haproxy.cfg and the sites map are compared
# with copies rendered beforehand (EXPECTED_CFG, EXPECTED_MAP: edgeup's). It
# fixes nothing: exit 0 converged, 3 drift.
#   check.sh DOMAIN EXPECTED_CFG EXPECTED_MAP
domain=$1
expected=$2
expected_map=$3
drift=0
say() { echo "drift: $*"; drift=1; }

# Packages (dpkg database through dpkg-query).
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' haproxy certbot openssl procps 2>/dev/null |
  while read -r status pkg; do [ "$status" = ii ] || echo "$pkg"; done | grep -q . &&
  say "packages missing"

# Certificate directory, certificate, sites map, haproxy.cfg: mode and
# owners in one stat (the certificates are root's: HAProxy's master process
# loads them as root before the workers drop privileges).
cert=/etc/haproxy/certs/$domain.pem
map=/etc/haproxy/edgeup-sites.map
attrs=$(stat -c '%a %U %G' /etc/haproxy/certs "$cert" "$map" /etc/haproxy/haproxy.cfg 2>/dev/null)
[ "$attrs" = "700 root root
600 root root
640 root haproxy
640 root haproxy" ] || say "modes/owners: $attrs"

# Placeholder certificate: present and valid for more than 30 days.
openssl x509 -noout -checkend 2592000 -in "$cert" >/dev/null 2>&1 || say "certificate"

# Sites map and haproxy.cfg content.
cmp -s "$expected_map" "$map" || say "edgeup-sites.map content"
cmp -s "$expected" /etc/haproxy/haproxy.cfg || say "haproxy.cfg content"

# Firewall front-ends and SELinux: builtins only (none of them on Debian).
if command -v ufw >/dev/null || command -v firewall-cmd >/dev/null; then say "firewall not checked"; fi
[ -e /sys/fs/selinux/enforce ] && say "selinux not checked"

# The service: enabled and active, one systemctl call.
state=$(systemctl show -p UnitFileState -p ActiveState --value haproxy.service | tr '\n' ' ')
[ "$state" = "active enabled " ] || say "haproxy.service: $state"

[ $drift = 0 ] && exit 0
exit 3
