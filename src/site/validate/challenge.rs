//! `acme.challenge`, `acme.dns` and `notify:`: judged and parsed by the
//! same functions (see `validate::typed`). Nothing here touches the host:
//! whether the key file exists and is 0600 is checked when it is read.

use super::Problems;
use crate::dns::{self, Provider};
use crate::notify;
use crate::site::addr::{Refusal, refuse};
use crate::site::model::Challenge;
use crate::site::raw::{RawAcme, RawDns, RawNotify, RawTarget};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DNS_PORT: u16 = 53;

/// Every problem with `acme.challenge` and `acme.dns`.
pub(super) fn check(out: &mut Problems, acme: &RawAcme) {
    match (acme.challenge.as_str(), &acme.dns) {
        ("http-01", None) => {}
        ("http-01", Some(_)) => out.push(
            "acme.dns",
            "",
            "is set while acme.challenge is http-01, so it would not be used",
            "set acme.challenge: dns-01, or remove acme.dns",
        ),
        ("dns-01", None) => out.push(
            "acme.dns",
            "",
            "is missing, and dns-01 needs a provider to write the TXT records",
            "add acme.dns with provider: rfc2136 (server, tsig_key_file) or provider: exec (command)",
        ),
        ("dns-01", Some(raw)) => {
            if acme.client == "certbot" {
                out.push(
                    "acme.client",
                    &acme.client,
                    "is certbot, but edgeup drives dns-01 through its builtin client only",
                    "use acme.client: builtin with acme.challenge: dns-01",
                );
            }
            if let Err((field, value, (reason, fix))) = parse_dns(raw) {
                out.push(&field, &value, &reason, &fix);
            }
        }
        (other, _) => out.push(
            "acme.challenge",
            other,
            "is not a challenge type",
            "use http-01 (the CA connects to port 80) or dns-01 (a TXT record in your zone)",
        ),
    }
}

/// The typed challenge of an `acme:` that `check` accepted.
pub(super) fn parse(acme: &RawAcme) -> Result<Challenge, (String, String, Refusal)> {
    match (&acme.dns, acme.dns01()) {
        (Some(raw), true) => parse_dns(raw).map(Challenge::Dns01),
        _ => Ok(Challenge::Http01),
    }
}

/// `acme.dns` typed, or its first problem (the certificate step reads the
/// rendered playbook's copy with this).
pub fn parse_dns_settings(raw: &RawDns) -> Result<dns::Settings, crate::site::Problem> {
    parse_dns(raw).map_err(|(field, value, (reason, fix))| {
        crate::site::Problem::new(field, value, reason, fix)
    })
}

fn parse_dns(raw: &RawDns) -> Result<dns::Settings, (String, String, Refusal)> {
    fn at<T>(
        field: &str,
        value: &str,
        r: Result<T, Refusal>,
    ) -> Result<T, (String, String, Refusal)> {
        r.map_err(|refusal| (format!("acme.dns.{field}"), value.to_string(), refusal))
    }
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    let missing = |field: &str, fix: &str| -> (String, String, Refusal) {
        (
            format!("acme.dns.{field}"),
            String::new(),
            refuse(
                format!("is missing, and provider {} needs it", raw.provider),
                fix,
            ),
        )
    };
    let unused = |field: &str, value: String| -> (String, String, Refusal) {
        (
            format!("acme.dns.{field}"),
            value,
            refuse(
                format!("is set, but provider {} does not use it", raw.provider),
                format!("remove acme.dns.{field}"),
            ),
        )
    };
    let provider = match raw.provider.as_str() {
        "rfc2136" => {
            if let Some(v) = shown(&raw.command) {
                return Err(unused("command", v));
            }
            if let Some(v) = shown(&raw.env_file) {
                return Err(unused("env_file", v));
            }
            let server = raw.server.as_deref().ok_or_else(|| {
                missing(
                    "server",
                    "give the primary's address that accepts updates, e.g. 192.0.2.53:53",
                )
            })?;
            let key = raw.tsig_key_file.as_ref().ok_or_else(|| {
                missing(
                    "tsig_key_file",
                    "give the key file's path, e.g. /etc/edgeup/tsig.key (made by `tsig-keygen -a hmac-sha256 NAME`)",
                )
            })?;
            Provider::Rfc2136 {
                server: at("server", server, parse_server(server))?,
                tsig_key_file: at("tsig_key_file", &key.to_string_lossy(), absolute(key))?,
            }
        }
        "exec" => {
            if let Some(v) = &raw.server {
                return Err(unused("server", v.clone()));
            }
            if let Some(v) = shown(&raw.tsig_key_file) {
                return Err(unused("tsig_key_file", v));
            }
            let command = raw.command.as_ref().ok_or_else(|| {
                missing(
                    "command",
                    "give the hook's absolute path, e.g. /usr/local/bin/dns-hook",
                )
            })?;
            Provider::Exec {
                command: at("command", &command.to_string_lossy(), absolute(command))?,
                env_file: match &raw.env_file {
                    Some(path) => Some(at("env_file", &path.to_string_lossy(), absolute(path))?),
                    None => None,
                },
            }
        }
        other => {
            return Err((
                "acme.dns.provider".into(),
                other.into(),
                refuse(
                    if other.is_empty() {
                        "is missing"
                    } else {
                        "is not a DNS provider"
                    },
                    "use rfc2136 (dynamic updates with a TSIG key) or exec (a hook script, e.g. around dns-lexicon)",
                ),
            ));
        }
    };
    Ok(dns::Settings {
        provider,
        propagation_timeout: at(
            "propagation_timeout",
            &raw.propagation_timeout,
            parse_timeout(&raw.propagation_timeout),
        )?,
        resolver: match &raw.resolver {
            Some(r) => Some(at("resolver", r, parse_server(r))?),
            None => None,
        },
    })
}

