//! A throwaway ACME CA on loopback: Pebble plus pebble-challtestsrv as its DNS,
//! for integration tests that issue real certificates over HTTP-01.
//!
//! ```ignore
//! let pebble = Pebble::start(http_port);      // validations go to 127.0.0.1:http_port
//! // ACME clients: directory URL `pebble.directory`, trusting `pebble.ca_bundle`
//! // (certbot: `--server` + env REQUESTS_CA_BUNDLE; instant-acme:
//! // `Account::builder_with_root(&pebble.ca_bundle)`).
//! let root = pebble.issuer_root();           // PEM, to verify what Pebble issued
//! pebble.verify_issued(&fullchain_pem).unwrap();
//! ```
//!
//! What `start` sets up, all bound to 127.0.0.1 only, on ports picked free:
//! - `pebble-challtestsrv` as a mock DNS server answering every A query with
//!   127.0.0.1 and (by default) no AAAA record. Its HTTP-01/HTTPS-01/TLS-ALPN-01
//!   responders are disabled; its management API (add records, DNS-01 TXT) is
//!   at [`Pebble::dns_management`].
//! - `pebble -dnsserver 127.0.0.1:<dns>` with `PEBBLE_VA_NOSLEEP=1`, serving
//!   ACME at [`Pebble::directory`] and its management API (roots,
//!   intermediates) at [`Pebble::management`], over HTTPS with a
//!   127.0.0.1/localhost/::1 certificate from a throwaway P-256 CA made here
//!   with rcgen ([`Pebble::ca_bundle`]; the Debian package ships no test certs).
//!   HTTP-01 validation requests go to `http://<name>:<http_port>/...` with
//!   `<name>` resolved by the mock DNS, i.e. to 127.0.0.1:`http_port`.
//!
//! Gotchas this module handles:
//! - Pebble's VA asks for AAAA first and dials the *first* address it gets, so
//!   challtestsrv's default `-defaultIPv6 ::1` makes every validation go to
//!   [::1]:http_port. We pass `-defaultIPv6 ""` (no AAAA answer) so it goes to
//!   127.0.0.1; set [`Options::ipv6`] to test validation over ::1.
//! - challtestsrv's defaults bind `:5002`, `:5003`, `:5001`, `:8053` and
//!   `:8055` on all interfaces; every one is overridden or disabled here.
//! - Pebble makes a new root and intermediate at every start: fetch them with
//!   [`Pebble::issuer_root`] / [`Pebble::intermediate`] from the same instance.
//! - Pebble rejects 5% of nonces by default (`badNonce`, like a real CA may);
//!   certbot and instant-acme retry. Pass `PEBBLE_WFE_NONCEREJECT=0` in
//!   [`Options::env`] for a fully deterministic run.
//! - Pebble reuses a valid authorization for the same identifier and account
//!   50% of the time: a second order may need no HTTP-01 request at all. Pass
//!   `PEBBLE_AUTHZREUSE=0` when a test asserts that validation traffic flows.
//! - Issued certificates are valid 5 years by default, so nothing is due for
//!   renewal: set [`Options::certificate_validity`] (e.g. 10 days).
//! - Readiness is probed with curl, not bare TCP connects, which Pebble logs
//!   as `TLS handshake error ... EOF`.
//! - Free ports are found by binding 127.0.0.1:0 and releasing, so another
//!   process can grab one in between: `start` retries with new ports (3 times)
//!   when a server exits during startup.
//! - The children get `PR_SET_PDEATHSIG(SIGKILL)`, so they die even if the test
//!   binary is SIGKILLed. Linux ties that to the *thread* that spawned them:
//!   keep a `Pebble` in the test (thread) that started it, never in a static
//!   shared across tests.
//!
//! Dropping the `Pebble` kills (SIGKILL) and reaps both processes, then removes
//! the temporary directory; if the thread is panicking it prints both logs.
//! Missing tools (pebble, pebble-challtestsrv, curl, openssl, certbot) make the
//! harness panic with the install command: never a silent skip.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `start` waits for the directory to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Startup attempts with fresh ports when a server exits early (port taken).
const START_ATTEMPTS: usize = 3;

