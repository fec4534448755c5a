//! `status` at library level: verdicts on generated certificates, and
//! `gather` on a fixture root (a Debian tree, a scripted `systemctl` and
//! `haproxy -v`) with a TLS server on loopback standing in for HAProxy:
//! it serves a given certificate, records the SNI it was asked for, answers
//! GET with a chosen status and websocket upgrades with 101.

use super::checks::{self, Level};
use super::probe::{self, Endpoint};
use super::{Options, SiteStatus, gather};
use crate::assets::Assets;
use crate::host::scripted::ScriptedRunner;
use crate::host::{CmdOutput, Host};
use crate::pki::{self, PLACEHOLDER_ORG};
use crate::site::Site;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DOMAIN: &str = "chat.example.com";

// ------------------------------------------------------------ certificates

/// A PEM (certificate + PKCS#8 key) for DOMAIN valid from `from` to `to`
/// days around now: the edgeup placeholder, or issued by a test CA.
fn cert_pem(placeholder: bool, from: i64, to: i64) -> String {
    let now = ::time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_string()]).expect("params");
    params.not_before = now + ::time::Duration::days(from);
    params.not_after = now + ::time::Duration::days(to);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, DOMAIN);
    if placeholder {
        dn.push(rcgen::DnType::OrganizationName, PLACEHOLDER_ORG);
    }
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = if placeholder {
        params.self_signed(&key).expect("self-signed")
    } else {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let mut ca_dn = rcgen::DistinguishedName::new();
        ca_dn.push(rcgen::DnType::CommonName, "Test Issuing CA");
        ca.distinguished_name = ca_dn;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        params.signed_by(&key, &issuer).expect("signed")
    };
    format!("{}{}", cert.pem(), key.serialize_pem())
}

fn info(pem: &str) -> pki::CertInfo {
    pki::parse_bundle(pem.as_bytes())
        .expect("bundle")
        .leaf()
        .cloned()
        .expect("leaf")
}

#[test]
fn certificate_verdicts() {
    let now = pki::now();
    let verdict =
        |pem: &str, acme: bool| checks::certificate(&info(pem), "file", now, DOMAIN, acme);

    let placeholder = cert_pem(true, -1, 365);
    let v = verdict(&placeholder, false);
    assert_eq!(v.level, Level::Warn, "{v:?}");
    assert!(v.message.contains("placeholder"), "{v:?}");
    let v = verdict(&placeholder, true);
    assert_eq!(v.level, Level::Fail, "placeholder with ACME on: {v:?}");
    assert!(
        v.message.contains("still the self-signed placeholder"),
        "{v:?}"
    );

    let issued = cert_pem(false, -30, 60);
    let v = verdict(&issued, true);
    assert_eq!(v.level, Level::Ok, "{v:?}");
    assert!(v.message.contains("Test Issuing CA"), "{v:?}");
    assert!(v.message.contains("days left"), "{v:?}");

    let v = verdict(&cert_pem(false, -80, 10), true);
    assert_eq!(v.level, Level::Warn, "renewal overdue: {v:?}");

    for expired in [cert_pem(false, -90, -2), cert_pem(true, -366, -1)] {
        for acme in [true, false] {
            let v = verdict(&expired, acme);
            assert_eq!(v.level, Level::Fail, "expired: {v:?}");
            assert!(v.message.contains("EXPIRED"), "{v:?}");
        }
    }

    let other = checks::certificate(&info(&issued), "file", now, "other.example.com", true);
    assert_eq!(other.level, Level::Fail);
    assert!(
        other.message.contains("does not name other.example.com"),
        "{other:?}"
    );

    let future = verdict(&cert_pem(false, 2, 90), true);
    assert_eq!(future.level, Level::Fail, "{future:?}");
}

// ------------------------------------------------------------- TLS server

struct Server {
    addr: SocketAddr,
    /// The SNI of every connection.
    sni: Arc<Mutex<Vec<String>>>,
}

