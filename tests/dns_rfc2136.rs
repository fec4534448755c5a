//! DNS-01 against a real BIND on loopback (tests/common/bind.rs): RFC 2136
//! updates signed with TSIG, visibility at every authoritative server, the
//! journal of records a killed run left, and the exec provider (lego's
//! contract) with hooks that call nsupdate, fail or hang.
//!
//! Each test runs in a network namespace of its own (root), where 127.0.0.2
//! can be on `lo` for a second name server.

mod common;

use common::bind::Bind;
use edgeup::dns::{Dns01, Options, Provider, Settings};
use edgeup::host::{DuctRunner, Host};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAME: &str = "_acme-challenge.example.test";

fn host() -> Host {
    Host::new(PathBuf::from("/"), Box::new(DuctRunner))
}

fn rfc2136(bind: &Bind, key_file: &Path, timeout: Duration) -> Settings {
    Settings {
        provider: Provider::Rfc2136 {
            server: bind.addr(),
            tsig_key_file: key_file.to_path_buf(),
        },
        propagation_timeout: timeout,
        resolver: None,
    }
}

fn options() -> Options {
    Options {
        hook_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(200),
    }
}

fn dns01(settings: &Settings, state: &Path) -> Dns01 {
    Dns01::with_options(&host(), settings, state.to_str().expect("utf-8"), options())
        .unwrap_or_else(|e| panic!("Dns01::new: {e:#}"))
}

fn err_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.expect_err("an error"))
}

fn journal(state: &Path) -> String {
    std::fs::read_to_string(state.join("dns/pending.json")).unwrap_or_default()
}

#[test]
fn two_values_on_one_name_visible_then_removed_one_by_one() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(10)),
        state.path(),
    );
    let (base, wildcard) = (
        Dns01::record_name("example.test"),
        Dns01::record_name("*.example.test"),
    );
    assert_eq!((base.as_str(), wildcard.as_str()), (NAME, NAME));
    dns.present(&base, "value-for-base").expect("present base");
    dns.present(&wildcard, "value-for-wildcard")
        .expect("present wildcard");
    assert_eq!(bind.txt(NAME), ["value-for-base", "value-for-wildcard"]);
    let records = [
        (base.clone(), "value-for-base".to_string()),
        (wildcard.clone(), "value-for-wildcard".to_string()),
    ];
    dns.wait_visible(&records)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    let pending = journal(state.path());
    assert!(
        pending.contains("value-for-base") && pending.contains("value-for-wildcard"),
        "{pending}"
    );
    let mode = std::fs::metadata(state.path().join("dns/pending.json"))
        .expect("journal")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    dns.cleanup(&base, "value-for-base").expect("cleanup base");
    assert_eq!(bind.txt(NAME), ["value-for-wildcard"]);
    dns.cleanup(&base, "value-for-base")
        .expect("removing an absent record is success");
    dns.cleanup(&wildcard, "value-for-wildcard")
        .expect("cleanup wildcard");
    assert!(bind.txt(NAME).is_empty());
    assert!(
        !journal(state.path()).contains("value-for"),
        "{}",
        journal(state.path())
    );
}

#[test]
fn an_answer_too_big_for_udp_is_read_over_tcp() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(10)),
        state.path(),
    );
    // 12 values of 43 characters (a real challenge's length): over 512 bytes.
    let records: Vec<(String, String)> = (0..12)
        .map(|i| (NAME.to_string(), format!("{i:02}{}", "x".repeat(41))))
        .collect();
    for (name, value) in &records {
        dns.present(name, value).expect("present");
    }
    assert_eq!(bind.txt(NAME).len(), 12);
    dns.wait_visible(&records)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    for (name, value) in &records {
        dns.cleanup(name, value).expect("cleanup");
    }
    assert!(bind.txt(NAME).is_empty());
}

#[test]
fn preflight_passes_and_leaves_nothing() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(10)),
        state.path(),
    );
    dns.preflight("*.example.test")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    assert!(bind.txt(NAME).is_empty());
    assert!(!journal(state.path()).contains("edgeup-preflight"));
}

