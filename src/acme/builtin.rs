//! Issuance with the builtin client: one order on an account, its
//! challenges answered (HTTP-01 on the loopback responder, or dns-01 TXT
//! records through the site's DNS provider, seen at every authoritative
//! server before the CA is told), finalize with a fresh key, download the
//! chain. acme/batch.rs runs several orders at once on one responder.

use super::CaSettings;
use super::account::account_builder;
use super::responder::Responder;
use crate::dns::Dns01;
use crate::host::{Cmd, Host};
use crate::site::KeyType;
use anyhow::{Context, Result, anyhow, bail};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order,
    OrderStatus, RetryPolicy,
};
use std::sync::Arc;
use std::time::Duration;

/// A certificate chain and its private key, as PEM. The key is never logged.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// How long to wait for the CA to validate and to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// The key for a new certificate, made before any network call so a
/// missing openssl fails early: RSA keys come from openssl (ring cannot
/// generate RSA); None for P-256, made fresh at finalize.
pub fn new_key(host: &Host, key_type: KeyType) -> Result<Option<String>> {
    match key_type {
        KeyType::Rsa2048 => generate_rsa(host).map(Some),
        KeyType::EcdsaP256 => Ok(None),
    }
}

/// The account of stored `credentials` at `ca` (one request: the directory).
pub async fn account(ca: &CaSettings, credentials: AccountCredentials) -> Result<Account> {
    account_builder(ca)?
        .from_credentials(credentials)
        .await
        .map_err(|e| anyhow!("contacting the CA at {}: {e}", ca.directory))
}

/// How an order's challenges are answered.
#[derive(Clone)]
pub enum Answer<'r> {
    /// HTTP-01 tokens on the shared loopback responder.
    Http(&'r Responder),
    /// dns-01 TXT records through the site's provider.
    Dns(Arc<Dns01>),
}

/// One certificate for `domains` (the first is the primary): a new order,
/// its challenges answered as `answer` says, finalized with `key_pem` (or a
/// fresh P-256 key), the chain downloaded.
pub async fn order(
    account: &Account,
    answer: Answer<'_>,
    domains: &[String],
    key_pem: Option<String>,
) -> Result<Issued> {
    let identifiers: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| anyhow!("creating the order: {}", explain(&e)))?;
    // A CA validates in tens of milliseconds to seconds: ask early, back off.
    let retries = RetryPolicy::default()
        .initial_delay(Duration::from_millis(25))
        .backoff(1.6)
        .timeout(VALIDATION_TIMEOUT);
    let mut served = Served {
        answer,
        tokens: Vec::new(),
        records: Vec::new(),
    };
    let validated = validate(&mut order, &mut served, &retries, domains).await;
    // Validated or not, the CA asks nothing more of the challenges.
    served.release().await;
    validated?;
    let key_pem = match key_pem {
        Some(pem) => {
            finalize_with_key(&mut order, &pem).await?;
            pem
        }
        None => order
            .finalize()
            .await
            .map_err(|e| anyhow!("finalizing the order: {}", explain(&e)))?,
    };
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| anyhow!("downloading the certificate: {}", explain(&e)))?;
    Ok(Issued { chain_pem, key_pem })
}

/// Answers the order's challenges and waits until the CA has validated them.
async fn validate(
    order: &mut Order,
    served: &mut Served<'_>,
    retries: &RetryPolicy,
    domains: &[String],
) -> Result<()> {
    match served.answer.clone() {
        Answer::Http(responder) => answer_http(order, served, responder).await?,
        Answer::Dns(dns) => answer_dns(order, served, dns).await?,
    }
    let status = order.poll_ready(retries).await.map_err(|e| {
        anyhow!(
            "the CA could not validate {}: {}",
            domains.join(", "),
            explain(&e)
        )
    })?;
    if status != OrderStatus::Ready {
        bail!(
            "the CA could not validate the order ({status:?}): {}",
            validation_errors(order).await
        );
    }
    Ok(())
}

/// What one order put up for the CA: tokens on the shared responder, or
/// TXT records in the zone. `release` takes them away; a run killed before
/// that leaves the records in the DNS journal, for the next run to remove.
struct Served<'r> {
    answer: Answer<'r>,
    tokens: Vec<String>,
    records: Vec<(String, String)>,
}

impl Served<'_> {
    async fn release(&mut self) {
        if let Answer::Http(responder) = &self.answer {
            for token in self.tokens.drain(..) {
                responder.remove(&token);
            }
        }
        if let Answer::Dns(dns) = &self.answer {
            let records = std::mem::take(&mut self.records);
            let dns = Arc::clone(dns);
            // A record that cannot be removed now stays journaled: the next
            // run's cleanup removes it; the certificate is not at stake.
            let _ = blocking(move || {
                for (name, value) in &records {
                    let _ = dns.cleanup(name, value);
                }
                Ok(())
            })
            .await;
        }
    }
}

