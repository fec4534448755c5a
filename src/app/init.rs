//! `edgeup init`: from nothing to a site file by answering a few questions,
//! then the plan of every site in it, then (after asking, or with --apply)
//! `apply`. On a file that already has sites, the first question is what to
//! do: add a site, edit one or remove one.
//!
//! Defaults come from the site file (re-running edits it; a new site starts
//! from its shared settings) and from what `detect` finds. Without a terminal on stdin, stdout and stderr it
//! asks nothing and exits INVALID_INPUT at once, naming the flags and the
//! file to use instead: provisioners and pipes never hang on a prompt.

pub mod ask;
pub mod challenge;
pub mod change;
pub mod custom_ca;
pub mod fields;
pub mod file;
pub mod menu;
#[cfg(test)]
mod menu_tests;
pub mod questions;
#[cfg(test)]
mod tests;

use super::converge;
use crate::assets::Assets;
use crate::cli::{ApplyArgs, ConvergeArgs, InitArgs, Output, SiteArgs};
use crate::distro;
use crate::exit;
use crate::facts::{os_release::OsRelease, probes};
use crate::host::Host;
use crate::run::{self, Desired, Run};
use crate::site::Config;
use anyhow::Result;
use change::Decision;
use questions::Hints;
use std::io::IsTerminal;
use std::path::Path;

/// What `init` says when it cannot ask (no terminal).
pub fn no_terminal_message(missing: &[&str]) -> String {
    format!(
        "edgeup init asks questions and needs a terminal, but {} {} not a terminal \
         (CI, a provisioner, a pipe?); nothing was asked or written.\n\
         Without a terminal, give the site to apply directly:\n  \
         edgeup apply --domain chat.example.com --email you@example.com --backend 127.0.0.1:3000 \
         [--acme-directory letsencrypt-staging|off]\n\
         or write a site file (README: \"Site file\") and run:\n  \
         edgeup apply -f site.yaml",
        match missing {
            [one] => one.to_string(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
            [] => "the terminal".to_string(),
        },
        if missing.len() == 1 { "is" } else { "are" }
    )
}

fn require_terminal() -> Result<()> {
    let missing: Vec<&str> = [
        ("stdin", std::io::stdin().is_terminal()),
        ("stdout", std::io::stdout().is_terminal()),
        ("stderr", std::io::stderr().is_terminal()),
    ]
    .into_iter()
    .filter(|(_, tty)| !tty)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(exit::invalid(no_terminal_message(&missing)))
    }
}

pub fn run(host: &Host, assets: &Assets, args: &InitArgs, out: &Output) -> Result<i32> {
    if out.json {
        return Err(exit::invalid(
            "edgeup init is interactive and has no --json output; use `edgeup apply --json` with \
             site flags or -f FILE instead",
        ));
    }
    require_terminal()?;
    let path = file::absolute(&args.site_file)?;
    file::check_writable(&path)?;
    let existing = file::load(&path)?;
    let hints = hints(host, assets);
    let mut ask = ask::Terminal::new();
    use ask::Ask as _;
    match &existing {
        Some(record) => ask.note(&format!(
            "Editing {} ({}): add, edit or remove a site; Enter keeps the current answer. Ctrl-C \
             stops; nothing is written before the last answer.",
            path.display(),
            record.domains().join(", ")
        )),
        None => ask.note(&format!(
            "A few questions, then edgeup writes {} and shows what it would change. Ctrl-C \
             stops; nothing is written before the last answer.",
            path.display()
        )),
    }
    ask::interrupt_writes_nothing();
    let decision = change::decide(
        &mut ask,
        existing.as_ref(),
        &hints,
        &fields::reach_warning,
        &path,
    );
    ask::default_interrupt();
    let config = match decision? {
        Decision::Declined => {
            crate::outln!("Nothing changed: {} is as it was.", path.display());
            return Ok(exit::OK);
        }
        Decision::Same { config } => {
            file::restrict(&path)?;
            crate::outln!("{} already says this; left as it is", path.display());
            config
        }
        Decision::Write { config, text } => {
            file::write(host, &path, &text)?;
            crate::outln!(
                "wrote {} (mode 0600: it may hold an EAB key)",
                path.display()
            );
            config
        }
    };
    plan_then_apply(host, assets, args, out, &path, &config, &mut ask)
}

