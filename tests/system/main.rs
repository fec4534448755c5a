//! System tests: the real edgeup binary converges a freshly debootstrap'd
//! Debian booted with systemd (systemd-nspawn). Scenarios share the host's
//! network (ports 80/443 on loopback), so they run one at a time.

#[path = "../common/mod.rs"]
mod common;
mod container;
mod dns01;
mod hardening;
mod package;
mod robustness;
mod sites;
mod uninstall;

use common::backend::{Role, start_backend};
use container::{Container, require_tools, stdout};
use serde_json::Value;
use std::process::Command;
use std::time::Instant;

const DOMAIN: &str = "chat.example.test";

fn edgeup_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_edgeup"))
}

/// What every scenario starts with: the cross-process lock (scenarios share
/// the host's ports 80/443), its clock, and a test app on loopback.
struct Scenario {
    _serial: std::fs::File,
    started: Instant,
    backend: u16,
}

fn scenario(app: &'static str) -> Scenario {
    let _serial = container::exclusive();
    require_tools();
    Scenario {
        _serial,
        started: Instant::now(),
        backend: start_backend(Role::App(app)),
    }
}

/// The JSON lines of one `edgeup --json` run; the last one is the recap.
struct Run {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn recap(&self) -> &Value {
        let last = self
            .events
            .last()
            .unwrap_or_else(|| panic!("no output; stderr:\n{}", self.stderr));
        assert_eq!(
            last["event"], "recap",
            "last line must be the recap: {last}"
        );
        last
    }

    fn count(&self, key: &str) -> u64 {
        self.recap()[key].as_u64().unwrap_or(u64::MAX)
    }

