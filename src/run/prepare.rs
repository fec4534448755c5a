//! Everything that can be known before the first write: profile, facts,
//! host-dependent validation, the sites to retire, the rendered playbook.

use super::input::{Desired, Run};
use crate::assets::Assets;
use crate::distro::{self, Distro};
use crate::exit;
use crate::facts::{Facts, os_release::OsRelease};
use crate::host::Host;
use crate::paths::SITE_FILE;
use crate::playbook::{self, Playbook};
use crate::render::{FactVars, Vars};
use crate::site::Config;
use anyhow::Result;

pub(super) struct Prepared {
    pub distro: Distro,
    pub facts: Facts,
    pub vars: Vars,
    pub playbook: Playbook,
    pub playbook_name: String,
    pub config: Config,
}

pub(super) fn prepare(
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
    super::host_checks::validate_against_host(host, config, &distro)?;
    let facts = Facts::gather(host, Some(&distro))?;
    let mut vars = Vars::new(
        config,
        &distro,
        fact_vars(&facts),
        &retired(host, config)?,
        crate::acme::renewal_binary(host),
    )?;
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
    let text = host.read_string(SITE_FILE).unwrap_or_default();
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

fn fact_vars(facts: &Facts) -> FactVars {
    FactVars {
        selinux: facts.selinux.clone(),
        firewall: facts.firewall.active.clone(),
        systemd: facts.systemd.running,
        ipv6: facts.ipv6,
        haproxy_version: facts.haproxy_version().map(str::to_string),
    }
}
