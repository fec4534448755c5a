//! A throwaway Debian machine: a debootstrap'd rootfs (built once per suite
//! and cached), copied fresh per scenario, booted with systemd as PID 1 by
//! systemd-nspawn, entered with nsenter. It shares the host's network, so
//! HAProxy's 80/443 inside and test servers on the host's loopback meet.
//! Dropping a `Container` powers it off and deletes its copy.
//!
//! `Boot` adds options for other tests (tests/fleet): the "fleet" rootfs
//! (packages pre-installed, so a container needs no internet), no edgeup
//! binary, files prepared before boot, and a private network namespace
//! (`Netns`: a veth pair with addresses the test assigns) instead of the
//! host's network.

// Shared by two test targets; each uses a subset.
#![allow(dead_code)]

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
    remove_stale_containers();
    file
}

/// Containers and rootfs copies left by a test process that no longer
/// exists (SIGKILLed before its guards ran): a container still running
/// would hold the host's :80/:443 for the next scenario. Run under the
/// scenario lock, so no live scenario owns them.
fn remove_stale_containers() {
    let Ok(entries) = fs::read_dir(CACHE) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("run-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let root = entry.path();
        for nspawn in processes_using(&root) {
            eprintln!(
                "stopping a stale container of test process {pid}: {}",
                root.display()
            );
            stop(nspawn);
        }
        let _ = fs::remove_dir_all(&root);
    }
}

/// Processes whose command line names `root` (the nspawn of a copy).
fn processes_using(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|b| *b == 0)
                    .any(|arg| String::from_utf8_lossy(arg) == root)
            })
        })
        .collect()
}

/// SIGTERM (nspawn powers its container off), then SIGKILL after 30 s.
fn stop(pid: i32) {
    // SAFETY: kill(2) on a PID read from /proc; a reused PID that is gone
    // makes it fail with ESRCH.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new("/proc").join(pid.to_string()).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Fails the test (never skips) when a (tool, Debian package) is missing.
pub fn require(tools: &[(&str, &str)]) {
    for (tool, package) in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: apt-get install {package}");
    }
}

/// Tools the harness needs; a missing one fails the test with the install hint.
pub fn require_tools() {
    require(&[
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
    ]);
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
    /// Dropped after `drop` has powered the container off.
    _copy: RootCopy,
}

/// A fresh copy of a rootfs, deleted when dropped (also when a test fails
/// between copying and booting).
struct RootCopy(PathBuf);

impl Drop for RootCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Files to put in the copied rootfs before it boots.
type Prepare<'a> = Box<dyn FnOnce(&Path) + 'a>;

/// How to boot a container: `Boot::new(rootfs, name)`, options, `.start()`.
pub struct Boot<'a> {
    rootfs: PathBuf,
    name: String,
    binary: Option<&'a Path>,
    netns: Option<PathBuf>,
    prepare: Vec<Prepare<'a>>,
}

