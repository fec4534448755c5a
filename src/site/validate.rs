//! Whole-site validation: every problem found at once, each naming the field,
//! the bad value and the fix. Runs before anything is written.
//!
//! `validate` is pure: no DNS, no file system (whether `acme.ca_bundle`
//! exists is checked against the host elsewhere). One problem per field
//! (the first rule it breaks), one per list entry; cross-field rules
//! (duplicates, loops, collisions) report on the later or dependent field.
//!
//! Decisions worth knowing:
//! - `domain` must be lowercase. DNS is case-insensitive, but the name ends
//!   up in certificate and lineage file names and in the rendered config;
//!   one canonical spelling avoids a second lineage for `Chat.example.com`.
//!   The fix gives the lowercase form.
//! - Wildcards (`*.example.com`) are allowed only in `aliases` and only with
//!   `acme.challenge: dns-01`: HTTP-01 cannot issue them, and the domain
//!   names the certificate file and the HAProxy backend, so it stays exact.
//! - `acme.ca_bundle` and `acme.eab` are refused with Let's Encrypt
//!   (keywords or its own URLs) but kept silently with `directory: off`, so
//!   ACME can be switched off for a while without deleting them. Their shape
//!   is always checked.
//! - `hsts: true` with ACME off is refused: the only certificate is then the
//!   self-signed placeholder, and HSTS would lock browsers out of it.
//! - Secrets (`acme.eab.hmac_key`) never appear in a problem's value.

mod challenge;
#[cfg(test)]
mod tests;

pub use challenge::{parse_dns_settings as parse_dns, parse_notify_settings as parse_notify};

use super::addr::{self, Bind, HostPort, Refusal, parse_backend, parse_bind, refuse};
use super::model::{self, Acme, Directory, Listen, Routing, Site};
use super::raw::{RawAcme, RawSite};
use super::{Config, DEFAULT_ACME_RESPONDER, SiteFile};
use std::fmt;

/// One thing wrong with the site config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The site-file key (e.g. `acme.directory`), or the flag's key.
    pub field: String,
    /// The offending value as written (empty when the field is missing;
    /// a description instead of the value for secrets).
    pub value: String,
    /// What is wrong, phrased to follow the value: "is not a fully qualified domain name".
    pub reason: String,
    /// How to fix it, one sentence: "use a public name such as chat.example.com".
    pub fix: String,
}

impl Problem {
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `domain: "localhost" is not a fully qualified domain name; use a public name such as chat.example.com`,
    /// or without a value: `email is missing; set email: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{} {}; {}", self.field, self.reason, self.fix)
        } else {
            write!(
                f,
                "{}: {:?} {}; {}",
                self.field, self.value, self.reason, self.fix
            )
        }
    }
}

impl std::error::Error for Problem {}

/// Every problem with `site`, in site-file order; empty means valid.
pub fn validate(site: &RawSite) -> Vec<Problem> {
    let mut out = Problems::default();
    let le = is_letsencrypt(&site.acme);

    out.check("domain", &site.domain, check_domain(&site.domain, le));
    check_aliases(&mut out, site, le);
    check_email(&mut out, site, le);
    let binds = check_listen(&mut out, site);
    check_backends(&mut out, site, &binds);
    out.check("routing", &site.routing, parse_routing(&site.routing));
    if let Some(health) = &site.health {
        out.check("health", health, check_health(health));
    }
    out.check(
        "firewall",
        &site.firewall,
        parse_choice::<model::FirewallBackend>(&site.firewall),
    );
    if site.hsts == Some(true) && !site.acme.enabled() {
        out.push(
            "hsts",
            "true",
            "is set while acme.directory is off, so browsers would pin HTTPS to the self-signed placeholder certificate and refuse it",
            "remove hsts: true, or turn ACME on",
        );
    }
    check_acme(&mut out, &site.acme, le);
    if let Some(notify) = &site.notify {
        challenge::check_notify(&mut out, notify);
    }

    // Listen problems are gathered first (backends need the parsed binds)
    // but reported last, in site-file order.
    let mut problems = out.0;
    problems.sort_by_key(|p| p.field.starts_with("listen."));
    problems
}

