//! Many sites on one HAProxy in a booted container, with Pebble: sites side
//! by side with their own certificates, one added and one removed while a
//! stream and a websocket on another keep flowing; `apply --domain` on a
//! multi-site host refused with nothing changed; one site's failed
//! validation isolated from the other's issuance.

use super::robustness::fingerprint;
use super::*;

const A: &str = "chat.example.test";
const B: &str = "grafana.example.test";
const C: &str = "wiki.example.test";

/// A site file with `sites` (domain, backend port) on Pebble.
fn sites_yaml(pebble: &Pebble, sites: &[(&str, u16)]) -> String {
    let mut yaml = format!(
        "# two apps on one proxy\nemail: ops@example.org\nacme:\n  directory: {}\n  ca_bundle: /root/pebble-ca.pem\nsites:\n",
        pebble.directory
    );
    for (domain, port) in sites {
        yaml.push_str(&format!(
            "  # {domain}\n  - domain: {domain}\n    backends: [\"127.0.0.1:{port}\"]\n"
        ));
    }
    yaml
}

fn resolve_here(c: &Container, names: &[&str]) {
    for name in names {
        c.ok(&format!("echo '127.0.0.1 {name}' >> /etc/hosts"));
    }
}

/// The serial HAProxy serves for SNI `name`.
pub(super) fn served_serial_of(name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null \
             | openssl x509 -noout -serial"
        ))
        .output()
        .expect("run openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn pem_of(c: &Container, name: &str) -> String {
    std::fs::read_to_string(c.path(&format!("/etc/haproxy/certs/{name}.pem")))
        .unwrap_or_else(|e| panic!("read {name}.pem: {e}"))
}

/// `name`'s PEM is Pebble's and is what HAProxy serves for its SNI.
fn assert_issued_and_served(c: &Container, pebble: &Pebble, name: &str) {
    let pem = pem_of(c, name);
    pebble
        .verify_issued(&pem)
        .unwrap_or_else(|e| panic!("{name}: the PEM is not Pebble-issued: {e}"));
    assert_eq!(
        served_serial_of(name),
        file_serial(&pem),
        "{name}: HAProxy serves another certificate"
    );
}

/// GET https://NAME/ through the container's HAProxy, trusting Pebble's root:
/// (HTTP status, body).
pub(super) fn get(name: &str, root: &std::path::Path) -> (String, String) {
    get_with(name, &["--cacert", &root.to_string_lossy()])
}

/// `get` with other TLS options (e.g. `--insecure` for a name no longer served).
fn get_with(name: &str, tls: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(tls)
        .args(["--resolve", &format!("{name}:443:127.0.0.1")])
        .arg(format!("https://{name}/"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

/// A websocket to `name` through HAProxy (TLS with SNI, HTTP/1.1 upgrade)
/// that the test app keeps open for `ticks` frames, 200 ms apart. Prints the
/// status line, the number of frames and the last one.
fn long_websocket(name: &str, root: &std::path::Path, ticks: u32) -> std::process::Child {
    const CLIENT: &str = r#"
import base64, os, socket, ssl, sys
name, ca, ticks = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=30), server_hostname=name)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws/socket.io/?ticks=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % (ticks, name, key)).encode())
data = b""
while b"\r\n\r\n" not in data:
    more = s.recv(4096)
    if not more:
        break
    data += more
head, _, data = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
frames = []
while True:
    while len(data) >= 2 and len(data) >= 2 + data[1]:
        frames.append(data[2:2 + data[1]].decode())
        data = data[2 + data[1]:]
    more = s.recv(4096)
    if not more:
        break
    data += more
print(len(frames))
print(frames[-1] if frames else "")
"#;
    Command::new("python3")
        .args(["-c", CLIENT, name])
        .arg(root)
        .arg(ticks.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python3 (the websocket client)")
}

