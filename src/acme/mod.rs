//! Getting and keeping a CA-issued certificate: the builtin ACME client
//! (instant-acme) and its batches (many certificates at once), the certbot
//! client, the HTTP-01 responder, the preflight that proves the challenge
//! path works before the CA is asked, and the renewal policy.

pub mod account;
pub mod ari;
pub mod batch;
pub mod bounded;
pub mod builtin;
pub mod certbot;
pub mod http;
pub mod policy;
pub mod preflight;
pub mod renewal_binary;
pub mod responder;

use crate::distro::Distro;
use crate::site::{AcmeClient, Config, Site};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use renewal_binary::renewal_binary;

/// What playbooks see as `acme`: what the sites' ACME settings add up to.
#[derive(Debug, Clone, Serialize)]
pub struct AcmeVars {
    /// Some site gets its certificate from a CA.
    pub enabled: bool,
    /// Some site uses the builtin client (edgeup-renew.timer renews it).
    pub builtin: bool,
    /// Some site uses certbot (certbot's timer renews it).
    pub certbot: bool,
    /// Where the renewal unit and certbot's deploy hook run edgeup from:
    /// `renewal_binary::renewal_binary` (the packaged /usr/bin/edgeup when
    /// this run is it, else /usr/local/bin/edgeup, where
    /// `steps::install_self` puts this binary).
    pub edgeup_binary: String,
    /// `edgeup renew`: also ask the CA for its renewal window (ARI).
    pub renewing: bool,
    /// The private CA bundle certbot's renewal unit must trust (its timer
    /// runs certbot without edgeup, so REQUESTS_CA_BUNDLE goes into a unit
    /// drop-in); None: the system's trust store. One for every certbot site
    /// (validation refuses two).
    pub certbot_ca_bundle: Option<String>,
    /// The drop-in of certbot's renewal unit that says so.
    pub certbot_dropin: String,
    /// This run's id, recorded with each certificate attempt: the alerts
    /// step announces the attempts of its own run (a start time cannot tell
    /// an earlier run in the same second from this one).
    pub run_id: String,
    /// The host's `notify:` as the file spells it (None: no alerts).
    pub notify: Option<crate::site::RawNotify>,
}

impl AcmeVars {
    pub fn new(config: &Config, edgeup_binary: &str) -> AcmeVars {
        let enabled: Vec<&Site> = config.sites.iter().filter(|s| s.acme.enabled()).collect();
        let certbot_ca_bundle = enabled
            .iter()
            .filter(|s| s.acme.client == AcmeClient::Certbot)
            .find_map(|s| s.acme.ca_bundle.as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        AcmeVars {
            certbot_dropin: certbot_dropin(certbot_ca_bundle.as_deref()),
            certbot_ca_bundle,
            enabled: !enabled.is_empty(),
            builtin: enabled.iter().any(|s| s.acme.client == AcmeClient::Builtin),
            certbot: enabled.iter().any(|s| s.acme.client == AcmeClient::Certbot),
            edgeup_binary: edgeup_binary.into(),
            renewing: false,
            run_id: run_id(),
            notify: config.shared().and_then(|s| s.to_raw().notify),
        }
    }
}

/// Unique per run on this host: the time in nanoseconds and the process.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}", std::process::id())
}

/// The drop-in for certbot's renewal unit. The path is validated to need
/// no quoting (`site::validate`: no whitespace, quotes, `\`, `%` or control
/// characters in acme.ca_bundle), so it is written as is.
fn certbot_dropin(bundle: Option<&str>) -> String {
    match bundle {
        Some(path) => format!(
            "# Written by edgeup: certbot's renewal (started by its timer) trusts the\n\
             # sites' CA (acme.ca_bundle).\n[Service]\nEnvironment=REQUESTS_CA_BUNDLE={path}\n"
        ),
        None => "# Written by edgeup: certbot's renewal uses the system's trust store\n\
                 # (no acme.ca_bundle).\n[Service]\n"
            .to_string(),
    }
}

/// One site's ACME settings as playbooks see them (`sites[i].acme`).
#[derive(Debug, Clone, Serialize)]
pub struct SiteAcme {
    pub enabled: bool,
    pub ca: CaSettings,
    /// Every name on the certificate, the domain first.
    pub domains: Vec<String>,
    /// certbot's deploy hook (path and script).
    pub hook_path: String,
    pub hook: String,
}

impl SiteAcme {
    /// `edgeup_binary`: what certbot's deploy hook runs (`AcmeVars::edgeup_binary`).
    pub fn new(site: &Site, distro: &Distro, edgeup_binary: &str) -> SiteAcme {
        let certbot_dir = &distro.paths.certbot_dir;
        SiteAcme {
            enabled: site.acme.enabled(),
            ca: CaSettings::of(site),
            domains: site.names(),
            hook_path: certbot::hook_path(certbot_dir, &site.domain),
            hook: certbot::deploy_hook(certbot_dir, &site.domain, edgeup_binary),
        }
    }
}

/// How to reach the CA (shared by the account and certificate steps).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaSettings {
    pub client: AcmeClient,
    /// Directory URL.
    pub directory: String,
    /// PEM to trust for the directory's HTTPS (private CAs such as Pebble).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub eab_kid: Option<String>,
    #[serde(default)]
    pub eab_hmac_key: Option<String>,
}

impl CaSettings {
    pub fn of(site: &Site) -> CaSettings {
        CaSettings {
            client: site.acme.client,
            directory: site.acme.directory.url().unwrap_or("off").to_string(),
            ca_bundle: site.acme.ca_bundle.clone(),
            email: site.email.clone(),
            eab_kid: site.acme.eab.as_ref().map(|e| e.kid.clone()),
            eab_hmac_key: site.acme.eab.as_ref().map(|e| e.hmac_key.clone()),
        }
    }
}

/// A short, stable, file-name-safe key for a directory URL
/// (`acme-v02.api.letsencrypt.org-directory`).
pub fn directory_key(url: &str) -> String {
    let trimmed = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    trimmed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs an async ACME operation on a small current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}

#[cfg(test)]
mod tests {
    #[test]
    fn directory_keys_are_file_names() {
        assert_eq!(
            super::directory_key("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org-directory"
        );
        assert_eq!(
            super::directory_key("https://127.0.0.1:14000/dir"),
            "127.0.0.1-14000-dir"
        );
    }
}
