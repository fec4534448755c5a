//! An SELinux boolean (haproxy_connect_any, so HAProxy may connect to the app
//! port and the ACME responder). Read from selinuxfs, set persistently.

use super::{Ctx, Describe, State, Step};
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

/// The boolean is the other value: it is set persistently to the wanted one.
#[derive(Debug, Clone, PartialEq)]
pub struct Flip {
    name: String,
    to: bool,
}

impl Describe for Flip {
    fn lines(&self) -> Vec<String> {
        vec![format!(
            "setsebool -P {} {} (now {})",
            self.name,
            on_off(self.to),
            on_off(!self.to)
        )]
    }
}

impl Step for SelinuxBoolean {
    type Drift = Flip;

    fn check(&self, ctx: &Ctx) -> Result<State<Flip>> {
        match current(ctx.host, &self.name)? {
            Some(v) if v == self.value => {
                Ok(State::Converged(format!("{} is {}", self.name, on_off(v))))
            }
            Some(_) => Ok(State::Drift(Flip {
                name: self.name.clone(),
                to: self.value,
            })),
            None => anyhow::bail!(
                "SELinux boolean {} does not exist on this host (is the SELinux policy installed?)",
                self.name
            ),
        }
    }

    fn apply(&self, ctx: &Ctx, drift: &Flip) -> Result<()> {
        ctx.host.note(crate::ledger::Entry::SelinuxBoolean {
            name: drift.name.clone(),
            value: !drift.to,
        })?;
        ctx.host.run_ok(
            &Cmd::new("setsebool")
                .arg("-P")
                .arg(&drift.name)
                .arg(on_off(drift.to)),
        )?;
        Ok(())
    }
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}
