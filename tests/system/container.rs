//! A throwaway Debian machine: a debootstrap'd rootfs (built once per suite
//! and cached), copied fresh per scenario, booted with systemd as PID 1 by
//! systemd-nspawn, entered with nsenter. It shares the host's network, so
//! HAProxy's 80/443 inside and test servers on the host's loopback meet.
//! Dropping a `Container` powers it off and deletes its copy.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CACHE: &str = "/var/cache/edgeup-test";

/// Scenarios use the host's ports 80/443 and the shared apt cache: one at a
/// time across every test process on the machine (an flock, released when
/// the guard drops, even if the process dies).
pub fn exclusive() -> fs::File {
    fs::create_dir_all(CACHE).expect("create cache dir");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(CACHE).join("scenario.lock"))
        .expect("open scenario lock");
    file.lock().expect("lock scenario");
    file
}

/// Tools the harness needs; a missing one fails the test with the install hint.
pub fn require_tools() {
    for (tool, package) in [
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
    ] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: apt-get install {package}");
    }
    // SAFETY: geteuid cannot fail.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "system tests must run as root"
    );
}

/// The cached minimal rootfs for `suite`, built on first use.
pub fn base_rootfs(suite: &str) -> PathBuf {
    let base = Path::new(CACHE).join(suite);
    if base.join("usr/lib/systemd/systemd").exists() || base.join("lib/systemd/systemd").exists() {
        return base;
    }
    require_suite_support(suite);
    fs::create_dir_all(CACHE).expect("create cache dir");
    let tmp = Path::new(CACHE).join(format!("{suite}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    let started = Instant::now();
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd-sysv,dbus,ca-certificates",
            suite,
        ])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("run debootstrap");
    assert!(
        out.status.success(),
        "debootstrap {suite} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Container-friendly defaults: no getty on the console, a hostname.
    fs::write(tmp.join("etc/hostname"), "edgeup-test\n").expect("hostname");
    fs::rename(&tmp, &base).expect("publish rootfs");
    eprintln!("built {suite} rootfs in {:.0?}", started.elapsed());
    base
}

/// debootstrap must know `suite` and the archive keyring must hold its keys:
/// the release is verified against them (never `--no-check-gpg`). Debian
/// 12's own packages cover trixie: debootstrap 1.0.128+nmu2+deb12u2 has the
/// script, and debian-archive-keyring 2023.3+deb12u2 (a bookworm point
/// release) ships the Debian 13 keys in its default keyring.
fn require_suite_support(suite: &str) {
    let script = Path::new("/usr/share/debootstrap/scripts").join(suite);
    assert!(
        script.exists(),
        "debootstrap does not know {suite} ({} is missing): apt-get install debootstrap \
         (the bookworm package knows trixie)",
        script.display()
    );
    // Debian suites are checked against debian-archive-keyring.gpg, which
    // bundles the per-release keys that are also shipped one file each.
    // (read_to_string follows the script's symlink, e.g. trixie -> sid.)
    let uses_debian_keyring = fs::read_to_string(&script)
        .unwrap_or_default()
        .contains("debian-archive-keyring.gpg");
    let alias = matches!(
        suite,
        "sid" | "unstable" | "testing" | "stable" | "oldstable" | "oldoldstable" | "ceres"
    );
    if uses_debian_keyring && !alias {
        let key = format!("/usr/share/keyrings/debian-archive-{suite}-stable.gpg");
        assert!(
            Path::new(&key).exists(),
            "the archive keyring has no {suite} keys ({key} is missing): \
             apt-get install debian-archive-keyring (2023.3+deb12u2 or newer has trixie's)"
        );
    }
}

pub struct Container {
    pub root: PathBuf,
    nspawn: Child,
    /// Host PID of the container's init (systemd, PID 1 inside).
    pub init: u32,
}

impl Container {
    /// Copies the cached rootfs for `suite`, puts `binary` at /usr/local/bin/edgeup, and boots it.
    pub fn boot(suite: &str, name: &str, binary: &Path) -> Container {
        let base = base_rootfs(suite);
        let root = Path::new(CACHE).join(format!("run-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let cp = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&base)
            .arg(&root)
            .status()
            .expect("copy rootfs");
        assert!(cp.success(), "copying the rootfs failed");
        fs::copy(binary, root.join("usr/local/bin/edgeup")).expect("copy edgeup in");
        let archives = "/var/cache/apt/archives";
        fs::create_dir_all(format!("{archives}/partial")).expect("apt cache dir");
        let nspawn = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(&root)
            .args([
                "-b",
                "--console=passive",
                "--register=no",
                "--keep-unit",
                &format!("--bind={archives}:{archives}"),
                &format!("--machine=edgeup-{name}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-nspawn");
        let mut container = Container {
            root,
            init: 0,
            nspawn,
        };
        container.init = container.find_init();
        container.wait_running();
        container
    }

    /// The descendant of systemd-nspawn that is PID 1 in its namespace.
    fn find_init(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                panic!("systemd-nspawn exited early: {status}");
            }
            if let Some(pid) = descendant_init(self.nspawn.id()) {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("container init did not appear within 30s");
    }

    fn wait_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.sh("systemctl is-system-running");
            last = stdout(&out).trim().to_string();
            if last == "running" || last == "degraded" {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("container did not finish booting within 90s (state: {last})");
    }

    /// Runs a shell command inside the container.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.init.to_string(),
                "-a",
                "--",
                "/bin/sh",
                "-c",
                script,
            ])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Like `sh`, but the command must succeed.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed in the container ({}):\n{}\n{}",
            out.status,
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    /// A path inside the container, seen from the host.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM makes nspawn ask the container's systemd to power off.
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.nspawn.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.nspawn.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    let _ = self.nspawn.kill();
                    let _ = self.nspawn.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn descendant_init(pid: u32) -> Option<u32> {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let children =
            fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let status = fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|v| v.split_whitespace().last().unwrap_or("").to_string());
            if nspid.as_deref() == Some("1") {
                return Some(child);
            }
            queue.push(child);
        }
    }
    None
}
