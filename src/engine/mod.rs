//! The step engine: check every step, act only on drift, re-check, and run
//! notified handlers once at the end. `plan` is the same walk without acting.
//! In `apply`, a run of consecutive certificate steps acts together (batch.rs).

mod batch;
pub mod pending;

use crate::assets::Assets;
use crate::host::Host;
use crate::playbook::{Entry, Playbook};
use crate::render::Vars;
use crate::report::{Event, Reporter, Status};
use crate::steps::{AnyStep, Ctx, Journal, Renewal, State, Swap};
use anyhow::Result;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recap {
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Sites with a failed step, in the order they failed.
    pub failed_sites: Vec<String>,
}

impl Recap {
    fn count(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => self.changed += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
        }
    }
}

pub struct Engine<'a> {
    pub host: &'a Host,
    pub assets: &'a Assets,
    pub state_dir: &'a str,
    pub reporter: &'a mut dyn Reporter,
    /// Called after a step changed the host, to refresh facts templates use
    /// (e.g. the HAProxy version once the package is installed).
    pub refresh: &'a dyn Fn(&Host, &mut Vars) -> Result<()>,
    /// Only steps with this tag (e.g. `certificate` for `edgeup renew`).
    pub only_tag: Option<&'a str>,
    /// Only this site's steps (and the host-wide ones), e.g. `edgeup renew DOMAIN`.
    pub only_site: Option<&'a str>,
    /// What certificate steps may do (`Ctx::renewal`).
    pub renewal: Renewal,
}

/// The run-wide part of a step's `Ctx` (copied out of the engine so the
/// reporter can stay borrowed while steps run).
#[derive(Clone, Copy)]
struct Scope<'a> {
    host: &'a Host,
    assets: &'a Assets,
    state_dir: &'a str,
    renewal: Renewal,
}

impl<'a> Scope<'a> {
    /// The scope for the re-check after apply: nothing is forced there.
    fn settled(self) -> Scope<'a> {
        Scope {
            renewal: Renewal::WhenDue,
            ..self
        }
    }

    fn ctx<'b>(self, vars: &'b Vars, journal: &'b Journal) -> Ctx<'b>
    where
        'a: 'b,
    {
        Ctx {
            host: self.host,
            vars,
            assets: self.assets,
            state_dir: self.state_dir,
            journal,
            renewal: self.renewal,
        }
    }
}

/// Steps that need systemd when it is not running (apply refuses to start).
pub fn steps_needing_systemd<'p>(playbook: &'p Playbook, vars: &Vars) -> Vec<&'p str> {
    playbook
        .steps
        .iter()
        .chain(&playbook.handlers)
        .filter(|e| e.applies(vars).unwrap_or(true))
        .filter(|e| e.step().is_ok_and(|s| s.needs_systemd()))
        .map(|e| e.name.as_str())
        .collect()
}

impl<'a> Engine<'a> {
    fn scope(&self) -> Scope<'a> {
        Scope {
            host: self.host,
            assets: self.assets,
            state_dir: self.state_dir,
            renewal: self.renewal,
        }
    }
}

