//! The walk: the run's opening events and warnings, then the engine.

use super::input::Run;
use super::prepare::Prepared;
use crate::assets::Assets;
use crate::engine::{Engine, Mode, Recap};
use crate::host::Host;
use crate::paths::STATE_DIR;
use crate::render::Vars;
use crate::report::{Event, Reporter};
use crate::site::Site;
use anyhow::Result;

/// Reports the start and the warnings, then walks the playbook; `apply`
/// keeps the ledger of what it changes.
pub(super) fn walk(
    host: &Host,
    assets: &Assets,
    mut p: Prepared,
    reporter: &mut dyn Reporter,
    run: Run,
) -> Result<Recap> {
    let mode = run.mode;
    let command = match (mode, run.only_tag) {
        (Mode::Plan, _) => "plan",
        (Mode::Apply, Some(_)) => "renew",
        (Mode::Apply, None) => "apply",
    };
    reporter.event(&Event::Start {
        command: command.into(),
        playbook: p.playbook_name.clone(),
        distro: format!("{} ({})", p.facts.os.pretty_name_or_id(), p.distro.name),
        steps: p.playbook.steps.len(),
    });
    warn_about(&p, reporter, mode);
    let distro = p.distro.clone();
    let refresh = move |host: &Host, vars: &mut Vars| -> Result<()> {
        let installed = host.installed_packages(distro.package_manager, &distro.packages)?;
        vars.set_haproxy_version(installed.get("haproxy").cloned());
        Ok(())
    };
    if mode == Mode::Apply {
        host.keep_ledger(STATE_DIR)?;
    }
    let mut engine = Engine {
        host,
        assets,
        state_dir: STATE_DIR,
        reporter,
        refresh: &refresh,
        only_tag: run.only_tag,
        only_site: run.only_site,
        renewal: run.renewal,
    };
    engine.run(&p.playbook, &mut p.vars, mode)
}

/// What the run warns about before its first step.
fn warn_about(p: &Prepared, reporter: &mut dyn Reporter, mode: Mode) {
    for site in &p.config.sites {
        if let Some(prefix) = site.path_prefix() {
            reporter.event(&Event::Warning {
                message: format!(
                    "{}: routing: path {prefix}: Open WebUI has no sub-path support (its pages call \
                     /api, /ws/socket.io and /_app at the root), so it will not work under {prefix}; \
                     use routing: subdomain for Open WebUI",
                    site.domain
                ),
            });
        }
        if let Some(example) = example_names(site) {
            reporter.event(&Event::Warning {
                message: format!(
                    "{example} is an IANA example domain: Let's Encrypt refuses to register it as a \
                     contact or to issue for it; use your real domain and mail address before `apply`"
                ),
            });
        }
    }
    for message in crate::site::config_warnings(&p.config) {
        reporter.event(&Event::Warning { message });
    }
    if mode == Mode::Plan && !p.facts.systemd.running {
        reporter.event(&Event::Warning {
            message: format!(
                "systemd is not running (PID 1 is '{}'): service steps cannot be checked, and \
                 `edgeup apply` will refuse to run on this host",
                p.facts.systemd.pid1
            ),
        });
    }
}

/// The domain, an alias or the contact address when it is under
/// example.com/.net/.org and a Let's Encrypt directory is chosen.
fn example_names(site: &Site) -> Option<String> {
    if !site.acme.directory.is_letsencrypt() {
        return None;
    }
    let is_example = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["example.com", "example.net", "example.org"]
            .iter()
            .any(|d| name == *d || name.ends_with(&format!(".{d}")))
    };
    let email_domain = site
        .email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_string());
    site.names()
        .into_iter()
        .chain(email_domain)
        .find(|name| is_example(name))
}
