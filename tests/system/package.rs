//! The packages (issue #13): `packaging/build.sh all` builds the .deb and
//! the .rpm from the static musl release binary; the .deb is installed with
//! apt in booted bookworm, trixie and bullseye containers and converges each
//! to a serving site, running as the packaged /usr/bin/edgeup (the renewal
//! unit runs it, nothing is copied to /usr/local/bin); removing the package
//! leaves the site serving and warns; the .rpm is checked with Debian's rpm
//! tools only (contents, dependencies, an install into a scratch root).

use super::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CFG: &str = "/etc/haproxy/haproxy.cfg";
const WARNING: &str = "renewals stop when the package is gone";

struct Packages {
    deb: PathBuf,
    rpm: PathBuf,
    /// The static binary both carry.
    binary: PathBuf,
}

/// Runs the repo's script once per test process (the musl release build is
/// incremental after the first time). A missing tool fails the test.
fn packages() -> &'static Packages {
    static BUILT: OnceLock<Packages> = OnceLock::new();
    BUILT.get_or_init(|| {
        container::require(&[
            ("x86_64-linux-musl-gcc", "musl-tools"),
            ("dpkg-deb", "dpkg"),
            ("rpmbuild", "rpm"),
            ("rpm", "rpm"),
        ]);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let started = Instant::now();
        let out = Command::new(repo.join("packaging/build.sh"))
            .arg("all")
            .current_dir(repo)
            .output()
            .expect("run packaging/build.sh");
        assert!(
            out.status.success(),
            "packaging/build.sh all failed ({}):\n{}\n{}",
            out.status,
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("packaging/build.sh all: {:.1?}", started.elapsed());
        let version = env!("CARGO_PKG_VERSION");
        let packages = Packages {
            deb: repo.join(format!("dist/edgeup_{version}-1_amd64.deb")),
            rpm: repo.join(format!("dist/edgeup-{version}-1.x86_64.rpm")),
            binary: repo.join("target/x86_64-unknown-linux-musl/release/edgeup"),
        };
        let listed = stdout(&out);
        for p in [&packages.deb, &packages.rpm] {
            assert!(p.is_file(), "{} was not built", p.display());
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            assert!(
                listed.contains(name.as_deref().unwrap_or("?")),
                "the script did not name {}: {listed}",
                p.display()
            );
        }
        packages
    })
}

/// `edgeup VERSION (git COMMIT)` of the build under test: the debug binary
/// cargo built from the same tree, whose version string build.rs wrote.
fn expected_version() -> String {
    let out = Command::new(edgeup_binary())
        .arg("--version")
        .output()
        .expect("run edgeup --version");
    let version = stdout(&out).trim().to_string();
    let commit = version
        .strip_prefix(&format!("edgeup {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `edgeup VERSION (git COMMIT)`: {version}"));
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "no 12-digit commit in {version} (is this a git checkout?)"
    );
    version
}

/// Every file the packages carry (zsh's directory differs between them):
/// one gzipped man page per page the binary generates.
fn expected_files(binary: &Path, zsh_dir: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(binary)
        .args(["man", "--dir"])
        .arg(tmp.path())
        .output()
        .expect("run edgeup man");
    assert!(out.status.success(), "edgeup man --dir failed");
    let mut files: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("man dir")
        .flatten()
        .map(|e| format!("/usr/share/man/man1/{}.gz", e.file_name().to_string_lossy()))
        .collect();
    assert!(files.len() > 5, "too few man pages: {files:?}");
    files.extend(
        [
            "/usr/bin/edgeup",
            "/usr/share/bash-completion/completions/edgeup",
            &format!("{zsh_dir}/_edgeup"),
            "/usr/share/fish/vendor_completions.d/edgeup.fish",
            "/usr/share/doc/edgeup/README.md",
            "/usr/share/doc/edgeup/LICENSE-MIT",
            "/usr/share/doc/edgeup/LICENSE-APACHE",
        ]
        .map(String::from),
    );
    files.sort();
    files
}

/// A booted `suite` with the .deb in /root and no edgeup anywhere else.
fn boot_with_deb(suite: &str, name: &str, deb: &Path) -> Container {
    let file = deb.file_name().expect("deb name").to_owned();
    container::Boot::new(container::base_rootfs(suite), name)
        .prepare(move |root| {
            std::fs::copy(deb, root.join("root").join(&file)).expect("copy the .deb in");
        })
        .start()
}