impl Drop for Served<'_> {
    /// Tokens of an order that ended without `release` (a cancelled future).
    fn drop(&mut self) {
        if let Answer::Http(responder) = &self.answer {
            for token in &self.tokens {
                responder.remove(token);
            }
        }
    }
}

/// A blocking DNS operation, off the runtime's thread: the batch's other
/// orders go on meanwhile.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| anyhow!("the DNS operation stopped: {e}"))?
}

async fn answer_http(
    order: &mut Order,
    served: &mut Served<'_>,
    responder: &Responder,
) -> Result<()> {
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(reading)?;
        if !needs_answer(authz.status)? {
            continue;
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .context("the CA offers no HTTP-01 challenge for this name")?;
        responder.add(&challenge.token, challenge.key_authorization().as_str());
        served.tokens.push(challenge.token.clone());
        challenge
            .set_ready()
            .await
            .map_err(|e| anyhow!("telling the CA the challenge is ready: {}", explain(&e)))?;
    }
    Ok(())
}

/// dns-01: every pending name's TXT record written, then seen at every
/// authoritative server of its zone, and only then the CA told to look (a
/// CA that looks too early fails the order, and counts it).
async fn answer_dns(order: &mut Order, served: &mut Served<'_>, dns: Arc<Dns01>) -> Result<()> {
    let mut wanted = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(reading)?;
        if !needs_answer(authz.status)? {
            continue;
        }
        let identifier = authz.identifier().to_string();
        let challenge = authz
            .challenge(ChallengeType::Dns01)
            .with_context(|| format!("the CA offers no dns-01 challenge for {identifier}"))?;
        wanted.push((
            Dns01::record_name(&identifier),
            challenge.key_authorization().dns_value(),
        ));
    }
    for record in &wanted {
        let provider = Arc::clone(&dns);
        let (name, value) = record.clone();
        blocking(move || provider.present(&name, &value)).await?;
        served.records.push(record.clone());
    }
    let provider = Arc::clone(&dns);
    let records = wanted.clone();
    blocking(move || provider.wait_visible(&records)).await?;
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(reading)?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let mut challenge = authz
            .challenge(ChallengeType::Dns01)
            .context("the CA offers no dns-01 challenge for this name")?;
        challenge
            .set_ready()
            .await
            .map_err(|e| anyhow!("telling the CA the challenge is ready: {}", explain(&e)))?;
    }
    Ok(())
}

/// Whether an authorization still waits for its challenge (a valid one,
/// e.g. reused by the CA, needs nothing; any other state ends the order).
fn needs_answer(status: AuthorizationStatus) -> Result<bool> {
    match status {
        AuthorizationStatus::Valid => Ok(false),
        AuthorizationStatus::Pending => Ok(true),
        other => bail!("authorization is {other:?}; the CA will not validate it"),
    }
}

fn reading(e: instant_acme::Error) -> anyhow::Error {
    anyhow!("reading authorizations: {}", explain(&e))
}

/// The per-name validation errors the CA recorded (what failed, from where).
async fn validation_errors(order: &mut Order) -> String {
    let mut out = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let _ = authz.refresh().await;
        let name = authz.identifier().to_string();
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                out.push(format!(
                    "{name}: {}",
                    problem
                        .detail
                        .clone()
                        .unwrap_or_else(|| format!("{problem:?}"))
                ));
            }
        }
    }
    if out.is_empty() {
        "no detail given".into()
    } else {
        out.join("; ")
    }
}

async fn finalize_with_key(order: &mut Order, key_pem: &str) -> Result<()> {
    let mut names = Vec::new();
    let mut identifiers = order.identifiers();
    while let Some(id) = identifiers.next().await {
        names.push(id.map_err(|e| anyhow!("{e}"))?.to_string());
    }
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| anyhow!("reading the RSA key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| anyhow!("finalizing the order: {}", explain(&e)))
}

fn generate_rsa(host: &Host) -> Result<String> {
    let out = host.run_ok(&Cmd::new("openssl").args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
    ]))?;
    Ok(out.stdout)
}

/// An instant-acme error in words a user can act on (rate limits called out).
pub fn explain(error: &instant_acme::Error) -> String {
    if let instant_acme::Error::Api(problem) = error {
        let kind = problem.r#type.as_deref().unwrap_or("");
        let detail = problem.detail.as_deref().unwrap_or("");
        if kind.ends_with(":rateLimited") {
            return format!(
                "rate limited by the CA: {detail} (edgeup will not retry before the time the CA gives)"
            );
        }
        return format!("{detail} ({kind})");
    }
    error.to_string()
}