#[test]
fn wrong_key_is_named_with_badsig_and_writes_nothing() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.wrong_key_file, Duration::from_secs(5)),
        state.path(),
    );
    let err = err_text(dns.present(NAME, "v1"));
    let key_file = bind.wrong_key_file.display().to_string();
    assert!(err.contains(&key_file), "{err}");
    assert!(err.contains("NOTAUTH (BADSIG)"), "{err}");
    assert!(
        err.contains(&format!("update refused by {}", bind.addr())),
        "{err}"
    );
    let secret = std::fs::read_to_string(&bind.wrong_key_file).expect("key");
    let secret = secret
        .split('"')
        .nth(3)
        .expect("the secret in tsig-keygen's output");
    assert!(!err.contains(secret), "{err}");
    assert!(bind.txt(NAME).is_empty());
    assert!(
        !journal(state.path()).contains("v1"),
        "a refused update stays journaled"
    );

    let err = err_text(dns.preflight("example.test"));
    assert!(
        err.contains("DNS preflight for example.test") && err.contains("BADSIG"),
        "{err}"
    );
}

#[test]
fn a_name_outside_every_zone_has_no_zone() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(5)),
        state.path(),
    );
    let err = err_text(dns.preflight("x.other.invalid"));
    assert!(
        err.contains(&format!(
            "no zone found for _acme-challenge.x.other.invalid (asked {}: REFUSED)",
            bind.addr()
        )),
        "{err}"
    );
}

#[test]
fn a_second_server_that_never_sees_updates_fails_the_wait_naming_it() {
    let ns2 = Ipv4Addr::new(127, 0, 0, 2);
    let bind = Bind::builder().static_ns(ns2).private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(2)),
        state.path(),
    );
    dns.present(NAME, "only-on-the-primary").expect("present");
    let started = Instant::now();
    let err = err_text(dns.wait_visible(&[(NAME.to_string(), "only-on-the-primary".to_string())]));
    let took = started.elapsed();
    assert!(
        err.contains(&format!(
            "TXT {NAME} not visible at {ns2}:{} (ns2.example.test) within 2s",
            bind.port
        )),
        "{err}"
    );
    assert!(!err.contains("127.0.0.1"), "the primary has it: {err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(bind.txt(NAME), ["only-on-the-primary"]);
    assert!(bind.txt_at(ns2, NAME).is_empty());
    dns.cleanup(NAME, "only-on-the-primary").expect("cleanup");
}

#[test]
fn a_second_zone_whose_name_server_is_named_in_the_first() {
    // other.test's NS is ns1.example.test: out of its zone, no glue there.
    let bind = Bind::builder()
        .zone("example.test")
        .zone("other.test")
        .private_network()
        .start();
    let state = tempfile::tempdir().expect("state dir");
    let dns = dns01(
        &rfc2136(&bind, &bind.key_file, Duration::from_secs(10)),
        state.path(),
    );
    let name = Dns01::record_name("www.other.test");
    assert_eq!(name, "_acme-challenge.www.other.test");
    dns.present(&name, "in-the-other-zone").expect("present");
    assert_eq!(bind.txt(&name), ["in-the-other-zone"]);
    dns.wait_visible(&[(name.clone(), "in-the-other-zone".to_string())])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    dns.preflight("other.test")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    dns.cleanup(&name, "in-the-other-zone").expect("cleanup");
    assert!(bind.txt(&name).is_empty());
}

#[test]
fn a_killed_runs_records_are_removed_by_the_next() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let settings = rfc2136(&bind, &bind.key_file, Duration::from_secs(5));
    {
        let dns = dns01(&settings, state.path());
        dns.present(NAME, "left-behind").expect("present");
        // Dropped without cleanup: the run was killed here.
    }
    // A record journaled by a run killed before its update went out.
    assert_eq!(bind.txt(NAME), ["left-behind"]);
    assert!(journal(state.path()).contains("left-behind"));
    let next = dns01(&settings, state.path());
    assert_eq!(next.cleanup_leftovers().expect("cleanup_leftovers"), 1);
    assert!(bind.txt(NAME).is_empty());
    assert!(!journal(state.path()).contains("left-behind"));
    assert_eq!(next.cleanup_leftovers().expect("again"), 0);
}

#[test]
fn key_files_others_can_read_or_links_are_refused_without_the_secret() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dir = tempfile::tempdir().expect("dir");
    let loose = dir.path().join("tsig.key");
    std::fs::copy(&bind.key_file, &loose).expect("copy");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let settings = rfc2136(&bind, &loose, Duration::from_secs(5));
    let err = err_text(Dns01::new(
        &host(),
        &settings,
        state.path().to_str().expect("utf-8"),
    ));
    assert!(
        err.contains(&loose.display().to_string()) && err.contains("chmod 600"),
        "{err}"
    );
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&bind.key_file, &link).expect("symlink");
    let settings = rfc2136(&bind, &link, Duration::from_secs(5));
    let err = err_text(Dns01::new(
        &host(),
        &settings,
        state.path().to_str().expect("utf-8"),
    ));
    assert!(err.contains("symbolic link"), "{err}");
}