/// `apt-get install -y [extra] ./edgeup_*.deb` (after an update: a
/// debootstrap'd rootfs has no package lists).
fn apt_install_deb(c: &Container, extra: &str) -> String {
    c.ok(&format!(
        "export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout=300 update -qq && \
         cd /root && apt-get -o DPkg::Lock::Timeout=300 install -y -q {extra} ./edgeup_*.deb 2>&1"
    ))
}

/// What the installed .deb put on the host: the binary (root's, 0755) that
/// names this build, the man pages, the completions, no unit, and no copy
/// in /usr/local/bin.
fn assert_installed_deb(c: &Container, packages: &Packages) {
    assert_eq!(c.ok("command -v edgeup").trim(), "/usr/bin/edgeup");
    assert_eq!(c.ok("edgeup --version").trim(), expected_version());
    assert_eq!(
        c.ok("stat -c '%a %U %G' /usr/bin/edgeup").trim(),
        "755 root root"
    );
    let listed = c.ok("dpkg -L edgeup");
    let mut files: Vec<String> = listed
        .lines()
        .filter(|p| c.path(p).is_file())
        .map(String::from)
        .collect();
    files.sort();
    let mut expected = expected_files(&packages.binary, "/usr/share/zsh/vendor-completions");
    expected.push("/usr/share/doc/edgeup/copyright".into());
    expected.sort();
    assert_eq!(files, expected, "dpkg -L edgeup:\n{listed}");
    assert!(
        !listed.contains("systemd"),
        "the package ships a unit:\n{listed}"
    );
    assert!(
        c.ok("zcat /usr/share/man/man1/edgeup.1.gz")
            .contains(".TH edgeup 1"),
        "edgeup.1.gz is not the man page"
    );
    assert!(
        c.ok("cat /usr/share/bash-completion/completions/edgeup")
            .contains("complete -F _edgeup"),
        "bash completion"
    );
    assert!(
        c.ok("cat /usr/share/zsh/vendor-completions/_edgeup")
            .contains("#compdef edgeup")
    );
    assert!(
        c.ok("cat /usr/share/fish/vendor_completions.d/edgeup.fish")
            .contains("complete -c edgeup")
    );
    assert!(
        c.ok("cat /usr/share/doc/edgeup/copyright")
            .contains("License: MIT or Apache-2.0")
    );
    assert_eq!(
        c.ok("ls /etc/systemd/system | grep -c edgeup || true")
            .trim(),
        "0",
        "installing the package wrote a unit"
    );
    assert!(!c.path("/usr/local/bin/edgeup").exists());
}