/// How to start the test bed; `Options::new(http_port)` is what `Pebble::start` uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where HTTP-01 validation requests arrive: 127.0.0.1:`http_port`
    /// (the test's stand-in for HAProxy's :80).
    pub http_port: u16,
    /// The AAAA answer of the mock DNS. `None` (default): no AAAA record, so
    /// Pebble validates over 127.0.0.1. `Some(::1)`: Pebble validates over
    /// [::1]:http_port (it prefers AAAA).
    pub ipv6: Option<Ipv6Addr>,
    /// Extra environment for pebble, e.g. `("PEBBLE_WFE_NONCEREJECT", "0")`,
    /// `("PEBBLE_AUTHZREUSE", "0")`, `("PEBBLE_VA_ALWAYS_VALID", "1")`.
    pub env: Vec<(String, String)>,
    /// Validity of issued certificates (config `certificateValidityPeriod`);
    /// `None`: Pebble's default, 5 years. Short values make renewal due.
    pub certificate_validity: Option<Duration>,
    /// The DNS server Pebble's validations ask (`-dnsserver`); `None`: the
    /// test bed's challtestsrv. A real BIND for dns-01 tests.
    pub dns_server: Option<String>,
}

impl Options {
    pub fn new(http_port: u16) -> Options {
        Options {
            http_port,
            ipv6: None,
            env: Vec::new(),
            certificate_validity: None,
            dns_server: None,
        }
    }

    /// `new(http_port)` with every authorization validated afresh (no reuse)
    /// and no good nonce refused: orders and validations happen exactly as
    /// the tests count them.
    pub fn every_order_validated(http_port: u16) -> Options {
        Options::new(http_port)
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
    }

