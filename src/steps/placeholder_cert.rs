//! The self-signed placeholder that lets HAProxy start (it refuses an empty
//! or missing crt directory) before a CA-issued certificate exists. It never
//! replaces a valid certificate, and it is staged outside the crt directory
//! because HAProxy loads every file there.

use super::pem_file::PemDrift;
use super::{Ctx, State, Step, pem_file};
use crate::pki;
use anyhow::Result;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderCert {
    /// The combined PEM HAProxy serves, e.g. /etc/haproxy/certs/DOMAIN.pem.
    pub path: String,
    pub domain: String,
    pub owner: String,
    pub group: String,
}

/// Why the PEM content must be (re)generated, if it must.
fn content_problem(pem: Option<&[u8]>, domain: &str) -> Option<String> {
    let Some(pem) = pem else {
        return Some("create a self-signed placeholder (no certificate yet)".into());
    };
    let bundle = match pki::parse_bundle(pem) {
        Ok(b) => b,
        Err(e) => return Some(format!("replace an unreadable PEM ({e:#})")),
    };
    let leaf = bundle.leaf()?;
    let verdict = pki::judge_leaf(leaf, bundle.key_matches(), &[domain.into()], pki::now());
    if !verdict.key_matches {
        return Some(
            "replace: the private key is missing or does not match the certificate".into(),
        );
    }
    if verdict.expired {
        return Some(format!(
            "replace an expired certificate ({}) with a placeholder",
            leaf.subject
        ));
    }
    if verdict.placeholder {
        if verdict.uncovered.is_some() {
            return Some(format!(
                "replace a placeholder made for {}",
                leaf.names.join(", ")
            ));
        }
        if verdict.days_left < pki::PLACEHOLDER_RENEW_DAYS {
            return Some(format!(
                "renew the placeholder ({} days left)",
                verdict.days_left
            ));
        }
    }
    // A CA-issued, unexpired certificate: never overwritten here.
    None
}

impl Step for PlaceholderCert {
    type Drift = PemDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<PemDrift>> {
        let pem = ctx.host.read_no_follow(&self.path)?;
        let problem = content_problem(pem.as_deref(), &self.domain);
        let drift = pem_file::drift(ctx, &self.path, &self.owner, &self.group, problem)?;
        if drift.is_empty() {
            let kind = match pem.as_deref().map(pki::parse_bundle) {
                Some(Ok(b)) if b.leaf().is_some_and(|l| !l.placeholder) => "CA-issued certificate",
                _ => "placeholder certificate",
            };
            return Ok(State::Converged(format!(
                "{kind} in place at {}",
                self.path
            )));
        }
        Ok(State::Drift(drift))
    }

    fn apply(&self, ctx: &Ctx, drift: &PemDrift) -> Result<()> {
        if drift.content.is_none() {
            return pem_file::fix_attrs(ctx, &self.path, &self.owner, &self.group);
        }
        let pem = pki::placeholder_pem(&self.domain)?;
        pem_file::install(ctx, &self.path, &pem, &self.owner, &self.group)
    }
}