/// Installs the .deb with `--no-install-recommends` on `suite`, shows
/// apply installing haproxy/certbot/openssl, converging (ACME off) and
/// serving HTTPS, and a second apply changing nothing. Returns the container.
fn converge_from_deb(suite: &str, haproxy: &str, backend: u16) -> Container {
    let packages = packages();
    let c = boot_with_deb(suite, &format!("pkg-{suite}"), &packages.deb);
    assert!(
        c.ok("cat /etc/os-release")
            .contains(&format!("VERSION_CODENAME={suite}")),
        "not a {suite} rootfs"
    );
    apt_install_deb(&c, "--no-install-recommends");
    assert_installed_deb(&c, packages);
    // (openssl is in the base system already: ca-certificates depends on it.)
    let before = c.ok("dpkg-query -W -f='${db:Status-Status} ' haproxy certbot 2>/dev/null; true");
    assert!(
        before.split_whitespace().all(|s| s != "installed"),
        "--no-install-recommends installed a recommendation: {before}"
    );
    let flags = site_flags(backend);
    let first = edgeup(&c, &format!("apply {flags}"));
    assert_fresh_apply(&first);
    let status =
        c.ok("dpkg-query -W -f='${Package} ${db:Status-Status}\\n' haproxy certbot openssl");
    for package in ["haproxy", "certbot", "openssl"] {
        assert!(
            status.contains(&format!("{package} installed")),
            "apply did not install {package}: {status}"
        );
    }
    let version = c.ok("haproxy -v");
    assert!(version.contains(&format!("version {haproxy}")), "{version}");
    let check = c.sh(&format!("haproxy -c -f {CFG}"));
    let said = format!(
        "{}{}",
        stdout(&check),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{said}");
    assert!(!said.contains("WARNING"), "HAProxy {haproxy} warns: {said}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = served_cert(&c, tmp.path());
    assert_serves_the_site(&c, &ca.to_string_lossy(), suite, haproxy);
    assert!(!c.path("/usr/local/bin/edgeup").exists());

    let cfg = std::fs::read(c.path(CFG)).expect("haproxy.cfg");
    let second = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.count("changed"),
        0,
        "second run changed: {:?}",
        second.changed_steps()
    );
    assert_eq!(std::fs::read(c.path(CFG)).expect("haproxy.cfg"), cfg);
    c
}

// ============================================================ 1. Debian 12

/// apt installs the .deb (its recommendations too), the packaged binary
/// converges with the builtin ACME client against Pebble, the renewal unit
/// runs /usr/bin/edgeup (and succeeds) with nothing copied to
/// /usr/local/bin, a second apply changes nothing; `apt-get remove` warns
/// and leaves the site serving; reinstalled, apply changes nothing and
/// haproxy.cfg is byte-identical.
#[test]
fn package_deb_on_bookworm_converges_runs_the_packaged_binary_and_survives_removal() {
    let packages = packages();
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("package");
    let pebble = pebble();
    let c = boot_with_deb("bookworm", "pkg-bookworm", &packages.deb);
    let installed = apt_install_deb(&c, "");
    assert_installed_deb(&c, packages);
    // The recommendations came with it (apt's default).
    let status =
        c.ok("dpkg-query -W -f='${Package} ${db:Status-Status}\\n' haproxy certbot openssl");
    assert_eq!(
        status.matches(" installed").count(),
        3,
        "recommends not installed: {status}\n{installed}"
    );

    trust_pebble(&c, &pebble);
    let flags = acme_flags(backend, &pebble, "builtin");
    let first = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    assert_pebble_issued(&c, &pebble);
    let unit = c.ok("cat /etc/systemd/system/edgeup-renew.service");
    assert!(
        unit.contains("\nExecStart=/usr/bin/edgeup renew --quiet\n"),
        "{unit}"
    );
    assert!(
        !c.path("/usr/local/bin/edgeup").exists(),
        "apply copied itself to /usr/local/bin"
    );
    assert_eq!(
        c.ok("systemctl is-active edgeup-renew.timer").trim(),
        "active"
    );
    // What the timer starts runs the packaged binary, and succeeds.
    c.ok("systemctl start edgeup-renew.service");
    assert_eq!(
        c.ok("systemctl show -p ExecMainStatus --value edgeup-renew.service")
            .trim(),
        "0"
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G' /usr/bin/edgeup").trim(),
        "755 root root"
    );
    c.ok("dpkg --verify edgeup");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.issuer_root()).expect("write root");
    let https = || {
        curl(&[
            "--cacert",
            &root.to_string_lossy(),
            &format!("https://{DOMAIN}/"),
        ])
    };
    let (body, err) = https();
    assert!(body.starts_with("backend: package"), "{body} {err}");

    let second = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.count("changed"), 0, "{:?}", second.changed_steps());
    let cfg = std::fs::read(c.path(CFG)).expect("haproxy.cfg");

    // Removal: warns (the unit runs the packaged binary), never fails, and
    // the site keeps serving.
    let removed = c.ok("DEBIAN_FRONTEND=noninteractive apt-get remove -y edgeup 2>&1");
    assert!(
        removed.contains(WARNING),
        "no warning on remove:\n{removed}"
    );
    assert!(!c.path("/usr/bin/edgeup").exists());
    assert!(c.path("/etc/systemd/system/edgeup-renew.service").exists());
    let (body, err) = https();
    assert!(
        body.starts_with("backend: package"),
        "not serving after remove: {body} {err}"
    );

    // Reinstalled: a no-op apply, the same haproxy.cfg.
    let again = apt_install_deb(&c, "");
    assert!(!again.contains(WARNING), "{again}");
    let third = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(third.count("changed"), 0, "{:?}", third.changed_steps());
    assert_eq!(std::fs::read(c.path(CFG)).expect("haproxy.cfg"), cfg);
    assert!(!c.path("/usr/local/bin/edgeup").exists());
    eprintln!("scenario package bookworm: {:.1?}", started.elapsed());
}

// ============================================================ 2. Debian 13

#[test]
fn package_deb_on_trixie_converges_and_serves() {
    let packages = packages();
    let _ = packages;
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("trixie");
    let _c = converge_from_deb("trixie", "3.0.", backend);
    eprintln!("scenario package trixie: {:.1?}", started.elapsed());
}