    /// Adds one environment variable for pebble.
    pub fn env(mut self, key: &str, value: &str) -> Options {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// A running Pebble + challtestsrv pair; see the module documentation.
pub struct Pebble {
    /// ACME directory URL, `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// PEM of the CA that signed Pebble's own HTTPS certificate: what ACME
    /// clients must trust to talk to `directory` and `management`.
    pub ca_bundle: PathBuf,
    /// Pebble's management API base URL, `https://127.0.0.1:PORT`.
    pub management: String,
    /// challtestsrv's management API base URL, `http://127.0.0.1:PORT`
    /// (`/add-a`, `/set-txt`, ... see pebble-challtestsrv(1)).
    pub dns_management: String,
    /// The mock DNS server, `127.0.0.1:PORT` (UDP and TCP).
    pub dns: String,
    /// The port validation requests go to (as given in `Options`).
    pub http_port: u16,
    /// Pebble's TLS-ALPN-01 port: a free port nothing listens on.
    pub tls_port: u16,
    // Declared before `dir`: fields drop in order, so the processes die
    // before their directory is removed.
    pebble: Proc,
    challtestsrv: Proc,
    dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts the test bed with HTTP-01 validations going to 127.0.0.1:`http_port`.
    pub fn start(http_port: u16) -> Pebble {
        Pebble::start_with(Options::new(http_port))
    }

    /// Starts the test bed as `options` say; panics (with the servers' logs)
    /// when it does not come up.
    pub fn start_with(options: Options) -> Pebble {
        let pebble_bin = tool("pebble", "apt-get install pebble");
        let challtestsrv_bin = tool(
            "pebble-challtestsrv",
            "apt-get install pebble (it ships pebble-challtestsrv)",
        );
        tool("curl", "apt-get install curl");
        let dir = tempfile::Builder::new()
            .prefix("edgeup-pebble-")
            .tempdir()
            .expect("creating the Pebble temporary directory");
        let ca_bundle = dir.path().join("ca.pem");
        let (ca_pem, cert_pem, key_pem) = https_certificate();
        fs::write(&ca_bundle, ca_pem).expect("writing ca.pem");
        fs::write(dir.path().join("cert.pem"), cert_pem).expect("writing cert.pem");
        fs::write(dir.path().join("key.pem"), key_pem).expect("writing key.pem");

        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match try_start(&options, &dir, &pebble_bin, &challtestsrv_bin, attempt) {
                Ok(started) => {
                    let Started {
                        pebble,
                        challtestsrv,
                        listen,
                        mgmt,
                        dns,
                        dns_mgmt,
                        tls_port,
                    } = started;
                    return Pebble {
                        directory: format!("https://127.0.0.1:{listen}/dir"),
                        ca_bundle,
                        management: format!("https://127.0.0.1:{mgmt}"),
                        dns_management: format!("http://127.0.0.1:{dns_mgmt}"),
                        dns: format!("127.0.0.1:{dns}"),
                        http_port: options.http_port,
                        tls_port,
                        pebble,
                        challtestsrv,
                        dir,
                    };
                }
                Err(e) => failures.push(format!("attempt {attempt}: {e}")),
            }
        }
        panic!(
            "the Pebble test bed did not start:\n{}",
            failures.join("\n\n")
        );
    }

    /// The temporary directory holding the CA, config and logs (unique per
    /// instance; it appears in pebble's command line).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Process ids of pebble and pebble-challtestsrv.
    pub fn pids(&self) -> [u32; 2] {
        [self.pebble.pid(), self.challtestsrv.pid()]
    }

    /// PEM of Pebble's issuing root (`/roots/0`). New at every start.
    pub fn issuer_root(&self) -> String {
        self.get(&format!("{}/roots/0", self.management))
    }

    /// PEM of Pebble's intermediate that signs leaf certificates
    /// (`/intermediates/0`). New at every start.
    pub fn intermediate(&self) -> String {
        self.get(&format!("{}/intermediates/0", self.management))
    }

    /// HTTPS GET of `url` trusting `ca_bundle` (e.g. the directory or a
    /// management path); panics on a transport error or a non-2xx status,
    /// with the servers' log tails.
    pub fn get(&self, url: &str) -> String {
        match curl_get(&self.ca_bundle, url) {
            Ok(body) => body,
            Err(e) => panic!("GET {url}: {e}\n{}", self.logs()),
        }
    }

    /// Verifies a PEM bundle Pebble issued: the first CERTIFICATE block is the
    /// leaf, the others (if any) are untrusted intermediates; when there are
    /// none, Pebble's current intermediate is used. Other blocks (a private key
    /// in a HAProxy bundle) are ignored. Runs `openssl verify` against
    /// `issuer_root()`; Err carries openssl's output.
    pub fn verify_issued(&self, bundle_pem: &str) -> Result<(), String> {
        let openssl = tool("openssl", "apt-get install openssl");
        let certs = pem_certificates(bundle_pem);
        let Some((leaf, chain)) = certs.split_first() else {
            return Err("no CERTIFICATE block in the bundle".into());
        };
        let chain = if chain.is_empty() {
            self.intermediate()
        } else {
            chain.concat()
        };
        let work = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(self.path())
            .expect("creating a verify directory");
        let (root_path, chain_path, leaf_path) = (
            work.path().join("root.pem"),
            work.path().join("chain.pem"),
            work.path().join("leaf.pem"),
        );
        fs::write(&root_path, self.issuer_root()).expect("writing root.pem");
        fs::write(&chain_path, chain).expect("writing chain.pem");
        fs::write(&leaf_path, leaf).expect("writing leaf.pem");
        let out = super::run(
            Command::new(openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(&root_path)
                .arg("-untrusted")
                .arg(&chain_path)
                .arg(&leaf_path),
            30,
        );
        let text = format!("{}{}", out.stdout_text(), out.stderr_text());
        if out.status.success() && text.trim_end().ends_with(": OK") {
            Ok(())
        } else {
            Err(format!(
                "openssl verify exited with {}:\n{text}",
                out.status
            ))
        }
    }

    /// The last lines of both servers' logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.pebble.tail(), self.challtestsrv.tail())
    }

    /// Pebble's whole log (it logs every new account and order).
    pub fn ca_log(&self) -> String {
        fs::read_to_string(&self.pebble.log).unwrap_or_default()
    }
}

/// The processes and ports of one successful start.
struct Started {
    pebble: Proc,
    challtestsrv: Proc,
    listen: u16,
    mgmt: u16,
    dns: u16,
    dns_mgmt: u16,
    tls_port: u16,
}

fn try_start(
    options: &Options,
    dir: &tempfile::TempDir,
    pebble_bin: &Path,
    challtestsrv_bin: &Path,
    attempt: usize,
) -> Result<Started, String> {
    let dir = dir.path();
    let ports = distinct_free_ports(5, options.http_port);
    let [listen, mgmt, dns, dns_mgmt, tls_port] =
        [ports[0], ports[1], ports[2], ports[3], ports[4]];

    let ipv6 = options.ipv6.map(|a| a.to_string()).unwrap_or_default();
    let mut challtestsrv = Proc::spawn(
        "pebble-challtestsrv",
        Command::new(challtestsrv_bin)
            .arg("-dns01")
            .arg(format!("127.0.0.1:{dns}"))
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .arg("-management")
            .arg(format!("127.0.0.1:{dns_mgmt}"))
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", &ipv6])
            .current_dir(dir),
        &dir.join(format!("challtestsrv-{attempt}.log")),
    )?;
    // challtestsrv opens the DNS listeners before its management server.
    wait_until(&mut [&mut challtestsrv], || {
        port_open(dns) && port_open(dns_mgmt)
    })?;

    let mut config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": options.http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    if let Some(validity) = options.certificate_validity {
        config["pebble"]["certificateValidityPeriod"] = validity.as_secs().into();
    }
    let config_path = dir.join("pebble-config.json");
    fs::write(
        &config_path,
        serde_json::to_string_pretty(&config).expect("serializing the Pebble config"),
    )
    .expect("writing pebble-config.json");

