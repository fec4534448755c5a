//! haproxy.cfg as edgeup renders it, checked by the real HAProxy:
//! every variant passes `haproxy -c` without warnings, three variants match
//! golden files (`UPDATE_GOLDEN=1` rewrites them), and a live HAProxy on
//! 127.0.0.1 routes ACME, redirects, app and websocket traffic with the TLS
//! settings the config promises.
//!
//! These tests need `haproxy`, `curl` and `openssl`; a missing tool fails the
//! test, it is never skipped. The live tests must run as root (HAProxy
//! chroots and drops to the `haproxy` user).

mod common;

use common::backend::*;

use common::{
    ProcessGuard, Ran, TestDir, debian, facts, free_port, haproxy, haproxy_check, relocated,
    render, rhel, run, shipped_profiles, site, start_checked_haproxy,
};
use edgeup::distro::Distro;
use edgeup::render::major_minor;
use edgeup::site::Site;
use std::path::PathBuf;
use std::process::Command;

const DOMAIN: &str = "chat.example.test";

// ====================================================================== variants

struct Variant {
    name: &'static str,
    site: Site,
    distro: Distro,
    version: Option<&'static str>,
}

/// A private CA's directory: Let's Encrypt (the default) would refuse the
/// .test names; nothing here contacts a CA.
const PRIVATE_CA: &str = "acme:\n  directory: https://127.0.0.1:14000/dir\n";

fn subdomain_yaml() -> String {
    format!(
        "domain: {DOMAIN}\nemail: admin@example.test\nbackends: [\"127.0.0.1:3000\"]\n{PRIVATE_CA}"
    )
}

fn variants() -> Vec<Variant> {
    let v = |name, yaml: &str, distro, version| Variant {
        name,
        site: site(yaml),
        distro,
        version,
    };
    let sub = subdomain_yaml();
    vec![
        v("subdomain", &sub, debian(), Some("2.6.12-1+deb12u4")),
        v(
            "path routing",
            &format!("{sub}routing: \"path:/owui/\"\n"),
            debian(),
            Some("2.6.12-1+deb12u4"),
        ),
        v(
            "path routing, dot in the prefix",
            &format!("{sub}routing: \"path:/chat.v1/\"\n"),
            debian(),
            Some("2.6.12"),
        ),
        v(
            "three backends incl. IPv6",
            &format!(
                "domain: {DOMAIN}\nemail: admin@example.test\n{PRIVATE_CA}backends: [\"127.0.0.1:3000\", \"127.0.0.1:3001\", \"[::1]:3000\"]\n"
            ),
            debian(),
            Some("2.6.12-1+deb12u4"),
        ),
        v("debian profile", &sub, debian(), Some("2.6.12-1+deb12u4")),
        v("rhel profile", &sub, rhel(), Some("2.4.22-3.el9")),
        v("haproxy not detected", &sub, debian(), None),
        v("haproxy 2.6", &sub, debian(), Some("2.6.12")),
        v("haproxy 3.0", &sub, debian(), Some("3.0.11-1")),
        v(
            "hsts on",
            &format!("{sub}hsts: true\n"),
            debian(),
            Some("2.6.12"),
        ),
        v(
            "hsts off",
            &format!("{sub}hsts: false\n"),
            debian(),
            Some("2.6.12"),
        ),
        v(
            "acme off (hsts defaults off)",
            &sub.replace(PRIVATE_CA, "acme:\n  directory: \"off\"\n"),
            debian(),
            Some("2.6.12"),
        ),
        v(
            "custom listen addresses",
            &format!(
                "{sub}listen:\n  http: [\"127.0.0.1:8080\", \"[::1]:8080\"]\n  \
                 https: [\"127.0.0.1:8443\", \"[::1]:8443\"]\n  acme_responder: \"[::1]:9999\"\n"
            ),
            debian(),
            Some("2.6.12"),
        ),
        v(
            "custom listen, path routing, undetected",
            &format!(
                "{sub}routing: \"path:/owui/\"\nlisten:\n  http: [\":8080\"]\n  https: [\"[::]:8443\"]\n"
            ),
            rhel(),
            None,
        ),
    ]
}