/// Serves `pem` on 127.0.0.1 (ephemeral port): GET answers `get_status`,
/// a websocket upgrade answers 101 (or 400 when `websocket` is false).
fn tls_server(pem: &str, get_status: &'static str, websocket: bool) -> Server {
    let mut chain = Vec::new();
    let mut key = None;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.expect("PEM block");
        match block.label.as_str() {
            "CERTIFICATE" => chain.push(CertificateDer::from(block.contents)),
            "PRIVATE KEY" => {
                key = Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    block.contents,
                )))
            }
            _ => {}
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key.expect("key"))
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sni = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sni);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut sock = stream;
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                while conn.is_handshaking() {
                    if conn.complete_io(&mut sock).is_err() {
                        return;
                    }
                }
                if let Ok(mut names) = seen.lock() {
                    names.push(conn.server_name().unwrap_or("").to_string());
                }
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let answer = if head.contains("upgrade: websocket") {
                    if websocket {
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_string()
                    } else {
                        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_string()
                    }
                } else {
                    format!(
                        "HTTP/1.1 {get_status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                };
                let _ = tls.write_all(answer.as_bytes());
                let _ = tls.flush();
                // Keep an upgraded connection open a moment, as a real one stays.
                std::thread::sleep(Duration::from_millis(50));
            });
        }
    });
    Server { addr, sni }
}

#[test]
fn probes_send_sni_and_read_status_and_certificate() {
    let pem = cert_pem(true, -1, 365);
    let server = tls_server(&pem, "200 OK", true);
    let target = Endpoint {
        addr: server.addr,
        domain: DOMAIN.into(),
        timeout: Duration::from_secs(5),
    };
    let https = probe::https(&target, "/");
    assert_eq!(https.status, Some(200), "{https:?}");
    assert_eq!(https.status_line.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(https.certificate.as_ref(), Some(&info(&pem)));
    let ws = probe::websocket(&target, "/ws/socket.io/?EIO=4&transport=websocket");
    assert_eq!(ws.status, Some(101), "{ws:?}");
    let sni = server.sni.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(sni, [DOMAIN, DOMAIN]);
}

#[test]
fn probe_of_a_closed_port_says_nothing_listens() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let target = Endpoint {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        domain: DOMAIN.into(),
        timeout: Duration::from_secs(2),
    };
    let p = probe::https(&target, "/");
    assert_eq!(p.status, None);
    assert!(
        p.error.as_deref().unwrap_or("").contains("nothing listens"),
        "{p:?}"
    );
}

// ---------------------------------------------------------- fixture hosts

struct Fixture {
    dir: tempfile::TempDir,
    systemd: bool,
    haproxy_active: bool,
    timer_active: bool,
}

impl Fixture {
    /// A converged Debian 12 as `status` reads it: haproxy installed and
    /// running, renewal timer active, certificate in place.
    fn debian(pem: &str) -> Fixture {
        let fx = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
            systemd: true,
            haproxy_active: true,
            timer_active: true,
        };
        fx.write(
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        );
        fx.write("/usr/sbin/haproxy", "\x7fELF");
        fx.write(&format!("/etc/haproxy/certs/{DOMAIN}.pem"), pem);
        fx.write("/proc/1/comm", "systemd\n");
        std::fs::create_dir_all(fx.path("/run/systemd/system")).expect("mkdir");
        fx
    }

    fn path(&self, host_path: &str) -> std::path::PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    fn write(&self, host_path: &str, content: &str) {
        let path = self.path(host_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }

    fn without_systemd(mut self) -> Fixture {
        std::fs::remove_dir_all(self.path("/run/systemd/system")).expect("rm");
        self.write("/proc/1/comm", "bash\n");
        self.systemd = false;
        self
    }

    fn host(&self) -> (Host, Arc<Mutex<Vec<String>>>) {
        let unit = |active: bool| {
            CmdOutput::ok(&format!(
                "LoadState=loaded\nActiveState={}\nUnitFileState=enabled\nNextElapseUSecRealtime=Mon 2030-01-07 03:12:00 UTC\n",
                if active { "active" } else { "inactive" }
            ))
        };
        let runner = ScriptedRunner::new(self.dir.path().to_path_buf())
            .respond(
                "haproxy -v",
                CmdOutput::ok(
                    "HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/\n",
                ),
            )
            .respond("systemctl show haproxy.service", unit(self.haproxy_active))
            .respond("systemctl show edgeup-renew.timer", unit(self.timer_active))
            .respond("", CmdOutput::failed(127, "no rule for this command"));
        let log = runner.transcript();
        (
            Host::new(self.dir.path().to_path_buf(), Box::new(runner)),
            log,
        )
    }

    fn status(&self, site: &Site, server: &Server) -> (SiteStatus, Vec<String>) {
        let (host, log) = self.host();
        let options = Options {
            connect: Some(server.addr),
            timeout: Duration::from_secs(5),
            now: pki::now(),
        };
        let report = gather(&host, &Assets::new(None), site, &options);
        let commands = log.lock().map(|l| l.clone()).unwrap_or_default();
        (report, commands)
    }
}

