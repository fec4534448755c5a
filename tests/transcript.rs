//! Transcript tests (pyinfra style) and engine semantics, on the real
//! library: `edgeup::run::converge` with the embedded open-webui
//! playbook, the shipped distro profiles and the real steps, against a
//! fixture root directory (see `transcript/fixture.rs`) whose commands are
//! answered by the `ScriptedRunner`.
//!
//! "Mutating" commands are all commands except the read-only queries
//! `systemctl show`, `rpm -q`, `firewall-cmd --state` and
//! `firewall-cmd [--permanent] --list-services` (`fixture::is_read_only`).
//! The `haproxy -c` validation counts as mutating: it only runs as part of
//! replacing haproxy.cfg.
//!
//! The tests run as root (they chown inside the fixture).

#[path = "common/mod.rs"]
mod common;
#[path = "transcript/certbot.rs"]
mod fake_certbot;
#[path = "transcript/fixture.rs"]
mod fixture;

use edgeup::engine::Mode;
use edgeup::host::CmdOutput;
use edgeup::report::Status::{self, Changed, Failed, Ok as Okay, Skipped};
use fixture::*;
use std::os::unix::fs::PermissionsExt;

const REPO: &str = "Enable the repository that carries certbot";
const PACKAGES: &str = "Install haproxy, certbot and openssl";
const CERT_DIR: &str = "Certificate directory";
const PLACEHOLDER: &str = "Placeholder certificate (until a CA-issued one exists)";
const MAP: &str = "Host name map (every site's names -> its backend)";
const CONFIG: &str = "haproxy.cfg";
const FIREWALL: &str = "Open ports 80 and 443";
const SELINUX: &str = "SELinux lets HAProxy reach the app and the ACME responder";
const SERVICE: &str = "haproxy enabled and running";
const RELOAD: &str = "reload haproxy";
const SITE_RECORD: &str = "Remember the sites (/etc/edgeup/site.yaml)";

const VALIDATE: &str = "haproxy -c -q -f /etc/haproxy/.haproxy.cfg.edgeup-PID";
const ENABLE: &str = "systemctl enable haproxy.service";
const START: &str = "systemctl start haproxy.service";
const RELOAD_CMD: &str = "systemctl reload haproxy.service";
const CERTIFICATE: &str = "CA-issued certificate";
/// What a fresh Rocky 9 apply runs for one site with ACME off.
const ROCKY_CONVERGE: [&str; 9] = [
    "dnf install -y epel-release",
    "dnf install -y haproxy certbot openssl",
    VALIDATE,
    "firewall-cmd --permanent --add-service=http --add-service=https",
    "firewall-cmd --add-service=http --add-service=https",
    "setsebool -P haproxy_connect_any on",
    ENABLE,
    START,
    RELOAD_CMD,
];

fn steps(expected: &[(&str, Status)]) -> Vec<(String, Status, bool)> {
    expected
        .iter()
        .map(|(name, status)| (name.to_string(), *status, *name == RELOAD))
        .collect()
}

fn all_ok(family: Family) -> Vec<(String, Status, bool)> {
    match family {
        Family::Debian => steps(&[
            (REPO, Skipped),
            (PACKAGES, Okay),
            (CERT_DIR, Okay),
            (PLACEHOLDER, Okay),
            (MAP, Okay),
            (CONFIG, Okay),
            (FIREWALL, Okay),
            (SELINUX, Skipped),
            (SERVICE, Okay),
            (SITE_RECORD, Okay),
        ]),
        Family::Rocky => steps(&[
            (REPO, Okay),
            (PACKAGES, Okay),
            (CERT_DIR, Okay),
            (PLACEHOLDER, Okay),
            (MAP, Okay),
            (CONFIG, Okay),
            (FIREWALL, Okay),
            (SELINUX, Okay),
            (SERVICE, Okay),
            (SITE_RECORD, Okay),
        ]),
    }
}