/// The typed site, or every problem with it (see `validate`).
pub fn parse_site(raw: &RawSite) -> Result<Site, Vec<Problem>> {
    let problems = validate(raw);
    if !problems.is_empty() {
        return Err(problems);
    }
    typed(raw)
        .map_err(|(field, value, (reason, fix))| vec![Problem::new(field, value, reason, fix)])
}

/// The typed form of a site `validate` accepted: each value is parsed by
/// the same function that judged it, so this fails only if the two drift.
fn typed(raw: &RawSite) -> Result<Site, (String, String, Refusal)> {
    fn at<T>(
        field: &str,
        value: &str,
        r: Result<T, Refusal>,
    ) -> Result<T, (String, String, Refusal)> {
        r.map_err(|refusal| (field.to_string(), value.to_string(), refusal))
    }
    let binds = |key: &str, list: &[String], example: &str| {
        list.iter()
            .map(|b| at(key, b, parse_bind(b, example)))
            .collect::<Result<Vec<Bind>, _>>()
    };
    let a = &raw.acme;
    Ok(Site {
        domain: raw.domain.clone(),
        aliases: raw.aliases.clone(),
        email: raw.email.clone(),
        backends: raw
            .backends
            .iter()
            .map(|b| at("backends", b, parse_backend(b)))
            .collect::<Result<_, _>>()?,
        routing: at("routing", &raw.routing, parse_routing(&raw.routing))?,
        health: raw.health.clone(),
        firewall: at("firewall", &raw.firewall, parse_choice(&raw.firewall))?,
        hsts: raw.hsts,
        acme: Acme {
            directory: at(
                "acme.directory",
                &a.directory,
                parse_directory(&a.directory),
            )?,
            ca_bundle: a.ca_bundle.clone(),
            client: at("acme.client", &a.client, parse_choice(&a.client))?,
            key_type: at("acme.key_type", &a.key_type, parse_choice(&a.key_type))?,
            eab: a.eab.clone(),
            preflight: a.preflight,
            validation_port: a.validation_port,
            challenge: challenge::parse(a)?,
        },
        listen: Listen {
            http: binds("listen.http", &raw.listen.http, ":80")?,
            https: binds("listen.https", &raw.listen.https, ":443")?,
            acme_responder: at(
                "listen.acme_responder",
                &raw.listen.acme_responder,
                parse_bind(&raw.listen.acme_responder, DEFAULT_ACME_RESPONDER),
            )?,
        },
        notify: match &raw.notify {
            Some(n) => Some(challenge::parse_notify(n)?),
            None => None,
        },
    })
}

/// The typed configuration of resolved sites, or every problem with it:
/// each site's own (named where the file lets the user fix it, see
/// `SiteFile::locate`), then names that appear in more than one site.
/// `file` is what was read, if anything.
pub fn validate_config(sites: &[RawSite], file: Option<&SiteFile>) -> Result<Config, Vec<Problem>> {
    let multi = file.is_some_and(SiteFile::is_multi);
    let mut problems: Vec<Problem> = Vec::new();
    let mut typed_sites = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        match parse_site(site) {
            Ok(site) => typed_sites.push(site),
            Err(found) => {
                for mut p in found {
                    if multi && let Some(file) = file {
                        p.field = file.locate(i, &p.field);
                    }
                    // A shared key's problem is the same for every site: report it once.
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                }
            }
        }
    }
    problems.extend(name_collisions(sites, multi));
    problems.extend(certbot_trust(sites, multi));
    if sites.is_empty() {
        problems.push(Problem::new(
            "sites",
            "",
            "is empty",
            "list at least one site",
        ));
    }
    if problems.is_empty() {
        Ok(Config { sites: typed_sites })
    } else {
        Err(problems)
    }
}

