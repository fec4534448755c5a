//! `init` on a file that already has sites, against scripted answers: the
//! menu, then add / edit / remove, down to the bytes of the file to write.

use super::change::{Decision, decide};
use super::tests::{A, KEEP, Script, all_listen, hints};
use crate::app::site_edit::Record;
use crate::exit;
use crate::site::{Config, RawSite};

/// The sites of a written file, as written (the assertions compare spellings).
struct RawConfig {
    sites: Vec<RawSite>,
}

impl RawConfig {
    fn domains(&self) -> Vec<&str> {
        self.sites.iter().map(|s| s.domain.as_str()).collect()
    }
}
use std::path::Path;

/// A one-site file as a person writes it: comments, flow lists.
const ONE: &str = "\
# my chat
domain: chat.example.com
# ops contact
email: ops@your-company.com
backends: [127.0.0.1:3000]
acme:
  directory: letsencrypt-staging
";

const TWO: &str = "\
# shared by both
email: ops@your-company.com
acme: {directory: letsencrypt-staging}
sites:
  # the chat
  - domain: chat.example.com
    backends: [127.0.0.1:3000]   # open webui
  # dashboards
  - domain: grafana.example.com
    # grafana's port
    backends: [127.0.0.1:3001]
    health: /api/health
firewall: ufw
";

fn record(text: &str) -> Record {
    Record::parse(text.to_string(), Path::new("site.yaml"))
        .unwrap_or_else(|e| panic!("{e:#}\n{text}"))
}

/// The decision and the script (every answer used).
fn run(text: &str, answers: Vec<A>) -> (anyhow::Result<Decision>, Script) {
    let mut script = Script::new(answers);
    let decision = decide(
        &mut script,
        Some(&record(text)),
        &hints(),
        &all_listen,
        Path::new("site.yaml"),
    );
    assert!(
        script.answers.is_empty(),
        "unused answers {:?}\n{}",
        script.answers,
        script.log.join("\n")
    );
    (decision, script)
}

/// The text and sites (as written) of a Write decision.
fn written(decision: anyhow::Result<Decision>, script: &Script) -> (String, RawConfig) {
    match decision {
        Ok(Decision::Write { text, config }) => {
            assert_eq!(
                Config::from_text(&text).as_ref(),
                Some(&config),
                "the text says what is planned:\n{text}"
            );
            let sites = crate::site::config::raw_sites(&text).expect("reads back");
            (text, RawConfig { sites })
        }
        Ok(Decision::Same { .. }) => panic!("unchanged\n{}", script.log.join("\n")),
        Ok(Decision::Declined) => panic!("declined\n{}", script.log.join("\n")),
        Err(e) => panic!("{e:#}\n{}", script.log.join("\n")),
    }
}

#[test]
fn add_to_a_one_site_file_makes_the_sites_form_keeps_comments_and_reasks_a_taken_name() {
    let (decision, script) = run(
        ONE,
        vec![
            A::Pick(0),                  // Add a site
            A::Text("chat.example.com"), // refused: the first site's name
            A::Text("grafana.example.com"),
            A::Text(""),          // email: the shared one
            A::Text("127.0.0.1"), // refused: no port
            A::Text("127.0.0.1:3001"),
            A::Pick(KEEP),    // subdomain
            A::Pick(KEEP),    // staging, as shared
            A::Pick(KEEP),    // builtin
            A::Pick(KEEP),    // http-01
            A::Confirm(true), // HSTS (the default with ACME)
        ],
    );
    let (text, config) = written(decision, &script);
    assert_eq!(
        text,
        "\
# ops contact
email: ops@your-company.com
acme:
  directory: letsencrypt-staging
sites:
  # my chat
  - domain: chat.example.com
    backends: [127.0.0.1:3000]
  - domain: grafana.example.com
    backends:
    - 127.0.0.1:3001
"
    );
    assert_eq!(
        config.domains(),
        ["chat.example.com", "grafana.example.com"]
    );
    let added = &config.sites[1];
    assert_eq!(added.email.as_deref(), Some("ops@your-company.com"));
    assert_eq!(added.acme.directory, "letsencrypt-staging");
    let refusals = script.refusals();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    assert!(
        refusals[0].contains("is also a name of chat.example.com"),
        "{refusals:?}"
    );
    assert!(refusals[1].contains("has no port"), "{refusals:?}");
    assert!(script.has("What do you want to do? = Add a site (default 1)"));
    assert!(script.has("= ops@your-company.com"), "shared email offered");
    assert!(script.has("note: Firewall: auto (shared by every site"));
    assert!(
        !script.has("Firewall = "),
        "the host-wide firewall is not asked"
    );
}

#[test]
fn add_warns_about_a_backend_another_site_uses() {
    let (decision, script) = run(
        TWO,
        vec![
            A::Pick(KEEP), // several sites: Add is the default
            A::Text("chat2.example.com"),
            A::Text(""),
            A::Text("127.0.0.1:3000"),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Confirm(true),
        ],
    );
    let (text, config) = written(decision, &script);
    assert!(
        script.has(
            "warning: chat.example.com and chat2.example.com both send requests to 127.0.0.1:3000"
        ),
        "{:#?}",
        script.log
    );
    assert!(script.has("(default 0)"));
    assert_eq!(
        text,
        format!(
            "{}  - domain: chat2.example.com\n    backends:\n    - 127.0.0.1:3000\nfirewall: ufw\n",
            TWO.strip_suffix("firewall: ufw\n").unwrap_or(TWO)
        )
    );
    assert_eq!(config.sites.len(), 3);
}

