//! A webhook target: the event's JSON POSTed (`Content-Type:
//! application/json`) to an http:// or https:// URL; any 2xx answer is a
//! success. https trusts the system's CAs (rustls-platform-verifier, as the
//! ACME client does). Redirects are not followed. The whole exchange
//! (connect, TLS, request, answer) is bounded.

use super::Failure;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Characters of a failed answer's body quoted in the result.
const BODY_CHARS: usize = 200;

/// `scheme://host[:port]` of `url`: what may be shown (a webhook URL often
/// carries its token in the path, the query or the user part).
pub fn label(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => match uri.port_u16() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            },
            _ => "(not an http:// or https:// URL)".into(),
        },
        Err(_) => "(not an http:// or https:// URL)".into(),
    }
}

/// POSTs `json` to `url`; Ok on a 2xx answer within `bound`. Messages never
/// contain the URL's path, query or user part.
pub fn deliver(url: &str, json: &str, bound: Duration) -> Result<(), Failure> {
    let not_a_url = || Failure::other("not an http:// or https:// URL".into());
    let uri: http::Uri = url.parse().map_err(|_| not_a_url())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(not_a_url());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Failure::other(
            "credentials in the URL are not supported: put the token in the path or query".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        match tokio::time::timeout(bound, post(uri, json)).await {
            Ok(result) => result.map_err(Failure::other),
            Err(_) => Err(Failure::timed_out(format!(
                "no answer within {} s; request abandoned",
                bound.as_secs_f64()
            ))),
        }
    })
}

async fn post(uri: http::Uri, json: &str) -> Result<(), String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .try_with_platform_verifier()
        .map_err(|e| format!("loading the system's trusted CAs: {e}"))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("edgeup/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(json.to_string())))
        .map_err(|e| format!("building the request: {e}"))?;
    let response = client.request(request).await.map_err(|e| chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The first characters of the answer's body, on one line.
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < BODY_CHARS * 4 {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let body: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(BODY_CHARS)
        .collect();
    let quoted = if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    };
    Err(format!("answered {status}{quoted}"))
}

/// An error and its sources, one line (hyper's own message is terse).
/// hyper-util's errors name neither path nor query.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_only_scheme_and_host() {
        assert_eq!(
            label("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            label("http://127.0.0.1:8080/hook?token=abc"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            label("https://user:pw@example.com/x"),
            "https://example.com"
        );
        assert_eq!(label("not a url"), "(not an http:// or https:// URL)");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "ftp://example.com/x",
            "/relative",
            "https://user:token@example.com/",
        ] {
            let err = deliver(url, "{}", Duration::from_secs(1)).expect_err(url);
            let err = err.message;
            assert!(!err.contains("s3cr3t") && !err.contains("example"), "{err}");
        }
    }
}
