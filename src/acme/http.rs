//! The HTTPS client the builtin ACME client talks through. instant-acme's
//! default client leaves Nagle's algorithm on, so every ACME POST (sent in two
//! writes) waits ~40 ms for the server's delayed ACK; with eight requests per
//! issuance that was a third of the time (bench/RESULTS.md). Same stack
//! (hyper + rustls/ring), TCP_NODELAY on, and every request bounded: a CA
//! that takes a request and never answers fails the order instead of
//! hanging the run (seen with Pebble, whose handlers can deadlock).

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::CertificateDer;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;
use x509_parser::pem::Pem;

/// A client trusting the platform's roots, or only the CAs in `ca_bundle`.
pub fn client(ca_bundle: Option<&Path>) -> Result<Box<dyn HttpClient>> {
    Ok(Box::new(Bounded {
        inner: unbounded(ca_bundle)?,
        limit: REQUEST_TIMEOUT,
    }))
}

fn unbounded(ca_bundle: Option<&Path>) -> Result<Box<dyn HttpClient>> {
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

/// How long the CA may take to answer one request, body and all.
/// Generous: a busy CA's finalize takes seconds, not minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A client whose every request ends within `limit`.
struct Bounded {
    inner: Box<dyn HttpClient>,
    limit: Duration,
}

impl HttpClient for Bounded {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let (url, limit) = (req.uri().to_string(), self.limit);
        let answer = self.inner.request(req);
        // The whole answer, body included, within the bound.
        let whole = async move {
            let mut response = answer.await?;
            let body = response
                .body
                .into_bytes()
                .await
                .map_err(instant_acme::Error::Other)?;
            response.body = Box::new(body);
            Ok(response)
        };
        Box::pin(async move {
            match tokio::time::timeout(limit, whole).await {
                Ok(result) => result,
                Err(_) => Err(instant_acme::Error::Other(
                    format!("the CA did not answer {url} within {limit:?}").into(),
                )),
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A "CA" that accepts the connection and never says a word (not even
    /// the TLS handshake): the request fails, naming the bound, instead of
    /// waiting for ever. The listener hangs up only long after the bound,
    /// so no other error can come first.
    #[test]
    fn a_ca_that_never_answers_fails_the_request_at_the_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let silent = std::thread::spawn(move || {
            let held = listener.accept();
            std::thread::sleep(Duration::from_secs(2));
            drop(held);
        });
        let client = Bounded {
            inner: unbounded(None).expect("client"),
            limit: Duration::from_millis(300),
        };
        let request = http::Request::get(format!("https://{addr}/dir"))
            .body(BodyWrapper::default())
            .expect("request");
        let answer = crate::acme::block_on(client.request(request)).expect("runtime");
        let err = answer.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains(&format!(
                "the CA did not answer https://{addr}/dir within 300ms"
            )),
            "{err}"
        );
        let _ = silent.join();
    }
}
