//! Certificates and keys as HAProxy wants them: one PEM holding the chain
//! and the private key. Inspection (names, expiry, key match, placeholder or
//! CA-issued) and the self-signed placeholder. Key material never leaves
//! this module except as the PEM written to disk.

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use x509_parser::pem::Pem;
use x509_parser::prelude::*;

/// Organisation name that marks edgeup's self-signed placeholder.
pub const PLACEHOLDER_ORG: &str = "edgeup placeholder";
/// Placeholder lifetime: long enough for LAN installs, short enough to be realistic.
pub const PLACEHOLDER_DAYS: i64 = 365;
/// A placeholder is regenerated when it has fewer days left than this.
pub const PLACEHOLDER_RENEW_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub placeholder: bool,
    #[serde(skip)]
    pub public_key: Vec<u8>,
}

/// What a combined PEM file holds.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Leaf first, then the chain, in file order.
    pub certs: Vec<CertInfo>,
    /// Public key derived from the private key, when one is present and readable.
    key_public: Option<Vec<u8>>,
    pub key_present: bool,
}

/// The public key of a private key block (PKCS#8 `PRIVATE KEY`, SEC1
/// `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`), checked to belong to the
/// private key by ring; None when it does not parse.
fn public_key_of(label: &str, der: &[u8]) -> Option<Vec<u8>> {
    match label {
        "PRIVATE KEY" => public_key_of_pkcs8(der),
        "RSA PRIVATE KEY" => ring::signature::RsaKeyPair::from_der(der)
            .ok()
            .map(|k| ring::signature::KeyPair::public_key(&k).as_ref().to_vec()),
        // SEC1 wrapped in a PKCS#8 PrivateKeyInfo for each curve edgeup and
        // HAProxy use; ring refuses a wrong curve or a public key that does
        // not belong to the private scalar.
        "EC PRIVATE KEY" => [EC_P256, EC_P384]
            .iter()
            .find_map(|curve| public_key_of_pkcs8(&sec1_as_pkcs8(curve, der))),
        _ => None,
    }
}

/// DER of the AlgorithmIdentifier {id-ecPublicKey, namedCurve}.
const EC_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const EC_P384: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

/// PrivateKeyInfo ::= SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING sec1 }.
fn sec1_as_pkcs8(algorithm: &[u8], sec1: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(algorithm);
    body.push(0x04);
    body.extend(der_length(sec1.len()));
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    out.extend(der_length(body.len()));
    out.extend(body);
    out
}

/// A DER length: short form below 128, else long form.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

impl Bundle {
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.certs.first()
    }

    /// The private key belongs to the leaf certificate. A key that does not
    /// parse (garbage, an unknown format, a public key that is not the
    /// private key's) is a mismatch, like another certificate's key.
    pub fn key_matches(&self) -> bool {
        match (&self.key_public, self.leaf()) {
            (Some(key), Some(leaf)) => *key == leaf.public_key,
            _ => false,
        }
    }
}

impl CertInfo {
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    pub fn expired(&self, now: i64) -> bool {
        now >= self.not_after
    }
}

/// Renew when less than this fraction of the lifetime remains (Let's
/// Encrypt's 90-day certificates: 30 days before expiry).
const RENEW_WHEN_REMAINING: f64 = 1.0 / 3.0;

/// What a certificate is for the names it must serve at `now`: judged here
/// once, for the placeholder and certificate steps, certbot's lineage check
/// and `status`; each says in its own words what the verdict calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// edgeup's self-signed placeholder.
    pub placeholder: bool,
    /// The private key is present and belongs to the certificate.
    pub key_matches: bool,
    pub expired: bool,
    pub not_yet_valid: bool,
    pub days_left: i64,
    /// The first wanted name the certificate does not cover.
    pub uncovered: Option<String>,
    /// Why it is due for renewal (less than a third of its lifetime left,
    /// or expired), if it is.
    pub renewal_due: Option<String>,
}

/// The verdict on a bundle's leaf (None: the PEM holds no certificate).
pub fn judge(bundle: &Bundle, names: &[String], now: i64) -> Option<Verdict> {
    bundle
        .leaf()
        .map(|leaf| judge_leaf(leaf, bundle.key_matches(), names, now))
}

