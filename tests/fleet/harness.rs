//! The fleet under test: containers booted from the fleet rootfs, each in a
//! network namespace of its own (a veth pair with 10.231.N.1 on the host
//! and 10.231.N.2 inside), running sshd; a key pair and known_hosts of the
//! test's own; and `edgeup fleet` runs with the built binary.

use crate::container::{Boot, Container, Netns, fleet_rootfs, stdout};
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `edgeup fleet` run may take before the test kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// Host tools the fleet test needs; a missing one fails the test.
pub fn require_tools() {
    crate::container::require(&[
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("openssl", "openssl"),
    ]);
}

pub struct Spec {
    pub name: &'static str,
    /// Its network namespace is 10.231.`subnet`.0/24.
    pub subnet: u8,
    pub ssh_port: u16,
    /// A non-root login with passwordless sudo (`become: true`).
    pub sudo_user: bool,
}

/// A booted host. Fields drop in order: the container powers off, then its
/// namespace and veth go.
pub struct Host {
    pub c: Container,
    pub ns: Netns,
    pub name: &'static str,
    pub ssh_port: u16,
}

impl Host {
    pub fn domain(&self) -> String {
        format!("{}.fleet.test", self.name)
    }

    /// sshd's lines in the journal, selected by the identifier sshd puts in
    /// each message. Not `-u ssh.service`: journald finds a message's unit
    /// from the sender's /proc entry, and on a loaded machine an sshd
    /// process that logged "Disconnected" and exited at once is gone by
    /// then, so its last lines carry no unit (a CI run lost them that way).
    fn sshd_log(&self, format: &str) -> String {
        self.c
            .ok(&format!("journalctl -t sshd --no-pager -o {format}"))
    }

    /// How many public-key logins sshd has accepted so far.
    pub fn logins(&self) -> usize {
        let log = self.sshd_log("cat");
        log.matches("Accepted publickey").count()
    }

    /// When sshd accepted the first login and when that connection ended
    /// (a run is one ssh session per host), in Unix seconds from the
    /// journal (all containers share the kernel's clock).
    pub fn first_session(&self) -> (f64, f64) {
        // sshd logs the disconnect a moment after the run's session ended;
        // on a loaded 2-core machine the journal can lag by seconds (a 10 s
        // bound flaked). A poll: it returns as soon as both lines are there.
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let log = self.sshd_log("short-unix");
            let at = |needle: &str| {
                log.lines()
                    .find(|l| l.contains(needle))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|t| t.parse::<f64>().ok())
            };
            if let (Some(login), Some(logout)) =
                (at("Accepted publickey"), at("Disconnected from user"))
            {
                return (login, logout);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no login and disconnect in sshd's log:\n{log}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The test's private ssh setup and scratch space. Dropping it ends any ssh
/// process still referring to it (of a run that failed half-way), then
/// deletes it.
pub struct Operator {
    pub dir: tempfile::TempDir,
    pub public_key: String,
}

impl Operator {
    pub fn new() -> Operator {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "edgeup-fleet-test",
                "-f",
            ])
            .arg(&key)
            .output()
            .expect("run ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public_key = fs::read_to_string(key.with_extension("pub")).expect("public key");
        // The operator's ssh configuration, as ~/.ssh/config would hold it, but
        // private to the test: its own known_hosts, nothing of root's. edgeup
        // runs `ssh` from PATH; this wrapper hands it the file.
        let config = dir.path().join("ssh_config");
        fs::write(
            &config,
            format!(
                "UserKnownHostsFile {}\nGlobalKnownHostsFile /dev/null\nLogLevel ERROR\n",
                dir.path().join("known_hosts").display()
            ),
        )
        .expect("ssh_config");
        fs::write(dir.path().join("known_hosts"), "").expect("known_hosts");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("bin dir");
        let wrapper = bin.join("ssh");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                config.display()
            ),
        )
        .expect("ssh wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
        Operator { dir, public_key }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn identity(&self) -> PathBuf {
        self.path("id_ed25519")
    }

    pub fn known_hosts(&self) -> String {
        fs::read_to_string(self.path("known_hosts")).expect("known_hosts")
    }

    /// Boots one host: own host keys, the operator's key for root, sshd on
    /// `ssh_port`; with `sudo_user`, a `deploy` login with passwordless sudo
    /// and a `needpw` login whose sudo asks for a password. A tiny backend
    /// answers on 127.0.0.1:3000 inside.
    pub fn boot(&self, spec: &Spec) -> Host {
        let ns = Netns::create(spec.subnet);
        let public_key = self.public_key.clone();
        let port = spec.ssh_port;
        let c = Boot::new(fleet_rootfs(), &format!("fleet-{}", spec.name))
            .network_namespace(ns.path())
            .prepare(move |root| {
                let out = Command::new("ssh-keygen")
                    .arg("-A")
                    .arg("-f")
                    .arg(root)
                    .output()
                    .expect("run ssh-keygen -A");
                assert!(out.status.success(), "ssh-keygen -A failed");
                let ssh_dir = root.join("root/.ssh");
                fs::create_dir_all(&ssh_dir).expect("root/.ssh");
                fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
                let keys = ssh_dir.join("authorized_keys");
                fs::write(&keys, &public_key).expect("authorized_keys");
                fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).expect("chmod");
                if port != 22 {
                    fs::write(
                        root.join("etc/ssh/sshd_config.d/port.conf"),
                        format!("Port {port}\n"),
                    )
                    .expect("sshd port");
                }
            })
            .start();
        let host = Host {
            c,
            ns,
            name: spec.name,
            ssh_port: spec.ssh_port,
        };
        host.c.ok(&format!(
            "mkdir -p /srv/app && echo 'fleet host {}' > /srv/app/index.html && \
             systemd-run --unit=fleet-app /usr/bin/python3 -m http.server 3000 \
             --bind 127.0.0.1 --directory /srv/app",
            spec.name
        ));
        if spec.sudo_user {
            host.c.ok("for u in deploy needpw; do \
                   useradd -m -s /bin/sh $u && usermod -p '*' $u && \
                   install -d -m 700 -o $u -g $u /home/$u/.ssh && \
                   install -m 600 -o $u -g $u /root/.ssh/authorized_keys /home/$u/.ssh/ \
                   || exit 1; \
                 done && \
                 usermod -aG sudo needpw && \
                 echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && \
                 chmod 440 /etc/sudoers.d/deploy");
        }
        // ssh.service is Type=notify: active means sshd listens.
        host.c.ok(
            "for i in $(seq 100); do systemctl is-active --quiet ssh.service && exit 0; sleep 0.1; done; \
             systemctl status ssh.service; exit 1",
        );
        host
    }

