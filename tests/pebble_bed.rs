//! The Pebble test bed (`tests/common/pebble.rs`) works: its directory answers
//! over HTTPS trusted through `ca_bundle`, every listener is on 127.0.0.1, and
//! the real certbot gets a certificate from it over HTTP-01 that verifies
//! against Pebble's root. Nothing is left running afterwards.
//!
//! Needs pebble, pebble-challtestsrv (Debian package `pebble`), certbot, curl,
//! openssl and ss; a missing tool fails the test, it is never skipped.

mod common;

use common::pebble::{Pebble, tool};
use common::{free_port, run};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[test]
fn directory_answers_over_https_and_listens_on_loopback_only() {
    let pebble = Pebble::start(free_port());
    assert!(
        pebble.directory.starts_with("https://127.0.0.1:") && pebble.directory.ends_with("/dir"),
        "{}",
        pebble.directory
    );

    let out = run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .arg("--cacert")
            .arg(&pebble.ca_bundle)
            .arg(&pebble.directory),
        30,
    );
    assert!(out.status.success(), "curl: {}", out.stderr_text());
    let dir: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("directory is not JSON ({e}): {}", out.stdout_text()));
    for key in ["newOrder", "newAccount", "newNonce"] {
        let url = dir[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key}: {dir}"));
        assert!(url.starts_with("https://127.0.0.1:"), "{key}: {url}");
    }

    // Without the test CA, the same request must fail verification.
    let untrusted = run(
        Command::new("curl")
            .args(["--silent", "--max-time", "10"])
            .arg(&pebble.directory),
        30,
    );
    assert!(
        !untrusted.status.success(),
        "Pebble HTTPS verified without ca_bundle"
    );

    for pem in [pebble.issuer_root(), pebble.intermediate()] {
        assert_eq!(
            common::pebble::pem_certificates(&pem).len(),
            1,
            "expected one certificate:\n{pem}"
        );
    }
    assert_ne!(pebble.issuer_root(), pebble.intermediate());

    assert_loopback_only(&pebble);
}

/// Every TCP and UDP socket pebble and challtestsrv listen on is on 127.0.0.1.
fn assert_loopback_only(pebble: &Pebble) {
    let ss = tool("ss", "apt-get install iproute2");
    let out = run(
        Command::new(ss).args(["-H", "-l", "-n", "-t", "-u", "-p"]),
        30,
    );
    assert!(out.status.success(), "ss: {}", out.stderr_text());
    let text = out.stdout_text();
    for pid in pebble.pids() {
        let needle = format!("pid={pid},");
        let mine: Vec<&str> = text.lines().filter(|l| l.contains(&needle)).collect();
        assert!(!mine.is_empty(), "no listener of pid {pid} in:\n{text}");
        for line in mine {
            let local = line.split_whitespace().nth(4).unwrap_or("");
            assert!(
                local.starts_with("127.0.0.1:"),
                "pid {pid} listens beyond 127.0.0.1: {line}"
            );
        }
    }
}

#[test]
fn certbot_gets_a_certificate_that_verifies_against_the_issuer_root() {
    let certbot = tool("certbot", "apt-get install certbot");
    let openssl = tool("openssl", "apt-get install openssl");
    let http_port = free_port();
    let pebble = Pebble::start(http_port);
    let base = pebble.path().join("certbot");
    let domain = "some.name.test";

    let started = Instant::now();
    let out = run(
        Command::new(certbot)
            .args([
                "certonly",
                "--standalone",
                "--non-interactive",
                "--agree-tos",
                "--register-unsafely-without-email",
                "--preferred-challenges",
                "http",
                "--http-01-address",
                "127.0.0.1",
            ])
            .arg("--http-01-port")
            .arg(http_port.to_string())
            .arg("--server")
            .arg(&pebble.directory)
            .arg("-d")
            .arg(domain)
            .arg("--config-dir")
            .arg(base.join("config"))
            .arg("--work-dir")
            .arg(base.join("work"))
            .arg("--logs-dir")
            .arg(base.join("logs"))
            .env("REQUESTS_CA_BUNDLE", &pebble.ca_bundle),
        180,
    );
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "certbot exited with {}:\n{}{}\n{}",
        out.status,
        out.stdout_text(),
        out.stderr_text(),
        pebble.logs()
    );
    println!("certbot issuance against Pebble: {:.2?} wall", elapsed);

    let live = base.join("config/live").join(domain);
    let cert = live.join("cert.pem");
    let chain = live.join("chain.pem");
    assert!(cert.is_file(), "no {}", cert.display());
    let root = pebble.path().join("issuer-root.pem");
    std::fs::write(&root, pebble.issuer_root()).expect("writing issuer-root.pem");
    openssl_verify(&openssl, &root, &chain, &cert);

    let fullchain = std::fs::read_to_string(live.join("fullchain.pem")).expect("fullchain.pem");
    pebble
        .verify_issued(&fullchain)
        .expect("fullchain.pem verifies");
    let leaf_only = std::fs::read_to_string(&cert).expect("cert.pem");
    pebble
        .verify_issued(&leaf_only)
        .expect("cert.pem verifies with Pebble's intermediate");
    let subject = run(
        Command::new(&openssl)
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&cert),
        30,
    );
    assert!(
        subject.stdout_text().contains(&format!("DNS:{domain}")),
        "{}",
        subject.stdout_text()
    );

    // Everything ends with the Pebble value.
    let path = pebble.path().to_path_buf();
    let pids = pebble.pids();
    drop(pebble);
    let left = run(
        Command::new("pgrep").arg("-f").arg(path.to_str().unwrap()),
        30,
    );
    assert!(
        left.stdout_text().trim().is_empty(),
        "processes left running: {}",
        left.stdout_text()
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }
    assert!(!path.exists(), "{} not removed", path.display());
}

fn openssl_verify(openssl: &Path, root: &Path, chain: &Path, cert: &Path) {
    let out = run(
        Command::new(openssl)
            .arg("verify")
            .arg("-CAfile")
            .arg(root)
            .arg("-untrusted")
            .arg(chain)
            .arg(cert),
        30,
    );
    assert!(
        out.status.success() && out.stdout_text().trim_end().ends_with(": OK"),
        "openssl verify: {}{}",
        out.stdout_text(),
        out.stderr_text()
    );
}
