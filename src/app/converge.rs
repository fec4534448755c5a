//! `edgeup plan` and `edgeup apply`: validate everything, then walk the playbook.

use crate::assets::Assets;
use crate::cli::{ApplyArgs, ConvergeArgs};
use crate::distro::{self, Distro};
use crate::engine::{self, Engine, Mode, Recap};
use crate::exit;
use crate::facts::{Facts, os_release::OsRelease};
use crate::host::Host;
use crate::playbook;
use crate::render::{FactVars, Vars};
use crate::report::{Event, Reporter, Verbosity};
use crate::site::{AcmeClient, Config, Site};
use anyhow::Result;
use std::io::IsTerminal;

use crate::paths::STATE_DIR;

pub struct Output {
    pub json: bool,
    pub verbosity: Verbosity,
}

/// What to converge the host to: the configuration, and the text to record
/// for it (a user's file or an edited record, comments and all; None: edgeup
/// writes the configuration out itself).
pub struct Desired {
    pub config: Config,
    pub record_text: Option<String>,
}

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
    let prepared = prepare(host, assets, &target, &args.playbook, Run::plan())?;
    let mut reporter = crate::report::for_output(out.json, out.verbosity, true);
    let recap = walk(host, assets, prepared, reporter.as_mut(), Run::plan())?;
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
/// and the user asked; then the walk, and the post-apply summary.
pub fn apply_target(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    how: &ApplyHow,
    out: &Output,
) -> Result<i32> {
    let prepared = prepare(host, assets, target, how.playbook, Run::apply())?;
    refuse_without_systemd(&prepared)?;
    let _lock = host.lock(STATE_DIR)?;
    if interactive(out) && !how.yes {
        // The preview shows what changes per step (each names its site);
        // whole diffs only with --diff or -v.
        let diffs = how.diff || out.verbosity == Verbosity::Verbose;
        let mut preview = crate::report::for_output(false, out.verbosity, diffs);
        let again = prepare(host, assets, target, how.playbook, Run::apply())?;
        let recap = walk(host, assets, again, preview.as_mut(), Run::plan())?;
        if recap.changed == 0 && recap.failed == 0 {
            return Ok(exit::OK);
        }
        if !confirm(&format!("Apply {} change(s)?", recap.changed))? {
            eprintln!("nothing changed");
            return Ok(exit::OK);
        }
    }
    let mut reporter = crate::report::for_output(out.json, out.verbosity, how.diff);
    let recap = walk(host, assets, prepared, reporter.as_mut(), Run::apply())?;
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

/// `plan` or `apply` of a validated configuration on any host, reported to
/// `reporter`: the same preparation, systemd refusal, run lock and walk as
/// the CLI, without the root check, the interactive preview and the exit
/// code. Transcript tests run it on a fixture root with a scripted runner.
pub fn converge(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    playbook_name: &str,
    run: Run,
    reporter: &mut dyn Reporter,
) -> Result<Recap> {
    let prepared = prepare(host, assets, target, playbook_name, run)?;
    if run.mode == Mode::Plan {
        return walk(host, assets, prepared, reporter, run);
    }
    refuse_without_systemd(&prepared)?;
    let _lock = host.lock(STATE_DIR)?;
    walk(host, assets, prepared, reporter, run)
}

/// How to walk the playbook.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub mode: Mode,
    /// Only steps with this tag (`certificate` for `edgeup renew`).
    pub only_tag: Option<&'static str>,
    /// Only this site's steps (`edgeup renew DOMAIN`).
    pub only_site: Option<&'a str>,
    pub force_renew: bool,
}

