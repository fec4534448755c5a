//! Getting and keeping a CA-issued certificate: the builtin ACME client
//! (instant-acme), the certbot client, the HTTP-01 responder, the preflight
//! that proves the challenge path works before the CA is asked, and the
//! renewal policy.

pub mod account;
pub mod builtin;
pub mod certbot;
pub mod policy;
pub mod preflight;
pub mod responder;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How to reach the CA (shared by the account and certificate steps).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaSettings {
    /// `builtin` or `certbot`.
    pub client: String,
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
