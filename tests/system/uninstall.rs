//! `edgeup uninstall` in a booted bookworm: a host with HAProxy and a
//! hand-written haproxy.cfg is converged (builtin client, Pebble), then
//! uninstalled, twice over: with `--purge --remove-packages` (every package
//! edgeup installed gone, nothing archived), then, after a new apply, by
//! default (keys and the ACME account archived 0600/0700, packages kept).
//! Each time haproxy.cfg is byte-identical to the hand-written one and
//! HAProxy serves it, no edgeup unit is left, and a second uninstall
//! changes nothing. A re-apply after uninstall converges again.

use super::*;

/// Listens on the shared loopback only while the hand-written config runs.
const HAND_PORT: u16 = 8099;

const APP: &str = "uninstalled app";

const HAND_WRITTEN: &str = "# written by hand, before edgeup
global
    log /dev/log local0

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend hand
    bind 127.0.0.1:8099
    http-request return status 200 content-type text/plain string hand-written
";

fn uninstall(c: &Container, args: &str) -> (i32, String) {
    let out = c.sh(&format!("edgeup uninstall {args}"));
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    eprintln!("$ edgeup uninstall {args}\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

/// Every file edgeup could touch, with its mode, owner and content hash.
fn tree(c: &Container) -> String {
    c.ok(
        "for d in /etc/haproxy /etc/systemd/system /etc/edgeup /var/lib/edgeup /var/backups \
         /usr/local/bin /etc/letsencrypt; do [ -e $d ] && find $d -printf '%p %m %u:%g %s\\n'; done \
         | sort; find /etc/haproxy /etc/systemd/system /usr/local/bin -type f -exec sha256sum {} + | sort",
    )
}

fn installed_packages(c: &Container) -> String {
    c.ok("dpkg-query -W -f '${Package} ${db:Status-Status}\\n' | awk '$2 == \"installed\" {print $1}' | sort")
}

fn serves_hand_written(c: &Container) {
    let body = c.ok(&format!(
        "curl -sS --max-time 5 http://127.0.0.1:{HAND_PORT}/"
    ));
    assert_eq!(
        body.trim(),
        "hand-written",
        "HAProxy serves the hand-written config"
    );
}

fn assert_nothing_of_edgeup(c: &Container) {
    let cfg = std::fs::read_to_string(c.path("/etc/haproxy/haproxy.cfg")).expect("haproxy.cfg");
    assert_eq!(
        cfg, HAND_WRITTEN,
        "haproxy.cfg byte-identical to the hand-written one"
    );
    let units = c.ok("systemctl list-unit-files --no-legend 'edgeup*'; ls /etc/systemd/system | grep -i edgeup; true");
    assert_eq!(units.trim(), "", "no edgeup unit left");
    for gone in [
        "/etc/edgeup",
        "/var/lib/edgeup",
        "/etc/haproxy/certs",
        "/etc/haproxy/edgeup-sites.map",
    ] {
        assert!(!c.path(gone).exists(), "{gone} left behind");
    }
    // Installed by the container setup (before edgeup), so it stays.
    assert!(c.path("/usr/local/bin/edgeup").exists());
    serves_hand_written(c);
}

fn converge(c: &Container, flags: &str, app: &str) {
    let run = edgeup(c, &format!("apply --yes {flags}"));
    assert_eq!(
        run.code, 0,
        "apply failed: {:?}\n{}",
        run.events, run.stderr
    );
    let (body, err) = curl(&["-k", &format!("https://{DOMAIN}/")]);
    assert!(
        body.contains(app),
        "HTTPS through HAProxy reaches the app: {body} {err}"
    );
}

#[test]
fn uninstall_restores_the_host_then_changes_nothing_and_apply_converges_again() {
    let s = scenario(APP);
    let pebble = pebble();
    let c = Container::boot("bookworm", "uninstall", &edgeup_binary());
    trust_pebble(&c, &pebble);
    c.ok("apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends haproxy curl >/dev/null");
    std::fs::write(c.path("/etc/haproxy/haproxy.cfg"), HAND_WRITTEN).expect("hand-written cfg");
    c.ok("systemctl restart haproxy");
    serves_hand_written(&c);
    let packages_before = installed_packages(&c);
    let flags = acme_flags(s.backend, &pebble, "builtin");

    // 1. Converge, then uninstall with --purge --remove-packages.
    converge(&c, &flags, APP);
    assert!(
        c.path("/var/lib/edgeup/ledger.json").exists(),
        "apply keeps a ledger"
    );
    assert!(
        c.ok("systemctl is-enabled edgeup-renew.timer")
            .contains("enabled")
    );
    let (code, text) = uninstall(&c, "--dry-run");
    assert_eq!(code, 3, "--dry-run with something to undo: {text}");
    assert!(text.contains("restore /etc/haproxy/haproxy.cfg"), "{text}");
    assert!(
        text.contains("stop and disable edgeup-renew.timer"),
        "{text}"
    );
    let (code, text) = uninstall(&c, "");
    assert_eq!(code, 2, "without a terminal, --yes is required: {text}");
    assert!(
        c.path("/var/lib/edgeup/ledger.json").exists(),
        "refused: nothing changed"
    );
    let (code, text) = uninstall(&c, "--yes --purge --remove-packages");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("remove packages"), "{text}");
    assert!(
        !text.contains("archive:"),
        "--purge archives nothing: {text}"
    );
    assert_nothing_of_edgeup(&c);
    assert_eq!(
        installed_packages(&c),
        packages_before,
        "exactly the packages edgeup installed are removed"
    );
    assert!(
        !c.path("/var/backups").exists() || !c.ok("ls /var/backups").contains("edgeup-"),
        "--purge leaves no archive"
    );

    // 2. Converge again (edgeup installs its packages again), uninstall by default.
    converge(&c, &flags, APP);
    let (code, text) = uninstall(&c, "--yes");
    assert_eq!(code, 0, "{text}");
    assert_nothing_of_edgeup(&c);
    assert!(
        text.contains("packages edgeup installed are kept"),
        "{text}"
    );
    assert!(
        installed_packages(&c).lines().any(|p| p == "certbot"),
        "packages kept"
    );
    let archive = text
        .lines()
        .find_map(|l| l.split(" are in ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the output names the archive: {text}"))
        .to_string();
    let listing = c.ok(&format!("find {archive} -printf '%y %m %P\\n' | sort -k3"));
    assert!(
        listing.lines().any(|l| l.starts_with("d 700 ")),
        "{listing}"
    );
    for line in listing.lines() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["d", mode, ..] => assert_eq!(*mode, "700", "archive dir: {line}"),
            ["f", mode, ..] => assert_eq!(*mode, "600", "archive file: {line}"),
            _ => panic!("unexpected entry in the archive: {line}"),
        }
    }
    assert!(
        listing.contains(&format!("etc/haproxy/certs/{DOMAIN}.pem")),
        "the certificate and key are archived: {listing}"
    );
    assert!(
        listing.contains("/account.json"),
        "the ACME account is archived: {listing}"
    );
    let pem = c.ok(&format!("cat {archive}/etc/haproxy/certs/{DOMAIN}.pem"));
    assert!(
        pem.contains("PRIVATE KEY"),
        "the archived PEM holds the key"
    );

    // 3. A second uninstall changes nothing, and says so.
    let before = tree(&c);
    let (code, text) = uninstall(&c, "--yes");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to undo"), "{text}");
    assert_eq!(tree(&c), before, "a second uninstall changed the host");

    // 4. Apply converges again after uninstall.
    converge(&c, &flags, APP);
    let again = edgeup(&c, &format!("apply --yes {flags}"));
    assert_eq!(again.count("changed"), 0, "{:?}", again.changed_steps());
    eprintln!("uninstall scenario: {:.1?}", s.started.elapsed());
}

