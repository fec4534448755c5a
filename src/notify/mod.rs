//! Alerts about certificates: `renewal_failed`, `expiry_near` and `renewed`
//! events, as JSON on a command's stdin or POSTed to a webhook.
//!
//! The ACME step records each (re)issuance with [`record_attempt`]; after
//! its run, `renew` calls [`Notifier::after_renew`] with every site it looked at,
//! which decides the events ([`events_for`], pure), saves the state and
//! delivers each event to every target, bounded in time; it returns one
//! [`Delivery`] per event and target for the caller to print, and never
//! fails the renewal. `status` reads [`last_attempt`].

mod command;
mod event;
mod state;
mod webhook;

pub use event::{Alert, AlertKind, Cert, Run, events_for, rfc3339};
pub use state::{Attempt, Outcome, State, StateFile, last_attempt, one_line, record_attempt};

use crate::host::Host;
use std::path::PathBuf;
use std::time::Duration;

/// The host's `notify:` settings, typed (`site::validate` parses them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub targets: Vec<Target>,
    /// `expiry_near` once a day when a certificate has fewer days left.
    pub days_before_expiry: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An absolute path, run with the event's JSON on stdin.
    Command(PathBuf),
    /// An http:// or https:// URL the event's JSON is POSTed to.
    Webhook(String),
}

impl Target {
    /// What may be shown of the target: a command's path, or only a
    /// webhook's `scheme://host[:port]` (its path and query may hold a token).
    pub fn label(&self) -> String {
        match self {
            Target::Command(path) => format!("command {}", path.display()),
            Target::Webhook(url) => format!("webhook {}", webhook::label(url)),
        }
    }
}

/// How long one delivery (a command's run, a webhook's exchange) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery failed; `timed_out`: it was cut off at the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub message: String,
    pub timed_out: bool,
}

impl Failure {
    fn other(message: String) -> Failure {
        Failure {
            message,
            timed_out: false,
        }
    }

    fn timed_out(message: String) -> Failure {
        Failure {
            message,
            timed_out: true,
        }
    }
}

/// One event delivered (or not) to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub domain: String,
    pub event: AlertKind,
    /// [`Target::label`]: no secret in it.
    pub target: String,
    /// Err: why it failed, one line (a command's output tail quoted).
    pub result: Result<(), String>,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "notify {} {} via {}: ",
            self.event, self.domain, self.target
        )?;
        match &self.result {
            Ok(()) => f.write_str("sent"),
            Err(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What [`Notifier::after_renew`] did: the deliveries, and what went wrong around
/// them (the state file), each a line to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRun {
    pub deliveries: Vec<Delivery>,
    pub problems: Vec<String>,
}

impl AlertRun {
    /// One line per delivery, then one per problem.
    pub fn lines(&self) -> Vec<String> {
        self.lines_where(|_| true)
    }

    /// `lines` without the deliveries that were sent: what went wrong.
    pub fn failures(&self) -> Vec<String> {
        self.lines_where(|d| d.result.is_err())
    }

    fn lines_where(&self, keep: impl Fn(&Delivery) -> bool) -> Vec<String> {
        self.deliveries
            .iter()
            .filter(|d| keep(d))
            .map(ToString::to_string)
            .chain(self.problems.iter().map(|p| format!("notify: {p}")))
            .collect()
    }

    /// Whether every delivery was sent and nothing else went wrong.
    pub fn all_ok(&self) -> bool {
        self.problems.is_empty() && self.deliveries.iter().all(|d| d.result.is_ok())
    }
}

/// Decides and delivers, with a delivery bound of its own (tests shorten it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notifier {
    timeout: Duration,
}

impl Default for Notifier {
    fn default() -> Notifier {
        Notifier::new()
    }
}

