//! `edgeup plan` and `edgeup apply` on the command line: the sites from
//! flags and file, on a terminal the preview and the question, then the
//! summary and the exit code. The run itself is `crate::run`.

use crate::assets::Assets;
use crate::cli::{ApplyArgs, ConvergeArgs};
use crate::exit;
use crate::host::Host;
use crate::report::Verbosity;
use crate::run::{self, Desired, Run};
use anyhow::Result;
use std::io::IsTerminal;

/// Also named here by `uninstall` and `status`.
pub use crate::cli::Output;
pub use crate::run::require_root;

impl From<super::site_input::Input> for Desired {
    fn from(input: super::site_input::Input) -> Desired {
        Desired {
            config: input.config,
            record_text: input.text,
        }
    }
}

pub fn plan(host: &Host, assets: &Assets, args: &ConvergeArgs, out: &Output) -> Result<i32> {
    let flags = args.site.flags();
    let input = super::site_input::read(&flags)?;
    super::site_input::refuse_silent_removal(&flags, &input.config, args.replace)?;
    let target = Desired::from(input);
    let started = run::start(host, assets, &target, &args.playbook, Run::plan())?;
    let mut reporter = crate::report::for_output(out.json, out.verbosity, true);
    let recap = started.walk(host, assets, reporter.as_mut())?;
    Ok(if recap.failed > 0 {
        exit::FAILED
    } else if recap.changed > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

pub fn apply(host: &Host, assets: &Assets, args: &ApplyArgs, out: &Output) -> Result<i32> {
    require_root("apply")?;
    let flags = args.converge.site.flags();
    let input = super::site_input::read(&flags)?;
    super::site_input::refuse_silent_removal(&flags, &input.config, args.converge.replace)?;
    let how = ApplyHow {
        playbook: &args.converge.playbook,
        yes: args.yes,
        diff: args.diff,
    };
    apply_target(host, assets, &Desired::from(input), &how, out)
}

/// How `apply` (and `edgeup site add/remove`) runs.
pub struct ApplyHow<'a> {
    pub playbook: &'a str,
    /// Do not ask on a terminal.
    pub yes: bool,
    /// Show file diffs while applying.
    pub diff: bool,
}

/// Applies `target`: on a terminal (without `yes`) the plan is shown first
/// and the user asked, the run lock held meanwhile; then the walk, and the
/// post-apply summary.
pub fn apply_target(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    how: &ApplyHow,
    out: &Output,
) -> Result<i32> {
    let started = run::start(host, assets, target, how.playbook, Run::apply())?;
    if interactive(out) && !how.yes {
        // The preview shows what changes per step (each names its site);
        // whole diffs only with --diff or -v.
        let diffs = how.diff || out.verbosity == Verbosity::Verbose;
        let mut preview = crate::report::for_output(false, out.verbosity, diffs);
        let recap = run::converge(
            host,
            assets,
            target,
            how.playbook,
            Run::plan(),
            preview.as_mut(),
        )?;
        if recap.changed == 0 && recap.failed == 0 {
            return Ok(exit::OK);
        }
        if !confirm(&format!("Apply {} change(s)?", recap.changed))? {
            eprintln!("nothing changed");
            return Ok(exit::OK);
        }
    }
    let mut reporter = crate::report::for_output(out.json, out.verbosity, how.diff);
    let recap = started.walk(host, assets, reporter.as_mut())?;
    super::summary::after_apply(host, &target.config, &recap, out);
    Ok(if recap.failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// A person at a terminal (and not --json): questions may be asked.
pub fn interactive(out: &Output) -> bool {
    !out.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` (default no).
pub fn confirm(question: &str) -> Result<bool> {
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .map_err(|e| exit::invalid(format!("could not read the answer: {e}")))
}
