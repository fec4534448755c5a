//! ACME Renewal Information (RFC 9773): the CA's suggested renewal window
//! for a certificate. Asked only by `edgeup renew` (the timer), so a plain
//! `apply` stays fast and offline-friendly; CAs without ARI fall back to the
//! lifetime rule in `policy`.

use super::CaSettings;
use super::account::{account_builder, load};
use crate::host::Host;
use anyhow::{Result, anyhow};
use instant_acme::CertificateIdentifier;
use rustls_pki_types::CertificateDer;
use x509_parser::pem::Pem;

/// The suggested window, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// The CA's window for the leaf of `chain_pem`; None when the CA has no ARI
/// (or the certificate cannot be identified to it).
pub fn window(host: &Host, ca: &CaSettings, chain_pem: &[u8]) -> Result<Option<Window>> {
    let Some(credentials) = load(host, ca)? else {
        return Ok(None);
    };
    let Some(Ok(leaf)) = Pem::iter_from_buffer(chain_pem).next() else {
        return Ok(None);
    };
    let der = CertificateDer::from(leaf.contents);
    let Ok(id) = CertificateIdentifier::try_from(&der) else {
        return Ok(None);
    };
    let builder = account_builder(ca)?;
    super::block_on(async move {
        let account = builder
            .from_credentials(credentials)
            .await
            .map_err(|e| anyhow!("contacting the CA at {}: {e}", ca.directory))?;
        match account.renewal_info(&id).await {
            Ok((info, _retry_after)) => Ok(Some(Window {
                start: info.suggested_window.start.unix_timestamp(),
                end: info.suggested_window.end.unix_timestamp(),
            })),
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(anyhow!("asking the CA for renewal information: {e}")),
        }
    })?
}

/// Due once `now` passes a point inside the window. RFC 9773 asks clients to
/// pick a random point so renewals spread out; the point here is derived
/// from the certificate's public key, so it is stable across runs (a run
/// twice a day does not re-roll the dice) yet differs between certificates.
pub fn due(window: Window, now: i64, spread_seed: &[u8]) -> bool {
    let span = (window.end - window.start).max(0);
    let seed = spread_seed.iter().fold(0u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(*b))
    });
    let offset = if span == 0 {
        0
    } else {
        (seed % span as u64) as i64
    };
    now >= window.start + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_inside_the_window_at_a_stable_point() {
        let w = Window {
            start: 1000,
            end: 2000,
        };
        assert!(!due(w, 999, b"key"));
        assert!(due(w, 2000, b"key"));
        let first = (1000..=2000).find(|t| due(w, *t, b"key"));
        assert_eq!(first, (1000..=2000).find(|t| due(w, *t, b"key")));
        let other = (1000..=2000).find(|t| due(w, *t, b"another key"));
        assert_ne!(
            first, other,
            "different certificates renew at different points"
        );
    }

    #[test]
    fn a_closed_window_in_the_past_is_due() {
        assert!(due(Window { start: 10, end: 10 }, 10, b""));
    }
}
