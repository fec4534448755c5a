//! Fixture hosts for transcript tests: a root directory that looks like a
//! fresh Debian 12 or Rocky Linux 9 machine to edgeup's real code, and a
//! `ScriptedRunner` whose answers and effects play apt/dpkg, dnf/rpm,
//! systemd, firewalld, SELinux and `haproxy -c` on that tree.
//!
//! Simulated state lives in the tree where the real tools keep it when
//! edgeup reads it directly (/var/lib/dpkg/status, /etc/passwd, selinuxfs,
//! /etc/firewalld/zones/public.xml), and in small stand-in files otherwise:
//! - rpm database: /var/lib/rpm/fixture-installed ("NAME VERSION-RELEASE" lines);
//! - firewalld runtime services: /run/firewalld/fixture-runtime-services;
//! - a running unit: /run/systemd/units/invocation:UNIT (as in real systemd);
//! - an enabled unit: /etc/systemd/system/multi-user.target.wants/UNIT.

use anyhow::{Context, Result, bail};
use edgeup::assets::Assets;
use edgeup::engine::{Mode, Recap};
use edgeup::host::scripted::ScriptedRunner;
use edgeup::host::{Cmd, CmdOutput, Host};
use edgeup::report::{Event, Reporter, Status};
use edgeup::run::Run as RunOptions;
use edgeup::site::Site;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DOMAIN: &str = "chat.example.com";
pub const PEM: &str = "/etc/haproxy/certs/chat.example.com.pem";
pub const CFG: &str = "/etc/haproxy/haproxy.cfg";
pub const CERTS: &str = "/etc/haproxy/certs";
pub const PENDING: &str = "/var/lib/edgeup/pending-handlers";
pub const UNIT: &str = "haproxy.service";

/// The haproxy.cfg both families' packages ship (trimmed): what edgeup replaces.
pub const PACKAGE_CFG: &str = "global\n\tlog /dev/log local0\n\tchroot /var/lib/haproxy\n\tuser haproxy\n\tgroup haproxy\n\tdaemon\n\ndefaults\n\tlog global\n\tmode http\n\ttimeout connect 5000\n\ttimeout client 50000\n\ttimeout server 50000\n";

// ============================================================== the site

/// chat.example.com -> 127.0.0.1:3000 with ACME off (no CA is involved in
/// these tests; the placeholder certificate is what gets served).
pub fn site() -> Site {
    let yaml =
        format!("domain: {DOMAIN}\nbackends: [\"127.0.0.1:3000\"]\nacme:\n  directory: \"off\"\n");
    let raw: edgeup::site::RawSite = serde_saphyr::from_str(&yaml).expect("test site YAML parses");
    edgeup::site::parse_site(&raw).unwrap_or_else(|p| panic!("test site is invalid: {p:?}"))
}

// ============================================================== fixtures

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    Debian,
    Rocky,
}

/// Knobs of the simulated package manager.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Installing haproxy enables and starts haproxy.service (Debian's
    /// postinst does; a container whose policy-rc.d forbids starts does not).
    pub package_starts_service: bool,
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub family: Family,
    pub behaviour: Behaviour,
    /// The sites converged (default: `site()` alone).
    pub config: edgeup::site::Config,
    /// The edgeup binary the run is (a host path under the root; default:
    /// the test binary itself, outside the root).
    pub running_binary: Option<String>,
}

/// What one plan/apply did.
pub struct Run {
    pub result: Result<Recap>,
    pub events: Vec<Event>,
    /// Steps and handlers in the order the engine began them.
    pub begun: Vec<String>,
    /// Every command, fixture root stripped, temp-file pid replaced by PID.
    pub commands: Vec<String>,
}

