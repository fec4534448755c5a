//! The interview: domain, contact email, backends (with a reachability
//! warning), routing, certificate source, ACME client, challenge (dns-01's
//! provider), firewall, HSTS, alerts. Each
//! answer is validated as typed (`fields::check`); the current value of
//! every field is the default, so re-running `init` edits. At the end the
//! whole site is validated, and whatever it still refuses (a reserved name
//! under Let's Encrypt, a missing email once ACME is on, a name another site
//! of the file has) is asked again.

use super::ask::Ask;
use super::fields::{self, with};
use crate::exit;
use crate::site::RawSite;
use anyhow::Result;

/// The starting point when there is no site file yet: the site defaults.
pub fn blank_site() -> RawSite {
    RawSite::default()
}

/// What `detect` found, for defaults and explanations.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// The active firewall front-end: `firewalld`, `ufw` or `none`.
    pub firewall: String,
    /// Whether the distro packages certbot.
    pub certbot_available: bool,
    /// The host's own name, when it is a valid site domain.
    pub hostname: Option<String>,
    /// An address where something (the app?) already listens.
    pub app: Option<String>,
}

/// Warns when nothing listens at a backend address (None: something does).
pub type Reach<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How many times the closing validation may send the user back.
const MAX_FIX_ROUNDS: usize = 10;

/// Where the interviewed site goes: alone in a one-site file (the default),
/// or as one entry of a `sites:` file beside `others`.
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The file's other sites: their names are taken.
    pub others: &'a [RawSite],
    /// One entry of a `sites:` file: the firewall, a host-wide top-level
    /// key, is not asked.
    pub entry: bool,
}

/// The site alone in its file.
pub fn interview(
    ask: &mut dyn Ask,
    start: RawSite,
    hints: &Hints,
    reach: Reach,
) -> Result<RawSite> {
    interview_in(ask, start, hints, reach, Scope::default())
}

pub fn interview_in(
    ask: &mut dyn Ask,
    start: RawSite,
    hints: &Hints,
    reach: Reach,
    scope: Scope,
) -> Result<RawSite> {
    let mut site = start;
    domain(ask, &mut site, hints, scope.others, true)?;
    email(ask, &mut site, true)?;
    backends(ask, &mut site, hints, reach, scope.others)?;
    routing(ask, &mut site)?;
    certificate_source(ask, &mut site)?;
    acme_client(ask, &mut site, hints)?;
    super::challenge::challenge(ask, &mut site)?;
    if scope.entry {
        ask.note(&format!(
            "Firewall: {} (shared by every site: the top-level firewall: key of the site file)",
            site.firewall
        ));
    } else {
        firewall(ask, &mut site, hints)?;
    }
    hsts(ask, &mut site)?;
    if !scope.entry {
        // Host-wide, like the firewall: asked with the file's first site.
        super::challenge::notify(ask, &mut site)?;
    }
    fix_remaining(ask, &mut site, hints, reach, scope.others)?;
    Ok(site)
}

fn domain(
    ask: &mut dyn Ask,
    site: &mut RawSite,
    hints: &Hints,
    others: &[RawSite],
    relaxed: bool,
) -> Result<()> {
    let taken = |name: &String| others.iter().any(|o| o.names().contains(name));
    let current = Some(site.domain.clone())
        .filter(|d| !d.is_empty())
        .or_else(|| hints.hostname.clone().filter(|h| !taken(h)));
    let base = site.clone();
    let valid = |v: &str| {
        fields::check_beside(
            &with(&base, |s| s.domain = v.to_string()),
            others,
            "domain",
            relaxed,
        )
    };
    site.domain = ask.text(
        "Domain name of the site (its DNS record points to this host), e.g. chat.example.com",
        current.as_deref(),
        false,
        &valid,
    )?;
    Ok(())
}

fn email(ask: &mut dyn Ask, site: &mut RawSite, relaxed: bool) -> Result<()> {
    let base = site.clone();
    let valid = |v: &str| {
        fields::check(
            &with(&base, |s| {
                s.email = Some(v.to_string()).filter(|e| !e.is_empty())
            }),
            "email",
            relaxed,
        )
    };
    let prompt = if relaxed {
        "Contact email for the ACME account (the CA's notices about it; empty if you will not use a CA)"
    } else {
        "Contact email for the ACME account (the CA's notices about it)"
    };
    let answer = ask.text(prompt, site.email.as_deref(), relaxed, &valid)?;
    site.email = Some(answer).filter(|e| !e.is_empty());
    Ok(())
}

