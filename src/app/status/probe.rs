//! Network probes of the site through HAProxy: an HTTPS request with SNI
//! (which also yields the certificate HAProxy serves for the name) and a
//! websocket upgrade. The chain is not verified here: the placeholder is
//! self-signed by design, and `status` judges the served certificate by its
//! names, dates and issuer instead. Nothing here touches the host's files.

use crate::pki::{self, CertInfo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The longest response head read (the probes need only the status line).
const MAX_HEAD: usize = 16 * 1024;

/// Where and how to probe: HAProxy's address, the site's name (SNI and Host).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub domain: String,
    pub timeout: Duration,
}

/// What one probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// `https://DOMAIN/PATH`.
    pub url: String,
    /// The address connected to (HAProxy's listener, usually loopback).
    pub via: String,
    /// `HTTP/1.1 200 OK`, when an HTTP answer came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there is no answer (connection, TLS or HTTP level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The leaf certificate served for the name (after a TLS handshake).
    #[serde(skip)]
    pub certificate: Option<CertInfo>,
}

/// `GET PATH` over TLS with SNI = domain.
pub fn https(target: &Endpoint, path: &str) -> Probe {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgeup-status\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.domain
    );
    exchange(target, path, &request)
}

/// A websocket upgrade (RFC 6455 handshake) of PATH; a working proxy path
/// answers `101 Switching Protocols`. The key must decode to 16 bytes:
/// HAProxy answers 400 to any other length.
pub fn websocket(target: &Endpoint, path: &str) -> Probe {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgeup-status\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ZWRnZXVwLXN0YXR1cy0xNg==\r\n\r\n",
        target.domain
    );
    exchange(target, path, &request)
}

fn exchange(target: &Endpoint, path: &str, request: &str) -> Probe {
    let mut probe = Probe {
        url: format!("https://{}{path}", target.domain),
        via: target.addr.to_string(),
        status_line: None,
        status: None,
        error: None,
        certificate: None,
    };
    match talk(target, request, &mut probe.certificate) {
        Ok(head) => {
            let line = head.lines().next().unwrap_or_default().trim().to_string();
            probe.status = line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok());
            if probe.status.is_none() {
                probe.error = Some(format!("not an HTTP answer: {line:?}"));
            }
            probe.status_line = Some(line);
        }
        Err(why) => probe.error = Some(why),
    }
    probe
}

/// Connects, handshakes (recording the leaf certificate), sends `request`
/// and returns the response head. Errors are sentences for the user.
fn talk(target: &Endpoint, request: &str, leaf: &mut Option<CertInfo>) -> Result<String, String> {
    let addr = target.addr;
    let mut sock =
        TcpStream::connect_timeout(&addr, target.timeout).map_err(|e| match e.kind() {
            ErrorKind::ConnectionRefused => {
                format!("nothing listens on {addr} (connection refused): is HAProxy running?")
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                format!("no answer from {addr} within {}s", target.timeout.as_secs())
            }
            _ => format!("cannot connect to {addr}: {e}"),
        })?;
    let io_error = |what: &str, e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!(
            "{what}: no answer from {addr} within {}s",
            target.timeout.as_secs()
        ),
        _ => format!("{what}: {e}"),
    };
    sock.set_read_timeout(Some(target.timeout))
        .and_then(|()| sock.set_write_timeout(Some(target.timeout)))
        .map_err(|e| io_error("setting socket timeouts", e))?;
    let name = ServerName::try_from(target.domain.clone())
        .map_err(|e| format!("{:?} cannot be sent as SNI: {e}", target.domain))?;
    let mut conn = ClientConnection::new(client_config()?, name)
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| io_error("TLS handshake failed", e))?;
    }
    *leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| pki::parse_bundle(pem_of(der).as_bytes()).ok())
        .and_then(|bundle| bundle.leaf().cloned());
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .map_err(|e| io_error("sending the request", e))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if head.is_empty() => return Err(io_error("reading the answer", e)),
            Err(_) => break,
        }
    }
    if head.is_empty() {
        return Err("the connection closed without an HTTP answer".into());
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn client_config() -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    // HTTP/1.1 only: the probes speak it, and websockets upgrade over it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate (status reports on it instead), while still
/// checking the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A DER certificate as PEM text, so `pki` inspects it like a file's.
fn pem_of(der: &[u8]) -> String {
    let encoded = data_encoding::BASE64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_of_wraps_base64_at_64_columns_and_reads_back() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = super::pem_of(&der);
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(body.iter().all(|l| l.len() <= 64), "{pem}");
        let back = data_encoding::BASE64
            .decode(body.concat().as_bytes())
            .unwrap_or_default();
        assert_eq!(back, der);
    }
}