impl Fixture {
    /// Debian 12 as debootstrap --variant=minbase leaves it, booted: systemd
    /// running, no firewall, no SELinux, apt lists never fetched, and none
    /// of haproxy, certbot, openssl, procps installed.
    pub fn debian_12() -> Fixture {
        let fx = Fixture::empty(Family::Debian);
        fx.write("/etc/os-release", &os_release("debian-12"));
        fx.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             bin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n\
             www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
             _apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
             systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n",
        );
        fx.write(
            "/etc/group",
            "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\nwww-data:x:33:\n\
             nogroup:x:65534:\nsystemd-network:x:998:\n",
        );
        fx.write(
            "/var/lib/dpkg/status",
            &[
                dpkg_stanza("base-files", "12.4+deb12u11"),
                dpkg_stanza("libc6", "2.36-9+deb12u10"),
                dpkg_stanza("libssl3", "3.0.17-1~deb12u2"),
                dpkg_stanza("systemd", "252.38-1~deb12u1"),
                // Removed with its configuration kept: not installed.
                "Package: haproxy\nStatus: deinstall ok config-files\nVersion: 2.6.12-1+deb12u1\n"
                    .to_string(),
            ]
            .join("\n"),
        );
        fx.mkdir("/var/lib/apt/lists");
        fx.common_base();
        fx
    }

    /// Rocky Linux 9 as installed: firewalld running with the default public
    /// zone, SELinux enforcing with haproxy_connect_any off, no EPEL.
    pub fn rocky_9() -> Fixture {
        Fixture::el_9("rocky-9")
    }

    /// RHEL 9 proper: like Rocky, but no epel-release in its repositories.
    pub fn rhel_9() -> Fixture {
        Fixture::el_9("rhel-9")
    }

    fn el_9(os_release_fixture: &str) -> Fixture {
        let fx = Fixture::empty(Family::Rocky);
        fx.write("/etc/os-release", &os_release(os_release_fixture));
        fx.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n\
             daemon:x:2:2:daemon:/sbin:/sbin/nologin\nnobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n\
             polkitd:x:998:996:User for polkitd:/:/sbin/nologin\n",
        );
        fx.write(
            "/etc/group",
            "root:x:0:\nbin:x:1:\ndaemon:x:2:\nwheel:x:10:\nnobody:x:65534:\npolkitd:x:996:\n",
        );
        fx.write(
            RPMDB,
            "bash 5.1.8-9.el9\ncoreutils 8.32-36.el9\nopenssl-libs 3.2.2-6.el9_5.1\n\
             util-linux 2.37.4-20.el9\nfirewalld 1.3.4-9.el9_5\nselinux-policy-targeted 38.1.45-3.el9_5\nsystemd 252-46.el9_5.2\n",
        );
        // util-linux (always installed on EL) provides the kill haproxy.service reloads with.
        fx.write("/usr/bin/kill", "\x7fELF");
        fx.write("/usr/bin/firewall-cmd", "#!/usr/bin/python3\n");
        fx.write("/run/firewalld/firewalld.pid", "712\n");
        write_zone(
            fx.root(),
            &["cockpit".into(), "dhcpv6-client".into(), "ssh".into()],
        )
        .expect("writing the firewalld zone");
        fx.write(RUNTIME_SERVICES, "cockpit dhcpv6-client ssh\n");
        fx.write("/sys/fs/selinux/enforce", "1");
        fx.write("/sys/fs/selinux/booleans/haproxy_connect_any", "0 0");
        fx.write("/sys/fs/selinux/booleans/httpd_can_network_connect", "0 0");
        fx.common_base();
        fx
    }

    fn empty(family: Family) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("creating the fixture root"),
            family,
            behaviour: Behaviour {
                package_starts_service: false,
            },
            config: edgeup::site::Config {
                sites: vec![site()],
            },
            running_binary: None,
        }
    }

    fn common_base(&self) {
        self.mkdir("/run/systemd/system");
        self.write("/proc/1/comm", "systemd\n");
        self.mkdir("/etc/systemd/system/multi-user.target.wants");
        self.mkdir("/tmp");
    }

    /// This fixture after one successful apply (asserted), ready for a second run.
    pub fn converged(self) -> Fixture {
        let run = self.apply();
        let recap = run.recap();
        assert_eq!(recap.failed, 0, "converging the fixture failed: {run:#?}");
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A host path (`/etc/haproxy/haproxy.cfg`) inside the fixture.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root().join(host_path.trim_start_matches('/'))
    }

    pub fn write(&self, host_path: &str, content: &str) {
        write_file(self.root(), host_path, content).expect("writing a fixture file");
    }

    pub fn mkdir(&self, host_path: &str) {
        fs::create_dir_all(self.path(host_path)).expect("creating a fixture directory");
    }

    pub fn read(&self, host_path: &str) -> Option<Vec<u8>> {
        fs::read(self.path(host_path)).ok()
    }

    pub fn exists(&self, host_path: &str) -> bool {
        fs::symlink_metadata(self.path(host_path)).is_ok()
    }

    pub fn chmod(&self, host_path: &str, mode: u32) {
        fs::set_permissions(self.path(host_path), fs::Permissions::from_mode(mode))
            .expect("chmod in the fixture");
    }

    /// (mode, uid, gid) of a fixture path.
    pub fn attrs(&self, host_path: &str) -> (u32, u32, u32) {
        let m = fs::symlink_metadata(self.path(host_path))
            .unwrap_or_else(|e| panic!("{host_path} in the fixture: {e}"));
        (m.mode() & 0o7777, m.uid(), m.gid())
    }

    /// uid and gid of the haproxy user the simulated package creates.
    pub fn haproxy_ids(&self) -> (u32, u32) {
        match self.family {
            Family::Debian => DEBIAN_HAPROXY_IDS,
            Family::Rocky => ROCKY_HAPROXY_IDS,
        }
    }

    pub fn apply(&self) -> Run {
        self.run(Mode::Apply, |r| r)
    }

    pub fn plan(&self) -> Run {
        self.run(Mode::Plan, |r| r)
    }

    /// Runs plan or apply through `edgeup::run::converge` with the
    /// embedded playbook and distro profiles. `overrides` adds rules ahead of
    /// the fixture's own (first matching rule wins), e.g. a failing reload.
    /// `edgeup renew` (`--force` with `force`): the certificate steps only.
    pub fn renew(&self, force: bool) -> Run {
        let renewal = if force {
            edgeup::steps::Renewal::Forced
        } else {
            edgeup::steps::Renewal::WhenDue
        };
        self.run_as(RunOptions::renew(renewal, None), |r| r)
    }

    /// `edgeup renew DOMAIN --from-certbot`: what certbot's deploy hook runs.
    pub fn renew_from_certbot(
        &self,
        domain: &str,
        overrides: impl FnOnce(ScriptedRunner) -> ScriptedRunner,
    ) -> Run {
        self.run_as(
            RunOptions::renew(edgeup::steps::Renewal::FromCertbot, Some(domain)),
            overrides,
        )
    }

    pub fn run(&self, mode: Mode, overrides: impl FnOnce(ScriptedRunner) -> ScriptedRunner) -> Run {
        let options = match mode {
            Mode::Plan => RunOptions::plan(),
            Mode::Apply => RunOptions::apply(),
        };
        self.run_as(options, overrides)
    }

    fn run_as(
        &self,
        options: RunOptions,
        overrides: impl FnOnce(ScriptedRunner) -> ScriptedRunner,
    ) -> Run {
        let root = self.root().to_path_buf();
        let runner = self.script(overrides(ScriptedRunner::new(root.clone())));
        let log = runner.transcript();
        let mut host = Host::new(root, Box::new(runner));
        if let Some(exe) = &self.running_binary {
            host = host.with_running_binary(self.path(exe));
        }
        let mut reporter = Collect::default();
        let result = edgeup::run::converge(
            &host,
            &Assets::new(None),
            &edgeup::run::Desired {
                config: self.config.clone(),
                record_text: None,
            },
            edgeup::playbook::DEFAULT_PLAYBOOK,
            options,
            &mut reporter,
        );
        let pid_suffix = format!(".edgeup-{}", std::process::id());
        let commands = log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.replace(&pid_suffix, ".edgeup-PID"))
            .collect();
        Run {
            result,
            events: reporter.events,
            begun: reporter.begun,
            commands,
        }
    }

    /// `edgeup uninstall --yes` here: its plan, then the undoing of it (the
    /// Debian/RHEL paths are the same), and the commands run.
    pub fn uninstall(
        &self,
        opts: edgeup::uninstall::Options,
    ) -> (edgeup::uninstall::Plan, anyhow::Result<()>, Vec<String>) {
        let root = self.root().to_path_buf();
        let runner = self.script(ScriptedRunner::new(root.clone()));
        let log = runner.transcript();
        let host = Host::new(root, Box::new(runner));
        let layout = edgeup::uninstall::Layout {
            haproxy_config: "/etc/haproxy/haproxy.cfg".into(),
            haproxy_unit: "haproxy.service".into(),
            certs_dir: "/etc/haproxy/certs".into(),
            certbot_dir: "/etc/letsencrypt".into(),
            state_dir: "/var/lib/edgeup".into(),
        };
        let plan =
            edgeup::uninstall::plan(&host, &layout, &opts).unwrap_or_else(|e| panic!("{e:#}"));
        let result = edgeup::uninstall::undo(&host, &layout, &opts, &plan, |_| {}).map(|_| ());
        let commands = log.lock().map(|l| l.clone()).unwrap_or_default();
        (plan, result, commands)
    }

    /// The simulated tools of this family, then a catch-all that fails any
    /// command no rule knows (so nothing passes by accident).
    fn script(&self, runner: ScriptedRunner) -> ScriptedRunner {
        let family = self.family;
        let behaviour = self.behaviour;
        let runner = match family {
            Family::Debian => runner.dynamic(
                "DEBIAN_FRONTEND=noninteractive apt-get",
                move |root, cmd| apt_get(root, cmd, behaviour),
            ),
            Family::Rocky => runner
                .dynamic("rpm -q", rpm_q)
                .dynamic("dnf install", dnf_install)
                .dynamic("firewall-cmd", firewall_cmd)
                .dynamic("setsebool", setsebool),
        };
        runner
            .dynamic("systemctl", systemctl)
            .dynamic("haproxy -c -q -f", haproxy_check)
            .respond(
                "",
                CmdOutput::failed(127, "scripted fixture: no rule for this command"),
            )
    }
}

