//! dns-01 for real in a booted container: a real BIND on loopback takes
//! TSIG-signed dynamic updates, Pebble validates against it (`-dnsserver`),
//! and edgeup issues `example.test` + `*.example.test` with the builtin
//! client, serves two names under the wildcard, issues nothing on a second
//! run and renews with `--force`; the same through an exec hook that calls
//! `nsupdate`. Failures (a wrong TSIG key, a name outside every zone,
//! records never visible where the zone's servers are asked) each name the
//! hop, place no order and leave the certificate serving. Alerts: the
//! renewals' events reach a webhook on the test's loopback server and a
//! command hook in the container.

use super::*;
use common::bind::Bind;
use common::pebble::{Options, Pebble};
use common::webhook::Webhook;

const APEX: &str = "example.test";
const CHALLENGE: &str = "_acme-challenge.example.test";
const KEY_FILE: &str = "/etc/edgeup/tsig.key";

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The events the command hook in the container wrote, one JSON per line.
fn hook_events(c: &Container) -> Vec<Value> {
    std::fs::read_to_string(c.path("/root/alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn site_file(pebble: &Pebble, backend: u16, dns: &str, webhook: u16, extra_alias: &str) -> String {
    format!(
        "# a wildcard certificate over dns-01\n\
         domain: {APEX}\naliases: [\"*.{APEX}\"{extra_alias}]\nemail: ops@example.org\n\
         backends: [\"127.0.0.1:{backend}\"]\n\
         acme:\n  directory: {}\n  ca_bundle: /root/pebble-ca.pem\n  challenge: dns-01\n  dns: {dns}\n\
         notify:\n  targets:\n    - webhook: \"http://127.0.0.1:{webhook}/hook?token=s3cr3t\"\n\
         \x20   - command: /root/alert.sh\n  days_before_expiry: 1\n",
        pebble.directory
    )
}

/// `edgeup status`'s "last renewal" check: (level, message).
fn last_renewal(c: &Container) -> (String, String) {
    let status: Value = serde_json::from_str(stdout(&c.sh("edgeup status --json")).trim())
        .expect("status prints one JSON report");
    let check = status["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "last renewal"))
        .cloned()
        .unwrap_or_else(|| panic!("no last renewal check: {status}"));
    (
        check["level"].as_str().unwrap_or("?").to_string(),
        check["message"].as_str().unwrap_or("?").to_string(),
    )
}

fn rfc2136(bind: &Bind, resolver: Option<&Bind>) -> String {
    let resolver = resolver.map_or(String::new(), |r| format!(", resolver: \"{}\"", r.addr()));
    format!(
        "{{provider: rfc2136, server: \"{}\", tsig_key_file: {KEY_FILE}, propagation_timeout: 5s{resolver}}}",
        bind.addr()
    )
}

fn orders(pebble: &Pebble) -> usize {
    pebble.ca_log().matches("Added order").count()
}

/// The serial HAProxy serves for SNI `name`, and the body of GET / there,
/// verified against Pebble's root.
fn served(name: &str, root: &std::path::Path) -> (String, String) {
    let (_, body) = super::sites::get(name, root);
    (super::sites::served_serial_of(name), body)
}

#[test]
fn dns01_issues_a_wildcard_through_bind_and_a_hook_and_failures_name_the_hop() {
    let Scenario {
        _serial,
        started,
        backend,
    } = scenario("dns01");
    let bind = Bind::start();
    // A day's certificates: `expiry_near` (under a day left) is due at once.
    let pebble = Pebble::start_with(Options {
        dns_server: Some(bind.addr().to_string()),
        certificate_validity: Some(std::time::Duration::from_secs(86_400)),
        ..Options::every_order_validated(80)
    });
    let webhook = Webhook::start();
    let c = Container::boot("bookworm", "dns01", &edgeup_binary());
    std::fs::copy(&pebble.ca_bundle, c.path("/root/pebble-ca.pem")).expect("copy CA bundle");
    c.ok("mkdir -p /etc/edgeup && chmod 700 /etc/edgeup");
    std::fs::copy(&bind.key_file, c.path(KEY_FILE)).expect("copy the TSIG key");
    c.ok(&format!("chmod 600 {KEY_FILE}"));
    c.ok("printf '#!/bin/sh\\ncat >> /root/alerts.jsonl\\necho >> /root/alerts.jsonl\\n' > /root/alert.sh && chmod 755 /root/alert.sh");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("pebble-root.pem");
    let write_site = |dns: &str, extra_alias: &str| {
        std::fs::write(
            c.path("/root/site.yaml"),
            site_file(&pebble, backend, dns, webhook.port, extra_alias),
        )
        .expect("write the site file");
    };

    // 1. Issued over dns-01 (no name resolves anywhere: nothing reaches port 80).
    write_site(&rfc2136(&bind, None), "");
    let first = edgeup(&c, "apply -f /root/site.yaml");
    assert_eq!(first.code, 0, "{:?}\n{}", first.events, first.stderr);
    std::fs::write(&root, pebble.issuer_root()).expect("write root");
    let pem = std::fs::read_to_string(c.path(&format!("/etc/haproxy/certs/{APEX}.pem")))
        .expect("the PEM");
    pebble
        .verify_issued(&pem)
        .unwrap_or_else(|e| panic!("not Pebble-issued: {e}"));
    let (serial, _) = served(APEX, &root);
    for name in ["a.example.test", "b.example.test"] {
        let (at, body) = served(name, &root);
        assert_eq!(at, serial, "{name} gets the wildcard certificate");
        assert!(body.starts_with("backend: dns01"), "{name}: {body}");
    }
    assert!(
        bind.txt(CHALLENGE).is_empty(),
        "records left behind: {:?}",
        bind.txt(CHALLENGE)
    );
    let all = format!("{:?}{}", first.events, first.stderr);
    let secret = std::fs::read_to_string(&bind.key_file).expect("the key");
    let secret = secret
        .split('"')
        .nth(3)
        .expect("the secret in the key file");
    assert!(!all.contains(secret), "the TSIG secret reached the output");

    // 2. A second run issues nothing.
    let second = edgeup(&c, "apply -f /root/site.yaml");
    assert_eq!(second.count("changed"), 0, "{:?}", second.changed_steps());

    // 3. Alerts: under a day left, `renew` (nothing due) tells both targets
    //    once; a second renew the same day does not repeat it.
    let quiet = edgeup(&c, "renew");
    assert_eq!(quiet.code, 0, "{:?}\n{}", quiet.events, quiet.stderr);
    edgeup(&c, "renew");
    assert_eq!(kinds(&webhook.events()), ["expiry_near"]);
    let near = &webhook.events()[0];
    assert_eq!(near["domain"], APEX);
    assert_eq!(near["names"], serde_json::json!([APEX, "*.example.test"]));
    assert!(
        near["not_after"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{near}"
    );
    assert_eq!(
        hook_events(&c),
        webhook.events(),
        "the command gets the same JSON"
    );

    // 4. renew --force replaces it.
    let renew = edgeup(&c, "renew --force");
    assert_eq!(renew.code, 0, "{:?}\n{}", renew.events, renew.stderr);
    let (renewed, _) = served("c.example.test", &root);
    assert_ne!(
        renewed, serial,
        "renew --force did not replace the certificate"
    );

    // 5. Failures: each names its hop, places no order, leaves the
    //    certificate serving, and is a renewal_failed alert.
    let failing = |label: &str, expect: &str| {
        let before = orders(&pebble);
        let run = edgeup(&c, "renew --force");
        let all = format!("{:?}{}", run.events, run.stderr);
        assert_eq!(run.code, 1, "{label}: {all}");
        assert!(all.contains(expect), "{label}: wants {expect:?} in {all}");
        assert!(all.contains("the CA was not contacted"), "{label}: {all}");
        assert_eq!(orders(&pebble), before, "{label}: an order reached the CA");
        assert_eq!(
            served("d.example.test", &root).0,
            renewed,
            "{label}: not serving"
        );
        let last = webhook.events().last().cloned().unwrap_or_default();
        assert_eq!(last["event"], "renewal_failed", "{label}: {last}");
        assert!(
            last["error"].as_str().is_some_and(|e| e.contains(expect)),
            "{label}: {last}"
        );
    };
    std::fs::copy(&bind.wrong_key_file, c.path(KEY_FILE)).expect("copy the wrong key");
    failing("wrong TSIG key", "BADSIG");
    let (level, message) = last_renewal(&c);
    assert_eq!(level, "warn", "{message}");
    assert!(
        message.starts_with("failed at ") && message.contains("BADSIG"),
        "{message}"
    );
    std::fs::copy(&bind.key_file, c.path(KEY_FILE)).expect("copy the key back");
    // Updates go to the primary; the zone is looked up (and its servers
    // asked) through another server holding a copy that never changes.
    let stale = Bind::start();
    write_site(&rfc2136(&bind, Some(&stale)), "");
    assert_eq!(edgeup(&c, "apply -f /root/site.yaml").code, 0);
    failing(
        "records never visible",
        &format!("not visible at {}", stale.addr()),
    );
    // A name no zone here holds: the apply's new alias needs a certificate.
    write_site(&rfc2136(&bind, None), ", \"www.other.invalid\"");
    let before = orders(&pebble);
    let outside = edgeup(&c, "apply -f /root/site.yaml");
    let all = format!("{:?}{}", outside.events, outside.stderr);
    assert_eq!(outside.code, 1, "{all}");
    assert!(all.contains("no zone found"), "{all}");
    assert_eq!(orders(&pebble), before, "an order reached the CA");
    assert_eq!(served("e.example.test", &root).0, renewed);

    // 6. The exec provider: a hook calling nsupdate with the same key.
    c.ok("apt-get install -y -qq --no-install-recommends bind9-dnsutils >/dev/null");
    let hook = format!(
        "#!/bin/sh\nset -eu\necho \"$1 $2 $3\" >> /root/hook.log\n\
         case $1 in present) op=\"add $2 60\" ;; cleanup) op=\"delete $2\" ;; *) exit 2 ;; esac\n\
         printf 'server 127.0.0.1 {}\\nupdate %s TXT \"%s\"\\nsend\\n' \"$op\" \"$3\" | nsupdate -k {KEY_FILE}\n",
        bind.port
    );
    std::fs::write(c.path("/usr/local/bin/dns-hook"), hook).expect("write the hook");
    c.ok("chmod 755 /usr/local/bin/dns-hook");
    write_site(
        &format!(
            "{{provider: exec, command: /usr/local/bin/dns-hook, resolver: \"{}\", propagation_timeout: 10s}}",
            bind.addr()
        ),
        "",
    );
    let switched = edgeup(&c, "apply -f /root/site.yaml");
    assert_eq!(
        switched.code, 0,
        "{:?}\n{}",
        switched.events, switched.stderr
    );
    let by_hook = edgeup(&c, "renew --force");
    assert_eq!(by_hook.code, 0, "{:?}\n{}", by_hook.events, by_hook.stderr);
    assert_ne!(
        served("f.example.test", &root).0,
        renewed,
        "the hook's renewal is not served"
    );
    let log = c.ok("cat /root/hook.log");
    for action in ["present", "cleanup"] {
        assert!(
            log.lines()
                .filter(|l| l.starts_with(&format!("{action} {CHALLENGE}. ")))
                .count()
                >= 2,
            "two {action} calls (apex and wildcard) in {log}"
        );
    }
    assert!(bind.txt(CHALLENGE).is_empty(), "{:?}", bind.txt(CHALLENGE));
    // The recovered renewal is told too; the webhook's token never shows.
    assert_eq!(
        kinds(&webhook.events()).last().map(String::as_str),
        Some("renewed")
    );
    assert!(!format!("{:?}{}", by_hook.events, by_hook.stderr).contains("s3cr3t"));
    let (level, message) = last_renewal(&c);
    assert_eq!(level, "ok", "{message}");
    assert!(message.starts_with("renewed at "), "{message}");
    eprintln!("scenario dns-01: {:.1?}", started.elapsed());
}
