//! A real BIND 9 (`named`) on loopback, for tests of DNS-01: authoritative
//! only (`recursion no`), one key allowed to change TXT records by dynamic
//! update (`update-policy { grant KEY zonesub TXT; }`), no rndc channel.
//!
//! ```ignore
//! let bind = Bind::start();                       // example.test, NS ns1 -> 127.0.0.1
//! let bind = Bind::builder()                      // or configured:
//!     .zone("example.test").zone("other.test")    //   zones (the first holds the NS names)
//!     .static_ns(Ipv4Addr::new(127, 0, 0, 2))     //   + NS ns2 -> 127.0.0.2, a static copy
//!     .start();
//! bind.addr();              // 127.0.0.1:PORT, the primary (send updates here)
//! bind.key_file;            // tsig-keygen's file for bind.key_name (0600)
//! bind.wrong_key_file;      // same key name, another secret (0600): BADSIG
//! bind.txt("_acme-challenge.example.test");         // the primary's TXT values, via dig
//! bind.txt_at(Ipv4Addr::new(127, 0, 0, 2), "...");   // another server's
//! ```
//!
//! What `start` sets up:
//! - The primary `named` on 127.0.0.1:PORT (a free port, not 53), holding
//!   every zone with SOA, NS records and the NS names' A records (in the
//!   first zone), updates allowed for the key, its journal in the temp dir.
//! - One more `named` per [`BindBuilder::static_ns`] address, on that
//!   address and the same PORT, holding a static copy of the zones as they
//!   were at start: it never gets updates (no NOTIFY, no transfers), the
//!   stand-in for a secondary that lags. Every server of a zone answers on
//!   the same port, as in production on 53.
//! - named runs in the foreground (`-g`, `-4`), `controls { };` (no rndc
//!   port), `listen-on-v6 { none; }`, as the user running the test (root
//!   here: no `-u`, so the temp dir needs no chown).
//!
//! Gotchas this module handles:
//! - named listens only on addresses that are on an interface: 127.0.0.2 is
//!   routed to `lo` but not on it, so `named` ignores it. A static NS on an
//!   address other than 127.0.0.1 needs [`BindBuilder::private_network`]:
//!   the calling *thread* moves into a network namespace of its own
//!   (`unshare(CLONE_NEWNET)`, root only) with `lo` up and the addresses
//!   added there; the host's interfaces are never touched. Threads that
//!   thread spawns and every child process (named, dig, nsupdate, hooks)
//!   live there too; other tests' threads do not. Keep the whole test in
//!   that thread.
//! - Free ports are found by binding 127.0.0.1:0 and releasing: `start`
//!   retries with a new port (3 times) when named exits during startup.
//! - named gets `PR_SET_PDEATHSIG(SIGKILL)` (see `pdeath`): keep the `Bind`
//!   in the test (thread) that started it. Dropping it kills (SIGKILL, by
//!   PID) and reaps every named, then removes the temp dir; a panicking test
//!   prints their logs.
//! - Readiness: `start` returns once every instance answers the first
//!   zone's SOA over UDP (dig), not when the port merely opens.
//!
//! Missing tools (named, tsig-keygen, dig) make the harness panic with the
//! install command: never a silent skip.

use super::ProcessGuard;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NAMED: &str = "/usr/sbin/named";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 3;

/// How to start the servers; [`Bind::start`] is `Bind::builder().start()`.
#[derive(Clone, Debug)]
pub struct BindBuilder {
    zones: Vec<String>,
    static_ns: Vec<Ipv4Addr>,
    key_name: String,
    records: Vec<(String, String)>,
    private_network: bool,
}

impl Default for BindBuilder {
    fn default() -> Self {
        BindBuilder {
            zones: Vec::new(),
            static_ns: Vec::new(),
            key_name: "edgeup-test".into(),
            records: Vec::new(),
            private_network: false,
        }
    }
}

impl BindBuilder {
    /// A zone the servers hold (default: only `example.test`). The first
    /// zone holds the NS names' A records (ns1.FIRST, ns2.FIRST, ...);
    /// for the others those names are out of zone.
    pub fn zone(mut self, name: &str) -> Self {
        self.zones.push(name.trim_end_matches('.').to_string());
        self
    }

    /// One more NS (nsN.FIRST -> `addr`), served by a named of its own on
    /// `addr` with a static copy of the zones that never sees updates.
    /// Addresses other than 127.0.0.1 need [`BindBuilder::private_network`].
    pub fn static_ns(mut self, addr: Ipv4Addr) -> Self {
        self.static_ns.push(addr);
        self
    }