impl Run {
    pub fn recap(&self) -> Recap {
        match &self.result {
            Ok(recap) => recap.clone(),
            Err(e) => panic!("the run failed before its recap: {e:#}\n{self:#?}"),
        }
    }

    /// Commands that change the host or only run as part of a change. The
    /// predicate: everything except these read-only queries:
    /// `systemctl show`, `rpm -q`, `firewall-cmd --state`,
    /// `firewall-cmd [--permanent] --list-services`.
    pub fn mutating(&self) -> Vec<String> {
        self.commands
            .iter()
            .filter(|c| !is_read_only(c))
            .cloned()
            .collect()
    }

    /// (name, status, handler) of every step and handler event, in order,
    /// leaving out the certificate steps these core fixtures skip (the site
    /// has `acme.directory: off`); `acme_skipped` counts those.
    pub fn statuses(&self) -> Vec<(String, Status, bool)> {
        self.events
            .iter()
            .filter(|e| !is_acme_skip(e))
            .filter_map(|e| match e {
                Event::Step {
                    name,
                    status,
                    handler,
                    ..
                } => Some((name.clone(), *status, *handler)),
                _ => None,
            })
            .collect()
    }

    /// How many certificate steps were skipped because ACME is off.
    pub fn acme_skipped(&self) -> usize {
        self.events.iter().filter(|e| is_acme_skip(e)).count()
    }