fn pending(fx: &Fixture) -> Option<String> {
    fx.read(PENDING)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

// =================================================================== fresh hosts

#[test]
fn debian_fresh_apply_transcript() {
    let fx = Fixture::debian_12();
    let run = fx.apply();
    assert_eq!(
        run.mutating(),
        [
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update",
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy certbot openssl procps",
            VALIDATE,
            ENABLE,
            START,
            RELOAD_CMD,
        ],
        "{run:#?}"
    );
    assert_eq!(
        run.statuses(),
        steps(&[
            (REPO, Skipped),
            (PACKAGES, Changed),
            (CERT_DIR, Changed),
            (PLACEHOLDER, Changed),
            (MAP, Changed),
            (CONFIG, Changed),
            (FIREWALL, Okay),
            (SELINUX, Skipped),
            (SERVICE, Changed),
            (SITE_RECORD, Changed),
            (RELOAD, Changed),
        ]),
        "{run:#?}"
    );
    let recap = run.recap();
    assert_eq!(
        (recap.ok, recap.changed, recap.failed, recap.skipped),
        (1, 8, 0, 2 + run.acme_skipped())
    );
    assert_eq!(
        run.acme_skipped(),
        7,
        "every renewal step is skipped with ACME off (and no site has certificate steps)"
    );
    assert_eq!(
        run.message(FIREWALL),
        "no active firewall (nothing to open)"
    );
    assert_eq!(pending(&fx), None, "handlers ran: nothing stays pending");
}

#[test]
fn rocky_fresh_apply_transcript() {
    let fx = Fixture::rocky_9();
    let run = fx.apply();
    assert_eq!(run.mutating(), ROCKY_CONVERGE, "{run:#?}");
    assert_eq!(
        run.statuses(),
        steps(&[
            (REPO, Changed),
            (PACKAGES, Changed),
            (CERT_DIR, Changed),
            (PLACEHOLDER, Changed),
            (MAP, Changed),
            (CONFIG, Changed),
            (FIREWALL, Changed),
            (SELINUX, Changed),
            (SERVICE, Changed),
            (SITE_RECORD, Changed),
            (RELOAD, Changed),
        ]),
        "{run:#?}"
    );
    assert_eq!(run.recap().changed, 11);
    assert_eq!(
        run.changes(FIREWALL),
        [
            "firewalld: allow service http (permanent)",
            "firewalld: allow service https (permanent)"
        ]
    );
    assert_eq!(
        run.changes(SELINUX),
        ["setsebool -P haproxy_connect_any on (now off)"]
    );
    // The simulated state the commands left behind.
    let zone = String::from_utf8(
        fx.read("/etc/firewalld/zones/public.xml")
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(zone.contains("<service name=\"https\"/>"), "{zone}");
    assert_eq!(
        fx.read("/sys/fs/selinux/booleans/haproxy_connect_any"),
        Some(b"1 1".to_vec())
    );
}

/// The fixture's dnf finds certbot only once EPEL is installed, so the order
/// of the two package steps is load-bearing, not cosmetic.
#[test]
fn rocky_certbot_needs_epel_first() {
    let fx = Fixture::rocky_9();
    let run = fx.run(Mode::Apply, |r| {
        r.respond(
            "dnf install -y epel-release",
            CmdOutput::ok("Nothing to do."),
        )
    });
    assert_eq!(
        run.statuses()[0],
        (REPO.to_string(), Failed, false),
        "{run:#?}"
    );
    assert!(
        run.message(REPO)
            .contains("still does not converge: install epel-release"),
        "{run:#?}"
    );
    assert_eq!(run.mutating(), ["dnf install -y epel-release"], "{run:#?}");
}

/// Debian's real postinst enables and starts haproxy with the packaged
/// config: the service step then has nothing to do, and the handler reloads.
#[test]
fn debian_package_that_starts_haproxy_is_only_reloaded() {
    let mut fx = Fixture::debian_12();
    fx.behaviour.package_starts_service = true;
    let run = fx.apply();
    assert_eq!(
        run.mutating(),
        [
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update",
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy certbot openssl procps",
            VALIDATE,
            RELOAD_CMD,
        ],
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 0);
}

/// Only missing packages are installed; fresh lists that lack a package are
/// refreshed once and the install retried.
#[test]
fn debian_installs_only_missing_packages_and_refreshes_fresh_but_stale_lists() {
    let fx = Fixture::debian_12();
    let status =
        String::from_utf8(fx.read("/var/lib/dpkg/status").unwrap_or_default()).unwrap_or_default();
    fx.write(
        "/var/lib/dpkg/status",
        &format!(
            "{status}\nPackage: openssl\nStatus: install ok installed\nVersion: 3.0.17-1~deb12u2\n\n\
             Package: procps\nStatus: install ok installed\nVersion: 2:4.0.2-3\n"
        ),
    );
    fx.write("/usr/bin/kill", "");
    // Fetched minutes ago (not stale by age), but from a mirror without haproxy.
    fx.write(
        "/var/lib/apt/lists/mirror.example_debian_dists_bookworm_main_binary-amd64_Packages",
        "Package: openssl\n\n",
    );
    let run = fx.apply();
    let install = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy certbot";
    assert_eq!(
        run.mutating()[..3],
        [
            install,
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update",
            install
        ],
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 0, "{run:#?}");
}

// =================================================================== second run

fn second_apply_changes_nothing(fx: Fixture) {
    let family = fx.family;
    let fx = fx.converged();
    let run = fx.apply();
    assert_eq!(run.mutating(), Vec::<String>::new(), "{run:#?}");
    assert_eq!(run.count(RELOAD_CMD), 0);
    assert_eq!(run.statuses(), all_ok(family), "{run:#?}");
    let recap = run.recap();
    assert_eq!((recap.changed, recap.failed), (0, 0));
}

#[test]
fn debian_second_apply_changes_nothing() {
    second_apply_changes_nothing(Fixture::debian_12());
}

#[test]
fn rocky_second_apply_changes_nothing() {
    second_apply_changes_nothing(Fixture::rocky_9());
}

#[test]
fn plan_on_converged_host_reports_nothing_to_do() {
    for fx in [Fixture::debian_12(), Fixture::rocky_9()] {
        let fx = fx.converged();
        let before = snapshot(fx.root());
        let run = fx.plan();
        assert_eq!(run.mutating(), Vec::<String>::new(), "{run:#?}");
        let recap = run.recap();
        assert_eq!((recap.changed, recap.failed), (0, 0), "{run:#?}");
        assert!(snapshot(fx.root()) == before, "plan changed the host");
    }
}

// =================================================================== plan

fn plan_changes_nothing(fx: Fixture) {
    let before = snapshot(fx.root());
    let run = fx.plan();
    let after = snapshot(fx.root());
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "plan touched {changed:?}");
    assert_eq!(run.mutating(), Vec::<String>::new(), "{run:#?}");
    let recap = run.recap();
    assert!(recap.changed > 0, "{run:#?}");
    let mut missing = vec!["install haproxy", "install certbot", "install openssl"];
    if fx.family == Family::Debian {
        missing.push("install procps");
    }
    assert_eq!(run.changes(PACKAGES), missing);
    assert_eq!(run.message(PLACEHOLDER), "would notify: reload haproxy");
}

#[test]
fn debian_plan_changes_nothing() {
    plan_changes_nothing(Fixture::debian_12());
}

#[test]
fn rocky_plan_changes_nothing() {
    plan_changes_nothing(Fixture::rocky_9());
}

/// BUG (reported): on a fresh host haproxy.service does not exist yet, and
/// the service step's check fails instead of reporting drift, so `edgeup
/// plan` on a fresh host exits 1 (failed) instead of 3 (changes pending).
#[test]
fn plan_on_fresh_host_reports_drift_not_failure() {
    for fx in [Fixture::debian_12(), Fixture::rocky_9()] {
        let run = fx.plan();
        let failed: Vec<(String, Status, bool)> = run
            .statuses()
            .into_iter()
            .filter(|(_, status, _)| *status == Failed)
            .collect();
        assert_eq!(failed, [], "{run:#?}");
        assert_eq!(
            run.statuses().last().map(|s| s.1),
            Some(Changed),
            "{run:#?}"
        );
    }
}

// =================================================================== files written

fn files_written(fx: Fixture, version: &str) {
    let fx = fx.converged();
    let (_, gid) = fx.haproxy_ids();
    // Root's (HAProxy's master loads them as root): the haproxy user cannot
    // write the crt directory or plant links in it.
    assert_eq!(fx.attrs(CERTS), (0o700, 0, 0), "certs dir");
    assert_eq!(fx.attrs(PEM), (0o600, 0, 0), "PEM");
    assert_eq!(fx.attrs(CFG), (0o640, 0, gid), "haproxy.cfg");

    let pem = fx.read(PEM).unwrap_or_default();
    let bundle = edgeup::pki::parse_bundle(&pem).expect("the PEM parses");
    let leaf = bundle.leaf().expect("a leaf certificate");
    assert!(leaf.placeholder && leaf.covers(DOMAIN), "{leaf:?}");
    assert!(bundle.key_matches());

    let cfg = String::from_utf8(fx.read(CFG).unwrap_or_default()).unwrap_or_default();
    assert!(cfg.contains("127.0.0.1:3000"), "{cfg}");
    assert!(cfg.contains(PEM) || cfg.contains(CERTS), "{cfg}");
    // Rendered for the HAProxy the packages step installed, not the assumed one.
    assert!(
        cfg.contains(&format!("rendered for HAProxy {version}.\n")),
        "{}",
        cfg.lines().take(4).collect::<Vec<_>>().join("\n")
    );

    // The packaged haproxy.cfg was backed up before being replaced.
    let backups = list_dir(fx.root(), "/var/lib/edgeup/backups");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(
        backups[0].starts_with("etc%haproxy%haproxy.cfg."),
        "{backups:?}"
    );
    assert_eq!(
        fx.read(&format!("/var/lib/edgeup/backups/{}", backups[0])),
        Some(PACKAGE_CFG.as_bytes().to_vec())
    );
    assert_eq!(temp_files(fx.root()), Vec::<String>::new());
    assert_eq!(
        list_dir(fx.root(), "/etc/haproxy/certs"),
        [format!("{DOMAIN}.pem")]
    );
    assert_eq!(
        list_dir(fx.root(), "/etc/haproxy"),
        ["certs", "edgeup-sites.map", "haproxy.cfg"]
    );
}

#[test]
fn debian_files_written() {
    files_written(Fixture::debian_12(), "2.6");
}

#[test]
fn rocky_files_written() {
    files_written(Fixture::rocky_9(), "2.4");
}

// =================================================================== engine semantics

/// (b) A run killed after a change but before its reload left the
/// notification on disk: the next run reloads exactly once and clears it.
#[test]
fn pending_handler_survives_a_crash() {
    let fx = Fixture::debian_12().converged();
    fx.write(PENDING, "reload haproxy\n");
    let run = fx.apply();
    assert_eq!(run.mutating(), [RELOAD_CMD], "{run:#?}");
    let mut expected = all_ok(Family::Debian);
    expected.push((RELOAD.into(), Changed, true));
    assert_eq!(run.statuses(), expected, "{run:#?}");
    assert!(!fx.exists(PENDING), "pending-handlers is removed once run");

    // And a plan shows a pending handler without running it.
    fx.write(PENDING, "reload haproxy\n");
    let plan = fx.plan();
    assert_eq!(plan.mutating(), Vec::<String>::new(), "{plan:#?}");
    assert_eq!(plan.message(RELOAD), "pending from an earlier run");
    assert_eq!(pending(&fx).as_deref(), Some("reload haproxy\n"));
}

/// (c) apply re-checks: a step whose action "succeeds" without effect is a
/// failure, and the run stops there (later steps and handlers do not run,
/// the notification stays pending for the next run).
#[test]
fn apply_without_effect_fails_and_stops_the_run() {
    let fx = Fixture::rocky_9();
    let run = fx.run(Mode::Apply, |r| r.respond("setsebool", CmdOutput::ok("")));
    assert_eq!(run.status(SELINUX), Failed, "{run:#?}");
    assert!(
        run.message(SELINUX).contains(
            "applied, but the step still does not converge: setsebool -P haproxy_connect_any on"
        ),
        "{run:#?}"
    );
    assert!(!run.begun.iter().any(|b| b == SERVICE), "{:?}", run.begun);
    assert!(!run.begun.iter().any(|b| b == RELOAD), "{:?}", run.begun);
    assert!(
        !run.commands
            .iter()
            .any(|c| c.starts_with("systemctl ") && !c.starts_with("systemctl show"))
    );
    assert_eq!(run.recap().failed, 1);
    assert_eq!(pending(&fx).as_deref(), Some("reload haproxy\n"));
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("kept for the next run") && w.contains(RELOAD)),
        "{run:#?}"
    );
}