/// A response streamed from `name` for `ticks` lines, 200 ms apart.
fn long_stream(name: &str, root: &std::path::Path, ticks: u32) -> std::process::Child {
    Command::new("curl")
        .args(["-sS", "-N", "--max-time", "60", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:443:127.0.0.1")])
        .arg(format!("https://{name}/stream?ticks={ticks}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start curl")
}

#[test]
fn sites_side_by_side_one_added_one_removed_while_another_keeps_streaming() {
    let Scenario {
        _serial, started, ..
    } = scenario("unused");
    let (app_a, app_b, app_c) = (
        start_backend(Role::App("app-a")),
        start_backend(Role::App("app-b")),
        start_backend(Role::App("app-c")),
    );
    let pebble = pebble();
    let c = Container::boot("bookworm", "sites", &edgeup_binary());
    trust_pebble(&c, &pebble);
    resolve_here(&c, &[A, B, C]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.issuer_root()).expect("write root");

    // Two sites from one file: each issued, served with its own SNI, routed to its own app.
    std::fs::write(
        c.path("/root/sites.yaml"),
        sites_yaml(&pebble, &[(A, app_a), (B, app_b)]),
    )
    .expect("write the site file");
    let first = edgeup(&c, "apply -f /root/sites.yaml");
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    for (name, app) in [(A, "app-a"), (B, "app-b")] {
        assert_issued_and_served(&c, &pebble, name);
        let (code, body) = get(name, &root);
        assert_eq!(code, "200", "{name}: {body}");
        assert!(
            body.starts_with(&format!("backend: {app}\r\n")),
            "{name}: {body}"
        );
    }
    // The two certificates were ordered together (one batch): Pebble added
    // both orders before it issued the first certificate.
    let log = pebble.ca_log();
    let first_issued = log
        .find("Issued certificate serial")
        .unwrap_or_else(|| panic!("Pebble issued nothing:\n{log}"));
    assert_eq!(
        log.get(..first_issued)
            .unwrap_or_default()
            .matches("Added order")
            .count(),
        2,
        "the orders did not overlap:\n{log}"
    );
    // Every step of a site names it in --json.
    assert!(
        first.events.iter().any(|e| e["event"] == "step"
            && e["site"] == B
            && e["name"] == "CA-issued certificate"),
        "{:?}",
        first.events
    );
    // The record is the user's file, comments and all.
    assert_eq!(
        std::fs::read_to_string(c.path("/etc/edgeup/site.yaml")).expect("record"),
        sites_yaml(&pebble, &[(A, app_a), (B, app_b)])
    );
    let again = edgeup(&c, "apply");
    assert_eq!(again.count("changed"), 0, "{:?}", again.changed_steps());

    // `edgeup status`: the host's checks once, a block per site (its
    // certificate from Pebble, probes with its own SNI), one summary line;
    // --json: one whole report per site; `status B`: that site only.
    let human = c.sh("edgeup status");
    let text = stdout(&human);
    assert_eq!(human.status.code(), Some(0), "{text}");
    assert_eq!(
        text.matches("edgeup status: this host").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("  distro ").count(), 1, "{text}");
    for name in [A, B] {
        assert_eq!(
            text.matches(&format!("edgeup status: {name}\n")).count(),
            1,
            "{text}"
        );
    }
    assert_eq!(text.matches("  https ").count(), 2, "{text}");
    assert!(text.trim_end().ends_with("2 sites, all healthy"), "{text}");
    let json = c.sh("edgeup status --json");
    assert_eq!(json.status.code(), Some(0));
    let reports: Vec<Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON report"))
        .collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for (report, name) in reports.iter().zip([A, B]) {
        assert_eq!(report["domain"], name);
        assert_eq!(report["healthy"], true, "{report:#}");
        assert_eq!(report["certificate"]["placeholder"], false, "{report:#}");
        assert_eq!(report["https"]["status"], 200, "{report:#}");
        assert_eq!(report["websocket"]["status"], 101, "{report:#}");
        assert_eq!(report["haproxy"]["unit"]["active"], "active");
    }
    let one = stdout(&c.sh(&format!("edgeup status {B}")));
    assert!(
        one.contains(&format!("edgeup status: {B}")) && !one.contains(A),
        "{one}"
    );

    // `apply --domain` (flags only) would drop both: refused, nothing changed.
    let before = fingerprint(&c);
    let refused = c.sh(&format!(
        "edgeup apply --domain {C} --email ops@example.org --backend 127.0.0.1:{app_c} --acme-directory off"
    ));
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("would remove {A}, {B}"))
            && said.contains("edgeup site add")
            && said.contains("--replace"),
        "{said}"
    );
    assert_eq!(fingerprint(&c), before, "a refused apply changed files");

    // While a stream and a websocket on B flow: C added, then A removed.
    let workers_before = haproxy_workers(&c);
    let stream = long_stream(B, &root, 100);
    let socket = long_websocket(B, &root, 100);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let add = edgeup(
        &c,
        &format!("site add --domain {C} --backend 127.0.0.1:{app_c} --yes"),
    );
    assert_eq!(add.code, 0, "{:?}\n{}", add.events, add.stderr);
    assert_issued_and_served(&c, &pebble, C);
    let (code, body) = get(C, &root);
    assert_eq!(code, "200", "{body}");
    assert!(body.starts_with("backend: app-c\r\n"), "{body}");
    let reloads = |run: &Run| {
        run.events
            .iter()
            .filter(|e| e["name"] == "reload haproxy" && e["status"] == "changed")
            .count()
    };
    assert_eq!(
        reloads(&add),
        2,
        "adding a site: one reload for its route, one for its certificate"
    );
    let record = std::fs::read_to_string(c.path("/etc/edgeup/site.yaml")).expect("record");
    assert!(
        record.starts_with("# two apps on one proxy\n") && record.contains(&format!("  # {A}\n")),
        "comments kept:\n{record}"
    );

    let remove = edgeup(&c, &format!("site remove {A} --yes"));
    assert_eq!(remove.code, 0, "{:?}\n{}", remove.events, remove.stderr);
    assert_eq!(reloads(&remove), 1, "removing a site is one reload");
    // A is now an unknown name: the default (first site's) certificate, then the 404.
    assert_eq!(served_serial_of(A), file_serial(&pem_of(&c, B)));
    let (code, body) = get_with(A, &["--insecure"]);
    assert_eq!(code, "404", "{body}");
    assert!(body.contains("no site is configured"), "{body}");
    assert_eq!(
        c.ok("ls -A /etc/haproxy/certs")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [format!("{B}.pem"), format!("{C}.pem")],
        "A's PEM left the crt directory"
    );
    let archived = c.ok(&format!(
        "stat -c '%a %U' /var/lib/edgeup/archive /var/lib/edgeup/archive/{A}.pem.*"
    ));
    assert_eq!(
        archived.lines().collect::<Vec<_>>(),
        ["700 root", "600 root"],
        "{archived}"
    );
    assert!(!c.ok("cat /etc/edgeup/site.yaml").contains(A));
    assert_ne!(
        haproxy_workers(&c),
        workers_before,
        "the changes were reloads"
    );

    let streamed = stream.wait_with_output().expect("curl finished");
    let text = String::from_utf8_lossy(&streamed.stdout);
    assert!(
        streamed.status.success() && text.ends_with("tick 99\ndone\n"),
        "the stream on {B} was cut: {text:?} {}",
        String::from_utf8_lossy(&streamed.stderr)
    );
    let ws = socket
        .wait_with_output()
        .expect("websocket client finished");
    let said = String::from_utf8_lossy(&ws.stdout).into_owned();
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        ["HTTP/1.1 101 Switching Protocols", "101", "tick 99"],
        "the websocket on {B} was cut: {said} {}",
        String::from_utf8_lossy(&ws.stderr)
    );
    let last = edgeup(&c, "apply");
    assert_eq!(last.count("changed"), 0, "{:?}", last.changed_steps());
    eprintln!("scenario sites: {:.1?}", started.elapsed());
}

