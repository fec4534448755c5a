//! A systemd unit: enabled, started, and (as a handler) reloaded or restarted.

use super::{Ctx, Describe, State, Step};
use crate::host::systemd::{self, Unit};
use crate::host::{Cmd, Host};
use anyhow::{Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub state: ServiceState,
    /// A reload counts only once the unit's main process has a child it did
    /// not have before. HAProxy's master forks new workers for a
    /// configuration that starts, and keeps the old workers (with
    /// `systemctl reload` succeeding) when it does not, e.g. when a listen
    /// address is taken: without this check such a reload looks done while
    /// the previous configuration still serves.
    #[serde(default)]
    pub new_workers_on_reload: bool,
}

/// How long a reload may take to fork its new workers (HAProxy loading
/// hundreds of certificates on a busy host takes seconds).
const NEW_WORKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// What a service step makes of its unit. Reloaded and restarted act every
/// time they run, so they belong in handlers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    #[default]
    Started,
    Stopped,
    Reloaded,
    Restarted,
}

impl ServiceState {
    /// The action's word, for messages.
    fn verb(self) -> &'static str {
        match self {
            ServiceState::Started => "start",
            ServiceState::Stopped => "stop",
            ServiceState::Reloaded => "reload",
            ServiceState::Restarted => "restart",
        }
    }

    /// The state's own word (as the playbook spells it).
    fn word(self) -> &'static str {
        match self {
            ServiceState::Started => "started",
            ServiceState::Stopped => "stopped",
            ServiceState::Reloaded => "reloaded",
            ServiceState::Restarted => "restarted",
        }
    }
}

/// A notify-type unit (HAProxy's) passes through `reloading`/`activating`
/// right after the job returns: wait a bounded time for `active`.
fn wait_active(host: &Host, unit: &str, action: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let now = Unit::read(host, unit)?;
        let state = now.active_state.as_str();
        match state {
            "active" => return Ok(()),
            "reloading" | "activating" if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
            _ => bail!(
                "{unit} is not active after {action} (it is {state}); see `journalctl -u {unit}`"
            ),
        }
    }
}

/// The main process and its children, when the kernel shows them
/// (`/proc/PID/task/PID/children`); None when it cannot be known.
fn children(host: &Host, unit: &Unit) -> Option<(u32, Vec<u32>)> {
    let pid = unit.main_pid?;
    let text = host
        .read_string(&format!("/proc/{pid}/task/{pid}/children"))
        .ok()
        .flatten()?;
    let children = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    Some((pid, children))
}

/// Waits (bounded) for a process the unit did not have before the reload:
/// a new child of the main process, or a new main process.
fn wait_new_worker(host: &Host, unit: &str, before: &(u32, Vec<u32>)) -> Result<()> {
    let deadline = std::time::Instant::now() + NEW_WORKER_TIMEOUT;
    loop {
        match children(host, &Unit::read(host, unit)?) {
            None => return Ok(()),
            Some((pid, _)) if pid != before.0 => return Ok(()),
            Some((_, now)) if now.iter().any(|c| !before.1.contains(c)) => return Ok(()),
            Some(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Some(_) => bail!(
                "{unit} kept its previous processes after the reload: the new configuration did \
                 not start (HAProxy keeps serving the old one when, e.g., a listen address is \
                 taken); see `journalctl -u {unit}`"
            ),
        }
    }
}

/// What a service step does to its unit: enable or disable it, and act on
/// its state (start, stop; a reload or restart always acts).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDrift {
    name: String,
    /// The unit as check found it.
    unit: Unit,
    /// Some(true): enable; Some(false): disable.
    enable: Option<bool>,
    act: Option<ServiceState>,
}

impl Describe for ServiceDrift {
    fn lines(&self) -> Vec<String> {
        let name = &self.name;
        let missing = (!self.unit.loaded())
            .then(|| format!("{name} is not installed yet (its package provides it)"));
        let enable = self.enable.map(|on| {
            let verb = if on { "enable" } else { "disable" };
            format!("{verb} {name}")
        });
        let act = self.act.map(|state| format!("{} {name}", state.verb()));
        [missing, enable, act].into_iter().flatten().collect()
    }
}