fn render_variant(v: &Variant, distro: &Distro) -> String {
    render(&v.site, distro, facts(v.version))
}

// ====================================================================== haproxy -c

#[test]
fn every_variant_passes_haproxy_check() {
    haproxy(); // fails the test with a clear message when HAProxy is missing
    let dir = TestDir::new(DOMAIN);
    let mut failures = Vec::new();
    for (i, v) in variants().iter().enumerate() {
        let cfg = render_variant(v, &relocated(&v.distro, &dir));
        if let Err(e) = haproxy_check(&cfg, &dir.path().join(format!("variant-{i}.cfg"))) {
            failures.push(format!("== {}\n{e}\n{cfg}", v.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The profiles really shipped in distros/ (with only the certificate
/// directory, chroot and socket moved into a temporary directory).
#[test]
fn every_shipped_profile_passes_haproxy_check() {
    haproxy();
    let dir = TestDir::new(DOMAIN);
    let s = site(&subdomain_yaml());
    let mut failures = Vec::new();
    for profile in shipped_profiles() {
        for version in [None, Some("2.6.12")] {
            let cfg = render(&s, &relocated(&profile, &dir), facts(version));
            let path = dir.path().join(format!("{}.cfg", profile.name));
            if let Err(e) = haproxy_check(&cfg, &path) {
                failures.push(format!(
                    "== profile {} ({version:?})\n{e}\n{cfg}",
                    profile.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The profile paths themselves reach the config unchanged.
#[test]
fn profile_paths_are_rendered() {
    let s = site(&subdomain_yaml());
    let deb = render(&s, &debian(), facts(Some("2.6.12")));
    assert!(deb.contains("\n    chroot /var/lib/haproxy\n"), "{deb}");
    assert!(
        deb.contains("\n    user haproxy\n    group haproxy\n"),
        "{deb}"
    );
    assert!(
        deb.contains(
            "\n    stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners\n"
        ),
        "{deb}"
    );
    assert!(
        deb.contains(
            " ssl crt /etc/haproxy/certs/chat.example.test.pem crt /etc/haproxy/certs/ alpn "
        ),
        "{deb}"
    );
    let el = render(&s, &rhel(), facts(None));
    assert!(
        el.contains(
            "\n    stats socket /var/lib/haproxy/stats mode 660 level admin expose-fd listeners\n"
        ),
        "{el}"
    );
}

// ====================================================================== rendered text

fn lines_of(cfg: &str) -> Vec<&str> {
    cfg.lines().map(str::trim).collect()
}

/// The lines of one section (`frontend https`, `global`, ...), trimmed.
fn section<'a>(cfg: &'a str, header: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in cfg.lines() {
        if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
            inside = line == header;
            continue;
        }
        if inside && !line.trim().is_empty() && !line.trim().starts_with('#') {
            out.push(line.trim());
        }
    }
    assert!(!out.is_empty(), "no section `{header}` in:\n{cfg}");
    out
}

#[test]
fn rendered_configs_are_tidy_and_avoid_the_tutorial_defects() {
    for v in variants() {
        let cfg = render_variant(&v, &v.distro);
        let name = v.name;
        assert!(
            cfg.starts_with("# Managed by edgeup"),
            "{name}: header\n{cfg}"
        );
        assert!(!cfg.contains("\n\n\n"), "{name}: blank-line run\n{cfg}");
        assert!(
            cfg.ends_with('\n') && !cfg.ends_with("\n\n"),
            "{name}: file end"
        );
        for line in cfg.lines() {
            assert!(
                line == line.trim_end(),
                "{name}: trailing space in {line:?}"
            );
            assert!(!line.contains('\t'), "{name}: tab in {line:?}");
        }
        let all = lines_of(&cfg);
        for forbidden in [
            "option forwardfor",
            "option http-server-close",
            "option h2-workaround-bogus-websocket-clients",
            "http-request add-header",
            "timeout http-request 300s",
            "log 127.0.0.1",
        ] {
            assert!(
                !all.iter().any(|l| l.starts_with(forbidden)),
                "{name}: `{forbidden}` is rendered\n{cfg}"
            );
        }
        let global = section(&cfg, "global");
        for expected in [
            "log stdout format short daemon",
            "ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
             ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
             ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
            "ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\
             TLS_CHACHA20_POLY1305_SHA256",
            "ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.2 no-tls-tickets",
        ] {
            assert!(
                global.contains(&expected),
                "{name}: global lacks `{expected}`\n{cfg}"
            );
        }
        let defaults = section(&cfg, "defaults");
        for expected in [
            "mode http",
            "option httplog",
            "option dontlognull",
            "timeout connect 5s",
            "timeout client 300s",
            "timeout server 1800s",
            "timeout tunnel 86400s",
            "timeout http-request 10s",
            "timeout http-keep-alive 10s",
            "timeout client-fin 30s",
        ] {
            assert!(
                defaults.contains(&expected),
                "{name}: defaults lack `{expected}`\n{cfg}"
            );
        }

        // Plain HTTP: redirect (except ACME) before use_backend.
        let http = section(&cfg, "frontend http");
        let redirect = http
            .iter()
            .position(|l| l.starts_with("http-request redirect"));
        let acme = http
            .iter()
            .position(|l| *l == "use_backend acme if acme_challenge");
        assert!(
            matches!((redirect, acme), (Some(r), Some(a)) if r < a),
            "{name}: redirect must come before use_backend\n{cfg}"
        );
        assert!(http[redirect.unwrap_or(0)].ends_with(" code 308 if known_host !acme_challenge"));
        for bind in &v.site.listen.http {
            assert!(
                http.contains(&format!("bind {bind}").as_str()),
                "{name}: bind {bind}"
            );
        }

        // TLS frontend: one bind per address, forwarded headers set.
        let https = section(&cfg, "frontend https");
        let alpn = if v
            .version
            .and_then(major_minor)
            .is_some_and(|mm| mm >= (2, 6))
        {
            "h2,http/1.1"
        } else {
            "http/1.1"
        };
        for bind in &v.site.listen.https {
            let expected = format!(
                "bind {bind} ssl crt {certs}/{DOMAIN}.pem crt {certs}/ alpn {alpn} curves X25519:prime256v1:secp384r1",
                certs = v.distro.paths.certs_dir
            );
            assert!(
                https.contains(&expected.as_str()),
                "{name}: no `{expected}`\n{cfg}"
            );
        }
        let workaround = global.contains(&"h2-workaround-bogus-websocket-clients");
        assert_eq!(
            workaround,
            alpn.contains("h2"),
            "{name}: h2 workaround\n{cfg}"
        );
        for expected in [
            "http-request del-header Forwarded",
            "http-request set-header X-Forwarded-For %[src]",
            "http-request set-header X-Real-IP %[src]",
            "http-request set-header X-Client-IP %[src]",
            "http-request set-header X-Forwarded-Proto https",
            "http-request set-header X-Forwarded-Host %[req.hdr(host)]",
            "http-request set-header X-Forwarded-Port %[dst_port]",
            "use_backend %[var(txn.site)]",
        ] {
            assert!(
                https.contains(&expected),
                "{name}: https lacks `{expected}`\n{cfg}"
            );
        }
        let app = section(&cfg, &format!("backend site_{DOMAIN}"));
        let hsts = "http-after-response set-header Strict-Transport-Security \"max-age=63072000\"";
        assert!(
            !https.contains(&hsts),
            "{name}: HSTS is the site's, not the frontend's"
        );
        assert_eq!(
            app.contains(&hsts),
            v.site.hsts_enabled(),
            "{name}: HSTS\n{cfg}"
        );

        // Routing: one map lookup, then the site's own backend.
        let map = edgeup::render::sites_map_path(&v.distro);
        let lookup =
            format!("http-request set-var(txn.site) req.hdr(host),field(1,:),lower,map_str({map})");
        assert!(https.contains(&lookup.as_str()), "{name}: host map\n{cfg}");
        assert!(https.contains(
            &"http-request return status 404 content-type text/plain string \
              \"404 Not Found: no site is configured for this host name.\" unless { var(txn.site) -m found }"
        ));
        match v.site.path_prefix() {
            None => {
                assert!(!cfg.contains("replace-path"), "{name}\n{cfg}");
            }
            Some(_) => {
                assert!(
                    cfg.contains("no sub-path support"),
                    "{name}: Open WebUI warning"
                );
                assert!(
                    https
                        .iter()
                        .any(|l| l.starts_with("http-request replace-path ^/")),
                    "{name}: prefix stripping\n{cfg}"
                );
                assert!(
                    https
                        .iter()
                        .any(|l| l.ends_with(&format!("if site_{DOMAIN} !site_{DOMAIN}_path")))
                );
            }
        }

        // Backends.
        let servers: Vec<&&str> = app.iter().filter(|l| l.starts_with("server ")).collect();
        assert_eq!(servers.len(), v.site.backends.len(), "{name}\n{cfg}");
        let many = v.site.backends.len() > 1;
        assert_eq!(app.contains(&"balance leastconn"), many, "{name}\n{cfg}");
        assert_eq!(
            app.iter().any(|l| l.starts_with("cookie ")),
            many,
            "{name}\n{cfg}"
        );
        for (i, (line, addr)) in servers.iter().zip(&v.site.backends).enumerate() {
            let plain = format!("server app{} {addr}", i + 1);
            let expected = if many {
                format!("{plain} cookie app{} check", i + 1)
            } else {
                plain
            };
            assert_eq!(**line, expected, "{name}\n{cfg}");
        }
        let acme_backend = section(&cfg, "backend acme");
        assert_eq!(
            acme_backend,
            [format!("server responder {}", v.site.listen.acme_responder).as_str()],
            "{name}"
        );
    }
}

#[test]
fn path_prefix_is_escaped() {
    let s = site(&format!(
        "{}routing: \"path:/chat.v1/\"\n",
        subdomain_yaml()
    ));
    let cfg = render(&s, &debian(), facts(Some("2.6.12")));
    let https = section(&cfg, "frontend https");
    for expected in [
        "acl site_chat.example.test_path path_beg /chat.v1/",
        "http-request redirect location /chat.v1/ code 308 if site_chat.example.test { path /chat.v1 }",
        "http-request set-header X-Forwarded-Prefix /chat.v1 if site_chat.example.test",
        "http-request replace-path ^/chat[.]v1/(.*) /\\1 if site_chat.example.test",
    ] {
        assert!(https.contains(&expected), "no `{expected}` in\n{cfg}");
    }
}

// ====================================================================== golden files

fn golden_variants() -> Vec<(&'static str, String)> {
    let sub = subdomain_yaml();
    vec![
        (
            "subdomain-debian-2.6",
            render(&site(&sub), &debian(), facts(Some("2.6.12-1+deb12u4"))),
        ),
        (
            "path-rhel-undetected",
            render(
                &site(&format!("{sub}routing: \"path:/owui/\"\nhsts: false\n")),
                &rhel(),
                facts(None),
            ),
        ),
        (
            "three-backends-3.0",
            render(
                &site(&format!(
                    "domain: {DOMAIN}\nemail: admin@example.test\n{PRIVATE_CA}backends: [\"127.0.0.1:3000\", \"127.0.0.1:3001\", \"[::1]:3000\"]\n\
                     listen:\n  http: [\":80\", \"[::]:80\"]\n  https: [\":443\", \"[::]:443\"]\n"
                )),
                &debian(),
                facts(Some("3.0.11-1")),
            ),
        ),
    ]
}

#[test]
fn golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, cfg) in golden_variants() {
        let path = dir.join(format!("{name}.cfg"));
        if update {
            std::fs::create_dir_all(&dir).expect("creating tests/golden");
            std::fs::write(&path, &cfg).expect("writing a golden file");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == cfg => {}
            Ok(expected) => failures.push(format!(
                "{} differs from the rendered config (- golden, + rendered):\n{}",
                path.display(),
                similar::TextDiff::from_lines(&expected, &cfg)
                    .unified_diff()
                    .context_radius(2)
            )),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended, run: UPDATE_GOLDEN=1 cargo test --test haproxy_config golden",
        failures.join("\n")
    );
}

// ====================================================================== live HAProxy

#[test]
fn websocket_accept_matches_rfc6455_example() {
    assert_eq!(
        websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}

/// A running HAProxy with its test backends, on 127.0.0.1.
struct Live {
    dir: TestDir,
    http: u16,
    https: u16,
    haproxy: ProcessGuard,
    version: String,
}

impl Live {
    /// Renders `extra_yaml` (routing, hsts...) for the installed HAProxy and
    /// starts it in the foreground (`-db`), with `backends` app backends.
    fn start(extra_yaml: &str, backends: &[&'static str]) -> Live {
        assert!(
            common::is_root(),
            "the live HAProxy tests must run as root: HAProxy chroots and switches to the \
             haproxy user as configured"
        );
        let version = common::haproxy_version();
        let dir = TestDir::new(DOMAIN);
        let app_ports: Vec<String> = backends
            .iter()
            .map(|id| format!("\"127.0.0.1:{}\"", start_backend(Role::App(id))))
            .collect();
        let acme_port = start_backend(Role::Acme);
        let (http, https) = (free_port(), free_port());
        let yaml = format!(
            "domain: {DOMAIN}\nemail: admin@example.test\n{PRIVATE_CA}backends: [{}]\n{extra_yaml}listen:\n  http: [\"127.0.0.1:{http}\"]\n  \
             https: [\"127.0.0.1:{https}\"]\n  acme_responder: \"127.0.0.1:{acme_port}\"\n",
            app_ports.join(", ")
        );
        let cfg = render(
            &site(&yaml),
            &relocated(&debian(), &dir),
            facts(Some(&version)),
        );
        let guard = start_checked_haproxy(&cfg, &dir, &[http, https]);
        Live {
            dir,
            http,
            https,
            haproxy: guard,
            version,
        }
    }

    /// curl against the site's name resolved to 127.0.0.1, trusting only the
    /// test certificate. `-i` puts the response head before the body.
    fn curl(&self, args: &[&str]) -> Response {
        let out = self.curl_raw(args);
        assert!(
            out.status.success(),
            "curl {args:?} failed ({}): {}\nHAProxy log:\n{}",
            out.status,
            out.stderr_text(),
            self.haproxy.log_text()
        );
        Response::parse(&out.stdout)
    }

    fn curl_raw(&self, args: &[&str]) -> Ran {
        let resolve = |port: u16| format!("{DOMAIN}:{port}:127.0.0.1");
        run(
            Command::new("curl")
                .args(["-sS", "-i", "--noproxy", "*", "--max-time", "10"])
                .args([
                    "--resolve",
                    &resolve(self.http),
                    "--resolve",
                    &resolve(self.https),
                ])
                .arg("--cacert")
                .arg(self.dir.ca())
                .args(args),
            30,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("https://{DOMAIN}:{}{path}", self.https)
    }

    /// `openssl s_client` handshake: (established, full output).
    fn handshake(&self, args: &[&str]) -> (bool, String) {
        let out = run(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{}", self.https)])
                .args(["-servername", DOMAIN])
                .args(args),
            30,
        );
        let text = format!("{}{}", out.stdout_text(), out.stderr_text());
        let established = text.contains(", Cipher is ") && !text.contains("Cipher is (NONE)");
        (established, text)
    }
}

/// A response as `curl -i` prints it (the last head when there are several).
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in curl output:\n{text}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request headers the echo backend received: every value of `name`.
    fn echoed(&self, name: &str) -> Vec<String> {
        self.body
            .lines()
            .skip(2) // "backend: ID" and the request line
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    fn backend(&self) -> &str {
        self.body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("backend: "))
            .unwrap_or("")
    }

    fn request_line(&self) -> &str {
        self.body.lines().nth(1).unwrap_or("")
    }
}

#[test]
fn live_subdomain_routing_headers_tls_and_websockets() {
    let live = Live::start("hsts: true\n", &["one", "two"]);

    // HTTPS with SNI: curl verifies the test certificate (trusted as the only CA).
    let spoofed = live.curl(&[
        "-H",
        "X-Client-IP: 6.6.6.6",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "X-Real-IP: 6.6.6.6",
        "-H",
        "X-Forwarded-Proto: http",
        "-H",
        "Forwarded: for=6.6.6.6;proto=http",
        &live.url("/api/chat?stream=1"),
    ]);
    assert_eq!(spoofed.status, 200, "{}", spoofed.body);
    for name in ["x-forwarded-for", "x-client-ip", "x-real-ip"] {
        assert_eq!(
            spoofed.echoed(name),
            ["127.0.0.1"],
            "{name}: {}",
            spoofed.body
        );
    }
    assert_eq!(
        spoofed.echoed("x-forwarded-proto"),
        ["https"],
        "{}",
        spoofed.body
    );
    assert_eq!(
        spoofed.echoed("x-forwarded-host"),
        [format!("{DOMAIN}:{}", live.https)],
        "{}",
        spoofed.body
    );
    assert_eq!(spoofed.echoed("x-forwarded-port"), [live.https.to_string()]);
    assert!(spoofed.echoed("forwarded").is_empty(), "{}", spoofed.body);
    assert!(
        spoofed.echoed("x-forwarded-prefix").is_empty(),
        "{}",
        spoofed.body
    );
    assert!(
        spoofed
            .request_line()
            .starts_with("GET /api/chat?stream=1 HTTP/1.1"),
        "{}",
        spoofed.body
    );
    assert_eq!(
        spoofed.header("strict-transport-security"),
        Some("max-age=63072000")
    );

    // The certificate really is verified: without the test CA curl refuses it.
    let untrusted = run(
        Command::new("curl")
            .args(["-sS", "--noproxy", "*", "--max-time", "10", "--resolve"])
            .arg(format!("{DOMAIN}:{}:127.0.0.1", live.https))
            .arg(live.url("/")),
        30,
    );
    assert_eq!(
        untrusted.status.code(),
        Some(60),
        "{}",
        untrusted.stderr_text()
    );

    // Host matching ignores the port and letter case; other hosts get a 404.
    let upper = live.curl(&[
        "-H",
        &format!("Host: CHAT.EXAMPLE.TEST:{}", live.https),
        &live.url("/"),
    ]);
    assert_eq!(upper.status, 200);
    let other = live.curl(&["-H", "Host: other.example.test", &live.url("/")]);
    assert_eq!(other.status, 404, "{}", other.body);
    assert!(
        other.body.contains("no site is configured"),
        "{}",
        other.body
    );
    assert!(other.body.contains("404 Not Found"));
    // HSTS is each site's own: a name this proxy does not serve gets none.
    assert!(other.header("strict-transport-security").is_none());

    // Plain HTTP: 308 to HTTPS (port of the TLS bind), path and query kept.
    let http_url = format!("http://{DOMAIN}:{}/c/123?x=1", live.http);
    let redirect = live.curl(&[&http_url]);
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{DOMAIN}:{}/c/123?x=1", live.https).as_str())
    );
    assert!(redirect.header("strict-transport-security").is_none());

    // ACME challenges are not redirected: they reach the responder.
    let acme_url = format!(
        "http://{DOMAIN}:{}/.well-known/acme-challenge/tok",
        live.http
    );
    let acme = live.curl(&[&acme_url]);
    assert_eq!((acme.status, acme.body.as_str()), (200, ACME_TOKEN_BODY));

    // ALPN: h2 from HAProxy 2.6 on.
    let h2_expected = major_minor(&live.version).is_some_and(|v| v >= (2, 6));
    let h2 = live.curl_raw(&[
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &live.url("/"),
    ]);
    assert!(h2.status.success(), "{}", h2.stderr_text());
    // `-i` output goes to /dev/null with the body; stdout holds only -w.
    assert_eq!(h2.stdout_text(), if h2_expected { "2" } else { "1.1" });
    let h2_echo = live.curl(&[
        "--http2",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        &live.url("/h2"),
    ]);
    assert_eq!(
        h2_echo.echoed("x-forwarded-for"),
        ["127.0.0.1"],
        "{}",
        h2_echo.body
    );

    // Replicas: a cookie pins the client to one backend.
    let first = live.curl(&[&live.url("/")]);
    let cookie = first
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no stickiness cookie: {:?}", first.headers));
    assert!(cookie.starts_with("edgeup_server=app"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap_or_default();
    for _ in 0..4 {
        let again = live.curl(&["-H", &format!("Cookie: {pair}"), &live.url("/")]);
        assert_eq!(again.backend(), first.backend(), "sticky session lost");
    }

    // WebSocket upgrade over TLS: 101 with the backend's accept key, then tunnel data.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let ws = live.curl_raw(&[
        "--http1.1",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        &format!("Sec-WebSocket-Key: {key}"),
        "-H",
        "Sec-WebSocket-Version: 13",
        "--max-time",
        "5",
        &live.url("/ws/socket.io/?EIO=4&transport=websocket"),
    ]);
    let ws_text = ws.stdout_text();
    let ws_response = Response::parse(&ws.stdout);
    assert_eq!(ws_response.status, 101, "{ws_text}\n{}", ws.stderr_text());
    assert_eq!(
        ws_response.header("sec-websocket-accept"),
        Some(websocket_accept(key).as_str())
    );
    assert!(ws_text.contains("hello over the tunnel"), "{ws_text}");

    // TLS: 1.2 and 1.3 only, AEAD ciphers only, the three curves only. Each
    // refusal has a positive control and must be the server's alert.
    let (ok12, text) = live.handshake(&["-tls1_2"]);
    assert!(ok12, "TLS 1.2 must work:\n{text}");
    let (ok13, text) = live.handshake(&["-tls1_3"]);
    assert!(ok13, "TLS 1.3 must work:\n{text}");
    let (ok11, text) = live.handshake(&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(
        !ok11 && text.contains("alert protocol version"),
        "TLS 1.1 must be refused:\n{text}"
    );
    let (gcm, text) = live.handshake(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(gcm, "ECDHE-ECDSA-AES128-GCM-SHA256 must work:\n{text}");
    let (cbc, text) = live.handshake(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA@SECLEVEL=0"]);
    assert!(
        !cbc && text.contains("alert handshake failure"),
        "CBC suite ECDHE-ECDSA-AES128-SHA must be refused:\n{text}"
    );
    for group in ["X25519", "prime256v1", "secp384r1"] {
        let (ok, text) = live.handshake(&["-tls1_3", "-groups", group]);
        assert!(ok, "curve {group} must work:\n{text}");
    }
    for group in ["X448", "secp521r1"] {
        let (ok, text) = live.handshake(&["-tls1_3", "-groups", group]);
        assert!(
            !ok && text.contains("alert handshake failure"),
            "curve {group} must be refused:\n{text}"
        );
    }
    let (_, text) = live.handshake(&["-tls1_2"]);
    assert!(
        !text.contains("TLS session ticket:"),
        "no session tickets expected:\n{text}"
    );
}

#[test]
fn live_path_routing_strips_the_prefix() {
    let live = Live::start("routing: \"path:/owui/\"\nhsts: false\n", &["solo"]);

    let app = live.curl(&[
        "-H",
        "X-Forwarded-Prefix: /evil",
        &live.url("/owui/api/v1/chats?page=2"),
    ]);
    assert_eq!(app.status, 200, "{}", app.body);
    assert!(
        app.request_line()
            .starts_with("GET /api/v1/chats?page=2 HTTP/1.1"),
        "{}",
        app.body
    );
    assert_eq!(app.echoed("x-forwarded-prefix"), ["/owui"], "{}", app.body);
    assert_eq!(app.echoed("x-forwarded-for"), ["127.0.0.1"]);
    assert!(app.header("strict-transport-security").is_none());
    assert!(
        app.header("set-cookie").is_none(),
        "one backend: no stickiness cookie"
    );

    let root = live.curl(&[&live.url("/owui/")]);
    assert!(
        root.request_line().starts_with("GET / HTTP/1.1"),
        "{}",
        root.body
    );

    let bare = live.curl(&[&live.url("/owui")]);
    assert_eq!(
        (bare.status, bare.header("location")),
        (308, Some("/owui/"))
    );

    for outside in ["/", "/api/v1/chats", "/owuix/"] {
        let r = live.curl(&[&live.url(outside)]);
        assert_eq!(r.status, 404, "{outside}: {}", r.body);
        assert!(r.body.contains("no site is configured"));
    }
    let other = live.curl(&["-H", "Host: other.example.test", &live.url("/owui/")]);
    assert_eq!(other.status, 404);

    let acme_url = format!(
        "http://{DOMAIN}:{}/.well-known/acme-challenge/tok",
        live.http
    );
    assert_eq!(live.curl(&[&acme_url]).body, ACME_TOKEN_BODY);
}
