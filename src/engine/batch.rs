//! A run of consecutive certificate steps in `apply` (the playbook emits one
//! per site, one after another), applied together so their CA orders
//! overlap: each entry is checked first, as any step; the certificates the
//! drifted ones need are obtained together
//! (`AcmeCertificate::obtain_together`: one responder, preflights and
//! orders in flight at once, the account ensured once after a preflight
//! passed); then each entry is finished (checked, swapped in), re-checked
//! and reported in playbook order, one line each, exactly as if it had run
//! alone. A site's failure is its own, as everywhere.
//!
//! The engine knows this one kind by its type (`AnyStep` is `Any`) rather than
//! through a `Step` method every kind would carry: only certificates have a
//! slow, remote part worth overlapping, and what their batch shares (the
//! responder, an account per CA) is theirs alone. `plan` and the certbot
//! client take the ordinary one-step-at-a-time path.

use super::{Engine, Recap, pending};
use crate::playbook::Entry;
use crate::render::Vars;
use crate::report::{Event, Status};
use crate::steps::acme_certificate::AcmeCertificate;
use crate::steps::acme_certificate::CertDrift;
use crate::steps::{Describe, Diff, Journal, State, Step};
use anyhow::Result;
use std::any::Any;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The certificate step of `entry` when it may join a batch: a site's
/// `acme_certificate` (a host-wide step's failure stops the run, which a
/// batch could not honour) with a client that batches.
fn member(entry: &Entry) -> Option<&AcmeCertificate> {
    if entry.is_flush() || entry.site.is_none() {
        return None;
    }
    let step: &dyn Any = entry.step().ok()?;
    step.downcast_ref::<AcmeCertificate>()
        .filter(|cert| cert.batchable())
}

/// How many entries at the start of `entries` form a batch (0: none).
pub(super) fn run_length(entries: &[&Entry]) -> usize {
    entries.iter().take_while(|e| member(e).is_some()).count()
}

/// What an entry's check decided.
enum Verdict<'p> {
    /// Reported as it is: skipped, converged, or its check failed.
    Done {
        status: Status,
        message: Option<String>,
    },
    /// Drifted: it acts, in the batch.
    Acts {
        cert: &'p AcmeCertificate,
        drift: CertDrift,
    },
}

struct Checked<'p> {
    entry: &'p Entry,
    verdict: Verdict<'p>,
    took: Duration,
}

/// One step line.
struct Line {
    status: Status,
    changes: Vec<String>,
    diff: Option<Diff>,
    message: Option<String>,
}

impl Line {
    fn failed(changes: Vec<String>, diff: Option<Diff>, message: String) -> Line {
        Line {
            status: Status::Failed,
            changes,
            diff,
            message: Some(message),
        }
    }
}