impl<'a> Boot<'a> {
    /// A copy of `rootfs` (e.g. `base_rootfs("bookworm")`, `fleet_rootfs()`);
    /// no edgeup binary, the host's network.
    pub fn new(rootfs: PathBuf, name: &str) -> Boot<'a> {
        Boot {
            rootfs,
            name: name.to_string(),
            binary: None,
            netns: None,
            prepare: Vec::new(),
        }
    }

    /// Puts `binary` at /usr/local/bin/edgeup.
    pub fn binary(mut self, binary: &'a Path) -> Boot<'a> {
        self.binary = Some(binary);
        self
    }

    /// Boots into this network namespace (`Netns::path`) instead of the host's network.
    pub fn network_namespace(mut self, path: PathBuf) -> Boot<'a> {
        self.netns = Some(path);
        self
    }

    /// Runs `f` on the copied rootfs (its path on the host) before booting.
    pub fn prepare(mut self, f: impl FnOnce(&Path) + 'a) -> Boot<'a> {
        self.prepare.push(Box::new(f));
        self
    }

    pub fn start(self) -> Container {
        let root = Path::new(CACHE).join(format!("run-{}-{}", self.name, std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let copy = RootCopy(root.clone());
        let cp = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&self.rootfs)
            .arg(&root)
            .status()
            .expect("copy rootfs");
        assert!(cp.success(), "copying the rootfs failed");
        if let Some(binary) = self.binary {
            fs::copy(binary, root.join("usr/local/bin/edgeup")).expect("copy edgeup in");
        }
        for prepare in self.prepare {
            prepare(&root);
        }
        let archives = "/var/cache/apt/archives";
        fs::create_dir_all(format!("{archives}/partial")).expect("apt cache dir");
        let mut nspawn = Command::new("systemd-nspawn");
        nspawn.arg("-D").arg(&root).args([
            "-b",
            "--console=passive",
            "--register=no",
            "--keep-unit",
            &format!("--bind={archives}:{archives}"),
            &format!("--machine=edgeup-{}", self.name),
        ]);
        if let Some(netns) = &self.netns {
            nspawn.arg(format!("--network-namespace-path={}", netns.display()));
        }
        // No parent-death signal: containers are booted from short-lived
        // threads too (the fleet boots its hosts in parallel), and the
        // signal follows the spawning thread. A killed test's containers are
        // stopped by the next scenario (`remove_stale_containers`).
        let nspawn = nspawn
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-nspawn");
        let mut container = Container {
            root,
            init: 0,
            nspawn,
            _copy: copy,
        };
        container.init = container.find_init();
        container.wait_running();
        container
    }
}

impl Container {
    /// Copies the cached rootfs for `suite`, puts `binary` at /usr/local/bin/edgeup, and boots it.
    pub fn boot(suite: &str, name: &str, binary: &Path) -> Container {
        Boot::new(base_rootfs(suite), name).binary(binary).start()
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
        // `_copy` deletes the rootfs copy now.
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

/// What the "fleet" rootfs has on top of the bookworm base: sshd, sudo, and
/// what `edgeup apply` installs on Debian (so it finds everything installed
/// and needs no network), plus python3 for a test backend.
pub const FLEET_PACKAGES: &[&str] = &[
    "openssh-server",
    "sudo",
    "haproxy",
    "certbot",
    "openssl",
    "procps",
    "python3",
    // ufw installed, not enabled: the uninstall test enables it in its
    // own network namespace and checks HAProxy there with curl
    // (tests/system/uninstall.rs).
    "ufw",
    "curl",
];

/// The bookworm base plus `FLEET_PACKAGES`, installed once with the host's
/// network (systemd-nspawn without booting) and cached. Services are not
/// started during the build, and sshd's host keys are removed: every copy
/// gets its own (`ssh-keygen -A -f ROOT` before booting).
pub fn fleet_rootfs() -> PathBuf {
    let dir = Path::new(CACHE).join("bookworm-fleet");
    let stamp = "etc/edgeup-test-rootfs";
    let want = format!("bookworm + {}\n", FLEET_PACKAGES.join(" "));
    if fs::read_to_string(dir.join(stamp)).is_ok_and(|s| s == want) {
        assert!(
            dir.join("usr/sbin/sshd").exists(),
            "sshd is missing from {}: delete it to rebuild",
            dir.display()
        );
        return dir;
    }
    let base = base_rootfs("bookworm");
    let tmp = Path::new(CACHE).join("bookworm-fleet.tmp");
    let _ = fs::remove_dir_all(&tmp);
    let _cleanup = RootCopy(tmp.clone());
    let started = Instant::now();
    let cp = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&base)
        .arg(&tmp)
        .status()
        .expect("copy rootfs");
    assert!(cp.success(), "copying the rootfs failed");
    // No service starts inside the build (there is no init to talk to anyway).
    let policy = tmp.join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n").expect("policy-rc.d");
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let archives = "/var/cache/apt/archives";
    fs::create_dir_all(format!("{archives}/partial")).expect("apt cache dir");
    let script = format!(
        "apt-get -o DPkg::Lock::Timeout=300 update -qq && \
         apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends {}",
        FLEET_PACKAGES.join(" ")
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = Command::new("systemd-nspawn")
            .arg("-q")
            .arg("-D")
            .arg(&tmp)
            .args([
                "--register=no",
                "--keep-unit",
                &format!("--bind={archives}:{archives}"),
                "-E",
                "DEBIAN_FRONTEND=noninteractive",
                "/bin/sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run systemd-nspawn");
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Another container's apt may hold the shared archive cache's lock.
        if stderr.contains("Could not get lock") && attempt < 20 {
            std::thread::sleep(Duration::from_secs(3));
            continue;
        }
        panic!(
            "installing {} into the fleet rootfs failed ({}):\n{}\n{stderr}",
            FLEET_PACKAGES.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    fs::remove_file(&policy).expect("remove policy-rc.d");
    for entry in fs::read_dir(tmp.join("etc/ssh"))
        .expect("etc/ssh")
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            fs::remove_file(entry.path()).expect("remove a shared host key");
        }
    }
    fs::write(tmp.join(stamp), &want).expect("stamp");
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).expect("publish fleet rootfs");
    eprintln!("built the fleet rootfs in {:.0?}", started.elapsed());
    dir
}

/// A network namespace of the test's own, joined to the host by one veth
/// pair: `host_if` with `host_addr`/24 on the host, `eth0` with `addr`/24
/// inside (loopback up). Deleted, with its veth, when dropped.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub host_addr: String,
    pub addr: String,
}

const NETNS_PREFIX: &str = "edgeup-test-";

impl Netns {
    /// 10.231.`subnet`.1 on the host end, 10.231.`subnet`.2 inside.
    pub fn create(subnet: u8) -> Netns {
        let pid = std::process::id();
        let ns = Netns {
            name: format!("{NETNS_PREFIX}{pid}-{subnet}"),
            // Interface names have at most 15 characters.
            host_if: format!("eut{pid}-{subnet}"),
            host_addr: format!("10.231.{subnet}.1"),
            addr: format!("10.231.{subnet}.2"),
        };
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_addr),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{}/24", ns.addr),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// For `Boot::network_namespace`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Namespaces (and their veths) left by a test process that no longer
    /// exists (killed before its guards ran).
    pub fn remove_stale() {
        let Ok(entries) = fs::read_dir("/run/netns") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((pid, subnet)) = name
                .strip_prefix(NETNS_PREFIX)
                .and_then(|rest| rest.split_once('-'))
            else {
                continue;
            };
            if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
                continue;
            }
            let _ = Command::new("ip")
                .args(["link", "del", &format!("eut{pid}-{subnet}")])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth deletes both.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (apt-get install iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
