//! Many certificates from the builtin client at once (`acme::batch`, what a
//! run of certificate steps in `apply` uses), against Pebble on loopback.
//! No HAProxy here: Pebble's HTTP-01 validations go straight to the batch's
//! responder (Pebble's `httpPort` is the responder's port). Checked: each
//! job gets its own certificate in its own place, orders overlap but never
//! more than `MAX_IN_FLIGHT` at once (from Pebble's log), the account is
//! registered once, and a job whose preflight fails or whose order the CA
//! refuses fails alone.
//!
//! Needs pebble and pebble-challtestsrv (Debian package `pebble`), curl and
//! openssl; a missing tool fails the test.

mod common;

use common::free_port;
use common::pebble::{Options, Pebble};
use edgeup::acme::CaSettings;
use edgeup::acme::batch::{self, Failure, Job, Outcome};
use edgeup::host::Host;
use edgeup::host::scripted::ScriptedRunner;
use std::time::Instant;

const SITES: usize = 14;

/// Orders in flight over Pebble's log: an order is in flight from "Added
/// order" until its certificate is issued. (most at once, added, issued)
fn orders_in_flight(log: &str) -> (usize, usize, usize) {
    let mut open: Vec<String> = Vec::new();
    let (mut most, mut added, mut issued) = (0, 0, 0);
    for line in log.lines() {
        if let Some(rest) = line.split("Added order \"").nth(1) {
            open.push(rest.split('"').next().unwrap_or_default().to_string());
            added += 1;
        } else if let Some(id) = line.split("for order ").nth(1)
            && line.contains("Issued certificate serial")
        {
            open.retain(|o| o != id.trim());
            issued += 1;
        }
        most = most.max(open.len());
    }
    (most, added, issued)
}

fn describe(outcome: &Outcome) -> String {
    match &outcome.result {
        Ok(_) => "issued".into(),
        Err(Failure::Before(e)) => format!("before: {e:#}"),
        Err(Failure::Order(e)) => format!("order: {e:#}"),
    }
}

#[test]
fn a_batch_overlaps_its_orders_within_the_bound_and_isolates_failures() {
    let responder_port = free_port();
    let pebble = Pebble::start_with(Options::every_order_validated(responder_port));
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let host = Host::new(root.clone(), Box::new(ScriptedRunner::new(root)));
    let ca = CaSettings {
        client: edgeup::site::AcmeClient::Builtin,
        directory: pebble.directory.clone(),
        ca_bundle: Some(pebble.ca_bundle.clone()),
        email: Some("ops@example.org".into()),
        eab_kid: None,
        eab_hmac_key: None,
    };
    let responder = std::net::SocketAddr::from(([127, 0, 0, 1], responder_port));
    // Pebble's DNS (challtestsrv) answers 127.0.0.1 for every name; the
    // host's resolver knows none of them, so the good jobs skip the
    // preflight (as --skip-preflight does) and the preflight that fails is
    // localhost's, on a port where nothing listens.
    let mut names: Vec<Vec<String>> = (1..=SITES)
        .map(|i| vec![format!("s{i}.batch.test"), format!("www.s{i}.batch.test")])
        .collect();
    names.push(vec!["localhost".into()]);
    names.push(vec!["bad_name.batch.test".into()]);
    let closed = free_port();
    let jobs: Vec<Job> = names
        .iter()
        .enumerate()
        .map(|(i, domains)| Job {
            ca: &ca,
            domains,
            responder,
            validation_port: if i == SITES { closed } else { responder_port },
            preflight: i == SITES,
            certbot_dir: "/etc/letsencrypt",
            key_pem: None,
            dns: None,
        })
        .collect();

    let started = Instant::now();
    let outcomes = batch::issue_all(&host, &jobs);
    let took = started.elapsed();
    let said: Vec<String> = outcomes.iter().map(describe).collect();
    assert_eq!(outcomes.len(), jobs.len());

    // Every good job holds a certificate for its own names, from Pebble.
    for (i, outcome) in outcomes.iter().take(SITES).enumerate() {
        let Ok(issued) = &outcome.result else {
            panic!("job {i}: {}", said[i]);
        };
        pebble
            .verify_issued(&issued.chain_pem)
            .unwrap_or_else(|e| panic!("job {i}: not Pebble's: {e}"));
        let bundle =
            edgeup::pki::parse_bundle(format!("{}{}", issued.chain_pem, issued.key_pem).as_bytes())
                .expect("a PEM bundle");
        let leaf = bundle.leaf().expect("a leaf");
        assert!(bundle.key_matches(), "job {i}: the key is another job's");
        for name in &names[i] {
            assert!(leaf.covers(name), "job {i}: {name} not on {:?}", leaf.names);
        }
        assert!(
            !leaf.covers(&format!("s{}.batch.test", (i + 1) % SITES + 1)),
            "job {i}: another job's certificate"
        );
    }
    // The failed preflight: its own failure, before the CA.
    assert!(
        said[SITES].starts_with("before: preflight for localhost failed; the CA was not contacted"),
        "{}",
        said[SITES]
    );
    // The order the CA refuses (an underscore is not allowed in a name).
    assert!(
        said[SITES + 1].starts_with("order: creating the order")
            && said[SITES + 1].contains("malformed"),
        "{}",
        said[SITES + 1]
    );

    let log = pebble.ca_log();
    assert_eq!(
        log.matches("accounts in memory").count(),
        1,
        "one account for the batch:\n{log}"
    );
    let (most, added, issued) = orders_in_flight(&log);
    assert_eq!((added, issued), (SITES, SITES), "{log}");
    assert!(
        (2..=batch::MAX_IN_FLIGHT).contains(&most),
        "orders in flight at once: {most} (want 2..={}):\n{log}",
        batch::MAX_IN_FLIGHT
    );
    eprintln!(
        "{SITES} certificates in {took:.1?}, at most {most} orders in flight (bound {})",
        batch::MAX_IN_FLIGHT
    );
}
