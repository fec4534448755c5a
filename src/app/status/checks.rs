//! Judging what `status` gathered: one `Check` per concern, ok, warn or
//! fail, with a sentence that says what to do. Pure functions of their
//! inputs, so every verdict is unit-tested without a host.

use super::probe::Probe;
use crate::pki::{self, CertInfo};
use crate::site::addr::HostPort;
use serde::Serialize;

/// A CA-issued certificate with fewer days left than this is flagged: the
/// renewal (due at 30 days) should have replaced it by now.
pub const RENEWAL_OVERDUE_DAYS: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// Worth knowing; the site still works.
    Warn,
    /// The site is not healthy.
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub message: String,
}

impl Check {
    pub fn new(name: &str, level: Level, message: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            level,
            message: message.into(),
        }
    }
}

/// A systemd unit as `systemctl show` describes it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UnitState {
    pub unit: String,
    /// `loaded` or `not-found`.
    pub load: String,
    /// `active`, `inactive`, `failed`...
    pub active: String,
    /// `enabled`, `disabled`, `static`...
    pub enabled: String,
    /// Timers: when it fires next (systemd's own formatting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        self.active == "active"
    }

    pub fn is_enabled(&self) -> bool {
        crate::host::systemd::is_enabled(&self.enabled)
    }
}

/// `2025-03-01 12:00 UTC` for unix seconds.
pub fn utc(unix: i64) -> String {
    match ::time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("@{unix}"),
    }
}

/// The certificate HAProxy has (`source` says whether from the file or as served).
/// Its key was judged by the caller (a file's; HAProxy holds a served one's).
pub fn certificate(
    cert: &CertInfo,
    source: &str,
    now: i64,
    domain: &str,
    acme_enabled: bool,
) -> Check {
    let verdict = pki::judge_leaf(cert, true, &[domain.to_string()], now);
    let days = verdict.days_left;
    let what = if verdict.placeholder {
        "self-signed placeholder".to_string()
    } else {
        format!("issued by {}", cert.issuer)
    };
    let facts = format!(
        "{} ({what}; {source}), expires {}",
        cert.subject,
        utc(cert.not_after)
    );
    let fail = |why: String| Check::new("certificate", Level::Fail, format!("{why}: {facts}"));
    if verdict.expired {
        return fail(format!(
            "EXPIRED {} day(s) ago{}",
            -days,
            if acme_enabled {
                "; run `edgeup renew --force` and check `journalctl -u edgeup-renew`"
            } else {
                "; run `edgeup apply` (it renews the placeholder)"
            }
        ));
    }
    if verdict.not_yet_valid {
        return fail(format!("not valid before {}", utc(cert.not_before)));
    }
    if verdict.uncovered.is_some() {
        return fail(format!(
            "does not name {domain} (it names {})",
            cert.names.join(", ")
        ));
    }
    if verdict.placeholder && acme_enabled {
        return fail(
            "still the self-signed placeholder although ACME is on: the CA-issued certificate \
             was never installed; run `edgeup apply` and read the certificate step's message"
                .to_string(),
        );
    }
    if verdict.placeholder {
        return Check::new(
            "certificate",
            Level::Warn,
            format!(
                "{facts}, {days} days left; browsers warn about it (acme.directory is off): \
                 put your own certificate + key in its file, or turn ACME on"
            ),
        );
    }
    if days < RENEWAL_OVERDUE_DAYS {
        return Check::new(
            "certificate",
            Level::Warn,
            format!(
                "{facts}, only {days} days left: renewal is overdue; run `edgeup renew` and check its output"
            ),
        );
    }
    Check::new(
        "certificate",
        Level::Ok,
        format!("{facts}, {days} days left"),
    )
}

