//! The builtin client's ACME account: registered once per directory, its
//! credentials (which contain the account's private key) stored 0600 under
//! /etc/edgeup/acme/<directory>/account.json. A corrupt file is an error,
//! never a reason to register again silently.

use super::{CaSettings, directory_key};
use crate::host::{FileAttrs, Host};
use crate::site::AcmeClient;
use anyhow::{Context, Result, anyhow};
use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};

use crate::paths::ACCOUNTS_DIR;

pub fn credentials_path(directory: &str) -> String {
    format!("{ACCOUNTS_DIR}/{}/account.json", directory_key(directory))
}

/// Stored credentials: Ok(None) when there are none yet.
pub fn load(host: &Host, ca: &CaSettings) -> Result<Option<AccountCredentials>> {
    let path = credentials_path(&ca.directory);
    let Some(text) = host.read_string(&path)? else {
        return Ok(None);
    };
    // serde_json's error text never quotes the input, so the key cannot leak here.
    let credentials = serde_json::from_str::<AccountCredentials>(&text).map_err(|e| {
        anyhow!(
            "the ACME account credentials in {path} are unreadable ({e}); edgeup will not \
             register a new account over them. Restore the file from a backup, or move it \
             away to register a new account"
        )
    })?;
    Ok(Some(credentials))
}

pub fn account_builder(ca: &CaSettings) -> Result<instant_acme::AccountBuilder> {
    let http = super::http::client(ca.ca_bundle.as_deref())?;
    Ok(Account::builder_with_http(http))
}

/// Registers a new account and stores its credentials (0600, root).
pub fn register(host: &Host, ca: &CaSettings) -> Result<()> {
    let contact: Vec<String> = ca.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact_refs: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = match (&ca.eab_kid, &ca.eab_hmac_key) {
        (Some(kid), Some(key)) => Some(ExternalAccountKey::new(kid.clone(), &decode_b64url(key)?)),
        _ => None,
    };
    let builder = account_builder(ca)?;
    let directory = ca.directory.clone();
    let (_, credentials) = super::block_on(async move {
        builder
            .create(
                &NewAccount {
                    contact: &contact_refs,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory,
                eab.as_ref(),
            )
            .await
    })?
    .map_err(|e| anyhow!("registering with {}: {e}", ca.directory))?;
    let json = serde_json::to_string_pretty(&credentials).context("encoding credentials")?;
    let path = credentials_path(&ca.directory);
    let dir = path.trim_end_matches("/account.json");
    let root_only = |mode| FileAttrs {
        mode,
        uid: 0,
        gid: 0,
    };
    host.ensure_dir(ACCOUNTS_DIR, &root_only(0o700))?;
    host.ensure_dir(dir, &root_only(0o700))?;
    host.write_atomic(&path, json.as_bytes(), &root_only(0o600), None)
}

/// RFC 4648 base64url, padded or not (CAs hand out EAB keys both ways).
fn decode_b64url(text: &str) -> Result<Vec<u8>> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.trim_end_matches('=').as_bytes())
        .map_err(|_| anyhow!("acme.eab.hmac_key is not base64url"))
}

/// Whether `ca` has an account here (builtin: its credentials; certbot: its
/// account store). A corrupt credentials file is an error, never "no".
pub fn registered(host: &Host, ca: &CaSettings, certbot_dir: &str) -> Result<bool> {
    match ca.client {
        AcmeClient::Certbot => Ok(super::certbot::has_account(
            host,
            certbot_dir,
            &ca.directory,
        )),
        AcmeClient::Builtin => Ok(load(host, ca)?.is_some()),
    }
}

/// Registers an account with `ca` unless there is one. Called only once the
/// preflight has passed: nothing reaches the CA before that.
pub fn ensure(host: &Host, ca: &CaSettings, certbot_dir: &str) -> Result<()> {
    if registered(host, ca, certbot_dir)? {
        return Ok(());
    }
    match ca.client {
        AcmeClient::Certbot => super::certbot::register(host, ca, certbot_dir),
        AcmeClient::Builtin => register(host, ca),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64url_decodes() -> anyhow::Result<()> {
        assert_eq!(super::decode_b64url("aGVsbG8")?, b"hello");
        assert_eq!(super::decode_b64url("_-8")?, vec![0xff, 0xef]);
        assert!(super::decode_b64url("a+b").is_err());
        Ok(())
    }
}