impl Engine<'_> {
    /// Applies `run` (entries `first`.. of the selection, all batch members)
    /// and reports every entry of it, in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn certificates(
        &mut self,
        first: usize,
        total: usize,
        run: &[&Entry],
        vars: &mut Vars,
        journal: &Journal,
        pending: &mut BTreeSet<String>,
        recap: &mut Recap,
    ) -> Result<()> {
        let scope = self.scope();
        if let Some(entry) = run.first() {
            self.reporter.begin(first + 1, total, &entry.name);
        }
        // 1. Every entry's check, as any step's.
        let checked: Vec<Checked> = run
            .iter()
            .map(|entry| {
                let started = Instant::now();
                let verdict = match member(entry) {
                    Some(cert) => verdict(entry, cert, &scope.ctx(vars, journal), recap),
                    None => Verdict::Done {
                        status: Status::Failed,
                        message: Some("not a certificate step".into()),
                    },
                };
                Checked {
                    entry,
                    verdict,
                    took: started.elapsed(),
                }
            })
            .collect();
        // Persist notifications before acting: if we die mid-apply, the
        // next run still reloads.
        let acting: Vec<(&AcmeCertificate, &CertDrift)> = checked
            .iter()
            .filter_map(|c| match &c.verdict {
                Verdict::Acts { cert, drift } => Some((*cert, drift)),
                Verdict::Done { .. } => None,
            })
            .collect();
        let before = pending.len();
        for c in &checked {
            if matches!(c.verdict, Verdict::Acts { .. }) {
                pending.extend(c.entry.notify.iter().cloned());
            }
        }
        if pending.len() > before {
            pending::save(self.host, self.state_dir, pending)?;
        }
        // 2. The slow part, together.
        let mut obtained = if acting.is_empty() {
            Vec::new()
        } else {
            AcmeCertificate::obtain_together(&scope.ctx(vars, journal), &acting)
        }
        .into_iter();
        // 3. Each entry finished, re-checked and reported, in order.
        for (offset, c) in checked.into_iter().enumerate() {
            let index = first + offset + 1;
            let started = Instant::now();
            let mut took = c.took;
            let mut warning = None;
            let mut line = match c.verdict {
                Verdict::Done { status, message } => Line {
                    status,
                    changes: vec![],
                    diff: None,
                    message,
                },
                Verdict::Acts { cert, drift } => {
                    self.reporter.begin(index, total, &c.entry.name);
                    let (changes, diff) = (drift.lines(), drift.diff());
                    match obtained.next() {
                        None => Line::failed(changes, diff, "no result for this step".into()),
                        Some(got) => {
                            took += got.took;
                            let finished = cert.finish(&scope.ctx(vars, journal), got);
                            warning = journal.take_warnings();
                            match finished.and_then(|()| (self.refresh)(self.host, vars)) {
                                Err(e) => Line::failed(changes, diff, format!("{e:#}")),
                                Ok(()) => recheck(
                                    cert,
                                    &scope.settled().ctx(vars, journal),
                                    changes,
                                    diff,
                                ),
                            }
                        }
                    }
                }
            };
            took += started.elapsed();
            if line.status == Status::Changed {
                line.message = warning.clone();
            }
            recap.count(line.status);
            if line.status == Status::Failed
                && let Some(site) = &c.entry.site
            {
                recap.failed_sites.push(site.clone());
            }
            self.reporter.event(&Event::Step {
                index,
                total,
                name: c.entry.name.clone(),
                site: c.entry.site.clone(),
                status: line.status,
                handler: false,
                changes: line.changes,
                diff: line.diff,
                message: line.message,
                duration_ms: took.as_millis() as u64,
            });
            super::warn(&mut *self.reporter, &c.entry.name, warning);
        }
        Ok(())
    }
}

/// What the ordinary path would decide before acting: skipped (an earlier
/// step of the site failed, or its condition is false), converged, failed
/// check, or the drift to act on.
fn verdict<'p>(
    entry: &Entry,
    cert: &'p AcmeCertificate,
    ctx: &crate::steps::Ctx,
    recap: &Recap,
) -> Verdict<'p> {
    if let Some(site) = entry
        .site
        .as_ref()
        .filter(|s| recap.failed_sites.contains(s))
    {
        return Verdict::Done {
            status: Status::Skipped,
            message: Some(format!("an earlier step of {site} failed")),
        };
    }
    match entry.applies(ctx.vars) {
        Err(e) => {
            return Verdict::Done {
                status: Status::Failed,
                message: Some(format!("{e:#}")),
            };
        }
        Ok(false) => {
            return Verdict::Done {
                status: Status::Skipped,
                message: entry
                    .when
                    .as_deref()
                    .map(|w| format!("condition not met: {w}")),
            };
        }
        Ok(true) => {}
    }
    match cert.check(ctx) {
        Ok(State::Converged(note)) => Verdict::Done {
            status: Status::Ok,
            message: Some(note),
        },
        Ok(State::Drift(drift)) => Verdict::Acts { cert, drift },
        Err(e) => Verdict::Done {
            status: Status::Failed,
            message: Some(format!("{e:#}")),
        },
    }
}

