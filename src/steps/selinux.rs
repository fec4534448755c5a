//! An SELinux boolean (haproxy_connect_any, so HAProxy may connect to the app
//! port and the ACME responder). Read from selinuxfs, set persistently.

use super::{Ctx, Drift, State, Step};
use crate::host::Cmd;
use anyhow::Result;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelinuxBoolean {
    pub name: String,
    pub value: bool,
}

impl Step for SelinuxBoolean {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        let path = format!("/sys/fs/selinux/booleans/{}", self.name);
        // selinuxfs shows "current pending", e.g. "1 1".
        let current = ctx
            .host
            .read_string(&path)?
            .and_then(|s| s.split_whitespace().next().map(|v| v == "1"));
        match current {
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