/// (c) `systemctl enable` that leaves the unit disabled: the engine's
/// re-check reports it.
#[test]
fn service_enable_without_effect_does_not_converge() {
    let fx = Fixture::debian_12();
    let run = fx.run(Mode::Apply, |r| r.respond(ENABLE, CmdOutput::ok("")));
    assert!(
        run.message(SERVICE)
            .contains("still does not converge: enable haproxy.service"),
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 1);
    assert_eq!(run.count(RELOAD_CMD), 0);
}

/// (c) `systemctl start` that leaves the unit inactive: the service step
/// verifies the unit itself and fails with a pointer to the journal.
#[test]
fn service_start_without_effect_fails() {
    let fx = Fixture::debian_12();
    let run = fx.run(Mode::Apply, |r| r.respond(START, CmdOutput::ok("")));
    let message = run.message(SERVICE);
    assert!(
        message.contains("haproxy.service is not active after started")
            && message.contains("journalctl -u haproxy.service"),
        "{run:#?}"
    );
    assert_eq!(run.status(SERVICE), Failed);
    let recap = run.recap();
    assert_eq!((recap.failed, recap.changed), (1, 5), "{run:#?}");
    assert_eq!(run.count(RELOAD_CMD), 0, "no handler after a failed step");
}

/// (d) A reload that fails on the new haproxy.cfg: the previous file comes
/// back (content, mode, owner), the service is reloaded on it, and the
/// failure is reported.
#[test]
fn failed_reload_rolls_back_haproxy_cfg() {
    let fx = Fixture::debian_12().converged();
    let edited = format!(
        "{}# local edit\n",
        String::from_utf8(fx.read(CFG).unwrap_or_default()).unwrap_or_default()
    );
    fx.write(CFG, &edited);
    let before = fx.attrs(CFG);
    // HAProxy refuses the new config but still runs the previous one.
    let run = fx.run(Mode::Apply, |r| {
        r.dynamic(RELOAD_CMD, |root, _| {
            let live = std::fs::read_to_string(root.join("etc/haproxy/haproxy.cfg"))?;
            Ok(if live.contains("# local edit") {
                CmdOutput::ok("")
            } else {
                CmdOutput::failed(1, "Job for haproxy.service failed because the control process exited with error code.")
            })
        })
    });
    assert_eq!(run.status(CONFIG), Changed, "{run:#?}");
    assert_eq!(run.status(RELOAD), Failed, "{run:#?}");
    let message = run.message(RELOAD);
    assert!(
        message.contains("Job for haproxy.service failed"),
        "{message}"
    );
    assert!(
        message.contains("rolled back /etc/haproxy/haproxy.cfg"),
        "{message}"
    );
    assert!(
        message.contains("the previous configuration is running again"),
        "{message}"
    );
    assert_eq!(
        fx.read(CFG),
        Some(edited.into_bytes()),
        "old haproxy.cfg restored"
    );
    assert_eq!(fx.attrs(CFG), before);
    assert_eq!(
        run.count(RELOAD_CMD),
        2,
        "reload, then reload on the old file"
    );
    assert_eq!(run.recap().failed, 1);
    assert_eq!(temp_files(fx.root()), Vec::<String>::new());
}