    /// The event of the step (or handler) called `name`.
    pub fn step(&self, name: &str) -> &Event {
        let found: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::Step { name: n, .. } if n == name))
            .collect();
        match found.as_slice() {
            [one] => one,
            other => panic!(
                "expected one event for step '{name}', found {}: {self:#?}",
                other.len()
            ),
        }
    }

    pub fn status(&self, name: &str) -> Status {
        match self.step(name) {
            Event::Step { status, .. } => *status,
            _ => unreachable!("step() returns step events"),
        }
    }

    pub fn message(&self, name: &str) -> String {
        match self.step(name) {
            Event::Step { message, .. } => message.clone().unwrap_or_default(),
            _ => unreachable!("step() returns step events"),
        }
    }

    pub fn changes(&self, name: &str) -> Vec<String> {
        match self.step(name) {
            Event::Step { changes, .. } => changes.clone(),
            _ => unreachable!("step() returns step events"),
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Warning { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, command: &str) -> usize {
        self.commands.iter().filter(|c| *c == command).count()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "result: {:?}",
            self.result.as_ref().map_err(|e| format!("{e:#}"))
        )?;
        writeln!(f, "commands:")?;
        for c in &self.commands {
            writeln!(f, "  {c}")?;
        }
        writeln!(f, "events:")?;
        for e in &self.events {
            writeln!(f, "  {}", serde_json::to_string(e).unwrap_or_default())?;
        }
        Ok(())
    }
}

pub fn is_read_only(command: &str) -> bool {
    command.starts_with("systemctl show ")
        || command.starts_with("rpm -q ")
        || command == "firewall-cmd --state"
        || command == "firewall-cmd --list-services"
        || command == "firewall-cmd --permanent --list-services"
}

/// A reporter that keeps everything the engine says.
#[derive(Default)]
pub struct Collect {
    pub events: Vec<Event>,
    pub begun: Vec<String>,
}

impl Reporter for Collect {
    fn begin(&mut self, _index: usize, _total: usize, name: &str) {
        self.begun.push(name.to_string());
    }

    fn event(&mut self, event: &Event) {
        self.events.push(event.clone());
    }
}

// ============================================================== tree snapshots

/// One entry of a tree snapshot: kind+mode, owner, content (files), target (links).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: Option<Vec<u8>>,
}

/// Every path under the fixture root with its mode (incl. file type), owner
/// and content: two snapshots are equal iff nothing observable changed.
pub fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("listing the fixture") {
            let path = entry.expect("fixture entry").path();
            let meta = fs::symlink_metadata(&path).expect("fixture metadata");
            let content = if meta.is_dir() {
                stack.push(path.clone());
                None
            } else if meta.file_type().is_symlink() {
                Some(
                    fs::read_link(&path)
                        .expect("fixture link")
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                )
            } else {
                Some(fs::read(&path).expect("fixture file"))
            };
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            out.insert(
                format!("/{rel}"),
                Entry {
                    mode: meta.mode(),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    content,
                },
            );
        }
    }
    out
}

/// Names in a fixture directory, sorted.
pub fn list_dir(root: &Path, host_path: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join(host_path.trim_start_matches('/')))
        .expect("listing a fixture directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ============================================================== simulated tools

const RPMDB: &str = "/var/lib/rpm/fixture-installed";
const RUNTIME_SERVICES: &str = "/run/firewalld/fixture-runtime-services";
const ZONE: &str = "/etc/firewalld/zones/public.xml";
const DEBIAN_HAPROXY_IDS: (u32, u32) = (104, 111);
const ROCKY_HAPROXY_IDS: (u32, u32) = (188, 188);

fn os_release(name: &str) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/os-release/{name}"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn host_file(root: &Path, host_path: &str) -> PathBuf {
    root.join(host_path.trim_start_matches('/'))
}

