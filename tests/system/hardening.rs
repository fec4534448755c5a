//! Attacks by a local unprivileged user on a converged host, performed for
//! real in a booted container (issue: hardening).

use super::*;

/// Runs `script` as `nobody` inside the container.
fn as_nobody(c: &Container, script: &str) -> std::process::Output {
    c.sh(&format!(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups -- sh -c {}",
        shell_quote(script)
    ))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A perl one-liner (perl-base is in every Debian) that listens on
/// 127.0.0.1:PORT and answers every request with `body`.
fn fake_responder(port: u16, body: &str) -> String {
    format!(
        "exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => \"127.0.0.1\", \
         LocalPort => {port}, Listen => 5, ReuseAddr => 1) or die \"bind: $!\\n\"; print \"listening\\n\"; \
         $| = 1; while ($c = $s->accept) {{ sysread($c, $x, 4096); print $c \"HTTP/1.1 200 OK\\r\\n\
         Content-Length: {len}\\r\\nConnection: close\\r\\n\\r\\n{body}\"; close $c }}'",
        len = body.len()
    )
}

#[test]
fn an_unprivileged_user_cannot_answer_acme_challenges() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("hardening");
    let c = Container::boot("bookworm", "hardening", &edgeup_binary());
    let converge = edgeup(&c, &format!("apply {}", site_flags(backend)));
    assert_eq!(converge.code, 0, "{}", converge.stderr);
    let cfg = c.ok("cat /etc/haproxy/haproxy.cfg");
    assert!(
        cfg.contains("\n    server responder 127.0.0.1:888\n"),
        "{cfg}"
    );

    // The attack on today's responder port: binding it is refused.
    let bind = as_nobody(&c, &fake_responder(888, "stolen"));
    let said = String::from_utf8_lossy(&bind.stderr).into_owned();
    assert!(
        !bind.status.success() && said.contains("bind: Permission denied"),
        "nobody could bind the ACME responder port: {said} {}",
        stdout(&bind)
    );
    // The attack on the earlier releases' port succeeds in binding, but the
    // challenge path no longer leads there: the CA would get HAProxy's 503.
    let attacker = std::process::Command::new("nsenter")
        .args(["-t", &c.init.to_string(), "-a", "--"])
        .args([
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
        ])
        .args(["sh", "-c", &fake_responder(8688, "stolen")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the attacker");
    let mut attacker = KillOnDrop(attacker);
    let mut line = String::new();
    if let Some(out) = attacker.0.stdout.take() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(
        line.trim(),
        "listening",
        "the attacker could not even bind 8688"
    );
    let (body, err) = curl(&[
        "-s",
        "-w",
        " %{http_code}",
        &format!("http://{DOMAIN}/.well-known/acme-challenge/token"),
    ]);
    assert!(
        !body.contains("stolen"),
        "HAProxy routed the challenge to the attacker: {body} {err}"
    );
    assert!(body.ends_with(" 503"), "{body} {err}");
    drop(attacker);
    eprintln!(
        "scenario unprivileged challenge answers: {:.1?}",
        started.elapsed()
    );
}

/// Kills the child (SIGKILL) and reaps it when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_renewal_timer_runs_a_root_owned_edgeup_not_the_file_apply_was_started_from() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("hardening-binary");
    let pebble = pebble();
    let c = Container::boot("bookworm", "hardening-bin", &edgeup_binary());
    trust_pebble(&c, &pebble);
    // A user's download, in a directory whose name systemd would split (space)
    // and expand (%), started by root.
    c.ok(
        "mkdir -p '/tmp/dl dir%i' && mv /usr/local/bin/edgeup '/tmp/dl dir%i/edgeup' \
         && chown -R nobody:nogroup '/tmp/dl dir%i'",
    );
    let out = c.sh(&format!(
        "'/tmp/dl dir%i/edgeup' --json apply {}",
        acme_flags(backend, &pebble, "builtin")
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = c.ok("systemctl cat edgeup-renew.service");
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/edgeup renew --quiet\n"),
        "{unit}"
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G %F' /usr/local/bin/edgeup").trim(),
        "755 root root regular file"
    );
    assert_eq!(
        c.ok("cmp '/tmp/dl dir%i/edgeup' /usr/local/bin/edgeup && echo same")
            .trim(),
        "same"
    );
    // The timer's service really runs it: a quiet no-op renew.
    c.ok("systemctl start edgeup-renew.service");
    assert_eq!(
        c.ok("systemctl show -P Result edgeup-renew.service").trim(),
        "success"
    );
    // A swapped-in file at the fixed path is replaced, not trusted.
    c.ok("echo '#!/bin/sh' > /usr/local/bin/edgeup && chmod 777 /usr/local/bin/edgeup");
    let again = c.sh(&format!(
        "'/tmp/dl dir%i/edgeup' --json apply {}",
        acme_flags(backend, &pebble, "builtin")
    ));
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    assert_eq!(
        c.ok(
            "cmp '/tmp/dl dir%i/edgeup' /usr/local/bin/edgeup && stat -c %a /usr/local/bin/edgeup"
        )
        .trim(),
        "755"
    );
    eprintln!("scenario renewal binary path: {:.1?}", started.elapsed());
}

#[test]
fn the_certificate_directory_is_roots_and_no_link_there_is_followed() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("hardening-certs");
    let c = Container::boot("bookworm", "hardening-certs", &edgeup_binary());
    let flags = site_flags(backend);
    let converge = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(converge.code, 0, "{}", converge.stderr);
    let pem = format!("/etc/haproxy/certs/{DOMAIN}.pem");
    assert_eq!(
        c.ok("stat -c '%a %U %G' /etc/haproxy/certs").trim(),
        "700 root root"
    );
    assert_eq!(
        c.ok(&format!("stat -c '%a %U %G' {pem}")).trim(),
        "600 root root"
    );
    // HAProxy (root master, haproxy workers) serves the root-owned PEM.
    let (body, err) = curl(&["-sk", &format!("https://{DOMAIN}/hello")]);
    assert!(body.starts_with("backend: hardening-certs"), "{body} {err}");

    // The haproxy account cannot plant anything in the directory.
    let plant = c.sh(
        "setpriv --reuid=haproxy --regid=haproxy --clear-groups -- ln -s /etc/shadow /etc/haproxy/certs/evil.pem",
    );
    assert!(
        !plant.status.success(),
        "the haproxy user could write the crt directory"
    );

    // A link that got there anyway (the PEM swapped for /etc/shadow): apply
    // replaces the link with a real PEM and never touches its target.
    let shadow = c.ok("stat -c '%a %U %G %s %Y' /etc/shadow");
    c.ok(&format!("ln -sf /etc/shadow {pem}"));
    let repaired = edgeup(&c, &format!("apply {flags}"));
    assert_eq!(
        repaired.code, 0,
        "{:?}\n{}",
        repaired.events, repaired.stderr
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G %s %Y' /etc/shadow"),
        shadow,
        "/etc/shadow was touched"
    );
    assert_eq!(
        c.ok(&format!("stat -c '%a %U %G %F' {pem}")).trim(),
        "600 root root regular file"
    );
    assert!(
        !c.ok(&format!("cat {pem}")).contains("root:"),
        "shadow content in the PEM"
    );
    let backups = c.ok("cat /var/lib/edgeup/backups/* 2>/dev/null | grep -c '^root:' || true");
    assert_eq!(backups.trim(), "0", "shadow content in a backup");
    let (body, err) = curl(&["-sk", &format!("https://{DOMAIN}/hello")]);
    assert!(body.starts_with("backend: hardening-certs"), "{body} {err}");
    eprintln!("scenario certificate directory: {:.1?}", started.elapsed());
}

#[test]
fn a_planted_eab_key_never_reaches_any_output_channel_on_failure() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("hardening-secret");
    let c = Container::boot("bookworm", "hardening-secret", &edgeup_binary());
    // The preflight passes (the name resolves here, HAProxy routes the
    // path), then the CA is unreachable: registration fails with the key in
    // hand, for both clients.
    let converge = edgeup(&c, &format!("apply {}", site_flags(backend)));
    assert_eq!(converge.code, 0, "{}", converge.stderr);
    c.ok(&format!("echo '127.0.0.1 {DOMAIN}' >> /etc/hosts"));
    let ca = c.path("/root/any-ca.pem");
    let pem = std::fs::read_to_string(c.path(&format!("/etc/haproxy/certs/{DOMAIN}.pem")))
        .expect("the placeholder");
    let end = pem.find("-----END CERTIFICATE-----").map_or(0, |i| i + 25);
    std::fs::write(&ca, pem.get(..end).unwrap_or_default()).expect("a CA bundle");
    const KEY: &str = "c2VjcmV0LWVhYi1obWFjLWtleS1wbGFudGVkLWJ5LXRoZS10ZXN0";
    for client in ["builtin", "certbot"] {
        let site = format!(
            "domain: {DOMAIN}\nemail: ops@example.org\nbackends: ['127.0.0.1:{backend}']\n\
             acme:\n  directory: https://127.0.0.1:9/dir\n  ca_bundle: /root/any-ca.pem\n  \
             client: {client}\n  eab: {{kid: kid-1, hmac_key: {KEY}}}\n"
        );
        std::fs::write(c.path("/root/eab.yaml"), site).expect("site file");
        for json in ["", "--json "] {
            let out = c.sh(&format!("edgeup {json}apply -f /root/eab.yaml"));
            let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(1), "{client} {json}: {all}");
            assert!(
                all.contains("127.0.0.1:9"),
                "{client} {json}: the failure is explained: {all}"
            );
            assert!(
                !all.contains(KEY),
                "{client} {json}: the EAB key was printed:\n{all}"
            );
        }
        // Nor is it left on disk outside the 0600 site files (certbot's -c file is gone).
        let stray = c.sh(&format!(
            "grep -rl {KEY} /etc /var/lib/edgeup /tmp /root 2>/dev/null | grep -v '^/root/eab.yaml$' || true"
        ));
        let stray = stdout(&stray);
        for file in stray.lines() {
            assert_eq!(
                c.ok(&format!("stat -c '%a %U' {file}")).trim(),
                "600 root",
                "{client}: the key is in {file}, readable by others"
            );
        }
        assert!(
            !stray.contains(".edgeup-eab.ini"),
            "{client}: certbot's EAB file was left behind: {stray}"
        );
    }
    eprintln!("scenario planted EAB key: {:.1?}", started.elapsed());
}
