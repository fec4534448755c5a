//! `edgeup uninstall`: shows what it would undo, asks on a terminal (`--yes`
//! skips; without a terminal `--yes` is required), then undoes it under the
//! run lock. The work is src/uninstall; this file is the command's face.

use super::converge::{self, Output};
use crate::assets::Assets;
use crate::cli::UninstallArgs;
use crate::exit;
use crate::host::Host;
use crate::paths::STATE_DIR;
use crate::report::{Event, Line};
use crate::uninstall::{self, Action, Layout, Options};
use anyhow::Result;

pub fn run(host: &Host, assets: &Assets, args: &UninstallArgs, out: &Output) -> Result<i32> {
    converge::require_root("uninstall")?;
    let layout = layout(host, assets)?;
    let opts = Options {
        purge: args.purge,
        remove_packages: args.remove_packages,
        force: args.force,
    };
    // Locking creates the state dir: only where there is one already.
    let _lock = match host.stat(STATE_DIR)? {
        Some(_) => Some(host.lock(STATE_DIR)?),
        None => None,
    };
    let plan = uninstall::plan(host, &layout, &opts)?;
    for note in &plan.notes {
        say(out, "note", note);
    }
    if plan.actions.is_empty() {
        say(
            out,
            "nothing",
            "nothing to undo: no trace of edgeup on this host (nothing was changed)",
        );
        return Ok(exit::OK);
    }
    for action in &plan.actions {
        say(out, "planned", &action.describe(&opts));
    }
    if args.dry_run {
        return Ok(exit::CHANGES_PENDING);
    }
    let systemd = crate::facts::probes::systemd(host);
    if !systemd.running && plan.actions.iter().any(needs_systemd) {
        return Err(exit::unsuitable(format!(
            "systemd is not running on this host (PID 1 is '{}'), and undoing edgeup's units \
             needs it. Nothing was changed.",
            systemd.pid1
        )));
    }
    if !args.yes {
        if !converge::interactive(out) {
            return Err(exit::invalid(
                "uninstall changes the host: without a terminal to ask on, add --yes \
                 (nothing was changed)",
            ));
        }
        if !converge::confirm("Undo all of this?")? {
            say(out, "nothing", "nothing was changed");
            return Ok(exit::OK);
        }
    }
    let outcome = uninstall::undo(host, &layout, &opts, &plan, |action| {
        say(out, "done", &action.describe(&opts));
    })?;
    if let Some(archive) = outcome.archive {
        say(
            out,
            "archive",
            &format!(
                "certificates, keys, the ACME account (if any) and the site file are in {archive} (0700, files 0600)"
            ),
        );
    }
    say(out, "done", "edgeup is uninstalled from this host");
    Ok(exit::OK)
}

fn needs_systemd(action: &Action) -> bool {
    matches!(
        action,
        Action::StopUnit { .. }
            | Action::RestoreConfig { .. }
            | Action::DaemonReload
            | Action::UnitState { .. }
    )
}

fn say(out: &Output, event: &str, message: &str) {
    if out.json {
        crate::report::json::write(&Line::new(Event::Uninstall {
            message: message.to_string(),
            status: event.to_string(),
        }));
    } else if event == "planned" {
        crate::outln!("  - {message}");
    } else if event == "nothing" {
        crate::outln!("{message}");
    } else {
        crate::outln!("{event}: {message}");
    }
}

fn layout(host: &Host, assets: &Assets) -> Result<Layout> {
    let os = crate::facts::os_release::OsRelease::read(host.root())
        .map_err(|e| exit::unsuitable(format!("{e:#}")))?;
    let profiles = crate::distro::load_all(assets)?;
    let distro =
        crate::distro::select(&profiles, &os).map_err(|e| exit::unsuitable(format!("{e:#}")))?;
    Ok(Layout {
        haproxy_config: distro.paths.haproxy_config.clone(),
        haproxy_unit: distro.units.haproxy.clone(),
        certs_dir: distro.paths.certs_dir.clone(),
        certbot_dir: distro.paths.certbot_dir.clone(),
        state_dir: STATE_DIR.to_string(),
    })
}