/// The fleet rootfs (everything apply installs is there: no network
/// needed) in a network namespace of its own, so ufw firewalls only that.
#[test]
fn uninstall_reverts_only_the_firewall_rules_edgeup_added() {
    let _serial = container::exclusive();
    require_tools();
    let ns = container::Netns::create(61);
    let binary = edgeup_binary();
    let c = container::Boot::new(container::fleet_rootfs(), "uninstall-ufw")
        .network_namespace(ns.path())
        .binary(&binary)
        .start();
    std::fs::write(c.path("/etc/haproxy/haproxy.cfg"), HAND_WRITTEN).expect("hand-written cfg");
    c.ok("systemctl restart haproxy");
    // 80/tcp is allowed before edgeup: it must stay; 443/tcp is edgeup's.
    c.ok("ufw allow 22/tcp >/dev/null && ufw allow 80/tcp >/dev/null && ufw --force enable >/dev/null");
    let rules_before = std::fs::read(c.path("/etc/ufw/user.rules")).expect("user.rules");
    let status_before = c.ok("ufw status verbose");
    assert!(status_before.contains("Status: active"), "{status_before}");

    let run = edgeup(
        &c,
        "apply --yes --domain chat.example.test --email ops@example.org \
         --backend 127.0.0.1:3000 --acme-directory off --firewall ufw",
    );
    assert_eq!(run.code, 0, "{:?}\n{}", run.events, run.stderr);
    let status = c.ok("ufw status");
    assert!(status.contains("443/tcp"), "apply opened 443: {status}");

    let (code, text) = uninstall(&c, "--yes");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ufw: delete the rule allowing 443/tcp"),
        "{text}"
    );
    assert!(
        !text.contains("allowing 80/tcp"),
        "80/tcp was there before: {text}"
    );
    assert_eq!(
        std::fs::read(c.path("/etc/ufw/user.rules")).expect("user.rules"),
        rules_before,
        "ufw's rules as before edgeup"
    );
    assert_eq!(c.ok("ufw status verbose"), status_before);
    let cfg = std::fs::read_to_string(c.path("/etc/haproxy/haproxy.cfg")).expect("haproxy.cfg");
    assert_eq!(cfg, HAND_WRITTEN);
    serves_hand_written(&c);
    let (code, text) = uninstall(&c, "--yes");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to undo"), "{text}");
}