/// The engine's re-check after acting, as for any step.
fn recheck(
    cert: &AcmeCertificate,
    ctx: &crate::steps::Ctx,
    changes: Vec<String>,
    diff: Option<Diff>,
) -> Line {
    match cert.check(ctx) {
        Ok(State::Converged(_)) => Line {
            status: Status::Changed,
            changes,
            diff,
            message: None,
        },
        Ok(State::Drift(still)) => Line::failed(
            changes,
            diff,
            format!(
                "applied, but the step still does not converge: {}",
                still.lines().join("; ")
            ),
        ),
        Err(e) => Line::failed(changes, diff, format!("re-check after apply failed: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::run_length;
    use crate::playbook::Playbook;

    fn certificate(site: Option<&str>, client: &str) -> String {
        let site = site.map(|s| format!("    site: {s}\n")).unwrap_or_default();
        format!(
            "  - name: CA-issued certificate\n{site}    acme_certificate:\n      ca: {{client: {client}, directory: https://127.0.0.1:14000/dir}}\n      domains: [a.example.test]\n      path: /etc/haproxy/certs/a.example.test.pem\n      owner: root\n      group: root\n      key_type: ecdsa-p256\n      responder: 127.0.0.1:888\n      validation_port: 80\n      preflight: true\n      certbot_dir: /etc/letsencrypt\n"
        )
    }

    /// The run lengths at every position of a playbook made of `steps`.
    fn runs(steps: &[String]) -> Vec<usize> {
        let yaml = format!("name: t\nsteps:\n{}", steps.concat());
        let playbook: Playbook = serde_saphyr::from_str(&yaml).expect("a playbook");
        let entries: Vec<_> = playbook.steps.iter().collect();
        (0..entries.len())
            .map(|i| run_length(&entries[i..]))
            .collect()
    }

    #[test]
    fn consecutive_builtin_certificate_steps_of_sites_form_a_run() {
        let other = "  - name: daemon\n    daemon_reload: {}\n".to_string();
        let flush = "  - name: flush\n    flush_handlers: {}\n".to_string();
        let steps = [
            other.clone(),
            certificate(Some("a"), "builtin"),
            certificate(Some("b"), "builtin"),
            certificate(Some("c"), "builtin"),
            // certbot goes one at a time: it ends the run.
            certificate(Some("d"), "certbot"),
            certificate(Some("e"), "builtin"),
            flush,
            // A host-wide certificate step (no site) stops the run when it
            // fails, which a batch cannot honour: never batched.
            certificate(None, "builtin"),
            certificate(Some("f"), "builtin"),
            other,
        ];
        assert_eq!(runs(&steps), [0, 3, 2, 1, 0, 1, 0, 0, 1, 0]);
    }

    /// The client and the key type are types in the spec: a misspelling is
    /// an error naming it, never a silent fallback to another client or key.
    #[test]
    fn an_unknown_client_or_key_type_is_refused() {
        for (spec, bad) in [
            (certificate(Some("a"), "certbto"), "certbto"),
            (
                certificate(Some("a"), "builtin").replace("ecdsa-p256", "rsa-4096"),
                "rsa-4096",
            ),
        ] {
            let yaml = format!("name: t\nsteps:\n{spec}");
            let err = serde_saphyr::from_str::<Playbook>(&yaml)
                .err()
                .map(|e| e.to_string())
                .expect("refused");
            assert!(err.contains(&format!("unknown variant `{bad}`")), "{err}");
        }
        let good = format!(
            "name: t\nsteps:\n{}",
            certificate(Some("a"), "certbot").replace("ecdsa-p256", "rsa-2048")
        );
        assert!(serde_saphyr::from_str::<Playbook>(&good).is_ok());
    }
}