impl Engine<'_> {
    pub fn run(&mut self, playbook: &Playbook, vars: &mut Vars, mode: Mode) -> Result<Recap> {
        let started = Instant::now();
        let journal = Journal::default();
        let mut recap = Recap::default();
        let mut pending = pending::load(self.host, self.state_dir)?;
        let unknown: Vec<String> = pending
            .iter()
            .filter(|name| !playbook.handlers.iter().any(|h| &&h.name == name))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            // Left by another playbook (or an older edgeup): nothing here can run them.
            self.reporter.event(&Event::Warning {
                message: format!(
                    "dropping pending handlers this playbook does not have: {}",
                    unknown.join(", ")
                ),
            });
            pending.retain(|name| !unknown.contains(name));
            if mode == Mode::Apply {
                pending::save(self.host, self.state_dir, &pending)?;
            }
        }
        let selected: Vec<&Entry> = playbook
            .steps
            .iter()
            .filter(|e| self.only_tag.is_none_or(|tag| e.has_tag(tag)))
            .filter(|e| {
                self.only_site
                    .is_none_or(|only| e.site.as_deref().is_none_or(|s| s == only))
            })
            .collect();
        let total = selected.len();
        let mut stopped = false;
        let mut next = 0;
        while let Some(&entry) = selected.get(next).filter(|_| !stopped) {
            let i = next;
            // Consecutive certificate steps act together in apply (batch.rs).
            let run = match mode {
                Mode::Apply => batch::run_length(selected.get(i..).unwrap_or_default()),
                Mode::Plan => 0,
            };
            if run > 0 {
                let entries = selected.get(i..i + run).unwrap_or_default();
                self.certificates(i, total, entries, vars, &journal, &mut pending, &mut recap)?;
                next += run;
                continue;
            }
            next += 1;
            if entry.is_flush() {
                if mode == Mode::Apply && entry.applies(vars)? {
                    let failed_before = recap.failed;
                    self.handlers(playbook, vars, mode, &journal, &mut pending, &mut recap)?;
                    stopped = recap.failed > failed_before;
                    if !stopped {
                        // What was swapped before a successful reload is live: no rollback past it.
                        journal.swaps.borrow_mut().clear();
                    }
                }
                continue;
            }
            if let Some(site) = entry
                .site
                .as_ref()
                .filter(|s| recap.failed_sites.contains(s))
            {
                self.reporter.event(&Event::Step {
                    index: i + 1,
                    total,
                    name: entry.name.clone(),
                    site: Some(site.clone()),
                    status: Status::Skipped,
                    handler: false,
                    changes: vec![],
                    diff: None,
                    message: Some(format!("an earlier step of {site} failed")),
                    duration_ms: 0,
                });
                recap.count(Status::Skipped);
                continue;
            }
            let status = self.step(i + 1, total, entry, vars, mode, &journal, &mut pending)?;
            recap.count(status);
            // Apply stops at the first failure of a host-wide step (later
            // steps build on it); a site's failure stops only that site's
            // steps. Plan keeps going to show everything it can.
            if status == Status::Failed && mode == Mode::Apply {
                match &entry.site {
                    Some(site) => recap.failed_sites.push(site.clone()),
                    None => stopped = true,
                }
            }
        }
        if !stopped {
            self.handlers(playbook, vars, mode, &journal, &mut pending, &mut recap)?;
        } else if !pending.is_empty() {
            self.reporter.event(&Event::Warning {
                message: format!(
                    "not run because a step failed (kept for the next run): {}",
                    pending.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        self.reporter.event(&Event::Recap {
            ok: recap.ok,
            changed: recap.changed,
            failed: recap.failed,
            skipped: recap.skipped,
            failed_sites: recap.failed_sites.clone(),
            mode: if mode == Mode::Plan { "plan" } else { "apply" }.into(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        Ok(recap)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        index: usize,
        total: usize,
        entry: &Entry,
        vars: &mut Vars,
        mode: Mode,
        journal: &Journal,
        pending: &mut BTreeSet<String>,
    ) -> Result<Status> {
        let started = Instant::now();
        let scope = self.scope();
        self.reporter.begin(index, total, &entry.name);
        // What apply left in the journal's warnings: shown after the step's line.
        let warning: RefCell<Option<String>> = RefCell::new(None);
        let mut report = |status: Status, changes: Vec<String>, diff, message: Option<String>| {
            self.reporter.event(&Event::Step {
                index,
                total,
                name: entry.name.clone(),
                site: entry.site.clone(),
                status,
                handler: false,
                changes,
                diff,
                message,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            warn(
                &mut *self.reporter,
                &entry.name,
                warning.borrow_mut().take(),
            );
            status
        };
        let applies = match entry.applies(vars) {
            Ok(applies) => applies,
            Err(e) => return Ok(report(Status::Failed, vec![], None, Some(format!("{e:#}")))),
        };
        if !applies {
            let why = entry
                .when
                .as_deref()
                .map(|w| format!("condition not met: {w}"));
            return Ok(report(Status::Skipped, vec![], None, why));
        }
        let step = entry.step()?;
        if mode == Mode::Plan && step.needs_systemd() && !vars.facts.systemd {
            let why = "systemd is not running: cannot be checked here (apply refuses on this host)";
            return Ok(report(Status::Skipped, vec![], None, Some(why.into())));
        }
        let ctx = scope.ctx(vars, journal);
        let drift = match step.check(&ctx) {
            Ok(State::Converged(note)) => {
                return Ok(report(Status::Ok, vec![], None, Some(note)));
            }
            Ok(State::Drift(drift)) => drift,
            Err(e) => return Ok(report(Status::Failed, vec![], None, Some(format!("{e:#}")))),
        };
        if mode == Mode::Plan {
            let message = (!entry.notify.is_empty())
                .then(|| format!("would notify: {}", entry.notify.join(", ")));
            return Ok(report(Status::Changed, drift.changes, drift.diff, message));
        }
        // Persist notifications before acting: if we die mid-apply, the next
        // run still reloads.
        if !entry.notify.is_empty() {
            pending.extend(entry.notify.iter().cloned());
            pending::save(self.host, self.state_dir, pending)?;
        }
        let (changes, diff) = (drift.changes.clone(), drift.diff.clone());
        let applied = step.apply(&ctx, &drift);
        // This step's warnings, whatever the outcome: none may reach the next step.
        *warning.borrow_mut() = journal.take_warnings();
        if let Err(e) = applied {
            return Ok(report(
                Status::Failed,
                changes,
                diff,
                Some(format!("{e:#}")),
            ));
        }
        if let Err(e) = (self.refresh)(self.host, vars) {
            return Ok(report(
                Status::Failed,
                changes,
                diff,
                Some(format!("{e:#}")),
            ));
        }
        let ctx = scope.settled().ctx(vars, journal);
        match step.check(&ctx) {
            Ok(State::Converged(_)) => {
                // The step's own line says it too.
                let message = warning.borrow().clone();
                Ok(report(Status::Changed, changes, diff, message))
            }
            Ok(State::Drift(still)) => Ok(report(
                Status::Failed,
                changes,
                diff,
                Some(format!(
                    "applied, but the step still does not converge: {}",
                    still.changes.join("; ")
                )),
            )),
            Err(e) => Ok(report(
                Status::Failed,
                changes,
                diff,
                Some(format!("re-check after apply failed: {e:#}")),
            )),
        }
    }

    fn handlers(
        &mut self,
        playbook: &Playbook,
        vars: &Vars,
        mode: Mode,
        journal: &Journal,
        pending: &mut BTreeSet<String>,
        recap: &mut Recap,
    ) -> Result<()> {
        // In plan, handlers that steps would notify are not in `pending`
        // (nothing was persisted): report them from the plan's own drift.
        let total = playbook.handlers.len();
        for (i, handler) in playbook.handlers.iter().enumerate() {
            if !pending.contains(&handler.name) {
                continue;
            }
            let started = Instant::now();
            self.reporter.begin(i + 1, total, &handler.name);
            let ctx = self.scope().settled().ctx(vars, journal);
            let step = handler.step()?;
            let (status, message) = if mode == Mode::Plan {
                (Status::Changed, Some("pending from an earlier run".into()))
            } else {
                match run_handler(step, &ctx) {
                    Ok(()) => {
                        pending.remove(&handler.name);
                        pending::save(self.host, self.state_dir, pending)?;
                        (Status::Changed, None)
                    }
                    Err(e) => (Status::Failed, Some(rollback(&ctx, step, e))),
                }
            };
            let warning = journal.take_warnings();
            recap.count(status);
            self.reporter.event(&Event::Step {
                index: i + 1,
                total,
                name: handler.name.clone(),
                site: None,
                status,
                handler: true,
                changes: vec![],
                diff: None,
                message,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            warn(&mut *self.reporter, &handler.name, warning);
        }
        Ok(())
    }
}

/// A step's warning (from `Ctx::warn`), after its line.
fn warn(reporter: &mut dyn Reporter, name: &str, warning: Option<String>) {
    if let Some(message) = warning {
        reporter.event(&Event::Warning {
            message: format!("{name}: {message}"),
        });
    }
}

fn run_handler(step: &dyn AnyStep, ctx: &Ctx) -> Result<()> {
    match step.check(ctx)? {
        State::Converged(_) => Ok(()),
        State::Drift(drift) => step.apply(ctx, &drift),
    }
}

/// A handler (reload) failed after files were swapped in this run: put the
/// previous files back and run the handler again so the service keeps
/// running on what worked before. Returns the message for the report.
fn rollback(ctx: &Ctx, step: &dyn AnyStep, error: anyhow::Error) -> String {
    let swaps: Vec<Swap> = ctx.journal.swaps.borrow().clone();
    if swaps.is_empty() {
        return format!("{error:#}");
    }
    let mut notes = vec![format!("{error:#}")];
    for swap in swaps.iter().rev() {
        let restored = match &swap.backup {
            Some(backup) => ctx.host.restore(backup, &swap.dest),
            None => ctx.host.remove_file(&swap.dest),
        };
        match restored {
            Ok(()) => notes.push(format!("rolled back {}", swap.dest)),
            Err(e) => notes.push(format!("could not roll back {}: {e:#}", swap.dest)),
        }
    }
    match run_handler(step, ctx) {
        Ok(()) => notes.push("the previous configuration is running again".into()),
        Err(e) => notes.push(format!(
            "running the handler on the previous files failed too: {e:#}"
        )),
    }
    notes.join("\n")
}
