//! Alerts after a renewal run (`edgeup renew`, the timer): the events the
//! certificate steps' recorded attempts and the certificates' expiry call
//! for (`notify::events_for`), delivered to the host's `notify:` targets.
//! Converged when no event is due. A delivery that fails or hangs (each is
//! bounded) is a warning, never a failed step: an alert must not turn a
//! renewal into a failure, nor stop the next site's.

use super::{Ctx, Describe, State, Step};
use crate::notify::{self, Cert, Notifier, Run, StateFile};
use crate::pki;
use crate::site::RawNotify;
use anyhow::{Result, anyhow};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// `notify:` as the site file spells it.
    pub notify: RawNotify,
    pub certificates: Vec<Certificate>,
}

/// One site's certificate, as the alerts see it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub domain: String,
    pub names: Vec<String>,
    /// The PEM HAProxy serves.
    pub path: String,
}

impl Alerts {
    fn settings(&self) -> Result<notify::Settings> {
        crate::site::parse_notify(&self.notify).map_err(|p| anyhow!("{p}"))
    }

    /// What a decision needs: the settings, each certificate, this host's name.
    fn inputs(&self, ctx: &Ctx) -> Result<(notify::Settings, Vec<Cert>, String)> {
        Ok((self.settings()?, self.certs(ctx)?, notify::hostname()))
    }

    /// This run, as of now.
    fn run<'a>(ctx: &'a Ctx, hostname: &'a str) -> Run<'a> {
        Run {
            id: &ctx.vars.acme.run_id,
            now: pki::now(),
            hostname,
        }
    }

    /// Each certificate with its expiry, read from the PEM (None for the
    /// placeholder or an unreadable file: nothing of the CA's to expire).
    fn certs(&self, ctx: &Ctx) -> Result<Vec<Cert>> {
        self.certificates
            .iter()
            .map(|c| {
                let pem = ctx.host.read_no_follow(&c.path)?;
                let not_after =
                    pem.and_then(|pem| pki::parse_bundle(&pem).ok())
                        .and_then(|bundle| {
                            bundle
                                .leaf()
                                .filter(|leaf| !leaf.placeholder)
                                .map(|leaf| leaf.not_after)
                        });
                Ok(Cert {
                    domain: c.domain.clone(),
                    names: c.names.clone(),
                    not_after,
                })
            })
            .collect()
    }
}

/// The alerts due, and the targets they go to.
#[derive(Debug, Clone)]
pub struct Due {
    to: Vec<String>,
    alerts: Vec<notify::Alert>,
}

impl Describe for Due {
    fn lines(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| format!("tell {} of {}: {}", self.to.join(", "), a.domain, a.kind))
            .collect()
    }
}

impl Step for Alerts {
    type Drift = Due;

    fn check(&self, ctx: &Ctx) -> Result<State<Due>> {
        let (settings, certs, hostname) = self.inputs(ctx)?;
        let run = Self::run(ctx, &hostname);
        let file = StateFile::load(ctx.host, ctx.state_dir).unwrap_or_else(|_| StateFile::empty());
        let mut due = Due {
            to: settings.targets.iter().map(|t| t.label()).collect(),
            alerts: Vec::new(),
        };
        for cert in &certs {
            let state = file.domains.get(&cert.domain).cloned().unwrap_or_default();
            let (events, _) = notify::events_for(cert, &state, &run, settings.days_before_expiry);
            due.alerts.extend(events);
        }
        if due.alerts.is_empty() {
            return Ok(State::Converged("no alert due".into()));
        }
        Ok(State::Drift(due))
    }

    /// Decides again as it delivers (`Notifier::after_renew` marks each
    /// attempt announced under the state file): what `due` listed is what
    /// the state said a moment ago.
    fn apply(&self, ctx: &Ctx, _due: &Due) -> Result<()> {
        let (settings, certs, hostname) = self.inputs(ctx)?;
        let report = Notifier::new().after_renew(
            ctx.host,
            ctx.state_dir,
            &settings,
            &certs,
            &Self::run(ctx, &hostname),
        );
        let failures = report.failures();
        if !failures.is_empty() {
            ctx.warn(failures.join("; "));
        }
        Ok(())
    }
}
