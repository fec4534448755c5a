//! Ports 80 and 443 open in whichever firewall front-end is active
//! (firewalld or ufw); nothing to do when none is.

use super::{Ctx, Drift, State, Step};
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

    fn firewalld_missing(&self, ctx: &Ctx) -> Result<Vec<String>> {
        let permanent = Self::permanent_services(ctx)?;
        let runtime = ctx
            .host
            .run_ok(&Cmd::new("firewall-cmd").arg("--list-services"))?;
        let has = |list: &str, s: &str| list.split_whitespace().any(|x| x == s);
        let mut missing = Vec::new();
        for s in &self.services {
            if !has(&permanent, s) {
                missing.push(format!("firewalld: allow service {s} (permanent)"));
            } else if !has(&runtime.stdout, s) {
                missing.push(format!("firewalld: allow service {s} (runtime)"));
            }
        }
        Ok(missing)
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

impl Step for Firewall {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        match self.backend(ctx)?.as_str() {
            "firewalld" => {
                let missing = self.firewalld_missing(ctx)?;
                if missing.is_empty() {
                    Ok(State::Converged("firewalld allows http, https".into()))
                } else {
                    Ok(State::Drift(Drift::new(missing)))
                }
            }
            "ufw" => {
                let missing = self.ufw_missing(ctx)?;
                if missing.is_empty() {
                    Ok(State::Converged("ufw allows 80/tcp, 443/tcp".into()))
                } else {
                    Ok(State::Drift(Drift::new(
                        missing
                            .iter()
                            .map(|p| format!("ufw: allow {p}/tcp"))
                            .collect(),
                    )))
                }
            }
            _ => Ok(State::Converged(
                "no active firewall (nothing to open)".into(),
            )),
        }
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        match self.backend(ctx)?.as_str() {
            "firewalld" => {
                let permanent = Self::permanent_services(ctx)?;
                for service in &self.services {
                    if !permanent.split_whitespace().any(|s| s == service) {
                        ctx.host.note(crate::ledger::Entry::Firewalld {
                            service: service.clone(),
                        })?;
                    }
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
            "ufw" => {
                for port in self.ufw_missing(ctx)? {
                    ctx.host.note(crate::ledger::Entry::Ufw { port })?;
                    ctx.host
                        .run_ok(&Cmd::new("ufw").arg("allow").arg(format!("{port}/tcp")))?;
                }
            }
            _ => {}
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