fn backends(
    ask: &mut dyn Ask,
    site: &mut RawSite,
    hints: &Hints,
    reach: Reach,
    others: &[RawSite],
) -> Result<()> {
    let current = if site.backends.is_empty() {
        hints
            .app
            .clone()
            .unwrap_or_else(|| "127.0.0.1:3000".to_string())
    } else {
        site.backends.join(", ")
    };
    let base = site.clone();
    let valid = |v: &str| {
        fields::check(
            &with(&base, |s| s.backends = fields::split_list(v)),
            "backends",
            false,
        )
    };
    let answer = ask.text(
        "Address of the app (Open WebUI) as HOST:PORT; several, separated by commas, are replicas",
        Some(&current),
        false,
        &valid,
    )?;
    site.backends = fields::split_list(&answer);
    for backend in &site.backends {
        if let Some(warning) = reach(backend) {
            ask.warn(&warning);
        }
    }
    for warning in fields::warnings_beside(site, others) {
        ask.warn(&warning);
    }
    Ok(())
}

const OPEN_WEBUI_SUBPATH: &str = "Open WebUI has no sub-path support: its pages call /api, \
/ws/socket.io and /_app at the root, so it will not work under a prefix. Use a subdomain for it.";

fn routing(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    let items = [
        format!(
            "subdomain: the app at https://{}/ (recommended)",
            site.domain
        ),
        format!(
            "path: the app under https://{}/PREFIX/ (not for Open WebUI)",
            site.domain
        ),
    ];
    let current = usize::from(site.path_prefix().is_some());
    if ask.choose("Routing", &items, current)? == 0 {
        site.routing = "subdomain".into();
        return Ok(());
    }
    ask.warn(OPEN_WEBUI_SUBPATH);
    let base = site.clone();
    let valid = |v: &str| {
        fields::check(
            &with(&base, |s| s.routing = fields::path_routing(v)),
            "routing",
            false,
        )
    };
    let answer = ask.text(
        "Path prefix, e.g. /app/",
        Some(site.path_prefix().unwrap_or("/app/")),
        false,
        &valid,
    )?;
    site.routing = fields::path_routing(&answer);
    Ok(())
}

fn certificate_source(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    let items = [
        "Let's Encrypt staging: test certificates browsers do not trust (try the setup first)"
            .to_string(),
        "Let's Encrypt production: trusted certificates (DNS must point here, port 80 open)"
            .to_string(),
        "Custom ACME directory: another CA (step-ca, ZeroSSL, a company CA...)".to_string(),
        "None: keep the self-signed placeholder (LAN, or bring your own certificate)".to_string(),
    ];
    let current = match site.acme.directory.as_str() {
        "letsencrypt-staging" => 0,
        "letsencrypt" => 1,
        "off" => 3,
        _ => 2,
    };
    match ask.choose("Certificate", &items, current)? {
        choice @ (0 | 1) => {
            site.acme.directory = if choice == 0 {
                "letsencrypt-staging".into()
            } else {
                "letsencrypt".into()
            };
            // Let's Encrypt needs neither (and the site refuses them with it).
            site.acme.ca_bundle = None;
            site.acme.eab = None;
        }
        2 => super::custom_ca::ask_custom_ca(ask, site)?,
        _ => {
            site.acme.directory = "off".into();
            ask.note(&format!(
                "HAProxy will serve a self-signed certificate: browsers warn. To use your own, \
                 put certificate + key in /etc/haproxy/certs/{}.pem (edgeup never replaces a \
                 valid CA-issued one).",
                site.domain
            ));
        }
    }
    Ok(())
}

