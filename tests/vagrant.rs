//! The project's Vagrantfile on a real VM: the `debian12` machine brought
//! up with `vagrant up --provider libvirt` from a box built here
//! (vagrant/build-box.sh: no box can be downloaded), provisioned by
//! edgeup; inside the guest HAProxy serves HTTPS on the placeholder and
//! `edgeup status` is healthy but for the app nobody started; a second
//! `vagrant provision` reports changed=0 (the Vagrantfile fails it
//! otherwise); then everything is destroyed.
//!
//! The network rule: libvirtd, its management network (bridge, dnsmasq,
//! NAT) and vagrant run inside a network namespace made for the test, whose
//! only way out is slirp4netns (user-mode networking: the guest's apt
//! reaches the Debian archive); nothing is added to the host's namespace.
//! /dev/kvm here is a PVM device a stock kernel cannot use, so the guest
//! runs under QEMU's emulation (set in the test's own VAGRANT_HOME
//! Vagrantfile, not the users' one): about 10 minutes, CPU-bound, so it
//! takes the system scenarios' lock and never overlaps them.
//!
//! Needs root and vagrant, vagrant-libvirt, libvirt-daemon-system,
//! qemu-system-x86, dnsmasq-base, slirp4netns, debootstrap (`.ci/run`
//! installs them); a missing one fails the test.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CACHE: &str = "/var/cache/edgeup-test";
const NETNS: &str = "edgeup-vagrant";
const MACHINE: &str = "debian12";
const DOMAIN: &str = "chat.example.test";

/// The test's VAGRANT_HOME additions: software emulation (see above), and
/// the time a first boot under it takes.
const HOME_VAGRANTFILE: &str = r#"# Written by tests/vagrant.rs: QEMU emulation (no usable KVM here).
Vagrant.configure("2") do |config|
  config.vm.boot_timeout = 900
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
  end
end
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn require_tools() {
    for (tool, package) in [
        ("vagrant", "vagrant"),
        ("libvirtd", "libvirt-daemon-system"),
        ("virtlogd", "libvirt-daemon-system"),
        ("virsh", "libvirt-clients"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("dnsmasq", "dnsmasq-base"),
        ("slirp4netns", "slirp4netns"),
        ("debootstrap", "debootstrap"),
        ("qemu-img", "qemu-utils"),
        ("ip", "iproute2"),
    ] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: apt-get install {package}");
    }
    let plugin = Command::new("vagrant")
        .args(["plugin", "list"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    assert!(
        plugin.contains("vagrant-libvirt"),
        "vagrant has no libvirt provider: apt-get install vagrant-libvirt ({plugin})"
    );
}

/// The system scenarios' lock: this test is as CPU-hungry as it gets.
fn exclusive() -> fs::File {
    fs::create_dir_all(CACHE).expect("create the cache dir");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(CACHE).join("scenario.lock"))
        .expect("open the scenario lock");
    file.lock().expect("take the scenario lock");
    file
}

/// A process a daemon's pid file names, if it is still that daemon.
fn live_pid(pidfile: &str, comm: &str) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (name.trim() == comm).then_some(pid)
}