fn write_file(root: &Path, host_path: &str, content: &str) -> Result<()> {
    let path = host_file(root, host_path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}

fn append(root: &Path, host_path: &str, text: &str) -> Result<()> {
    let old = fs::read_to_string(host_file(root, host_path)).unwrap_or_default();
    write_file(root, host_path, &format!("{old}{text}"))
}

fn dpkg_stanza(name: &str, version: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n\
         Version: {version}\nDescription: {name}\n"
    )
}

/// What the haproxy package does to the file system, on both families.
/// certbot and its renewal units (`UNIT.timer` starts `UNIT.service`), as
/// the package ships them.
fn install_certbot(root: &Path, unit_dir: &str, unit: &str) -> Result<()> {
    write_file(root, "/usr/bin/certbot", "\x7fELF")?;
    write_file(
        root,
        &format!("{unit_dir}/{unit}.service"),
        "[Service]\nType=oneshot\nExecStart=/usr/bin/certbot -q renew\n",
    )?;
    write_file(
        root,
        &format!("{unit_dir}/{unit}.timer"),
        "[Timer]\nOnCalendar=*-*-* 00,12:00:00\n[Install]\nWantedBy=timers.target\n",
    )
}

fn install_haproxy(root: &Path, family: Family, behaviour: Behaviour) -> Result<()> {
    let ((uid, gid), unit_dir, nologin) = match family {
        Family::Debian => (
            DEBIAN_HAPROXY_IDS,
            "/lib/systemd/system",
            "/usr/sbin/nologin",
        ),
        Family::Rocky => (
            ROCKY_HAPROXY_IDS,
            "/usr/lib/systemd/system",
            "/sbin/nologin",
        ),
    };
    append(root, "/etc/group", &format!("haproxy:x:{gid}:\n"))?;
    append(
        root,
        "/etc/passwd",
        &format!("haproxy:x:{uid}:{gid}::/var/lib/haproxy:{nologin}\n"),
    )?;
    write_file(root, CFG, PACKAGE_CFG)?;
    fs::set_permissions(host_file(root, CFG), fs::Permissions::from_mode(0o644))?;
    fs::create_dir_all(host_file(root, "/var/lib/haproxy"))?;
    write_file(root, "/usr/sbin/haproxy", "\x7fELF")?;
    write_file(
        root,
        &format!("{unit_dir}/{UNIT}"),
        "[Unit]\nDescription=HAProxy Load Balancer\n[Service]\nExecStart=/usr/sbin/haproxy -Ws -f $CONFIG\n",
    )?;
    if behaviour.package_starts_service {
        write_file(root, &wants(UNIT), "")?;
        write_file(root, &active_marker(UNIT), "")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- apt / dpkg

fn apt_available(name: &str) -> Option<&'static str> {
    match name {
        "haproxy" => Some("2.6.12-1+deb12u2"),
        "certbot" => Some("2.1.0-4"),
        "openssl" => Some("3.0.17-1~deb12u2"),
        "procps" => Some("2:4.0.2-3"),
        _ => None,
    }
}

const APT_LIST: &str =
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages";

/// `apt-get update` fetches the lists; `apt-get install` finds packages only
/// in fetched lists, records them in dpkg's status file, and runs the
/// packages' maintainer scripts (the haproxy user, its config, its unit).
fn apt_get(root: &Path, cmd: &Cmd, behaviour: Behaviour) -> Result<CmdOutput> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    // edgeup always waits for the dpkg lock rather than failing at once.
    let ["-o", "DPkg::Lock::Timeout=300", args @ ..] = args.as_slice() else {
        return Ok(CmdOutput::failed(
            100,
            "E: scripted apt-get: no lock timeout given\n",
        ));
    };
    // `-f` (fix broken dependencies) changes nothing in this fake apt.
    let args: Vec<&str> = args.iter().copied().filter(|a| *a != "-f").collect();
    match args.as_slice() {
        ["update"] => {
            let index: String = ["haproxy", "certbot", "openssl", "procps"]
                .iter()
                .map(|p| format!("Package: {p}\n\n"))
                .collect();
            write_file(root, APT_LIST, &index)?;
            Ok(CmdOutput::ok("Reading package lists... Done\n"))
        }
        ["install", ..]
            if fs::read_dir(host_file(root, "/var/lib/dpkg/updates"))
                .is_ok_and(|mut d| d.next().is_some()) =>
        {
            Ok(CmdOutput::failed(
                100,
                "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n",
            ))
        }
        ["install", "-y", "--no-install-recommends", names @ ..] if !names.is_empty() => {
            let lists: String = fs::read_dir(host_file(root, "/var/lib/apt/lists"))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
                        .filter_map(|e| fs::read_to_string(e.path()).ok())
                        .collect()
                })
                .unwrap_or_default();
            for name in names {
                if apt_available(name).is_none() || !lists.contains(&format!("Package: {name}\n")) {
                    return Ok(CmdOutput::failed(
                        100,
                        &format!("E: Unable to locate package {name}\n"),
                    ));
                }
            }
            let status = fs::read_to_string(host_file(root, "/var/lib/dpkg/status"))?;
            let installed = edgeup::host::pkgdb::parse_dpkg_status(
                &status,
                &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            );
            for name in names.iter().filter(|n| !installed.contains_key(**n)) {
                let version = apt_available(name).unwrap_or_default();
                append(
                    root,
                    "/var/lib/dpkg/status",
                    &format!("\n{}", dpkg_stanza(name, version)),
                )?;
                match *name {
                    "haproxy" => install_haproxy(root, Family::Debian, behaviour)?,
                    "procps" => write_file(root, "/usr/bin/kill", "\x7fELF")?,
                    "certbot" => install_certbot(root, "/lib/systemd/system", "certbot")?,
                    other => write_file(root, &format!("/usr/bin/{other}"), "\x7fELF")?,
                }
            }
            Ok(CmdOutput::ok("Setting up packages...\n"))
        }
        _ => Ok(CmdOutput::failed(
            100,
            "E: scripted apt-get: unexpected arguments\n",
        )),
    }
}