/// The HTTPS probe: HAProxy answered with TLS for the name, and the app behind it answered.
pub fn https(probe: &Probe, backends: &[HostPort]) -> Check {
    let head = format!("{} via {}", probe.url, probe.via);
    match (probe.status, &probe.error) {
        (Some(code), _) if code >= 500 => Check::new(
            "https",
            Level::Fail,
            format!(
                "{head}: {}: HAProxy answers but the app does not (backends: {}); is it running?",
                probe.status_line.as_deref().unwrap_or_default(),
                backends
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (Some(_), _) => Check::new(
            "https",
            Level::Ok,
            format!(
                "{head}: {}",
                probe.status_line.as_deref().unwrap_or_default()
            ),
        ),
        (None, Some(error)) => Check::new("https", Level::Fail, format!("{head}: {error}")),
        (None, None) => Check::new("https", Level::Fail, format!("{head}: no answer")),
    }
}

/// The websocket probe: the upgrade went through HAProxy to the app.
pub fn websocket(probe: &Probe) -> Check {
    let head = format!("{} via {}", probe.url, probe.via);
    match (probe.status, &probe.error) {
        (Some(101), _) => Check::new(
            "websocket",
            Level::Ok,
            format!(
                "{head}: {}",
                probe.status_line.as_deref().unwrap_or_default()
            ),
        ),
        (Some(_), _) => Check::new(
            "websocket",
            Level::Fail,
            format!(
                "{head}: expected 101 Switching Protocols, got {}; chats will not stream",
                probe.status_line.as_deref().unwrap_or_default()
            ),
        ),
        (None, error) => Check::new(
            "websocket",
            Level::Fail,
            format!("{head}: {}", error.as_deref().unwrap_or("no answer")),
        ),
    }
}

/// HAProxy installed, its unit active and enabled (`unit` is None without systemd).
pub fn haproxy(version: Option<&str>, unit: Option<&UnitState>) -> Check {
    let Some(version) = version else {
        return Check::new(
            "haproxy",
            Level::Fail,
            "HAProxy is not installed: run `edgeup apply`",
        );
    };
    let Some(unit) = unit else {
        return Check::new(
            "haproxy",
            Level::Fail,
            format!("HAProxy {version} installed; its service cannot be checked without systemd"),
        );
    };
    let state = format!("HAProxy {version}, {} {}", unit.unit, describe(unit));
    if !unit.is_active() {
        return Check::new(
            "haproxy",
            Level::Fail,
            format!(
                "{state}: start it with `edgeup apply`; see `journalctl -u {}`",
                unit.unit
            ),
        );
    }
    if !unit.is_enabled() {
        return Check::new(
            "haproxy",
            Level::Warn,
            format!("{state}: it will not start at boot; run `edgeup apply`"),
        );
    }
    Check::new("haproxy", Level::Ok, state)
}

/// The renewal timer: `client` is None with ACME off; `timer` None without systemd.
pub fn renewal(client: Option<&str>, timer: Option<&UnitState>) -> Check {
    let Some(client) = client else {
        return Check::new(
            "renewal",
            Level::Ok,
            "not needed: acme.directory is off (the placeholder is renewed by `edgeup apply`)",
        );
    };
    let Some(timer) = timer else {
        return Check::new(
            "renewal",
            Level::Fail,
            format!("{client} renewal timer cannot be checked without systemd"),
        );
    };
    let next = timer
        .next_run
        .as_deref()
        .filter(|n| !n.is_empty() && *n != "n/a")
        .unwrap_or("not scheduled");
    let state = format!(
        "{} ({client}) {}, next run: {next}",
        timer.unit,
        describe(timer)
    );
    if timer.load == "not-found" {
        return Check::new(
            "renewal",
            Level::Fail,
            format!(
                "{} is not installed: certificates will expire; run `edgeup apply`",
                timer.unit
            ),
        );
    }
    if !timer.is_active() || !timer.is_enabled() {
        return Check::new(
            "renewal",
            Level::Fail,
            format!("{state}: certificates will expire; run `edgeup apply`"),
        );
    }
    Check::new("renewal", Level::Ok, state)
}

fn describe(unit: &UnitState) -> String {
    if unit.load == "not-found" {
        return "not installed".into();
    }
    format!(
        "{}, {}",
        unit.active,
        if unit.enabled.is_empty() {
            "?"
        } else {
            &unit.enabled
        }
    )
}

/// The last renewal attempt the certificate step recorded (as root: the
/// state is root's).
pub fn last_renewal(attempt: anyhow::Result<Option<crate::notify::Attempt>>) -> Check {
    const NAME: &str = "last renewal";
    match attempt {
        Ok(None) => Check::new(NAME, Level::Ok, "no attempt recorded yet"),
        Ok(Some(attempt)) => match attempt.outcome {
            crate::notify::Outcome::Renewed => Check::new(NAME, Level::Ok, attempt.to_string()),
            crate::notify::Outcome::Failed(_) => Check::new(
                NAME,
                Level::Warn,
                format!(
                    "{attempt}; the current certificate is still served, `edgeup renew` (and its \
                     timer) tries again"
                ),
            ),
        },
        Err(e) => Check::new(
            NAME,
            Level::Ok,
            format!("not known ({}); run as root to see it", e.root_cause()),
        ),
    }
}