    /// The key's name (default `edgeup-test`).
    pub fn key_name(mut self, name: &str) -> Self {
        self.key_name = name.to_string();
        self
    }

    /// A zone-file line added to `zone` at start (e.g. `www IN A 127.0.0.1`).
    pub fn record(mut self, zone: &str, line: &str) -> Self {
        self.records.push((zone.to_string(), line.to_string()));
        self
    }

    /// Moves the calling thread into a network namespace of its own, with
    /// `lo` up and every static NS address on it (root only; see the module
    /// doc). Also isolates the test's ports from everything else.
    pub fn private_network(mut self) -> Self {
        self.private_network = true;
        self
    }

    pub fn start(self) -> Bind {
        for tool in [NAMED, "/usr/sbin/tsig-keygen", "/usr/bin/dig"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install bind9 bind9-dnsutils"
            );
        }
        if self.private_network {
            enter_private_network(&self.static_ns);
        }
        let mut builder = self;
        if builder.zones.is_empty() {
            builder.zones.push("example.test".into());
        }
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match builder.try_start() {
                Ok(bind) => return bind,
                Err(e) => last_error = e,
            }
        }
        panic!("named did not start ({START_ATTEMPTS} attempts): {last_error}");
    }

    fn try_start(&self) -> Result<Bind, String> {
        let dir = tempfile::Builder::new()
            .prefix("edgeup-bind-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().to_path_buf();
        let key_file = root.join("tsig.key");
        let wrong_key_file = root.join("wrong-tsig.key");
        keygen(&self.key_name, &key_file);
        keygen(&self.key_name, &wrong_key_file);
        let port = free_port(&self.static_ns);
        let first = self.zones.first().cloned().unwrap_or_default();
        let mut ns: Vec<(String, Ipv4Addr)> = vec![(format!("ns1.{first}"), Ipv4Addr::LOCALHOST)];
        for (i, addr) in self.static_ns.iter().enumerate() {
            ns.push((format!("ns{}.{first}", i + 2), *addr));
        }
        let mut instances = Vec::new();
        for (i, (_, addr)) in ns.iter().enumerate() {
            let primary = i == 0;
            let idir = root.join(format!("ns{}", i + 1));
            fs::create_dir_all(&idir).map_err(|e| e.to_string())?;
            let mut zones_conf = String::new();
            for zone in &self.zones {
                let file = idir.join(format!("{zone}.db"));
                fs::write(&file, self.zone_file(zone, &ns)).map_err(|e| e.to_string())?;
                let policy = if primary {
                    format!(
                        "update-policy {{ grant \"{}\" zonesub TXT; }}; journal \"{}.jnl\";",
                        self.key_name,
                        file.display()
                    )
                } else {
                    String::new()
                };
                zones_conf.push_str(&format!(
                    "zone \"{zone}\" {{ type primary; file \"{}\"; notify no; {policy} }};\n",
                    file.display()
                ));
            }
            let conf = format!(
                "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ {addr}; }};\n  \
                 listen-on-v6 {{ none; }};\n  recursion no;\n  dnssec-validation no;\n  notify no;\n  \
                 pid-file none;\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
                 dump-file \"{d}/cache.db\";\n  statistics-file \"{d}/stats\";\n}};\n\
                 controls {{ }};\ninclude \"{key}\";\n{zones_conf}",
                d = idir.display(),
                key = key_file.display(),
            );
            let conf_path = idir.join("named.conf");
            fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(NAMED);
            cmd.args(["-4", "-g", "-c"]).arg(&conf_path);
            let guard = ProcessGuard::spawn(
                &format!("named ns{} ({addr}:{port})", i + 1),
                &mut cmd,
                &idir.join("named.log"),
            );
            instances.push((*addr, guard));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for (addr, guard) in &mut instances {
            loop {
                if let Ok(Some(_)) = guard_exited(guard) {
                    return Err(format!(
                        "named on {addr}:{port} exited during startup:\n{}",
                        guard.log_text()
                    ));
                }
                let soa = dig(*addr, port, &first, "SOA");
                if !soa.trim().is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "named on {addr}:{port} did not answer within {START_TIMEOUT:?}:\n{}",
                        guard.log_text()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(Bind {
            port,
            key_name: self.key_name.clone(),
            key_file,
            wrong_key_file,
            zones: self.zones.clone(),
            ns,
            instances,
            dir,
        })
    }

    fn zone_file(&self, zone: &str, ns: &[(String, Ipv4Addr)]) -> String {
        let first = self.zones.first().map(String::as_str).unwrap_or_default();
        let mut text =
            format!("$TTL 60\n@ IN SOA ns1.{first}. hostmaster.{first}. 1 3600 600 86400 60\n");
        for (name, _) in ns {
            text.push_str(&format!("@ IN NS {name}.\n"));
        }
        if zone == first {
            for (name, addr) in ns {
                text.push_str(&format!("{name}. IN A {addr}\n"));
            }
        }
        for (z, line) in &self.records {
            if z == zone {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

fn guard_exited(guard: &mut ProcessGuard) -> std::io::Result<Option<()>> {
    // ProcessGuard::assert_running panics; here an early exit means retry.
    let pid = guard.pid();
    let alive = Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
    Ok(if alive { None } else { Some(()) })
}

/// The running servers. Dropping it kills and reaps every named.
pub struct Bind {
    /// The port every server listens on (UDP and TCP).
    pub port: u16,
    pub key_name: String,
    /// The key the primary grants TXT updates to (tsig-keygen's format, 0600).
    pub key_file: PathBuf,
    /// The same key name with another secret (0600): updates get BADSIG.
    pub wrong_key_file: PathBuf,
    pub zones: Vec<String>,
    /// NS names and addresses, the primary's first.
    pub ns: Vec<(String, Ipv4Addr)>,
    instances: Vec<(Ipv4Addr, ProcessGuard)>,
    // Last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl Bind {
    pub fn builder() -> BindBuilder {
        BindBuilder::default()
    }

    /// `example.test` on one server, 127.0.0.1.
    pub fn start() -> Bind {
        Bind::builder().start()
    }

    /// The primary: 127.0.0.1:port (updates and zone discovery go here).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The temp dir holding configs, zone files, journals and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The primary's TXT values at `name` (each record's strings joined).
    pub fn txt(&self, name: &str) -> Vec<String> {
        self.txt_at(Ipv4Addr::LOCALHOST, name)
    }

    /// The TXT values at `name` on the server at `addr`, sorted.
    pub fn txt_at(&self, addr: Ipv4Addr, name: &str) -> Vec<String> {
        let out = dig(addr, self.port, name, "TXT");
        let mut values: Vec<String> = out.lines().map(join_quoted).collect();
        values.sort();
        values
    }

    /// Every named's log, for a failing test's message.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|(addr, g)| format!("---- named {addr} ----\n{}", g.log_text()))
            .collect()
    }
}

/// `dig +short` over UDP, one try of one second, no recursion.
fn dig(addr: Ipv4Addr, port: u16, name: &str, rtype: &str) -> String {
    let out = super::run(
        Command::new("/usr/bin/dig").args([
            "+short",
            "+norecurse",
            "+time=1",
            "+tries=1",
            "-p",
            &port.to_string(),
            &format!("@{addr}"),
            name,
            rtype,
        ]),
        10,
    );
    if out.status.success() {
        out.stdout_text()
    } else {
        String::new()
    }
}

/// `"ab" "cd"` (dig's TXT presentation) -> `abcd`.
fn join_quoted(line: &str) -> String {
    let mut value = String::new();
    let mut inside = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => inside = !inside,
            '\\' if inside => {
                if let Some(n) = chars.next() {
                    value.push(n);
                }
            }
            c if inside => value.push(c),
            _ => {}
        }
    }
    value
}

fn keygen(name: &str, path: &Path) {
    let out = super::run(
        Command::new("/usr/sbin/tsig-keygen").args(["-a", "hmac-sha256", name]),
        10,
    );
    assert!(out.status.success(), "tsig-keygen: {}", out.stderr_text());
    fs::write(path, out.stdout).expect("writing the key file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600 key file");
}

/// A port free for UDP and TCP on 127.0.0.1 and on each of `others`.
fn free_port(others: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let port = super::free_port();
        let all_free = std::iter::once(Ipv4Addr::LOCALHOST)
            .chain(others.iter().copied())
            .all(|ip| {
                UdpSocket::bind((ip, port)).is_ok()
                    && std::net::TcpListener::bind((ip, port)).is_ok()
            });
        if all_free {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on every test address");
}

/// This thread into a network namespace of its own: lo up, `addrs` on it.
fn enter_private_network(addrs: &[Ipv4Addr]) {
    assert!(
        super::is_root(),
        "Bind::builder().private_network() needs root (unshare(CLONE_NEWNET))"
    );
    // SAFETY: unshare(2) only changes this thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    let ip = |args: &[&str]| {
        let out = super::run(Command::new("/usr/sbin/ip").args(args), 10);
        assert!(out.status.success(), "ip {args:?}: {}", out.stderr_text());
    };
    ip(&["link", "set", "lo", "up"]);
    for addr in addrs {
        if *addr != Ipv4Addr::LOCALHOST {
            ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"]);
        }
    }
}