    fn changed_steps(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "step" && e["status"] == "changed")
            .map(|e| e["name"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn edgeup(c: &Container, args: &str) -> Run {
    let out = c.sh(&format!("edgeup --json {args}"));
    let events = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn site_flags(backend_port: u16) -> String {
    format!(
        "--domain {DOMAIN} --email ops@example.org --backend 127.0.0.1:{backend_port} --acme-directory off"
    )
}

/// curl on the host against HAProxy in the container (shared loopback).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(["--resolve", &format!("{DOMAIN}:443:127.0.0.1")])
        .args(["--resolve", &format!("{DOMAIN}:80:127.0.0.1")])
        .args(args)
        .output()
        .expect("run curl (apt-get install curl)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The certificate half of the served PEM, for curl's --cacert (the key stays put).
fn served_cert(c: &Container, dir: &std::path::Path) -> std::path::PathBuf {
    let pem = std::fs::read_to_string(c.path(&format!("/etc/haproxy/certs/{DOMAIN}.pem")))
        .expect("read the served PEM");
    let end = "-----END CERTIFICATE-----";
    let cert_end = pem.find(end).expect("a certificate in the PEM") + end.len();
    let path = dir.join("ca.pem");
    std::fs::write(&path, format!("{}\n", &pem[..cert_end])).expect("write ca.pem");
    path
}

/// The level (`ok`/`warn`/`fail`) of the named check in `edgeup status --json`.
fn check_level(status: &Value, name: &str) -> Option<String> {
    status["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|c| c["name"] == name)
        .and_then(|c| c["level"].as_str().map(str::to_string))
}

/// `edgeup status --json` after issuance: healthy, CA-issued, timer scheduled.
fn assert_status_issued(c: &Container, timer: &str) {
    let out = c.sh("edgeup status --json");
    assert_eq!(out.status.code(), Some(0), "status: {}", stdout(&out));
    let s: Value = serde_json::from_str(stdout(&out).trim()).expect("status JSON");
    assert_eq!(s["certificate"]["placeholder"], false, "{s:#}");
    assert!(
        s["certificate"]["issuer"]
            .as_str()
            .is_some_and(|i| i.contains("Pebble")),
        "{s:#}"
    );
    assert_eq!(s["renewal"]["timer"]["unit"], timer, "{s:#}");
    assert_eq!(s["renewal"]["timer"]["active"], "active", "{s:#}");
    assert!(
        s["renewal"]["timer"]["next_run"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{s:#}"
    );
}

fn haproxy_workers(c: &Container) -> String {
    let main = c.ok("systemctl show -p MainPID --value haproxy.service");
    c.ok(&format!("pgrep -P {} | sort | tr '\\n' ' '", main.trim()))
}

/// The first apply on a fresh host: exit 0, nothing failed, real work done.
fn assert_fresh_apply(first: &Run) {
    assert_eq!(
        first.code, 0,
        "first apply failed: {:?}\n{}",
        first.events, first.stderr
    );
    assert_eq!(first.count("failed"), 0);
    assert!(
        first.count("changed") >= 4,
        "fresh host must change: {:?}",
        first.changed_steps()
    );
}

/// What a converged host with ACME off serves, checked from outside and by
/// `edgeup status`: HTTPS with SNI verified against the placeholder (`ca`)
/// reaching `app` with forwarded headers replaced, not appended; the HTTP
/// redirect; the ACME path routed to the responder; a websocket upgrade;
/// status healthy on HAProxy `haproxy` (a version prefix).
fn assert_serves_the_site(c: &Container, ca: &str, app: &str, haproxy: &str) {
    // HTTPS with SNI, verified against the placeholder; forwarded headers set, not appended.
    let (body, err) = curl(&[
        "--cacert",
        ca,
        "-H",
        "X-Client-IP: 6.6.6.6",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        &format!("https://{DOMAIN}/hello"),
    ]);
    assert!(
        body.starts_with(&format!("backend: {app}")),
        "HTTPS did not reach the app: {body} {err}"
    );
    let lower = body.to_lowercase();
    assert!(lower.contains("x-forwarded-for: 127.0.0.1\r\n"), "{body}");
    assert!(lower.contains("x-client-ip: 127.0.0.1\r\n"), "{body}");
    assert!(lower.contains("x-forwarded-proto: https\r\n"), "{body}");
    assert!(
        !lower.contains("6.6.6.6"),
        "spoofed header passed through: {body}"
    );
    // HTTP is redirected, except the ACME path (routed to the responder: 503 while none runs).
    let (status, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{DOMAIN}/a?b=1"),
    ]);
    assert_eq!(status, format!("308 https://{DOMAIN}/a?b=1"));
    let (status, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{DOMAIN}/.well-known/acme-challenge/x"),
    ]);
    assert_eq!(
        status, "503",
        "ACME path must go to the responder, not redirect"
    );
    // Websocket upgrade through TLS.
    let (head, err) = curl(&[
        "--cacert",
        ca,
        "--http1.1",
        "-i",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        &format!("https://{DOMAIN}/ws/socket.io/"),
    ]);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "no websocket upgrade: {head} {err}"
    );

    // `edgeup status` (no flags: the applied site was recorded) says healthy.
    let out = c.sh("edgeup status --json");
    assert_eq!(out.status.code(), Some(0), "status: {}", stdout(&out));
    let s: Value = serde_json::from_str(stdout(&out).trim()).expect("status JSON");
    assert_eq!(s["healthy"], true, "{s:#}");
    assert_eq!(s["systemd"]["running"], true);
    assert_eq!(s["haproxy"]["unit"]["active"], "active");
    assert_eq!(s["haproxy"]["unit"]["enabled"], "enabled");
    assert!(
        s["haproxy"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(haproxy)),
        "{s:#}"
    );
    assert_eq!(s["certificate"]["source"], "file");
    assert_eq!(s["certificate"]["placeholder"], true);
    assert_eq!(s["certificate"]["expired"], false);
    assert!(
        s["certificate"]["days_left"]
            .as_i64()
            .is_some_and(|d| d >= 360)
    );
    assert_eq!(s["https"]["status"], 200, "{s:#}");
    assert_eq!(s["websocket"]["status"], 101, "{s:#}");
    assert_eq!(
        check_level(&s, "certificate"),
        Some("warn".into()),
        "placeholder with ACME off warns"
    );
}

#[test]
fn fresh_debian_converges_serves_https_and_second_run_changes_nothing() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("system");
    let c = Container::boot("bookworm", "fresh", &edgeup_binary());

    let first = edgeup(&c, &format!("apply {}", site_flags(backend)));
    assert_fresh_apply(&first);

    assert_eq!(
        c.ok("systemctl is-enabled haproxy.service").trim(),
        "enabled"
    );
    assert_eq!(c.ok("systemctl is-active haproxy.service").trim(), "active");
    assert_eq!(
        c.ok(&format!(
            "stat -c '%a %U %G' /etc/haproxy/certs/{DOMAIN}.pem"
        ))
        .trim(),
        "600 root root"
    );
    assert_eq!(
        c.ok("stat -c '%a %U' /etc/haproxy/certs").trim(),
        "700 root"
    );
    c.ok("haproxy -c -q -f /etc/haproxy/haproxy.cfg");

    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = served_cert(&c, tmp.path());
    let ca = ca.to_string_lossy();
    assert_serves_the_site(&c, &ca, "system", "2.6");

    // Without root the 0600 PEM is unreadable: the served certificate is judged.
    let out = c.sh(&format!(
        "runuser -u nobody -- edgeup status --json {}",
        site_flags(backend)
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let s: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(s["certificate"]["source"], "served");

    // Second run: nothing changes, HAProxy is neither restarted nor reloaded.
    let workers = haproxy_workers(&c);
    let main_pid = c.ok("systemctl show -p MainPID --value haproxy.service");
    let second = edgeup(&c, &format!("apply {}", site_flags(backend)));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.count("changed"),
        0,
        "second run changed: {:?}",
        second.changed_steps()
    );
    assert_eq!(second.count("failed"), 0);
    assert_eq!(
        c.ok("systemctl show -p MainPID --value haproxy.service"),
        main_pid
    );
    assert_eq!(
        haproxy_workers(&c),
        workers,
        "HAProxy was reloaded on a no-op run"
    );
    // plan agrees: nothing to do, exit 0.
    let plan = edgeup(&c, &format!("plan {}", site_flags(backend)));
    assert_eq!((plan.code, plan.count("changed")), (0, 0));

    // The human summary after apply names the URL and Open WebUI's settings.
    let human = stdout(&c.sh(&format!("edgeup apply {}", site_flags(backend))));
    assert!(human.contains(&format!("https://{DOMAIN}/")), "{human}");
    assert!(
        human.contains(&format!("WEBUI_URL=https://{DOMAIN}\n")),
        "{human}"
    );
    assert!(human.contains("FORWARDED_ALLOW_IPS=127.0.0.1"), "{human}");
    // A stopped HAProxy is unhealthy (exit 6), and status says why.
    c.ok("systemctl stop haproxy.service");
    let out = c.sh("edgeup status --json");
    assert_eq!(out.status.code(), Some(6), "{}", stdout(&out));
    let s: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(s["healthy"], false);
    assert_eq!(check_level(&s, "haproxy"), Some("fail".into()));
    assert!(
        s["https"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing listens")),
        "{s:#}"
    );
    eprintln!("scenario fresh+second run: {:.1?}", started.elapsed());
}

// ============================================================== ACME (Pebble)

use common::pebble::{Options, Pebble};

/// Pebble on the host's loopback; its HTTP-01 validations go to port 80,
/// where the container's HAProxy listens (shared network).
fn pebble() -> Pebble {
    Pebble::start_with(Options::every_order_validated(80))
}

/// Copies Pebble's HTTPS CA into the container and makes DOMAIN resolve to
/// loopback there (the preflight resolves it like the CA would).
fn trust_pebble(c: &Container, pebble: &Pebble) {
    std::fs::copy(&pebble.ca_bundle, c.path("/root/pebble-ca.pem")).expect("copy CA bundle");
    c.ok(&format!("echo '127.0.0.1 {DOMAIN}' >> /etc/hosts"));
}

fn acme_flags(backend_port: u16, pebble: &Pebble, client: &str) -> String {
    format!(
        "--domain {DOMAIN} --email ops@example.org --backend 127.0.0.1:{backend_port} \
         --acme-directory {} --acme-ca-bundle /root/pebble-ca.pem --acme-client {client}",
        pebble.directory
    )
}

fn served_pem(c: &Container) -> String {
    std::fs::read_to_string(c.path(&format!("/etc/haproxy/certs/{DOMAIN}.pem"))).expect("read PEM")
}

/// The serial of the certificate HAProxy actually serves on 443 (SNI DOMAIN).
fn served_serial() -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} </dev/null 2>/dev/null \
             | openssl x509 -noout -serial"
        ))
        .output()
        .expect("run openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file_serial(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    if let Some(stdin) = child.stdin.as_mut() {
        use std::io::Write;
        let cert_end = pem
            .find("-----END CERTIFICATE-----")
            .map_or(pem.len(), |i| i + 25);
        let _ = stdin.write_all(&pem.as_bytes()[..cert_end]);
    }
    let out = child.wait_with_output().expect("openssl output");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Established TCP connections to local port 443 (the container shares
/// this network namespace): /proc/net/tcp, state 01.
fn established_on_443() -> usize {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1).is_some_and(|local| local.ends_with(":01BB")) && f.get(3) == Some(&"01")
        })
        .count()
}

/// Waits until HAProxy holds an established client connection on :443 (the
/// background stream), so a test acts only once it is open.
fn wait_for_connection() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while established_on_443() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Streams /stream through HAProxy in the background: `ticks` lines 200 ms
/// apart, then "done".
fn long_lived_request(root_ca: &std::path::Path, ticks: u32) -> std::process::Child {
    Command::new("curl")
        .args(["-sS", "-N", "--max-time", "120", "--cacert"])
        .arg(root_ca)
        .args(["--resolve", &format!("{DOMAIN}:443:127.0.0.1")])
        .arg(format!("https://{DOMAIN}/stream?ticks={ticks}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start curl")
}

fn assert_pebble_issued(c: &Container, pebble: &Pebble) {
    let pem = served_pem(c);
    pebble
        .verify_issued(&pem)
        .unwrap_or_else(|e| panic!("the served PEM is not Pebble-issued: {e}"));
    assert_eq!(
        served_serial(),
        file_serial(&pem),
        "HAProxy serves another certificate"
    );
    assert_eq!(
        c.ok(&format!("stat -c '%a %U' /etc/haproxy/certs/{DOMAIN}.pem"))
            .trim(),
        "600 root"
    );
    let names = c.ok("ls -A /etc/haproxy/certs");
    assert_eq!(
        names.trim(),
        format!("{DOMAIN}.pem"),
        "only the PEM in the crt dir"
    );
}

#[test]
fn builtin_client_issues_renews_hitlessly_and_second_run_issues_nothing() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("system");
    let pebble = pebble();
    let c = Container::boot("bookworm", "builtin", &edgeup_binary());
    trust_pebble(&c, &pebble);
    let flags = acme_flags(backend, &pebble, "builtin");

    let first = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    assert_pebble_issued(&c, &pebble);
    // Pebble logs each new account and order (what the failure scenario's
    // "nothing reached the CA" check looks for).
    let log = pebble.ca_log();
    assert!(
        log.contains("There are now 1 accounts in memory") && log.contains("Added order"),
        "{log}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.issuer_root()).expect("write root");
    let (body, err) = curl(&[
        "--cacert",
        &root.to_string_lossy(),
        &format!("https://{DOMAIN}/"),
    ]);
    assert!(body.starts_with("backend: system"), "{body} {err}");
    assert_eq!(
        c.ok("systemctl is-enabled edgeup-renew.timer").trim(),
        "enabled"
    );
    assert_eq!(
        c.ok("systemctl is-active edgeup-renew.timer").trim(),
        "active"
    );
    let account = c.ok("stat -c '%a %U' /etc/edgeup/acme/*/account.json");
    assert_eq!(account.trim(), "600 root");
    assert_status_issued(&c, "edgeup-renew.timer");
    assert_eq!(c.ok("stat -c '%a' /etc/edgeup/site.yaml").trim(), "600");
    // Key material never reaches the output.
    let all_output = format!("{:?}{}", first.events, first.stderr);
    assert!(
        !all_output.contains("PRIVATE KEY"),
        "a key leaked into the output"
    );

    // Second run: nothing issued, nothing reloaded.
    let workers = haproxy_workers(&c);
    let second = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(second.count("changed"), 0, "{:?}", second.changed_steps());
    assert_eq!(haproxy_workers(&c), workers, "no-op run reloaded HAProxy");
    // The timer's command, with the recorded site: quiet no-op.
    let quiet = c.sh("edgeup renew --quiet");
    assert!(
        quiet.status.success(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert_eq!(
        stdout(&quiet),
        "",
        "renew -q with nothing due must print nothing"
    );

    // Forced renewal while a long response streams through HAProxy.
    // The stream (60 s of ticks) must be open before the renewal starts,
    // still open when it has reloaded HAProxy, and then end with every tick.
    let before = file_serial(&served_pem(&c));
    let workers = haproxy_workers(&c);
    let mut stream = long_lived_request(&root, 300);
    wait_for_connection();
    let renew = edgeup(&c, "renew --force");
    assert_eq!(renew.code, 0, "{:?}\n{}", renew.events, renew.stderr);
    assert_eq!(
        renew.changed_steps(),
        ["CA-issued certificate", "reload haproxy"]
    );
    assert_ne!(haproxy_workers(&c), workers, "renew did not reload HAProxy");
    assert!(
        matches!(stream.try_wait(), Ok(None)),
        "the stream ended before the renewal was done: the proof would show nothing"
    );
    let streamed = stream.wait_with_output().expect("curl finished");
    let text = String::from_utf8_lossy(&streamed.stdout);
    assert!(
        streamed.status.success() && text.ends_with("tick 299\ndone\n"),
        "the long-lived connection was cut by the renewal: {text:?} {}",
        String::from_utf8_lossy(&streamed.stderr)
    );
    assert_ne!(
        file_serial(&served_pem(&c)),
        before,
        "renewal did not replace the certificate"
    );
    assert_pebble_issued(&c, &pebble);
    eprintln!("scenario builtin ACME: {:.1?}", started.elapsed());
}

/// How many times systemd has reloaded HAProxy in this container.
fn haproxy_reloads(c: &Container) -> usize {
    c.ok("journalctl -u haproxy.service -o cat --no-pager")
        .lines()
        .filter(|l| l.starts_with("Reloaded "))
        .count()
}

/// What edgeup-renew.service's own processes wrote to the journal (systemd's
/// lines about the unit come from PID 1 and are not in it).
fn renew_unit_output(c: &Container) -> String {
    c.ok("journalctl _SYSTEMD_UNIT=edgeup-renew.service -o cat --no-pager")
}

/// What `edgeup-renew.timer` starts: with nothing due it changes nothing and
/// says nothing; once the certificate is due (Pebble issues 45-second
/// certificates here, due when less than a third remains) it renews it,
/// serves it, and reloads HAProxy exactly once.
#[test]
fn renewal_timer_renews_a_due_certificate_and_is_quiet_otherwise() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("system");
    let pebble = Pebble::start_with(Options {
        certificate_validity: Some(std::time::Duration::from_secs(45)),
        ..Options::every_order_validated(80)
    });
    let c = Container::boot("bookworm", "timer", &edgeup_binary());
    trust_pebble(&c, &pebble);
    let first = edgeup(
        &c,
        &format!("apply {}", acme_flags(backend, &pebble, "builtin")),
    );
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    assert_pebble_issued(&c, &pebble);
    let issued = file_serial(&served_pem(&c));
    let reloads = haproxy_reloads(&c);

    c.ok("systemctl start edgeup-renew.service");
    assert_eq!(
        file_serial(&served_pem(&c)),
        issued,
        "renewed while not due"
    );
    assert_eq!(
        haproxy_reloads(&c),
        reloads,
        "reloaded while nothing was due"
    );
    assert_eq!(
        renew_unit_output(&c).trim(),
        "",
        "a run with nothing due must log nothing"
    );

    // Wait until less than a third of the certificate's own lifetime (as
    // its notBefore/notAfter say: edgeup's rule) remains, plus a second.
    let leaf = edgeup::pki::parse_bundle(served_pem(&c).as_bytes())
        .ok()
        .and_then(|b| b.leaf().cloned())
        .expect("the served PEM has a certificate");
    let lifetime = leaf.not_after - leaf.not_before;
    let due_at = leaf.not_after - lifetime / 3 + 1;
    let wait = due_at - edgeup::pki::now();
    assert!(
        wait <= 60,
        "the certificate is due in {wait} s (notBefore {}, notAfter {})",
        leaf.not_before,
        leaf.not_after
    );
    std::thread::sleep(std::time::Duration::from_secs(wait.max(0) as u64));
    c.ok("systemctl start edgeup-renew.service");
    let renewed = file_serial(&served_pem(&c));
    assert_ne!(
        renewed,
        issued,
        "the timer's run did not renew the due certificate (notBefore {}, notAfter {}, now {}); \
         the unit said: {}",
        leaf.not_before,
        leaf.not_after,
        edgeup::pki::now(),
        renew_unit_output(&c)
    );
    assert_pebble_issued(&c, &pebble);
    assert_eq!(
        haproxy_reloads(&c),
        reloads + 1,
        "one reload for the renewal"
    );
    // -q: a run that changed something says so in one recap line.
    let logged = renew_unit_output(&c);
    assert!(
        logged.contains("recap: ok=") && logged.contains("changed=2 failed=0"),
        "{logged}"
    );
    eprintln!("scenario renewal timer: {:.1?}", started.elapsed());
}

#[test]
fn certbot_client_issues_and_its_deploy_hook_rebuilds_the_pem_on_renewal() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("system");
    let pebble = pebble();
    let c = Container::boot("bookworm", "certbot", &edgeup_binary());
    trust_pebble(&c, &pebble);
    let flags = acme_flags(backend, &pebble, "certbot");

    let first = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    assert_pebble_issued(&c, &pebble);
    assert_eq!(c.ok("systemctl is-enabled certbot.timer").trim(), "enabled");
    assert_status_issued(&c, "certbot.timer");
    let hook = format!("/etc/letsencrypt/renewal-hooks/deploy/edgeup-{DOMAIN}");
    assert_eq!(c.ok(&format!("stat -c '%a' {hook}")).trim(), "755");
    // certbot's own renewal settings: loopback standalone on the responder port.
    let renewal = c.ok(&format!("cat /etc/letsencrypt/renewal/{DOMAIN}.conf"));
    assert!(renewal.contains("http01_port = 888"), "{renewal}");
    assert!(renewal.contains("http01_address = 127.0.0.1"), "{renewal}");
    assert!(
        !c.path(&format!("/etc/letsencrypt/live/{DOMAIN}-0001"))
            .exists()
    );

    let second = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(second.count("changed"), 0, "{:?}", second.changed_steps());

    // What certbot's timer starts, with nothing due (Pebble's certificates
    // last 5 years): no new certificate, no reload.
    let before = file_serial(&served_pem(&c));
    let workers = haproxy_workers(&c);
    let dropin = c.ok("cat /etc/systemd/system/certbot.service.d/edgeup-ca-bundle.conf");
    assert!(
        dropin.contains("Environment=REQUESTS_CA_BUNDLE=/root/pebble-ca.pem"),
        "{dropin}"
    );
    c.ok("systemctl start certbot.service");
    assert_eq!(
        file_serial(&served_pem(&c)),
        before,
        "renewed while not due"
    );
    assert_eq!(
        haproxy_workers(&c),
        workers,
        "reloaded while nothing was due"
    );
    // Due, as time passing would make it: certbot renews when less than
    // renew_before_expiry remains. The unit (certbot -q renew, run by
    // systemd with edgeup's drop-in as its only link to the private CA)
    // renews, and the deploy hook swaps the PEM in and reloads.
    c.ok(&format!(
        "sed -i '1i renew_before_expiry = 3650 days' /etc/letsencrypt/renewal/{DOMAIN}.conf"
    ));
    c.ok("systemctl start certbot.service");
    let renewed = file_serial(&served_pem(&c));
    assert_ne!(
        renewed, before,
        "the timer's renewal did not rebuild the PEM"
    );
    assert_pebble_issued(&c, &pebble);
    assert_ne!(
        haproxy_workers(&c),
        workers,
        "the hook did not reload HAProxy"
    );
    // It was edgeup that installed it: certbot logs what its hook printed.
    let log = c.ok("cat /var/log/letsencrypt/letsencrypt.log");
    assert!(
        log.contains("Hook 'deploy-hook' ran with output")
            && log.contains(&format!("install certbot's certificate from /etc/letsencrypt/live/{DOMAIN}: certbot renewed it"))
            && log.contains("recap: ok="),
        "{log}"
    );
    // edgeup agrees the renewed certificate is converged.
    let third = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(third.count("changed"), 0, "{:?}", third.changed_steps());

    // A re-issue through edgeup keeps certbot's one lineage (--cert-name):
    // no DOMAIN-0001 beside it, and the new certificate is what is served.
    let renew = edgeup(&c, "renew --force");
    assert_eq!(renew.code, 0, "{:?}\n{}", renew.events, renew.stderr);
    assert_eq!(
        c.ok("ls /etc/letsencrypt/live")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["README", DOMAIN],
        "one lineage"
    );
    assert_ne!(
        file_serial(&served_pem(&c)),
        renewed,
        "renew --force issued nothing"
    );
    // certbot ran its deploy hook for that renewal too; the hook's edgeup
    // saw its grandparent holding the lock and left the work to it.
    let log = c.ok("cat /var/log/letsencrypt/letsencrypt.log");
    assert!(
        log.contains("started by the edgeup run holding the lock"),
        "{log}"
    );
    assert_pebble_issued(&c, &pebble);
    eprintln!("scenario certbot ACME: {:.1?}", started.elapsed());
}

#[test]
fn acme_failures_leave_the_placeholder_serving_and_say_why() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("system");
    let c = Container::boot("bookworm", "acmefail", &edgeup_binary());
    let converge = edgeup(&c, &format!("apply {}", site_flags(backend)));
    assert_eq!(converge.code, 0, "{}", converge.stderr);
    let placeholder = served_pem(&c);
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = served_cert(&c, tmp.path());
    let still_serving = |label: &str| {
        let (body, err) = curl(&[
            "--cacert",
            &ca.to_string_lossy(),
            &format!("https://{DOMAIN}/"),
        ]);
        assert!(
            body.starts_with("backend: system"),
            "{label}: HAProxy stopped serving: {err}"
        );
        assert_eq!(
            served_pem(&c),
            placeholder,
            "{label}: the placeholder was touched"
        );
        let names = c.ok("ls -A /etc/haproxy/certs");
        assert_eq!(
            names.trim(),
            format!("{DOMAIN}.pem"),
            "{label}: stray files in the crt dir"
        );
    };
    let failure = |args: &str, expect: &[&str], label: &str| {
        let run = edgeup(&c, args);
        assert_eq!(run.code, 1, "{label}: {:?}\n{}", run.events, run.stderr);
        let failed: Vec<String> = run
            .events
            .iter()
            .filter(|e| e["status"] == "failed")
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect();
        let text = failed.join("\n");
        for needle in expect {
            assert!(text.contains(needle), "{label}: {needle:?} not in {text}");
        }
        assert!(!format!("{:?}", run.events).contains("PRIVATE KEY"));
        still_serving(label);
    };

    let base = format!("--domain {DOMAIN} --email ops@example.org --backend 127.0.0.1:{backend}");
    let pebble = pebble();
    std::fs::copy(&pebble.ca_bundle, c.path("/root/pebble-ca.pem")).expect("copy CA bundle");
    let with_pebble = format!(
        "apply {base} --acme-directory {} --acme-ca-bundle /root/pebble-ca.pem",
        pebble.directory
    );
    // What the CA saw: Pebble logs every new account and order.
    let ca_untouched = |label: &str| {
        let logs = pebble.ca_log();
        assert!(
            logs.contains("Listening on")
                && !logs.contains("accounts in memory")
                && !logs.contains("Added order"),
            "{label}: the CA was contacted before the preflight passed:\n{logs}"
        );
    };
    // DNS does not point here: the preflight stops before the CA is asked.
    failure(
        &with_pebble,
        &["DNS", "the CA was not contacted"],
        "DNS missing",
    );
    ca_untouched("DNS missing");

    // Nothing answers where the CA connects (port 81 here): preflight names the hop.
    c.ok(&format!("echo '127.0.0.1 {DOMAIN}' >> /etc/hosts"));
    let site = format!(
        "domain: {DOMAIN}\nemail: ops@example.org\nbackends: ['127.0.0.1:{backend}']\n\
         acme:\n  directory: {}\n  ca_bundle: /root/pebble-ca.pem\n  validation_port: 81\n",
        pebble.directory
    );
    std::fs::write(c.path("/root/port81.yaml"), site).expect("site file");
    failure(
        "apply -f /root/port81.yaml",
        &["port 81", "the CA was not contacted"],
        "port closed",
    );
    ca_untouched("port closed");

    // CA unreachable (nothing listens on the directory's port): the
    // preflight passes, then the account registration names the address.
    std::fs::copy(&ca, c.path("/root/any-ca.pem")).expect("ca copy");
    failure(
        &format!(
            "apply {base} --acme-directory https://127.0.0.1:9/dir --acme-ca-bundle /root/any-ca.pem"
        ),
        &["127.0.0.1:9"],
        "CA unreachable",
    );

    // The CA cannot validate (its HTTP-01 requests go to a closed port) and the
    // preflight is skipped: the order fails with the CA's reason.
    let blind = Pebble::start_with(Options::new(9).env("PEBBLE_AUTHZREUSE", "0"));
    std::fs::copy(&blind.ca_bundle, c.path("/root/blind-ca.pem")).expect("copy CA bundle");
    failure(
        &format!(
            "apply {base} --acme-directory {} --acme-ca-bundle /root/blind-ca.pem --skip-preflight",
            blind.directory
        ),
        &["could not validate", "connection refused"],
        "order invalid",
    );
    drop(blind);

    // A rate limit recorded by an earlier run is honoured: no order before its time.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    c.ok(&format!(
        "mkdir -p /var/lib/edgeup/acme && echo {until} > /var/lib/edgeup/acme/{DOMAIN}.retry-after"
    ));
    failure(&with_pebble, &["rate-limited", "minutes"], "rate limited");
    c.ok(&format!("rm /var/lib/edgeup/acme/{DOMAIN}.retry-after"));

    // All good, with an RSA-2048 key this time: the placeholder is replaced.
    let rsa_site = format!(
        "domain: {DOMAIN}\nemail: ops@example.org\nbackends: ['127.0.0.1:{backend}']\n\
         acme:\n  directory: {}\n  ca_bundle: /root/pebble-ca.pem\n  key_type: rsa-2048\n",
        pebble.directory
    );
    std::fs::write(c.path("/root/rsa.yaml"), rsa_site).expect("site file");
    let run = edgeup(&c, "apply -f /root/rsa.yaml");
    assert_eq!(run.code, 0, "{:?}\n{}", run.events, run.stderr);
    assert_pebble_issued(&c, &pebble);
    let key = c.ok(&format!(
        "openssl x509 -in /etc/haproxy/certs/{DOMAIN}.pem -noout -text | grep 'Public-Key'"
    ));
    assert!(key.contains("2048 bit"), "not an RSA-2048 key: {key}");
    let with_pebble = "apply -f /root/rsa.yaml".to_string();

    // Corrupt account credentials: a clear error, no silent re-registration,
    // and the current certificate goes on being served, alone in the crt dir.
    let serving = file_serial(&served_pem(&c));
    c.ok("for f in /etc/edgeup/acme/*/account.json; do echo garbage > \"$f\"; done");
    // Read when the CA is needed: a forced renewal (the certificate itself
    // is current, so a plain apply has no reason to talk to the CA).
    let renew = with_pebble.replacen("apply", "renew --force", 1);
    let run = edgeup(&c, &format!("{renew} --skip-preflight"));
    assert_eq!(run.code, 1, "{:?}", run.events);
    let text = format!("{:?}", run.events);
    assert!(
        text.contains("unreadable") && text.contains("will not register"),
        "{text}"
    );
    assert_eq!(
        file_serial(&served_pem(&c)),
        serving,
        "the PEM was replaced"
    );
    assert_eq!(
        served_serial(),
        serving,
        "HAProxy serves another certificate"
    );
    assert_eq!(
        c.ok("ls -A /etc/haproxy/certs").trim(),
        format!("{DOMAIN}.pem"),
        "only the PEM in the crt dir"
    );
    eprintln!("scenario ACME failures: {:.1?}", started.elapsed());
}