// ---------------------------------------------------------------- dnf / rpm

fn rpm_db(root: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(host_file(root, RPMDB))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// `rpm -q --qf FMT NAME...`: one line per name; exit status = missing count.
fn rpm_q(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let [flag, qf, format, names @ ..] = cmd.args.as_slice() else {
        bail!("scripted rpm: unexpected arguments {:?}", cmd.args);
    };
    if flag != "-q" || qf != "--qf" || format != "%{NAME} %{VERSION}-%{RELEASE}\\n" {
        bail!("scripted rpm: unexpected query {:?}", cmd.args);
    }
    let db = rpm_db(root);
    let mut out = CmdOutput::ok("");
    for name in names {
        match db.get(name) {
            Some(version) => out.stdout.push_str(&format!("{name} {version}\n")),
            None => {
                out.stdout
                    .push_str(&format!("package {name} is not installed\n"));
                out.status += 1;
            }
        }
    }
    Ok(out)
}

pub const EPEL_URL: &str = "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm";

/// Packages dnf can find: certbot only once EPEL is enabled; epel-release
/// by name only on the rebuilds (RHEL installs it from the Fedora project's URL).
fn dnf_available(root: &Path, name: &str) -> Option<&'static str> {
    let epel = host_file(root, "/etc/yum.repos.d/epel.repo").exists();
    let rhel = fs::read_to_string(host_file(root, "/etc/os-release"))
        .is_ok_and(|text| text.lines().any(|l| l == "ID=\"rhel\"" || l == "ID=rhel"));
    match name {
        "epel-release" if !rhel => Some("9-9.el9"),
        EPEL_URL => Some("9-9.el9"),
        "haproxy" => Some("2.4.22-3.el9_5.1"),
        "openssl" => Some("3.2.2-6.el9_5.1"),
        "certbot" if epel => Some("2.11.0-1.el9"),
        _ => None,
    }
}

/// `dnf install -y NAME...`: all or nothing, like a dnf transaction.
fn dnf_install(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let ["install", "-y", names @ ..] = args.as_slice() else {
        return Ok(CmdOutput::failed(1, "scripted dnf: unexpected arguments"));
    };
    if names.is_empty() {
        return Ok(CmdOutput::failed(
            1,
            "Error: Need to pass a list of pkgs to install",
        ));
    }
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| dnf_available(root, n).is_none())
        .collect();
    if !missing.is_empty() {
        let names = missing;
        return Ok(CmdOutput::failed(
            1,
            &format!(
                "No match for argument: {}\nError: Unable to find a match: {}\n",
                names.join("\nNo match for argument: "),
                names.join(" ")
            ),
        ));
    }
    let db = rpm_db(root);
    // An rpm URL installs the package it contains.
    let names: Vec<&str> = names
        .iter()
        .map(|n| if *n == EPEL_URL { "epel-release" } else { *n })
        .collect();
    for name in names.iter().filter(|n| !db.contains_key(**n)) {
        let version = dnf_available(root, name)
            .or_else(|| dnf_available(root, EPEL_URL))
            .unwrap_or_default();
        append(root, RPMDB, &format!("{name} {version}\n"))?;
        match *name {
            "haproxy" => install_haproxy(
                root,
                Family::Rocky,
                Behaviour {
                    package_starts_service: false,
                },
            )?,
            "epel-release" => write_file(
                root,
                "/etc/yum.repos.d/epel.repo",
                "[epel]\nname=Extra Packages for Enterprise Linux 9\nenabled=1\n",
            )?,
            "certbot" => install_certbot(root, "/usr/lib/systemd/system", "certbot-renew")?,
            other => write_file(root, &format!("/usr/bin/{other}"), "\x7fELF")?,
        }
    }
    Ok(CmdOutput::ok("Complete!\n"))
}

