//! The challenge (http-01 or dns-01, with the DNS provider's settings) and
//! the alerts (`notify:`), each answer validated as typed like every other
//! (`fields::check` on a candidate site). The TSIG key and the hook's
//! environment stay in their own 0600 files: init asks for paths only.

use super::ask::Ask;
use super::fields::{self, with};
use crate::site::raw::{RawNotify, RawTarget};
use crate::site::{RawDns, RawSite};
use anyhow::Result;

const KEY_FILE: &str = "/etc/edgeup/tsig.key";

pub fn challenge(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    if !site.acme.enabled() {
        return Ok(());
    }
    let items = [
        "http-01: the CA connects to port 80 of this host (its DNS name points here)".to_string(),
        "dns-01: a TXT record in your zone proves the name (no inbound port; wildcards)"
            .to_string(),
    ];
    let current = usize::from(site.acme.dns01());
    if ask.choose("Challenge", &items, current)? == 0 {
        site.acme.challenge = "http-01".into();
        site.acme.dns = None;
        return Ok(());
    }
    site.acme.challenge = "dns-01".into();
    if site.acme.client != "builtin" {
        ask.note("ACME client: builtin (edgeup drives dns-01 itself)");
        site.acme.client = "builtin".into();
    }
    let mut dns = site.acme.dns.clone().unwrap_or_else(|| RawDns {
        propagation_timeout: crate::site::raw::default_propagation_timeout(),
        ..RawDns::default()
    });
    let providers = [
        "rfc2136: dynamic updates to your DNS server, signed with a TSIG key (BIND, Knot, PowerDNS)"
            .to_string(),
        "exec: a hook script called as COMMAND present|cleanup FQDN VALUE (lego's contract; e.g. \
         around dns-lexicon for Cloudflare, Route 53, DuckDNS)"
            .to_string(),
    ];
    let current = usize::from(dns.provider == "exec");
    if ask.choose("DNS provider", &providers, current)? == 0 {
        dns.provider = "rfc2136".into();
        dns.command = None;
        dns.env_file = None;
        let key = dns.tsig_key_file.clone().unwrap_or_else(|| KEY_FILE.into());
        dns.server = Some(answer(
            ask,
            site,
            &RawDns {
                tsig_key_file: Some(key),
                ..dns.clone()
            },
            Key::required("server"),
            "DNS server that accepts dynamic updates for the zone, IP or IP:PORT",
            dns.server.clone(),
            |d, v| d.server = Some(v.to_string()),
        )?);
        ask.note(&format!(
            "The TSIG key stays in its own file, mode 0600, in BIND's format: make one with \
             `tsig-keygen -a hmac-sha256 edgeup > {KEY_FILE}; chmod 600 {KEY_FILE}` and allow \
             it on the server (update-policy {{ grant edgeup zonesub TXT; }})."
        ));
        dns.tsig_key_file = Some(
            answer(
                ask,
                site,
                &dns,
                Key::required("tsig_key_file"),
                "TSIG key file",
                Some(
                    dns.tsig_key_file
                        .clone()
                        .unwrap_or_else(|| KEY_FILE.into())
                        .to_string_lossy()
                        .into_owned(),
                ),
                |d, v| d.tsig_key_file = Some(v.into()),
            )?
            .into(),
        );
    } else {
        dns.provider = "exec".into();
        dns.server = None;
        dns.tsig_key_file = None;
        let command = |d: &RawDns| d.command.as_ref().map(|p| p.to_string_lossy().into_owned());
        dns.command = Some(
            answer(
                ask,
                site,
                &dns,
                Key::required("command"),
                "Hook command (absolute path)",
                command(&dns),
                |d, v| d.command = Some(v.into()),
            )?
            .into(),
        );
        let env = dns
            .env_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let typed = answer(
            ask,
            site,
            &dns,
            Key::optional("env_file"),
            "File of KEY=VALUE lines for the hook's environment (API tokens; mode 0600), empty for none",
            env,
            |d, v| d.env_file = Some(v).filter(|v| !v.is_empty()).map(Into::into),
        )?;
        dns.env_file = Some(typed).filter(|t| !t.is_empty()).map(Into::into);
    }
    dns.propagation_timeout = answer(
        ask,
        site,
        &dns,
        Key::required("propagation_timeout"),
        "How long every authoritative server may take to show the records (e.g. 120s, 5m)",
        Some(dns.propagation_timeout.clone()),
        |d, v| d.propagation_timeout = v.to_string(),
    )?;
    site.acme.dns = Some(dns);
    Ok(())
}

