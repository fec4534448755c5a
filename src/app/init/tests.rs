//! The interview against scripted answers (every prompt, re-asking on a
//! refused answer, defaults from a previous run), and the site-file writer.

use super::ask::{Ask, Validator};
use super::questions::{Hints, blank_site, interview};
use super::{fields, file};
use crate::site::RawSite;
use anyhow::Result;
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) enum A {
    /// Typed text; "" takes the default (Enter).
    Text(&'static str),
    Pick(usize),
    Confirm(bool),
}

#[derive(Default)]
pub(super) struct Script {
    pub(super) answers: VecDeque<A>,
    /// Every prompt, answer, refusal, note and warning, in order.
    pub(super) log: Vec<String>,
}

impl Script {
    pub(super) fn new(answers: Vec<A>) -> Script {
        Script {
            answers: answers.into(),
            log: Vec::new(),
        }
    }

    fn next(&mut self, prompt: &str) -> A {
        match self.answers.pop_front() {
            Some(a) => a,
            None => panic!(
                "no answer left for {prompt:?}; so far:\n{}",
                self.log.join("\n")
            ),
        }
    }

    pub(super) fn refusals(&self) -> Vec<&String> {
        self.log.iter().filter(|l| l.contains("REFUSED")).collect()
    }

    pub(super) fn has(&self, needle: &str) -> bool {
        self.log.iter().any(|l| l.contains(needle))
    }
}

impl Ask for Script {
    fn text(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        allow_empty: bool,
        valid: Validator,
    ) -> Result<String> {
        loop {
            let A::Text(typed) = self.next(prompt) else {
                panic!("{prompt:?} wants text; so far:\n{}", self.log.join("\n"));
            };
            let value = if typed.is_empty() {
                default.unwrap_or("")
            } else {
                typed
            }
            .trim()
            .to_string();
            if value.is_empty() && !allow_empty {
                self.log.push(format!("{prompt}: REFUSED empty"));
                continue;
            }
            match valid(&value) {
                Ok(()) => {
                    self.log.push(format!("{prompt} = {value}"));
                    return Ok(value);
                }
                Err(e) => self.log.push(format!("{prompt}: REFUSED {value:?}: {e}")),
            }
        }
    }

    fn choose(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize> {
        let A::Pick(i) = self.next(prompt) else {
            panic!(
                "{prompt:?} wants a choice; so far:\n{}",
                self.log.join("\n")
            );
        };
        let i = if i == usize::MAX { default } else { i };
        assert!(i < items.len(), "{prompt}: no item {i} in {items:?}");
        self.log
            .push(format!("{prompt} = {} (default {default})", items[i]));
        Ok(i)
    }

    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool> {
        let A::Confirm(yes) = self.next(prompt) else {
            panic!("{prompt:?} wants yes/no; so far:\n{}", self.log.join("\n"));
        };
        self.log
            .push(format!("{prompt} = {yes} (default {default})"));
        Ok(yes)
    }

    fn note(&mut self, text: &str) {
        self.log.push(format!("note: {text}"));
    }

    fn warn(&mut self, text: &str) {
        self.log.push(format!("warning: {text}"));
    }
}

/// Enter on a selection: keep the highlighted default.
pub(super) const KEEP: usize = usize::MAX;

pub(super) fn hints() -> Hints {
    Hints {
        firewall: "ufw".into(),
        certbot_available: true,
        hostname: None,
        app: None,
    }
}

fn nothing_listens(backend: &str) -> Option<String> {
    Some(format!("nothing answers on {backend} yet"))
}

pub(super) fn all_listen(_: &str) -> Option<String> {
    None
}

fn run(answers: Vec<A>, start: RawSite) -> (RawSite, Script) {
    let mut script = Script::new(answers);
    let site = interview(&mut script, start, &hints(), &all_listen)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", script.log.join("\n")));
    assert!(
        script.answers.is_empty(),
        "unused answers {:?}\n{}",
        script.answers,
        script.log.join("\n")
    );
    (site, script)
}

#[test]
fn every_prompt_validated_as_typed_and_refusals_are_asked_again() {
    let (site, script) = run(
        vec![
            A::Text("https://Chat.Example.com"), // refused: scheme
            A::Text("chat.example.com"),
            A::Text("ops@your-company.com"),
            A::Text("127.0.0.1"), // refused: no port
            A::Text("127.0.0.1:3000, 127.0.0.1:3001"),
            A::Pick(0),        // subdomain
            A::Pick(0),        // Let's Encrypt staging
            A::Pick(1),        // certbot
            A::Pick(KEEP),     // http-01
            A::Pick(KEEP),     // firewall: auto
            A::Confirm(false), // no HSTS
            A::Confirm(false), // no alerts
        ],
        blank_site(),
    );
    let refusals = script.refusals();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    assert!(
        refusals[0].contains("includes a URL scheme"),
        "{refusals:?}"
    );
    assert!(refusals[1].contains("has no port"), "{refusals:?}");
    assert_eq!(site.domain, "chat.example.com");
    assert_eq!(site.email.as_deref(), Some("ops@your-company.com"));
    assert_eq!(site.backends, ["127.0.0.1:3000", "127.0.0.1:3001"]);
    assert_eq!(site.routing, "subdomain");
    assert_eq!(site.acme.directory, "letsencrypt-staging");
    assert_eq!(site.acme.client, "certbot");
    assert_eq!(site.firewall, "auto");
    assert_eq!(site.hsts, Some(false));
    assert!(script.has("(now: ufw)"), "firewall shows what detect found");
    assert!(
        script.has("HSTS makes browsers"),
        "HSTS consequence explained"
    );
    assert!(crate::site::validate(&site).is_empty());
}

#[test]
fn rerun_offers_previous_answers_as_defaults() {
    let (first, _) = run(
        vec![
            A::Text("chat.example.com"),
            A::Text("ops@your-company.com"),
            A::Text("10.0.0.5:8080"),
            A::Pick(0),
            A::Pick(1),    // production
            A::Pick(0),    // builtin
            A::Pick(KEEP), // http-01
            A::Pick(3),    // firewall none
            A::Confirm(true),
            A::Confirm(false), // no alerts
        ],
        blank_site(),
    );
    // Enter everywhere: the same site again.
    let (second, script) = run(
        vec![
            A::Text(""),
            A::Text(""),
            A::Text(""),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Confirm(true),
            A::Confirm(false),
        ],
        first.clone(),
    );
    assert_eq!(second, first);
    assert!(script.has("= chat.example.com"));
    assert!(script.has("Let's Encrypt production") && script.has("(default 1)"));
    assert!(script.has("none: leave the firewall alone") && script.has("(default 3)"));
    assert_eq!(
        first.hsts, None,
        "HSTS on is the default with ACME: left implicit"
    );
}

#[test]
fn lan_site_without_a_ca_needs_no_email_and_no_hsts_question() {
    let (site, script) = run(
        vec![
            A::Text("chat.lan"),
            A::Text(""), // no email
            A::Text("127.0.0.1:3000"),
            A::Pick(0),
            A::Pick(3), // none
            A::Pick(KEEP),
        ],
        blank_site(),
    );
    assert_eq!(site.acme.directory, "off");
    assert_eq!(site.email, None);
    assert_eq!(site.hsts, None);
    assert!(script.has("HSTS: off"));
    assert!(script.has("self-signed certificate"));
    assert!(
        !script.has("ACME client"),
        "no client question with ACME off"
    );
}

#[test]
fn reserved_name_under_lets_encrypt_is_caught_at_the_end_and_fixable() {
    let (site, script) = run(
        vec![
            A::Text("chat.lan"),
            A::Text(""),
            A::Text("127.0.0.1:3000"),
            A::Pick(0),
            A::Pick(1), // production: refuses .lan and needs an email
            A::Pick(0),
            A::Pick(KEEP), // http-01
            A::Pick(KEEP),
            A::Confirm(true),
            A::Confirm(false), // no alerts
            // closing validation: domain first
            A::Pick(1), // change the certificate source
            A::Pick(3), // none
        ],
        blank_site(),
    );
    assert!(
        script.has("reserved name Let's Encrypt cannot issue"),
        "{:#?}",
        script.log
    );
    assert_eq!(site.domain, "chat.lan");
    assert_eq!(site.acme.directory, "off");
    assert!(crate::site::validate(&site).is_empty());
}

#[test]
fn missing_email_once_acme_is_on_is_asked_again_strictly() {
    let (site, script) = run(
        vec![
            A::Text("chat.example.com"),
            A::Text(""), // empty is fine until the CA is chosen
            A::Text("127.0.0.1:3000"),
            A::Pick(0),
            A::Pick(0), // staging
            A::Pick(0),
            A::Pick(KEEP), // http-01
            A::Pick(KEEP),
            A::Confirm(true),
            A::Confirm(false),        // no alerts
            A::Pick(0),               // change the email
            A::Text(""),              // refused: now required
            A::Text("you@mail.test"), // refused: reserved name under Let's Encrypt
            A::Text("ops@your-company.com"),
        ],
        blank_site(),
    );
    assert_eq!(site.email.as_deref(), Some("ops@your-company.com"));
    assert_eq!(script.refusals().len(), 2, "{:#?}", script.log);
    assert!(script.has("email is missing"));
}

#[test]
fn path_routing_warns_about_open_webui_and_normalises_the_prefix() {
    let (site, script) = run(
        vec![
            A::Text("chat.example.com"),
            A::Text(""),
            A::Text("127.0.0.1:3000"),
            A::Pick(1),
            A::Text("/.well-known/x"), // refused: captures ACME
            A::Text("owui"),
            A::Pick(3),
            A::Pick(KEEP),
        ],
        blank_site(),
    );
    assert_eq!(site.routing, "path:/owui/");
    assert!(script.has("no sub-path support"));
    assert!(
        script.has("REFUSED \"/.well-known/x\""),
        "{:#?}",
        script.log
    );
}

#[test]
fn unreachable_backend_is_a_warning_not_a_refusal() {
    let mut script = Script::new(vec![
        A::Text("chat.example.com"),
        A::Text(""),
        A::Text("127.0.0.1:3999"),
        A::Pick(0),
        A::Pick(3),
        A::Pick(KEEP),
    ]);
    let site = interview(&mut script, blank_site(), &hints(), &nothing_listens)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(site.backends, ["127.0.0.1:3999"]);
    assert!(script.has("warning: nothing answers on 127.0.0.1:3999 yet"));
}

#[test]
fn custom_ca_with_bundle_and_eab_keeps_the_secret_on_enter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("ca.pem");
    std::fs::write(
        &bundle,
        crate::pki::placeholder_pem("ca.example.org").expect("pem"),
    )
    .expect("write");
    let not_pem = dir.path().join("junk.pem");
    std::fs::write(&not_pem, "junk").expect("write");
    let bundle_s: &'static str = Box::leak(bundle.to_string_lossy().into_owned().into_boxed_str());
    let junk_s: &'static str = Box::leak(not_pem.to_string_lossy().into_owned().into_boxed_str());
    let (site, script) = run(
        vec![
            A::Text("chat.example.com"),
            A::Text("ops@your-company.com"),
            A::Text("127.0.0.1:3000"),
            A::Pick(0),
            A::Pick(2),
            A::Text("http://ca.example.org/dir"), // refused: not https
            A::Text("https://ca.example.org/acme/directory"),
            A::Text(junk_s), // refused: no PEM
            A::Text(bundle_s),
            A::Confirm(true),
            A::Text("kid-1"),
            A::Text("abc+def/"), // refused: not base64url
            A::Text("c2VjcmV0LWhtYWMta2V5"),
            A::Pick(0),
            A::Pick(KEEP), // http-01
            A::Pick(KEEP),
            A::Confirm(true),
            A::Confirm(false), // no alerts
        ],
        blank_site(),
    );
    assert_eq!(script.refusals().len(), 3, "{:#?}", script.log);
    let eab = site.acme.eab.clone().expect("eab");
    assert_eq!(
        (eab.kid.as_str(), eab.hmac_key.as_str()),
        ("kid-1", "c2VjcmV0LWhtYWMta2V5")
    );
    assert_eq!(site.acme.ca_bundle.as_deref(), Some(bundle.as_path()));
    // Again: Enter keeps everything, the HMAC key included.
    let (again, _) = run(
        vec![
            A::Text(""),
            A::Text(""),
            A::Text(""),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Text(""),
            A::Text(""),
            A::Confirm(true),
            A::Text(""),
            A::Text(""),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Confirm(true),
            A::Confirm(false),
        ],
        site.clone(),
    );
    assert_eq!(again, site);
}

#[test]
fn field_matching_covers_list_entries_and_children() {
    assert!(fields::belongs("backends[2]", "backends"));
    assert!(fields::belongs("acme.eab.kid", "acme.eab"));
    assert!(fields::belongs("domain", "domain"));
    assert!(!fields::belongs("domains", "domain"));
    assert_eq!(fields::path_routing("/owui"), "path:/owui/");
    assert_eq!(fields::path_routing("owui/"), "path:/owui/");
    assert_eq!(fields::split_list(" a:1,b:2  c:3 ,"), ["a:1", "b:2", "c:3"]);
}

fn rich_site() -> RawSite {
    let yaml = r#"
domain: chat.example.com
email: "o'brien+ops@your-company.com"
backends: ["127.0.0.1:3000", "[::1]:3001", "app.internal:8080"]
routing: "path:/owui/"
firewall: ufw
hsts: false
acme:
  directory: https://ca.example.org/acme/directory
  ca_bundle: /etc/edgeup/ca "bundle".pem
  client: builtin
  key_type: rsa-2048
  eab: {kid: "kid: #1", hmac_key: c2VjcmV0}
  preflight: false
  validation_port: 5002
listen:
  http: [":80", "[::]:80"]
  https: [":443"]
  acme_responder: 127.0.0.1:8689
"#;
    serde_saphyr::from_str(yaml).expect("rich site")
}

fn dns_site() -> RawSite {
    let yaml = r#"
domain: example.test
aliases: ["*.example.test", www.example.test]
email: ops@widgets.dev
backends: ["127.0.0.1:3000"]
health: /health
acme:
  directory: https://127.0.0.1:14000/dir
  challenge: dns-01
  dns: {provider: exec, command: /usr/local/bin/dns-hook, env_file: /etc/edgeup/dns.env, resolver: "127.0.0.1:5353", propagation_timeout: 2m}
notify:
  targets: [{webhook: "https://hooks.widgets.dev/e?t=1"}, {command: /usr/local/bin/page-me}]
  days_before_expiry: 10
"#;
    serde_saphyr::from_str(yaml).expect("dns site")
}

#[test]
fn rendered_file_loads_back_identically_with_a_comment_per_key() {
    for site in [rich_site(), blank_site(), dns_site()] {
        let text = file::render(&site);
        let back: RawSite = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, site, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let is_key = !trimmed.starts_with('#')
                && !trimmed.starts_with('-')
                && trimmed.contains(':')
                && !line.starts_with("    "); // eab's kid and hmac_key
            if is_key {
                let commented = i > 0 && lines[i - 1].trim_start().starts_with('#');
                assert!(commented, "key without a comment: {line:?}\n{text}");
            }
        }
    }
}