impl Notifier {
    /// Every delivery bounded by [`DEFAULT_TIMEOUT`].
    pub fn new() -> Notifier {
        Notifier {
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(timeout: Duration) -> Notifier {
        Notifier { timeout }
    }

    /// For each certificate: decide its events from its state and this
    /// run's attempts, save the new state (before delivering: a run killed
    /// while delivering does not repeat the events), then deliver every
    /// event to every target. An unreadable state file is started afresh
    /// and reported; nothing here returns an error or panics.
    pub fn after_renew(
        &self,
        host: &Host,
        state_dir: &str,
        settings: &Settings,
        certs: &[Cert],
        run: &Run,
    ) -> AlertRun {
        let mut report = AlertRun::default();
        let (mut file, mut changed) = match StateFile::load(host, state_dir) {
            Ok(file) => (file, false),
            Err(e) => {
                report.problems.push(format!(
                    "{e:#}; starting it afresh (a `renewed` may be missed once)"
                ));
                (StateFile::empty(), true)
            }
        };
        let mut events = Vec::new();
        for cert in certs {
            let state = file.domains.get(&cert.domain).cloned().unwrap_or_default();
            let (new_events, next) = events_for(cert, &state, run, settings.days_before_expiry);
            events.extend(new_events);
            if next != state {
                file.domains.insert(cert.domain.clone(), next);
                changed = true;
            }
        }
        if changed && let Err(e) = file.save(host, state_dir) {
            report.problems.push(format!("{e:#}"));
        }
        report.deliveries = self.deliver(&events, &settings.targets);
        report
    }

    /// Every event to every target. Targets are served side by side (one
    /// thread each), a target's events in order; each delivery is bounded
    /// by the timeout, and a target that timed out once is not tried again
    /// in this call (so a hanging target costs one bound, not one per event).
    /// The deliveries come back event by event, targets in settings order.
    pub fn deliver(&self, events: &[Alert], targets: &[Target]) -> Vec<Delivery> {
        let per_target: Vec<Vec<Delivery>> = std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|target| scope.spawn(move || self.deliver_to(events, target)))
                .collect();
            handles
                .into_iter()
                .zip(targets)
                .map(|(handle, target)| {
                    handle.join().unwrap_or_else(|_| {
                        events
                            .iter()
                            .map(|e| {
                                delivery(e, target, Err("the delivery thread panicked".into()))
                            })
                            .collect()
                    })
                })
                .collect()
        });
        let mut by_target: Vec<_> = per_target.into_iter().map(Vec::into_iter).collect();
        let mut out = Vec::new();
        for _ in events {
            for deliveries in &mut by_target {
                out.extend(deliveries.next());
            }
        }
        out
    }

    fn deliver_to(&self, events: &[Alert], target: &Target) -> Vec<Delivery> {
        let mut timed_out = false;
        events
            .iter()
            .map(|event| {
                if timed_out {
                    return delivery(
                        event,
                        target,
                        Err("not sent: this target timed out on an earlier event".into()),
                    );
                }
                let json = event.to_json();
                let result = match target {
                    Target::Command(path) => command::deliver(path, &json, self.timeout),
                    Target::Webhook(url) => webhook::deliver(url, &json, self.timeout),
                };
                timed_out = result.as_ref().is_err_and(|f| f.timed_out);
                delivery(event, target, result.map_err(|f| f.message))
            })
            .collect()
    }
}

fn delivery(event: &Alert, target: &Target, result: Result<(), String>) -> Delivery {
    Delivery {
        domain: event.domain.clone(),
        event: event.kind,
        target: target.label(),
        result,
    }
}

/// This machine's hostname (gethostname(2)); `localhost` if it has none.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).trim().to_string();
    if rc != 0 || name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;

    #[test]
    fn an_unreadable_state_is_reported_and_replaced_and_nothing_fails() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let host = Host::new(root.clone(), Box::new(ScriptedRunner::new(root.clone())));
        let file = root.join("state/notify/state.json");
        std::fs::create_dir_all(root.join("state/notify"))?;
        std::fs::write(&file, "{\"version\": 7}")?;
        let settings = Settings {
            targets: vec![],
            days_before_expiry: 14,
        };
        let cert = Cert {
            domain: "a.example".into(),
            names: vec!["a.example".into()],
            not_after: Some(1_000 + 3 * 86_400),
        };
        let run = Run {
            id: "a run",
            now: 1_000,
            hostname: "h",
        };
        let report = Notifier::new().after_renew(&host, "/state", &settings, &[cert], &run);
        assert!(report.deliveries.is_empty(), "no targets, no deliveries");
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0].contains("has version 7"),
            "{:?}",
            report.problems
        );
        assert_eq!(
            report.lines(),
            [format!("notify: {}", report.problems[0])],
            "problems are printed"
        );
        let saved = StateFile::load(&host, "/state")?;
        assert_eq!(
            saved.domains["a.example"].expiry_alerted_on.as_deref(),
            Some("1970-01-01")
        );
        Ok(())
    }

    #[test]
    fn targets_are_labelled_without_their_secrets() {
        assert_eq!(
            Target::Webhook("https://ntfy.example.net/topic-s3cr3t".into()).label(),
            "webhook https://ntfy.example.net"
        );
        assert_eq!(
            Target::Command("/usr/local/bin/page-me".into()).label(),
            "command /usr/local/bin/page-me"
        );
    }
}