/// A failed reload puts the site record back with the configuration: the
/// record keeps describing what HAProxy serves.
#[test]
fn failed_reload_puts_the_previous_site_record_back() {
    let mut fx = Fixture::debian_12().converged();
    let record = "/etc/edgeup/site.yaml";
    let (cfg_before, record_before) = (fx.read(CFG), fx.read(record));
    assert!(
        record_before.is_some(),
        "the converged fixture has a record"
    );
    fx.config.sites[0].backends = vec!["127.0.0.1:3009".parse().expect("backend")];
    let run = fx.run(Mode::Apply, |r| {
        r.dynamic(RELOAD_CMD, |root, _| {
            let live = std::fs::read_to_string(root.join("etc/haproxy/haproxy.cfg"))?;
            Ok(if live.contains("127.0.0.1:3009") {
                CmdOutput::failed(1, "Job for haproxy.service failed.")
            } else {
                CmdOutput::ok("")
            })
        })
    });
    assert_eq!(run.status(SITE_RECORD), Changed, "{run:#?}");
    assert_eq!(run.status(RELOAD), Failed, "{run:#?}");
    assert!(
        run.message(RELOAD)
            .contains("rolled back /etc/edgeup/site.yaml"),
        "{}",
        run.message(RELOAD)
    );
    assert_eq!(fx.read(CFG), cfg_before, "haproxy.cfg rolled back");
    assert_eq!(fx.read(record), record_before, "the record rolled back");
}

/// (e) `haproxy -c` rejects the new config: the live file is untouched and
/// no temp file is left behind.
#[test]
fn rejected_config_leaves_the_live_file_alone() {
    let fx = Fixture::debian_12().converged();
    let edited = b"# hand-edited\nglobal\n".to_vec();
    fx.write(CFG, "# hand-edited\nglobal\n");
    let before = fx.attrs(CFG);
    let run = fx.run(Mode::Apply, |r| {
        r.respond(
            "haproxy -c",
            CmdOutput::failed(
                1,
                "[ALERT] config : parsing [haproxy.cfg:12] : unknown keyword 'bogus'",
            ),
        )
    });
    assert_eq!(run.status(CONFIG), Failed, "{run:#?}");
    let message = run.message(CONFIG);
    assert!(
        message.contains("was rejected by `haproxy -c -q -f {}`"),
        "{message}"
    );
    assert!(message.contains("unknown keyword 'bogus'"), "{message}");
    assert!(
        message.contains("the live file was not changed"),
        "{message}"
    );
    assert_eq!(
        fx.read(CFG),
        Some(edited),
        "live haproxy.cfg byte-identical"
    );
    assert_eq!(fx.attrs(CFG), before);
    assert_eq!(
        list_dir(fx.root(), "/etc/haproxy"),
        ["certs", "edgeup-sites.map", "haproxy.cfg"]
    );
    assert_eq!(temp_files(fx.root()), Vec::<String>::new());
    assert_eq!(run.mutating(), [VALIDATE], "no reload after a failed step");
    assert_eq!(run.recap().failed, 1);
}

/// (f) Drift repair: a PEM made world-readable is fixed by exactly one
/// changed step and one reload; its content is kept.
#[test]
fn chmod_drift_on_the_pem_is_repaired() {
    let fx = Fixture::debian_12().converged();
    let pem = fx.read(PEM);
    fx.chmod(PEM, 0o644);
    let run = fx.apply();
    let mut expected = all_ok(Family::Debian);
    expected[3].1 = Changed;
    expected.push((RELOAD.into(), Changed, true));
    assert_eq!(run.statuses(), expected, "{run:#?}");
    assert_eq!(
        run.changes(PLACEHOLDER),
        ["/etc/haproxy/certs/chat.example.com.pem: mode 0644 -> 0600"]
    );
    assert_eq!(run.mutating(), [RELOAD_CMD], "{run:#?}");
    assert_eq!(fx.read(PEM), pem, "same certificate, only the mode fixed");
    assert_eq!(fx.attrs(PEM), (0o600, 0, 0));
    let mode = std::fs::metadata(fx.path(PEM)).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
}

/// RHEL proper has no epel-release package: EPEL's release rpm comes from the
/// Fedora project's URL, is checked by its package name, and is not
/// reinstalled on the next run.
#[test]
fn rhel_installs_epel_from_the_fedora_project_url() {
    let fx = Fixture::rhel_9();
    let run = fx.apply();
    let mutating = run.mutating();
    assert_eq!(
        mutating[..2],
        [
            format!("dnf install -y {EPEL_URL}"),
            "dnf install -y haproxy certbot openssl".to_string()
        ],
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 0, "{run:#?}");
    let again = fx.apply();
    assert_eq!(again.mutating(), Vec::<String>::new(), "{again:#?}");
}

/// A dpkg run killed mid-way (power loss, a killed edgeup): apt refuses, so
/// edgeup finishes it with `dpkg --configure -a` and installs again.
#[test]
fn interrupted_dpkg_is_finished_and_the_install_retried() {
    const CONFIGURE: &str =
        "DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a";
    const INSTALL: &str = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy certbot openssl procps";
    let fx = Fixture::debian_12();
    fx.write("/var/lib/dpkg/updates/0001", "Package: haproxy\n");
    let run = fx.run(Mode::Apply, |r| {
        r.effect(CONFIGURE, CmdOutput::ok(""), |root| {
            std::fs::remove_file(root.join("var/lib/dpkg/updates/0001"))?;
            Ok(())
        })
    });
    let mutating = run.mutating();
    assert_eq!(
        mutating[..4],
        [
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update",
            INSTALL,
            CONFIGURE,
            INSTALL
        ],
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 0, "{run:#?}");
}

/// ufw (Ubuntu's usual firewall): ports 80 and 443 allowed once, read back
/// from ufw's own rules file on the next run. (Not on a real host here: a
/// container sharing this machine's network would firewall the machine.)
/// dpkg killed while unpacking a package leaves it "in a very bad
/// inconsistent state": `dpkg --configure -a` fails on it and apt refuses
/// to run. edgeup takes it out (`--force-remove-reinstreq`), lets dpkg
/// finish, and `apt-get -f install` puts it back (found by the crash
/// scenario, where the kill happened to land mid-unpack).
#[test]
fn a_package_killed_mid_unpack_is_taken_out_and_put_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const CONFIGURE: &str =
        "DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a";
    const REMOVE: &str = "DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --force-remove-reinstreq --force-depends --remove python3-certifi";
    const INSTALL: &str = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy certbot openssl procps";
    const INSTALL_F: &str = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -f --no-install-recommends haproxy certbot openssl procps";
    const BROKEN: &str = "Package: python3-certifi\nStatus: install reinstreq half-installed\nVersion: 2022.9.24-1\n";
    let fx = Fixture::debian_12();
    fx.write("/var/lib/dpkg/updates/0001", "Package: python3-certifi\n");
    let status =
        String::from_utf8(fx.read("/var/lib/dpkg/status").unwrap_or_default()).unwrap_or_default();
    fx.write("/var/lib/dpkg/status", &format!("{status}\n{BROKEN}"));
    let configured = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&configured);
    let run = fx.run(Mode::Apply, move |r| {
        r.dynamic(CONFIGURE, move |_, _| {
            Ok(if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                CmdOutput::failed(
                    1,
                    "dpkg: error processing package python3-certifi (--configure):\n package is in \
                     a very bad inconsistent state; you should\n reinstall it before attempting \
                     configuration\n",
                )
            } else {
                CmdOutput::ok("")
            })
        })
        .effect(REMOVE, CmdOutput::ok(""), |root| {
            std::fs::remove_file(root.join("var/lib/dpkg/updates/0001"))?;
            let status = std::fs::read_to_string(root.join("var/lib/dpkg/status"))?;
            std::fs::write(root.join("var/lib/dpkg/status"), status.replace(BROKEN, ""))?;
            Ok(())
        })
    });
    assert_eq!(
        run.mutating()[..6],
        [
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update",
            INSTALL,
            CONFIGURE,
            REMOVE,
            CONFIGURE,
            INSTALL_F
        ],
        "{run:#?}"
    );
    assert_eq!(run.recap().failed, 0, "{run:#?}");
    assert_eq!(configured.load(Ordering::SeqCst), 2);
}