fn site(acme_off: bool) -> Site {
    let acme = if acme_off {
        "acme: {directory: \"off\"}\n"
    } else {
        "acme: {directory: letsencrypt-staging}\n"
    };
    let yaml = format!(
        "domain: {DOMAIN}\nemail: ops@your-company.com\nbackends: [\"127.0.0.1:3000\"]\n{acme}"
    );
    let raw: crate::site::RawSite = serde_saphyr::from_str(&yaml).expect("site");
    crate::site::parse_site(&raw).expect("valid")
}

fn levels(report: &SiteStatus) -> Vec<(String, Level)> {
    report
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.level))
        .collect()
}

fn level_of(report: &SiteStatus, name: &str) -> Level {
    report
        .checks
        .iter()
        .filter(|c| c.name == name)
        .map(|c| c.level)
        .max_by_key(|l| *l as u8)
        .unwrap_or_else(|| panic!("no {name} check: {report:#?}"))
}

#[test]
fn converged_placeholder_site_with_acme_off_is_healthy() {
    let pem = cert_pem(true, -1, 365);
    let fx = Fixture::debian(&pem);
    let server = tls_server(&pem, "200 OK", true);
    let (report, commands) = fx.status(&site(true), &server);
    assert!(report.healthy, "{:#?}", report.checks);
    assert_eq!(level_of(&report, "certificate"), Level::Warn);
    for name in [
        "distro",
        "systemd",
        "haproxy",
        "renewal",
        "https",
        "websocket",
    ] {
        assert_eq!(
            level_of(&report, name),
            Level::Ok,
            "{name}: {:#?}",
            report.checks
        );
    }
    let cert = report.certificate.as_ref().expect("certificate");
    assert_eq!(cert.source, "file");
    assert!(cert.info.placeholder && !cert.expired);
    assert_eq!(report.haproxy.version.as_deref(), Some("2.6.12-1+deb12u1"));
    // Read-only: only queries ran.
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with("systemctl show ") || c == "haproxy -v"),
        "{commands:?}"
    );
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["healthy"], true);
    assert_eq!(json["certificate"]["placeholder"], true);
    assert_eq!(json["https"]["status"], 200);
    assert_eq!(json["websocket"]["status"], 101);
}

#[test]
fn placeholder_while_acme_is_on_is_unhealthy() {
    let pem = cert_pem(true, -1, 365);
    let fx = Fixture::debian(&pem);
    let server = tls_server(&pem, "200 OK", true);
    let (report, _) = fx.status(&site(false), &server);
    assert!(!report.healthy, "{:#?}", report.checks);
    assert_eq!(level_of(&report, "certificate"), Level::Fail);
    assert_eq!(
        level_of(&report, "renewal"),
        Level::Ok,
        "{:#?}",
        report.checks
    );
    let renewal = report.renewal.timer.as_ref().expect("timer");
    assert_eq!(
        renewal.next_run.as_deref(),
        Some("Mon 2030-01-07 03:12:00 UTC")
    );
}

