//! Fleet proof: `edgeup fleet` over real OpenSSH against three booted Debian
//! 12 containers (systemd, sshd), each in a network namespace of the test's
//! own, plus a fourth namespace where nothing listens. Traffic stays on the
//! veth pairs the test creates (10.231.N.0/24); nothing binds the host's
//! interfaces.

#[path = "../system/container.rs"]
mod container;
mod harness;
#[path = "../common/tmux.rs"]
mod tmux;

use container::Netns;
use harness::{Host, Operator, Spec, cert_names, https_get, served_cert};
use std::time::{Duration, Instant};

const REACHABLE: [&str; 3] = ["alpha", "bravo", "charlie"];

/// alpha: root on 22; bravo: root on 2222; charlie: `deploy` + sudo -n.
/// delta: an address in a namespace of ours where nothing listens.
fn inventory(op: &Operator, hosts: &[Host], unreachable: &Netns) -> String {
    let addr = |name: &str| {
        hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.ns.addr.clone())
            .unwrap_or_else(|| panic!("no host {name}"))
    };
    let port = |name: &str| {
        hosts
            .iter()
            .find(|h| h.name == name)
            .map_or(22, |h| h.ssh_port)
    };
    format!(
        r#"# edgeup fleet test inventory
defaults:
  identity: {identity}
  site:
    email: ops@fleet.test
    backends: ["127.0.0.1:3000"]
    acme: {{directory: off}}
groups:
  up: [alpha, bravo, charlie]
hosts:
  alpha:
    address: {a}
    site: {{domain: alpha.fleet.test}}
  bravo:
    address: {b}
    port: {bport}
    site: {{domain: bravo.fleet.test, firewall: none}}
  charlie:
    address: {c}
    user: deploy
    become: true
    site: {{domain: charlie.fleet.test, hsts: off}}
  delta:
    address: {d}
    site: {{domain: delta.fleet.test}}
"#,
        identity = op.identity().display(),
        a = addr("alpha"),
        b = addr("bravo"),
        bport = port("bravo"),
        c = addr("charlie"),
        d = unreachable.addr,
    )
}

fn write(op: &Operator, name: &str, text: &str) -> String {
    let path = op.path(name);
    std::fs::write(&path, text).expect("write inventory");
    path.to_string_lossy().into_owned()
}