#[test]
fn ufw_allows_80_and_443_once() {
    let fx = Fixture::debian_12();
    fx.write("/usr/sbin/ufw", "#!/usr/bin/python3\n");
    fx.write(
        "/etc/ufw/ufw.conf",
        "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n",
    );
    fx.write(
        "/etc/ufw/user.rules",
        "*filter\n### RULES ###\n### END RULES ###\nCOMMIT\n",
    );
    fn ufw(root: &std::path::Path, cmd: &edgeup::host::Cmd) -> anyhow::Result<CmdOutput> {
        let [verb, spec] = cmd.args.as_slice() else {
            return Ok(CmdOutput::failed(1, "scripted ufw: unexpected arguments"));
        };
        let Some(port) = spec.strip_suffix("/tcp").filter(|_| verb == "allow") else {
            return Ok(CmdOutput::failed(1, "scripted ufw: unexpected rule"));
        };
        let path = root.join("etc/ufw/user.rules");
        let rules = std::fs::read_to_string(&path)?.replace(
            "### END RULES ###",
            &format!(
                "### tuple ### allow tcp {port} 0.0.0.0/0 any 0.0.0.0/0 in\n\
                 -A ufw-user-input -p tcp --dport {port} -j ACCEPT\n### END RULES ###"
            ),
        );
        std::fs::write(&path, rules)?;
        Ok(CmdOutput::ok("Rule added\nRule added (v6)\n"))
    }
    let run = fx.run(Mode::Apply, |r| r.dynamic("ufw allow", ufw));
    let opened: Vec<String> = run
        .mutating()
        .into_iter()
        .filter(|c| c.starts_with("ufw"))
        .collect();
    assert_eq!(
        opened,
        ["ufw allow 80/tcp", "ufw allow 443/tcp"],
        "{run:#?}"
    );
    assert_eq!(run.status(FIREWALL), Changed, "{run:#?}");
    let again = fx.run(Mode::Apply, |r| r.dynamic("ufw allow", ufw));
    assert_eq!(again.mutating(), Vec::<String>::new(), "{again:#?}");
    assert_eq!(again.message(FIREWALL), "ufw allows 80/tcp, 443/tcp");
}

// ==================================================================== many sites