impl<'a> Run<'a> {
    pub fn plan() -> Run<'a> {
        Run {
            mode: Mode::Plan,
            only_tag: None,
            only_site: None,
            force_renew: false,
        }
    }

    pub fn apply() -> Run<'a> {
        Run {
            mode: Mode::Apply,
            ..Run::plan()
        }
    }

    pub fn renew(force: bool, only_site: Option<&'a str>) -> Run<'a> {
        Run {
            mode: Mode::Apply,
            only_tag: Some("certificate"),
            only_site,
            force_renew: force,
        }
    }
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

struct Prepared {
    distro: Distro,
    facts: Facts,
    vars: Vars,
    playbook: playbook::Playbook,
    playbook_name: String,
    config: Config,
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

/// Everything that can be known before the first write: profile, facts,
/// host-dependent validation, the sites to retire, rendered playbook.
fn prepare(
    host: &Host,
    assets: &Assets,
    target: &Desired,
    playbook_name: &str,
    run: Run,
) -> Result<Prepared> {
    let config = &target.config;
    let os = OsRelease::read(host.root()).map_err(|e| exit::unsuitable(format!("{e:#}")))?;
    let profiles = distro::load_all(assets)?;
    let distro = distro::select(&profiles, &os).map_err(|e| exit::unsuitable(format!("{e:#}")))?;
    validate_against_host(host, config, &distro)?;
    let facts = Facts::gather(host, Some(&distro))?;
    let mut vars = Vars::new(config, &distro, fact_vars(&facts), &retired(host, config)?)?;
    vars.acme.edgeup_binary = crate::acme::renewal_binary(host).into();
    vars.acme.renewing = run.only_tag.is_some();
    vars.record_text = target.record_text.clone();
    let playbook = playbook::load(assets, playbook_name, &vars)?;
    Ok(Prepared {
        distro,
        facts,
        vars,
        playbook,
        playbook_name: playbook_name.to_string(),
        config: config.clone(),
    })
}

/// Domains the last apply recorded that `config` no longer has.
fn retired(host: &Host, config: &Config) -> Result<Vec<String>> {
    // Without root the record (0600) cannot be read: `plan` then shows no retirement.
    let text = host
        .read_string(crate::paths::SITE_FILE)
        .unwrap_or_default();
    let Some(recorded) = text.as_deref().and_then(Config::from_text) else {
        return Ok(Vec::new());
    };
    Ok(recorded
        .domains()
        .into_iter()
        .filter(|d| config.site(d).is_none())
        .map(str::to_string)
        .collect())
}

/// Checks of the sites that need the host: files they name, what the distro offers.
fn validate_against_host(host: &Host, config: &Config, distro: &Distro) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    for site in &config.sites {
        let mut add = |p: String| {
            if !problems.contains(&p) {
                problems.push(p);
            }
        };
        if let Some(bundle) = &site.acme.ca_bundle {
            match std::fs::read(bundle) {
                Ok(bytes) if crate::pki::parse_bundle(&bytes).is_ok() => {}
                Ok(_) => add(format!(
                    "acme.ca_bundle: \"{}\" holds no PEM certificate; point it at the CA's certificate file",
                    bundle.display()
                )),
                Err(e) => add(format!(
                    "acme.ca_bundle: \"{}\" cannot be read ({e}); give the path of the CA's PEM file",
                    bundle.display()
                )),
            }
        }
        if let Some(dns) = site.acme.dns().filter(|_| site.acme.enabled()) {
            match &dns.provider {
                crate::dns::Provider::Rfc2136 { tsig_key_file, .. } => {
                    secret_file(host, "acme.dns.tsig_key_file", tsig_key_file, &mut add)
                }
                crate::dns::Provider::Exec { command, env_file } => {
                    program("acme.dns.command", command, &mut add);
                    if let Some(env) = env_file {
                        secret_file(host, "acme.dns.env_file", env, &mut add);
                    }
                }
            }
        }
        for target in site.notify.iter().flat_map(|n| &n.targets) {
            if let crate::notify::Target::Command(path) = target {
                program("notify.targets command", path, &mut add);
            }
        }
        if site.acme.enabled()
            && site.acme.client == AcmeClient::Certbot
            && !distro.certbot_available
        {
            add(format!(
                "acme.client: \"certbot\" is not packaged for {}; use acme.client: builtin",
                distro.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(exit::invalid(format!(
        "the site does not fit this host (nothing was changed):\n  - {}",
        problems.join("\n  - ")
    )))
}

/// A file holding a secret, judged as the certificate step will judge it
/// (`dns::check_secret_file`); not judged when this user may not look at it
/// (`plan` without root).
fn secret_file(host: &Host, field: &str, path: &std::path::Path, add: &mut impl FnMut(String)) {
    let Err(e) = crate::dns::check_secret_file(host, &path.to_string_lossy(), field) else {
        return;
    };
    let denied = e
        .root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
    if !denied {
        add(format!("{e:#}"));
    }
}

/// A program edgeup runs (a DNS hook, an alert command): an executable file.
fn program(field: &str, path: &std::path::Path, add: &mut impl FnMut(String)) {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 => add(format!(
            "{field}: \"{shown}\" is not an executable file; chmod +x it or give another path"
        )),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
        Err(e) => add(format!(
            "{field}: \"{shown}\" cannot be run ({e}); install it first"
        )),
    }
}

pub fn fact_vars(facts: &Facts) -> FactVars {
    FactVars {
        selinux: facts.selinux.clone(),
        firewall: facts.firewall.active.clone(),
        systemd: facts.systemd.running,
        ipv6: facts.ipv6,
        haproxy_version: facts.haproxy_version().map(str::to_string),
    }
}

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

fn walk(
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
        force: run.force_renew,
    };
    engine.run(&p.playbook, &mut p.vars, mode)
}