// ---------------------------------------------------------------- exec

/// A hook with lego's contract that writes through nsupdate with the test key.
fn nsupdate_hook(dir: &Path, bind: &Bind) -> PathBuf {
    let script = dir.join("hook.sh");
    let body = format!(
        "#!/bin/sh\nset -e\n[ \"$EDGEUP_TEST_VAR\" = from-env-file ] || {{ echo \"env file not applied\" >&2; exit 9; }}\n\
         case \"$1\" in present) op=add; ttl=60 ;; cleanup) op=delete; ttl= ;; *) exit 2 ;; esac\n\
         printf 'server 127.0.0.1 {port}\\nupdate %s %s %s TXT \"%s\"\\nsend\\n' \"$op\" \"$2\" \"$ttl\" \"$3\" \
         | /usr/bin/nsupdate -k {key}\n",
        port = bind.port,
        key = bind.key_file.display(),
    );
    std::fs::write(&script, body).expect("hook");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

fn exec_settings(bind: &Bind, command: &Path, env_file: Option<&Path>) -> Settings {
    Settings {
        provider: Provider::Exec {
            command: command.to_path_buf(),
            env_file: env_file.map(Path::to_path_buf),
        },
        propagation_timeout: Duration::from_secs(10),
        resolver: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, bind.port))),
    }
}

#[test]
fn exec_hook_present_visible_cleanup() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dir = tempfile::tempdir().expect("dir");
    let hook = nsupdate_hook(dir.path(), &bind);
    let env = dir.path().join("dns.env");
    std::fs::write(&env, "# test\nEDGEUP_TEST_VAR=from-env-file\n").expect("env");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let dns = dns01(&exec_settings(&bind, &hook, Some(&env)), state.path());
    dns.present(NAME, "exec-one").expect("present one");
    dns.present(NAME, "exec-two").expect("present two");
    assert_eq!(bind.txt(NAME), ["exec-one", "exec-two"]);
    dns.wait_visible(&[
        (NAME.to_string(), "exec-one".to_string()),
        (NAME.to_string(), "exec-two".to_string()),
    ])
    .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    dns.cleanup(NAME, "exec-one").expect("cleanup one");
    assert_eq!(bind.txt(NAME), ["exec-two"]);
    dns.cleanup(NAME, "exec-two").expect("cleanup two");
    assert!(bind.txt(NAME).is_empty());
    dns.preflight("example.test")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bind.logs()));
    assert!(bind.txt(NAME).is_empty());
    assert!(
        !journal(state.path()).contains("exec-"),
        "{}",
        journal(state.path())
    );
}

#[test]
fn exec_hook_that_fails_is_quoted_and_one_that_hangs_is_cut_off() {
    let bind = Bind::builder().private_network().start();
    let state = tempfile::tempdir().expect("state dir");
    let dir = tempfile::tempdir().expect("dir");
    let failing = dir.path().join("fail.sh");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho \"zone API said: token rejected for $2\" >&2\nexit 1\n",
    )
    .expect("hook");
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dns = dns01(&exec_settings(&bind, &failing, None), state.path());
    let err = err_text(dns.present(NAME, "v"));
    assert!(err.contains("exited with status 1"), "{err}");
    assert!(
        err.contains(&format!("zone API said: token rejected for {NAME}.")),
        "the FQDN with its dot, and stderr: {err}"
    );

    let hanging = dir.path().join("hang.sh");
    std::fs::write(&hanging, "#!/bin/sh\nsleep 600\n").expect("hook");
    std::fs::set_permissions(&hanging, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dns = Dns01::with_options(
        &host(),
        &exec_settings(&bind, &hanging, None),
        state.path().to_str().expect("utf-8"),
        Options {
            hook_timeout: Duration::from_secs(1),
            ..options()
        },
    )
    .expect("Dns01");
    let started = Instant::now();
    let err = err_text(dns.present(NAME, "v"));
    assert!(
        err.contains("did not finish within 1s and was killed"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