#[test]
fn one_sites_failed_validation_leaves_the_other_issued_and_a_rerun_issues_only_it() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("isolated");
    let pebble = pebble();
    let c = Container::boot("bookworm", "isolation", &edgeup_binary());
    trust_pebble(&c, &pebble);
    // B's name does not resolve in the container: its preflight fails.
    resolve_here(&c, &[A]);
    std::fs::write(
        c.path("/root/sites.yaml"),
        sites_yaml(&pebble, &[(A, backend), (B, backend)]),
    )
    .expect("write the site file");
    let first = edgeup(&c, "apply -f /root/sites.yaml");
    assert_eq!(first.code, 1, "{:?}\n{}", first.events, first.stderr);
    assert_eq!(
        first.recap()["failed_sites"],
        serde_json::json!([B]),
        "{:?}",
        first.recap()
    );
    assert_issued_and_served(&c, &pebble, A);
    let placeholder = pem_of(&c, B);
    assert!(
        pebble.verify_issued(&placeholder).is_err(),
        "{B} must still have its placeholder"
    );
    assert_eq!(
        served_serial_of(B),
        file_serial(&placeholder),
        "{B}: the placeholder is served"
    );
    let failed = first
        .events
        .iter()
        .find(|e| e["status"] == "failed")
        .map(|e| format!("{} {} {}", e["site"], e["name"], e["message"]))
        .unwrap_or_default();
    assert!(
        failed.contains(B) && failed.contains("preflight"),
        "{failed}"
    );

    // DNS fixed: the re-run issues B's certificate and nothing else.
    let a_serial = file_serial(&pem_of(&c, A));
    resolve_here(&c, &[B]);
    let second = edgeup(&c, "apply -f /root/sites.yaml");
    assert_eq!(second.code, 0, "{:?}\n{}", second.events, second.stderr);
    let issued: Vec<String> = second
        .events
        .iter()
        .filter(|e| e["name"] == "CA-issued certificate" && e["status"] == "changed")
        .map(|e| e["site"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(issued, [B]);
    assert_eq!(
        file_serial(&pem_of(&c, A)),
        a_serial,
        "{A} was not re-issued"
    );
    assert_issued_and_served(&c, &pebble, B);
    eprintln!("scenario site isolation: {:.1?}", started.elapsed());
}

/// The edgeup of the last single-site release (`tests/system/previous-release`
/// names its commit; `.ci/run` builds it into target/previous/).
fn previous_binary() -> std::path::PathBuf {
    let path = std::env::var_os("EDGEUP_PREVIOUS_BINARY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/previous/debug/edgeup")
        });
    assert!(
        path.is_file(),
        "{} is missing: the upgrade test needs the previous release's binary; build it with \
         `.ci/build-previous` (what .ci/run does)",
        path.display()
    );
    path
}

