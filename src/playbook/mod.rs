//! Playbooks (`playbooks/*.yaml`): ordered steps and handlers, written as a
//! template over `site`, `distro` and `facts`, rendered and then parsed into
//! typed step specs (unknown keys are errors).

use crate::assets::Assets;
use crate::render::{self, Vars};
use crate::steps::{
    Step, acme_certificate::AcmeCertificate, alerts::Alerts, directory::Directory,
    firewall::Firewall, install_self::InstallSelf, packages::Packages,
    placeholder_cert::PlaceholderCert, retire_site::RetireSite, selinux::SelinuxBoolean,
    service::DaemonReload, service::Service, site_record::SiteRecord, template::Template,
};
use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub const DEFAULT_PLAYBOOK: &str = "open-webui";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<Entry>,
    #[serde(default)]
    pub handlers: Vec<Entry>,
}

/// One step or handler: a name, optional condition/notifications/tags, and
/// exactly one step kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    /// The site (domain) this step belongs to; None for host-wide steps.
    #[serde(default)]
    pub site: Option<String>,
    /// A minijinja expression; the step is skipped when it is false.
    #[serde(default)]
    pub when: Option<String>,
    /// Handlers to run (once, at the end) when this step changes something.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Labels that select subsets of steps (e.g. `certificate` for `edgeup renew`).
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    packages: Option<Packages>,
    #[serde(default)]
    directory: Option<Directory>,
    #[serde(default)]
    placeholder_cert: Option<PlaceholderCert>,
    #[serde(default)]
    template: Option<Template>,
    #[serde(default)]
    firewall: Option<Firewall>,
    #[serde(default)]
    selinux_boolean: Option<SelinuxBoolean>,
    #[serde(default)]
    service: Option<Service>,
    #[serde(default)]
    daemon_reload: Option<DaemonReload>,
    #[serde(default)]
    site_record: Option<SiteRecord>,
    #[serde(default)]
    acme_certificate: Option<AcmeCertificate>,
    #[serde(default)]
    retire_site: Option<RetireSite>,
    #[serde(default)]
    install_self: Option<InstallSelf>,
    #[serde(default)]
    alerts: Option<Alerts>,
    /// Run the handlers notified so far, here (Ansible's `meta: flush_handlers`):
    /// e.g. HAProxy must run the new config before the CA validates.
    #[serde(default)]
    flush_handlers: Option<FlushHandlers>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushHandlers {}

impl Entry {
    pub fn step(&self) -> Result<&dyn Step> {
        let kinds: Vec<&dyn Step> = [
            self.packages.as_ref().map(|s| s as &dyn Step),
            self.directory.as_ref().map(|s| s as &dyn Step),
            self.placeholder_cert.as_ref().map(|s| s as &dyn Step),
            self.template.as_ref().map(|s| s as &dyn Step),
            self.firewall.as_ref().map(|s| s as &dyn Step),
            self.selinux_boolean.as_ref().map(|s| s as &dyn Step),
            self.service.as_ref().map(|s| s as &dyn Step),
            self.daemon_reload.as_ref().map(|s| s as &dyn Step),
            self.site_record.as_ref().map(|s| s as &dyn Step),
            self.acme_certificate.as_ref().map(|s| s as &dyn Step),
            self.retire_site.as_ref().map(|s| s as &dyn Step),
            self.install_self.as_ref().map(|s| s as &dyn Step),
            self.alerts.as_ref().map(|s| s as &dyn Step),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.as_slice() {
            [one] if !self.is_flush() => Ok(*one),
            [] if self.is_flush() => Ok(&FlushHandlers {}),
            [] => bail!("playbook step '{}' names no step kind", self.name),
            _ => bail!(
                "playbook step '{}' names more than one step kind",
                self.name
            ),
        }
    }

    pub fn is_flush(&self) -> bool {
        self.flush_handlers.is_some()
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    pub fn applies(&self, vars: &Vars) -> Result<bool> {
        match &self.when {
            None => Ok(true),
            Some(expr) => {
                render::eval_condition(expr, vars).with_context(|| format!("step '{}'", self.name))
            }
        }
    }
}

/// Loads `playbooks/<name>.yaml`, renders it with `vars` and parses it.
pub fn load(assets: &Assets, name: &str, vars: &Vars) -> Result<Playbook> {
    let file = format!("playbooks/{name}.yaml");
    let source = assets.get(&file)?;
    let rendered =
        render::render_str(&source, vars).with_context(|| format!("rendering {file}"))?;
    let playbook: Playbook = serde_saphyr::from_str(&rendered)
        .with_context(|| format!("{file} (after rendering) is not a valid playbook"))?;
    for entry in playbook.steps.iter().chain(&playbook.handlers) {
        entry.step().with_context(|| format!("in {file}"))?;
    }
    for entry in &playbook.steps {
        for handler in &entry.notify {
            if !playbook.handlers.iter().any(|h| &h.name == handler) {
                bail!(
                    "{file}: step '{}' notifies '{handler}', which is not a handler",
                    entry.name
                );
            }
        }
    }
    Ok(playbook)
}

/// Never checked or applied: the engine runs pending handlers at its place.
impl Step for FlushHandlers {
    fn check(&self, _ctx: &crate::steps::Ctx) -> Result<crate::steps::State> {
        Ok(crate::steps::State::Converged("handlers flushed".into()))
    }

    fn apply(&self, _ctx: &crate::steps::Ctx, _drift: &crate::steps::Drift) -> Result<()> {
        Ok(())
    }
}
