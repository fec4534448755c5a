//! Helpers shared by the integration tests: sites and distros to render with,
//! throwaway certificates, free loopback ports, processes that die with the
//! test, and the real `haproxy` binary.
//!
//! Every test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod backend;
pub mod bind;
pub mod pdeath;
pub mod pebble;
pub mod stand_in_ca;
pub mod webhook;

use edgeup::distro::{Distro, Paths, Units};
use edgeup::render::{FactVars, Vars, render_template};
use edgeup::site::{Config, RawSite, Site, addr::Bind};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- sites, distros

/// A site from YAML, read and validated as a user's site.yaml is, with one
/// rule set aside: these tests' HAProxy instances send the ACME route to a
/// free unprivileged port, which edgeup refuses (only root may bind below
/// 1024). The responder is validated as the default, then set as written.
pub fn site(yaml: &str) -> Site {
    let mut raw = serde_saphyr::from_str::<RawSite>(yaml)
        .unwrap_or_else(|e| panic!("test site YAML: {e}\n{yaml}"));
    let responder = set_aside_responder(&mut raw);
    let mut site = edgeup::site::parse_site(&raw)
        .unwrap_or_else(|p| panic!("test site is invalid: {p:?}\n{yaml}"));
    site.listen.acme_responder = responder;
    site
}

/// The responder `raw` names, replaced by the default (see `site`).
fn set_aside_responder(raw: &mut RawSite) -> Bind {
    let written = std::mem::replace(
        &mut raw.listen.acme_responder,
        edgeup::site::DEFAULT_ACME_RESPONDER.into(),
    );
    written
        .parse()
        .unwrap_or_else(|e| panic!("test responder: {e}"))
}

/// The Debian profile with the paths of `distros/debian.yaml`, built here so that
/// golden files do not change when the profile's notes or packages do.
pub fn debian() -> Distro {
    Distro {
        name: "debian".into(),
        family: "debian".into(),
        ids: vec!["debian".into(), "ubuntu".into()],
        like: vec!["debian".into()],
        package_manager: edgeup::distro::PackageManager::Apt,
        packages: vec!["haproxy".into(), "certbot".into(), "openssl".into()],
        repo_packages: vec![],
        repo_packages_by_id: Default::default(),
        certbot_available: true,
        haproxy_user: "haproxy".into(),
        haproxy_group: "haproxy".into(),
        paths: Paths {
            haproxy_config: "/etc/haproxy/haproxy.cfg".into(),
            certs_dir: "/etc/haproxy/certs".into(),
            admin_socket: "/run/haproxy/admin.sock".into(),
            chroot: "/var/lib/haproxy".into(),
            certbot_dir: "/etc/letsencrypt".into(),
        },
        units: Units {
            haproxy: "haproxy.service".into(),
            certbot_timer: "certbot.timer".into(),
        },
        notes: vec![],
    }
}

/// The RHEL profile's paths (`distros/rhel.yaml`): the stats socket RHEL's own
/// haproxy.cfg uses, /var/lib/haproxy/stats.
pub fn rhel() -> Distro {
    let mut d = debian();
    d.name = "rhel".into();
    d.family = "rhel".into();
    d.ids = vec!["rhel".into(), "rocky".into(), "almalinux".into()];
    d.like = vec!["rhel".into()];
    d.package_manager = edgeup::distro::PackageManager::Dnf;
    d.repo_packages = vec!["epel-release".into()];
    d.paths.admin_socket = "/var/lib/haproxy/stats".into();
    d.units.certbot_timer = "certbot-renew.timer".into();
    d
}

/// The profiles shipped in `distros/` when they load, else the built ones.
pub fn shipped_profiles() -> Vec<Distro> {
    match edgeup::distro::load_all(&edgeup::assets::Assets::new(None)) {
        Ok(profiles) if !profiles.is_empty() => profiles,
        Ok(_) => {
            eprintln!("note: no distro profiles shipped yet; using the built Debian and RHEL ones");
            vec![debian(), rhel()]
        }
        Err(e) => {
            eprintln!(
                "note: distro profiles do not load ({e:#}); using the built Debian and RHEL ones"
            );
            vec![debian(), rhel()]
        }
    }
}