// ---------------------------------------------------------------- firewalld

fn zone_services(root: &Path) -> Vec<String> {
    fs::read_to_string(host_file(root, ZONE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("<service name=\"")?
                .strip_suffix("\"/>")
                .map(str::to_string)
        })
        .collect()
}

fn write_zone(root: &Path, services: &[String]) -> Result<()> {
    let lines: String = services
        .iter()
        .map(|s| format!("  <service name=\"{s}\"/>\n"))
        .collect();
    write_file(
        root,
        ZONE,
        &format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<zone>\n  <short>Public</short>\n{lines}</zone>\n"
        ),
    )
}

fn firewall_cmd(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let running = host_file(root, "/run/firewalld/firewalld.pid").exists();
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    if args == ["--state"] {
        return Ok(if running {
            CmdOutput::ok("running\n")
        } else {
            CmdOutput {
                status: 252,
                stdout: "not running\n".into(),
                stderr: String::new(),
            }
        });
    }
    if !running {
        return Ok(CmdOutput::failed(252, "FirewallD is not running\n"));
    }
    match args.as_slice() {
        ["--permanent", "--list-services"] => Ok(CmdOutput::ok(&format!(
            "{}\n",
            zone_services(root).join(" ")
        ))),
        ["--list-services"] => Ok(CmdOutput::ok(
            &fs::read_to_string(host_file(root, RUNTIME_SERVICES)).unwrap_or_default(),
        )),
        ["--permanent", remove] if remove.starts_with("--remove-service=") => {
            let service = remove.trim_start_matches("--remove-service=");
            let services: Vec<String> = zone_services(root)
                .into_iter()
                .filter(|s| s != service)
                .collect();
            write_zone(root, &services)?;
            Ok(CmdOutput::ok("success\n"))
        }
        [remove] if remove.starts_with("--remove-service=") => {
            let service = remove.trim_start_matches("--remove-service=");
            let runtime: Vec<String> = fs::read_to_string(host_file(root, RUNTIME_SERVICES))
                .unwrap_or_default()
                .split_whitespace()
                .filter(|s| *s != service)
                .map(str::to_string)
                .collect();
            write_file(root, RUNTIME_SERVICES, &format!("{}\n", runtime.join(" ")))?;
            Ok(CmdOutput::ok("success\n"))
        }
        ["--permanent", adds @ ..] if !adds.is_empty() => {
            let mut services = zone_services(root);
            let mut warnings = String::new();
            for add in adds {
                let Some(service) = add.strip_prefix("--add-service=") else {
                    return Ok(CmdOutput::failed(
                        2,
                        &format!("usage: unknown option {add}"),
                    ));
                };
                if services.iter().any(|s| s == service) {
                    warnings.push_str(&format!("Warning: ALREADY_ENABLED: {service}\n"));
                } else {
                    services.push(service.to_string());
                }
            }
            services.sort();
            write_zone(root, &services)?;
            Ok(CmdOutput {
                status: 0,
                stdout: "success\n".into(),
                stderr: warnings,
            })
        }
        adds if !adds.is_empty() && adds.iter().all(|a| a.starts_with("--add-service=")) => {
            // Runtime only: firewalld adds to the running zone, not the zone file.
            let mut runtime: Vec<String> = fs::read_to_string(host_file(root, RUNTIME_SERVICES))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            for add in adds {
                let service = add.trim_start_matches("--add-service=").to_string();
                if !runtime.contains(&service) {
                    runtime.push(service);
                }
            }
            write_file(root, RUNTIME_SERVICES, &format!("{}\n", runtime.join(" ")))?;
            Ok(CmdOutput::ok("success\n"))
        }
        ["--reload"] => {
            write_file(
                root,
                RUNTIME_SERVICES,
                &format!("{}\n", zone_services(root).join(" ")),
            )?;
            Ok(CmdOutput::ok("success\n"))
        }
        _ => Ok(CmdOutput::failed(
            2,
            "scripted firewall-cmd: unexpected arguments",
        )),
    }
}

// ---------------------------------------------------------------- SELinux

