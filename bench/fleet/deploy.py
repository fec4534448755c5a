"""The one pyinfra deploy of the benchmarks: benchmark 1 (bench/noop.sh,
`@local` on one converged container) and benchmark 8 (bench/fleet-scale.sh,
over ssh to N hosts).

The same converge as `edgeup apply --acme-directory off` on Debian, as a
pyinfra deploy: packages, certificate directory, placeholder certificate,
sites map, haproxy.cfg from a template validated with `haproxy -c` before it
goes live, firewall, SELinux, the haproxy service, and the reload (hook) when
the certificate, the map or the config changed.

Its two templates are made by the scripts from what edgeup rendered, so
every tool converges to the same bytes: haproxy.cfg.j2 (edgeup's haproxy.cfg,
the domain and the backend made variables again) and edgeup-sites.map.j2
(edgeup's /etc/haproxy/edgeup-sites.map, the domain made a variable); the
scripts point `src=` at their absolute paths. The map gets edgeup's mode and
owner (map_mode, map_owner, map_group: read with stat from edgeup's file).
edgeup's haproxy.cfg looks every site up in that map, so `haproxy -c` of the
staged config fails until the map exists (the map comes first). The
certificate directory and PEM are root's (700, 600), as edgeup makes them.

Run: pyinfra -y @local deploy.py --data domain=chat.example.test --data backend=127.0.0.1:PORT
     --data map_mode=640 --data map_owner=root --data map_group=haproxy

pyinfra's files.template has no validate option: the template is rendered to
a staged file next to haproxy.cfg, checked with `haproxy -c`, and copied over
the live file only when it changed and passed.
"""

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, server, systemd

domain = host.data.domain
backend = host.data.backend
certs_dir = "/etc/haproxy/certs"
cert_path = f"{certs_dir}/{domain}.pem"
staged_cfg = "/etc/haproxy/haproxy.cfg.pyinfra-staged"

apt.packages(
    name="Install haproxy, certbot and openssl",
    packages=["haproxy", "certbot", "openssl", "procps"],
    no_recommends=True,
)

files.directory(
    name="Certificate directory",
    path=certs_dir,
    mode="700",
    user="root",
    group="root",
)

placeholder = None
if not host.get_fact(File, path=cert_path):
    placeholder = server.shell(
        name="Placeholder certificate (until a CA-issued one exists)",
        commands=[
            "set -e; tmp=$(mktemp -d); "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 "
            f"-subj /CN={domain} -addext subjectAltName=DNS:{domain} "
            '-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null; '
            f'cat "$tmp/cert.pem" "$tmp/key.pem" > {cert_path}; rm -rf "$tmp"'
        ],
    )

cert_perms = files.file(
    name="Placeholder certificate permissions",
    path=cert_path,
    mode="600",
    user="root",
    group="root",
)

sites_map = files.template(
    name="Sites map (name -> backend), read by haproxy.cfg",
    src="edgeup-sites.map.j2",
    dest="/etc/haproxy/edgeup-sites.map",
    mode=host.data.map_mode,
    user=host.data.map_owner,
    group=host.data.map_group,
    domain=domain,
)

staged = files.template(
    name="haproxy.cfg (staged)",
    src="haproxy.cfg.j2",
    dest=staged_cfg,
    mode="640",
    user="root",
    group="haproxy",
    domain=domain,
    backend=backend,
)

swap = server.shell(
    name="haproxy.cfg validated with haproxy -c, then swapped in",
    commands=[f"haproxy -c -q -f {staged_cfg} && cp -p {staged_cfg} /etc/haproxy/haproxy.cfg"],
    _if=staged.did_change,
)

if host.get_fact(Which, command="ufw"):
    server.shell(name="Open ports 80 and 443 (ufw)", commands=["ufw allow 80/tcp", "ufw allow 443/tcp"])

if host.get_fact(File, path="/sys/fs/selinux/enforce"):
    server.shell(
        name="SELinux lets HAProxy reach the app and the ACME responder",
        commands=["setsebool -P haproxy_connect_any on"],
    )

systemd.service(
    name="haproxy enabled and running",
    service="haproxy.service",
    running=True,
    enabled=True,
)

changed = [swap, sites_map] + ([placeholder] if placeholder else [])
systemd.service(
    name="reload haproxy",
    service="haproxy.service",
    reloaded=True,
    _if=lambda: any(op.did_change() for op in changed),
)
