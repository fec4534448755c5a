//! Many sites on one HAProxy, for real: the rendered haproxy.cfg and host
//! name map loaded by the installed HAProxy on loopback, each site reached
//! by name (SNI + Host) with its own certificate and backend, aliases,
//! path routing, unknown names, the no-SNI default, HSTS per site, the ACME
//! route only for known names, IPv6 (`[::1]`), and the default dual-stack
//! listeners (`:PORT` + `[::]:PORT v6only`) inside a network namespace of
//! the test's own, where IPv4 clients keep their plain IPv4 address.
//! Needs root (HAProxy chroots) and haproxy, curl, openssl, ip, python3.

mod common;

use common::backend::{Role, start_backend};
use common::*;
use std::path::Path;
use std::process::Command;

const CHAT: &str = "chat.example.test";
const GRAFANA: &str = "grafana.example.test";
const GRAFANA_WWW: &str = "www.grafana.example.test";
const WIKI: &str = "wiki.example.test";

/// Writes `names`' self-signed PEM as `certs/FIRST.pem` and the certificate
/// alone as `FIRST.ca.pem` (what curl trusts for that site).
fn site_cert(dir: &TestDir, names: &[&str]) {
    let (cert, key) = self_signed_names(names);
    std::fs::write(
        dir.certs_dir().join(format!("{}.pem", names[0])),
        format!("{cert}{key}"),
    )
    .expect("writing a site PEM");
    std::fs::write(dir.path().join(format!("{}.ca.pem", names[0])), cert).expect("writing a CA");
}

struct Curl {
    status: u16,
    head: String,
    body: String,
}