/// certbot's renewal runs once for every certbot site, with one trust store
/// (REQUESTS_CA_BUNDLE, see `acme::AcmeVars::certbot_ca_bundle`): those
/// sites must agree on acme.ca_bundle (none, or the same file).
fn certbot_trust(sites: &[RawSite], multi: bool) -> Vec<Problem> {
    let certbot: Vec<(usize, &RawSite)> = sites
        .iter()
        .enumerate()
        .filter(|(_, s)| s.acme.enabled() && s.acme.client == "certbot")
        .collect();
    let Some((_, first)) = certbot.first() else {
        return Vec::new();
    };
    certbot
        .iter()
        .filter(|(_, s)| s.acme.ca_bundle != first.acme.ca_bundle)
        .map(|(i, s)| {
            let shown = |b: &Option<std::path::PathBuf>| {
                b.as_ref()
                    .map_or("none".to_string(), |p| p.to_string_lossy().into_owned())
            };
            Problem::new(
                if multi {
                    format!("sites[{i}].acme.ca_bundle")
                } else {
                    "acme.ca_bundle".to_string()
                },
                shown(&s.acme.ca_bundle),
                format!(
                    "differs from {}'s ({}), but certbot renews every site in one run with one \
                     trust store",
                    first.domain,
                    shown(&first.acme.ca_bundle)
                ),
                "give the certbot sites the same acme.ca_bundle, or use acme.client: builtin for \
                 one of them",
            )
        })
        .collect()
}

/// Names (domains and aliases) that belong to more than one site, each
/// reported on the later site (`sites[i].…` when `multi`, the one-site
/// keys otherwise).
pub fn name_collisions(sites: &[RawSite], multi: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut owner: Vec<(String, usize)> = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        for (k, name) in site.names().into_iter().enumerate() {
            match owner.iter().find(|(n, _)| *n == name) {
                Some((_, j)) if *j != i => {
                    let field = match (multi, k) {
                        (true, 0) => format!("sites[{i}].domain"),
                        (true, _) => format!("sites[{i}].aliases[{}]", k - 1),
                        (false, 0) => "domain".to_string(),
                        (false, _) => format!("aliases[{}]", k - 1),
                    };
                    problems.push(Problem::new(
                        field,
                        name.as_str(),
                        format!("is also a name of {}", sites[*j].domain),
                        "a name belongs to one site only: remove it from one of them",
                    ));
                }
                _ => owner.push((name, i)),
            }
        }
    }
    problems
}

/// Things that are allowed but usually a mistake (shown as warnings).
pub fn config_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, site) in config.sites.iter().enumerate() {
        for backend in &site.backends {
            if let Some(other) = config.sites[..i]
                .iter()
                .find(|o| o.backends.iter().any(|b| b == backend))
            {
                warnings.push(format!(
                    "{} and {} both send requests to {backend}: if that is one app answering \
                     for both names, list the second name under aliases: instead",
                    other.domain, site.domain
                ));
            }
        }
    }
    warnings
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, field: &str, value: &str, reason: &str, fix: &str) {
        self.0.push(Problem::new(field, value, reason, fix));
    }

    fn check<T>(&mut self, field: &str, value: &str, result: Result<T, Refusal>) {
        if let Err((reason, fix)) = result {
            self.push(field, value, &reason, &fix);
        }
    }
}

/// A value of one of the site model's enums, by its exact spelling.
fn parse_choice<T: clap::ValueEnum>(value: &str) -> Result<T, Refusal> {
    if let Some(v) = model::from_name(value) {
        return Ok(v);
    }
    let names = model::names::<T>();
    let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
    let list = match allowed.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let lower = value.to_ascii_lowercase();
    let fix = if value != lower && allowed.contains(&lower.as_str()) {
        format!("write it in lowercase: {lower}")
    } else {
        format!("use {list}")
    };
    Err(refuse("is not a known choice", fix))
}

