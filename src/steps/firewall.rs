//! Ports 80 and 443 open in whichever firewall front-end is active
//! (firewalld or ufw); nothing to do when none is.

use super::{Ctx, Describe, State, Step};
use crate::facts::probes;
use crate::host::Cmd;
use anyhow::{Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// `auto`, `firewalld`, `ufw` or `none`.
    pub backend: String,
    /// firewalld service names (http, https).
    pub services: Vec<String>,
    /// TCP ports for ufw (80, 443).
    pub ports: Vec<u16>,
}

impl Firewall {
    /// The front-end to manage, checked against what is actually running.
    fn backend(&self, ctx: &Ctx) -> Result<String> {
        let found = probes::firewall(ctx.host)?;
        match self.backend.as_str() {
            "auto" => Ok(found.active),
            "none" => Ok("none".into()),
            wanted if wanted == found.active => Ok(found.active),
            wanted => bail!(
                "firewall: '{wanted}' was requested but the active firewall is '{}'; \
                 start {wanted} or set firewall: auto",
                found.active
            ),
        }
    }

    /// `firewall-cmd --permanent --list-services`.
    fn permanent_services(ctx: &Ctx) -> Result<String> {
        Ok(ctx
            .host
            .run_ok(&Cmd::new("firewall-cmd").args(["--permanent", "--list-services"]))?
            .stdout)
    }

    fn firewalld_missing(&self, ctx: &Ctx) -> Result<Vec<Closed>> {
        let permanent = Self::permanent_services(ctx)?;
        let runtime = ctx
            .host
            .run_ok(&Cmd::new("firewall-cmd").arg("--list-services"))?;
        let has = |list: &str, s: &str| list.split_whitespace().any(|x| x == s);
        Ok(self
            .services
            .iter()
            .filter_map(|s| {
                let permanent = !has(&permanent, s);
                (permanent || !has(&runtime.stdout, s)).then(|| Closed {
                    service: s.clone(),
                    permanent,
                })
            })
            .collect())
    }

    fn ufw_missing(&self, ctx: &Ctx) -> Result<Vec<u16>> {
        let rules = ctx
            .host
            .read_string("/etc/ufw/user.rules")?
            .unwrap_or_default();
        Ok(self
            .ports
            .iter()
            .copied()
            .filter(|p| !ufw_allows(&rules, *p))
            .collect())
    }
}

/// ufw records `ufw allow 80/tcp` as a tuple comment in user.rules.
pub fn ufw_allows(rules: &str, port: u16) -> bool {
    let tuple = format!("### tuple ### allow tcp {port} 0.0.0.0/0 any 0.0.0.0/0 in");
    let tuple_any = format!("### tuple ### allow any {port} 0.0.0.0/0 any 0.0.0.0/0 in");
    rules
        .lines()
        .any(|l| l.trim() == tuple || l.trim() == tuple_any)
}

/// A firewalld service not allowed: in the permanent configuration (and
/// so, as far as edgeup knows, before it), or only at runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    service: String,
    permanent: bool,
}

/// What the active front-end does not allow yet.
#[derive(Debug, Clone, PartialEq)]
pub enum FirewallDrift {
    Firewalld(Vec<Closed>),
    Ufw(Vec<u16>),
}

impl Describe for FirewallDrift {
    fn lines(&self) -> Vec<String> {
        match self {
            FirewallDrift::Firewalld(closed) => closed
                .iter()
                .map(|c| {
                    let scope = if c.permanent { "permanent" } else { "runtime" };
                    format!("firewalld: allow service {} ({scope})", c.service)
                })
                .collect(),
            FirewallDrift::Ufw(ports) => ports
                .iter()
                .map(|p| format!("ufw: allow {p}/tcp"))
                .collect(),
        }
    }
}

impl Step for Firewall {
    type Drift = FirewallDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<FirewallDrift>> {
        match self.backend(ctx)?.as_str() {
            "firewalld" => {
                let missing = self.firewalld_missing(ctx)?;
                if missing.is_empty() {
                    Ok(State::Converged("firewalld allows http, https".into()))
                } else {
                    Ok(State::Drift(FirewallDrift::Firewalld(missing)))
                }
            }
            "ufw" => {
                let missing = self.ufw_missing(ctx)?;
                if missing.is_empty() {
                    Ok(State::Converged("ufw allows 80/tcp, 443/tcp".into()))
                } else {
                    Ok(State::Drift(FirewallDrift::Ufw(missing)))
                }
            }
            _ => Ok(State::Converged(
                "no active firewall (nothing to open)".into(),
            )),
        }
    }

    fn apply(&self, ctx: &Ctx, drift: &FirewallDrift) -> Result<()> {
        match drift {
            FirewallDrift::Firewalld(closed) => {
                for c in closed.iter().filter(|c| c.permanent) {
                    ctx.host.note(crate::ledger::Entry::Firewalld {
                        service: c.service.clone(),
                    })?;
                }
                // Runtime and permanent separately: `--reload` would throw away
                // runtime rules other tools or admins added.
                let services: Vec<String> = self
                    .services
                    .iter()
                    .map(|s| format!("--add-service={s}"))
                    .collect();
                ctx.host.run_ok(
                    &Cmd::new("firewall-cmd")
                        .arg("--permanent")
                        .args(services.clone()),
                )?;
                ctx.host.run_ok(&Cmd::new("firewall-cmd").args(services))?;
            }
            FirewallDrift::Ufw(ports) => {
                for &port in ports {
                    ctx.host.note(crate::ledger::Entry::Ufw { port })?;
                    ctx.host
                        .run_ok(&Cmd::new("ufw").arg("allow").arg(format!("{port}/tcp")))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ufw_tuple_lines() {
        let rules = "### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 80 -j ACCEPT\n";
        assert!(super::ufw_allows(rules, 80));
        assert!(!super::ufw_allows(rules, 443));
    }
}