#[test]
fn fleet_converges_hosts_in_parallel_reruns_copy_nothing_and_reports_the_unreachable_one() {
    let _serial = container::exclusive();
    container::require_tools();
    harness::require_tools();
    Netns::remove_stale();
    let started = Instant::now();
    container::fleet_rootfs();
    let op = Operator::new();

    let specs = [
        Spec {
            name: "alpha",
            subnet: 1,
            ssh_port: 22,
            sudo_user: false,
        },
        Spec {
            name: "bravo",
            subnet: 2,
            ssh_port: 2222,
            sudo_user: false,
        },
        Spec {
            name: "charlie",
            subnet: 3,
            ssh_port: 22,
            sudo_user: true,
        },
    ];
    let hosts: Vec<Host> = std::thread::scope(|s| {
        let booting: Vec<_> = specs.iter().map(|spec| s.spawn(|| op.boot(spec))).collect();
        booting
            .into_iter()
            .map(|b| b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let unreachable = Netns::create(4);
    let host = |name: &str| hosts.iter().find(|h| h.name == name).expect("host");
    eprintln!("fleet booted in {:.1?}", started.elapsed());
    let inv = write(&op, "inventory.yaml", &inventory(&op, &hosts, &unreachable));

    // Host keys are checked: an unknown host is refused (not "unreachable"),
    // and nothing reaches it.
    let strict = op.fleet(&["-i", &inv, "--limit", "alpha", "--plan", "--json"]);
    assert_eq!(strict.code, 1, "{}", strict.dump());
    let r = strict.host("alpha");
    assert_eq!(r["unreachable"], false, "{r}");
    assert!(
        r["error"].as_str().is_some_and(
            |e| e.contains("host key not trusted") && e.contains("--accept-new-host-keys")
        ),
        "{r}"
    );
    assert!(!host("alpha").c.path("/usr/local/bin/edgeup").exists());

    // First contact: all four at once, three forks.
    let first = op.fleet(&[
        "-i",
        &inv,
        "--forks",
        "3",
        "--accept-new-host-keys",
        "--json",
    ]);
    assert_eq!(first.code, 1, "one host is unreachable:\n{}", first.dump());
    assert_eq!(first.hosts(), ["alpha", "bravo", "charlie", "delta"]);
    for name in REACHABLE {
        if first.host(name).get("error").is_some() {
            // What the host itself saw, for a failure that ssh reports without words.
            eprintln!(
                "{name}'s journal:\n{}",
                host(name)
                    .c
                    .ok("journalctl -n 60 --no-pager -o short-precise")
            );
        }
        let r = first.assert_converged(name);
        assert!(first.changed(name) > 0, "{name}: a fresh host changes: {r}");
        assert_eq!(
            first.copied(name),
            [
                format!("edgeup ({})", std::env::consts::ARCH),
                "site.yaml".into()
            ],
            "{name}: {r}"
        );
    }
    let d = first.host("delta");
    assert_eq!(d["unreachable"], true, "{d}");
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{d}"
    );
    let totals = first.totals();
    assert_eq!(
        (
            &totals["hosts"],
            &totals["unreachable"],
            &totals["hosts_failed"],
            &totals["failed"]
        ),
        (&4.into(), &1.into(), &0.into(), &0.into()),
        "{totals}"
    );
    // One login per host for the whole first run (probe, copy, install and
    // apply share one session) ...
    for h in &hosts {
        assert_eq!(h.logins(), 1, "{}: logins in the first run", h.name);
    }
    // ... and in parallel: all three sessions were open at the same time
    // (the last login came before the first disconnect).
    let sessions: Vec<(f64, f64)> = hosts.iter().map(Host::first_session).collect();
    let last_login = sessions.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let first_logout = sessions.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(
        last_login < first_logout,
        "hosts ran one after another: {sessions:?}\n{}",
        first.dump()
    );
    assert_eq!(
        op.known_hosts().lines().count(),
        3,
        "accept-new recorded the three reachable hosts:\n{}",
        op.known_hosts()
    );
    assert!(op.known_hosts().contains("[10.231.2.2]:2222 "));

    // Each host converged on its own site.
    for h in &hosts {
        let domain = h.domain();
        assert_eq!(
            h.c.ok("systemctl is-active haproxy.service").trim(),
            "active",
            "{}",
            h.name
        );
        let cert = served_cert(h, op.dir.path());
        let names = cert_names(&cert);
        assert!(
            names.contains(&format!("DNS:{domain}")),
            "{}: {names}",
            h.name
        );
        let body = https_get(h, &cert);
        assert!(
            body.contains(&format!("fleet host {}", h.name)),
            "{}: HTTPS on {} did not reach its app: {body}",
            h.name,
            h.ns.addr
        );
        assert_eq!(
            h.c.ok("stat -c '%a %U' /usr/local/bin/edgeup /etc/edgeup/site.yaml"),
            "755 root\n600 root\n",
            "{}",
            h.name
        );
        let site = h.c.ok("cat /etc/edgeup/site.yaml");
        assert!(site.contains(&format!("domain: {domain}")), "{site}");
        assert_eq!(
            h.c.ok("ls -A /tmp | grep -c '^edgeup' || true").trim(),
            "0",
            "{}: staging left behind",
            h.name
        );
    }
    assert!(
        host("bravo")
            .c
            .ok("cat /etc/edgeup/site.yaml")
            .contains("firewall: none")
    );
    assert!(
        host("charlie")
            .c
            .ok("journalctl -t sudo --no-pager -o cat")
            .contains("deploy : PWD="),
        "charlie's run went through sudo"
    );

    // Re-run with strict host key checking: nothing copied, nothing changed.
    let second = op.fleet(&["-i", &inv, "--forks", "3", "--json"]);
    assert_eq!(second.code, 1, "{}", second.dump());
    for name in REACHABLE {
        second.assert_converged(name);
        assert_eq!(second.copied(name), Vec::<String>::new(), "{name}");
        assert_eq!(second.changed(name), 0, "{name}:\n{}", second.dump());
    }
    assert_eq!(second.host("delta")["unreachable"], true);
    for h in &hosts {
        assert_eq!(h.logins(), 2, "{}: one login for the re-run", h.name);
    }
    assert_eq!(second.totals()["changed"], 0);

    // A login the host refuses is reported as such (not "unreachable");
    // --host and site flags work without an inventory.
    let refused = op.fleet(&[
        "--host",
        &format!("nobody@{}", host("alpha").ns.addr),
        "--domain",
        "alpha.fleet.test",
        "--email",
        "ops@fleet.test",
        "--backend",
        "127.0.0.1:3000",
        "--acme-directory",
        "off",
        "--plan",
        "--json",
    ]);
    assert_eq!(refused.code, 1, "{}", refused.dump());
    let r = refused.host(&host("alpha").ns.addr);
    assert_eq!(r["unreachable"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("login refused for nobody")),
        "{r}"
    );

    // plan on the reachable group: nothing to do, exit 0.
    let plan = op.fleet(&["-i", &inv, "--limit", "up", "--plan", "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    assert_eq!(plan.hosts(), REACHABLE);
    for name in REACHABLE {
        assert_eq!(plan.changed(name), 0, "{name}");
        assert_eq!(plan.copied(name), Vec::<String>::new(), "{name}");
    }

    // plan with a changed site: exit 3, and the host keeps what was applied
    // (the site is staged for the plan, never installed).
    let changed_inv = write(
        &op,
        "changed.yaml",
        &inventory(&op, &hosts, &unreachable)
            .replace("domain: alpha.fleet.test", "domain: alpha2.fleet.test"),
    );
    let cfg_before = host("alpha").c.ok("cat /etc/haproxy/haproxy.cfg");
    let site_before = host("alpha").c.ok("cat /etc/edgeup/site.yaml");
    let plan = op.fleet(&["-i", &changed_inv, "--limit", "alpha", "--plan", "--json"]);
    assert_eq!(plan.code, 3, "{}", plan.dump());
    assert_eq!(plan.copied("alpha"), ["site.yaml"]);
    assert!(plan.changed("alpha") > 0, "{}", plan.dump());
    assert_eq!(host("alpha").c.ok("cat /etc/edgeup/site.yaml"), site_before);
    assert_eq!(
        host("alpha").c.ok("cat /etc/haproxy/haproxy.cfg"),
        cfg_before
    );

    // --limit touches the named host only.
    let logins: Vec<usize> = hosts.iter().map(Host::logins).collect();
    let limited = op.fleet(&["-i", &inv, "--limit", "bravo", "--json"]);
    assert_eq!(limited.code, 0, "{}", limited.dump());
    assert_eq!(limited.hosts(), ["bravo"]);
    assert_eq!(limited.totals()["hosts"], 1);
    assert_eq!(limited.changed("bravo"), 0);
    for (h, before) in hosts.iter().zip(&logins) {
        let after = h.logins();
        if h.name == "bravo" {
            assert!(after > *before, "bravo was not contacted");
        } else {
            assert_eq!(after, *before, "{} was contacted", h.name);
        }
    }

    // No root without become, and a sudo that wants a password: clear errors, no prompt.
    let site = "{domain: charlie.fleet.test, email: ops@fleet.test, backends: ['127.0.0.1:3000'], acme: {directory: off}}";
    let charlie = &host("charlie").ns.addr;
    let root_inv = write(
        &op,
        "root.yaml",
        &format!(
            "defaults: {{identity: {}, site: {site}}}\nhosts:\n  \
             needpw: {{address: {charlie}, user: needpw, become: true}}\n  \
             nobecome: {{address: {charlie}, user: deploy}}\n",
            op.identity().display(),
        ),
    );
    let root = op.fleet(&["-i", &root_inv, "--plan", "--json"]);
    assert_eq!(root.code, 1, "{}", root.dump());
    for (name, needles) in [
        ("needpw", ["needs a password", "NOPASSWD"]),
        ("nobecome", ["not root", "become: true"]),
    ] {
        let r = root.host(name);
        assert_eq!(r["unreachable"], false, "{r}");
        let error = r["error"].as_str().unwrap_or("");
        assert!(needles.iter().all(|n| error.contains(n)), "{name}: {r}");
    }
    assert_eq!(root.totals()["hosts_failed"], 2);

    // The human recap: one line per host and the totals.
    let human = op.fleet(&["-i", &inv, "--limit", "up"]);
    assert_eq!(human.code, 0, "{}", human.dump());
    let tail: Vec<&str> = human.stdout.lines().rev().take(4).collect();
    assert!(
        tail[0].starts_with("total: 3 hosts  ok=") && tail[0].contains("changed=0 failed=0"),
        "{}",
        human.dump()
    );
    for line in &tail[1..] {
        assert!(line.ends_with("(copied nothing)"), "{}", human.dump());
    }

    // On a terminal: a live line while hosts run, then one line per host
    // as it finishes (with its time) and the totals; no step lines. Every
    // ssh call is made a second slower so the live line can be seen.
    let slow = op.path("slowbin");
    std::fs::create_dir_all(&slow).expect("slowbin");
    std::fs::write(
        slow.join("ssh"),
        format!(
            "#!/bin/sh\nsleep 1\nexec {} \"$@\"\n",
            op.path("bin/ssh").display()
        ),
    )
    .expect("slow ssh");
    std::fs::set_permissions(
        slow.join("ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let t = tmux::Tmux::start(
        "fleet",
        op.dir.path(),
        &format!(
            "PATH={}:$PATH TMPDIR={} {} fleet -i {inv} --limit up --forks 1; code=$?",
            slow.display(),
            op.dir.path().display(),
            env!("CARGO_BIN_EXE_edgeup"),
        ),
    );
    t.wait_for("hosts done, 1 running");
    let code = t.exit_code();
    let screen = t.screen(false);
    assert_eq!(code, 0, "{screen}");
    for name in REACHABLE {
        assert!(
            screen.lines().any(|l| l.starts_with(name)
                && l.contains("changed=0 failed=0")
                && l.trim_end().ends_with(" s)")),
            "{name} has no line of its own:\n{screen}"
        );
    }
    assert!(
        screen.lines().any(|l| l.starts_with("total: 3 hosts  ok=")),
        "{screen}"
    );
    assert!(
        !screen.contains("[1/"),
        "step lines on a terminal:\n{screen}"
    );
    assert!(
        !screen.contains("hosts done,"),
        "the live line is left on the screen:\n{screen}"
    );
    drop(t);

    // A changed host key is refused even with --accept-new-host-keys: the
    // error says so (not "unreachable"), nothing is copied or run there,
    // and known_hosts keeps the old key.
    let bravo = host("bravo");
    let site_before = bravo
        .c
        .ok("sha256sum /etc/edgeup/site.yaml /usr/local/bin/edgeup");
    let runs_before = bravo.logins();
    bravo.c.ok(
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh.service",
    );
    let known_before = op.known_hosts();
    let rekeyed = op.fleet(&[
        "-i",
        &inv,
        "--limit",
        "bravo",
        "--accept-new-host-keys",
        "--json",
    ]);
    assert_eq!(rekeyed.code, 1, "{}", rekeyed.dump());
    let r = rekeyed.host("bravo");
    assert_eq!(r["unreachable"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("host key not trusted")
                && e.contains("a changed key is never accepted")),
        "{r}"
    );
    assert!(
        r["copied"].as_array().is_none_or(|c| c.is_empty()),
        "copied to a host with a changed key: {r}"
    );
    assert_eq!(op.known_hosts(), known_before, "known_hosts changed");
    assert_eq!(
        bravo
            .c
            .ok("sha256sum /etc/edgeup/site.yaml /usr/local/bin/edgeup"),
        site_before
    );
    assert_eq!(
        bravo.logins(),
        runs_before,
        "a login happened on the host with the changed key"
    );

    // Every run closed its ssh connections.
    let left = op.settle(Duration::from_secs(5));
    assert!(left.is_empty(), "ssh processes left behind: {left:?}");
    eprintln!(
        "first run {:.1?}, re-run {:.1?}; recap of the last run:\n{}",
        first.elapsed,
        second.elapsed,
        human
            .stdout
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("fleet scenario: {:.1?}", started.elapsed());
}