/// curl NAME at `ip:port` (resolved there), trusting only `ca`.
fn curl(url_host: &str, ip: &str, port: u16, path: &str, ca: &Path, extra: &[&str]) -> Curl {
    let scheme = if extra.contains(&"--http") {
        "http"
    } else {
        "https"
    };
    let args: Vec<&str> = extra.iter().copied().filter(|a| *a != "--http").collect();
    let resolve = format!("{url_host}:{port}:{ip}");
    let url = format!("{scheme}://{url_host}:{port}{path}");
    let out = run(
        Command::new("curl")
            .args([
                "-sS",
                "-i",
                "--max-time",
                "10",
                "--resolve",
                &resolve,
                "--cacert",
            ])
            .arg(ca)
            .args(&args)
            .arg(&url),
        20,
    );
    assert!(
        out.status.success(),
        "curl {url} via {ip}: {}",
        out.stderr_text()
    );
    let text = out.stdout_text();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text}"));
    Curl {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// The subject CN HAProxy serves on `ip:port` for `sni` (None: no SNI).
fn served_cn(ip: &str, port: u16, sni: Option<&str>) -> String {
    let mut cmd = Command::new("sh");
    let servername = sni
        .map(|s| format!("-servername {s}"))
        .unwrap_or_else(|| "-noservername".into());
    cmd.arg("-c").arg(format!(
        "openssl s_client -connect {ip}:{port} {servername} </dev/null 2>/dev/null | openssl x509 -noout -subject"
    ));
    let out = run(&mut cmd, 20);
    out.stdout_text().trim().to_string()
}

#[test]
fn live_sites_route_by_name_with_their_own_certificates() {
    assert!(
        is_root(),
        "the live HAProxy tests must run as root (HAProxy chroots)"
    );
    let version = haproxy_version();
    let dir = TestDir::new(CHAT);
    site_cert(&dir, &[CHAT]);
    site_cert(&dir, &[GRAFANA, GRAFANA_WWW]);
    site_cert(&dir, &[WIKI]);
    let chat = start_backend(Role::App("chat"));
    let grafana = start_backend(Role::App("grafana"));
    let wiki = start_backend(Role::App("wiki"));
    let acme = start_backend(Role::Acme);
    let (http, https) = (free_port(), free_port());
    let yaml = format!(
        "email: ops@example.test\nacme: {{directory: https://127.0.0.1:14000/dir}}\n\
         listen:\n  http: [\"127.0.0.1:{http}\", \"[::1]:{http}\"]\n  https: [\"127.0.0.1:{https}\", \"[::1]:{https}\"]\n  acme_responder: \"127.0.0.1:{acme}\"\n\
         sites:\n\
         \x20 - domain: {CHAT}\n    backends: [\"127.0.0.1:{chat}\"]\n\
         \x20 - domain: {GRAFANA}\n    aliases: [{GRAFANA_WWW}]\n    backends: [\"127.0.0.1:{grafana}\"]\n    hsts: false\n\
         \x20 - domain: {WIKI}\n    backends: [\"127.0.0.1:{wiki}\"]\n    routing: \"path:/wiki/\"\n"
    );
    // Valid but for the test's responder: a free, unprivileged port (edgeup
    // itself refuses those; HAProxy does not care).
    let file: edgeup::site::SiteFile = serde_saphyr::from_str(&yaml).expect("parses");
    let raw = file.resolve().expect("resolves");
    let problems = edgeup::site::validate_config(&raw, Some(&file)).expect_err("refused");
    let config = config(&yaml);
    assert_eq!(
        problems
            .iter()
            .map(|p| p.field.as_str())
            .collect::<Vec<_>>(),
        ["listen.acme_responder"],
        "{problems:?}"
    );
    let cfg = render_sites(&config, &relocated(&debian(), &dir), facts(Some(&version)));
    let mut guard = start_checked_haproxy(&cfg, &dir, &[http, https]);
    let ca = |name: &str| dir.path().join(format!("{name}.ca.pem"));

    // Each name reaches its own backend, verified against its own certificate,
    // over IPv4 and IPv6.
    for ip in ["127.0.0.1", "::1"] {
        for (name, cert, backend) in [
            (CHAT, CHAT, "chat"),
            (GRAFANA, GRAFANA, "grafana"),
            (GRAFANA_WWW, GRAFANA, "grafana"),
        ] {
            let r = curl(name, ip, https, "/api/x", &ca(cert), &[]);
            assert_eq!(r.status, 200, "{name} via {ip}: {}", r.body);
            assert!(
                r.body.starts_with(&format!("backend: {backend}\r\n")),
                "{name}: {}",
                r.body
            );
        }
    }
    // HSTS is each site's own choice.
    let hsts = |r: &Curl| {
        r.head
            .contains("strict-transport-security: max-age=63072000")
    };
    assert!(hsts(&curl(CHAT, "127.0.0.1", https, "/", &ca(CHAT), &[])));
    assert!(!hsts(&curl(
        GRAFANA,
        "127.0.0.1",
        https,
        "/",
        &ca(GRAFANA),
        &[]
    )));

    // Path routing on its own site; the prefix is stripped.
    let r = curl(WIKI, "127.0.0.1", https, "/wiki/page?id=1", &ca(WIKI), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.starts_with("backend: wiki\r\nGET /page?id=1 "),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("x-forwarded-prefix: /wiki")
            || r.body.contains("X-Forwarded-Prefix: /wiki"),
        "{}",
        r.body
    );
    assert_eq!(
        curl(WIKI, "127.0.0.1", https, "/other", &ca(WIKI), &[]).status,
        404
    );
    // A subdomain site never sees a client's X-Forwarded-Prefix.
    let r = curl(
        CHAT,
        "127.0.0.1",
        https,
        "/",
        &ca(CHAT),
        &["-H", "X-Forwarded-Prefix: /evil"],
    );
    assert!(
        !r.body.to_ascii_lowercase().contains("x-forwarded-prefix"),
        "{}",
        r.body
    );

    // An unknown name: a clear 404 and no HSTS.
    let r = curl(
        CHAT,
        "127.0.0.1",
        https,
        "/",
        &ca(CHAT),
        &["-H", "Host: unknown.example.test"],
    );
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("no site is configured for this host name"),
        "{}",
        r.body
    );
    assert!(!hsts(&r));

    // SNI picks the site's certificate; no SNI gets the first site's.
    assert!(served_cn("127.0.0.1", https, Some(GRAFANA)).ends_with(GRAFANA));
    assert!(served_cn("127.0.0.1", https, Some(WIKI)).ends_with(WIKI));
    assert!(
        served_cn("127.0.0.1", https, None).ends_with(CHAT),
        "no-SNI default"
    );

    // Plain HTTP: known names are redirected to HTTPS on their own name; the
    // ACME path reaches the responder only for known names.
    let r = curl(GRAFANA_WWW, "::1", http, "/a?b=c", &ca(CHAT), &["--http"]);
    assert_eq!(r.status, 308);
    assert!(
        r.head
            .contains(&format!("location: https://{GRAFANA_WWW}:{https}/a?b=c")),
        "{}",
        r.head
    );
    let r = curl(
        CHAT,
        "::1",
        http,
        "/.well-known/acme-challenge/tok",
        &ca(CHAT),
        &["--http"],
    );
    assert_eq!(r.status, 200, "ACME path over IPv6");
    assert_eq!(r.body, common::backend::ACME_TOKEN_BODY);
    let r = curl(
        "unknown.example.test",
        "127.0.0.1",
        http,
        "/.well-known/acme-challenge/tok",
        &ca(CHAT),
        &["--http"],
    );
    assert_eq!(
        r.status, 404,
        "no ACME answers for names this proxy does not serve"
    );
    guard.assert_running();
}