// ============================================================ 3. Debian 11

/// One binary for every release: the static build from the .deb converges
/// Debian 11 (glibc 2.31, HAProxy 2.2) and serves HTTPS.
#[test]
fn package_deb_on_bullseye_converges_haproxy_2_2_and_serves() {
    let _ = packages();
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("bullseye");
    let c = converge_from_deb("bullseye", "2.2.", backend);
    assert!(
        c.ok("ldd /usr/bin/edgeup 2>&1 || true")
            .contains("not a dynamic executable")
            || c.ok("ldd /usr/bin/edgeup 2>&1 || true")
                .contains("statically linked"),
        "the packaged binary is not static"
    );
    eprintln!("scenario package bullseye: {:.1?}", started.elapsed());
}

// ============================================================ 4. the .rpm

/// The .rpm, with Debian's rpm tools (never on a real RHEL here): exactly
/// the expected files, no dependency beyond rpmlib() and the scriptlet's
/// /bin/sh, haproxy/certbot/openssl as weak dependencies, a %preun that
/// only warns, and an install into a scratch root whose binary runs.
#[test]
fn package_rpm_has_the_files_and_only_weak_dependencies_and_installs_into_a_scratch_root() {
    let packages = packages();
    let started = Instant::now();
    let rpm = |args: &[&str]| -> String {
        let out = Command::new("rpm")
            .args(args)
            .arg(&packages.rpm)
            .output()
            .expect("run rpm");
        assert!(
            out.status.success(),
            "rpm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    let mut listed: Vec<String> = rpm(&["-qlp"])
        .lines()
        .filter(|l| *l != "/usr/share/doc/edgeup")
        .map(String::from)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        expected_files(&packages.binary, "/usr/share/zsh/site-functions")
    );
    let requires = rpm(&["-qp", "--requires"]);
    for line in requires.lines() {
        assert!(
            line.starts_with("rpmlib(") || line == "/bin/sh",
            "an unexpected dependency: {line}\n{requires}"
        );
    }
    assert!(!requires.contains(".so"), "{requires}");
    let mut recommends: Vec<&str> = Vec::new();
    let weak = rpm(&["-qp", "--recommends"]);
    recommends.extend(weak.lines());
    recommends.sort();
    assert_eq!(recommends, ["certbot", "haproxy", "openssl"]);
    let provides = rpm(&["-qp", "--provides"]);
    assert!(
        provides.lines().all(|l| l.starts_with("edgeup")),
        "{provides}"
    );
    let info = rpm(&[
        "-qp",
        "--queryformat",
        "%{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}",
    ]);
    assert_eq!(
        info,
        format!("{}-1 x86_64 MIT OR Apache-2.0", env!("CARGO_PKG_VERSION"))
    );
    let scripts = rpm(&["-qp", "--scripts"]);
    assert!(scripts.contains("preuninstall scriptlet"), "{scripts}");
    assert!(scripts.contains(WARNING), "{scripts}");
    assert!(!scripts.contains("systemctl"), "{scripts}");
    let modes = rpm(&["-qp", "--dump"]);
    let bin = modes
        .lines()
        .find(|l| l.starts_with("/usr/bin/edgeup "))
        .unwrap_or_else(|| panic!("{modes}"));
    // path size mtime digest mode owner group ...
    let fields: Vec<&str> = bin.split_whitespace().collect();
    assert_eq!(
        fields.get(4..7),
        Some(&["0100755", "root", "root"][..]),
        "{bin}"
    );

    // Installed into a scratch root (its own database); the binary runs.
    let scratch = tempfile::tempdir().expect("scratch root");
    let out = Command::new("rpm")
        .arg("--root")
        .arg(scratch.path())
        .args(["--dbpath", "/rpmdb", "--nodeps", "--noscripts", "-i"])
        .arg(&packages.rpm)
        .output()
        .expect("run rpm -i");
    assert!(
        out.status.success(),
        "rpm -i into a scratch root failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = scratch.path().join("usr/bin/edgeup");
    let version = Command::new(&installed)
        .arg("--version")
        .output()
        .expect("run the installed edgeup");
    assert_eq!(stdout(&version).trim(), expected_version());
    assert!(
        scratch
            .path()
            .join("usr/share/zsh/site-functions/_edgeup")
            .is_file()
    );
    eprintln!("package rpm checks: {:.1?}", started.elapsed());
}