/// The verdict on one certificate whose key was judged elsewhere (e.g. the
/// one HAProxy serves: it holds the key).
pub fn judge_leaf(leaf: &CertInfo, key_matches: bool, names: &[String], now: i64) -> Verdict {
    Verdict {
        placeholder: leaf.placeholder,
        key_matches,
        expired: leaf.expired(now),
        not_yet_valid: now < leaf.not_before,
        days_left: leaf.days_left(now),
        uncovered: names.iter().find(|n| !leaf.covers(n)).cloned(),
        renewal_due: renewal_due(leaf, now),
    }
}

fn renewal_due(leaf: &CertInfo, now: i64) -> Option<String> {
    let lifetime = (leaf.not_after - leaf.not_before).max(1);
    let remaining = leaf.not_after - now;
    if remaining <= 0 {
        return Some("the certificate has expired".into());
    }
    if (remaining as f64) < lifetime as f64 * RENEW_WHEN_REMAINING {
        return Some(format!(
            "less than a third of its lifetime remains ({} days left)",
            remaining / 86_400
        ));
    }
    None
}

pub fn now() -> i64 {
    ::time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses a combined PEM (certificates + optional private key).
pub fn parse_bundle(pem: &[u8]) -> Result<Bundle> {
    let mut certs = Vec::new();
    let mut key_public = None;
    let mut key_present = false;
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| anyhow!("not a valid PEM file: {e}"))?;
        if block.label == "CERTIFICATE" {
            certs.push(cert_info(&block)?);
        } else if block.label.ends_with("PRIVATE KEY") {
            key_present = true;
            key_public = public_key_of(&block.label, &block.contents);
        }
    }
    if certs.is_empty() {
        anyhow::bail!("no certificate in the PEM file");
    }
    Ok(Bundle {
        certs,
        key_public,
        key_present,
    })
}

