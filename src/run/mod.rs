//! The run layer: `plan`, `apply` and `renew` of a validated configuration
//! on a host, the same for every caller (the CLI, `init`, the transcript
//! tests): prepare (profile, host-dependent validation, facts, vars,
//! playbook), refuse an apply that needs systemd where it is not running,
//! take the run lock, walk the playbook. Reading flags and site files,
//! asking, summaries and exit codes are the CLI's (`app`).

mod host_checks;
mod input;
mod prepare;
mod walk;

pub use input::{Desired, Run};

use crate::assets::Assets;
use crate::engine::{self, Mode, Recap};
use crate::exit;
use crate::host::{Host, lock::RunLock};
use crate::paths::STATE_DIR;
use crate::report::Reporter;
use crate::steps::Renewal;
use anyhow::Result;
use prepare::Prepared;
use std::time::Duration;

/// How long certbot's deploy hook waits for another edgeup run to end
/// before it gives up (the next run installs the certificate then).
const HOOK_PATIENCE: Duration = Duration::from_secs(600);

/// Plans or applies `target` with the playbook `playbook_name`, reported to
/// `reporter`. The root check is the caller's (`require_root`): transcript
/// tests run this unprivileged, on a fixture root with a scripted runner.
pub fn converge(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    playbook_name: &str,
    run: Run,
    reporter: &mut dyn Reporter,
) -> Result<Recap> {
    start(host, assets, target, playbook_name, run)?.walk(host, assets, reporter)
}

/// A run about to walk: prepared and, to apply, checked for systemd and
/// holding the run lock. Between `start` and `walk` a caller may look
/// first (the CLI's preview: a plan run, which takes no lock).
pub struct Started<'a> {
    prepared: Prepared,
    run: Run<'a>,
    _lock: Option<RunLock>,
}

/// Everything before the first write of `converge`.
pub fn start<'a>(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    playbook_name: &str,
    run: Run<'a>,
) -> Result<Started<'a>> {
    let prepared = prepare::prepare(host, assets, target, playbook_name, run)?;
    let lock = match run.mode {
        Mode::Plan => None,
        Mode::Apply => {
            refuse_without_systemd(&prepared)?;
            Some(match run.renewal {
                Renewal::FromCertbot => host.lock_patiently(STATE_DIR, HOOK_PATIENCE)?,
                Renewal::WhenDue | Renewal::Forced => host.lock(STATE_DIR)?,
            })
        }
    };
    Ok(Started {
        prepared,
        run,
        _lock: lock,
    })
}

impl Started<'_> {
    /// Walks the playbook (the run lock is released at the end).
    pub fn walk(self, host: &Host, assets: &Assets, reporter: &mut dyn Reporter) -> Result<Recap> {
        walk::walk(host, assets, self.prepared, reporter, self.run)
    }
}

/// Commands that change the host refuse to start without root.
pub fn require_root(command: &str) -> Result<()> {
    if crate::facts::probes::is_root() {
        return Ok(());
    }
    Err(exit::unsuitable(format!(
        "edgeup {command} changes system files and services and must run as root \
         (try: sudo edgeup {command} ...); `edgeup plan` works without root"
    )))
}

/// apply changes nothing on a host without systemd when any step needs it.
fn refuse_without_systemd(prepared: &Prepared) -> Result<()> {
    let needs = engine::steps_needing_systemd(&prepared.playbook, &prepared.vars);
    if !prepared.facts.systemd.running && !needs.is_empty() {
        return Err(exit::unsuitable(format!(
            "systemd is not running on this host (PID 1 is '{}'), and these steps need it: {}. \
             Nothing was changed. Run edgeup on a host booted with systemd (VM, bare metal, or a \
             container started with its init, e.g. `systemd-nspawn -b`).",
            prepared.facts.systemd.pid1,
            needs.join(", ")
        )));
    }
    Ok(())
}