/// Let's Encrypt, by keyword or by its own directory URLs (see `Directory::is_letsencrypt`).
fn is_letsencrypt(acme: &RawAcme) -> bool {
    parse_directory(&acme.directory).is_ok_and(|d| d.is_letsencrypt())
}

/// Special-use and never-delegated names no public CA issues for, and no
/// mail is delivered to (RFC 2606, 6761, 6762, 8375, 9476, ICANN name collision).
const RESERVED_TLDS: &[&str] = &[
    "test",
    "example",
    "invalid",
    "localhost",
    "local",
    "localdomain",
    "internal",
    "alt",
    "onion",
    "lan",
    "home",
    "corp",
    "home.arpa",
];

fn reserved_suffix(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    RESERVED_TLDS
        .iter()
        .copied()
        .find(|tld| name == *tld || name.ends_with(&format!(".{tld}")))
}

// ---------------------------------------------------------------- domain

fn check_domain(domain: &str, le: bool) -> Result<(), Refusal> {
    const FIX_FQDN: &str = "use a public name such as chat.example.com";
    if domain.trim().is_empty() {
        return Err(refuse(
            "is empty",
            "set domain: to the public name, e.g. chat.example.com",
        ));
    }
    if domain.chars().any(char::is_whitespace) {
        return Err(refuse(
            "contains whitespace",
            "write the name without spaces, e.g. chat.example.com",
        ));
    }
    if let Some((_, rest)) = domain.split_once("://") {
        let host = rest.split(['/', '?', '#', ':']).next().unwrap_or_default();
        return Err(refuse(
            "includes a URL scheme",
            format!("drop the scheme and write only the name: {host}"),
        ));
    }
    if let Some((host, _)) = domain.split_once('/') {
        return Err(refuse(
            "includes a path",
            format!("write only the name ({host}); serve under a path with routing: path:/PREFIX/"),
        ));
    }
    let unbracketed = domain.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<std::net::IpAddr>().is_ok() || addr::looks_like_ipv4(domain) {
        return Err(refuse(
            "is an IP address, and HTTP-01 certificates and the HAProxy host rule need a DNS name",
            "use a DNS name that points to this host, e.g. chat.example.com",
        ));
    }
    if let Some((host, _)) = domain.split_once(':') {
        return Err(refuse(
            "includes a port",
            format!("write only the name ({host}); ports are set under listen:"),
        ));
    }
    if domain.contains('*') {
        let base = domain.trim_start_matches("*.");
        return Err(refuse(
            "is a wildcard where an exact name is needed (the domain names the site's \
             certificate and backend; a wildcard may be an alias, with dns-01)",
            format!(
                "use the exact name, e.g. {}; for a wildcard certificate write domain: {base} \
                 and aliases: [\"*.{base}\"] with acme.challenge: dns-01",
                domain.replace("*.", "chat.").replace('*', "chat"),
            ),
        ));
    }
    if let Some(bare) = domain.strip_suffix('.') {
        return Err(refuse(
            "ends with a dot",
            format!("write it without the trailing dot: {bare}"),
        ));
    }
    if !domain.is_ascii() {
        return Err(refuse(
            "contains non-ASCII characters",
            "write the punycode (xn--) form, e.g. as printed by `idn2 NAME`",
        ));
    }
    if domain.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(refuse(
            "contains uppercase letters",
            format!("write it in lowercase: {}", domain.to_ascii_lowercase()),
        ));
    }
    if domain.len() > 253 {
        return Err(refuse(
            format!(
                "is {} characters long, more than DNS allows (253)",
                domain.len()
            ),
            "use a shorter name",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(refuse(
                "has an empty label (two dots in a row, or a leading dot)",
                "remove the extra dot",
            ));
        }
        if label.len() > 63 {
            return Err(refuse(
                format!(
                    "has a label of {} characters, more than DNS allows (63)",
                    label.len()
                ),
                "shorten that part of the name",
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(refuse(
                format!(
                    "has the label {label:?} with characters other than letters, digits and hyphens"
                ),
                "use only a-z, 0-9 and -, e.g. chat.example.com (CAs refuse underscores)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(refuse(
                format!("has the label {label:?} starting or ending with a hyphen"),
                "move or remove the hyphen",
            ));
        }
    }
    if labels.len() < 2 {
        return Err(refuse("is not a fully qualified domain name", FIX_FQDN));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(refuse(
            "has an all-numeric top-level label, so it is neither a domain name nor an IP address",
            FIX_FQDN,
        ));
    }
    if le && let Some(tld) = reserved_suffix(domain) {
        return Err(refuse(
            format!("is under .{tld}, a reserved name Let's Encrypt cannot issue certificates for"),
            "use a public name such as chat.example.com, or point acme.directory at a private CA",
        ));
    }
    Ok(())
}

// --------------------------------------------------------------- aliases

fn check_aliases(out: &mut Problems, site: &RawSite, le: bool) {
    for (i, alias) in site.aliases.iter().enumerate() {
        let field = format!("aliases[{i}]");
        if let Some(base) = alias.strip_prefix("*.")
            && !site.acme.dns01()
            && check_domain(base, le).is_ok()
        {
            out.push(
                &field,
                alias,
                "is a wildcard, which only dns-01 validation can issue (the CA cannot fetch an \
                 HTTP-01 token from every name under it)",
                &format!(
                    "set acme.challenge: dns-01 with acme.dns (README: Certificates without port 80), \
                     or list exact names such as chat.{base}"
                ),
            );
        } else if let Err((reason, fix)) = alias
            .strip_prefix("*.")
            .filter(|_| site.acme.dns01())
            .map_or_else(|| check_domain(alias, le), |base| check_domain(base, le))
        {
            out.push(&field, alias, &reason, &fix);
        } else if *alias == site.domain {
            out.push(
                &field,
                alias,
                "is the site's domain",
                "remove it; the domain is always on the certificate",
            );
        } else if let Some(j) = site.aliases[..i].iter().position(|a| a == alias) {
            out.push(
                &field,
                alias,
                &format!("repeats aliases[{j}]"),
                "remove it; list each name once",
            );
        }
    }
}

// ---------------------------------------------------------------- health

fn check_health(path: &str) -> Result<(), Refusal> {
    if !path.starts_with('/') {
        return Err(refuse(
            "is not a path (it must start with /)",
            format!("write health: /{}", path.trim_start_matches('/')),
        ));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._~-?=&%+".contains(c))
    {
        return Err(refuse(
            "has characters other than letters, digits and / . _ ~ - ? = & % +",
            "use the app's plain health path, e.g. /health",
        ));
    }
    Ok(())
}

// ----------------------------------------------------------------- email

fn check_email(out: &mut Problems, site: &RawSite, le: bool) {
    let email = site.email.as_deref().unwrap_or_default();
    if email.trim().is_empty() {
        if site.acme.enabled() {
            out.push(
                "email",
                "",
                "is missing, and ACME needs a contact address for the account",
                "set email: to an address you read, e.g. ops@your-company.com (or set acme.directory: off)",
            );
        }
        return;
    }
    out.check("email", email, email_shape(email, le));
}

fn email_shape(email: &str, le: bool) -> Result<(), Refusal> {
    const FIX: &str = "write a single address such as ops@your-company.com";
    if let Some(bare) = email.strip_prefix("mailto:") {
        return Err(refuse(
            "has a mailto: prefix",
            format!("write only the address: {bare}"),
        ));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(refuse("contains whitespace", FIX));
    }
    if email.contains([',', ';']) {
        return Err(refuse("lists several addresses", FIX));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(refuse("is not an email address (no @)", FIX));
    };
    if domain.contains('@') {
        return Err(refuse("is not an email address (more than one @)", FIX));
    }
    if local.is_empty()
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local
            .chars()
            .any(|c| c.is_control() || "<>()[]\\:\"".contains(c))
    {
        return Err(refuse("has a part before the @ that ACME CAs refuse", FIX));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.is_ascii()
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    if !domain_ok {
        return Err(refuse(
            format!("has {domain:?} after the @, which is not a mail domain"),
            FIX,
        ));
    }
    if le {
        // example.com/.net/.org are real domains (IANA's): `plan` shows a
        // warning for them instead (README and docs use them as placeholders).
        let lower = domain.to_ascii_lowercase();
        if reserved_suffix(&lower).is_some() {
            return Err(refuse(
                format!(
                    "is at {lower}, a reserved domain Let's Encrypt refuses as a contact address"
                ),
                "use an address at a real mail domain you read",
            ));
        }
    }
    Ok(())
}

// -------------------------------------------------------------- backends

fn check_backends(out: &mut Problems, site: &RawSite, binds: &[(String, String, Bind)]) {
    if site.backends.is_empty() {
        out.push(
            "backends",
            "",
            "is empty",
            "list the app's HOST:PORT, e.g. backends: [\"127.0.0.1:3000\"]",
        );
        return;
    }
    let responder = parse_bind(&site.listen.acme_responder, DEFAULT_ACME_RESPONDER).ok();
    let mut seen: Vec<(usize, HostPort)> = Vec::new();
    for (i, raw) in site.backends.iter().enumerate() {
        let field = format!("backends[{i}]");
        let hp = match parse_backend(raw) {
            Ok(hp) => hp,
            Err((reason, fix)) => {
                out.push(&field, raw, &reason, &fix);
                continue;
            }
        };
        if let Some((j, _)) = seen.iter().find(|(_, other)| *other == hp) {
            out.push(
                &field,
                raw,
                &format!("repeats backends[{j}]"),
                "remove it; list each replica once",
            );
            continue;
        }
        if let Some(r) = responder
            && r.port == hp.port
            && hp.host.reaches(r.ip)
        {
            out.push(
                &field,
                raw,
                "is the ACME responder's address (listen.acme_responder)",
                "point it at the app, or move listen.acme_responder to another port",
            );
        } else if let Some((bind_field, bind_raw, _)) = binds
            .iter()
            .find(|(_, _, b)| b.port == hp.port && hp.host.reaches(b.ip))
        {
            out.push(
                &field,
                raw,
                &format!(
                    "is HAProxy's own listen address ({bind_field} {bind_raw:?}), so requests would loop"
                ),
                "point it at the app's own port, e.g. 127.0.0.1:3000",
            );
        }
        seen.push((i, hp));
    }
}

// --------------------------------------------------------------- routing

fn parse_routing(routing: &str) -> Result<Routing, Refusal> {
    const FIX: &str = "use subdomain, or path:/PREFIX/ such as path:/owui/";
    if routing == "subdomain" {
        return Ok(Routing::Subdomain);
    }
    let Some(prefix) = routing.strip_prefix("path:") else {
        if routing.starts_with('/') {
            let slash = if routing.ends_with('/') { "" } else { "/" };
            return Err(refuse(
                "is missing the path: prefix",
                format!("write routing: path:{routing}{slash}"),
            ));
        }
        return Err(refuse("is not a routing mode", FIX));
    };
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Err(refuse(
            "has an empty path prefix",
            "name the prefix, e.g. path:/owui/, or use routing: subdomain",
        ));
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~-/".contains(c))
    {
        return Err(refuse(
            "has characters other than letters, digits and . _ ~ - / in the prefix",
            "use only those characters, e.g. path:/owui/",
        ));
    }
    if !prefix.starts_with('/') || !prefix.ends_with('/') {
        return Err(refuse(
            "has a prefix that does not start and end with /",
            format!("write path:/{trimmed}/"),
        ));
    }
    if prefix.contains("//") {
        return Err(refuse(
            "has an empty segment (//) in the prefix",
            format!("write path:/{}/", squeeze_slashes(trimmed)),
        ));
    }
    if trimmed.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(refuse(
            "has a . or .. segment in the prefix",
            "use plain names, e.g. path:/owui/",
        ));
    }
    if prefix.to_ascii_lowercase().starts_with("/.well-known/") {
        return Err(refuse(
            "would capture /.well-known/, which HTTP-01 validation needs",
            "choose another prefix, e.g. path:/owui/",
        ));
    }
    Ok(Routing::Path(prefix.to_string()))
}

fn squeeze_slashes(s: &str) -> String {
    s.split('/')
        .filter(|seg| !seg.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

// ------------------------------------------------------------------ acme

fn check_acme(out: &mut Problems, acme: &RawAcme, le: bool) {
    challenge::check(out, acme);
    out.check(
        "acme.directory",
        &acme.directory,
        parse_directory(&acme.directory),
    );
    out.check(
        "acme.client",
        &acme.client,
        parse_choice::<model::AcmeClient>(&acme.client),
    );
    out.check(
        "acme.key_type",
        &acme.key_type,
        parse_choice::<model::KeyType>(&acme.key_type),
    );
    if let Some(path) = &acme.ca_bundle {
        let shown = path.to_string_lossy();
        if path.as_os_str().is_empty() {
            out.push(
                "acme.ca_bundle",
                "",
                "is empty",
                "give the absolute path of the CA's PEM bundle, or remove ca_bundle",
            );
        } else if !path.is_absolute() {
            out.push(
                "acme.ca_bundle",
                &shown,
                "is a relative path",
                "give an absolute path, e.g. /etc/edgeup/pebble-ca.pem",
            );
        } else if shown
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\%$".contains(c))
        {
            // The path goes into a systemd unit setting (certbot's renewal environment).
            out.push(
                "acme.ca_bundle",
                &shown,
                "has whitespace, a quote, \\, %, $ or a control character",
                "move the bundle to a plain path, e.g. /etc/edgeup/ca.pem",
            );
        } else if le {
            out.push(
                "acme.ca_bundle",
                &shown,
                "is set, but only a private CA's https:// directory needs one",
                "remove ca_bundle; Let's Encrypt is trusted by default",
            );
        }
    }
    if let Some(eab) = &acme.eab {
        if eab.kid.trim().is_empty() || eab.kid.chars().any(char::is_whitespace) {
            out.push(
                "acme.eab.kid",
                &eab.kid,
                if eab.kid.trim().is_empty() {
                    "is empty"
                } else {
                    "contains whitespace"
                },
                "copy the key ID exactly as your CA gave it",
            );
        }
        out.check(
            "acme.eab.hmac_key",
            &format!("<hidden, {} characters>", eab.hmac_key.chars().count()),
            check_base64url(&eab.hmac_key),
        );
        if le {
            out.push(
                "acme.eab",
                &eab.kid,
                "is set, but Let's Encrypt does not use external account binding",
                "remove acme.eab",
            );
        }
    }
}

fn parse_directory(directory: &str) -> Result<Directory, Refusal> {
    match directory {
        "off" => return Ok(Directory::Off),
        "letsencrypt" => return Ok(Directory::LetsEncrypt),
        "letsencrypt-staging" => return Ok(Directory::Staging),
        _ => {}
    }
    if directory.contains("://") {
        return addr::check_https_url(directory).map(|()| Directory::Url(directory.to_string()));
    }
    let lower = directory.to_ascii_lowercase().replace(['_', ' ', '.'], "-");
    let guess = match lower.as_str() {
        "" | "false" | "no" | "none" | "disabled" | "disable" | "0" => "off",
        "staging" | "le-staging" | "lets-encrypt-staging" | "letsencrypt-staging" | "test" => {
            "letsencrypt-staging"
        }
        "le" | "lets-encrypt" | "letsencrypt" | "letsencrypt-org" | "production" | "prod"
        | "true" | "yes" | "on" => "letsencrypt",
        _ => "",
    };
    let fix = if guess.is_empty() {
        "use letsencrypt, letsencrypt-staging, off, or the CA's https:// directory URL".to_string()
    } else {
        format!("write {guess}")
    };
    Err(refuse(
        "is not letsencrypt, letsencrypt-staging, off or an https:// URL",
        fix,
    ))
}

/// An EAB HMAC key: base64url without padding (RFC 8555 section 7.3.4).
/// The reasons never quote the key.
fn check_base64url(key: &str) -> Result<(), Refusal> {
    if key.trim().is_empty() {
        return Err(refuse(
            "is empty",
            "copy the HMAC key exactly as your CA gave it (base64url)",
        ));
    }
    if key.contains('=') {
        return Err(refuse(
            "has base64 padding",
            "remove the trailing = characters (base64url without padding)",
        ));
    }
    if key.contains(['+', '/']) {
        return Err(refuse(
            "is standard base64, not base64url",
            "replace + with - and / with _",
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(refuse(
            "has characters other than A-Z a-z 0-9 - _",
            "copy the HMAC key exactly as your CA gave it (base64url)",
        ));
    }
    if key.len() % 4 == 1 {
        return Err(refuse(
            "has a length no base64 text can have (truncated?)",
            "copy the whole HMAC key again",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- listen

/// Checks listen.*; returns the good HAProxy binds as `(field, raw, bind)`.
fn check_listen(out: &mut Problems, site: &RawSite) -> Vec<(String, String, Bind)> {
    let mut binds: Vec<(String, String, Bind)> = Vec::new();
    for (key, list, example) in [
        ("listen.http", &site.listen.http, ":80"),
        ("listen.https", &site.listen.https, ":443"),
    ] {
        if list.is_empty() {
            out.push(
                key,
                "",
                "is empty",
                &format!("list at least one address, e.g. [\"{example}\"]"),
            );
        }
        for (i, raw) in list.iter().enumerate() {
            let field = format!("{key}[{i}]");
            let bind = match parse_bind(raw, example) {
                Ok(b) => b,
                Err((reason, fix)) => {
                    out.push(&field, raw, &reason, &fix);
                    continue;
                }
            };
            if let Some((other_field, other_raw, _)) =
                binds.iter().find(|(_, _, b)| b.overlaps(&bind))
            {
                let fix = if other_field.starts_with(key) {
                    "remove one of them"
                } else {
                    "use another port; one port cannot serve both HTTP and HTTPS"
                };
                out.push(
                    &field,
                    raw,
                    &format!("overlaps {other_field} {other_raw:?}"),
                    fix,
                );
                continue;
            }
            binds.push((field, raw.clone(), bind));
        }
    }

    let raw = &site.listen.acme_responder;
    let fix = format!("use a loopback address such as {DEFAULT_ACME_RESPONDER}");
    match parse_bind(raw, DEFAULT_ACME_RESPONDER) {
        Err((reason, fix)) => {
            let fix = if raw.starts_with("localhost:") {
                format!(
                    "write the address: 127.0.0.1:{}",
                    raw.trim_start_matches("localhost:")
                )
            } else {
                fix
            };
            out.push("listen.acme_responder", raw, &reason, &fix);
        }
        Ok(r) if !r.ip.is_loopback() => out.push(
            "listen.acme_responder",
            raw,
            "is not a loopback address; the responder must be reachable only through HAProxy",
            &fix,
        ),
        Ok(r) if r.port >= 1024 => out.push(
            "listen.acme_responder",
            raw,
            "is an unprivileged port (1024 or above): any local user could listen there and answer \
             the CA's HTTP-01 challenges for these names, or block them",
            &format!("use a loopback port below 1024, which only root can bind, e.g. {DEFAULT_ACME_RESPONDER}"),
        ),
        Ok(r) => {
            if let Some((field, bind_raw, _)) = binds.iter().find(|(_, _, b)| b.overlaps(&r)) {
                out.push(
                    "listen.acme_responder",
                    raw,
                    &format!("collides with HAProxy's {field} {bind_raw:?}"),
                    &format!("use a free loopback port such as {DEFAULT_ACME_RESPONDER}"),
                );
            }
        }
    }
    binds
}
