//! A loopback HTTPS stand-in for a CA that rate-limits: just enough ACME
//! (RFC 8555) for a client to create an account and ask for an order, which
//! it refuses the way Let's Encrypt does: HTTP 429, a `rateLimited`
//! problem document and a Retry-After. Pebble cannot answer so
//! (letsencrypt/pebble#82, #399). Requests are not verified (JWS
//! signatures are ignored): this checks what a client does with the reply,
//! not the protocol, which the Pebble tests cover.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub struct StandInCa {
    /// `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// The PEM a client must trust for it.
    pub ca_bundle: PathBuf,
    orders: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl StandInCa {
    /// Refuses every new order with `detail` (the problem's human text).
    pub fn rate_limiting(detail: &str) -> StandInCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, chain, key) = certificate();
        let ca_bundle = dir.path().join("stand-in-ca.pem");
        std::fs::write(&ca_bundle, ca_pem).expect("write the CA bundle");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let orders = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped, detail, root) = (
            Arc::clone(&orders),
            Arc::clone(&stop),
            detail.to_string(),
            base.clone(),
        );
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (config, counted, detail, root) = (
                            Arc::clone(&config),
                            Arc::clone(&counted),
                            detail.clone(),
                            root.clone(),
                        );
                        std::thread::spawn(move || serve(stream, config, &counted, &detail, &root));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        StandInCa {
            directory: format!("{base}/dir"),
            ca_bundle,
            orders,
            stop,
            _dir: dir,
        }
    }

    /// How many new orders were asked for.
    pub fn orders(&self) -> usize {
        self.orders.load(Ordering::Relaxed)
    }
}

impl Drop for StandInCa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// HTTP/1.1 requests on one TLS connection until the client closes it.
fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    orders: &AtomicUsize,
    detail: &str,
    base: &str,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
    loop {
        let mut request = String::new();
        if tls.read_line(&mut request).map_or(true, |n| n == 0) {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if tls.read_line(&mut line).map_or(true, |n| n == 0) {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, extra, json) = match (method, path) {
            ("GET", "/dir") => (
                "200 OK",
                String::new(),
                format!(
                    r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/account","newOrder":"{base}/order","revokeCert":"{base}/revoke","keyChange":"{base}/key"}}"#
                ),
            ),
            (_, "/nonce") => ("200 OK", String::new(), String::new()),
            ("POST", "/account") => (
                "201 Created",
                format!("Location: {base}/account/1\r\n"),
                r#"{"status":"valid","contact":[]}"#.to_string(),
            ),
            ("POST", "/order") => {
                orders.fetch_add(1, Ordering::Relaxed);
                (
                    "429 Too Many Requests",
                    "Retry-After: 3600\r\n".to_string(),
                    format!(
                        r#"{{"type":"urn:ietf:params:acme:error:rateLimited","detail":"{detail}","status":429}}"#
                    ),
                )
            }
            _ => ("404 Not Found", String::new(), String::new()),
        };
        let content_type = if status.starts_with("429") {
            "application/problem+json"
        } else {
            "application/json"
        };
        let head_only = method == "HEAD";
        let answer = format!(
            "HTTP/1.1 {status}\r\nReplay-Nonce: n{}\r\nCache-Control: no-store\r\n\
             Content-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\r\n{}",
            orders.load(Ordering::Relaxed) + length,
            json.len(),
            if head_only { "" } else { json.as_str() }
        );
        let stream = tls.get_mut();
        if stream.write_all(answer.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

/// `(CA PEM, chain for 127.0.0.1, its key)`.
fn certificate() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    (
        ca_cert.pem(),
        vec![leaf.der().clone(), ca_cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}
