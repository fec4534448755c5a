#!/bin/sh
# The practical floor of a no-op: the same checks as edgeup's (acme off),
# written as plainly as possible, with the fewest forks that still ask the
# host: one dpkg-query, one stat, one openssl, one cmp, one systemctl.
# It cannot render a template: haproxy.cfg is compared with a copy rendered
# beforehand (EXPECTED_CFG). It fixes nothing: exit 0 converged, 3 drift.
#   check.sh DOMAIN EXPECTED_CFG
domain=$1
expected=$2
drift=0
say() { echo "drift: $*"; drift=1; }

# Packages (dpkg database through dpkg-query).
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' haproxy certbot openssl procps 2>/dev/null |
  while read -r status pkg; do [ "$status" = ii ] || echo "$pkg"; done | grep -q . &&
  say "packages missing"

# Certificate directory, certificate, haproxy.cfg: mode and owners in one stat.
cert=/etc/haproxy/certs/$domain.pem
attrs=$(stat -c '%a %U %G' /etc/haproxy/certs "$cert" /etc/haproxy/haproxy.cfg 2>/dev/null)
[ "$attrs" = "700 haproxy haproxy
600 haproxy haproxy
640 root haproxy" ] || say "modes/owners: $attrs"

# Placeholder certificate: present and valid for more than 30 days.
openssl x509 -noout -checkend 2592000 -in "$cert" >/dev/null 2>&1 || say "certificate"

# haproxy.cfg content.
cmp -s "$expected" /etc/haproxy/haproxy.cfg || say "haproxy.cfg content"

# Firewall front-ends and SELinux: builtins only (none of them on Debian).
if command -v ufw >/dev/null || command -v firewall-cmd >/dev/null; then say "firewall not checked"; fi
[ -e /sys/fs/selinux/enforce ] && say "selinux not checked"

# The service: enabled and active, one systemctl call.
state=$(systemctl show -p UnitFileState -p ActiveState --value haproxy.service | tr '\n' ' ')
[ "$state" = "active enabled " ] || say "haproxy.service: $state"

[ $drift = 0 ] && exit 0
exit 3