    let mut cmd = Command::new(pebble_bin);
    cmd.arg("-config")
        .arg(&config_path)
        .arg("-dnsserver")
        .arg(
            options
                .dns_server
                .clone()
                .unwrap_or_else(|| format!("127.0.0.1:{dns}")),
        )
        .env("PEBBLE_VA_NOSLEEP", "1")
        .current_dir(dir);
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    let mut pebble = Proc::spawn(
        "pebble",
        &mut cmd,
        &dir.join(format!("pebble-{attempt}.log")),
    )?;

    let ca = dir.join("ca.pem");
    let directory = format!("https://127.0.0.1:{listen}/dir");
    let roots = format!("https://127.0.0.1:{mgmt}/roots/0");
    wait_until(&mut [&mut pebble, &mut challtestsrv], || {
        // curl only: a bare TCP probe makes Pebble log TLS handshake errors.
        curl_get(&ca, &directory).is_ok_and(|body| body.contains("newOrder"))
            && curl_get(&ca, &roots).is_ok()
    })
    .map_err(|e| format!("{e}\n{}", challtestsrv.tail()))?;
    Ok(Started {
        pebble,
        challtestsrv,
        listen,
        mgmt,
        dns,
        dns_mgmt,
        tls_port,
    })
}

/// Polls `ready` every 50 ms until it holds, a process exits, or `START_TIMEOUT`.
fn wait_until(procs: &mut [&mut Proc], mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        for p in procs.iter_mut() {
            if let Some(status) = p.exited() {
                return Err(format!(
                    "{} exited during startup with {status}\n{}",
                    p.name,
                    p.tail()
                ));
            }
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let tails: Vec<String> = procs.iter().map(|p| p.tail()).collect();
            return Err(format!(
                "not ready after {}s\n{}",
                START_TIMEOUT.as_secs(),
                tails.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// `n` distinct free ports on 127.0.0.1, none equal to `avoid`.
fn distinct_free_ports(n: usize, avoid: u16) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = super::free_port();
        if p != avoid && !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// `curl` GET over HTTPS trusting `ca`; Ok(body) on a 2xx answer.
fn curl_get(ca: &Path, url: &str) -> Result<String, String> {
    let out = super::run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "5"])
            .arg("--cacert")
            .arg(ca)
            .arg(url),
        15,
    );
    if out.status.success() {
        Ok(out.stdout_text())
    } else {
        Err(format!(
            "curl exited with {}: {}",
            out.status,
            out.stderr_text().trim()
        ))
    }
}

/// The CERTIFICATE blocks of a PEM text, each with its BEGIN/END lines.
pub fn pem_certificates(pem: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

/// A throwaway P-256 CA and a certificate it signs for Pebble's HTTPS
/// listeners (SANs localhost, 127.0.0.1, ::1), valid from yesterday for 30
/// days: `(CA PEM, certificate PEM, key PEM)`.
fn https_certificate() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
    };

    let ca_key = KeyPair::generate().expect("generating the test CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "edgeup test CA for Pebble HTTPS");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).expect("self-signing the test CA");
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().expect("generating the Pebble HTTPS key");
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("Pebble HTTPS certificate parameters");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut leaf);
    let cert = leaf
        .signed_by(&key, &issuer)
        .expect("signing the Pebble HTTPS certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Path of `name` on PATH (or /usr/bin, /usr/sbin); panics with `install` otherwise.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed (not on PATH): the Pebble test bed needs it; install it: {install}")
        })
}

/// A child process with its output in a log file: SIGKILLed and reaped on
/// drop (also on panic, then its log tail is printed), and sent SIGKILL by
/// the kernel if the spawning thread dies first.
struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc, String> {
        let file = fs::File::create(log).expect("creating a log file");
        let out = file.try_clone().expect("cloning a log handle");
        super::pdeath::die_with_parent(cmd, libc::SIGKILL);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Proc {
            child,
            name: name.into(),
            log: log.to_path_buf(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last 40 lines of the log, headed by the process name.
    fn tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "---- {} (pid {}) log tail, {} ----\n{}",
            self.name,
            self.pid(),
            self.log.display(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.tail());
        }
    }
}