#[test]
fn expired_certificate_is_unhealthy() {
    let pem = cert_pem(false, -100, -3);
    let fx = Fixture::debian(&pem);
    let server = tls_server(&pem, "200 OK", true);
    let (report, _) = fx.status(&site(false), &server);
    assert!(!report.healthy);
    let failed: Vec<_> = levels(&report)
        .into_iter()
        .filter(|(_, l)| *l == Level::Fail)
        .collect();
    assert_eq!(
        failed,
        [("certificate".to_string(), Level::Fail)],
        "{:#?}",
        report.checks
    );
    let cert = report.certificate.as_ref().expect("certificate");
    assert!(cert.expired && cert.days_left < 0);
}

#[test]
fn served_certificate_differing_from_the_file_is_flagged() {
    let file = cert_pem(false, -1, 80);
    let served = cert_pem(false, -70, 20);
    let fx = Fixture::debian(&file);
    let server = tls_server(&served, "200 OK", true);
    let (report, _) = fx.status(&site(false), &server);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.level == Level::Warn && c.message.contains("reload")),
        "{:#?}",
        report.checks
    );
}

#[test]
fn unreadable_file_is_judged_as_served() {
    let pem = cert_pem(false, -1, 80);
    let fx = Fixture::debian(&pem);
    // A directory where the file should be: reading fails, as without root.
    let file = fx.path(&format!("/etc/haproxy/certs/{DOMAIN}.pem"));
    std::fs::remove_file(&file).expect("rm");
    std::fs::create_dir(&file).expect("mkdir");
    let server = tls_server(&pem, "200 OK", true);
    let (report, _) = fx.status(&site(false), &server);
    let cert = report.certificate.as_ref().expect("certificate");
    assert_eq!(cert.source, "served");
    assert!(report.healthy, "{:#?}", report.checks);
}

#[test]
fn app_down_stopped_haproxy_and_broken_websocket_fail() {
    let pem = cert_pem(true, -1, 365);
    let mut fx = Fixture::debian(&pem);
    fx.haproxy_active = false;
    let server = tls_server(&pem, "503 Service Unavailable", false);
    let (report, _) = fx.status(&site(true), &server);
    assert!(!report.healthy);
    assert_eq!(level_of(&report, "haproxy"), Level::Fail);
    assert_eq!(level_of(&report, "https"), Level::Fail);
    assert_eq!(level_of(&report, "websocket"), Level::Fail);
    let https = report
        .checks
        .iter()
        .find(|c| c.name == "https")
        .expect("https");
    assert!(https.message.contains("the app does not"), "{https:?}");
}

#[test]
fn without_systemd_it_says_so_and_runs_no_systemctl() {
    let pem = cert_pem(true, -1, 365);
    let fx = Fixture::debian(&pem).without_systemd();
    assert!(!fx.systemd);
    let server = tls_server(&pem, "200 OK", true);
    let (report, commands) = fx.status(&site(false), &server);
    assert!(!report.healthy);
    let systemd = report
        .checks
        .iter()
        .find(|c| c.name == "systemd")
        .expect("systemd");
    assert_eq!(systemd.level, Level::Fail);
    assert!(systemd.message.contains("PID 1 is 'bash'"), "{systemd:?}");
    assert!(report.haproxy.unit.is_none() && report.renewal.timer.is_none());
    assert!(
        commands.iter().all(|c| !c.starts_with("systemctl")),
        "{commands:?}"
    );
}

#[test]
fn missing_certificate_and_unsupported_distro_fail_clearly() {
    let pem = cert_pem(true, -1, 365);
    let fx = Fixture::debian(&pem);
    std::fs::remove_file(fx.path(&format!("/etc/haproxy/certs/{DOMAIN}.pem"))).expect("rm");
    fx.write("/etc/os-release", "ID=alpine\nVERSION_ID=3.20\n");
    let server = tls_server(&pem, "200 OK", true);
    let (report, _) = fx.status(&site(true), &server);
    assert_eq!(level_of(&report, "distro"), Level::Fail);
    let cert = report
        .checks
        .iter()
        .find(|c| c.name == "certificate")
        .expect("certificate");
    assert_eq!(cert.level, Level::Fail);
    assert!(cert.message.contains("does not exist"), "{cert:?}");
    assert!(Path::new(&fx.path("/etc")).exists());
}