/// `distro` with its certificate directory, chroot and admin socket moved into
/// `dir` (which `TestDir::new` prepared), so `haproxy -c` and a live HAProxy
/// find real files. User and group stay the profile's.
pub fn relocated(distro: &Distro, dir: &TestDir) -> Distro {
    let mut d = distro.clone();
    d.paths.certs_dir = dir.certs_dir().display().to_string();
    d.paths.chroot = dir.chroot().display().to_string();
    d.paths.admin_socket = dir.path().join("admin.sock").display().to_string();
    d.paths.haproxy_config = dir.config().display().to_string();
    d
}

/// Facts as `detect` would hand them to the renderer; `version` is the
/// installed haproxy package version (None: not installed).
pub fn facts(version: Option<&str>) -> FactVars {
    FactVars {
        selinux: "disabled".into(),
        firewall: "none".into(),
        systemd: true,
        ipv6: false,
        haproxy_version: version.map(str::to_string),
    }
}

/// haproxy.cfg as edgeup renders it from the embedded template. For a
/// `relocated` distro the host name map is written beside it too (where
/// `haproxy -c` and a live HAProxy read it).
pub fn render(site: &Site, distro: &Distro, facts: FactVars) -> String {
    render_sites(&one(site), distro, facts)
}

/// `render` for several sites.
pub fn render_sites(config: &Config, distro: &Distro, facts: FactVars) -> String {
    let (cfg, map) = render_config(config, distro, facts);
    let map_path = PathBuf::from(edgeup::render::sites_map_path(distro));
    if map_path.starts_with(std::env::temp_dir()) {
        std::fs::write(&map_path, map).expect("writing the host name map");
    }
    cfg
}

/// A configuration of this one site.
pub fn one(site: &Site) -> Config {
    Config {
        sites: vec![site.clone()],
    }
}

/// Sites from a site file's YAML (either form), read and validated as edgeup
/// does, the responder rule set aside as in `site`.
pub fn config(yaml: &str) -> Config {
    let file = serde_saphyr::from_str::<edgeup::site::SiteFile>(yaml)
        .unwrap_or_else(|e| panic!("test site YAML: {e}\n{yaml}"));
    let mut sites = file
        .resolve()
        .unwrap_or_else(|p| panic!("test site YAML: {p:?}\n{yaml}"));
    let responders: Vec<Bind> = sites.iter_mut().map(set_aside_responder).collect();
    let mut config = edgeup::site::validate_config(&sites, Some(&file))
        .unwrap_or_else(|p| panic!("test sites are invalid: {p:?}\n{yaml}"));
    for (site, responder) in config.sites.iter_mut().zip(responders) {
        site.listen.acme_responder = responder;
    }
    config
}

/// haproxy.cfg and the host name map, as edgeup renders them.
pub fn render_config(config: &Config, distro: &Distro, facts: FactVars) -> (String, String) {
    let vars = Vars::new(config, distro, facts, &[], edgeup::paths::INSTALL_PATH).expect("vars");
    let assets = edgeup::assets::Assets::new(None);
    let cfg = render_template(&assets, "haproxy.cfg.j2", &vars)
        .unwrap_or_else(|e| panic!("rendering haproxy.cfg.j2: {e:#}"));
    let map = render_template(&assets, "edgeup-sites.map.j2", &vars)
        .unwrap_or_else(|e| panic!("rendering edgeup-sites.map.j2: {e:#}"));
    (cfg, map)
}

// ---------------------------------------------------------------- files

/// A temporary directory laid out like a host: `certs/DOMAIN.pem` (a real
/// self-signed P-256 certificate and key), `ca.pem` (the certificate alone, for
/// clients to trust), `chroot/`.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new(domain: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("edgeup-test-")
            .tempdir()
            .expect("creating a temporary directory");
        let t = TestDir { dir };
        std::fs::create_dir(t.certs_dir()).expect("creating certs/");
        std::fs::create_dir(t.chroot()).expect("creating chroot/");
        let (cert, key) = self_signed(domain);
        std::fs::write(
            t.certs_dir().join(format!("{domain}.pem")),
            format!("{cert}{key}"),
        )
        .expect("writing the PEM bundle");
        std::fs::write(t.ca(), cert).expect("writing ca.pem");
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn certs_dir(&self) -> PathBuf {
        self.path().join("certs")
    }
    pub fn chroot(&self) -> PathBuf {
        self.path().join("chroot")
    }
    pub fn ca(&self) -> PathBuf {
        self.path().join("ca.pem")
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("haproxy.cfg")
    }
}