/// `IP` (port 53) or `IP:PORT`; a name is refused, since it would have to
/// be resolved through the very DNS being changed (certbot's rfc2136
/// plugin asks for an address too).
pub(crate) fn parse_server(text: &str) -> Result<SocketAddr, Refusal> {
    let addr = if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, DNS_PORT)
    } else if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else {
        return Err(refuse(
            "is not an IP address or IP:PORT",
            "give the DNS server's address, e.g. 192.0.2.53 or 192.0.2.53:53 ([2001:db8::53]:53 for IPv6)",
        ));
    };
    if addr.port() == 0 {
        return Err(refuse("has port 0", "use the server's port, normally 53"));
    }
    Ok(addr)
}

/// `120s`, `2m` or `120`: 1 second to 1 hour.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, Refusal> {
    const FIX: &str = "write seconds or minutes, e.g. 120s or 2m";
    let (number, unit) = match text.strip_suffix('s') {
        Some(n) => (n, 1),
        None => match text.strip_suffix('m') {
            Some(n) => (n, 60),
            None => (text, 1),
        },
    };
    let secs = number
        .parse::<u64>()
        .map_err(|_| refuse("is not a duration", FIX))?
        .saturating_mul(unit);
    if !(1..=3600).contains(&secs) {
        return Err(refuse("is not between 1 second and 1 hour", FIX));
    }
    Ok(Duration::from_secs(secs))
}

fn absolute(path: &Path) -> Result<PathBuf, Refusal> {
    if !path.is_absolute() {
        return Err(refuse(
            "is not an absolute path",
            format!("write the full path, e.g. /etc/edgeup/{}", path.display()),
        ));
    }
    Ok(path.to_path_buf())
}

/// Every problem with `notify:`.
pub(super) fn check_notify(out: &mut Problems, raw: &RawNotify) {
    if let Err((field, value, (reason, fix))) = parse_notify(raw) {
        out.push(&field, &value, &reason, &fix);
    }
}

/// `notify:` typed, or its first problem (the alerts step reads the
/// rendered playbook's copy with this).
pub fn parse_notify_settings(raw: &RawNotify) -> Result<notify::Settings, crate::site::Problem> {
    parse_notify(raw).map_err(|(field, value, (reason, fix))| {
        crate::site::Problem::new(field, value, reason, fix)
    })
}

/// The typed `notify:` settings.
pub(super) fn parse_notify(raw: &RawNotify) -> Result<notify::Settings, (String, String, Refusal)> {
    if raw.targets.is_empty() {
        return Err((
            "notify.targets".into(),
            String::new(),
            refuse(
                "is empty",
                "list where alerts go, e.g. targets: [{webhook: https://hooks.example.com/edgeup}], or remove notify",
            ),
        ));
    }
    if !(1..=89).contains(&raw.days_before_expiry) {
        return Err((
            "notify.days_before_expiry".into(),
            raw.days_before_expiry.to_string(),
            refuse(
                "is not between 1 and 89 (certificates from Let's Encrypt last 90 days or less)",
                "use e.g. 14",
            ),
        ));
    }
    let targets = raw
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| target(t).map_err(|(value, r)| (format!("notify.targets[{i}]"), value, r)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(notify::Settings {
        targets,
        days_before_expiry: raw.days_before_expiry,
    })
}

fn target(raw: &RawTarget) -> Result<notify::Target, (String, Refusal)> {
    match (&raw.command, &raw.webhook) {
        (Some(path), None) => absolute(path)
            .map(notify::Target::Command)
            .map_err(|r| (path.to_string_lossy().into_owned(), r)),
        (None, Some(url)) => check_webhook(url)
            .map(|()| notify::Target::Webhook(url.clone()))
            .map_err(|r| (webhook_origin(url), r)),
        (Some(_), Some(_)) => Err((
            String::new(),
            refuse(
                "sets both command and webhook",
                "one entry per target: split it in two",
            ),
        )),
        (None, None) => Err((
            String::new(),
            refuse(
                "sets neither command nor webhook",
                "write {command: /PATH} or {webhook: https://URL}",
            ),
        )),
    }
}

/// A webhook URL may carry a token: problems show only its scheme and host.
fn webhook_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

fn check_webhook(url: &str) -> Result<(), Refusal> {
    const FIX: &str = "give the full URL, e.g. https://hooks.example.com/edgeup";
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("contains whitespace or a control character", FIX));
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(refuse("is not an http:// or https:// URL", FIX));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(refuse("has no host", FIX));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_take_an_address_with_an_optional_port() {
        assert_eq!(parse_server("192.0.2.53").map(|a| a.port()), Ok(53));
        assert_eq!(parse_server("127.0.0.1:5353").map(|a| a.port()), Ok(5353));
        assert_eq!(parse_server("2001:db8::53").map(|a| a.port()), Ok(53));
        assert_eq!(parse_server("[::1]:5300").map(|a| a.port()), Ok(5300));
        assert!(parse_server("ns1.example.com").is_err());
        assert!(parse_server("127.0.0.1:0").is_err());
    }

    #[test]
    fn timeouts_in_seconds_or_minutes() {
        assert_eq!(parse_timeout("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        for bad in ["0s", "2h", "", "-1", "61m", "s"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_webhook_token_never_shows_in_a_problem() {
        let (value, _) = target(&RawTarget {
            command: None,
            webhook: Some("ftp://hooks.example.com/T0KEN?k=SECRET".into()),
        })
        .expect_err("refused");
        assert!(
            !value.contains("T0KEN") && !value.contains("SECRET"),
            "{value}"
        );
    }
}