#[test]
fn edit_changes_only_that_entry() {
    let (decision, script) = run(
        TWO,
        vec![
            A::Pick(2),                  // Edit grafana.example.com
            A::Text("chat.example.com"), // refused: the other site's name
            A::Text(""),                 // keep grafana.example.com
            A::Text(""),
            A::Text("127.0.0.1:3002"),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(1), // certbot
            A::Pick(KEEP),
            A::Confirm(true),
        ],
    );
    let (text, config) = written(decision, &script);
    assert_eq!(
        text,
        TWO.replace(
            "    backends: [127.0.0.1:3001]\n    health: /api/health\n",
            "    backends:\n    - 127.0.0.1:3002\n    health: /api/health\n    acme:\n      client: certbot\n"
        )
    );
    assert_eq!(script.refusals().len(), 1, "{:#?}", script.log);
    assert!(script.has("Domain name of the site (its DNS record points to this host), e.g. chat.example.com = grafana.example.com"));
    assert_eq!(config.sites[0], record(TWO).sites[0], "the other site");
    assert_eq!(config.sites[1].acme.client, "certbot");
}

#[test]
fn edit_with_every_answer_kept_writes_nothing() {
    let (decision, script) = run(
        TWO,
        vec![
            A::Pick(1), // Edit chat.example.com
            A::Text(""),
            A::Text(""),
            A::Text(""),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Confirm(true),
        ],
    );
    let Ok(Decision::Same { config }) = decision else {
        panic!("expected no change\n{}", script.log.join("\n"));
    };
    assert_eq!(config, record(TWO).config().expect("valid"));
}

#[test]
fn editing_a_one_site_file_is_the_interview_as_before() {
    let (decision, script) = run(
        ONE,
        vec![
            A::Pick(KEEP), // one site: Edit is the default
            A::Text(""),
            A::Text(""),
            A::Text("127.0.0.1:3005"),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(3), // firewall: none (asked: the file has one site)
            A::Confirm(true),
            A::Confirm(false), // no alerts
        ],
    );
    assert!(script.has("What do you want to do? = Edit chat.example.com (default 1)"));
    let (text, config) = written(decision, &script);
    assert!(
        text.starts_with("# edgeup site file, written by `edgeup init`"),
        "{text}"
    );
    assert_eq!(config.sites[0].backends, ["127.0.0.1:3005"]);
    assert_eq!(config.sites[0].firewall, "none");
}

#[test]
fn remove_asks_first_and_removes_only_that_entry() {
    let (decision, script) = run(TWO, vec![A::Pick(4), A::Confirm(false)]);
    assert!(
        matches!(decision, Ok(Decision::Declined)),
        "{}",
        script.log.join("\n")
    );
    assert!(script.has("Remove grafana.example.com? Its route leaves HAProxy"));
    assert!(script.has("(default false)"));

    let (decision, script) = run(TWO, vec![A::Pick(4), A::Confirm(true)]);
    let (text, config) = written(decision, &script);
    assert_eq!(
        text,
        TWO.replace(
            "  # dashboards\n  - domain: grafana.example.com\n    # grafana's port\n    backends: [127.0.0.1:3001]\n    health: /api/health\n",
            ""
        )
    );
    assert_eq!(config.domains(), ["chat.example.com"]);
}

#[test]
fn the_last_site_is_not_removed() {
    let one_entry = "email: ops@your-company.com\nsites:\n  - domain: chat.example.com\n    backends: [127.0.0.1:3000]\n";
    for text in [ONE, one_entry] {
        let (decision, script) = run(text, vec![A::Pick(2)]);
        let Err(err) = decision else {
            panic!("removed the last site\n{}", script.log.join("\n"));
        };
        assert_eq!(exit::code_of(&err), exit::INVALID_INPUT);
        let message = err.to_string();
        assert!(
            message.contains("chat.example.com is the only site") && message.contains("Add a site"),
            "{message}"
        );
        assert!(
            !script.has("Remove chat.example.com?"),
            "refused before asking"
        );
    }
}

#[test]
fn a_problem_in_another_site_is_refused_before_anything_is_written() {
    let broken = TWO.replace("[127.0.0.1:3001]", "[127.0.0.1]");
    let (decision, script) = run(&broken, vec![A::Pick(4), A::Confirm(true)]);
    let (_, config) = written(decision, &script);
    assert_eq!(
        config.domains(),
        ["chat.example.com"],
        "removing it is fine"
    );
    let (decision, script) = run(
        &broken,
        vec![
            A::Pick(1), // Edit chat: valid itself, but grafana's backend is not
            A::Text(""),
            A::Text(""),
            A::Text(""),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Pick(KEEP),
            A::Confirm(false),
        ],
    );
    let Err(err) = decision else {
        panic!("a broken site was written\n{}", script.log.join("\n"));
    };
    assert_eq!(exit::code_of(&err), exit::INVALID_INPUT);
    let message = err.to_string();
    assert!(
        message.contains("sites[1].backends[0]")
            && message.contains("has no port")
            && message.contains("nothing was changed"),
        "{message}"
    );
}