/// An `acme.dns` key to ask for; an optional one may be left empty.
struct Key {
    name: &'static str,
    optional: bool,
}

impl Key {
    fn required(name: &'static str) -> Key {
        Key {
            name,
            optional: false,
        }
    }

    fn optional(name: &'static str) -> Key {
        Key {
            name,
            optional: true,
        }
    }
}

/// One `acme.dns` key, asked and judged in a candidate where `dns` holds
/// the settings so far.
fn answer(
    ask: &mut dyn Ask,
    site: &RawSite,
    dns: &RawDns,
    key: Key,
    prompt: &str,
    current: Option<String>,
    set: impl Fn(&mut RawDns, &str),
) -> Result<String> {
    let field = format!("acme.dns.{}", key.name);
    let valid = |v: &str| {
        let mut candidate = dns.clone();
        set(&mut candidate, v);
        fields::check(&with(site, |s| s.acme.dns = Some(candidate)), &field, false)
    };
    ask.text(prompt, current.as_deref(), key.optional, &valid)
}

/// Alerts: Let's Encrypt no longer e-mails before expiry, so nobody hears
/// of failed renewals unless told here.
pub fn notify(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    if !site.acme.enabled() {
        return Ok(());
    }
    if !ask.confirm(
        "Be alerted when a renewal fails or a certificate nears expiry (Let's Encrypt no longer \
         e-mails about it)?",
        site.notify.is_some(),
    )? {
        site.notify = None;
        return Ok(());
    }
    let current = site.notify.clone();
    let mut items = Vec::new();
    if let Some(n) = &current {
        items.push(format!("keep the current {} target(s)", n.targets.len()));
    }
    items.push("webhook: POST the event as JSON to a URL (ntfy, a chat bridge, your own)".into());
    items.push("command: run a program with the event as JSON on stdin".into());
    let offset = usize::from(current.is_some());
    let choice = ask.choose("Where do alerts go?", &items, 0)?;
    let mut notify = current.clone().unwrap_or(RawNotify {
        targets: Vec::new(),
        days_before_expiry: 14,
    });
    if choice >= offset {
        let webhook = choice == offset;
        let base = site.clone();
        let days = notify.days_before_expiry;
        let target = |v: &str| {
            if webhook {
                RawTarget {
                    webhook: Some(v.to_string()),
                    command: None,
                }
            } else {
                RawTarget {
                    command: Some(v.into()),
                    webhook: None,
                }
            }
        };
        let valid = |v: &str| {
            let candidate = RawNotify {
                targets: vec![target(v)],
                days_before_expiry: days,
            };
            fields::check(
                &with(&base, |s| s.notify = Some(candidate)),
                "notify",
                false,
            )
        };
        let typed = ask.text(
            if webhook {
                "Webhook URL (http:// or https://)"
            } else {
                "Command (absolute path)"
            },
            None,
            false,
            &valid,
        )?;
        notify.targets = vec![target(&typed)];
    }
    let base = site.clone();
    let targets = notify.targets.clone();
    let valid = |v: &str| {
        let Ok(days) = v.parse::<u32>() else {
            return Err(format!("{v:?} is not a number of days"));
        };
        let candidate = RawNotify {
            targets: targets.clone(),
            days_before_expiry: days,
        };
        fields::check(
            &with(&base, |s| s.notify = Some(candidate)),
            "notify.days_before_expiry",
            false,
        )
    };
    let days = ask.text(
        "Alert once a day when a certificate has fewer days left than",
        Some(&notify.days_before_expiry.to_string()),
        false,
        &valid,
    )?;
    notify.days_before_expiry = days.parse().unwrap_or(notify.days_before_expiry);
    site.notify = Some(notify);
    Ok(())
}