    /// `edgeup fleet ARGS` as the operator would run it (with the test's ssh
    /// configuration); every stdout line must be JSON when `--json` is given.
    pub fn fleet(&self, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeup"))
            .arg("fleet")
            .args(args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            // The run's control sockets and staged files go here, so the
            // guard finds anything left behind.
            .env("TMPDIR", self.dir.path())
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start edgeup fleet");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for edgeup") {
                break status;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("edgeup fleet {args:?} did not finish within {RUN_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        let json = args.contains(&"--json");
        let events = if json {
            stdout
                .lines()
                .map(|l| {
                    let event: Value = serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\nstderr:\n{stderr}"));
                    // Every line in the protocol's version (README: "Fleet").
                    assert_eq!(event["v"], 1, "{l}");
                    event
                })
                .collect()
        } else {
            Vec::new()
        };
        Run {
            code: status.code().unwrap_or(-1),
            events,
            stdout,
            stderr,
            elapsed: started.elapsed(),
        }
    }

    /// Processes (other than this one) whose command line names the
    /// operator's directory: ssh processes a run left behind.
    pub fn leftovers(&self) -> Vec<u32> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let me = std::process::id();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Waits up to `within` for every leftover to exit; returns what remains.
    pub fn settle(&self, within: Duration) -> Vec<u32> {
        let deadline = Instant::now() + within;
        loop {
            let left = self.leftovers();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        for pid in self.leftovers() {
            // SAFETY: kill(2) on a process this test started (its command line
            // names the test's private directory).
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
}

/// One `edgeup fleet --json` run.
pub struct Run {
    pub code: i32,
    pub events: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Everything, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {} after {:.1?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// The `host_recap` line of `host`.
    pub fn host(&self, host: &str) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == "host_recap" && e["host"] == host)
            .unwrap_or_else(|| panic!("no host_recap for {host}:\n{}", self.dump()))
    }

    pub fn hosts(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "host_recap")
            .map(|e| e["host"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The fleet's totals (the last line).
    pub fn totals(&self) -> &Value {
        let last = self
            .events
            .last()
            .unwrap_or_else(|| panic!("no output:\n{}", self.dump()));
        assert!(
            last["event"] == "recap" && last.get("host").is_none(),
            "the last line must be the fleet recap: {last}"
        );
        last
    }

    /// A host converged in this run: remote exit 0, no failed step.
    pub fn assert_converged(&self, host: &str) -> &Value {
        let r = self.host(host);
        assert_eq!(r["exit_code"], 0, "{host}: {r}\n{}", self.dump());
        assert_eq!(r["recap"]["failed"], 0, "{host}: {r}\n{}", self.dump());
        r
    }

    /// What was copied to `host`.
    pub fn copied(&self, host: &str) -> Vec<String> {
        self.host(host)["copied"]
            .as_array()
            .unwrap_or_else(|| panic!("{host}: no copied list:\n{}", self.dump()))
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn changed(&self, host: &str) -> u64 {
        self.host(host)["recap"]["changed"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }
}

/// The certificate part of the PEM HAProxy serves for `domain` on `host`.
pub fn served_cert(host: &Host, dir: &Path) -> PathBuf {
    let domain = host.domain();
    let pem = fs::read_to_string(host.c.path(&format!("/etc/haproxy/certs/{domain}.pem")))
        .unwrap_or_else(|e| panic!("{}: no PEM for {domain}: {e}", host.name));
    let end = "-----END CERTIFICATE-----";
    let cert_end = pem.find(end).expect("a certificate in the PEM") + end.len();
    let path = dir.join(format!("{}.crt", host.name));
    fs::write(&path, format!("{}\n", &pem[..cert_end])).expect("write cert");
    path
}

/// HTTPS to `host`'s own address in its namespace, name verified against `ca`.
pub fn https_get(host: &Host, ca: &Path) -> String {
    let domain = host.domain();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{domain}:443:{}", host.ns.addr)])
        .arg(format!("https://{domain}/"))
        .output()
        .expect("run curl");
    format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr))
}

/// Subject and names of a certificate file.
pub fn cert_names(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(cert)
        .output()
        .expect("run openssl");
    stdout(&out)
}