fn cert_info(block: &Pem) -> Result<CertInfo> {
    let (_, cert) = X509Certificate::from_der(&block.contents)
        .map_err(|e| anyhow!("unreadable certificate: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    let placeholder = cert
        .subject()
        .iter_organization()
        .any(|o| o.as_str().ok() == Some(PLACEHOLDER_ORG))
        && cert.subject() == cert.issuer();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        placeholder,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

fn public_key_of_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    let key = rcgen::KeyPair::try_from(der).ok()?;
    Some(key.public_key_raw().to_vec())
}

/// A self-signed P-256 certificate for `domain`, valid from an hour ago for
/// `PLACEHOLDER_DAYS`, as one PEM: certificate then PKCS#8 key.
pub fn placeholder_pem(domain: &str) -> Result<String> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()])
        .with_context(|| format!("'{domain}' cannot be a certificate name"))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, domain);
    dn.push(rcgen::DnType::OrganizationName, PLACEHOLDER_ORG);
    params.distinguished_name = dn;
    let now = ::time::OffsetDateTime::now_utc();
    params.not_before = now - ::time::Duration::hours(1);
    params.not_after = now + ::time::Duration::days(PLACEHOLDER_DAYS);
    let key = rcgen::KeyPair::generate().context("generating the placeholder key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the placeholder certificate")?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_before: i64, not_after: i64) -> CertInfo {
        CertInfo {
            subject: String::new(),
            issuer: String::new(),
            names: vec!["a.example".into()],
            not_before,
            not_after,
            placeholder: false,
            public_key: vec![],
        }
    }

    #[test]
    fn due_in_the_last_third() {
        let day = 86_400;
        let c = cert(0, 90 * day);
        assert!(renewal_due(&c, 59 * day).is_none());
        assert!(renewal_due(&c, 61 * day).is_some());
        assert!(renewal_due(&c, 91 * day).is_some_and(|w| w.contains("expired")));
    }

    #[test]
    fn a_verdict_says_what_the_certificate_is_for_the_names() {
        let day = 86_400;
        let names = ["a.example".to_string(), "b.example".to_string()];
        let v = judge_leaf(&cert(10 * day, 100 * day), true, &names, 5 * day);
        assert!(v.not_yet_valid && !v.expired && v.key_matches && !v.placeholder);
        assert_eq!(v.uncovered.as_deref(), Some("b.example"));
        assert_eq!(v.days_left, 95);
        assert_eq!(v.renewal_due, None);
        let v = judge_leaf(&cert(0, 90 * day), false, &names[..1], 90 * day);
        assert!(v.expired && !v.key_matches && v.uncovered.is_none());
        assert!(v.renewal_due.is_some());
    }

    #[test]
    fn placeholder_is_recognised_and_consistent() -> Result<()> {
        let pem = placeholder_pem("chat.example.com")?;
        let bundle = parse_bundle(pem.as_bytes())?;
        let leaf = bundle.leaf().context("leaf")?;
        assert!(leaf.placeholder);
        assert!(leaf.covers("chat.example.com"));
        assert!(!leaf.covers("other.example.com"));
        assert!(bundle.key_matches());
        let days = leaf.days_left(now());
        assert!(
            (PLACEHOLDER_DAYS - 1..=PLACEHOLDER_DAYS).contains(&days),
            "{days}"
        );
        Ok(())
    }

    #[test]
    fn key_of_another_certificate_does_not_match() -> Result<()> {
        let a = placeholder_pem("a.example.com")?;
        let b = placeholder_pem("a.example.com")?;
        let cert_a = &a[..a.find("-----BEGIN PRIVATE KEY").context("key")?];
        let key_b = &b[b.find("-----BEGIN PRIVATE KEY").context("key")?..];
        let mixed = parse_bundle(format!("{cert_a}{key_b}").as_bytes())?;
        assert!(!mixed.key_matches());
        let no_key = parse_bundle(cert_a.as_bytes())?;
        assert!(!no_key.key_present && !no_key.key_matches());
        Ok(())
    }

    /// `openssl` (a test tool here) writing keys in the legacy formats.
    fn openssl_pair(dir: &std::path::Path, name: &str, genkey: &str) -> (String, String) {
        let key = dir.join(format!("{name}.key"));
        let crt = dir.join(format!("{name}.crt"));
        let run = |script: String| {
            let ok = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl failed (is it installed?): {script}");
        };
        run(format!(
            "{} 2>/dev/null",
            genkey.replace("OUT", &key.display().to_string())
        ));
        run(format!(
            "openssl req -x509 -key {} -subj /CN={name}.example.com -days 30 -out {} 2>/dev/null",
            key.display(),
            crt.display()
        ));
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        (read(&crt), read(&key))
    }

    #[test]
    fn legacy_key_formats_are_checked_and_garbage_keys_do_not_match() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let ec = openssl_pair(
            dir.path(),
            "ec",
            "openssl ecparam -name prime256v1 -genkey -noout -out OUT",
        );
        let ec384 = openssl_pair(
            dir.path(),
            "ec384",
            "openssl ecparam -name secp384r1 -genkey -noout -out OUT",
        );
        let rsa = openssl_pair(
            dir.path(),
            "rsa",
            "openssl genrsa -traditional -out OUT 2048",
        );
        for (name, (cert, key), label) in [
            ("P-256", &ec, "EC PRIVATE KEY"),
            ("P-384", &ec384, "EC PRIVATE KEY"),
            ("RSA", &rsa, "RSA PRIVATE KEY"),
        ] {
            assert!(key.contains(&format!("BEGIN {label}")), "{name}: {key:.40}");
            let bundle = parse_bundle(format!("{cert}{key}").as_bytes())?;
            assert!(bundle.key_matches(), "{name}: its own key must match");
        }
        // Another certificate's key, in each format, does not match.
        for (cert, key) in [(&ec.0, &rsa.1), (&rsa.0, &ec.1), (&ec384.0, &ec.1)] {
            assert!(!parse_bundle(format!("{cert}{key}").as_bytes())?.key_matches());
        }
        // A "private key" that is garbage counted as matching before.
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        for label in [
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "RSA PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            let block = garbage.replace("PRIVATE KEY", label);
            let bundle = parse_bundle(format!("{}{block}", ec.0).as_bytes())?;
            assert!(bundle.key_present && !bundle.key_matches(), "{label}");
        }
        Ok(())
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_bundle(b"hello").is_err());
    }
}
