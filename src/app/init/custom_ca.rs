//! The certificate source "another ACME CA": its directory URL, the CA
//! certificate to trust for it (checked readable and PEM as typed), and
//! external account binding. An existing HMAC key is kept on Enter and never
//! shown as a default.

use super::ask::Ask;
use super::fields::{self, with};
use crate::site::{Eab, RawSite};
use anyhow::Result;

pub fn ask_custom_ca(ask: &mut dyn Ask, site: &mut RawSite) -> Result<()> {
    let current = Some(site.acme.directory.clone()).filter(|d| d.starts_with("https://"));
    let base = site.clone();
    let valid = |v: &str| {
        fields::check(
            &with(&base, |s| s.acme.directory = v.to_string()),
            "acme.directory",
            false,
        )
    };
    site.acme.directory = ask.text(
        "ACME directory URL (https://.../directory)",
        current.as_deref(),
        false,
        &valid,
    )?;

    let base = site.clone();
    let valid_bundle = |v: &str| {
        if v.is_empty() {
            return Ok(());
        }
        fields::check(
            &with(&base, |s| s.acme.ca_bundle = Some(v.into())),
            "acme.ca_bundle",
            false,
        )?;
        match std::fs::read(v) {
            Ok(bytes) if crate::pki::parse_bundle(&bytes).is_ok() => Ok(()),
            Ok(_) => Err(format!(
                "{v} holds no PEM certificate; give the CA's certificate file"
            )),
            Err(e) => Err(format!("{v} cannot be read ({e})")),
        }
    };
    let bundle = site
        .acme
        .ca_bundle
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let answer = ask.text(
        "CA certificate (PEM) to trust for that directory; empty if it has a public certificate",
        bundle.as_deref(),
        true,
        &valid_bundle,
    )?;
    site.acme.ca_bundle = Some(answer).filter(|a| !a.is_empty()).map(Into::into);

    if !ask.confirm(
        "Does the CA require external account binding (EAB: a key ID and HMAC key from its console)?",
        site.acme.eab.is_some(),
    )? {
        site.acme.eab = None;
        return Ok(());
    }
    let old = site.acme.eab.clone();
    let base = site.clone();
    let valid_kid = |v: &str| {
        let eab = Eab {
            kid: v.to_string(),
            hmac_key: "AAAA".into(),
        };
        fields::check(
            &with(&base, |s| s.acme.eab = Some(eab)),
            "acme.eab.kid",
            false,
        )
    };
    let kid = ask.text(
        "EAB key ID",
        old.as_ref().map(|e| e.kid.as_str()),
        false,
        &valid_kid,
    )?;
    let keep = old.as_ref().filter(|e| !e.hmac_key.is_empty()).is_some();
    let valid_key = |v: &str| {
        if v.is_empty() && keep {
            return Ok(());
        }
        let eab = Eab {
            kid: kid.clone(),
            hmac_key: v.to_string(),
        };
        fields::check(
            &with(&base, |s| s.acme.eab = Some(eab)),
            "acme.eab.hmac_key",
            false,
        )
    };
    let prompt = if keep {
        "EAB HMAC key (base64url; Enter keeps the current one)"
    } else {
        "EAB HMAC key (base64url)"
    };
    let key = ask.secret(prompt, keep, &valid_key)?;
    let hmac_key = match (key.is_empty(), old) {
        (true, Some(old)) => old.hmac_key,
        _ => key,
    };
    site.acme.eab = Some(Eab { kid, hmac_key });
    Ok(())
}