impl Step for Service {
    type Drift = ServiceDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<ServiceDrift>> {
        systemd::require_running(ctx.host, &format!("managing {}", self.name))?;
        // Before the packages step has run (plan on a fresh host) the unit
        // does not exist yet: that is drift; apply fails if it still is.
        let unit = Unit::read(ctx.host, &self.name)?;
        let enable = self.enabled.filter(|want| *want != unit.enabled());
        let acts = match self.state {
            ServiceState::Started => !unit.active(),
            ServiceState::Stopped => unit.active(),
            ServiceState::Reloaded | ServiceState::Restarted => true,
        };
        if unit.loaded() && enable.is_none() && !acts {
            return Ok(State::Converged(format!(
                "{} {} and {}",
                self.name, unit.unit_file_state, unit.active_state
            )));
        }
        Ok(State::Drift(ServiceDrift {
            name: self.name.clone(),
            unit,
            enable,
            act: acts.then_some(self.state),
        }))
    }

    fn apply(&self, ctx: &Ctx, drift: &ServiceDrift) -> Result<()> {
        let unit = &drift.unit;
        let (enabled, active) = (unit.enabled(), unit.active());
        if !unit.loaded() {
            bail!("systemd unit {} does not exist on this host", self.name);
        }
        let systemctl = |verb: &str| {
            ctx.host
                .run_ok(&Cmd::new("systemctl").arg(verb).arg(&self.name))
                .map(|_| ())
        };
        let toggles = drift.enable.is_some()
            || matches!(
                (drift.act, active),
                (Some(ServiceState::Started | ServiceState::Stopped), _)
                    | (Some(ServiceState::Reloaded), false)
            );
        if toggles {
            ctx.host.note(crate::ledger::Entry::Unit {
                name: self.name.clone(),
                enabled,
                active,
            })?;
        }
        match drift.enable {
            Some(true) => systemctl("enable")?,
            Some(false) => systemctl("disable")?,
            None => {}
        }
        // The processes before a reload, for the new-worker check after it.
        let mut before_reload = None;
        match drift.act {
            Some(ServiceState::Started) => systemctl("start")?,
            Some(ServiceState::Stopped) => systemctl("stop")?,
            // Reload keeps connections; a stopped unit has nothing to reload.
            Some(ServiceState::Reloaded) if active => {
                before_reload = self
                    .new_workers_on_reload
                    .then(|| children(ctx.host, unit))
                    .flatten();
                systemctl("reload")?
            }
            Some(ServiceState::Reloaded) => systemctl("start")?,
            Some(ServiceState::Restarted) => systemctl("restart")?,
            None => {}
        }
        if self.state != ServiceState::Stopped {
            wait_active(ctx.host, &self.name, self.state.word())?;
        }
        if let Some(before) = before_reload {
            wait_new_worker(ctx.host, &self.name, &before)?;
        }
        Ok(())
    }

    fn needs_systemd(&self) -> bool {
        true
    }
}

/// `systemctl daemon-reload`, as a handler for changed unit files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonReload {}

/// A daemon-reload always acts (it is a handler).
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadUnits;

impl Describe for ReloadUnits {
    fn lines(&self) -> Vec<String> {
        vec!["systemctl daemon-reload".into()]
    }
}

impl Step for DaemonReload {
    type Drift = ReloadUnits;

    fn check(&self, ctx: &Ctx) -> Result<State<ReloadUnits>> {
        systemd::require_running(ctx.host, "reloading systemd's unit files")?;
        Ok(State::Drift(ReloadUnits))
    }

    fn apply(&self, ctx: &Ctx, _drift: &ReloadUnits) -> Result<()> {
        ctx.host
            .run_ok(&Cmd::new("systemctl").arg("daemon-reload"))?;
        Ok(())
    }

    fn needs_systemd(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{Service, ServiceState};

    #[test]
    fn the_state_is_one_of_four_words_started_by_default() {
        let parse = |yaml: &str| serde_saphyr::from_str::<Service>(yaml);
        assert_eq!(
            parse("name: haproxy.service\n").expect("spec").state,
            ServiceState::Started
        );
        assert_eq!(
            parse("name: haproxy.service\nstate: reloaded\n")
                .expect("spec")
                .state,
            ServiceState::Reloaded
        );
        let e = parse("name: haproxy.service\nstate: reload\n")
            .expect_err("a verb is not a state")
            .to_string();
        assert!(e.contains("reload"), "{e}");
    }
}
