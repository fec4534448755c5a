//! systemd units as `systemctl show` describes them: the one reading of a
//! unit's state, for the service step, `status` and `uninstall`.

use super::{Cmd, Host};
use crate::facts::probes;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

/// `systemctl show UNIT --property=...`, as a map.
pub fn show(host: &Host, unit: &str, properties: &[&str]) -> Result<BTreeMap<String, String>> {
    let out = host.run_ok(&Cmd::new("systemctl").args([
        "show",
        unit,
        &format!("--property={}", properties.join(",")),
    ]))?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A unit file state in which the unit starts at boot (or with what pulls
/// it in: `static`, `alias`).
pub fn is_enabled(unit_file_state: &str) -> bool {
    matches!(
        unit_file_state,
        "enabled" | "enabled-runtime" | "static" | "alias"
    )
}

/// A unit as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// `loaded`, or `not-found` before its package is installed.
    pub load_state: String,
    /// `enabled`, `disabled`, `static`...
    pub unit_file_state: String,
    /// `active`, `inactive`, `failed`, `reloading`...
    pub active_state: String,
    pub main_pid: Option<u32>,
}

impl Unit {
    pub fn read(host: &Host, name: &str) -> Result<Unit> {
        let props = show(
            host,
            name,
            &["LoadState", "UnitFileState", "ActiveState", "MainPID"],
        )?;
        let get = |k: &str| props.get(k).cloned().unwrap_or_default();
        Ok(Unit {
            load_state: get("LoadState"),
            unit_file_state: get("UnitFileState"),
            active_state: get("ActiveState"),
            main_pid: get("MainPID").parse().ok().filter(|p| *p > 0),
        })
    }

    /// systemd knows the unit (its package is installed).
    pub fn loaded(&self) -> bool {
        self.load_state != "not-found"
    }

    pub fn enabled(&self) -> bool {
        is_enabled(&self.unit_file_state)
    }

    pub fn active(&self) -> bool {
        self.active_state == "active"
    }
}

/// The message every systemd-needing action gives when systemd is not PID 1.
pub fn require_running(host: &Host, what: &str) -> Result<()> {
    let systemd = probes::systemd(host);
    if !systemd.running {
        bail!(
            "systemd is not running on this host (PID 1 is '{}'), so {what} is impossible. \
             edgeup needs a host booted with systemd: a VM, bare metal, or a container booted \
             with its init (e.g. `systemd-nspawn -b`). Use `edgeup plan` to inspect this host.",
            systemd.pid1
        );
    }
    Ok(())
}
