//! A site that was served before and is no longer in the configuration:
//! its PEM leaves HAProxy's crt directory (moved to edgeup's archive, 0600
//! in a 0700 directory, never deleted: it holds the only copy of the key
//! under the builtin client), its certbot deploy hook goes, and certbot's
//! lineage for it is deleted so certbot's timer stops renewing it.
//! Converged when none of the three is left.

use super::{Ctx, Describe, State, Step};
use crate::host::{Cmd, FileAttrs};
use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetireSite {
    pub domain: String,
    /// The site's PEM in the crt directory.
    pub pem: String,
    /// Where retired PEMs are kept (0700, root).
    pub archive_dir: String,
    pub certbot_hook: String,
    /// certbot's configuration directory (its lineage's renewal config lives there).
    pub certbot_dir: String,
}

impl RetireSite {
    fn renewal_conf(&self) -> String {
        format!("{}/renewal/{}.conf", self.certbot_dir, self.domain)
    }
}

/// What of a retired site is still there.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftovers {
    site: RetireSite,
    pem: bool,
    hook: bool,
    lineage: bool,
}

impl Describe for Leftovers {
    fn lines(&self) -> Vec<String> {
        let site = &self.site;
        [
            self.pem
                .then(|| format!("move {} out of HAProxy into {}", site.pem, site.archive_dir)),
            self.hook
                .then(|| format!("remove certbot deploy hook {}", site.certbot_hook)),
            self.lineage.then(|| {
                format!(
                    "delete certbot's lineage {} (certbot stops renewing it)",
                    site.domain
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl Step for RetireSite {
    type Drift = Leftovers;

    fn check(&self, ctx: &Ctx) -> Result<State<Leftovers>> {
        let left = Leftovers {
            site: self.clone(),
            pem: ctx.host.stat(&self.pem)?.is_some(),
            hook: ctx.host.stat(&self.certbot_hook)?.is_some(),
            lineage: ctx.host.stat(&self.renewal_conf())?.is_some(),
        };
        if !(left.pem || left.hook || left.lineage) {
            return Ok(State::Converged(format!(
                "{} is no longer served",
                self.domain
            )));
        }
        Ok(State::Drift(left))
    }

    fn apply(&self, ctx: &Ctx, left: &Leftovers) -> Result<()> {
        let pem = if left.pem {
            ctx.host.read(&self.pem)?
        } else {
            None
        };
        if let Some(pem) = pem {
            let private = FileAttrs {
                mode: 0o700,
                uid: 0,
                gid: 0,
            };
            ctx.host.ensure_dir(&self.archive_dir, &private)?;
            let archived = format!(
                "{}/{}.pem.{}",
                self.archive_dir,
                self.domain,
                crate::pki::now()
            );
            ctx.host
                .write_atomic(
                    &archived,
                    &pem,
                    &FileAttrs {
                        mode: 0o600,
                        ..private
                    },
                    None,
                )
                .with_context(|| format!("archiving {}", self.pem))?;
            ctx.host.remove_file(&self.pem)?;
        }
        if left.hook {
            ctx.host.remove_file(&self.certbot_hook)?;
        }
        if left.lineage {
            ctx.host.run_ok(
                &Cmd::new("certbot")
                    .args(["delete", "--non-interactive", "--config-dir"])
                    .arg(&self.certbot_dir)
                    .arg("--cert-name")
                    .arg(&self.domain),
            )?;
        }
        Ok(())
    }
}