/// `setsebool -P NAME on|off`: selinuxfs shows "current pending".
fn setsebool(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let ["-P", name, value] = args.as_slice() else {
        return Ok(CmdOutput::failed(
            1,
            "scripted setsebool: unexpected arguments",
        ));
    };
    let file = host_file(root, &format!("/sys/fs/selinux/booleans/{name}"));
    if !file.exists() {
        return Ok(CmdOutput::failed(
            1,
            "Could not change active booleans: Invalid boolean\n",
        ));
    }
    let bit = match *value {
        "on" | "1" | "true" => "1",
        "off" | "0" | "false" => "0",
        _ => return Ok(CmdOutput::failed(1, "Illegal value\n")),
    };
    fs::write(file, format!("{bit} {bit}"))?;
    Ok(CmdOutput::ok(""))
}

// ---------------------------------------------------------------- systemd

fn wants(unit: &str) -> String {
    format!("/etc/systemd/system/multi-user.target.wants/{unit}")
}

fn active_marker(unit: &str) -> String {
    format!("/run/systemd/units/invocation:{unit}")
}

fn unit_exists(root: &Path, unit: &str) -> bool {
    [
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    ]
    .iter()
    .any(|d| host_file(root, &format!("{d}/{unit}")).is_file())
}

fn systemctl(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let (verb, unit) = match args.as_slice() {
        ["daemon-reload"] => return Ok(CmdOutput::ok("")),
        [verb, unit, ..] => (*verb, *unit),
        _ => {
            return Ok(CmdOutput::failed(
                1,
                "scripted systemctl: unexpected arguments",
            ));
        }
    };
    let exists = unit_exists(root, unit);
    let enabled = host_file(root, &wants(unit)).exists();
    let active = host_file(root, &active_marker(unit)).exists();
    let not_found = |code| {
        Ok(CmdOutput::failed(
            code,
            &format!("Failed to {verb} {unit}: Unit {unit} not found.\n"),
        ))
    };
    match verb {
        // Like real systemd: an unknown unit is data (LoadState=not-found), exit 0.
        "show" => Ok(CmdOutput::ok(&format!(
            "MainPID={}\nLoadState={}\nActiveState={}\nUnitFileState={}\n",
            if active { "4242" } else { "0" },
            if exists { "loaded" } else { "not-found" },
            if active { "active" } else { "inactive" },
            match (exists, enabled) {
                (false, _) => "",
                (true, true) => "enabled",
                (true, false) => "disabled",
            }
        ))),
        _ if !exists => not_found(5),
        "enable" => {
            write_file(root, &wants(unit), "")?;
            Ok(CmdOutput {
                status: 0,
                stdout: String::new(),
                stderr: format!(
                    "Created symlink {} -> /usr/lib/systemd/system/{unit}.\n",
                    wants(unit)
                ),
            })
        }
        "disable" => {
            let _ = fs::remove_file(host_file(root, &wants(unit)));
            Ok(CmdOutput::ok(""))
        }
        "start" | "restart" => {
            write_file(root, &active_marker(unit), "")?;
            Ok(CmdOutput::ok(""))
        }
        "stop" => {
            let _ = fs::remove_file(host_file(root, &active_marker(unit)));
            Ok(CmdOutput::ok(""))
        }
        // haproxy.service reloads with `ExecReload=/bin/kill -USR2 $MAINPID`.
        "reload" if active && !host_file(root, "/usr/bin/kill").exists() => Ok(CmdOutput::failed(
            1,
            &format!("Job for {unit} failed because the control process exited with error code.\n"),
        )),
        "reload" if active => Ok(CmdOutput::ok("")),
        "reload" => Ok(CmdOutput::failed(
            1,
            &format!("{unit} is not active, cannot reload.\n"),
        )),
        _ => Ok(CmdOutput::failed(1, "scripted systemctl: unknown verb")),
    }
}

// ---------------------------------------------------------------- haproxy -c

/// `haproxy -c -q -f FILE` accepts any file that exists (the real `haproxy
/// -c` runs on every rendered config in tests/haproxy_config.rs).
fn haproxy_check(_root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let file = cmd.args.last().map(PathBuf::from).unwrap_or_default();
    if file.is_file() {
        Ok(CmdOutput::ok(""))
    } else {
        Ok(CmdOutput::failed(
            1,
            &format!(
                "[ALERT] Could not open configuration file {} : No such file or directory\n",
                file.display()
            ),
        ))
    }
}

/// Whether any file name under `root` looks like a leftover edgeup temp file.
pub fn temp_files(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_keys()
        .filter(|p| p.contains(".edgeup-"))
        .collect()
}

fn is_acme_skip(e: &Event) -> bool {
    matches!(e, Event::Step { status: Status::Skipped, message: Some(m), .. } if m.starts_with("condition not met: acme."))
}