const APEX: &str = "example.test";

#[test]
fn a_wildcard_alias_serves_every_name_one_label_deep_and_exact_names_win() {
    assert!(
        is_root(),
        "the live HAProxy tests must run as root (HAProxy chroots)"
    );
    let version = haproxy_version();
    let dir = TestDir::new(APEX);
    site_cert(&dir, &[APEX, "*.example.test"]);
    site_cert(&dir, &[CHAT]);
    let apps = start_backend(Role::App("apps"));
    let chat = start_backend(Role::App("chat"));
    let acme = start_backend(Role::Acme);
    let (http, https) = (free_port(), free_port());
    let yaml = format!(
        "email: ops@example.test\nacme: {{directory: https://127.0.0.1:14000/dir}}\n\
         listen:\n  http: [\"127.0.0.1:{http}\"]\n  https: [\"127.0.0.1:{https}\"]\n  acme_responder: \"127.0.0.1:{acme}\"\n\
         sites:\n\
         \x20 - domain: {APEX}\n    aliases: [\"*.{APEX}\"]\n    backends: [\"127.0.0.1:{apps}\"]\n\
         \x20   acme: {{challenge: dns-01, dns: {{provider: exec, command: /usr/local/bin/dns-hook}}}}\n\
         \x20 - domain: {CHAT}\n    backends: [\"127.0.0.1:{chat}\"]\n"
    );
    let config = config(&yaml);
    let (_, map) = render_config(&config, &relocated(&debian(), &dir), facts(Some(&version)));
    assert!(map.contains(&format!("\n.{APEX} site_{APEX}\n")), "{map}");
    let cfg = render_sites(&config, &relocated(&debian(), &dir), facts(Some(&version)));
    let mut guard = start_checked_haproxy(&cfg, &dir, &[http, https]);
    let ca = |name: &str| dir.path().join(format!("{name}.ca.pem"));

    // Any one label under the wildcard, and the apex, reach the wildcard
    // site, verified against its certificate; the exact name keeps its own.
    for name in ["a.example.test", "b.example.test", APEX] {
        let r = curl(name, "127.0.0.1", https, "/x", &ca(APEX), &[]);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert!(
            r.body.starts_with("backend: apps\r\n"),
            "{name}: {}",
            r.body
        );
    }
    let r = curl(CHAT, "127.0.0.1", https, "/x", &ca(CHAT), &[]);
    assert!(r.body.starts_with("backend: chat\r\n"), "{}", r.body);
    assert!(served_cn("127.0.0.1", https, Some("c.example.test")).ends_with(APEX));
    // Two labels deep is not covered (neither is it by the certificate).
    let r = curl(
        CHAT,
        "127.0.0.1",
        https,
        "/",
        &ca(CHAT),
        &["-H", "Host: x.y.example.test"],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // Plain HTTP: a name under the wildcard is known (redirected).
    let r = curl(
        "d.example.test",
        "127.0.0.1",
        http,
        "/p",
        &ca(APEX),
        &["--http"],
    );
    assert_eq!(r.status, 308, "{}", r.head);
    let r = curl(
        "x.y.example.test",
        "127.0.0.1",
        http,
        "/p",
        &ca(APEX),
        &["--http"],
    );
    assert_eq!(r.status, 404, "{}", r.head);
    guard.assert_running();
}

/// A network namespace of the test's own (only its loopback), deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("edgeup-ds-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = run(Command::new("ip").args(["netns", "add", &name]), 10);
        assert!(out.status.success(), "ip netns add: {}", out.stderr_text());
        let ns = Netns(name);
        let out = run(
            Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]),
            10,
        );
        assert!(out.status.success(), "lo up: {}", out.stderr_text());
        ns
    }

    fn exec(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn default_listeners_serve_ipv4_and_ipv6() {
    assert!(
        is_root(),
        "network namespaces and HAProxy's chroot need root"
    );
    let version = haproxy_version();
    let dir = TestDir::new(CHAT);
    let ns = Netns::new();
    // Defaults (`:80`, `:443`) inside the namespace, where they bind only its loopback.
    let yaml =
        format!("domain: {CHAT}\nbackends: [\"127.0.0.1:3000\"]\nacme: {{directory: \"off\"}}\n");
    let mut f = facts(Some(&version));
    f.ipv6 = true;
    let cfg = render_sites(&config(&yaml), &relocated(&debian(), &dir), f);
    assert!(
        cfg.contains("\n    bind :80\n    bind [::]:80 v6only\n"),
        "{cfg}"
    );
    assert!(cfg.contains("\n    bind :443 ssl crt "), "{cfg}");
    assert!(cfg.contains("\n    bind [::]:443 v6only ssl crt "), "{cfg}");
    if let Err(e) = haproxy_check(&cfg, &dir.config()) {
        panic!("{e}\n{cfg}");
    }
    // The app answers with the client address HAProxy forwarded.
    const APP: &str = "import http.server as h
class A(h.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.headers.get('X-Forwarded-For') or '').encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
h.HTTPServer(('127.0.0.1', 3000), A).serve_forever()
";
    let mut app = ProcessGuard::spawn(
        "app",
        ns.exec().args(["python3", "-c", APP]),
        &dir.path().join("app.log"),
    );
    let mut proxy = ProcessGuard::spawn(
        "haproxy",
        ns.exec()
            .arg(haproxy())
            .arg("-db")
            .arg("-f")
            .arg(dir.config()),
        &dir.path().join("haproxy.log"),
    );
    let ca = dir.ca();
    // The status code, or with `body` the response body.
    let fetch_body = |ip: &str, port: u16, path: &str, http: bool, body: bool| -> String {
        let scheme = if http { "http" } else { "https" };
        let resolve = format!("{CHAT}:{port}:{ip}");
        let (out, write) = if body {
            ("-", "")
        } else {
            ("/dev/null", "%{http_code}")
        };
        let mut cmd = ns.exec();
        cmd.args(["curl", "-s", "-o", out, "-w", write, "--max-time", "15"])
            .args(["--resolve", &resolve, "--cacert"])
            .arg(&ca)
            .arg(format!("{scheme}://{CHAT}:{port}{path}"));
        run(&mut cmd, 30).stdout_text()
    };
    let fetch =
        |ip: &str, port: u16, path: &str, http: bool| fetch_body(ip, port, path, http, false);
    // Both listeners are up once HTTPS answers (HAProxy and the app start in parallel).
    let ready = std::time::Instant::now();
    while fetch("127.0.0.1", 443, "/", false) != "200" {
        assert!(
            ready.elapsed().as_secs() < 20,
            "HAProxy in the namespace never answered:\n{}",
            proxy.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for ip in ["127.0.0.1", "::1"] {
        assert_eq!(fetch(ip, 443, "/", false), "200", "HTTPS over {ip}");
        // IPv4 clients keep their plain address (no ::ffff: mapping).
        assert_eq!(
            fetch_body(ip, 443, "/", false, true),
            ip,
            "X-Forwarded-For over {ip}"
        );
        assert_eq!(fetch(ip, 80, "/x", true), "308", "HTTP redirect over {ip}");
        // Nothing answers challenges here (no responder): HAProxy's own 503
        // shows the route exists over both families.
        assert_eq!(
            fetch(ip, 80, "/.well-known/acme-challenge/t", true),
            "503",
            "ACME route over {ip}"
        );
    }
    proxy.assert_running();
    app.assert_running();
}
