//! The HTTPS client the builtin ACME client talks through. instant-acme's
//! default client leaves Nagle's algorithm on, so every ACME POST (sent in two
//! writes) waits ~40 ms for the server's delayed ACK; with eight requests per
//! issuance that was a third of the time (bench/RESULTS.md). Same stack
//! (hyper + rustls/ring), TCP_NODELAY on.

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, HttpClient};
use rustls_pki_types::CertificateDer;
use std::path::Path;
use x509_parser::pem::Pem;

/// A client trusting the platform's roots, or only the CAs in `ca_bundle`.
pub fn client(ca_bundle: Option<&Path>) -> Result<Box<dyn HttpClient>> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = HttpsConnectorBuilder::new();
    let builder = match ca_bundle {
        Some(path) => builder.with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots(path)?)
                .with_no_client_auth(),
        ),
        None => builder
            .try_with_platform_verifier()
            .map_err(|e| anyhow!("loading the system's trusted CAs: {e}"))?,
    };
    let connector = builder
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client: Client<_, BodyWrapper<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    Ok(Box::new(client))
}

/// Every certificate in a PEM bundle (instant-acme's own loader takes only the first).
fn roots(path: &Path) -> Result<rustls::RootCertStore> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading the CA bundle {}", path.display()))?;
    let mut store = rustls::RootCertStore::empty();
    for block in Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|e| anyhow!("{} is not a PEM file: {e}", path.display()))?;
        if block.label == "CERTIFICATE" {
            store
                .add(CertificateDer::from(block.contents))
                .map_err(|e| anyhow!("{}: unusable CA certificate: {e}", path.display()))?;
        }
    }
    if store.is_empty() {
        anyhow::bail!("{} holds no CA certificate", path.display());
    }
    Ok(store)
}