fn kill(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// The namespace with libvirtd, virtlogd and slirp4netns; torn down on drop
/// with the VM, its volumes and the box's volume.
struct Lab {
    home: PathBuf,
    slirp: Option<Child>,
    log: PathBuf,
}

impl Lab {
    fn start(home: &Path) -> Lab {
        teardown(home);
        run_ok(
            Command::new("ip").args(["netns", "add", NETNS]),
            "ip netns add",
        );
        run_ok(
            Command::new("ip").args(["-n", NETNS, "link", "set", "lo", "up"]),
            "lo up",
        );
        let etc = format!("/etc/netns/{NETNS}");
        fs::create_dir_all(&etc).expect("netns etc dir");
        // slirp4netns's DNS forwarder.
        fs::write(format!("{etc}/resolv.conf"), "nameserver 10.0.2.3\n").expect("resolv.conf");
        let log = std::env::temp_dir().join(format!("edgeup-vagrant-{}.log", std::process::id()));
        let slirp = Command::new("slirp4netns")
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--netns-type=path",
                &format!("/run/netns/{NETNS}"),
                "tap0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slirp4netns");
        let lab = Lab {
            home: home.to_path_buf(),
            slirp: Some(slirp),
            log,
        };
        wait_for("tap0 in the namespace", Duration::from_secs(10), || {
            lab.netns(&["ip", "addr", "show", "tap0"])
                .is_ok_and(|o| text(&o.stdout).contains("10.0.2.100"))
        });
        lab.netns_ok(&["virtlogd", "-d"], "virtlogd");
        lab.netns_ok(&["libvirtd", "-d"], "libvirtd");
        wait_for("libvirtd's socket", Duration::from_secs(30), || {
            lab.netns(&["virsh", "-c", "qemu:///system", "version"])
                .is_ok_and(|o| o.status.success())
        });
        lab
    }

    /// `args` inside the namespace, as vagrant's user would run them.
    fn netns(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", NETNS])
            .args(args)
            .env("VAGRANT_HOME", &self.home)
            .env("VAGRANT_DEFAULT_PROVIDER", "libvirt")
            .env(
                "EDGEUP_BINARY",
                std::path::Path::new(env!("CARGO_BIN_EXE_edgeup")),
            )
            .current_dir(repo().join("vagrant"))
            .stdin(Stdio::null())
            .output()
    }

    fn netns_ok(&self, args: &[&str], what: &str) -> String {
        let out = self
            .netns(args)
            .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
        self.keep(what, &out);
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Appends a command's output to the test's log (printed on failure).
    fn keep(&self, what: &str, out: &Output) {
        let entry = format!(
            "==== {what} ({})\n{}{}\n",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, entry.as_bytes()));
    }

    /// `vagrant ssh MACHINE -c COMMAND`: its stdout and exit code.
    fn guest(&self, command: &str) -> (String, i32) {
        let out = self
            .netns(&["vagrant", "ssh", MACHINE, "-c", command])
            .expect("vagrant ssh");
        self.keep(command, &out);
        (text(&out.stdout), out.status.code().unwrap_or(-1))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- vagrant log: {} ----", self.log.display());
            if let Ok(log) = fs::read_to_string(&self.log) {
                let tail: Vec<&str> = log.lines().rev().take(120).collect();
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        teardown(&self.home);
        if let Some(mut slirp) = self.slirp.take() {
            let _ = slirp.kill();
            let _ = slirp.wait();
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// Everything a run (this one, or one killed before its guard ran) made:
/// the VM and its volumes, the box's volume in libvirt's pool, the
/// management network, libvirtd and virtlogd, the namespace.
fn teardown(home: &Path) {
    let netns = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", NETNS])
            .args(args)
            .env("VAGRANT_HOME", home)
            .current_dir(repo().join("vagrant"))
            .stdin(Stdio::null())
            .output()
    };
    if Path::new(&format!("/run/netns/{NETNS}")).exists()
        && live_pid("/run/libvirtd.pid", "libvirtd").is_some()
    {
        let _ = netns(&["vagrant", "destroy", "-f", MACHINE]);
        let virsh = |args: &[&str]| {
            let mut all = vec!["virsh", "-c", "qemu:///system"];
            all.extend_from_slice(args);
            netns(&all).map(|o| text(&o.stdout)).unwrap_or_default()
        };
        for domain in virsh(&["list", "--all", "--name"]).lines() {
            if domain.starts_with("vagrant_") {
                virsh(&["destroy", domain]);
                virsh(&["undefine", domain, "--remove-all-storage"]);
            }
        }
        for volume in virsh(&["vol-list", "default"]).lines().skip(2) {
            if let Some(name) = volume.split_whitespace().next()
                && (name.starts_with("vagrant_") || name.contains("VAGRANTSLASH"))
            {
                virsh(&["vol-delete", name, "--pool", "default"]);
            }
        }
        virsh(&["net-destroy", "vagrant-libvirt"]);
        virsh(&["net-undefine", "vagrant-libvirt"]);
    }
    for (pidfile, comm) in [
        ("/run/libvirtd.pid", "libvirtd"),
        ("/run/virtlogd.pid", "virtlogd"),
    ] {
        if let Some(pid) = live_pid(pidfile, comm) {
            kill(pid);
        }
    }
    let _ = fs::remove_dir_all(repo().join("vagrant/.vagrant"));
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    let _ = fs::remove_dir_all(format!("/etc/netns/{NETNS}"));
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < limit,
            "{what}: not ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn vagrant_up_converges_debian12_and_a_second_provision_changes_nothing() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the Vagrant test needs root (libvirt, network namespaces)"
    );
    require_tools();
    let _serial = exclusive();
    let started = Instant::now();
    let home = Path::new(CACHE).join("vagrant-home");
    fs::create_dir_all(&home).expect("VAGRANT_HOME");
    fs::write(home.join("Vagrantfile"), HOME_VAGRANTFILE).expect("the test's Vagrantfile");
    let binary = Path::new(env!("CARGO_BIN_EXE_edgeup"));
    let mode = fs::metadata(binary)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    assert!(mode & 0o111 != 0, "{} is not executable", binary.display());

    // The box: built once and cached (about 2 minutes the first time).
    let built = Command::new(repo().join("vagrant/build-box.sh"))
        .env("VAGRANT_HOME", &home)
        .output()
        .expect("run vagrant/build-box.sh");
    assert!(
        built.status.success(),
        "build-box.sh: {}{}",
        text(&built.stdout),
        text(&built.stderr)
    );
    let box_ready = started.elapsed();

    let lab = Lab::start(&home);
    let up = lab.netns_ok(
        &["vagrant", "up", MACHINE, "--provider", "libvirt"],
        "vagrant up",
    );
    let booted = started.elapsed();
    // The Vagrantfile's provisioning: detect, apply, a plan with nothing to do.
    for expected in [
        "(family debian",
        "recap: ",
        "https://chat.example.test/ -> 503",
    ] {
        assert!(
            up.contains(expected),
            "vagrant up output lacks {expected:?}:\n{up}"
        );
    }

    // Inside the guest: HTTPS on the placeholder; status healthy but for the app.
    let (subject, _) = lab.guest(&format!(
        "openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} </dev/null 2>/dev/null \
         | openssl x509 -noout -subject -issuer"
    ));
    assert!(
        subject.contains(DOMAIN),
        "the served certificate: {subject}"
    );
    let (json, code) = lab.guest("sudo edgeup status --json");
    let status: Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("status is not one JSON report ({e}): {json}"));
    assert_eq!(code, 6, "unhealthy only for the missing app: {status}");
    assert_eq!(status["certificate"]["placeholder"], true, "{status}");
    assert_eq!(status["https"]["status"], 503, "{status}");
    let failed: Vec<&str> = status["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["level"] == "fail")
                .filter_map(|c| c["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        failed
            .iter()
            .all(|name| ["https", "websocket"].contains(name)),
        "checks failing besides the app's: {failed:?} in {status}"
    );

    // Provisioning again with the same binary and site: changed=0 (the
    // Vagrantfile fails the provision otherwise).
    let again = lab.netns_ok(&["vagrant", "provision", MACHINE], "vagrant provision");
    assert!(
        again.contains("again, same binary and site:") && again.contains("\"changed\":0,"),
        "{again}"
    );
    let provisioned = started.elapsed();
    drop(lab);
    eprintln!(
        "vagrant: box {:.0?}, up {:.0?}, provision again {:.0?}, all with destroy {:.0?}",
        box_ready,
        booted - box_ready,
        provisioned - booted,
        started.elapsed()
    );
}
