//! The ACME account: registered once per directory (builtin: credentials
//! under /etc/edgeup/acme; certbot: its own account store).

use super::{Ctx, Drift, State, Step};
use crate::acme::{CaSettings, account, certbot};
use anyhow::Result;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcmeAccount {
    pub ca: CaSettings,
    /// certbot's configuration directory (/etc/letsencrypt).
    pub letsencrypt: String,
}

impl Step for AcmeAccount {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        let registered = match self.ca.client.as_str() {
            "certbot" => certbot::has_account(ctx.host, &self.letsencrypt, &self.ca.directory),
            // A corrupt credentials file is an error here, never "not registered".
            _ => account::load(ctx.host, &self.ca)?.is_some(),
        };
        if registered {
            Ok(State::Converged(format!(
                "{} account registered with {}",
                self.ca.client, self.ca.directory
            )))
        } else {
            Ok(State::Drift(Drift::one(format!(
                "register a {} account with {}",
                self.ca.client, self.ca.directory
            ))))
        }
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        match self.ca.client.as_str() {
            "certbot" => certbot::register(ctx.host, &self.ca, &self.letsencrypt),
            _ => account::register(ctx.host, &self.ca),
        }
    }
}