fn acme_client(ask: &mut dyn Ask, site: &mut RawSite, hints: &Hints) -> Result<()> {
    if !site.acme.enabled() {
        return Ok(());
    }
    if !hints.certbot_available {
        ask.note("ACME client: builtin (certbot is not packaged for this distribution)");
        site.acme.client = "builtin".into();
        return Ok(());
    }
    let items = [
        "builtin: edgeup gets and renews the certificate itself (edgeup-renew.timer; recommended)"
            .to_string(),
        "certbot: the distribution's certbot gets and renews it (certbot.timer)".to_string(),
    ];
    let current = usize::from(site.acme.client == "certbot");
    site.acme.client = if ask.choose("ACME client", &items, current)? == 1 {
        "certbot".into()
    } else {
        "builtin".into()
    };
    Ok(())
}

fn firewall(ask: &mut dyn Ask, site: &mut RawSite, hints: &Hints) -> Result<()> {
    let values = ["auto", "firewalld", "ufw", "none"];
    let active = if hints.firewall.is_empty() {
        "none"
    } else {
        hints.firewall.as_str()
    };
    let items = [
        format!("auto: open 80 and 443 in whichever firewall is active (now: {active})"),
        "firewalld".to_string(),
        "ufw".to_string(),
        "none: leave the firewall alone (open 80 and 443 yourself)".to_string(),
    ];
    let current = values.iter().position(|v| *v == site.firewall).unwrap_or(0);
    let choice = ask.choose("Firewall", &items, current)?;
    site.firewall = values.get(choice).copied().unwrap_or("auto").to_string();
    Ok(())
}

fn hsts(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    if !site.acme.enabled() {
        if site.hsts == Some(true) {
            site.hsts = None;
        }
        ask.note("HSTS: off (with the self-signed placeholder it would lock browsers out)");
        return Ok(());
    }
    ask.note(&format!(
        "HSTS makes browsers use only HTTPS for {} for two years and refuse to click through \
         certificate warnings. Good once HTTPS works; hard to undo: browsers keep it even if you \
         go back to a self-signed certificate.",
        site.domain
    ));
    let on = ask.confirm(
        "Send HSTS (Strict-Transport-Security)?",
        site.hsts_enabled(),
    )?;
    // "on" is the default with ACME: leave it implicit unless it was explicit.
    site.hsts = match (on, site.hsts) {
        (true, None) => None,
        (answer, _) => Some(answer),
    };
    Ok(())
}

/// Validates the whole site (beside `others`); asks again for what it
/// still refuses.
fn fix_remaining(
    ask: &mut dyn Ask,
    site: &mut RawSite,
    hints: &Hints,
    reach: Reach,
    others: &[RawSite],
) -> Result<()> {
    for _ in 0..MAX_FIX_ROUNDS {
        let problems = fields::problems(site, others);
        let Some(problem) = problems.first() else {
            return Ok(());
        };
        ask.warn(&problem.to_string());
        let field = problem.field.as_str();
        if fields::belongs(field, "domain") || fields::belongs(field, "email") {
            let items = [
                format!(
                    "change the {}",
                    if field == "domain" { "domain" } else { "email" }
                ),
                "change the certificate source".to_string(),
            ];
            if ask.choose("What do you want to change?", &items, 0)? == 1 {
                certificate_source(ask, site)?;
                acme_client(ask, site, hints)?;
                super::challenge::challenge(ask, site)?;
                hsts(ask, site)?;
            } else if field == "domain" {
                domain(ask, site, hints, others, false)?;
            } else {
                email(ask, site, false)?;
            }
        } else if fields::belongs(field, "backends") {
            backends(ask, site, hints, reach, others)?;
        } else if fields::belongs(field, "routing") {
            routing(ask, site)?;
        } else if fields::belongs(field, "acme") || fields::belongs(field, "hsts") {
            certificate_source(ask, site)?;
            acme_client(ask, site, hints)?;
            super::challenge::challenge(ask, site)?;
            hsts(ask, site)?;
        } else if fields::belongs(field, "notify") {
            super::challenge::notify(ask, site)?;
        } else {
            return Err(exit::invalid(format!(
                "the site still has a problem init does not ask about: {problem}; \
                 fix it in the site file by hand (nothing was written)"
            )));
        }
    }
    Err(exit::invalid(
        "the answers still do not make a valid site; nothing was written",
    ))
}
