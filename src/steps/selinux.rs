//! An SELinux boolean (haproxy_connect_any, so HAProxy may connect to the app
//! port and the ACME responder). Read from selinuxfs, set persistently.

use super::{Ctx, Drift, State, Step};
use crate::host::{Cmd, Host};
use anyhow::Result;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelinuxBoolean {
    pub name: String,
    pub value: bool,
}

/// The boolean's current value from selinuxfs (None: no such boolean).
pub fn current(host: &Host, name: &str) -> Result<Option<bool>> {
    // selinuxfs shows "current pending", e.g. "1 1".
    Ok(host
        .read_string(&format!("/sys/fs/selinux/booleans/{name}"))?
        .and_then(|s| s.split_whitespace().next().map(|v| v == "1")))
}

impl Step for SelinuxBoolean {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        match current(ctx.host, &self.name)? {
            Some(v) if v == self.value => {
                Ok(State::Converged(format!("{} is {}", self.name, on_off(v))))
            }
            Some(v) => Ok(State::Drift(Drift::one(format!(
                "setsebool -P {} {} (now {})",
                self.name,
                on_off(self.value),
                on_off(v)
            )))),
            None => anyhow::bail!(
                "SELinux boolean {} does not exist on this host (is the SELinux policy installed?)",
                self.name
            ),
        }
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        ctx.host.note(crate::ledger::Entry::SelinuxBoolean {
            name: self.name.clone(),
            value: !self.value,
        })?;
        ctx.host.run_ok(
            &Cmd::new("setsebool")
                .arg("-P")
                .arg(&self.name)
                .arg(on_off(self.value)),
        )?;
        Ok(())
    }
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}
