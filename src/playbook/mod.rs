//! Playbooks (`playbooks/*.yaml`): ordered steps and handlers, written as a
//! template over `site`, `distro` and `facts`, rendered and then parsed into
//! typed step specs (unknown keys are errors).

use crate::assets::Assets;
use crate::render::{self, Vars};
use crate::steps::{self, AnyStep, Step};
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

/// Declares `Entry` with one optional field per step kind, and
/// `Entry::kinds`, from one list of `playbook key: spec type` pairs.
macro_rules! step_kinds {
    ($($key:ident: $kind:ty),+ $(,)?) => {
        /// One step or handler: a name, optional condition/notifications/tags,
        /// and exactly one step kind.
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
            $(
                #[serde(default)]
                $key: Option<$kind>,
            )+
            /// Run the handlers notified so far, here (Ansible's `meta:
            /// flush_handlers`): e.g. HAProxy must run the new config before
            /// the CA validates.
            #[serde(default)]
            flush_handlers: Option<FlushHandlers>,
        }

        impl Entry {
            /// The step kinds this entry names (a valid entry names one).
            fn kinds(&self) -> Vec<&dyn AnyStep> {
                [$(self.$key.as_ref().map(|s| s as &dyn AnyStep)),+]
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }
    };
}

// Every step kind, once. A new kind is its module in src/steps/ and one
// line here.
step_kinds! {
    packages: steps::packages::Packages,
    directory: steps::directory::Directory,
    placeholder_cert: steps::placeholder_cert::PlaceholderCert,
    template: steps::template::Template,
    firewall: steps::firewall::Firewall,
    selinux_boolean: steps::selinux::SelinuxBoolean,
    service: steps::service::Service,
    daemon_reload: steps::service::DaemonReload,
    site_record: steps::site_record::SiteRecord,
    acme_certificate: steps::acme_certificate::AcmeCertificate,
    retire_site: steps::retire_site::RetireSite,
    install_self: steps::install_self::InstallSelf,
    alerts: steps::alerts::Alerts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushHandlers {}

impl Entry {
    pub fn step(&self) -> Result<&dyn AnyStep> {
        let kinds = self.kinds();
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
    type Drift = std::convert::Infallible;

    fn check(&self, _ctx: &crate::steps::Ctx) -> Result<crate::steps::State<Self::Drift>> {
        Ok(crate::steps::State::Converged("handlers flushed".into()))
    }

    fn apply(&self, _ctx: &crate::steps::Ctx, never: &Self::Drift) -> Result<()> {
        match *never {}
    }
}