/// Two sites on the RHEL path: the same command transcript as one site (one
/// validation, one reload), a PEM per site, both names in the host map; a
/// re-run runs nothing mutating; dropping a site archives its PEM with one
/// reload.
#[test]
fn rocky_two_sites_then_one() {
    let mut fx = Fixture::rocky_9();
    let mut second = site();
    second.domain = "grafana.example.com".into();
    second.backends = vec!["127.0.0.1:3001".parse().expect("backend")];
    fx.config.sites.push(second.clone());
    let run = fx.apply();
    assert_eq!(run.mutating(), ROCKY_CONVERGE, "{run:#?}");
    let placeholders: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| match e {
            edgeup::report::Event::Step {
                name, site, status, ..
            } if name == PLACEHOLDER => {
                Some(format!("{} {status:?}", site.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        placeholders,
        ["chat.example.com Changed", "grafana.example.com Changed"]
    );
    assert_eq!(
        list_dir(fx.root(), "/etc/haproxy/certs"),
        ["chat.example.com.pem", "grafana.example.com.pem"]
    );
    let map = String::from_utf8(fx.read("/etc/haproxy/edgeup-sites.map").unwrap_or_default())
        .unwrap_or_default();
    assert!(
        map.contains("\nchat.example.com site_chat.example.com\ngrafana.example.com site_grafana.example.com\n"),
        "{map}"
    );
    let record =
        String::from_utf8(fx.read("/etc/edgeup/site.yaml").unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        edgeup::site::Config::from_text(&record).as_ref(),
        Some(&fx.config),
        "{record}"
    );
    assert!(
        fx.apply().mutating().is_empty(),
        "a converged two-site host runs nothing"
    );

    fx.config.sites = vec![second];
    let run = fx.apply();
    assert_eq!(run.mutating(), [VALIDATE, RELOAD_CMD], "{run:#?}");
    assert_eq!(run.status("Retire the removed site"), Changed, "{run:#?}");
    assert_eq!(
        list_dir(fx.root(), "/etc/haproxy/certs"),
        ["grafana.example.com.pem"]
    );
    let archived = list_dir(fx.root(), "/var/lib/edgeup/archive");
    assert!(
        archived.len() == 1 && archived[0].starts_with("chat.example.com.pem."),
        "{archived:?}"
    );
    assert_eq!(fx.attrs("/var/lib/edgeup/archive").0 & 0o777, 0o700);
    assert!(
        fx.apply().mutating().is_empty(),
        "retired once, then converged"
    );
}

/// ACME on the RHEL path with the certbot client (from EPEL): certbot
/// registers and gets the certificate on the loopback responder
/// (standalone, one `--cert-name` lineage); edgeup builds HAProxy's PEM from
/// it, installs the deploy hook and certbot-renew.service's drop-in, enables
/// certbot-renew.timer, and SELinux lets HAProxy reach the responder. The
/// re-run runs nothing mutating (the lineage is current).
#[test]
fn rocky_acme_with_certbot_issues_and_enables_certbot_renew() {
    use edgeup::site::{AcmeClient, Directory};
    let mut fx = Fixture::rocky_9();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url("https://acme.internal.test/directory".into());
    site.acme.client = AcmeClient::Certbot;
    site.acme.preflight = false;
    let with_certbot =
        |r: edgeup::host::scripted::ScriptedRunner| r.dynamic("certbot", fake_certbot::certbot);
    let run = fx.run(Mode::Apply, with_certbot);
    let recap = run.recap();
    assert_eq!(recap.failed, 0, "{run:#?}");
    let certbot = |verb: &str| {
        format!(
            "certbot {verb} --non-interactive --agree-tos --config-dir /etc/letsencrypt --server \
             https://acme.internal.test/directory --email ops@widgets.dev"
        )
    };
    assert_eq!(
        run.mutating(),
        ROCKY_CONVERGE
            .iter()
            .map(|c| c.to_string())
            .chain([
                certbot("register"),
                format!(
                    "{} --standalone --preferred-challenges http --http-01-address 127.0.0.1 \
                 --http-01-port 888 --cert-name {DOMAIN} -d {DOMAIN} --key-type ecdsa \
                 --elliptic-curve secp256r1",
                    certbot("certonly")
                ),
                "systemctl enable certbot-renew.timer".into(),
                "systemctl start certbot-renew.timer".into(),
                RELOAD_CMD.into(),
                "systemctl daemon-reload".into(),
            ])
            .collect::<Vec<_>>(),
        "{run:#?}"
    );
    let pem = String::from_utf8(fx.read(PEM).unwrap_or_default()).unwrap_or_default();
    assert!(
        pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"),
        "{pem}"
    );
    let bundle = edgeup::pki::parse_bundle(pem.as_bytes()).expect("the PEM parses");
    let leaf = bundle.leaf().expect("a leaf");
    assert!(!leaf.placeholder && leaf.covers(DOMAIN) && bundle.key_matches());
    let hook = format!("/etc/letsencrypt/renewal-hooks/deploy/edgeup-{DOMAIN}");
    assert!(fx.read(&hook).is_some(), "no deploy hook");
    let dropin = String::from_utf8(
        fx.read("/etc/systemd/system/certbot-renew.service.d/edgeup-ca-bundle.conf")
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(
        dropin.contains("[Service]") && !dropin.contains("REQUESTS_CA_BUNDLE"),
        "{dropin}"
    );
    assert_eq!(
        fx.read("/sys/fs/selinux/booleans/haproxy_connect_any"),
        Some(b"1 1".to_vec())
    );

    let again = fx.run(Mode::Apply, with_certbot);
    assert_eq!(again.mutating(), Vec::<String>::new(), "{again:#?}");
}

/// What certbot's deploy hook runs, `renew DOMAIN --from-certbot`, after
/// certbot renewed the lineage on its own: edgeup installs the new
/// certificate and reloads HAProxy, and never runs certbot. A renewed
/// lineage whose key does not match fails that run and leaves the PEM as
/// it was; an apply then stays converged on the PEM it has. A lost PEM is
/// rebuilt from a current lineage without asking the CA.
#[test]
fn the_deploy_hook_installs_what_certbot_renewed_and_never_asks_the_ca() {
    use edgeup::host::Cmd;
    use edgeup::site::{AcmeClient, Directory};
    const SERVER: &str = "https://acme.internal.test/directory";
    let mut fx = Fixture::rocky_9();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url(SERVER.into());
    site.acme.client = AcmeClient::Certbot;
    site.acme.preflight = false;
    let with_certbot =
        |r: edgeup::host::scripted::ScriptedRunner| r.dynamic("certbot", fake_certbot::certbot);
    assert_eq!(fx.run(Mode::Apply, with_certbot).recap().failed, 0);
    let hook = String::from_utf8(
        fx.read(&format!(
            "/etc/letsencrypt/renewal-hooks/deploy/edgeup-{DOMAIN}"
        ))
        .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(
        hook.contains(&format!(
            "exec /usr/local/bin/edgeup renew {DOMAIN} --from-certbot"
        )) && hook.contains(&format!("= \"/etc/letsencrypt/live/{DOMAIN}\" ] || exit 0")),
        "{hook}"
    );
    let live = format!("/etc/letsencrypt/live/{DOMAIN}");
    // certbot's timer renews the lineage (as `certbot renew` would).
    let certbot_renews = || {
        let renew = Cmd::new("certbot").args([
            "certonly",
            "--config-dir",
            "/etc/letsencrypt",
            "--server",
            SERVER,
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            "888",
            "--cert-name",
            DOMAIN,
            "-d",
            DOMAIN,
        ]);
        let out = fake_certbot::certbot(fx.root(), &renew).expect("certbot renews");
        assert_eq!(out.status, 0, "{}", out.stderr_tail());
    };
    let lineage_pem = || {
        let read = |f: &str| {
            String::from_utf8(fx.read(&format!("{live}/{f}")).unwrap_or_default())
                .unwrap_or_default()
        };
        (read("fullchain.pem"), read("privkey.pem"))
    };
    let served = || String::from_utf8(fx.read(PEM).unwrap_or_default()).unwrap_or_default();
    let no_certbot = |run: &Run| {
        assert!(
            !run.commands.iter().any(|c| c.starts_with("certbot")),
            "certbot ran: {:#?}",
            run.commands
        );
    };

    let (_, old_key) = lineage_pem();
    certbot_renews();
    let (chain, key) = lineage_pem();
    let hooked = fx.renew_from_certbot(DOMAIN, with_certbot);
    assert_eq!(hooked.recap().failed, 0, "{hooked:#?}");
    assert_eq!(hooked.mutating(), [RELOAD_CMD], "{hooked:#?}");
    assert_eq!(
        hooked.changes(CERTIFICATE),
        [format!(
            "install certbot's certificate from {live}: certbot renewed it"
        )]
    );
    no_certbot(&hooked);
    assert!(
        served().contains(chain.trim()) && served().contains(key.trim()),
        "the renewed lineage is not what HAProxy serves"
    );
    assert!(fx.apply().mutating().is_empty(), "converged on the renewal");

    // A renewal whose key does not match its certificate is not installed.
    let before = served();
    certbot_renews();
    fx.write(&format!("{live}/privkey.pem"), &old_key);
    let broken = fx.renew_from_certbot(DOMAIN, with_certbot);
    assert_eq!(broken.recap().failed, 1, "{broken:#?}");
    let message = broken.message(CERTIFICATE);
    assert!(
        message.contains("does not match") && message.contains("the CA was not asked"),
        "{message}"
    );
    // (The reload noted before the step's apply still runs: a crash there
    // must not lose it. It reloads the PEM that was already served.)
    assert!(
        broken.mutating().iter().all(|c| c == RELOAD_CMD),
        "{broken:#?}"
    );
    no_certbot(&broken);
    assert_eq!(served(), before, "the PEM changed");
    assert!(
        fx.apply().mutating().is_empty(),
        "apply keeps the PEM it has"
    );

    // The PEM is lost: a current lineage is installed as it is.
    certbot_renews();
    let (chain, _) = lineage_pem();
    std::fs::remove_file(fx.path(PEM)).expect("remove the PEM");
    let rebuilt = fx.run(Mode::Apply, with_certbot);
    assert_eq!(rebuilt.recap().failed, 0, "{rebuilt:#?}");
    no_certbot(&rebuilt);
    assert!(
        served().contains(chain.trim()),
        "not rebuilt from the lineage"
    );

    // Another CA: the lineage (from the first) is renewed there, not reused.
    const OTHER: &str = "https://acme.other.test/directory";
    fx.config.sites[0].acme.directory = Directory::Url(OTHER.into());
    let moved = fx.run(Mode::Apply, with_certbot);
    assert_eq!(moved.recap().failed, 0, "{moved:#?}");
    assert!(
        moved
            .commands
            .iter()
            .any(|c| c.starts_with("certbot certonly")
                && c.contains(&format!("--server {OTHER}"))
                && c.ends_with("--force-renewal")),
        "{moved:#?}"
    );
    assert_eq!(
        fx.read(&format!("/var/lib/edgeup/acme/{DOMAIN}.directory")),
        Some(OTHER.as_bytes().to_vec())
    );
}

/// ACME on the RHEL path with the builtin client, against a real CA:
/// Pebble on loopback validates straight at edgeup's responder (there is no
/// HAProxy in a transcript, so the preflight is off and the responder sits
/// on 127.0.0.1:981, a privileged port no other test uses). The commands
/// are the RHEL ones plus the renewal timer; the PEM is Pebble's; the timer
/// runs the edgeup installed at /usr/local/bin; a re-run runs nothing
/// mutating and asks the CA for nothing new.
#[test]
fn rocky_acme_with_the_builtin_client_issues_from_pebble_and_enables_edgeup_renew() {
    use common::pebble::{Options, Pebble};
    use edgeup::site::Directory;
    let pebble = Pebble::start_with(Options::every_order_validated(981));
    let mut fx = Fixture::rocky_9();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url(pebble.directory.clone());
    site.acme.ca_bundle = Some(pebble.ca_bundle.clone());
    site.acme.preflight = false;
    site.listen.acme_responder = "127.0.0.1:981".parse().expect("responder");
    fx.write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "1024\n");

    let run = fx.apply();
    assert_eq!(run.recap().failed, 0, "{run:#?}");
    assert_eq!(
        run.mutating(),
        [
            &ROCKY_CONVERGE[..],
            &[
                // the new certificate, flushed with the renewal units' daemon-reload
                RELOAD_CMD,
                "systemctl daemon-reload",
                "systemctl enable edgeup-renew.timer",
                "systemctl start edgeup-renew.timer",
            ],
        ]
        .concat(),
        "{run:#?}"
    );
    let pem = String::from_utf8(fx.read(PEM).unwrap_or_default()).unwrap_or_default();
    pebble
        .verify_issued(&pem)
        .unwrap_or_else(|e| panic!("the PEM is not Pebble's: {e}"));
    let unit = String::from_utf8(
        fx.read("/etc/systemd/system/edgeup-renew.service")
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/edgeup renew --quiet"),
        "{unit}"
    );
    let installed = fx.root().join("usr/local/bin/edgeup");
    let mode = std::fs::metadata(&installed)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0);
    assert_eq!(mode, 0o755, "{}", installed.display());
    let orders = pebble.ca_log().matches("Added order").count();

    let again = fx.apply();
    assert_eq!(again.mutating(), Vec::<String>::new(), "{again:#?}");
    assert_eq!(
        pebble.ca_log().matches("Added order").count(),
        orders,
        "the re-run ordered a certificate"
    );
}

/// The same, run from the packaged /usr/bin/edgeup (a root-owned 0555
/// file, as a package could leave it): the renewal unit runs /usr/bin/edgeup,
/// nothing is copied to /usr/local/bin, and the packaged file is neither
/// written nor chmodded; a re-run runs nothing mutating.
#[test]
fn run_from_the_packaged_binary_the_renewal_unit_runs_it_and_nothing_is_copied() {
    use common::pebble::{Options, Pebble};
    use edgeup::site::Directory;
    let pebble = Pebble::start_with(Options::every_order_validated(984));
    let mut fx = Fixture::rocky_9();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url(pebble.directory.clone());
    site.acme.ca_bundle = Some(pebble.ca_bundle.clone());
    site.acme.preflight = false;
    site.listen.acme_responder = "127.0.0.1:984".parse().expect("responder");
    fx.write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "1024\n");
    fx.write("/usr/bin/edgeup", "the packaged edgeup\n");
    fx.chmod("/usr/bin/edgeup", 0o555);
    fx.running_binary = Some("/usr/bin/edgeup".into());

    let run = fx.apply();
    assert_eq!(run.recap().failed, 0, "{run:#?}");
    assert_eq!(
        run.status("edgeup at /usr/bin/edgeup for the renewal timer"),
        Okay,
        "{run:#?}"
    );
    let unit = String::from_utf8(
        fx.read("/etc/systemd/system/edgeup-renew.service")
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(
        unit.contains("ExecStart=/usr/bin/edgeup renew --quiet"),
        "{unit}"
    );
    assert!(!fx.exists("/usr/local/bin/edgeup"), "edgeup copied itself");
    assert_eq!(
        fx.read("/usr/bin/edgeup"),
        Some(b"the packaged edgeup\n".to_vec())
    );
    assert_eq!(fx.attrs("/usr/bin/edgeup"), (0o555, 0, 0));

    let again = fx.apply();
    assert_eq!(again.mutating(), Vec::<String>::new(), "{again:#?}");
    assert!(!fx.exists("/usr/local/bin/edgeup"));
}

/// A CA that answers a new order with `rateLimited` (a loopback stand-in:
/// Pebble cannot rate-limit): the builtin client reports the site failed,
/// records the CA's retry time, and the next run asks the CA for no order
/// before that time, saying so.
#[test]
fn a_rate_limited_order_is_recorded_and_the_next_run_orders_nothing() {
    use common::stand_in_ca::StandInCa;
    use edgeup::site::Directory;
    let ca = StandInCa::rate_limiting(
        "too many certificates (5) already issued for this exact set of identifiers in the last \
         168h0m0s, retry after 2030-01-01 00:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/",
    );
    let mut fx = Fixture::debian_12();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url(ca.directory.clone());
    site.acme.ca_bundle = Some(ca.ca_bundle.clone());
    site.acme.preflight = false;
    site.listen.acme_responder = "127.0.0.1:982".parse().expect("responder");

    let run = fx.apply();
    assert_eq!(run.status(CERTIFICATE), Failed, "{run:#?}");
    let message = run.message(CERTIFICATE);
    assert!(
        message.contains("rate limited by the CA") && message.contains("retry after 2030-01-01"),
        "{message}"
    );
    assert_eq!(ca.orders(), 1);
    let recorded = fx
        .read(&format!("/var/lib/edgeup/acme/{DOMAIN}.retry-after"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    assert_eq!(
        recorded.as_deref(),
        Some("1893456000"),
        "2030-01-01T00:00:00Z"
    );

    let again = fx.apply();
    assert_eq!(again.status(CERTIFICATE), Failed, "{again:#?}");
    assert!(
        again
            .message(CERTIFICATE)
            .contains("not retrying for another"),
        "{}",
        again.message(CERTIFICATE)
    );
    assert_eq!(
        ca.orders(),
        1,
        "the second run ordered before the CA's time"
    );
}

const ALERTS: &str = "Alerts about the certificates";

/// `edgeup renew` with `notify:`: a failed renewal (a rate-limiting
/// stand-in CA) is a `renewal_failed` event at a loopback webhook and on a
/// command's stdin, with the CA's reason; the webhook's token is in no
/// output; the recovery (Pebble issues) is a `renewed` event. `apply`
/// records attempts but sends nothing; the alerts step never fails the run.
#[test]
fn renew_alerts_reach_a_webhook_and_a_command_and_never_fail_the_run() {
    use common::pebble::{Options, Pebble};
    use common::stand_in_ca::StandInCa;
    use common::webhook::Webhook;
    use edgeup::site::Directory;
    let ca = StandInCa::rate_limiting(
        "too many new orders recently, retry after 2030-01-01 00:00:00 UTC",
    );
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = dir.path().join("page-me");
    let got = dir.path().join("alerts.jsonl");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ncat >> {0}\necho >> {0}\n", got.display()),
    )
    .expect("write the hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut fx = Fixture::debian_12();
    let site = &mut fx.config.sites[0];
    site.email = Some("ops@widgets.dev".into());
    site.acme.directory = Directory::Url(ca.directory.clone());
    site.acme.ca_bundle = Some(ca.ca_bundle.clone());
    site.acme.preflight = false;
    site.listen.acme_responder = "127.0.0.1:983".parse().expect("responder");
    site.notify = Some(edgeup::notify::Settings {
        targets: vec![
            edgeup::notify::Target::Webhook(webhook.url("T0KEN")),
            edgeup::notify::Target::Command(hook.clone()),
        ],
        days_before_expiry: 14,
    });

    let applied = fx.apply();
    assert_eq!(applied.status(CERTIFICATE), Failed, "{applied:#?}");
    assert!(
        applied.statuses().iter().all(|(name, _, _)| name != ALERTS),
        "apply sends no alerts"
    );
    assert!(webhook.events().is_empty());

    let renew = fx.renew(true);
    assert_eq!(renew.status(CERTIFICATE), Failed, "{renew:#?}");
    assert_eq!(renew.status(ALERTS), Changed, "{renew:#?}");
    assert_eq!(renew.recap().failed, 1, "only the certificate failed");
    assert_eq!(webhook.kinds(), ["renewal_failed"]);
    let event = &webhook.events()[0];
    assert_eq!(event["domain"], DOMAIN);
    assert_eq!(event["names"], serde_json::json!([DOMAIN]));
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limited by the CA")),
        "{event}"
    );
    let by_command: Vec<serde_json::Value> = std::fs::read_to_string(&got)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        by_command,
        webhook.events(),
        "the command gets the same JSON"
    );
    assert!(
        !format!("{renew:?}").contains("T0KEN"),
        "the webhook's token reached the output"
    );
    assert_eq!(
        std::fs::metadata(fx.path("/var/lib/edgeup/notify/state.json"))
            .map(|m| m.permissions().mode() & 0o777)
            .ok(),
        Some(0o644)
    );

    // The renewal recovers (another CA issues; --force past the recorded
    // back-off): `renewed`, once.
    let pebble = Pebble::start_with(Options::every_order_validated(983));
    let site = &mut fx.config.sites[0];
    site.acme.directory = Directory::Url(pebble.directory.clone());
    site.acme.ca_bundle = Some(pebble.ca_bundle.clone());
    // The command hangs this time: it is cut off (10 s), said in a
    // warning, and the renewal's result is unchanged.
    std::fs::write(
        &hook,
        "#!/bin/sh
exec sleep 600
",
    )
    .expect("rewrite the hook");
    let recovered = fx.renew(true);
    assert_eq!(recovered.status(CERTIFICATE), Changed, "{recovered:#?}");
    assert_eq!(recovered.status(ALERTS), Changed, "{recovered:#?}");
    assert_eq!(recovered.recap().failed, 0, "{recovered:#?}");
    assert!(
        recovered
            .warnings()
            .iter()
            .any(|w| w.contains(ALERTS) && w.contains(&hook.display().to_string())),
        "{:?}",
        recovered.warnings()
    );
    assert_eq!(webhook.kinds(), ["renewal_failed", "renewed"]);
    let quiet = fx.renew(false);
    assert_eq!(quiet.status(ALERTS), Okay, "{quiet:#?}");
    assert_eq!(webhook.kinds().len(), 2, "nothing more to tell");
}

/// Without `notify:` a renewal run has no alerts step (and renders).
#[test]
fn renew_without_notify_has_no_alerts_step() {
    let fx = Fixture::debian_12().converged();
    let run = fx.renew(false);
    assert_eq!(run.recap().failed, 0, "{run:#?}");
    assert!(
        run.statuses().iter().all(|(name, _, _)| name != ALERTS),
        "{run:#?}"
    );
}

/// The RHEL path of uninstall (firewalld, SELinux: no such host here): what
/// apply opened and set is reverted, and only that; the config is back.
#[test]
fn rocky_uninstall_reverts_firewalld_and_selinux() {
    let fx = Fixture::rocky_9();
    let _ = fx.apply();
    let original = fx.read("/var/lib/edgeup/ledger/originals/etc%haproxy%haproxy.cfg");
    assert!(original.is_some(), "apply saved the original haproxy.cfg");
    let (plan, result, commands) = fx.uninstall(edgeup::uninstall::Options::default());
    result.unwrap_or_else(|e| panic!("{e:#}"));
    let pid = format!(".edgeup-{}", std::process::id());
    let mutating: Vec<String> = commands
        .iter()
        .filter(|c| !fixture::is_read_only(c))
        .map(|c| c.replace(&pid, ".edgeup-PID"))
        .collect();
    assert_eq!(
        mutating,
        [
            // The original is checked before anything changes.
            "haproxy -c -q -f /etc/haproxy/.haproxy.cfg.edgeup-PID",
            "systemctl reload haproxy.service",
            "firewall-cmd --permanent --remove-service=http",
            "firewall-cmd --remove-service=http",
            "firewall-cmd --permanent --remove-service=https",
            "firewall-cmd --remove-service=https",
            "setsebool -P haproxy_connect_any off",
            // The dnf install enabled nothing: edgeup did, so it is undone.
            "systemctl disable haproxy.service",
            "systemctl stop haproxy.service",
        ],
        "{plan:#?}"
    );
    assert_eq!(fx.read("/etc/haproxy/haproxy.cfg"), original);
    assert_eq!(
        fx.read("/sys/fs/selinux/booleans/haproxy_connect_any"),
        Some(b"0 0".to_vec())
    );
    let zone = String::from_utf8(
        fx.read("/etc/firewalld/zones/public.xml")
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(
        !zone.contains("\"http\"") && !zone.contains("\"https\""),
        "{zone}"
    );
    assert!(!fx.exists("/var/lib/edgeup") && !fx.exists("/etc/edgeup"));
    // Nothing left to undo.
    let (again, result, _) = fx.uninstall(edgeup::uninstall::Options::default());
    result.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(again.actions.is_empty(), "{again:#?}");
}