/// A self-signed P-256 certificate for `domain`, valid from yesterday for 30
/// days: `(certificate PEM, PKCS#8 key PEM)`.
pub fn self_signed(domain: &str) -> (String, String) {
    self_signed_names(&[domain])
}

/// `self_signed` for several names (the first is the CN).
pub fn self_signed_names(names: &[&str]) -> (String, String) {
    let domain = names.first().copied().unwrap_or("localhost");
    let key = rcgen::KeyPair::generate().expect("generating a P-256 key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate parameters");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params.self_signed(&key).expect("self-signing");
    (cert.pem(), key.serialize_pem())
}

// ---------------------------------------------------------------- haproxy

/// The real haproxy binary. Missing haproxy is a test failure, never a skip:
/// these tests are the proof that rendered configs work.
pub fn haproxy() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "haproxy is not installed (not on PATH, not in /usr/sbin): these tests run the real \
                 HAProxy; install it (apt-get install haproxy / dnf install haproxy)"
            )
        })
}

/// The installed HAProxy's version, from `haproxy -v`'s first line.
pub fn haproxy_version() -> String {
    let out = Command::new(haproxy())
        .arg("-v")
        .output()
        .expect("running haproxy -v");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("HAProxy version "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected `haproxy -v` output: {text}"))
        .to_string()
}

/// Writes `cfg` to `path` and runs `haproxy -c -f path`. Ok when HAProxy says
/// the configuration is valid and printed no warning or alert; Err with
/// HAProxy's full output otherwise.
pub fn haproxy_check(cfg: &str, path: &Path) -> Result<(), String> {
    std::fs::write(path, cfg).expect("writing haproxy.cfg");
    let out = run(Command::new(haproxy()).arg("-c").arg("-f").arg(path), 30);
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    if out.status.success() && !text.contains("[WARNING]") && !text.contains("[ALERT]") {
        Ok(())
    } else {
        Err(format!("haproxy -c exited with {}:\n{text}", out.status))
    }
}

/// Checks `cfg` with `haproxy -c` (no warning allowed), writes it to
/// `dir.config()` and runs HAProxy on it in the foreground until every one
/// of `ports` on 127.0.0.1 accepts connections.
pub fn start_checked_haproxy(cfg: &str, dir: &TestDir, ports: &[u16]) -> ProcessGuard {
    if let Err(e) = haproxy_check(cfg, &dir.config()) {
        panic!("{e}\n{cfg}");
    }
    let mut guard = ProcessGuard::spawn(
        "haproxy",
        Command::new(haproxy())
            .arg("-db")
            .arg("-f")
            .arg(dir.config()),
        &dir.path().join("haproxy.log"),
    );
    for port in ports {
        wait_for_port(*port, &mut guard);
    }
    guard
}

// ---------------------------------------------------------------- processes

/// Kills (SIGKILL) and reaps the child when dropped, also when a test panics;
/// then shows the child's log if the test is failing.
pub struct ProcessGuard {
    child: Child,
    name: String,
    log: Option<PathBuf>,
}

impl ProcessGuard {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> ProcessGuard {
        let file = std::fs::File::create(log).expect("creating the log file");
        pdeath::die_with_parent(cmd, libc::SIGKILL);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("cloning the log handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ProcessGuard {
            child,
            name: name.into(),
            log: Some(log.to_path_buf()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics (with the log) if the process has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early with {status}:\n{}",
                self.name,
                self.log_text()
            );
        }
    }

    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}) log ----\n{}",
                self.name,
                self.child.id(),
                self.log_text()
            );
        }
    }
}

/// Output of a finished command.
pub struct Ran {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

/// Runs `cmd` (stdin empty) and collects its output; kills it after `secs`
/// seconds and panics, so a hung client cannot hang the test run.
pub fn run(cmd: &mut Command, secs: u64) -> Ran {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {shown}: {e}"));
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{shown} did not finish within {secs}s");
            }
        }
    };
    Ran {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- network

/// A TCP port free on 127.0.0.1 right now (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, guard: &mut ProcessGuard) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        guard.assert_running();
        if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after 15s:\n{}",
            guard.log_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether this process runs as root (a live HAProxy must chroot and setuid).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