/// Shows the plan of every site in the file; then applies, asks, or says
/// what to run.
fn plan_then_apply(
    host: &Host,
    assets: &Assets,
    args: &InitArgs,
    out: &Output,
    path: &Path,
    config: &Config,
    ask: &mut dyn ask::Ask,
) -> Result<i32> {
    let apply_command = if path == Path::new(crate::paths::SITE_FILE) {
        "edgeup apply".to_string()
    } else {
        format!("edgeup apply -f {}", path.display())
    };
    // File diffs only with -v: the plan's step list is what a first-timer reads.
    let diffs = out.verbosity == crate::report::Verbosity::Verbose;
    let mut reporter = crate::report::for_output(false, out.verbosity, diffs);
    let target = Desired {
        config: config.clone(),
        record_text: None,
    };
    let recap = run::converge(
        host,
        assets,
        &target,
        &args.playbook,
        Run::plan(),
        reporter.as_mut(),
    )?;
    if recap.failed > 0 {
        crate::outln!("The plan found a problem (above). Fix it, then run: {apply_command}");
        return Ok(exit::FAILED);
    }
    if recap.changed == 0 {
        crate::outln!(
            "Nothing to change: this host already serves {}.",
            if config.sites.len() == 1 {
                "the site"
            } else {
                "these sites"
            }
        );
        return Ok(exit::OK);
    }
    if !args.apply {
        let systemd = probes::systemd(host);
        if !probes::is_root() {
            crate::outln!("To apply it: sudo {apply_command}");
            return Ok(exit::OK);
        }
        if !systemd.running {
            crate::outln!(
                "apply needs systemd, which is not running here (PID 1 is '{}'). Run \
                 `{apply_command}` on a host booted with systemd.",
                systemd.pid1
            );
            return Ok(exit::OK);
        }
        let question = format!("Apply these {} change(s) now?", recap.changed);
        if !ask.confirm(&question, false)? {
            crate::outln!("Nothing applied. When ready: {apply_command}");
            return Ok(exit::OK);
        }
    }
    let apply = ApplyArgs {
        converge: ConvergeArgs {
            site: SiteArgs {
                site_file: Some(path.to_path_buf()),
                ..SiteArgs::default()
            },
            playbook: args.playbook.clone(),
            replace: false,
        },
        yes: true,
        diff: false,
    };
    converge::apply(host, assets, &apply, out)
}

/// Defaults and explanations from the host (read-only, no root needed).
fn hints(host: &Host, assets: &Assets) -> Hints {
    let profile = OsRelease::read(host.root()).ok().and_then(|os| {
        distro::load_all(assets)
            .and_then(|all| distro::select(&all, &os))
            .ok()
    });
    Hints {
        firewall: probes::firewall(host)
            .map(|f| f.active)
            .unwrap_or_else(|_| "none".into()),
        certbot_available: profile.as_ref().is_none_or(|d| d.certbot_available),
        hostname: hostname(host),
        app: fields::listening_app(),
    }
}

/// The host's name when it is a usable site domain (an FQDN the site accepts).
fn hostname(host: &Host) -> Option<String> {
    let name = std::fs::read_to_string(host.path("/etc/hostname")).ok()?;
    let name = name.trim().to_ascii_lowercase();
    if !name.contains('.') {
        return None;
    }
    let mut candidate = questions::blank_site();
    candidate.domain = name.clone();
    fields::check(&candidate, "domain", true).ok()?;
    Some(name)
}