#[test]
fn a_host_converged_by_the_previous_release_upgrades_in_place_without_reissuing() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("upgrade");
    let pebble = pebble();
    let c = Container::boot("bookworm", "upgrade", &previous_binary());
    trust_pebble(&c, &pebble);
    let old = edgeup(
        &c,
        &format!("apply {}", acme_flags(backend, &pebble, "builtin")),
    );
    assert_eq!(old.code, 0, "{:?}\n{}", old.events, old.stderr);
    let pem = served_pem(&c);
    pebble
        .verify_issued(&pem)
        .expect("the previous release issued a certificate");
    let record = std::fs::read_to_string(c.path("/etc/edgeup/site.yaml")).expect("record");
    assert!(
        !record.contains("sites:"),
        "the previous release writes one-site files:\n{record}"
    );

    // The new binary over the old one, the existing site file as it is.
    std::fs::copy(edgeup_binary(), c.path("/usr/local/bin/edgeup")).expect("upgrade the binary");
    let up = edgeup(&c, "apply");
    assert_eq!(up.code, 0, "{:?}\n{}", up.events, up.stderr);
    let changed = up.changed_steps();
    // The crt directory and PEM become root's (attributes only: the content
    // and serial are checked below).
    let allowed = [
        "Certificate directory",
        "Placeholder certificate (until a CA-issued one exists)",
        "CA-issued certificate",
        "Host name map (every site's names -> its backend)",
        "haproxy.cfg",
        "edgeup-renew.service",
        "Remember the sites (/etc/edgeup/site.yaml)",
        "reload haproxy",
        "reload systemd",
    ];
    assert!(
        changed.iter().all(|s| allowed.contains(&s.as_str())),
        "{changed:?}"
    );
    assert!(
        changed.iter().filter(|s| *s == "reload haproxy").count() <= 1,
        "at most one reload: {changed:?}"
    );
    assert_eq!(
        served_pem(&c),
        pem,
        "the certificate was re-issued or moved"
    );
    assert_eq!(
        served_serial(),
        file_serial(&pem),
        "HAProxy serves another certificate"
    );
    // The record keeps the one-site form; only the former responder
    // default (an unprivileged port) is replaced.
    let rewritten = std::fs::read_to_string(c.path("/etc/edgeup/site.yaml")).expect("record");
    assert_eq!(
        rewritten
            .replace("127.0.0.1:888\n", "127.0.0.1:8688\n")
            .lines()
            .skip(2)
            .collect::<Vec<_>>(),
        record.lines().skip(2).collect::<Vec<_>>(),
        "{rewritten}"
    );
    assert!(
        c.ok("grep -c 'server responder 127.0.0.1:888$' /etc/haproxy/haproxy.cfg")
            .trim()
            == "1"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.issuer_root()).expect("write root");
    let (code, body) = get(DOMAIN, &root);
    assert_eq!(code, "200", "{body}");
    let again = edgeup(&c, "apply");
    assert_eq!(again.count("changed"), 0, "{:?}", again.changed_steps());
    eprintln!(
        "scenario upgrade from the previous release: {:.1?}",
        started.elapsed()
    );
}