#[test]
fn written_file_is_0600_and_loads_back() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("etc/edgeup/site.yaml");
    let host = crate::host::Host::real();
    file::check_writable(&path).expect("writable");
    let text = file::rendered(&rich_site()).expect("render");
    file::write(&host, &path, &text).expect("write");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let loaded = file::load(&path).expect("load").expect("the file");
    assert_eq!(loaded.sites, [rich_site()]);
    assert_eq!(loaded.text, text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    file::restrict(&path).expect("restrict");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a hand-made 0644 file is made 0600");
    assert!(
        file::load(&dir.path().join("missing.yaml"))
            .expect("load")
            .is_none()
    );
    std::fs::write(&path, "domain: [").expect("write");
    let Err(err) = file::load(&path) else {
        panic!("a broken file loads");
    };
    assert_eq!(crate::exit::code_of(&err), crate::exit::INVALID_INPUT);
}

#[test]
fn dns01_and_alerts_are_asked_and_each_answer_checked() {
    let (site, script) = run(
        vec![
            A::Text("example.com"),
            A::Text("ops@your-company.com"),
            A::Text("127.0.0.1:3000"),
            A::Pick(0),
            A::Pick(0),                 // staging
            A::Pick(1),                 // certbot: dns-01 switches it to builtin
            A::Pick(1),                 // dns-01
            A::Pick(0),                 // rfc2136
            A::Text("ns1.example.com"), // refused: a name
            A::Text("192.0.2.53"),
            A::Text("tsig.key"), // refused: relative
            A::Text(""),         // the default key path
            A::Text("2h"),       // refused: over an hour
            A::Text("90s"),
            A::Pick(KEEP),                        // firewall
            A::Confirm(true),                     // HSTS
            A::Confirm(true),                     // alerts
            A::Pick(0),                           // webhook
            A::Text("ftp://hooks.example.com/x"), // refused
            A::Text("https://hooks.example.com/edgeup"),
            A::Text("0"), // refused
            A::Text("10"),
        ],
        blank_site(),
    );
    assert_eq!(script.refusals().len(), 5, "{:#?}", script.log);
    assert!(script.has("ACME client: builtin (edgeup drives dns-01 itself)"));
    assert!(script.has("tsig-keygen"), "how to make the key is shown");
    assert_eq!(site.acme.client, "builtin");
    assert_eq!(site.acme.challenge, "dns-01");
    let dns = site.acme.dns.clone().expect("dns settings");
    assert_eq!(
        (
            dns.provider.as_str(),
            dns.server.as_deref(),
            dns.propagation_timeout.as_str()
        ),
        ("rfc2136", Some("192.0.2.53"), "90s")
    );
    assert_eq!(dns.tsig_key_file, Some("/etc/edgeup/tsig.key".into()));
    let notify = site.notify.clone().expect("alerts");
    assert_eq!(notify.days_before_expiry, 10);
    assert_eq!(
        notify.targets[0].webhook.as_deref(),
        Some("https://hooks.example.com/edgeup")
    );
    assert!(crate::site::validate(&site).is_empty());
    // Written and read back: the same answers.
    let text = file::rendered(&site).expect("renders");
    assert!(text.contains("challenge: \"dns-01\""), "{text}");
}
